//! Layers. One file per layer: config, forward, backward and tests together.
//!
//! Rows are samples throughout; an image (C, H, W) is one row of `C * H * W` values, so
//! convolutional layers fit the same `(batch, n_in) -> (batch, n_out)` interface.

pub mod dense;

pub use dense::Dense;

use crate::activation::Activation;

/// The activation of the layer below, applied to `dx` inside the backward GEMM's epilogue.
#[derive(Clone, Copy, Debug)]
pub struct PrevActivation<'a> {
    /// Activation of the previous layer.
    pub act: Activation,
    /// Its output `y`, (batch, n_in).
    pub y: &'a [f32],
    /// Its pre-activation `z`, when the activation needs it.
    pub z: Option<&'a [f32]>,
}

/// How initial weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// He for ReLU-like activations, Xavier otherwise.
    #[default]
    Auto,
    /// He (Kaiming) uniform: `U(-a, a)`, `a = sqrt(6 / fan_in)`.
    He,
    /// Xavier (Glorot) uniform: `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`.
    Xavier,
}
