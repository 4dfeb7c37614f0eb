//! The Gaussian code of a variational autoencoder (Kingma & Welling 2014): the layer below
//! writes `[μ | log σ²]` (two halves of `width` values), this layer draws the code
//! `z = μ + σ ε`, `ε ~ N(0, I)` in training (the reparameterization trick) and passes `μ` at
//! inference. Its KL divergence to the prior `N(0, I)` is the layer's own training term:
//!
//! `KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)` per row, weighted by `β` (β-VAE), optionally as
//! `β |KL − C|` toward a capacity target `C` (Burgess et al. 2018), with `β` raised linearly
//! over the first `warmup` epochs. `log σ²` is clamped to [`LOGVAR_RANGE`] (its gradient is
//! zero outside), so `exp` never overflows and a diverging unit cannot make NaNs.
//!
//! Units: the reconstruction loss is a mean per output value, so the KL of a row enters the
//! loss divided by the output width — the loss is then the negative ELBO per value for a
//! Bernoulli decoder (BCE) and for a Gaussian decoder of variance ½ (MSE).

use super::PrevActivation;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// The most importance samples a row may be trained with.
pub const MAX_SAMPLES: usize = 1000;

/// The range `log σ²` is clamped to in training and evaluation.
pub const LOGVAR_RANGE: (f32, f32) = (-30.0, 20.0);

/// The KL term's settings, stored with the layer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prior {
    /// Weight of the KL term (1: the ELBO; >1: β-VAE).
    #[serde(default = "one")]
    pub beta: f32,
    /// Capacity target `C` in nats per row: the term is `β |KL − C|` (0: plain `β KL`).
    #[serde(default)]
    pub capacity: f32,
    /// Epochs over which `β` rises linearly from `β / warmup` to `β` (0: none).
    #[serde(default)]
    pub warmup: usize,
    /// Importance samples of the IWAE objective (Burda et al. 2016): above 1, each row is
    /// trained on `−log (1/k) Σ_i p(x, z_i) / q(z_i | x)` over `k` draws instead of the ELBO
    /// (1: the ELBO, with its KL term in closed form).
    #[serde(default = "one_sample", skip_serializing_if = "is_one")]
    pub samples: usize,
}

fn one() -> f32 {
    1.0
}

fn one_sample() -> usize {
    1
}

fn is_one(k: &usize) -> bool {
    *k == 1
}

impl Default for Prior {
    fn default() -> Self {
        Prior {
            beta: 1.0,
            capacity: 0.0,
            warmup: 0,
            samples: 1,
        }
    }
}

impl Prior {
    /// `β` in (0-based) epoch `epoch`.
    pub fn beta_at(&self, epoch: usize) -> f32 {
        if self.warmup == 0 {
            self.beta
        } else {
            self.beta * ((epoch + 1) as f32 / self.warmup as f32).min(1.0)
        }
    }

    /// The KL term for a batch whose mean KL per row is `mean`, with weight `beta`, and its
    /// derivative with respect to `mean`: `β KL`, or `β |KL − C|` with a capacity target.
    fn term(&self, mean: f64, beta: f32) -> (f64, f64) {
        let (beta, c) = (f64::from(beta), f64::from(self.capacity));
        if c > 0.0 {
            (beta * (mean - c).abs(), beta * (mean - c).signum())
        } else {
            (beta * mean, beta)
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// A message naming the setting that is out of range.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(format!("beta = {} must be finite and ≥ 0", self.beta));
        }
        if !(self.capacity.is_finite() && self.capacity >= 0.0) {
            return Err(format!("capacity = {} must be finite and ≥ 0", self.capacity));
        }
        if !(1..=MAX_SAMPLES).contains(&self.samples) {
            return Err(format!("samples = {} must be from 1 to {MAX_SAMPLES}", self.samples));
        }
        if self.samples > 1 && self.capacity > 0.0 {
            return Err(format!(
                "the IWAE objective (samples = {}) has no KL term to hold at a capacity target",
                self.samples
            ));
        }
        Ok(())
    }
}

/// The reparameterized Gaussian code: `2 * width` values in (`[μ | log σ²]`), `width` out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gaussian {
    /// Width of the code (half the input's width).
    pub width: usize,
    /// The KL term.
    pub prior: Prior,
}

/// `log σ²` clamped, and whether it was inside the range (its gradient flows only then).
fn clamped(lv: f32) -> (f32, bool) {
    let c = lv.clamp(LOGVAR_RANGE.0, LOGVAR_RANGE.1);
    (c, c == lv)
}

