//! Training: mini-batch gradient descent with validation, early stopping and divergence checks.

use crate::data::scale::{Scaler, Scaling};
use crate::error::{Error, Result};
use crate::kernels::{self, Precision, ROW_BLOCK};
use crate::layer::PrevActivation;
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
}

impl Workspace {
    fn new(model: &Autoencoder, batch: usize, noisy: bool) -> Self {
        let last = model.layers.len() - 1;
        let keep_pre = |i: usize, l: &crate::layer::Dense| {
            l.activation.needs_preactivation()
                || (i == last && model.config.loss.needs_output_preactivation(l.activation))
        };
        Workspace {
            x: vec![0.0; batch * model.config.input_dim],
            x_in: if noisy {
                vec![0.0; batch * model.config.input_dim]
            } else {
                Vec::new()
            },
            acts: model.layers.iter().map(|l| vec![0.0; batch * l.n_out]).collect(),
            pre: model
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    if keep_pre(i, l) {
                        vec![0.0; batch * l.n_out]
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
            dz: model.layers.iter().map(|l| vec![0.0; batch * l.n_out]).collect(),
            dw: model.layers.iter().map(|l| vec![0.0; l.weight.len()]).collect(),
            db: model.layers.iter().map(|l| vec![0.0; l.bias.len()]).collect(),
            loss_blocks: vec![0.0; batch.div_ceil(ROW_BLOCK)],
        }
    }
}

/// One forward + backward pass on the first `b` rows of `ws.x`; returns the mean loss.
fn forward_backward(model: &Autoencoder, ws: &mut Workspace, b: usize, precision: Precision) -> f64 {
    let d = model.config.input_dim;
    let n_layers = model.layers.len();
    // The network sees the corrupted batch when there is noise; the loss compares with ws.x.
    let x_in = if ws.x_in.is_empty() {
        &ws.x[..b * d]
    } else {
        &ws.x_in[..b * d]
    };
    for (l, layer) in model.layers.iter().enumerate() {
        let (before, after) = ws.acts.split_at_mut(l);
        let input = if l == 0 { x_in } else { &before[l - 1][..b * layer.n_in] };
        let out = &mut after[0][..b * layer.n_out];
        let pre = if ws.pre[l].is_empty() {
            None
        } else {
            Some(&mut ws.pre[l][..b * layer.n_out])
        };
        layer.forward_with(input, out, pre, precision);
    }
    // Loss and its gradient with respect to the output pre-activation, per block of rows.
    let last = n_layers - 1;
    let out_layer = &model.layers[last];
    let loss = model.config.loss;
    let scale = 1.0 / (b * d) as f32;
    let (y, t) = (&ws.acts[last][..b * d], &ws.x[..b * d]);
    let z = if ws.pre[last].is_empty() {
        None
    } else {
        Some(&ws.pre[last][..b * d])
    };
    let n_blocks = b.div_ceil(ROW_BLOCK);
    ws.dz[last][..b * d]
        .par_chunks_mut(ROW_BLOCK * d)
        .zip(ws.loss_blocks[..n_blocks].par_iter_mut())
        .enumerate()
        .for_each(|(i, (dz, sum))| {
            let r = i * ROW_BLOCK * d..i * ROW_BLOCK * d + dz.len();
            *sum = loss.output_grad(
                out_layer.activation,
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
        let dz = &dz_here[0][..b * layer.n_out];
        let input = if l == 0 {
            x_in
        } else {
            &ws.acts[l - 1][..b * layer.n_in]
        };
        let dx = if l == 0 {
            None
        } else {
            let prev = &model.layers[l - 1];
            let z = if ws.pre[l - 1].is_empty() {
                None
            } else {
                Some(&ws.pre[l - 1][..b * prev.n_out])
            };
            Some((
                &mut dz_below[l - 1][..b * prev.n_out],
                PrevActivation {
                    act: prev.activation,
                    y: &ws.acts[l - 1][..b * prev.n_out],
                    z,
                },
            ))
        };
        layer.backward(input, dz, &mut ws.dw[l], &mut ws.db[l], dx, precision);
    }
    total / (b * d) as f64
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
    mut on_event: impl FnMut(&Event<'_>),
) -> Result<TrainReport> {
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
    if model.config.loss == Loss::Bce
        && let Some(bad) = train.as_slice().iter().find(|v| !(0.0..=1.0).contains(*v))
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
        .flat_map(|l| [l.weight.len(), l.bias.len()])
        .collect();
    let mut opt = Optimizer::new(config.optimizer, &sizes);
    let mut ws = Workspace::new(model, batch, !config.noise.is_empty());
    let mut noise_rng = Rng::stream(config.seed, STREAM_NOISE);
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng::stream(config.seed, STREAM_SHUFFLE);
    let mut history = Vec::with_capacity(config.epochs);
    let mut best: Option<(f64, usize, Vec<crate::layer::Dense>)> = None;
    let mut last_good = model.layers.clone();
    let mut stopped_early = false;
    let mut step = 0usize;

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
            for (dst, &r) in ws.x.chunks_exact_mut(d).zip(rows) {
                dst.copy_from_slice(train.row(r));
            }
            if !config.noise.is_empty() {
                ws.x_in[..b * d].copy_from_slice(&ws.x[..b * d]);
                noise::corrupt(
                    &config.noise,
                    &mut ws.x_in[..b * d],
                    d,
                    config.image_shape,
                    &mut noise_rng,
                );
            }
            let loss = forward_backward(model, &mut ws, b, config.precision);
            if !loss.is_finite() {
                model.layers = last_good;
                return Err(Error::Diverged {
                    epoch,
                    batch: bi + 1,
                    value: loss as f32,
                    last_good_epoch: epoch - 1,
                });
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
                opt.update(2 * l, &mut layer.weight, &ws.dw[l], lr, true);
                opt.update(2 * l + 1, &mut layer.bias, &ws.db[l], lr, false);
            }
            step += 1;
            loss_sum += loss * b as f64;
            on_event(&Event::Batch { batch: bi + 1, loss });
        }
        let seconds = t0.elapsed().as_secs_f64();
        let valid_loss = valid.as_ref().map(|v| mean_loss_scaled(model, v));
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
