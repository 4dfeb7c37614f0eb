//! Training: mini-batch gradient descent with validation, early stopping and divergence checks.

use crate::data::scale::{Scaler, Scaling};
use crate::error::{Error, Result};
use crate::kernels::{self, Precision, ROW_BLOCK};
use crate::layer::{CodeGrad, PrevActivation};
use crate::loss::Loss;
use crate::model::Autoencoder;
use crate::noise::{self, Noise};
use crate::optim::{Optimizer, OptimizerConfig, Schedule};
use crate::rng::Rng;
use crate::tensor::Matrix;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::time::Instant;

/// RNG stream for the per-epoch shuffle.
const STREAM_SHUFFLE: u64 = 0x5348;
/// RNG stream for the validation split.
const STREAM_SPLIT: u64 = 0x5350;
/// RNG stream for input corruption.
const STREAM_NOISE: u64 = 0x4e4f;
/// RNG stream for code dropout.
const STREAM_DROPOUT: u64 = 0x4452;

/// How to train. Plain data, validated once, saved in the model file as provenance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Rows per mini-batch.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f32,
    /// Optimizer and its hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Epochs of linear warm-up.
    pub warmup_epochs: usize,
    /// Clip the gradient's global L2 norm to this value.
    pub clip_norm: Option<f32>,
    /// Fraction of the training rows held out for validation when no validation set is given.
    pub valid_fraction: f32,
    /// Stop after this many epochs without a better validation loss, and restore the best weights.
    pub patience: Option<usize>,
    /// Seed of the shuffles and the validation split.
    pub seed: u64,
    /// Feature scaling fitted on the training rows.
    pub scaling: Scaling,
    /// Arithmetic of the training GEMMs (f32 by default; bf16 on AMX is opt-in).
    #[serde(default)]
    pub precision: Precision,
    /// Input corruption (denoising); the loss compares with the clean input.
    #[serde(default)]
    pub noise: Vec<Noise>,
    /// Image shape `(height, width, channels)` of the rows, for image-shaped noise.
    #[serde(default)]
    pub image_shape: Option<(usize, usize, usize)>,
    /// Rescale each unit's incoming weights to at most this L2 norm after every step.
    #[serde(default)]
    pub max_norm: Option<f32>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 256,
            lr: 1e-3,
            optimizer: OptimizerConfig::adam(0.0),
            schedule: Schedule::Constant,
            warmup_epochs: 0,
            clip_norm: None,
            valid_fraction: 0.0,
            patience: None,
            seed: 0,
            scaling: Scaling::None,
            precision: Precision::F32,
            noise: Vec::new(),
            image_shape: None,
            max_norm: None,
        }
    }
}

impl TrainConfig {
    /// Checks ranges and combinations.
    ///
    /// # Errors
    /// [`Error::Config`] naming the problem.
    pub fn validate(&self, has_valid_set: bool) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.epochs == 0 || self.batch_size == 0 {
            return bad(format!(
                "epochs and batch size must be positive, got {} and {}",
                self.epochs, self.batch_size
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("learning rate must be positive, got {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.valid_fraction) {
            return bad(format!(
                "validation fraction must be in [0, 1), got {}",
                self.valid_fraction
            ));
        }
        if let Some(c) = self.clip_norm
            && !(c > 0.0)
        {
            return bad(format!("gradient clipping norm must be positive, got {c}"));
        }
        if self.patience.is_some() && !has_valid_set && self.valid_fraction == 0.0 {
            return bad("early stopping (patience) needs validation data: give a validation set or a fraction".into());
        }
        if let Some(c) = self.max_norm
            && !(c > 0.0)
        {
            return bad(format!("--max-norm must be positive, got {c}"));
        }
        if let Schedule::Step { every, gamma } = self.schedule
            && (every == 0 || !(gamma > 0.0))
        {
            return bad(format!(
                "step schedule needs every > 0 and gamma > 0, got {every}, {gamma}"
            ));
        }
        self.optimizer.validate()
    }
}

/// What happened in one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (in scaled units, as optimized).
    pub train_loss: f64,
    /// Validation loss after the epoch.
    pub valid_loss: Option<f64>,
    /// Learning rate at the epoch's last step.
    pub lr: f32,
    /// Wall time of the epoch's training steps.
    pub seconds: f64,
    /// Training throughput.
    pub samples_per_sec: f64,
    /// Whether this epoch has the best validation loss so far.
    pub best: bool,
    /// Code sparsity on the validation data (when there is validation data).
    #[serde(default)]
    pub code: Option<crate::metrics::CodeMetrics>,
}

/// Progress reported to the caller of [`fit`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// An epoch starts.
    EpochStart {
        /// 1-based epoch.
        epoch: usize,
        /// Total epochs planned.
        epochs: usize,
        /// Batches in this epoch.
        batches: usize,
    },
    /// A batch finished.
    Batch {
        /// 1-based batch.
        batch: usize,
        /// Its loss.
        loss: f64,
    },
    /// An epoch finished.
    EpochEnd(&'a EpochStats),
}

/// The outcome of [`fit`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Per-epoch statistics.
    pub history: Vec<EpochStats>,
    /// Epoch whose weights the model holds.
    pub best_epoch: usize,
    /// Whether early stopping ended training.
    pub stopped_early: bool,
    /// Rows used for training and validation.
    pub train_rows: usize,
    /// Rows used for validation.
    pub valid_rows: usize,
    /// Total wall time, seconds.
    pub seconds: f64,
}

/// Buffers for one training step, sized once for the largest batch.
struct Workspace {
    /// The clean batch (the loss target).
    x: Vec<f32>,
    /// The corrupted batch fed to the network (empty without noise).
    x_in: Vec<f32>,
    acts: Vec<Vec<f32>>,
    pre: Vec<Vec<f32>>,
    dz: Vec<Vec<f32>>,
    dw: Vec<Vec<f32>>,
    db: Vec<Vec<f32>>,
    loss_blocks: Vec<f64>,
    /// What a layer's forward pass keeps for its backward pass (max-pooling argmax).
    aux: Vec<Vec<u32>>,
    /// The code before the top-k/dropout mask, and the mask (empty without one).
    code_raw: Vec<Vec<f32>>,
    code_mask: Vec<Vec<f32>>,
    /// Mean code activation per unit (KL sparsity).
    rho_hat: Vec<Vec<f32>>,
    /// Scratch for the top-k selection.
    topk_idx: Vec<usize>,
}