/// The KL divergence of `N(μ, σ²)` from `N(0, 1)` for one unit, in f64.
pub fn kl_unit(mu: f32, logvar: f32) -> f64 {
    let (lv, _) = clamped(logvar);
    let (mu, lv) = (f64::from(mu), f64::from(lv));
    0.5 * (mu * mu + lv.exp() - 1.0 - lv)
}

/// What the training forward keeps for the backward pass.
#[derive(Clone, Debug, Default)]
pub(crate) struct Draws {
    /// The noise `ε`, (batch, width).
    pub eps: Vec<f32>,
    /// The KL term's derivative factor for this batch (see [`Gaussian::train_forward`]).
    pub coef: f32,
    /// IWAE: the importance samples each row of data is trained with (consecutive rows of the
    /// batch are its copies), 1 for the ELBO.
    pub iwae: usize,
    /// IWAE: each row's `log q(z|x) − log p(z)` at its draw (constants cancelled).
    pub log_ratio: Vec<f64>,
    /// IWAE: each row's weight on that term in the loss (its importance weight's share).
    pub coefs: Vec<f32>,
}

impl Gaussian {
    /// A code of `width` units with the KL term `prior`.
    pub fn new(width: usize, prior: Prior) -> Self {
        Gaussian { width, prior }
    }

    /// Input width (`2 * width`).
    pub fn n_in(&self) -> usize {
        2 * self.width
    }

    /// The inference forward: `μ`, the first half of each input row.
    pub fn forward(&self, x: &[f32], y: &mut [f32]) {
        let w = self.width;
        for (yr, xr) in y.chunks_exact_mut(w).zip(x.chunks_exact(2 * w)) {
            yr.copy_from_slice(&xr[..w]);
        }
    }

    /// The backward pass of [`Gaussian::forward`] (the mean path): `dμ = dy`, `d log σ² = 0`.
    pub fn backward_mean(&self, dz: &[f32], dx: &mut [f32]) {
        let w = self.width;
        for (dr, gr) in dx.chunks_exact_mut(2 * w).zip(dz.chunks_exact(w)) {
            dr[..w].copy_from_slice(gr);
            dr[w..].fill(0.0);
        }
    }

    /// The training forward on `b` rows: draws `ε` from `rng` into `draws`, writes
    /// `z = μ + σ ε` and returns the KL term (per output value: `scale = 1 / (b · output
    /// width)`), with `β` at `epoch`; with the IWAE objective, 0 (its loss comes later).
    pub(crate) fn train_forward(
        &self,
        x: &[f32],
        y: &mut [f32],
        draws: &mut Draws,
        rng: &mut Rng,
        epoch: usize,
        scale: f64,
    ) -> f64 {
        let w = self.width;
        let b = y.len() / w;
        // The ELBO sums the rows' KL in closed form; IWAE keeps each row's
        // `log q(z|x) − log p(z) = Σ_j (z_j² − ε_j² − log σ_j²) / 2` for after the decoder
        // ([`Gaussian::iwae_weights`]).
        let iwae = draws.iwae > 1;
        let Draws { eps, log_ratio, .. } = &mut *draws;
        log_ratio.clear();
        let mut kl = 0f64;
        for ((yr, xr), er) in y
            .chunks_exact_mut(w)
            .zip(x.chunks_exact(2 * w))
            .zip(eps[..b * w].chunks_exact_mut(w))
        {
            let (mu, lv) = xr.split_at(w);
            let mut f = 0f64;
            for j in 0..w {
                let e = rng.normal();
                er[j] = e;
                let (l, _) = clamped(lv[j]);
                yr[j] = mu[j] + (0.5 * l).exp() * e;
                if iwae {
                    let z = f64::from(yr[j]);
                    f += 0.5 * (z * z - f64::from(e) * f64::from(e) - f64::from(l));
                } else {
                    kl += kl_unit(mu[j], lv[j]);
                }
            }
            if iwae {
                log_ratio.push(f);
            }
        }
        if iwae {
            return 0.0;
        }
        let (term, slope) = self.prior.term(kl / b as f64, self.prior.beta_at(epoch));
        // scale = 1 / (b · D): per row KL / b, per value / D.
        let d = 1.0 / (scale * b as f64);
        draws.coef = (slope * scale) as f32;
        term / d
    }

