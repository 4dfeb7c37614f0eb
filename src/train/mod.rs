//! Training: one loop ([`fit`]'s) over any stack of layers with a loss head.
//!
//! - `config.rs`: [`TrainConfig`], [`Event`], [`EpochStats`], [`TrainReport`].
//! - `trainee.rs`: what the loop trains (layers, scaler, regularizers, loss head) and its
//!   targets.
//! - `step.rs`: the workspace and the one forward/backward pass, with a reconstruction or a
//!   softmax cross-entropy head.
//! - `checkpoint.rs`: [`Checkpoint`], where the loop stands, saved and continued bit for bit.
//! - `position.rs`: the loop's state between steps, which a checkpoint saves and a resumed
//!   run takes back.
//! - `exchange.rs`: what data-parallel ranks exchange each step (rows, loss, gradients,
//!   averaged weights) and their agreement on stopping.
//! - `dictionary.rs`: sparse dictionaries' checks, threshold calibration, tied initialization
//!   and atom normalization, which the loop calls.
//! - `update.rs`: what a step does with its gradients (tied weights, clipping, the optimizer
//!   step and the weights' constraints).
//! - `validation.rs`: the validation loss, the code's sparsity and the best epoch, which
//!   early stopping watches.
//! - `feed.rs`: the checks of the rows and targets the loop is given, and the feeds that fill
//!   its batches (rows in memory, shuffled; a [`RowStream`] from disk).
//! - `fit.rs`: the epoch loop (shuffling, divergence, the freeze schedule,
//!   checkpoints, data-parallel ranks), behind [`fit`], [`fit_paired`] and
//!   [`crate::classifier::finetune`].

pub mod checkpoint;
mod config;
mod dictionary;
mod exchange;
mod feed;
pub(crate) mod fit;
mod position;
mod sparse;
pub(crate) mod step;
pub(crate) mod trainee;
mod update;
mod validation;

pub use checkpoint::Checkpoint;
pub use config::{CODE_SAMPLE, EpochStats, Event, Flow, SERIES_MIN_STEPS, TrainConfig, TrainReport, epochs_for_steps};
pub use feed::RowStream;
pub use fit::{fit, fit_from, fit_paired, fit_paired_from, fit_shard, fit_stream};

#[cfg(test)]
mod dictionary_tests;
#[cfg(test)]
mod tests;
