//! What training takes and reports: [`TrainConfig`], [`Event`], [`EpochStats`], [`TrainReport`].

use crate::data::scale::Scaling;
use crate::error::{Error, Result};
use crate::kernels::Precision;
use crate::noise::Noise;
use crate::optim::{OptimizerConfig, Schedule};
use serde::{Deserialize, Serialize};

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
    /// Classifiers: epochs at the start during which only the head trains (the encoder is
    /// frozen). Each phase of the schedule starts its own optimizer state, as a model
    /// recompiled with other trainable layers does in Keras.
    #[serde(default)]
    pub freeze_epochs: usize,
    /// Dynamic binarization: each time a row enters a batch, each value `p` in [0, 1] is
    /// replaced by a fresh 0/1 draw with `P(1) = p` (the usual training set-up of variational
    /// autoencoders on MNIST); input and target alike.
    #[serde(default)]
    pub binarize: bool,
    /// Rescale each column of the first decoder layer's weight (a code unit's dictionary
    /// atom) to unit L2 norm after every step, as sparse dictionary (SAE) trainers do, so a
    /// code value measures how much of its atom a row holds; each atom's gradient loses its
    /// component along the atom first (a step turns the atom). Dense decoders; not with tied
    /// weights.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unit_norm_decoder: bool,
    /// Start the dictionary from its encoder: before the first step (not when resuming), each
    /// code unit's decoder column becomes its encoder row, scaled to unit norm (the tied
    /// initialization of sparse dictionary trainers). Dense code and first decoder layers; a
    /// one-layer dictionary also starts centred on the training rows' mean (the decoder's bias
    /// at the mean, the code zero there), as trainers with a pre-encoder bias do.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tied_init: bool,
    /// A learned pre-encoder bias (sparse dictionary trainers' `b_dec`): the code is
    /// `W (x − b) + c` with `b` the decoder's output bias, so `b` also learns from the encoder's
    /// side. Trained as such, stored folded into the code layer's bias (`c − W b`), so the model
    /// and its inference are those of any dictionary. One-layer dense dictionaries.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pre_bias: bool,
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
            freeze_epochs: 0,
            binarize: false,
            unit_norm_decoder: false,
            tied_init: false,
            pre_bias: false,
        }
    }
}

