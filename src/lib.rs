#![doc = include_str!("../README.md")]
//!
//! # Crate map
//! - [`AutoencoderConfig`] → [`AutoencoderConfig::init`] → [`Autoencoder`]: the model.
//! - [`fit`] with a [`TrainConfig`]: training, validation, early stopping; progress via [`Event`].
//! - [`format`](mod@format): versioned, self-describing `.safetensors` model files.
//! - [`data`]: CSV, NPY and IDX readers and writers; the [`Scaler`].
//! - [`metrics`]: reconstruction error, PSNR, BCE.
//! - [`kernels`]: the only module with `unsafe` (runtime-dispatched SIMD); reference twins.

pub mod activation;
pub mod arch;
pub mod classifier;
pub mod data;
pub mod error;
pub mod format;
pub mod fsutil;
pub mod hash;
#[allow(unsafe_code)]
pub mod kernels;
pub mod layer;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod noise;
pub mod optim;
pub mod pca;
pub mod probe;
pub mod rng;
pub mod score;
pub mod tensor;
pub mod train;
pub mod viz;

pub use activation::Activation;
pub use data::scale::{Scaler, Scaling};
pub use error::{Error, Result};
pub use format::{ModelFile, Provenance};
pub use kernels::Precision;
pub use layer::{Dense, Init};
pub use loss::Loss;
pub use model::{Autoencoder, AutoencoderConfig};
pub use noise::Noise;
pub use optim::{OptimizerConfig, Schedule};
pub use rng::Rng;
pub use tensor::Matrix;
pub use train::{EpochStats, Event, TrainConfig, TrainReport, fit, fit_paired};

/// Runs `f` on a pool of `threads` worker threads (all cores when `None`).
///
/// Results do not depend on the count: hourglass splits work at fixed boundaries.
///
/// # Errors
/// [`Error::Config`] if the pool cannot be built (e.g. `threads == Some(0)`).
pub fn with_threads<T: Send>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> Result<T> {
    if threads == Some(0) {
        return Err(Error::Config("--threads must be at least 1".into()));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .map_err(|e| Error::Config(format!("cannot start {threads:?} threads: {e}")))?;
    Ok(pool.install(f))
}
