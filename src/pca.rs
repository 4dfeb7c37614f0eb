//! Principal component analysis, the baseline every report compares against.
//!
//! Exact: the covariance is formed in f64 and diagonalized with faer's self-adjoint
//! eigendecomposition. The result is an ordinary [`Autoencoder`] (linear, tied by construction:
//! encoder `W = Uᵀ` with bias `-Uᵀμ`, decoder `U` with bias `μ`), so every command accepts it.

use crate::activation::Activation;
use crate::data::scale::Scaler;
use crate::error::{Error, Result};
use crate::layer::Dense;
use crate::model::{Autoencoder, LayerSpec, Mlp};
use crate::tensor::{Matrix, MatrixRef};
use faer::{Accum, Mat, MatRef, Par, Side};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Columns of the covariance computed per task (fixed: results do not depend on threads).
const GRAM_BLOCK: usize = 32;

/// What PCA found, stored in the model file's provenance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PcaSummary {
    /// Eigenvalues of the covariance (1/n normalization), largest first, all of them.
    pub eigenvalues: Vec<f64>,
    /// Number of components kept.
    pub components: usize,
}

impl PcaSummary {
    /// Total variance (sum of all eigenvalues).
    pub fn total_variance(&self) -> f64 {
        self.eigenvalues.iter().sum()
    }

    /// Fraction of the variance kept by the components.
    pub fn explained_ratio(&self) -> f64 {
        self.eigenvalues[..self.components].iter().sum::<f64>() / self.total_variance().max(f64::MIN_POSITIVE)
    }

    /// Mean squared reconstruction error per sample on the training data (sum of the
    /// eigenvalues left out).
    pub fn train_sse_per_sample(&self) -> f64 {
        self.eigenvalues[self.components..].iter().sum()
    }
}

/// Fits PCA with `k` components on the rows of `x` (after `scaler`), returning the model and the
/// spectrum.
///
/// # Errors
/// [`Error::Config`] for `k` of 0 or more than the number of features; [`Error::InvalidData`]
/// for fewer than 2 rows.
pub fn fit(x: &Matrix, k: usize, scaler: Scaler) -> Result<(Autoencoder, PcaSummary)> {
    sequential_decompositions();
    let (n, d) = x.shape();
    if k == 0 || k > d {
        return Err(Error::setting(
            "components",
            k,
            format!("must be in 1..={d} (the number of features)"),
        ));
    }
    if n < 2 {
        return Err(Error::invalid("PCA data", "needs at least 2 rows"));
    }
    let mut xs = x.clone();
    scaler.transform(&mut xs);
    let mut mean = vec![0.0f64; d];
    for i in 0..n {
        for (m, &v) in mean.iter_mut().zip(xs.row(i)) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centered = Mat::<f64>::from_fn(n, d, |i, j| xs.row(i)[j] as f64 - mean[j]);
    // Covariance in column blocks: each block is a full, sequential reduction over the rows.
    let mut cov = vec![0.0f64; d * d]; // column-major blocks of GRAM_BLOCK columns
    cov.par_chunks_mut(d * GRAM_BLOCK).enumerate().for_each(|(b, out)| {
        let j0 = b * GRAM_BLOCK;
        let cols = out.len() / d;
        let dst = faer::MatMut::from_column_major_slice_mut(out, d, cols);
        faer::linalg::matmul::matmul(
            dst,
            Accum::Replace,
            centered.transpose(),
            centered.subcols(j0, cols),
            1.0 / n as f64,
            Par::Seq,
        );
    });
    let cov = MatRef::from_column_major_slice(&cov, d, d);
    let evd = cov
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::invalid("PCA data", format!("eigendecomposition failed: {e:?}")))?;
    let (u, s) = (evd.U(), evd.S().column_vector());
    // Largest first; clamp tiny negative round-off to 0.
    let eigenvalues: Vec<f64> = (0..d).rev().map(|j| s[j].max(0.0)).collect();
    let mut enc_w = vec![0.0f32; k * d];
    for c in 0..k {
        let col = u.col(d - 1 - c);
        // Sign convention: the largest-magnitude entry is positive (deterministic output).
        let big = (0..d)
            .max_by(|&a, &b| col[a].abs().total_cmp(&col[b].abs()))
            .unwrap_or(0);
        let sign = if col[big] < 0.0 { -1.0 } else { 1.0 };
        for j in 0..d {
            enc_w[c * d + j] = (sign * col[j]) as f32;
        }
    }
    let enc_b: Vec<f32> = (0..k)
        .map(|c| -(0..d).map(|j| enc_w[c * d + j] as f64 * mean[j]).sum::<f64>() as f32)
        .collect();
    let mut dec_w = vec![0.0f32; d * k];
    for c in 0..k {
        for j in 0..d {
            dec_w[j * k + c] = enc_w[c * d + j];
        }
    }
    let dec_b: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let id = Activation::Identity;
    let config = Mlp::new(d, k).with_activations(id, id, id).config();
    let layers = vec![
        Dense::from_parts(d, k, id, enc_w, enc_b),
        Dense::from_parts(k, d, id, dec_w, dec_b),
    ];
    let model = Autoencoder::from_parts(config, layers, scaler)?;
    Ok((
        model,
        PcaSummary {
            eigenvalues,
            components: k,
        },
    ))
}