impl Workspace {
    fn new(model: &Autoencoder, batch: usize, noisy: bool) -> Self {
        let reg = |l: usize| model.config.regularizer_at(l);
        let per_layer = |want: &dyn Fn(&crate::model::CodeRegularizer) -> bool, rows: usize| -> Vec<Vec<f32>> {
            model
                .layers
                .iter()
                .enumerate()
                .map(|(l, layer)| {
                    if reg(l).is_some_and(want) {
                        vec![0.0; rows * layer.n_out()]
                    } else {
                        Vec::new()
                    }
                })
                .collect()
        };
        let last = model.layers.len() - 1;
        let keep_pre = |i: usize, l: &crate::layer::Layer| {
            l.activation().needs_preactivation()
                || (i == last && model.config.loss.needs_output_preactivation(l.activation()))
        };
        Workspace {
            x: vec![0.0; batch * model.config.output_width()],
            x_in: if noisy {
                vec![0.0; batch * model.config.input_dim]
            } else {
                Vec::new()
            },
            acts: model.layers.iter().map(|l| vec![0.0; batch * l.n_out()]).collect(),
            pre: model
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    if keep_pre(i, l) {
                        vec![0.0; batch * l.n_out()]
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
            dz: model.layers.iter().map(|l| vec![0.0; batch * l.n_out()]).collect(),
            dw: model.layers.iter().map(|l| vec![0.0; l.params().0.len()]).collect(),
            db: model.layers.iter().map(|l| vec![0.0; l.params().1.len()]).collect(),
            aux: model.layers.iter().map(|l| vec![0; batch * l.aux_len()]).collect(),
            loss_blocks: vec![0.0; batch.div_ceil(ROW_BLOCK)],
            code_raw: per_layer(&|r| r.masks(), batch),
            code_mask: per_layer(&|r| r.masks(), batch),
            rho_hat: per_layer(&|r| r.kl.is_some(), 1),
            topk_idx: Vec::new(),
        }
    }
}

/// Per-step settings of the code regularizers.
pub(crate) struct CodeStep<'r> {
    /// 0-based epoch (for the top-k schedule).
    pub epoch: usize,
    /// Draws of the code dropout.
    pub rng: &'r mut Rng,
}

/// Builds the mask (top-k, dropout) of regularized layer `c` from its raw output `y`, writes
/// `h = y * mask` and returns the penalty (L1 and KL) of `h`, averaged per sample.
fn regularize_code(model: &Autoencoder, ws: &mut Workspace, b: usize, c: usize, step: &mut CodeStep<'_>) -> f64 {
    let Some(reg) = model.config.regularizer_at(c) else {
        return 0.0;
    };
    let width = model.layers[c].n_out();
    let h = &mut ws.acts[c][..b * width];
    if reg.masks() {
        let (raw, mask) = (&mut ws.code_raw[c][..b * width], &mut ws.code_mask[c][..b * width]);
        raw.copy_from_slice(h);
        mask.fill(1.0);
        if let Some(k) = reg.topk.map(|t| t.k_at(step.epoch)) {
            for (m, row) in mask.chunks_exact_mut(width).zip(raw.chunks_exact(width)) {
                for &j in crate::model::dropped_by_top_k(row, k, &mut ws.topk_idx) {
                    m[j] = 0.0;
                }
            }
        }
        if reg.dropout > 0.0 {
            let keep = 1.0 / (1.0 - reg.dropout);
            for m in mask.iter_mut() {
                *m *= if step.rng.uniform() < reg.dropout { 0.0 } else { keep };
            }
        }
        if reg.binary == Some(crate::model::BinaryCode::StraightThrough) {
            // Forward: the 0/1 code; backward: through the sigmoid as if unthresholded (the
            // derivative uses `raw`, the mask is 1).
            h.iter_mut().for_each(|v| *v = if *v > 0.5 { 1.0 } else { 0.0 });
        }
        h.iter_mut().zip(mask.iter()).for_each(|(h, m)| *h *= m);
    }
    if let Some(crate::model::BinaryCode::Noise { sigma }) = reg.binary {
        // h = sigmoid(z + sigma * e), from h = sigmoid(z); the sigmoid derivative of the backward
        // pass then uses the noisy h, which is the derivative at z + sigma * e.
        for v in h.iter_mut() {
            let p = v.clamp(1e-7, 1.0 - 1e-7);
            let z = (p / (1.0 - p)).ln() + sigma * step.rng.normal();
            *v = 1.0 / (1.0 + (-z).exp());
        }
    }
    let mut penalty = 0.0f64;
    if reg.l1 > 0.0 {
        penalty += reg.l1 as f64 * h.iter().map(|v| v.abs() as f64).sum::<f64>() / b as f64;
    }
    if let Some(kl) = reg.kl {
        let rho_hat = &mut ws.rho_hat[c];
        kernels::column_sums(h, rho_hat);
        let (rho, eps) = (kl.rho as f64, 1e-6f64);
        for r in rho_hat.iter_mut() {
            *r = (*r / b as f32).clamp(eps as f32, 1.0 - eps as f32);
            let q = *r as f64;
            penalty += kl.beta as f64 * (rho * (rho / q).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - q)).ln());
        }
    }
    penalty
}

