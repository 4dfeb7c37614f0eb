#![doc = include_str!("../README.md")]
//!
//! # Crate map
//! - [`AutoencoderConfig`] (a layer stack; [`Mlp`] is the dense shorthand, [`model::toml`]
//!   reads architecture files) → [`AutoencoderConfig::init`] → [`Autoencoder`]: the model.
//! - [`regularize`]: sparsity, top-k, dropout, binary codes on any layer.
//! - [`fit`] with a [`TrainConfig`]: the one training loop (validation, early stopping;
//!   progress via [`Event`]); [`classifier::finetune`] runs it with a cross-entropy head.
//! - [`format`](mod@format): versioned, self-describing `.safetensors` model files.
//! - [`data`]: CSV, NPY, IDX and image readers and writers; the [`Scaler`].
//! - [`metrics`]: reconstruction error, PSNR, BCE, code sparsity, confusion matrices.
//! - [`kernels`]: the only module with `unsafe` (runtime-dispatched SIMD); reference twins.

pub mod activation;
pub mod bounds;
pub mod classifier;
pub mod data;
pub mod defaults;
pub mod dist;
pub mod error;
pub mod format;
pub mod fsutil;
pub mod hash;
mod infer;
pub mod inpaint;
#[allow(unsafe_code)]
pub mod kernels;
pub mod layer;
pub mod load;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod neighbours;
pub mod noise;
pub mod onnx;
pub mod optim;
pub mod pca;
pub mod pretrain;
pub mod probe;
pub mod regularize;
pub mod report;
pub mod rng;
pub mod score;
pub mod stream;
pub mod tensor;
pub mod tensorfile;
pub mod train;
pub mod vae;
pub mod viz;

pub use activation::Activation;
pub use data::scale::{Scaler, Scaling};
pub use error::{Error, Hint, Result};
pub use format::{ModelFile, Provenance};
pub use infer::InferPrecision;
pub use kernels::Precision;
pub use layer::{Dense, Init};
pub use loss::Loss;
pub use model::{Autoencoder, AutoencoderConfig, Mlp};
pub use noise::Noise;
pub use optim::{OptimizerConfig, Schedule};
pub use regularize::Regularizer;
pub use rng::Rng;
pub use tensor::{Matrix, MatrixRef};
pub use train::{
    Checkpoint, EpochStats, Event, Flow, TrainConfig, TrainReport, fit, fit_from, fit_paired, fit_paired_from,
    fit_shard,
};

/// Runs `f` on a pool of `threads` worker threads (all cores when `None`).
///
/// Results do not depend on the count: hourglass splits work at fixed boundaries.
///
/// # Errors
/// [`Error::Setting`] for `threads == Some(0)` or more than [`bounds::max_threads`], [`Error::Config`] if the pool cannot be built.
pub fn with_threads<T: Send>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> Result<T> {
    if threads == Some(0) {
        return Err(Error::setting("threads", 0, "must be at least 1"));
    }
    if let Some(n) = threads.filter(|&n| n > bounds::max_threads()) {
        return Err(Error::setting(
            "threads",
            n,
            format!(
                "at most {} on this machine (results do not depend on the count)",
                bounds::max_threads()
            ),
        ));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .map_err(|e| Error::Config(format!("cannot start {threads:?} threads: {e}")))?;
    Ok(pool.install(f))
}