/// faer's decompositions (eigen, QR, SVD) run on its global parallelism, which defaults to
/// every thread of the current pool, and their sums then depend on the thread count. hourglass
/// runs them sequentially (its GEMMs pass `Par::Seq` themselves), so PCA and ITQ give the
/// same bits on any number of threads.
fn sequential_decompositions() {
    faer::set_global_parallelism(Par::Seq);
}

/// What [`build`] makes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PcaSettings {
    /// Components kept (the code width).
    pub components: usize,
    /// Feature scaling fitted before PCA (PCA always centres).
    pub scaling: crate::data::scale::Scaling,
    /// Rotate the code by ITQ: `(rounds, seed)`.
    pub itq: Option<(usize, u64)>,
}

/// PCA of rows `x` as a model: scaled by `settings.scaling`, rotated by ITQ when asked, and
/// with `on`, fitted on the codes of that autoencoder and stacked on it (one model that takes
/// raw data).
///
/// # Errors
/// As [`fit`], [`itq`] and [`stack`]; [`Error::Setting`] for a scaling with `on` (codes are
/// not scaled).
pub fn build<'a>(
    x: impl Into<MatrixRef<'a>>,
    settings: &PcaSettings,
    on: Option<&Autoencoder>,
) -> Result<(Autoencoder, PcaSummary)> {
    let x = x.into();
    let x = match on {
        Some(base) => {
            if settings.scaling != crate::data::scale::Scaling::None {
                return Err(Error::setting(
                    "scaling",
                    settings.scaling,
                    "PCA on an autoencoder's codes takes them unscaled (none)",
                ));
            }
            base.encode(x)?
        }
        None => x.to_matrix(),
    };
    let x = &x;
    let scaler = Scaler::fit(settings.scaling, x);
    let (mut model, summary) = fit(x, settings.components, scaler)?;
    if let Some((rounds, seed)) = settings.itq {
        model = itq(&model, x, rounds, seed)?;
    }
    if let Some(base) = on {
        model = stack(base, &model)?;
    }
    Ok((model, summary))
}

