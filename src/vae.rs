//! What a variational autoencoder (a model whose code is a [`Gaussian`] layer) adds to the
//! others: its evidence lower bound and an importance-weighted estimate of the
//! log-likelihood of data (Burda et al. 2016), and samples from the prior.
//!
//! The decoder's likelihood follows the loss: Bernoulli for BCE
//! (`log p(x|z) = Σ x log x̂ + (1 − x) log(1 − x̂)`), Gaussian of variance ½ for MSE
//! (`log p(x|z) = −Σ (x − x̂)² − D/2 · log π`), the two the training loss is the negative
//! ELBO of. Both are in the network's units (after the model's scaler). Figures are nats per
//! row.

use crate::error::{Error, Result};
use crate::layer::gaussian::{LOGVAR_RANGE, kl_unit};
use crate::layer::{Gaussian, Layer};
use crate::model::Autoencoder;
use crate::rng::Rng;
use crate::tensor::{Matrix, MatrixRef};

/// The model's Gaussian code layer and its index, or an error saying what is needed.
///
/// # Errors
/// [`Error::Config`] when the model's code is not a Gaussian layer.
pub fn code(model: &Autoencoder) -> Result<(usize, &Gaussian)> {
    let c = model.config().code_layer();
    match model.layers().get(c) {
        Some(Layer::Gaussian(g)) if c > 0 => Ok((c, g)),
        _ => Err(Error::Config(
            "this is not a variational autoencoder (its code is not a Gaussian layer; train with --vae; in Python, vae=True)".into(),
        )),
    }
}

/// One row's bounds, in nats.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct RowBounds {
    /// The evidence lower bound, `E_q[log p(x|z)] − KL`, with `E_q` over the samples.
    pub elbo: f64,
    /// The importance-weighted estimate `log 1/k Σ p(x, z_i) / q(z_i|x)` of `log p(x)`.
    pub log_likelihood: f64,
    /// `KL(q(z|x) ‖ N(0, I))`.
    pub kl: f64,
    /// `−E_q[log p(x|z)]`.
    pub reconstruction: f64,
}

/// Each row's bounds for rows `x` (in the data's units), with `samples` draws of the code per
/// row from `rng` (drawn in order, so the figures do not depend on the thread count).
///
/// # Errors
/// As [`code`]; [`Error::Shape`] for a wrong width; [`Error::Setting`] for no samples.
pub fn bounds<'a>(
    model: &Autoencoder,
    x: impl Into<MatrixRef<'a>>,
    samples: usize,
    rng: &mut Rng,
) -> Result<Vec<RowBounds>> {
    bounds_with(model, x.into(), samples, Draws::One(rng))
}

/// Code samples per row of the `nll` anomaly score.
pub const NLL_SAMPLES: usize = 32;

/// Each row's negative importance-weighted log-likelihood ([`NLL_SAMPLES`] code draws, each
/// row's from a generator seeded by its own values: a row scores the same alone, in any batch
/// and in any file): the `nll` anomaly score, higher = less likely.
///
/// # Errors
/// As [`bounds`].
pub fn nll_scores<'a>(model: &Autoencoder, x: impl Into<MatrixRef<'a>>) -> Result<Vec<f64>> {
    let x = x.into();
    let rngs = (0..x.rows()).map(|r| Rng::new(row_seed(x.row(r)))).collect();
    Ok(bounds_with(model, x, NLL_SAMPLES, Draws::PerRow(rngs))?
        .into_iter()
        .map(|b| -b.log_likelihood)
        .collect())
}

/// FNV-1a over a row's bits.
fn row_seed(row: &[f32]) -> u64 {
    row.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
        v.to_bits()
            .to_le_bytes()
            .iter()
            .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
    })
}

/// Where the code draws come from.
enum Draws<'r> {
    /// One generator, rows in order.
    One(&'r mut Rng),
    /// A generator per row.
    PerRow(Vec<Rng>),
}

