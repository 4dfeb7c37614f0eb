//! Layers. One file per layer: config, forward, backward and tests together.
//!
//! Rows are samples throughout; an image (C, H, W) is one row of `C * H * W` values, so
//! convolutional layers fit the same `(batch, n_in) -> (batch, n_out)` interface.

pub mod conv;
pub mod conv2d;
pub mod conv_transpose2d;
pub mod dense;
pub mod pool;

pub use conv_transpose2d::ConvTranspose2d;
pub use conv2d::Conv2d;
pub use dense::Dense;
pub use pool::{MaxPool2d, Upsample};

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
    /// When the previous layer is a regularized code: penalties and mask, applied first.
    pub code: Option<CodeGrad<'a>>,
}

/// Gradient terms of a regularized code layer, fused into the backward pass of the layer
/// above: `dL/dh += l1 sign(h) + kl'(h)`, then `dL/dy = dL/dh * mask`.
#[derive(Clone, Copy, Debug)]
pub struct CodeGrad<'a> {
    /// The code as the layer above saw it (after the mask), (batch, code).
    pub h: &'a [f32],
    /// Top-k / dropout multipliers, (batch, code).
    pub mask: Option<&'a [f32]>,
    /// L1 weight divided by the batch size.
    pub l1: f32,
    /// KL sparsity: `(rho, beta / batch, mean activation per unit)`.
    pub kl: Option<(f32, f32, &'a [f32])>,
}

impl CodeGrad<'_> {
    /// Applies the terms to `g`, the gradient rows starting at element `start` of the code.
    pub fn apply(&self, g: &mut [f32], start: usize) {
        let cols = self.kl.map_or(0, |(_, _, r)| r.len());
        for (i, g) in g.iter_mut().enumerate() {
            let at = start + i;
            let h = self.h[at];
            if self.l1 > 0.0 && h != 0.0 {
                *g += self.l1 * h.signum();
            }
            if let Some((rho, beta_b, rho_hat)) = self.kl {
                let r = rho_hat[at % cols];
                *g += beta_b * (-rho / r + (1.0 - rho) / (1.0 - r));
            }
            if let Some(m) = self.mask {
                *g *= m[at];
            }
        }
    }
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

impl Init {
    /// The bound `a` of the uniform draw `U(-a, a)` for a layer with this activation and fans.
    pub fn bound(self, activation: Activation, fan_in: usize, fan_out: usize) -> f32 {
        let he = match self {
            Init::Auto => activation.is_relu_like(),
            Init::He => true,
            Init::Xavier => false,
        };
        let a = if he {
            6.0 / fan_in as f64
        } else {
            6.0 / (fan_in + fan_out) as f64
        };
        a.sqrt() as f32
    }
}