/// Iterative quantization (Gong & Lazebnik): rotates a PCA model's code so that its signs lose
/// as little as possible, `min ‖sign(VR) − VR‖` over orthogonal `R`, alternating the signs and an
/// orthogonal Procrustes step for `iterations` rounds from a seeded random rotation. The result
/// is the same linear autoencoder (same subspace and reconstructions) with a rotated code, whose
/// signs are the ITQ hash.
///
/// # Errors
/// [`Error::Shape`] if `x` does not fit the model; [`Error::InvalidData`] if an SVD fails.
pub fn itq(pca: &Autoencoder, x: &Matrix, iterations: usize, seed: u64) -> Result<Autoencoder> {
    sequential_decompositions();
    let v = pca.encode(x)?;
    let (n, k) = v.shape();
    let vm = Mat::<f64>::from_fn(n, k, |i, j| v.row(i)[j] as f64);
    let mut rng = crate::rng::Rng::new(seed);
    let g = Mat::<f64>::from_fn(k, k, |_, _| rng.normal() as f64);
    let mut r = g.qr().compute_thin_Q();
    let mut b = Mat::<f64>::zeros(n, k);
    for _ in 0..iterations {
        let mut vr = Mat::<f64>::zeros(n, k);
        faer::linalg::matmul::matmul(vr.as_mut(), Accum::Replace, vm.as_ref(), r.as_ref(), 1.0, Par::Seq);
        for j in 0..k {
            for i in 0..n {
                b[(i, j)] = if vr[(i, j)] >= 0.0 { 1.0 } else { -1.0 };
            }
        }
        let mut m = Mat::<f64>::zeros(k, k);
        faer::linalg::matmul::matmul(m.as_mut(), Accum::Replace, vm.transpose(), b.as_ref(), 1.0, Par::Seq);
        let svd = m
            .svd()
            .map_err(|e| Error::invalid("ITQ", format!("SVD failed: {e:?}")))?;
        r = svd.U() * svd.V().transpose();
    }
    // code' = Rᵀ code: encoder W' = Rᵀ W, b' = Rᵀ b; decoder D' = D R.
    let dense = pca
        .dense_layers()
        .filter(|l| l.len() == 2)
        .ok_or_else(|| Error::Config("ITQ rotates a linear (PCA) model".into()))?;
    let (enc, dec) = (dense[0], dense[1]);
    let d = enc.n_in;
    let mut ew = vec![0f32; k * d];
    let mut eb = vec![0f32; k];
    for c in 0..k {
        for a in 0..k {
            let rac = r[(a, c)];
            eb[c] += (rac * enc.bias[a] as f64) as f32;
            for j in 0..d {
                ew[c * d + j] += (rac * enc.weight[a * d + j] as f64) as f32;
            }
        }
    }
    let mut dw = vec![0f32; d * k];
    for j in 0..d {
        for c in 0..k {
            dw[j * k + c] = ew[c * d + j];
        }
    }
    let id = Activation::Identity;
    let layers = vec![
        Dense::from_parts(d, k, id, ew, eb),
        Dense::from_parts(k, d, id, dw, dec.bias.clone()),
    ];
    Autoencoder::from_parts(pca.config().clone(), layers, pca.scaler().clone())
}