    /// The IWAE loss once the decoder has run: `log_lik` holds each row's `log p(x|z)`, in
    /// groups of `draws.iwae` consecutive rows (one row of data each). Each row's log weight
    /// is `log p(x|z) − β (log q(z|x) − log p(z))`, and a group's loss is
    /// `−log (1/k) Σ exp(log w)`. Returns the groups' summed loss and, per row, the factor its
    /// reconstruction gradient (taken at the uniform `scale` per value) must be multiplied by,
    /// `k w̃` with `w̃` the row's normalized weight; sets the rows' coefficients on their log
    /// ratio for the backward pass (`β k w̃ scale`).
    pub(crate) fn iwae_weights(&self, log_lik: &[f64], draws: &mut Draws, epoch: usize, scale: f64) -> (f64, Vec<f32>) {
        let k = draws.iwae;
        let beta = f64::from(self.prior.beta_at(epoch));
        let mut total = 0f64;
        let mut factors = Vec::with_capacity(log_lik.len());
        draws.coefs.clear();
        for (ll, f) in log_lik.chunks_exact(k).zip(draws.log_ratio.chunks_exact(k)) {
            let lw: Vec<f64> = ll.iter().zip(f).map(|(l, f)| l - beta * f).collect();
            let m = lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = lw.iter().map(|v| (v - m).exp()).sum();
            total -= m + sum.ln() - (k as f64).ln();
            for v in &lw {
                let share = k as f64 * (v - m).exp() / sum;
                factors.push(share as f32);
                draws.coefs.push((beta * share * scale) as f32);
            }
        }
        (total, factors)
    }

    /// The KL term of rows `x` (`[μ | log σ²]`) with the full `β` (after any warm-up), per
    /// value of an output `output_width` wide: what the validation loss adds to the
    /// reconstruction of the mean path.
    pub fn kl_term(&self, x: &[f32], output_width: usize) -> f64 {
        let w = self.width;
        let rows = (x.len() / (2 * w)).max(1);
        let kl: f64 = x
            .chunks_exact(2 * w)
            .map(|r| (0..w).map(|j| kl_unit(r[j], r[w + j])).sum::<f64>())
            .sum();
        self.prior.term(kl / rows as f64, self.prior.beta).0 / output_width.max(1) as f64
    }

