//! Training: one loop ([`fit`]'s) over any stack of layers with a loss head.
//!
//! - `config.rs`: [`TrainConfig`], [`Event`], [`EpochStats`], [`TrainReport`].
//! - `step.rs`: the workspace and the one forward/backward pass, with a reconstruction or a
//!   softmax cross-entropy head.
//! - `checkpoint.rs`: [`Checkpoint`], where the loop stands, saved and continued bit for bit.
//! - `exchange.rs`: what data-parallel ranks exchange each step (rows, loss, gradients,
//!   averaged weights) and their agreement on stopping.
//! - `dictionary.rs`: sparse dictionaries' checks, threshold calibration, tied initialization
//!   and atom normalization, which the loop calls.
//! - `fit.rs`: the epoch loop (shuffling, validation, early stopping, divergence, tied
//!   weights, the freeze schedule), behind [`fit`], [`fit_paired`] and
//!   [`crate::classifier::finetune`].

pub mod checkpoint;
mod config;
mod dictionary;
mod exchange;
pub(crate) mod fit;
mod sparse;
pub(crate) mod step;

pub use checkpoint::Checkpoint;
pub use config::{CODE_SAMPLE, EpochStats, Event, Flow, SERIES_MIN_STEPS, TrainConfig, TrainReport, epochs_for_steps};
pub use fit::{RowStream, fit, fit_from, fit_paired, fit_paired_from, fit_shard, fit_stream};

#[cfg(test)]
mod dictionary_tests;
#[cfg(test)]
mod tests;