/// Stacks a linear model (PCA or ITQ, fitted on `ae`'s codes) on top of `ae`: the encoder
/// becomes `ae`'s encoder followed by the linear code, the decoder the linear decoder followed
/// by `ae`'s decoder. `ae`'s code layer becomes a hidden layer (its regularizer moves along),
/// and the linear decoder's output takes `ae`'s code activation (for ReLU codes, negative
/// reconstructions are clipped at 0).
///
/// # Errors
/// [`Error::Config`] when the models are not dense or the widths do not fit.
pub fn stack(ae: &Autoencoder, linear: &Autoencoder) -> Result<Autoencoder> {
    let a = ae.config();
    let (Some(dense), Some(lin)) = (ae.dense_layers(), linear.dense_layers()) else {
        return Err(Error::Config(
            "stacking needs dense models; this autoencoder has other kinds of layers".into(),
        ));
    };
    if linear.input_dim() != ae.code_dim() || lin.len() != 2 {
        return Err(Error::Config(format!(
            "the linear model reads {} values, the autoencoder's code has {}",
            linear.input_dim(),
            ae.code_dim()
        )));
    }
    if !linear.scaler().is_identity() {
        return Err(Error::Config(
            "fit the linear model on the codes without scaling to stack it".into(),
        ));
    }
    let act = a.code_activation();
    let n_enc = a.encoder_layers();
    let dense_spec = |units, act| LayerSpec::Dense {
        units,
        activation: Some(act),
        name: None,
    };
    let mut cfg = a.clone();
    cfg.arch
        .encoder
        .push(dense_spec(linear.code_dim(), Activation::Identity));
    cfg.arch.decoder.insert(0, dense_spec(ae.code_dim(), act));
    // Decoder layers move up by the two new layers; encoder layers keep their index.
    cfg.regularizers = a
        .regularizers
        .iter()
        .map(|(&l, r)| (if l < n_enc { l } else { l + 2 }, r.clone()))
        .collect();
    let mut layers: Vec<Dense> = dense[..n_enc].iter().map(|&l| l.clone()).collect();
    layers.push(lin[0].clone());
    let lin_dec = lin[1];
    layers.push(Dense::from_parts(
        lin_dec.n_in,
        lin_dec.n_out,
        act,
        lin_dec.weight.clone(),
        lin_dec.bias.clone(),
    ));
    layers.extend(dense[n_enc..].iter().map(|&l| l.clone()));
    Autoencoder::from_parts(cfg, layers, ae.scaler().clone())
}