    /// The backward pass of [`Gaussian::train_forward`]: `dx` (rows of `[dμ | d log σ²]`) from
    /// `dz` (rows of `dz`), with the KL term's gradient added, then the layer below's
    /// activation terms (`prev`).
    pub(crate) fn train_backward(
        &self,
        x: &[f32],
        dz: &[f32],
        draws: &Draws,
        dx: &mut [f32],
        prev: &PrevActivation<'_>,
    ) {
        let w = self.width;
        if draws.iwae > 1 {
            // d/dμ of the row's log ratio is z; d/d log σ² is −½ + z ε σ / 2.
            let rows = dx.chunks_exact_mut(2 * w).zip(x.chunks_exact(2 * w));
            let draws_of = dz.chunks_exact(w).zip(draws.eps.chunks_exact(w)).zip(&draws.coefs);
            for ((dr, xr), ((gr, er), &c)) in rows.zip(draws_of) {
                let (mu, lv) = xr.split_at(w);
                let (dmu, dlv) = dr.split_at_mut(w);
                for j in 0..w {
                    let (l, inside) = clamped(lv[j]);
                    let s = (0.5 * l).exp();
                    let z = mu[j] + s * er[j];
                    dmu[j] = gr[j] + c * z;
                    dlv[j] = if inside {
                        (gr[j] + c * z) * er[j] * 0.5 * s - 0.5 * c
                    } else {
                        0.0
                    };
                }
            }
            prev.apply(dx, 0);
            return;
        }
        let c = draws.coef;
        let rows = dx.chunks_exact_mut(2 * w).zip(x.chunks_exact(2 * w));
        for (((dr, xr), gr), er) in rows.zip(dz.chunks_exact(w)).zip(draws.eps.chunks_exact(w)) {
            let (mu, lv) = xr.split_at(w);
            let (dmu, dlv) = dr.split_at_mut(w);
            for j in 0..w {
                dmu[j] = gr[j] + c * mu[j];
                let (l, inside) = clamped(lv[j]);
                dlv[j] = if inside {
                    let s2 = l.exp();
                    gr[j] * er[j] * 0.5 * (0.5 * l).exp() + c * 0.5 * (s2 - 1.0)
                } else {
                    0.0
                };
            }
        }
        prev.apply(dx, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;

    /// The training objective of one batch: a fixed linear read-out of the code,
    /// `Σ r · z` scaled like a loss per value, plus the KL term; with fixed draws.
    fn objective(g: &Gaussian, x: &[f32], r: &[f32], seed: u64, epoch: usize, scale: f64) -> (f64, Vec<f32>, Draws) {
        let b = x.len() / g.n_in();
        let mut y = vec![0.0; b * g.width];
        let mut draws = Draws {
            eps: vec![0.0; b * g.width],
            ..Draws::default()
        };
        let kl = g.train_forward(x, &mut y, &mut draws, &mut Rng::new(seed), epoch, scale);
        let lin: f64 = y.iter().zip(r).map(|(&y, &r)| f64::from(y) * f64::from(r)).sum::<f64>() * scale;
        (lin + kl, y, draws)
    }

    fn check_gradient(prior: Prior, epoch: usize) {
        let (b, w) = (3, 4);
        let g = Gaussian::new(w, prior);
        let mut rng = Rng::new(7);
        let x: Vec<f32> = (0..b * 2 * w).map(|_| rng.uniform_range(-1.5, 1.5)).collect();
        let r: Vec<f32> = (0..b * w).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
        let scale = 1.0 / (b as f64 * 5.0);
        let (_, _, draws) = objective(&g, &x, &r, 11, epoch, scale);
        let dz: Vec<f32> = r.iter().map(|&r| (f64::from(r) * scale) as f32).collect();
        let mut dx = vec![0.0; x.len()];
        let prev = PrevActivation {
            act: Activation::Identity,
            y: &x,
            z: None,
            code: None,
        };
        g.train_backward(&x, &dz, &draws, &mut dx, &prev);
        for i in 0..x.len() {
            let h = 1e-3f32;
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += h;
            xm[i] -= h;
            let fd = (objective(&g, &xp, &r, 11, epoch, scale).0 - objective(&g, &xm, &r, 11, epoch, scale).0)
                / (2.0 * f64::from(h));
            let err = (fd - f64::from(dx[i])).abs();
            assert!(
                err <= 1e-3 * fd.abs().max(1e-2),
                "input {i}: analytic {} vs finite difference {fd}",
                dx[i]
            );
        }
    }

    #[test]
    fn the_elbo_gradient_matches_finite_differences() {
        check_gradient(Prior::default(), 0);
        check_gradient(
            Prior {
                beta: 4.0,
                capacity: 0.0,
                warmup: 3,
                samples: 1,
            },
            1,
        );
    }

    #[test]
    fn the_capacity_target_gradient_matches_finite_differences() {
        // A target above the batch's KL (the slope is −β) and one below it (+β).
        check_gradient(
            Prior {
                beta: 2.0,
                capacity: 50.0,
                warmup: 0,
                samples: 1,
            },
            0,
        );
        check_gradient(
            Prior {
                beta: 2.0,
                capacity: 0.01,
                warmup: 0,
                samples: 1,
            },
            0,
        );
    }

    #[test]
    fn the_kl_is_zero_at_the_prior_and_the_draws_have_its_moments() {
        assert_eq!(kl_unit(0.0, 0.0), 0.0);
        assert!((kl_unit(1.0, 0.0) - 0.5).abs() < 1e-12);
        let g = Gaussian::new(1, Prior::default());
        let n = 20_000;
        // μ = 2, log σ² = ln 0.25 (σ = 0.5).
        let x: Vec<f32> = (0..n).flat_map(|_| [2.0, 0.25f32.ln()]).collect();
        let mut y = vec![0.0; n];
        let mut draws = Draws {
            eps: vec![0.0; n],
            ..Draws::default()
        };
        g.train_forward(&x, &mut y, &mut draws, &mut Rng::new(3), 0, 1.0 / n as f64);
        let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let var = y.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 2.0).abs() < 0.02, "mean {mean}");
        assert!((var - 0.25).abs() < 0.01, "variance {var}");
    }

    #[test]
    fn a_huge_log_variance_is_clamped_not_nan() {
        let g = Gaussian::new(2, Prior::default());
        let x = [0.0, 0.0, 1e6, -1e6];
        let mut y = [0.0; 2];
        let mut draws = Draws {
            eps: vec![0.0; 2],
            ..Draws::default()
        };
        let kl = g.train_forward(&x, &mut y, &mut draws, &mut Rng::new(1), 0, 0.5);
        assert!(kl.is_finite() && y.iter().all(|v| v.is_finite()));
        let mut dx = [0.0; 4];
        let prev = PrevActivation {
            act: Activation::Identity,
            y: &x,
            z: None,
            code: None,
        };
        g.train_backward(&x, &[1.0, 1.0], &draws, &mut dx, &prev);
        assert!(dx.iter().all(|v| v.is_finite()));
        assert_eq!(&dx[2..], &[0.0, 0.0], "no gradient through a clamped log-variance");
    }
}