/// One forward + backward pass on the first `b` rows of `ws.x`; returns the mean loss
/// (reconstruction plus code penalties).
fn forward_backward(
    model: &Autoencoder,
    ws: &mut Workspace,
    b: usize,
    precision: Precision,
    step: &mut CodeStep<'_>,
) -> f64 {
    let d = model.config.input_dim;
    let d_out = model.config.output_width();
    let n_layers = model.layers.len();
    let mut penalty = 0.0;
    for l in 0..n_layers {
        let layer = &model.layers[l];
        // The network sees the corrupted batch when there is noise; the loss compares with ws.x.
        let x_in = if ws.x_in.is_empty() {
            &ws.x[..b * d]
        } else {
            &ws.x_in[..b * d]
        };
        let (before, after) = ws.acts.split_at_mut(l);
        let input = if l == 0 {
            x_in
        } else {
            &before[l - 1][..b * layer.n_in()]
        };
        let out = &mut after[0][..b * layer.n_out()];
        let pre = if ws.pre[l].is_empty() {
            None
        } else {
            Some(&mut ws.pre[l][..b * layer.n_out()])
        };
        let aux = &mut ws.aux[l][..b * layer.aux_len()];
        layer.forward(input, out, pre, aux, precision);
        if model.config.regularizer_at(l).is_some() {
            penalty += regularize_code(model, ws, b, l, step);
        }
    }
    let x_in = if ws.x_in.is_empty() {
        &ws.x[..b * d]
    } else {
        &ws.x_in[..b * d]
    };
    // Loss and its gradient with respect to the output pre-activation, per block of rows.
    let last = n_layers - 1;
    let out_layer = &model.layers[last];
    let loss = model.config.loss;
    let scale = 1.0 / (b * d_out) as f32;
    let (y, t) = (&ws.acts[last][..b * d_out], &ws.x[..b * d_out]);
    let z = if ws.pre[last].is_empty() {
        None
    } else {
        Some(&ws.pre[last][..b * d_out])
    };
    let n_blocks = b.div_ceil(ROW_BLOCK);
    ws.dz[last][..b * d_out]
        .par_chunks_mut(ROW_BLOCK * d_out)
        .zip(ws.loss_blocks[..n_blocks].par_iter_mut())
        .enumerate()
        .for_each(|(i, (dz, sum))| {
            let r = i * ROW_BLOCK * d_out..i * ROW_BLOCK * d_out + dz.len();
            *sum = loss.output_grad(
                out_layer.activation(),
                &y[r.clone()],
                &t[r.clone()],
                z.map(|z| &z[r]),
                scale,
                dz,
            );
        });
    let total: f64 = ws.loss_blocks[..n_blocks].iter().sum();
    // Backward, top layer first.
    for l in (0..n_layers).rev() {
        let layer = &model.layers[l];
        let (dz_below, dz_here) = ws.dz.split_at_mut(l);
        let dz = &dz_here[0][..b * layer.n_out()];
        let input = if l == 0 {
            x_in
        } else {
            &ws.acts[l - 1][..b * layer.n_in()]
        };
        let dx = if l == 0 {
            None
        } else {
            let prev = &model.layers[l - 1];
            let n = b * prev.n_out();
            let z = if ws.pre[l - 1].is_empty() {
                None
            } else {
                Some(&ws.pre[l - 1][..n])
            };
            let reg = model.config.regularizer_at(l - 1);
            let masked = reg.is_some_and(|r| r.masks());
            let code = reg.map(|reg| CodeGrad {
                h: &ws.acts[l - 1][..n],
                mask: masked.then(|| &ws.code_mask[l - 1][..n]),
                l1: reg.l1 / b as f32,
                kl: reg.kl.map(|kl| (kl.rho, kl.beta / b as f32, &ws.rho_hat[l - 1][..])),
            });
            // The activation derivative needs the code before the mask.
            let y = if masked {
                &ws.code_raw[l - 1][..n]
            } else {
                &ws.acts[l - 1][..n]
            };
            Some((
                &mut dz_below[l - 1][..n],
                PrevActivation {
                    act: prev.activation(),
                    y,
                    z,
                    code,
                },
            ))
        };
        let aux = &ws.aux[l][..b * layer.aux_len()];
        layer.backward(input, dz, &mut ws.dw[l], &mut ws.db[l], dx, aux, precision);
    }
    total / (b * d_out) as f64 + penalty
}

/// Mean loss of the model on already-scaled rows.
pub(crate) fn mean_loss_scaled(model: &Autoencoder, x: &Matrix) -> f64 {
    let out = model.forward_scaled(x, 0..model.layers.len());
    model.config.loss.sum(out.as_slice(), x.as_slice()) / (x.rows() * x.cols()).max(1) as f64
}

fn check_data(model: &Autoencoder, x: &Matrix, what: &str) -> Result<()> {
    if x.rows() == 0 {
        return Err(Error::invalid(what, "no rows"));
    }
    if x.cols() != model.config.input_dim {
        return Err(Error::Shape {
            what: what.into(),
            expected: format!("{} columns (the model's input width)", model.config.input_dim),
            got: format!("{} columns", x.cols()),
        });
    }
    if let Some((r, c)) = x.find_non_finite() {
        return Err(Error::invalid(
            what,
            format!("non-finite value at row {}, column {}", r + 1, c + 1),
        ));
    }
    Ok(())
}