fn bounds_with(model: &Autoencoder, x: MatrixRef<'_>, samples: usize, mut draws: Draws<'_>) -> Result<Vec<RowBounds>> {
    use rayon::prelude::*;
    let (c, g) = code(model)?;
    if samples == 0 {
        return Err(Error::setting("samples", samples, "must be positive"));
    }
    model.check_reconstructs()?;
    let (xs, stats) = model.scaled_through(x, 0..c)?;
    let (n, w) = (x.rows(), g.width);
    let loss = model.config().loss;
    let mut rows: Vec<RowBounds> = stats
        .as_slice()
        .chunks_exact(2 * w)
        .map(|row| RowBounds {
            kl: (0..w).map(|j| kl_unit(row[j], row[w + j])).sum(),
            ..Default::default()
        })
        .collect();
    // log w per row and sample, reduced by log-sum-exp at the end (f64).
    let mut logw = vec![0f64; n * samples];
    let mut z = Matrix::zeros(n, w);
    let mut log_q_minus_p = vec![0f64; n];
    for s in 0..samples {
        let rows_in = z
            .as_mut_slice()
            .chunks_exact_mut(w)
            .zip(stats.as_slice().chunks_exact(2 * w));
        for (r, ((zr, row), lq)) in rows_in.zip(log_q_minus_p.iter_mut()).enumerate() {
            let rng = match &mut draws {
                Draws::One(g) => &mut **g,
                Draws::PerRow(v) => &mut v[r],
            };
            let mut acc = 0f64;
            for j in 0..w {
                let lv = row[w + j].clamp(LOGVAR_RANGE.0, LOGVAR_RANGE.1);
                let e = rng.normal();
                let v = row[j] + (0.5 * lv).exp() * e;
                zr[j] = v;
                // log q(z|x) − log p(z): the 2π terms cancel.
                acc += 0.5 * (f64::from(v) * f64::from(v) - f64::from(e) * f64::from(e) - f64::from(lv));
            }
            *lq = acc;
        }
        let out = model.forward_scaled(z.view(), c + 1..model.layers().len());
        rows.par_iter_mut()
            .zip(logw.par_chunks_mut(samples))
            .enumerate()
            .for_each(|(r, (b, lw))| {
                let lp = loss.log_likelihood(out.row(r), xs.view().row(r));
                b.reconstruction -= lp;
                lw[s] = lp - log_q_minus_p[r];
            });
    }
    rows.par_iter_mut().zip(logw.par_chunks(samples)).for_each(|(b, lw)| {
        let m = lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        b.log_likelihood = m + (lw.iter().map(|v| (v - m).exp()).sum::<f64>() / samples as f64).ln();
        b.reconstruction /= samples as f64;
        b.elbo = -b.reconstruction - b.kl;
    });
    Ok(rows)
}

/// Sums over rows of a variational autoencoder's evaluation, added a chunk of rows at a time.
#[derive(Clone, Debug, Default)]
pub struct VaeSums {
    rows: usize,
    sums: RowBounds,
}

/// A variational autoencoder's evaluation: means per row, in nats.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VaeEval {
    /// Rows evaluated.
    pub rows: usize,
    /// The evidence lower bound, `E_q[log p(x|z)] − KL`, with `E_q` over the samples.
    pub elbo: f64,
    /// The importance-weighted estimate `log 1/k Σ p(x, z_i) / q(z_i|x)` of `log p(x)`.
    pub log_likelihood: f64,
    /// `KL(q(z|x) ‖ N(0, I))`.
    pub kl: f64,
    /// `−E_q[log p(x|z)]`.
    pub reconstruction: f64,
    /// Samples per row.
    pub samples: usize,
}

