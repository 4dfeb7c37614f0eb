//! The `hourglass` command-line tool: argument parsing and one library call per subcommand.
// The library never prints; this binary is the one place that does.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod cmd;
mod errors;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `hourglass score … | head`: the reader has what it wanted.
        Err(e) if errors::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", errors::render(&e));
            ExitCode::from(2)
        }
    }
}