impl TrainConfig {
    /// Checks ranges and combinations.
    ///
    /// # Errors
    /// [`Error::Setting`] naming the setting, [`Error::Config`] for combinations.
    pub fn validate(&self, has_valid_set: bool) -> Result<()> {
        let bad = |name, value: &dyn std::fmt::Display, reason: &str| Err(Error::setting(name, value, reason));
        if self.epochs == 0 {
            return bad("epochs", &self.epochs, "must be positive");
        }
        if self.batch_size == 0 {
            return bad("batch_size", &self.batch_size, "must be positive");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", &self.lr, "the learning rate must be positive");
        }
        if !(0.0..1.0).contains(&self.valid_fraction) {
            return bad("valid_fraction", &self.valid_fraction, "must be in [0, 1)");
        }
        if let Some(c) = self.clip_norm
            && !(c > 0.0)
        {
            return bad("clip_norm", &c, "the gradient clipping norm must be positive");
        }
        if self.patience.is_some() && !has_valid_set && self.valid_fraction == 0.0 {
            return Err(Error::Config(
                "early stopping (patience) needs validation data: give a validation set or a fraction".into(),
            ));
        }
        if let Some(c) = self.max_norm
            && !(c > 0.0)
        {
            return bad("max_norm", &c, "must be positive");
        }
        if let Schedule::Step { every, gamma } = self.schedule
            && (every == 0 || !(gamma > 0.0 && gamma.is_finite()))
        {
            return bad(
                "schedule",
                &format!("step:{every},{gamma}"),
                "a step schedule needs every > 0 and a finite gamma > 0",
            );
        }
        if let Schedule::Cosine { min_factor } = self.schedule
            && !(0.0..=1.0).contains(&min_factor)
        {
            // A negative rate would climb the loss (gradient ascent).
            return bad(
                "schedule",
                &format!("cosine:{min_factor}"),
                "the final factor of a cosine schedule must be in [0, 1]",
            );
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
    /// Wall time of the epoch's training steps (0 and left out in model files: see
    /// [`TrainReport::without_timing`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seconds: f64,
    /// Training throughput (as `seconds`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub samples_per_sec: f64,
    /// What the GEMMs ran in ([`TrainReport::precision`]), in the training log (left out in
    /// model files, whose report says it once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<crate::kernels::Precision>,
    /// The kernels that ran ([`TrainReport::kernels`]), in the training log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernels: Option<String>,
    /// Of `seconds`, the time spent exchanging with the other ranks of a data-parallel run
    /// (waiting for them included; 0 and left out otherwise, and in model files).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub comm_seconds: f64,
    /// Whether this epoch has the best validation loss so far.
    pub best: bool,
    /// Code sparsity after the epoch (autoencoders): on the validation data, else on the first
    /// [`CODE_SAMPLE`] training rows.
    #[serde(default)]
    pub code: Option<crate::metrics::CodeMetrics>,
    /// Fraction of training rows classified right during the epoch (classifiers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_accuracy: Option<f64>,
    /// Accuracy on the validation data after the epoch (classifiers with validation data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_accuracy: Option<f64>,
}

/// Progress reported to the caller of [`fit`](super::fit) (and every other training call).
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
    /// A checkpoint of where training stands, when the caller asked for one
    /// ([`Flow::Checkpoint`]) or stopped training ([`Flow::Stop`]): save it to continue later
    /// with [`fit_from`](super::fit_from). What the caller answers is ignored.
    Checkpoint(&'a super::Checkpoint),
}

/// Training rows on which an epoch's code sparsity is measured when there is no validation
/// data (see [`EpochStats::code`]).
pub const CODE_SAMPLE: usize = 1024;

/// The fewest optimizer steps a model of a series' windows trains for by default
/// ([`epochs_for_steps`]). Chosen on the UCR series of `bench/series` (1,073 windows, 5
/// batches an epoch, windows of 64 and 128 steps, two widths): 125 steps left the model
/// undertrained (VUS-PR 0.29–0.78), 500 steps reached 0.78–0.97 and 1,000 steps 0.83–0.97.
pub const SERIES_MIN_STEPS: usize = 1000;

/// Epochs for `rows` training rows in batches of `batch`: `min_epochs`, or more when those
/// give fewer than `min_steps` optimizer steps.
pub fn epochs_for_steps(rows: usize, batch: usize, min_epochs: usize, min_steps: usize) -> usize {
    let batches = rows.div_ceil(batch.max(1)).max(1);
    min_epochs.max(min_steps.div_ceil(batches))
}

/// The outcome of training.
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
    /// Total wall time, seconds (as [`EpochStats::seconds`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seconds: f64,
    /// Whether the caller stopped training ([`Flow::Stop`]); the model then holds the weights
    /// of the last complete epoch, or of the best one with early stopping.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// What the GEMMs ran in on the machine that trained ([`crate::kernels::Precision::effective`]: f32 when
    /// bf16 was asked for where it cannot run); `None` in files from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<crate::kernels::Precision>,
    /// The kernels that ran ([`crate::kernels::Precision::kernels`]: the SIMD level, and AMX for bf16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernels: Option<String>,
    /// How often each code unit fires (the fraction of rows it is active on) with the final
    /// weights, on the validation rows, else the first [`CODE_SAMPLE`] training rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_firing: Vec<f32>,
}

impl TrainReport {
    /// The report without its wall-clock figures (seconds and samples per second), as model
    /// files store it: the bytes of a model depend on its seed and settings, not on how fast
    /// the machine was.
    #[must_use]
    pub fn without_timing(mut self) -> Self {
        self.seconds = 0.0;
        for s in &mut self.history {
            s.seconds = 0.0;
            s.samples_per_sec = 0.0;
            s.comm_seconds = 0.0;
            s.precision = None;
            s.kernels = None;
        }
        self
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// What the caller of a training function says after each event: go on, or stop cleanly
/// (e.g. on Ctrl-C). Callbacks that return `()` go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Flow {
    /// Keep training.
    #[default]
    Continue,
    /// Stop after this batch; keep the last complete epoch's weights (the best epoch's with
    /// early stopping). The loop first offers a checkpoint of where it stopped
    /// ([`Event::Checkpoint`]).
    Stop,
    /// Go on, after offering a checkpoint of where training stands ([`Event::Checkpoint`]);
    /// answered to [`Event::Batch`] or [`Event::EpochEnd`].
    Checkpoint,
}

impl From<()> for Flow {
    fn from((): ()) -> Self {
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::epochs_for_steps;

    #[test]
    fn small_data_gets_enough_steps() {
        // 1,073 rows in batches of 256: 5 batches an epoch, 200 epochs for 1,000 steps.
        assert_eq!(epochs_for_steps(1073, 256, 10, 1000), 200);
        // 60,000 rows: 235 batches, the 10 epochs already give 2,350 steps.
        assert_eq!(epochs_for_steps(60_000, 256, 10, 1000), 10);
        // One row, or a batch of 0, still counts one batch.
        assert_eq!(epochs_for_steps(1, 256, 10, 1000), 1000);
        assert_eq!(epochs_for_steps(10, 0, 10, 1000), 100);
    }
}