impl VaeSums {
    /// Adds rows `x` (in the data's units), as [`bounds`] measures them.
    ///
    /// # Errors
    /// As [`bounds`].
    pub fn add<'a>(
        &mut self,
        model: &Autoencoder,
        x: impl Into<MatrixRef<'a>>,
        samples: usize,
        rng: &mut Rng,
    ) -> Result<()> {
        for b in bounds(model, x, samples, rng)? {
            self.sums.elbo += b.elbo;
            self.sums.log_likelihood += b.log_likelihood;
            self.sums.kl += b.kl;
            self.sums.reconstruction += b.reconstruction;
            self.rows += 1;
        }
        Ok(())
    }

    /// Rows added so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The means per row.
    pub fn finish(&self, samples: usize) -> VaeEval {
        let n = self.rows.max(1) as f64;
        VaeEval {
            rows: self.rows,
            elbo: self.sums.elbo / n,
            log_likelihood: self.sums.log_likelihood / n,
            kl: self.sums.kl / n,
            reconstruction: self.sums.reconstruction / n,
            samples,
        }
    }
}

/// `n` rows decoded from codes drawn from the prior `N(0, I)` with `rng`, in the data's units.
///
/// # Errors
/// As [`code`].
pub fn sample(model: &Autoencoder, n: usize, rng: &mut Rng) -> Result<Matrix> {
    let (_, g) = code(model)?;
    let z: Vec<f32> = (0..n * g.width).map(|_| rng.normal()).collect();
    let z = Matrix::from_vec(n, g.width, z)?;
    model.decode(&z)
}

