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
    /// Categorical cross-entropy, `−Σ t ln y`: the output is a `softmax` layer (probabilities
    /// over the channels at each position) and the targets one-hot (or any distribution) over
    /// the same channels, such as a token at each step of a sequence. Its gradient goes
    /// through the softmax layer's Jacobian, which turns it into `y − t` per position.
    Ce,
}

/// One value's cross-entropy term `−t ln y` in f64, the probability `y` clamped to
/// `[1e-7, 1]` as for evaluation ([`Loss::sum`]).
pub(crate) fn ce_term(y: f32, t: f32) -> f64 {
    -f64::from(t) * f64::from(y).clamp(1e-7, 1.0).ln()
}

/// The smallest probability the cross-entropy takes the logarithm of (and divides by).
const CE_FLOOR: f32 = 1e-30;

impl Loss {
    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::Bce => "bce",
            Loss::Ce => "ce",
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
            Loss::Ce => {
                let mut sum = 0f64;
                for ((d, &y), &t) in dz.iter_mut().zip(y).zip(t) {
                    let p = y.max(CE_FLOOR);
                    *d = -t / p * scale;
                    if t != 0.0 {
                        sum -= f64::from(t) * f64::from(p).ln();
                    }
                }
                sum
            }
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
            "ce" => Ok(Loss::Ce),
            _ => Err(format!("unknown loss `{s}`; expected mse, bce or ce")),
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
            Loss::Ce => y
                .iter()
                .zip(t)
                .filter(|(_, t)| **t != 0.0)
                .map(|(&y, &t)| ce_term(y, t))
                .sum(),
        }
    }

    /// `log p(x|z)` of one row `t` under the decoder's likelihood for this loss, from its
    /// output `y`: Bernoulli for BCE, categorical for CE, Gaussian of variance ½ for MSE (whose negative log
    /// density is the squared error plus a constant).
    pub fn log_likelihood(self, y: &[f32], t: &[f32]) -> f64 {
        match self {
            Loss::Bce | Loss::Ce => -self.sum(y, t),
            Loss::Mse => -self.sum(y, t) - 0.5 * t.len() as f64 * std::f64::consts::PI.ln(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The cross-entropy of a softmax layer's output, through that layer's backward pass, is
    /// `(softmax(z) − t) / n` with respect to the logits `z`: checked against finite differences
    /// of the loss, for one-hot targets at each of 4 positions of 6 channels.
    #[test]
    fn cross_entropy_through_the_softmax_layer() {
        let sm = crate::layer::Softmax {
            channels: 6,
            positions: 4,
        };
        let mut rng = Rng::new(5);
        let n = sm.len() * 2;
        let z0: Vec<f32> = (0..n).map(|_| rng.uniform_range(-3.0, 3.0)).collect();
        let mut t = vec![0f32; n];
        for row in 0..2 {
            for p in 0..4 {
                t[row * 24 + rng.below(6) * 4 + p] = 1.0;
            }
        }
        let scale = 1.0 / n as f32;
        let value = |z: &[f32]| -> f64 {
            let mut y = vec![0.0; n];
            sm.forward(z, &mut y);
            Loss::Ce.sum(&y, &t) / n as f64
        };
        let mut y = vec![0.0; n];
        sm.forward(&z0, &mut y);
        let mut dy = vec![0.0; n];
        let total = Loss::Ce.output_grad(Activation::Identity, &y, &t, None, scale, &mut dy);
        assert!((total / n as f64 - value(&z0)).abs() < 1e-6);
        let mut dz = vec![0.0; n];
        sm.backward(&z0, &dy, &mut dz);
        for i in 0..n {
            assert!((dz[i] - (y[i] - t[i]) * scale).abs() < 1e-6, "[{i}] {} vs y − t", dz[i]);
            let (mut p, mut m) = (z0.clone(), z0.clone());
            p[i] += 1e-2;
            m[i] -= 1e-2;
            let numeric = (value(&p) - value(&m)) / 2e-2;
            assert!(
                (numeric - f64::from(dz[i])).abs() < 1e-4,
                "[{i}] numeric {numeric} analytic {}",
                dz[i]
            );
        }
    }

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