/// Cosines of the principal angles between the column spaces of `a` and `b` (both `d x k`,
/// row-major), largest first: 1 for identical subspaces.
///
/// # Panics
/// If the shapes differ.
#[track_caller]
pub fn subspace_cosines(a: &[f32], b: &[f32], d: usize, k: usize) -> Vec<f64> {
    assert_eq!(a.len(), d * k);
    assert_eq!(b.len(), d * k);
    let q = |m: &[f32]| {
        let mat = Mat::<f64>::from_fn(d, k, |i, j| m[i * k + j] as f64);
        mat.qr().compute_thin_Q()
    };
    let (qa, qb) = (q(a), q(b));
    let prod = qa.transpose() * &qb;
    let sv = prod.singular_values().expect("SVD of a small matrix");
    let mut s: Vec<f64> = sv.into_iter().map(|v| v.min(1.0)).collect();
    s.sort_by(|x, y| y.total_cmp(x));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Data with 4 strong directions (variances 25, 16, 9, 4) plus small isotropic noise.
    fn gapped(n: usize, d: usize, seed: u64) -> Matrix {
        let mut rng = Rng::new(seed);
        let mut basis = Rng::new(99);
        let dirs: Vec<f32> = (0..4 * d).map(|_| basis.normal()).collect();
        let mut x = Matrix::zeros(n, d);
        for i in 0..n {
            let coef: Vec<f32> = [5.0, 4.0, 3.0, 2.0].iter().map(|s| s * rng.normal()).collect();
            for j in 0..d {
                let v: f32 = (0..4).map(|c| coef[c] * dirs[c * d + j] / (d as f32).sqrt()).sum();
                x.row_mut(i)[j] = v + 0.5 * rng.normal() + 3.0;
            }
        }
        x
    }

    #[test]
    fn itq_rotates_the_code_lowers_quantization_loss_and_keeps_reconstructions() {
        let x = gapped(1500, 12, 5);
        let (pca, _) = fit(&x, 4, Scaler::default()).unwrap();
        let rot = itq(&pca, &x, 50, 1).unwrap();
        let quant = |m: &Autoencoder| {
            let v = m.encode(&x).unwrap();
            v.as_slice()
                .iter()
                .map(|&a| (a.abs() as f64 - 1.0).powi(2))
                .sum::<f64>()
        };
        // ‖sign(V) − V‖² = Σ (|v| − 1)²: ITQ's objective, at most the unrotated one.
        assert!(quant(&rot) < quant(&pca), "{} vs {}", quant(&rot), quant(&pca));
        let (a, b) = (pca.reconstruct(&x).unwrap(), rot.reconstruct(&x).unwrap());
        let diff = a
            .as_slice()
            .iter()
            .zip(b.as_slice())
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-3, "{diff}");
        assert_eq!(itq(&pca, &x, 50, 1).unwrap(), rot);
    }

    #[test]
    fn stacked_itq_encodes_like_the_two_models_in_turn() {
        let x = gapped(300, 12, 6);
        let ae = Mlp::new(12, 8)
            .with_hidden(&[10])
            .with_activations(Activation::Relu, Activation::Relu, Activation::Identity)
            .init(2)
            .unwrap();
        let codes = ae.encode(&x).unwrap();
        let (p, _) = fit(&codes, 3, Scaler::default()).unwrap();
        let lin = itq(&p, &codes, 10, 1).unwrap();
        let stacked = stack(&ae, &lin).unwrap();
        assert_eq!(stacked.encoder_layers(), 3);
        assert_eq!((stacked.layers()[0].n_out(), stacked.layers()[1].n_out()), (10, 8));
        let (a, b) = (stacked.encode(&x).unwrap(), lin.encode(&codes).unwrap());
        assert!(a.as_slice().iter().zip(b.as_slice()).all(|(u, v)| (u - v).abs() < 1e-4));
        assert_eq!(stacked.reconstruct(&x).unwrap().shape(), (300, 12));
    }

    #[test]
    fn pca_reconstruction_error_is_the_sum_of_trailing_eigenvalues() {
        let x = gapped(2000, 12, 1);
        let (model, pca) = fit(&x, 4, Scaler::default()).unwrap();
        let r = model.reconstruct(&x).unwrap();
        let sse = crate::metrics::reconstruction(&x, &r).sse_per_sample;
        assert!(
            (sse - pca.train_sse_per_sample()).abs() < 1e-3 * sse.max(1e-3),
            "{sse} vs {}",
            pca.train_sse_per_sample()
        );
        assert!(pca.explained_ratio() > 0.9, "{}", pca.explained_ratio());
        assert!(pca.eigenvalues.windows(2).all(|w| w[0] >= w[1]));
        // Components are orthonormal.
        let w = model.layers()[0].params().0;
        for a in 0..4 {
            for b in 0..4 {
                let dot: f64 = (0..12).map(|j| w[a * 12 + j] as f64 * w[b * 12 + j] as f64).sum();
                assert!((dot - if a == b { 1.0 } else { 0.0 }).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn pca_does_not_depend_on_thread_count() {
        let x = gapped(500, 70, 3);
        let one = crate::with_threads(Some(1), || fit(&x, 5, Scaler::default()).unwrap().0).unwrap();
        let two = crate::with_threads(Some(2), || fit(&x, 5, Scaler::default()).unwrap().0).unwrap();
        assert_eq!(one, two);
    }

    #[test]
    fn a_linear_autoencoder_finds_the_pca_subspace() {
        use crate::train::{TrainConfig, fit as train};
        let x = gapped(3000, 12, 2);
        let (pca_model, pca) = fit(&x, 4, Scaler::default()).unwrap();
        let id = Activation::Identity;
        let mut ae = Mlp::new(12, 4).with_activations(id, id, id).init(5).unwrap();
        let cfg = TrainConfig {
            epochs: 150,
            batch_size: 32,
            lr: 1e-2,
            schedule: crate::optim::Schedule::Cosine { min_factor: 0.0 },
            ..TrainConfig::default()
        };
        train(&mut ae, &x, None, &cfg, |_| {}).unwrap();
        let sse_ae = crate::metrics::reconstruction(&x, &ae.reconstruct(&x).unwrap()).sse_per_sample;
        let sse_pca = pca.train_sse_per_sample();
        assert!(sse_ae < 1.01 * sse_pca, "AE {sse_ae} vs PCA {sse_pca}");
        let cos = subspace_cosines(ae.layers()[1].params().0, pca_model.layers()[1].params().0, 12, 4);
        assert!(cos[3] > 0.999, "smallest cosine {}", cos[3]);
    }
}