/// A latent traversal around `base` (the prior's mean when `None`): the `units` code units
/// that change the decoded row most between `−span` and `span` (the ones the model uses; a VAE
/// leaves others at the prior), each swept evenly over `steps` values. Returns the units, most
/// influential first, and the decoded rows, unit-major (`units × steps`), in the data's units.
///
/// # Errors
/// As [`code`]; [`Error::Shape`] when `base` is not a code.
pub fn traverse(
    model: &Autoencoder,
    base: Option<&[f32]>,
    units: usize,
    steps: usize,
    span: f32,
) -> Result<(Vec<usize>, Matrix)> {
    let (_, g) = code(model)?;
    let w = g.width;
    let zero = vec![0.0; w];
    let base = base.unwrap_or(&zero);
    if base.len() != w {
        return Err(Error::Shape {
            what: "traversal base code".into(),
            expected: format!("{w} values"),
            got: format!("{} values", base.len()),
        });
    }
    // Each unit at −span and +span: how far apart the two decoded rows are.
    let mut ends = Matrix::zeros(2 * w, w);
    for u in 0..w {
        for (k, v) in [-span, span].into_iter().enumerate() {
            let row = ends.row_mut(2 * u + k);
            row.copy_from_slice(base);
            row[u] = v;
        }
    }
    let decoded = model.decode(&ends)?;
    let reach: Vec<f64> = (0..w)
        .map(|u| {
            let (a, b) = (decoded.row(2 * u), decoded.row(2 * u + 1));
            a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum()
        })
        .collect();
    let mut order: Vec<usize> = (0..w).collect();
    order.sort_by(|&a, &b| reach[b].total_cmp(&reach[a]).then(a.cmp(&b)));
    order.truncate(units.min(w));
    let mut z = Matrix::zeros(order.len() * steps, w);
    for (i, &u) in order.iter().enumerate() {
        for s in 0..steps {
            let row = z.row_mut(i * steps + s);
            row.copy_from_slice(base);
            row[u] = if steps > 1 {
                -span + 2.0 * span * s as f32 / (steps - 1) as f32
            } else {
                0.0
            };
        }
    }
    Ok((order, model.decode(&z)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::loss::Loss;
    use crate::model::Mlp;

    /// A decoder that ignores the code (zero weights) makes `p(x|z)` a constant, so the
    /// likelihood is known exactly: the ELBO is it minus the KL, and the importance-weighted
    /// estimate converges to it (`E_q[p(z)/q(z|x)] = 1`).
    #[test]
    fn the_bounds_are_exact_where_the_decoder_ignores_the_code() {
        let mut cfg = Mlp::new(4, 2)
            .with_activations(Activation::Tanh, Activation::Identity, Activation::Sigmoid)
            .with_loss(Loss::Bce);
        cfg.vae = Some(Default::default());
        let mut m = cfg.init(0).unwrap();
        // Encoder: μ = (0.5, −0.3), log σ² = (−0.4, 0.2) for every row (q wide enough for the
        // weights p(z)/q(z|x) to have a finite variance); decoder: x̂ = sigmoid(b).
        let (w, b) = m.layers[0].params_mut();
        w.fill(0.0);
        b.copy_from_slice(&[0.5, -0.3, -0.4, 0.2]);
        let (w, b) = m.layers[2].params_mut();
        w.fill(0.0);
        b.copy_from_slice(&[0.0, 1.0, -2.0, 0.5]);
        let x = Matrix::from_vec(2, 4, vec![1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.5]).unwrap();
        let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
        let y: Vec<f32> = [0.0f32, 1.0, -2.0, 0.5].iter().map(|&v| sig(v)).collect();
        let lp = (-Loss::Bce.sum(&y, x.row(0)) - Loss::Bce.sum(&y, x.row(1))) / 2.0;
        let kl = kl_unit(0.5, -0.4) + kl_unit(-0.3, 0.2);
        let mut s = VaeSums::default();
        s.add(&m, &x, 4000, &mut Rng::new(5)).unwrap();
        let e = s.finish(4000);
        assert_eq!(e.rows, 2);
        assert!((e.kl - kl).abs() < 1e-9, "{} vs {kl}", e.kl);
        assert!((e.elbo - (lp - kl)).abs() < 1e-5, "{} vs {}", e.elbo, lp - kl);
        assert!((e.log_likelihood - lp).abs() < 0.02, "{} vs {lp}", e.log_likelihood);
        // One sample per row: the estimate is the bound with a sampled KL; over many rows its
        // mean is the ELBO.
        let many = Matrix::from_rows(&vec![x.row(0); 4000]).unwrap();
        let mut one = VaeSums::default();
        one.add(&m, &many, 1, &mut Rng::new(5)).unwrap();
        let one = one.finish(1);
        assert!((one.log_likelihood - one.elbo).abs() < 0.05, "{one:?}");
    }

    /// The `nll` score of a row depends on the row alone, not on its batch.
    #[test]
    fn a_rows_likelihood_score_is_its_own() {
        let mut cfg = Mlp::new(5, 2).with_hidden(&[4]).with_loss(Loss::Bce);
        cfg.vae = Some(Default::default());
        let m = cfg.init(2).unwrap();
        let mut rng = Rng::new(4);
        let x = Matrix::from_vec(6, 5, (0..30).map(|_| rng.uniform()).collect()).unwrap();
        let all = nll_scores(&m, &x).unwrap();
        for (r, &score) in all.iter().enumerate() {
            let alone = nll_scores(&m, &x.slice_rows(r, r + 1)).unwrap();
            assert_eq!(alone[0], score);
        }
        assert!(all.iter().all(|s| s.is_finite() && *s > 0.0));
    }

    #[test]
    fn samples_and_traversals_decode_codes_of_the_prior() {
        let mut cfg = Mlp::new(4, 3).with_hidden(&[5]);
        cfg.vae = Some(Default::default());
        let m = cfg.init(1).unwrap();
        let s = sample(&m, 7, &mut Rng::new(1)).unwrap();
        assert_eq!(s.shape(), (7, 4));
        assert_eq!(s, sample(&m, 7, &mut Rng::new(1)).unwrap());
        let (units, t) = traverse(&m, None, 2, 5, 3.0).unwrap();
        assert_eq!(t.shape(), (10, 4));
        // The two units whose sweep moves the output most, most first.
        let (all, _) = traverse(&m, None, 3, 2, 3.0).unwrap();
        assert_eq!(&all[..2], &units[..]);
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 2]);
        // The middle step of each sweep is the base code itself.
        let mid = m.decode(&Matrix::zeros(1, 3)).unwrap();
        assert_eq!(t.row(2), mid.row(0));
        assert_eq!(t.row(7), mid.row(0));
        assert!(traverse(&m, Some(&[0.0; 2]), 2, 5, 3.0).is_err());
        let plain = Mlp::new(4, 3).init(1).unwrap();
        assert!(code(&plain).unwrap_err().to_string().contains("--vae"));
    }
}