/// Trains `model` on the rows of `data`.
///
/// Fits the scaler of `config.scaling` on the training rows (stored in the model), holds out
/// `valid_fraction` of the rows when `valid` is `None`, shuffles every epoch from the seed,
/// and reports progress through `on_event`. With `patience`, stops when the validation loss
/// has not improved for that many epochs and restores the best weights.
///
/// The same seed gives a bit-identical model for any number of threads (run it inside
/// [`with_threads`](crate::with_threads) to choose the count).
///
/// # Errors
/// [`Error::Config`] for bad settings, [`Error::Shape`]/[`Error::InvalidData`] for unusable data,
/// [`Error::Diverged`] when a batch loss is NaN or infinite (the model then holds the weights of
/// the last complete epoch).
pub fn fit(
    model: &mut Autoencoder,
    data: &Matrix,
    valid: Option<&Matrix>,
    config: &TrainConfig,
    on_event: impl FnMut(&Event<'_>),
) -> Result<TrainReport> {
    fit_impl(model, data, None, valid.map(|v| (v, None)), config, on_event)
}

/// Trains `model` to map each row of `data` to the same row of `target` (paired data: noisy →
/// clean images, images → segmentation masks) instead of to itself. `valid` pairs validation
/// inputs with their targets. Otherwise as [`fit`]; the inputs are not scaled (targets are
/// compared in their own units).
///
/// # Errors
/// As [`fit`], and [`Error::Shape`] when the targets do not pair with the inputs (another row
/// count or width), [`Error::Config`] for a scaling other than none.
pub fn fit_paired(
    model: &mut Autoencoder,
    data: &Matrix,
    target: &Matrix,
    valid: Option<(&Matrix, &Matrix)>,
    config: &TrainConfig,
    on_event: impl FnMut(&Event<'_>),
) -> Result<TrainReport> {
    if config.scaling != Scaling::None {
        return Err(Error::Config(
            "training on paired targets takes unscaled inputs (--scale none)".into(),
        ));
    }
    let out = model.config.output_width();
    let pair = |x: &Matrix, t: &Matrix, what: &str| -> Result<()> {
        if t.rows() != x.rows() || t.cols() != out {
            return Err(Error::Shape {
                what: format!("{what} targets"),
                expected: format!("{} rows (as the inputs) x {out} columns (the model's output)", x.rows()),
                got: format!("{} rows x {} columns", t.rows(), t.cols()),
            });
        }
        if let Some((r, c)) = t.find_non_finite() {
            return Err(Error::invalid(
                format!("{what} targets"),
                format!("non-finite value at row {}, column {}", r + 1, c + 1),
            ));
        }
        Ok(())
    };
    pair(data, target, "training")?;
    if let Some((v, vt)) = valid {
        pair(v, vt, "validation")?;
    }
    fit_impl(
        model,
        data,
        Some(target),
        valid.map(|(v, t)| (v, Some(t))),
        config,
        on_event,
    )
}

fn fit_impl(
    model: &mut Autoencoder,
    data: &Matrix,
    target: Option<&Matrix>,
    valid: Option<(&Matrix, Option<&Matrix>)>,
    config: &TrainConfig,
    mut on_event: impl FnMut(&Event<'_>),
) -> Result<TrainReport> {
    let (valid, valid_target) = match valid {
        Some((v, t)) => (Some(v), t),
        None => (None, None),
    };
    config.validate(valid.is_some())?;
    for n in &config.noise {
        n.check(model.config.input_dim, config.image_shape)
            .map_err(Error::Config)?;
    }
    check_data(model, data, "training data")?;
    if let Some(v) = valid {
        check_data(model, v, "validation data")?;
    }
    let started = Instant::now();
    // Split off validation rows, then fit and apply the scaler.
    // Rows are copied only when they must change (split or scaled).
    let mut targets: Option<(Cow<'_, Matrix>, Option<Cow<'_, Matrix>>)> =
        target.map(|t| (Cow::Borrowed(t), valid_target.map(Cow::Borrowed)));
    let (mut train, mut valid): (Cow<'_, Matrix>, Option<Cow<'_, Matrix>>) = match valid {
        Some(v) => (Cow::Borrowed(data), Some(Cow::Borrowed(v))),
        None if config.valid_fraction > 0.0 => {
            let mut idx: Vec<usize> = (0..data.rows()).collect();
            Rng::stream(config.seed, STREAM_SPLIT).shuffle(&mut idx);
            let n_valid =
                ((data.rows() as f64 * config.valid_fraction as f64).round() as usize).clamp(1, data.rows() - 1);
            let (v, t) = idx.split_at(n_valid);
            if t.is_empty() {
                return Err(Error::invalid(
                    "training data",
                    "too few rows to hold out a validation set",
                ));
            }
            if let Some(tg) = target {
                targets = Some((Cow::Owned(tg.select_rows(t)), Some(Cow::Owned(tg.select_rows(v)))));
            }
            (Cow::Owned(data.select_rows(t)), Some(Cow::Owned(data.select_rows(v))))
        }
        None => (Cow::Borrowed(data), None),
    };
    model.scaler = Scaler::fit(config.scaling, &train);
    if !model.scaler.is_identity() {
        model.scaler.transform(train.to_mut());
        if let Some(v) = valid.as_mut() {
            model.scaler.transform(v.to_mut());
        }
    }
    let loss_target = targets.as_ref().map_or(&*train, |(t, _)| &**t);
    if model.config.loss == Loss::Bce
        && let Some(bad) = loss_target.as_slice().iter().find(|v| !(0.0..=1.0).contains(*v))
    {
        return Err(Error::invalid(
            "training data",
            format!(
                "loss bce needs values in [0, 1] after scaling, found {bad}; hint: use --scale minmax or --loss mse"
            ),
        ));
    }

    let n = train.rows();
    let d = train.cols();
    let batch = config.batch_size.min(n);
    let batches = n.div_ceil(batch);
    let total_steps = batches * config.epochs;
    let warmup = config.warmup_epochs * batches;
    let sizes: Vec<usize> = model
        .layers
        .iter()
        .flat_map(|l| [l.params().0.len(), l.params().1.len()])
        .collect();
    let mut opt = Optimizer::new(config.optimizer, &sizes);
    let mut ws = Workspace::new(model, batch, !config.noise.is_empty() || targets.is_some());
    let mut noise_rng = Rng::stream(config.seed, STREAM_NOISE);
    let mut dropout_rng = Rng::stream(config.seed, STREAM_DROPOUT);
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng::stream(config.seed, STREAM_SHUFFLE);
    let mut history = Vec::with_capacity(config.epochs);
    let mut best: Option<(f64, usize, Vec<crate::layer::Layer>)> = None;
    let mut last_good = model.layers.clone();
    let mut stopped_early = false;
    let mut step = 0usize;
    let tied = model.config.tied_pairs(); // computed once: the training step allocates nothing

    for epoch in 1..=config.epochs {
        on_event(&Event::EpochStart {
            epoch,
            epochs: config.epochs,
            batches,
        });
        let t0 = Instant::now();
        rng.shuffle(&mut order);
        let mut loss_sum = 0.0f64;
        let mut lr = config.lr;
        for (bi, rows) in order.chunks(batch).enumerate() {
            let b = rows.len();
            // ws.x is what the loss compares with (the target), ws.x_in what the network sees.
            let goal = targets.as_ref().map_or(&*train, |(t, _)| &**t);
            for (dst, &r) in ws.x.chunks_exact_mut(goal.cols()).zip(rows) {
                dst.copy_from_slice(goal.row(r));
            }
            if targets.is_some() {
                for (dst, &r) in ws.x_in.chunks_exact_mut(d).zip(rows) {
                    dst.copy_from_slice(train.row(r));
                }
            } else if !config.noise.is_empty() {
                ws.x_in[..b * d].copy_from_slice(&ws.x[..b * d]);
            }
            if !config.noise.is_empty() {
                noise::corrupt(
                    &config.noise,
                    &mut ws.x_in[..b * d],
                    d,
                    config.image_shape,
                    &mut noise_rng,
                );
            }
            let mut code_step = CodeStep {
                epoch: epoch - 1,
                rng: &mut dropout_rng,
            };
            let loss = forward_backward(model, &mut ws, b, config.precision, &mut code_step);
            if !loss.is_finite() {
                model.layers = last_good;
                return Err(Error::Diverged {
                    epoch,
                    batch: bi + 1,
                    value: loss as f32,
                    last_good_epoch: epoch - 1,
                });
            }
            // Tied weights: the decoder's gradient, transposed, joins its encoder's.
            for &(e, d) in &tied {
                let (n_in, n_out) = (model.layers[e].n_in(), model.layers[e].n_out());
                let (lo, hi) = ws.dw.split_at_mut(d);
                let (g, gt) = (&mut lo[e], &hi[0]);
                for o in 0..n_out {
                    for i in 0..n_in {
                        g[o * n_in + i] += gt[i * n_out + o];
                    }
                }
                hi[0].fill(0.0);
            }
            if let Some(max) = config.clip_norm {
                let norm = ws
                    .dw
                    .iter()
                    .chain(&ws.db)
                    .map(|g| kernels::sum_squares(g))
                    .sum::<f64>()
                    .sqrt();
                if norm > max as f64 {
                    let s = (max as f64 / norm) as f32;
                    ws.dw
                        .iter_mut()
                        .chain(ws.db.iter_mut())
                        .for_each(|g| kernels::scale_in_place(g, s));
                }
            }
            lr = config.schedule.lr(config.lr, step, total_steps, batches, warmup);
            opt.begin_step();
            for (l, layer) in model.layers.iter_mut().enumerate() {
                let unit_rows = layer.unit_rows();
                let (weight, bias) = layer.params_mut();
                if !tied.iter().any(|&(_, d)| d == l) {
                    opt.update(2 * l, weight, &ws.dw[l], lr, true);
                }
                opt.update(2 * l + 1, bias, &ws.db[l], lr, false);
                if let (Some(c), Some(n_in)) = (config.max_norm, unit_rows) {
                    kernels::max_norm_rows(weight, n_in, c);
                }
            }
            model.sync_tied();
            step += 1;
            loss_sum += loss * b as f64;
            on_event(&Event::Batch { batch: bi + 1, loss });
        }
        let seconds = t0.elapsed().as_secs_f64();
        let valid_loss = valid
            .as_ref()
            .map(|v| match targets.as_ref().and_then(|(_, vt)| vt.as_ref()) {
                Some(vt) => {
                    let out = model.forward_scaled(v, 0..model.layers.len());
                    model.config.loss.sum(out.as_slice(), vt.as_slice()) / (vt.rows() * vt.cols()).max(1) as f64
                }
                None => mean_loss_scaled(model, v),
            });
        let code = valid.as_ref().map(|v| {
            let codes = model.forward_scaled(v, 0..model.config.encoder_layers());
            let mut m = crate::metrics::code(&codes, model.config.code_activation);
            m.unit_mean_activation.clear(); // keep the per-epoch log small
            m
        });
        if let Some(v) = valid_loss
            && !v.is_finite()
        {
            model.layers = last_good;
            return Err(Error::Diverged {
                epoch,
                batch: batches,
                value: v as f32,
                last_good_epoch: epoch - 1,
            });
        }
        let is_best = match (valid_loss, &best) {
            (Some(v), Some((b, _, _))) => v < *b,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if is_best && config.patience.is_some() {
            best = Some((valid_loss.unwrap_or(f64::INFINITY), epoch, model.layers.clone()));
        } else if is_best {
            best = Some((valid_loss.unwrap_or(f64::INFINITY), epoch, Vec::new()));
        }
        let stats = EpochStats {
            epoch,
            train_loss: loss_sum / n as f64,
            valid_loss,
            lr,
            seconds,
            samples_per_sec: n as f64 / seconds.max(1e-9),
            best: is_best,
            code,
        };
        on_event(&Event::EpochEnd(&stats));
        history.push(stats);
        last_good.clone_from(&model.layers);
        if let (Some(p), Some((_, best_epoch, _))) = (config.patience, &best)
            && epoch - best_epoch >= p
        {
            stopped_early = epoch < config.epochs;
            break;
        }
    }
    let mut best_epoch = history.len();
    if config.patience.is_some()
        && let Some((_, e, layers)) = best
    {
        model.layers = layers;
        best_epoch = e;
    }
    Ok(TrainReport {
        history,
        best_epoch,
        stopped_early,
        train_rows: n,
        valid_rows: valid.as_ref().map_or(0, |v| v.rows()),
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::model::{AutoencoderConfig, CodeRegularizer, KlSparsity, TopK};

    /// A fixed batch of 4 rows of 6 values in [0, 1].
    fn batch() -> Vec<f32> {
        let mut rng = Rng::new(8);
        (0..4 * 6).map(|_| rng.uniform()).collect()
    }

    /// Loss and gradients of one step on `x` (rows of 6), dropout drawn from a fixed seed.
    fn loss_and_grads(m: &Autoencoder, x: &[f32]) -> (f64, Workspace) {
        let b = x.len() / 6;
        let mut ws = Workspace::new(m, b, false);
        ws.x[..x.len()].copy_from_slice(x);
        let mut r = Rng::new(77);
        let loss = forward_backward(m, &mut ws, b, Precision::F32, &mut CodeStep { epoch: 0, rng: &mut r });
        (loss, ws)
    }

    /// Central differences (f64 steps on f32 weights) of the full training loss, code
    /// penalties included, against the analytic gradients, for every weight and bias. The
    /// dropout mask is held fixed by re-seeding its generator for every evaluation.
    fn check(reg: CodeRegularizer, code_act: Activation) {
        check_with(reg, code_act, Default::default());
    }

    /// [`check`] with regularizers on other hidden layers too.
    fn check_with(
        reg: CodeRegularizer,
        code_act: Activation,
        hidden: std::collections::BTreeMap<usize, CodeRegularizer>,
    ) {
        let mut cfg = AutoencoderConfig::new(6, 7).with_hidden(&[5]).with_activations(
            Activation::Tanh,
            code_act,
            Activation::Sigmoid,
        );
        cfg.regularizer = reg.clone();
        cfg.hidden_regularizers = hidden;
        let model = cfg.init(3).unwrap();
        let x = batch();
        let run = |m: &Autoencoder| loss_and_grads(m, &x);
        let (_, ws) = run(&model);
        let h = 1e-3f32;
        for l in 0..model.layers.len() {
            let n_w = model.layers[l].params().0.len();
            for i in 0..n_w + model.layers[l].params().1.len() {
                let eval = |delta: f32| {
                    let mut m = model.clone();
                    if i < n_w {
                        m.layers[l].params_mut().0[i] += delta
                    } else {
                        m.layers[l].params_mut().1[i - n_w] += delta
                    }
                    run(&m).0
                };
                let numeric = (eval(h) - eval(-h)) / (2.0 * h as f64);
                let analytic = if i < n_w { ws.dw[l][i] } else { ws.db[l][i - n_w] } as f64;
                assert!(
                    (numeric - analytic).abs() < 2e-2 * numeric.abs().max(analytic.abs()) + 2e-4,
                    "{reg:?} layer {l} param {i}: numeric {numeric} analytic {analytic}"
                );
            }
        }
    }

    /// Tied weights: perturbing a shared weight moves both layers; the combined gradient must
    /// match.
    #[test]
    fn tied_gradient() {
        let mut cfg = AutoencoderConfig::new(6, 3).with_hidden(&[5]).with_activations(
            Activation::Tanh,
            Activation::Identity,
            Activation::Sigmoid,
        );
        cfg.tied = true;
        let model = cfg.init(3).unwrap();
        assert_eq!(model.layers[3].params().0[1], model.layers[0].params().0[6]); // W_dec[0][1] = W_enc[1][0] (5 x 6)
        let x = batch();
        let run = |m: &Autoencoder| loss_and_grads(m, &x);
        let (_, ws) = run(&model);
        for (e, d) in cfg.tied_pairs() {
            let (n_in, n_out) = (model.layers[e].n_in(), model.layers[e].n_out());
            for o in 0..n_out {
                for i in 0..n_in {
                    let eval = |delta: f32| {
                        let mut m = model.clone();
                        m.layers[e].params_mut().0[o * n_in + i] += delta;
                        m.sync_tied();
                        run(&m).0
                    };
                    let numeric = (eval(1e-3) - eval(-1e-3)) / 2e-3;
                    let analytic = (ws.dw[e][o * n_in + i] + ws.dw[d][i * n_out + o]) as f64;
                    assert!(
                        (numeric - analytic).abs() < 2e-2 * numeric.abs().max(analytic.abs()) + 2e-4,
                        "pair ({e}, {d}) [{o}][{i}]: {numeric} vs {analytic}"
                    );
                }
            }
        }
        // Training keeps the tie.
        let data = Matrix::from_vec(4, 6, x.clone()).unwrap();
        let mut m = model.clone();
        fit(
            &mut m,
            &data,
            None,
            &TrainConfig {
                epochs: 3,
                batch_size: 2,
                ..Default::default()
            },
            |_| {},
        )
        .unwrap();
        let mut synced = m.clone();
        synced.sync_tied();
        assert_eq!(synced, m);
        assert_ne!(m.layers[0].params().0, model.layers[0].params().0);
    }

    #[test]
    fn hidden_layer_regularizer_gradients() {
        // Layers: 0 (6 -> 5, tanh, hidden), 1 (code), 2 (decoder hidden 7 -> 5, tanh), 3 (output).
        let topk = Some(TopK {
            k: 3,
            encode_k: None,
            start_k: None,
            anneal_epochs: 0,
        });
        let mut hidden = std::collections::BTreeMap::new();
        hidden.insert(
            0,
            CodeRegularizer {
                l1: 0.2,
                dropout: 0.25,
                topk,
                ..Default::default()
            },
        );
        hidden.insert(
            2,
            CodeRegularizer {
                l1: 0.1,
                ..Default::default()
            },
        );
        // (Code-layer L1 has its own check; here one sample's code unit sits within the finite
        // difference step of |h|'s kink at 0, so the code layer stays unregularized.)
        check_with(CodeRegularizer::default(), Activation::Tanh, hidden);
        // The output layer and out-of-range layers are refused with the list of hidden layers.
        let mut cfg = AutoencoderConfig::new(6, 7).with_hidden(&[5]);
        cfg.hidden_regularizers.insert(
            3,
            CodeRegularizer {
                l1: 0.1,
                ..Default::default()
            },
        );
        let err = cfg.init(1).unwrap_err().to_string();
        assert!(err.contains("hidden layers are [0, 2]"), "{err}");
    }

    #[test]
    fn l1_gradient() {
        check(
            CodeRegularizer {
                l1: 0.3,
                ..Default::default()
            },
            Activation::Relu,
        );
    }

    #[test]
    fn kl_gradient() {
        let kl = Some(KlSparsity { rho: 0.1, beta: 0.7 });
        check(
            CodeRegularizer {
                kl,
                ..Default::default()
            },
            Activation::Sigmoid,
        );
    }

    #[test]
    fn topk_gradient() {
        let topk = Some(TopK {
            k: 3,
            encode_k: None,
            start_k: None,
            anneal_epochs: 0,
        });
        check(
            CodeRegularizer {
                topk,
                ..Default::default()
            },
            Activation::Identity,
        );
    }

    #[test]
    fn binary_code_by_noise_gradient() {
        // The noise is drawn from a re-seeded generator, so the loss is a smooth function.
        let binary = Some(crate::model::BinaryCode::Noise { sigma: 2.0 });
        check(
            CodeRegularizer {
                binary,
                l1: 0.05,
                ..Default::default()
            },
            Activation::Sigmoid,
        );
    }

    #[test]
    fn straight_through_code_is_binary_forward_and_passes_gradients_back() {
        let mut cfg = AutoencoderConfig::new(6, 7).with_hidden(&[5]).with_activations(
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Sigmoid,
        );
        cfg.regularizer.binary = Some(crate::model::BinaryCode::StraightThrough);
        let model = cfg.init(3).unwrap();
        let x = batch();
        let (_, ws) = loss_and_grads(&model, &x);
        let code = &ws.acts[1][..4 * 7];
        assert!(code.iter().all(|&v| v == 0.0 || v == 1.0), "{code:?}");
        assert!(code.contains(&0.0) && code.contains(&1.0));
        // The threshold is flat almost everywhere; straight-through still gives the encoder a
        // gradient, and the decoder's is exact: check the decoder by finite differences.
        assert!(ws.dw[0].iter().any(|&g| g != 0.0));
        let h = 1e-3f32;
        for l in 2..model.layers.len() {
            for i in 0..model.layers[l].params().0.len() {
                let eval = |delta: f32| {
                    let mut m = model.clone();
                    m.layers[l].params_mut().0[i] += delta;
                    loss_and_grads(&m, &x).0
                };
                let numeric = (eval(h) - eval(-h)) / (2.0 * h as f64);
                let analytic = ws.dw[l][i] as f64;
                assert!(
                    (numeric - analytic).abs() < 2e-2 * numeric.abs() + 2e-4,
                    "{numeric} vs {analytic}"
                );
            }
        }
        // Encoding thresholds at 0.5.
        let codes = model.encode(&Matrix::from_vec(4, 6, x.clone()).unwrap()).unwrap();
        assert!(codes.as_slice().iter().all(|&v| v == 0.0 || v == 1.0));
    }

    #[test]
    fn binary_code_needs_a_sigmoid() {
        let mut cfg = AutoencoderConfig::new(6, 3);
        cfg.regularizer.binary = Some(crate::model::BinaryCode::StraightThrough);
        assert!(
            cfg.init(1)
                .unwrap_err()
                .to_string()
                .contains("binary code needs sigmoid")
        );
    }

    #[test]
    fn dropout_and_everything_together_gradient() {
        let topk = Some(TopK {
            k: 4,
            encode_k: None,
            start_k: None,
            anneal_epochs: 0,
        });
        let reg = CodeRegularizer {
            l1: 0.1,
            dropout: 0.3,
            topk,
            ..Default::default()
        };
        check(reg, Activation::Sigmoid);
        check(
            CodeRegularizer {
                dropout: 0.5,
                ..Default::default()
            },
            Activation::Tanh,
        );
    }

    fn blobs(n: usize, d: usize, seed: u64) -> Matrix {
        let mut rng = Rng::new(seed);
        let mut x = Matrix::zeros(n, d);
        for i in 0..n {
            let c = rng.below(8);
            for (j, v) in x.row_mut(i).iter_mut().enumerate() {
                *v = (((j + c) % 8) as f32 / 8.0 + 0.1 * rng.uniform()).min(1.0);
            }
        }
        x
    }

    #[test]
    fn topk_codes_have_exactly_k_active_units_and_k_anneals() {
        let x = blobs(600, 16, 1);
        let mut cfg = AutoencoderConfig::new(16, 40);
        cfg.regularizer.topk = Some(TopK {
            k: 5,
            encode_k: Some(10),
            start_k: Some(20),
            anneal_epochs: 4,
        });
        let mut m = cfg.init(1).unwrap();
        let t = cfg.regularizer.topk.unwrap();
        assert_eq!((t.k_at(0), t.k_at(2), t.k_at(4), t.k_at(9)), (20, 13, 5, 5));
        fit(
            &mut m,
            &x,
            None,
            &TrainConfig {
                epochs: 6,
                batch_size: 50,
                ..Default::default()
            },
            |_| {},
        )
        .unwrap();
        let codes = m.encode(&x).unwrap();
        for i in 0..codes.rows() {
            assert!(codes.row(i).iter().filter(|v| **v != 0.0).count() <= 10);
        }
    }

    #[test]
    fn kl_sparsity_pulls_mean_activation_to_rho() {
        let x = blobs(2000, 16, 2);
        let mut cfg =
            AutoencoderConfig::new(16, 32).with_activations(Activation::Relu, Activation::Sigmoid, Activation::Sigmoid);
        cfg.regularizer.kl = Some(KlSparsity { rho: 0.05, beta: 1.0 });
        let mut m = cfg.init(1).unwrap();
        let train = TrainConfig {
            epochs: 40,
            batch_size: 100,
            lr: 3e-3,
            ..Default::default()
        };
        fit(&mut m, &x, None, &train, |_| {}).unwrap();
        let codes = m.encode(&x).unwrap();
        let mean = codes.as_slice().iter().map(|&v| v as f64).sum::<f64>() / codes.as_slice().len() as f64;
        assert!((mean - 0.05).abs() < 0.2 * 0.05, "mean code activation {mean}");
    }

    #[test]
    fn kl_needs_a_sigmoid_code() {
        let mut cfg = AutoencoderConfig::new(16, 32);
        cfg.regularizer.kl = Some(KlSparsity { rho: 0.05, beta: 1.0 });
        assert!(cfg.init(1).unwrap_err().to_string().contains("sigmoid code"));
    }

    #[test]
    fn max_norm_caps_incoming_weights() {
        let x = blobs(300, 16, 3);
        let mut m = AutoencoderConfig::new(16, 8).with_hidden(&[12]).init(1).unwrap();
        let train = TrainConfig {
            epochs: 3,
            lr: 0.05,
            max_norm: Some(0.5),
            ..Default::default()
        };
        fit(&mut m, &x, None, &train, |_| {}).unwrap();
        for l in m.layers() {
            for row in l.params().0.chunks_exact(l.n_in()) {
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                assert!(norm <= 0.5 + 1e-5, "{norm}");
            }
        }
    }
}

#[cfg(test)]
mod conv_tests {
    use super::*;
    use crate::arch::{Dims, parse};

    /// Conv → pool → dense code (L1 + top-k) → dense → reshape → upsample → conv: the whole
    /// network's gradient, by central differences on every parameter.
    const NET: &str = r#"
        activation = "tanh"
        code_activation = "tanh"
        [code]
        l1 = 0.01
        topk = { k = 3 }
        [[encoder]]
        type = "conv"
        filters = 2
        kernel = 3
        padding = 1
        [[encoder]]
        type = "max_pool"
        size = 2
        [[encoder]]
        type = "dense"
        units = 4
        [[decoder]]
        type = "dense"
        units = 18
        [[decoder]]
        type = "reshape"
        shape = [2, 3, 3]
        [[decoder]]
        type = "upsample"
        factor = 2
        [[decoder]]
        type = "conv_transpose"
        filters = 2
        kernel = 3
        padding = 1
    "#;

    /// Every layer's training forward (im2col + GEMM for convolutions), channel-major, with
    /// the code's top-k: what inference must reproduce.
    fn forward_reference(m: &Autoencoder, x: &[f32], layers: std::ops::Range<usize>) -> Vec<f32> {
        let mut cur = x.to_vec();
        for i in layers {
            let l = &m.layers[i];
            let rows = cur.len() / l.n_in();
            let mut y = vec![0.0; rows * l.n_out()];
            let mut aux = vec![0u32; l.aux_len() * rows];
            l.forward(&cur, &mut y, None, &mut aux, Precision::F32);
            if let Some(t) = m.config.regularizer_at(i).and_then(|r| r.topk) {
                crate::model::top_k_rows(&mut y, l.n_out(), t.encode_k.unwrap_or(t.k));
            }
            cur = y;
        }
        cur
    }

    /// Inference runs chains of convolutions channels-last with the direct kernel (on AVX-512
    /// machines): entering and leaving chains around pooling, dense and transposed layers, RGB
    /// input, channel counts that are not multiples of 16, a conv code with top-k and a conv
    /// output. It must give the training forward's values, for any thread count.
    #[test]
    fn inference_matches_the_training_forward() {
        const CONV_CODE: &str = r#"
            activation = "relu"
            [code]
            topk = { k = 120 }
            [[encoder]]
            type = "conv"
            filters = 20
            kernel = 3
            stride = 2
            padding = 1
            activation = "tanh"
            [[encoder]]
            type = "conv"
            filters = 33
            kernel = 2
            [[decoder]]
            type = "conv_transpose"
            filters = 16
            kernel = 3
            stride = 2
            padding = 1
            [[decoder]]
            type = "conv_transpose"
            filters = 8
            kernel = 3
            [[decoder]]
            type = "conv"
            filters = 16
            kernel = 3
            padding = 1
            activation = "elu"
            [[decoder]]
            type = "conv"
            filters = 3
            kernel = 3
            padding = 1
        "#;
        const POOLED: &str = r#"
            activation = "relu"
            [[encoder]]
            type = "conv"
            filters = 17
            kernel = 3
            padding = 1
            [[encoder]]
            type = "max_pool"
            size = 2
            [[encoder]]
            type = "conv"
            filters = 32
            kernel = 3
            padding = 1
            [[encoder]]
            type = "dense"
            units = 6
            [[decoder]]
            type = "dense"
            units = 128
            [[decoder]]
            type = "reshape"
            shape = [8, 4, 4]
            [[decoder]]
            type = "conv_transpose"
            filters = 4
            kernel = 2
            stride = 2
            [[decoder]]
            type = "conv"
            filters = 1
            kernel = 3
            padding = 1
        "#;
        for (text, input) in [(CONV_CODE, (3, 9, 9)), (POOLED, (1, 8, 8))] {
            let mut m = parse(text, Dims::Image(input)).unwrap().init(4).unwrap();
            let mut rng = Rng::new(8);
            for l in &mut m.layers {
                l.params_mut()
                    .1
                    .iter_mut()
                    .for_each(|b| *b = rng.uniform_range(-0.2, 0.2));
            }
            // More rows than one inference block, the last block partial.
            let rows = ROW_BLOCK + 22;
            let x = Matrix::from_vec(
                rows,
                m.input_dim(),
                (0..rows * m.input_dim()).map(|_| rng.uniform()).collect(),
            )
            .unwrap();
            let enc = m.config.encoder_layers();
            let checks = [
                (m.encode(&x).unwrap(), forward_reference(&m, x.as_slice(), 0..enc)),
                (
                    m.reconstruct(&x).unwrap(),
                    forward_reference(&m, x.as_slice(), 0..m.layers.len()),
                ),
            ];
            for (got, want) in &checks {
                assert_eq!(got.as_slice().len(), want.len());
                for (g, w) in got.as_slice().iter().zip(want) {
                    assert!((g - w).abs() < 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
                }
            }
            let one = crate::with_threads(Some(1), || m.encode(&x).unwrap()).unwrap();
            let three = crate::with_threads(Some(3), || m.encode(&x).unwrap()).unwrap();
            assert_eq!(one.as_slice(), three.as_slice());
            assert_eq!(one.as_slice(), checks[0].0.as_slice());
        }
    }

    fn step(m: &Autoencoder, x: &[f32]) -> (f64, Workspace) {
        let b = x.len() / m.input_dim();
        let mut ws = Workspace::new(m, b, false);
        ws.x[..x.len()].copy_from_slice(x);
        let mut r = Rng::new(77);
        let loss = forward_backward(m, &mut ws, b, Precision::F32, &mut CodeStep { epoch: 0, rng: &mut r });
        (loss, ws)
    }

    #[test]
    fn whole_conv_network_gradient_matches_finite_differences() {
        let cfg = parse(NET, Dims::Image((2, 6, 6))).unwrap();
        let mut model = cfg.init(5).unwrap();
        let mut rng = Rng::new(1);
        for l in &mut model.layers {
            l.params_mut()
                .1
                .iter_mut()
                .for_each(|b| *b = rng.uniform_range(-0.2, 0.2));
        }
        let x: Vec<f32> = (0..3 * 72).map(|_| rng.uniform()).collect();
        let (_, ws) = step(&model, &x);
        let h = 1e-3f32;
        let mut checked = 0;
        for l in 0..model.layers.len() {
            let n_w = model.layers[l].weight().len();
            for i in 0..n_w + model.layers[l].bias().len() {
                let eval = |delta: f32| {
                    let mut m = model.clone();
                    let (w, b) = m.layers[l].params_mut();
                    if i < n_w {
                        w[i] += delta
                    } else {
                        b[i - n_w] += delta
                    }
                    step(&m, &x).0
                };
                let numeric = (eval(h) - eval(-h)) / (2.0 * f64::from(h));
                let analytic = f64::from(if i < n_w { ws.dw[l][i] } else { ws.db[l][i - n_w] });
                assert!(
                    (numeric - analytic).abs() < 2e-2 * numeric.abs().max(analytic.abs()) + 2e-4,
                    "layer {l} ({}) param {i}: numeric {numeric} analytic {analytic}",
                    model.layers[l].kind()
                );
                checked += 1;
            }
        }
        assert_eq!(checked, model.num_params());
    }

    #[test]
    fn conv_training_is_thread_invariant_and_learns() {
        let cfg = parse(NET, Dims::Image((2, 6, 6))).unwrap();
        let mut rng = Rng::new(3);
        let data = Matrix::from_vec(70, 72, (0..70 * 72).map(|_| rng.uniform()).collect()).unwrap();
        let run = |t| {
            crate::with_threads(Some(t), || {
                let mut m = cfg.init(2).unwrap();
                let config = TrainConfig {
                    epochs: 3,
                    batch_size: 32,
                    noise: vec![Noise::Mask { p: 0.2 }],
                    ..Default::default()
                };
                let r = fit(&mut m, &data, None, &config, |_| {}).unwrap();
                (m, r.history.iter().map(|h| h.train_loss).collect::<Vec<_>>())
            })
            .unwrap()
        };
        let (a, la) = run(1);
        let (b, lb) = run(3);
        assert_eq!(a, b);
        assert_eq!(la, lb);
        assert!(la[2] < la[0], "the loss goes down: {la:?}");
    }

    #[test]
    fn multi_channel_rows_are_channel_major() {
        // 1x1 convolutions, identity activations: encoder scales channel c by 10^c, decoder
        // passes through. Rows are (C, H, W), as the NPY reader and pictures lay them out.
        let text = r#"
            activation = "identity"
            code_activation = "identity"
            output_activation = "identity"
            [[encoder]]
            type = "conv"
            filters = 3
            kernel = 1
            [[decoder]]
            type = "conv"
            filters = 3
            kernel = 1
        "#;
        let mut m = parse(text, Dims::Image((3, 2, 2))).unwrap().init(0).unwrap();
        for (l, scale) in [(0, [1.0, 10.0, 100.0]), (1, [1.0, 1.0, 1.0])] {
            let (w, b) = m.layers[l].params_mut();
            w.fill(0.0);
            b.fill(0.0);
            for c in 0..3 {
                w[c * 3 + c] = scale[c];
            }
        }
        let x: Vec<f32> = (0..12).map(|i| 0.5 + i as f32 / 12.0).collect();
        let y = m.reconstruct(&Matrix::from_vec(1, 12, x.clone()).unwrap()).unwrap();
        for (i, (a, b)) in y.as_slice().iter().zip(&x).enumerate() {
            let want = b * [1.0, 10.0, 100.0][i / 4];
            assert!((a - want).abs() < 1e-3, "{i}: {a} vs {want}");
        }
    }
}
