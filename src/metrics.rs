//! Reconstruction metrics, in the data's own units.

use crate::tensor::Matrix;
use serde::{Deserialize, Serialize};

/// How well `x̂` reconstructs `x`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReconstructionMetrics {
    /// Number of rows.
    pub n: usize,
    /// Mean squared error per element.
    pub mse: f64,
    /// Mean over rows of the sum of squared errors of the row (Hinton & Salakhutdinov 2006).
    pub sse_per_sample: f64,
    /// Peak signal-to-noise ratio in dB, for data in [0, 1].
    pub psnr: Option<f64>,
    /// Mean binary cross-entropy per element, for data in [0, 1].
    pub bce: Option<f64>,
}

/// Computes [`ReconstructionMetrics`] (sums in f64).
///
/// # Panics
/// If the shapes differ.
#[track_caller]
pub fn reconstruction(x: &Matrix, x_hat: &Matrix) -> ReconstructionMetrics {
    assert_eq!(x.shape(), x_hat.shape(), "metrics: shapes differ");
    let (n, d) = x.shape();
    let sse: f64 = x
        .as_slice()
        .iter()
        .zip(x_hat.as_slice())
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum();
    let mse = sse / (n * d).max(1) as f64;
    let unit = x.as_slice().iter().all(|v| (0.0..=1.0).contains(v));
    let psnr = unit.then(|| {
        if mse > 0.0 {
            10.0 * (1.0 / mse).log10()
        } else {
            f64::INFINITY
        }
    });
    let bce = unit.then(|| crate::loss::Loss::Bce.sum(x_hat.as_slice(), x.as_slice()) / (n * d).max(1) as f64);
    ReconstructionMetrics {
        n,
        mse,
        sse_per_sample: sse / n.max(1) as f64,
        psnr,
        bce,
    }
}
