//! Reconstruction losses.

use crate::activation::Activation;
use crate::kernels;
use serde::{Deserialize, Serialize};

/// Reconstruction loss, averaged over every element of the batch (PyTorch's `reduction="mean"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Mean squared error.
    #[default]
    Mse,
    /// Binary cross-entropy; needs a sigmoid output and targets in [0, 1]. Computed from the
    /// pre-activation, so it stays finite for saturated outputs.
    Bce,
}

impl Loss {
    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::Bce => "bce",
        }
    }

    /// Whether the output layer must keep its pre-activation for this loss.
    pub(crate) fn needs_output_preactivation(self, act: Activation) -> bool {
        matches!(self, Loss::Bce) || act.needs_preactivation()
    }

    /// Gradient with respect to the output pre-activation, `dz`, for output `y`
    /// (pre-activation `z`) and target `t`, scaled by `scale` (1 / number of elements).
    /// Returns the *sum* of the per-element losses.
    pub(crate) fn output_grad(
        self,
        act: Activation,
        y: &[f32],
        t: &[f32],
        z: Option<&[f32]>,
        scale: f32,
        dz: &mut [f32],
    ) -> f64 {
        match self {
            Loss::Mse => kernels::mse_output_grad(y, t, z, act, scale, dz),
            Loss::Bce => {
                let z = z.expect("BCE needs the output pre-activation");
                kernels::bce_sigmoid_output_grad(y, t, z, scale, dz)
            }
        }
    }
}

impl std::str::FromStr for Loss {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mse" => Ok(Loss::Mse),
            "bce" => Ok(Loss::Bce),
            _ => Err(format!("unknown loss `{s}`; expected mse or bce")),
        }
    }
}

impl Loss {
    /// Sum of the per-element losses of predictions `y` against targets `t`, in f64
    /// (predictions clamped away from 0 and 1 for BCE). Used for validation and evaluation.
    pub fn sum(self, y: &[f32], t: &[f32]) -> f64 {
        match self {
            Loss::Mse => y.iter().zip(t).map(|(&y, &t)| (y as f64 - t as f64).powi(2)).sum(),
            Loss::Bce => y
                .iter()
                .zip(t)
                .map(|(&y, &t)| {
                    let y = (y as f64).clamp(1e-7, 1.0 - 1e-7);
                    let t = t as f64;
                    -(t * y.ln() + (1.0 - t) * (1.0 - y).ln())
                })
                .sum(),
        }
    }

    /// `log p(x|z)` of one row `t` under the decoder's likelihood for this loss, from its
    /// output `y`: Bernoulli for BCE, Gaussian of variance ½ for MSE (whose negative log
    /// density is the squared error plus a constant).
    pub fn log_likelihood(self, y: &[f32], t: &[f32]) -> f64 {
        match self {
            Loss::Bce => -self.sum(y, t),
            Loss::Mse => -self.sum(y, t) - 0.5 * t.len() as f64 * std::f64::consts::PI.ln(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Finite differences of the mean loss with respect to the output pre-activation, in f64.
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(2);
        let n = 23;
        let t: Vec<f32> = (0..n).map(|_| rng.uniform()).collect();
        let z0: Vec<f32> = (0..n).map(|_| rng.uniform_range(-3.0, 3.0)).collect();
        let cases = [
            (Loss::Mse, Activation::Sigmoid),
            (Loss::Mse, Activation::Identity),
            (Loss::Mse, Activation::Gelu),
            (Loss::Mse, Activation::Tanh),
            (Loss::Bce, Activation::Sigmoid),
        ];
        for (loss, act) in cases {
            let value = |z: &[f32]| -> f64 {
                let y: Vec<f32> = z.iter().map(|&v| act.apply(v)).collect();
                let mut dz = vec![0.0; n];
                loss.output_grad(act, &y, &t, Some(z), 1.0 / n as f32, &mut dz) / n as f64
            };
            let y: Vec<f32> = z0.iter().map(|&v| act.apply(v)).collect();
            let mut dz = vec![0.0; n];
            loss.output_grad(act, &y, &t, Some(&z0), 1.0 / n as f32, &mut dz);
            let h = 1e-2f32;
            for i in 0..n {
                let (mut p, mut m) = (z0.clone(), z0.clone());
                p[i] += h;
                m[i] -= h;
                let numeric = (value(&p) - value(&m)) / (2.0 * h as f64);
                assert!(
                    (numeric - dz[i] as f64).abs() < 1e-3 * (1.0 + numeric.abs()) + 1e-5,
                    "{loss:?}/{act}: [{i}] numeric {numeric} analytic {}",
                    dz[i]
                );
            }
        }
    }
}
