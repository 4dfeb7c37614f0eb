//! The one integration test binary: the command line end to end (`cli`), properties of the
//! engine (`engine`), the golden model files (`golden`), round trips (`roundtrip`) and the
//! promises of RELIABILITY.md (`reliability`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod engine;
mod golden;
mod parallel;
mod reliability;
mod roundtrip;
mod series;
mod text;
