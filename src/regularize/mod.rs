//! Regularizers of a layer's output — the code, or any hidden layer — and everything about
//! them: the settings grammar, validation, merging, display, the training forward (mask and
//! penalty), the gradient terms fused into the backward pass, and the encode-time rule.
//!
//! Adding a regularizer is a change to this file (a field, a [`Setting`], and its lines in
//! `validate`, `fmt`, the training `State::forward` and [`CodeGrad::apply`]) plus its
//! command-line flag.
//!
//! # The settings grammar
//! One grammar serves the command line's flags, `--hidden-reg LAYER:SPEC`, `--code-reg SPEC`
//! and architecture files: a comma-separated list of `key=value` items (see [`Setting`]):
//! `l1=1e-4,topk=25,topk-encode=50,dropout=0.1`. Architecture files also take the `[code]`
//! table of the serialized form (`l1 = 1e-4`, `topk = { k = 25 }`).

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::kernels;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

pub mod auxk;
pub use auxk::AuxK;

/// Regularizers of one layer's output; they combine. Stored in the model config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Regularizer {
    /// L1 penalty on the activations, `λ Σ|h|` averaged per sample (0: off).
    #[serde(default)]
    pub l1: f32,
    /// KL sparsity (sigmoid units only).
    #[serde(default)]
    pub kl: Option<KlSparsity>,
    /// k-sparse activations.
    #[serde(default)]
    pub topk: Option<TopK>,
    /// Dropout in training (the "redundant" autoencoder); off at encode time.
    #[serde(default)]
    pub dropout: f32,
    /// Binary code (semantic hashing): sigmoid units pushed to 0/1 in training and thresholded
    /// at 0.5 at encode time.
    #[serde(default)]
    pub binary: Option<BinaryCode>,
    /// Decorrelation (DeCov, Cogswell et al. 2016): `decov / 2 · Σ_{i≠j} C_ij²`, `C` the
    /// batch covariance of the activations; pushes units to carry different information (0: off).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub decov: f32,
    /// The AuxK loss that revives dead units of a sparse code (see [`auxk`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auxk: Option<AuxK>,
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

/// KL-divergence sparsity for sigmoid units: penalty `beta Σ_j KL(rho ‖ rho_hat_j)`, where
/// `rho_hat_j` is the mean activation of unit j over the batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct KlSparsity {
    /// Target mean activation.
    pub rho: f32,
    /// Weight of the penalty.
    pub beta: f32,
}

/// k-sparse activations (Makhzani & Frey 2013): only the k largest activations of each sample
/// are kept; the gradient flows through the kept units only.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopK {
    /// Units kept per sample in training (after the schedule).
    pub k: usize,
    /// Units kept at encode time (e.g. 2–3 × k); `None`: k.
    #[serde(default)]
    pub encode_k: Option<usize>,
    /// Start training with this many units and lower it linearly to `k`.
    #[serde(default)]
    pub start_k: Option<usize>,
    /// Epochs over which `start_k` goes down to `k`.
    #[serde(default)]
    pub anneal_epochs: usize,
    /// BatchTopK (Bussmann et al. 2024): training keeps the `k × batch` largest activations of
    /// the whole batch (rows share a budget of k on average), and inference keeps the values at
    /// or above [`TopK::threshold`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
    /// BatchTopK's inference threshold: after every epoch, the `k × rows`-th largest code value
    /// over the training sample (so the sample's mean L0 is k). `None` until calibrated (then
    /// each row keeps its k largest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
}

impl TopK {
    /// `k` units, the same at encode time, no schedule.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            encode_k: None,
            start_k: None,
            anneal_epochs: 0,
            batch: false,
            threshold: None,
        }
    }

    /// The most units training keeps in a row (BatchTopK: on average).
    pub fn k_max(&self) -> usize {
        self.start_k.map_or(self.k, |s| s.max(self.k))
    }

    /// Units kept in training at (0-based) `epoch`.
    pub fn k_at(&self, epoch: usize) -> usize {
        match self.start_k {
            Some(s) if epoch < self.anneal_epochs && s > self.k => {
                let t = epoch as f64 / self.anneal_epochs as f64;
                (s as f64 - t * (s - self.k) as f64).round() as usize
            }
            _ => self.k,
        }
    }
}

/// How training pushes a sigmoid code to 0/1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinaryCode {
    /// Gaussian noise of this standard deviation added before the sigmoid (Salakhutdinov &
    /// Hinton): the decoder can only use what survives the noise, so units saturate.
    Noise {
        /// Standard deviation of the noise on the pre-activation.
        sigma: f32,
    },
    /// Straight-through estimator: the forward pass uses the thresholded 0/1 code, the backward
    /// pass treats the threshold as the identity.
    StraightThrough,
}

impl BinaryCode {
    /// Parses `noise:SIGMA` or `ste`.
    ///
    /// # Errors
    /// A message naming the accepted forms.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let err = || format!("bad binary code `{s}`; expected noise:SIGMA or ste");
        match s.split_once(':') {
            None if s == "ste" => Ok(BinaryCode::StraightThrough),
            Some(("noise", v)) => {
                let sigma: f32 = v.trim().parse().map_err(|_| err())?;
                if sigma.is_finite() && sigma > 0.0 {
                    Ok(BinaryCode::Noise { sigma })
                } else {
                    Err(err())
                }
            }
            _ => Err(err()),
        }
    }
}

/// One item of the settings grammar: `key=value`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Setting {
    /// `l1=LAMBDA`: L1 penalty weight.
    L1(f32),
    /// `kl=RHO/BETA`: KL sparsity toward mean activation RHO with weight BETA.
    Kl(KlSparsity),
    /// `topk=K`: keep the K largest activations per sample.
    TopK(usize),
    /// `batchtopk=K`: keep the K × batch largest activations of each training batch, and the
    /// values above a calibrated threshold at inference.
    BatchTopK(usize),
    /// `topk-encode=K`: units kept at encode time.
    TopKEncode(usize),
    /// `topk-start=K`: start training with K units ...
    TopKStart(usize),
    /// `topk-anneal=N`: ... and lower it to `topk` over N epochs.
    TopKAnneal(usize),
    /// `dropout=P`: dropout in training.
    Dropout(f32),
    /// `binary=noise:SIGMA|ste`: binary code.
    Binary(BinaryCode),
    /// `decov=BETA`: decorrelation of the activations.
    Decov(f32),
    /// `auxk=K`: the AuxK loss over the K largest dead units of each row.
    AuxK(usize),
    /// `auxk-alpha=A`: its weight (default 1/32).
    AuxKAlpha(f32),
    /// `auxk-window=ROWS`: a unit is dead after ROWS training rows without firing (default: one
    /// epoch).
    AuxKWindow(usize),
}

/// The keys of the grammar, as help texts list them.
pub const KEYS: &str = "l1=LAMBDA, kl=RHO/BETA, topk=K, batchtopk=K, topk-encode=K, topk-start=K, topk-anneal=N, \
                        dropout=P, binary=noise:SIGMA|ste, decov=BETA, auxk=K, auxk-alpha=A, auxk-window=ROWS";

impl Setting {
    /// Parses one `key=value` item.
    ///
    /// # Errors
    /// A message naming the item and the accepted keys.
    pub fn parse(item: &str) -> std::result::Result<Self, String> {
        let err = || format!("bad regularizer setting `{item}`; expected one of {KEYS}");
        let (key, value) = item.split_once('=').ok_or_else(err)?;
        let value = value.trim();
        let num = || value.parse::<f32>().map_err(|_| err());
        let count = || value.parse::<usize>().map_err(|_| err());
        Ok(match key.trim() {
            "l1" => Setting::L1(num()?),
            "kl" => Setting::Kl(KlSparsity::parse(value).map_err(|_| err())?),
            "topk" => Setting::TopK(count()?),
            "batchtopk" => Setting::BatchTopK(count()?),
            "topk-encode" => Setting::TopKEncode(count()?),
            "topk-start" => Setting::TopKStart(count()?),
            "topk-anneal" => Setting::TopKAnneal(count()?),
            "dropout" => Setting::Dropout(num()?),
            "binary" => Setting::Binary(BinaryCode::parse(value).map_err(|e| format!("{e} (in `{item}`)"))?),
            "decov" => Setting::Decov(num()?),
            "auxk" => Setting::AuxK(count()?),
            "auxk-alpha" => Setting::AuxKAlpha(num()?),
            "auxk-window" => Setting::AuxKWindow(count()?),
            _ => return Err(err()),
        })
    }

    /// Parses a comma-separated list of items (`binary=noise:2` keeps its colon).
    ///
    /// # Errors
    /// As [`Setting::parse`], for the first bad item.
    pub fn parse_list(s: &str) -> std::result::Result<Vec<Setting>, String> {
        s.split(',').map(Setting::parse).collect()
    }

    /// Parses `LAYER:ITEMS` (the `--hidden-reg` form): a 0-based layer index and its items.
    ///
    /// # Errors
    /// A message naming the expected form.
    pub fn parse_layer(s: &str) -> std::result::Result<(usize, Vec<Setting>), String> {
        let err = || format!("bad layer regularizer `{s}`; expected LAYER:KEY=VALUE[,KEY=VALUE...] with keys {KEYS}");
        let (layer, items) = s.split_once(':').ok_or_else(err)?;
        let layer = layer.trim().parse().map_err(|_| err())?;
        Ok((layer, Setting::parse_list(items)?))
    }

    /// Settings that modify another one come after it (top-k's schedule after top-k).
    fn order(&self) -> u8 {
        match self {
            Setting::TopKEncode(_)
            | Setting::TopKStart(_)
            | Setting::TopKAnneal(_)
            | Setting::AuxKAlpha(_)
            | Setting::AuxKWindow(_) => 1,
            _ => 0,
        }
    }
}

impl KlSparsity {
    /// Parses `RHO/BETA` (or `RHO,BETA`).
    ///
    /// # Errors
    /// A message naming the expected form.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let err = || format!("bad KL sparsity `{s}`; expected RHO,BETA");
        let (r, b) = s.split_once(['/', ',']).ok_or_else(err)?;
        Ok(KlSparsity {
            rho: r.trim().parse().map_err(|_| err())?,
            beta: b.trim().parse().map_err(|_| err())?,
        })
    }
}

impl Regularizer {
    /// `base` (e.g. from an architecture file) with `settings` (e.g. from flags) applied on
    /// top: a setting replaces the same key of `base`, keys it does not name stay.
    ///
    /// # Errors
    /// A message when a top-k modifier comes without top-k.
    pub fn merged(base: Option<&Regularizer>, settings: &[Setting]) -> std::result::Result<Regularizer, String> {
        let mut r = base.cloned().unwrap_or_default();
        let mut sorted = settings.to_vec();
        sorted.sort_by_key(Setting::order);
        for s in &sorted {
            r.set(s)?;
        }
        Ok(r)
    }

    fn set(&mut self, s: &Setting) -> std::result::Result<(), String> {
        fn topk<'t>(t: &'t mut Option<TopK>, what: &str) -> std::result::Result<&'t mut TopK, String> {
            t.as_mut()
                .ok_or_else(|| format!("{what} needs topk (the units kept in training)"))
        }
        match *s {
            Setting::L1(v) => self.l1 = v,
            Setting::Kl(kl) => self.kl = Some(kl),
            Setting::TopK(k) | Setting::BatchTopK(k) => {
                let t = self.topk.get_or_insert(TopK::new(k));
                t.k = k;
                t.batch = matches!(s, Setting::BatchTopK(_));
                t.threshold = None;
            }
            Setting::TopKEncode(k) => topk(&mut self.topk, "topk-encode")?.encode_k = Some(k),
            Setting::TopKStart(k) => topk(&mut self.topk, "topk-start")?.start_k = Some(k),
            Setting::TopKAnneal(n) => topk(&mut self.topk, "topk-anneal")?.anneal_epochs = n,
            Setting::Dropout(p) => self.dropout = p,
            Setting::Binary(b) => self.binary = Some(b),
            Setting::Decov(v) => self.decov = v,
            Setting::AuxK(k) => self.auxk.get_or_insert(AuxK::new(k)).k = k,
            Setting::AuxKAlpha(a) => {
                self.auxk
                    .as_mut()
                    .ok_or("auxk-alpha needs auxk (the dead units per row)")?
                    .alpha = a;
            }
            Setting::AuxKWindow(n) => {
                self.auxk
                    .as_mut()
                    .ok_or("auxk-window needs auxk (the dead units per row)")?
                    .window = Some(n);
            }
        }
        Ok(())
    }

    /// Whether training multiplies the output by a mask (top-k, dropout, straight-through).
    pub fn masks(&self) -> bool {
        self.topk.is_some() || self.dropout > 0.0 || self.binary == Some(BinaryCode::StraightThrough)
    }

    /// Whether anything is on.
    pub fn is_active(&self) -> bool {
        self.masks()
            || self.l1 > 0.0
            || self.kl.is_some()
            || self.binary.is_some()
            || self.decov > 0.0
            || self.auxk.is_some()
    }

    /// Whether encoding changes the layer's output (top-k, binary threshold).
    pub fn acts_at_encode(&self) -> bool {
        self.topk.is_some() || self.binary.is_some()
    }

    /// Checks the values for a layer of `width` units with activation `act`.
    ///
    /// # Errors
    /// A message naming the problem (the caller names the layer).
    pub fn validate(&self, width: usize, act: Activation) -> std::result::Result<(), String> {
        if !(self.l1 >= 0.0 && self.l1.is_finite()) {
            return Err(format!("l1 must be >= 0, got {}", self.l1));
        }
        if !(self.decov >= 0.0 && self.decov.is_finite()) {
            return Err(format!("decov must be >= 0, got {}", self.decov));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        if let Some(kl) = self.kl {
            if act != Activation::Sigmoid {
                return Err(format!("KL sparsity needs sigmoid units, got {act}"));
            }
            if !(kl.rho > 0.0 && kl.rho < 1.0 && kl.beta >= 0.0) {
                return Err(format!(
                    "KL needs 0 < rho < 1 and beta >= 0, got {}, {}",
                    kl.rho, kl.beta
                ));
            }
        }
        if self.binary.is_some() && act != Activation::Sigmoid {
            return Err(format!("a binary code needs sigmoid units, got {act}"));
        }
        if let Some(t) = self.topk {
            let ok = |k: usize| (1..=width).contains(&k);
            if !ok(t.k) || !t.encode_k.is_none_or(ok) || !t.start_k.is_none_or(|s| ok(s) && s >= t.k) {
                return Err(format!(
                    "top-k needs 1 <= k <= start k and encode k <= width {width}, got k {}, encode {:?}, start {:?}",
                    t.k, t.encode_k, t.start_k
                ));
            }
            if t.batch && t.start_k.is_some() {
                return Err("batchtopk has no topk-start schedule".into());
            }
        }
        if let Some(a) = self.auxk {
            a.validate(width)?;
        }
        Ok(())
    }

    /// Sets the encode-time k of a top-k layer of `width` units.
    ///
    /// # Errors
    /// [`Error::Setting`] when there is no top-k or `k` is not in `1..=width`.
    pub fn set_encode_k(&mut self, k: usize, width: usize) -> Result<()> {
        let Some(t) = self.topk.as_mut() else {
            return Err(Error::setting("topk_encode", k, "the model's code has no top-k"));
        };
        if k == 0 || k > width {
            return Err(Error::setting(
                "topk_encode",
                k,
                format!("must be 1 ..= {width} (the code width)"),
            ));
        }
        t.encode_k = Some(k);
        Ok(())
    }

    /// The encode-time rule, on rows of `width` values: top-k keeps the encode k largest values
    /// (BatchTopK: the values at or above its threshold, unless an encode k is set), a binary
    /// code is thresholded at 0.5.
    pub fn encode(&self, out: &mut [f32], width: usize) {
        if let Some(t) = self.topk {
            match (t.batch, t.encode_k, t.threshold) {
                (true, None, Some(theta)) => out.iter_mut().filter(|v| **v < theta).for_each(|v| *v = 0.0),
                _ => top_k_rows(out, width, t.encode_k.unwrap_or(t.k)),
            }
        }
        if self.binary.is_some() {
            out.iter_mut().for_each(|v| *v = if *v > 0.5 { 1.0 } else { 0.0 });
        }
    }
}

impl fmt::Display for Regularizer {
    /// `l1 0.01, top-k 3 (encode 3), dropout 0.1`, as `inspect` shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.l1 > 0.0 {
            parts.push(format!("l1 {}", self.l1));
        }
        if let Some(kl) = self.kl {
            parts.push(format!("kl rho {} beta {}", kl.rho, kl.beta));
        }
        if let Some(t) = self.topk {
            match (t.batch, t.encode_k, t.threshold) {
                (true, None, Some(theta)) => parts.push(format!("batch top-k {} (encode: values >= {theta})", t.k)),
                (true, None, None) => parts.push(format!("batch top-k {} (encode {}, not calibrated)", t.k, t.k)),
                (true, Some(e), _) => parts.push(format!("batch top-k {} (encode {e})", t.k)),
                (false, e, _) => parts.push(format!("top-k {} (encode {})", t.k, e.unwrap_or(t.k))),
            }
        }
        if self.dropout > 0.0 {
            parts.push(format!("dropout {}", self.dropout));
        }
        match self.binary {
            Some(BinaryCode::Noise { sigma }) => parts.push(format!("binary (noise sigma {sigma} in training)")),
            Some(BinaryCode::StraightThrough) => parts.push("binary (straight-through in training)".into()),
            None => {}
        }
        if self.decov > 0.0 {
            parts.push(format!("decov {}", self.decov));
        }
        if let Some(a) = self.auxk {
            parts.push(a.to_string());
        }
        f.write_str(&parts.join(", "))
    }
}

/// Training buffers of one regularized layer, sized once for the largest batch.
#[derive(Clone, Debug, Default)]
pub(crate) struct State {
    /// The output before the mask (the activation derivative needs it).
    raw: Vec<f32>,
    /// Top-k / dropout multipliers.
    mask: Vec<f32>,
    /// Mean activation per unit (KL sparsity).
    rho_hat: Vec<f32>,
    /// Scratch of the top-k selection.
    topk_idx: Vec<usize>,
    /// Decorrelation: the centred batch, the covariance and the penalty's gradient.
    decov: Decov,
    /// The AuxK loss's firing counts and buffers.
    pub aux: Option<auxk::AuxState>,
}

/// Buffers of the decorrelation penalty.
#[derive(Clone, Debug, Default)]
struct Decov {
    /// Column means, (width).
    mean: Vec<f32>,
    /// The batch minus its column means, (batch, width).
    centred: Vec<f32>,
    /// The covariance with a zero diagonal, times the weight, (width, width).
    cov: Vec<f32>,
    /// The penalty's gradient with respect to the activations, (batch, width).
    grad: Vec<f32>,
}

impl Decov {
    fn new(rows: usize, width: usize) -> Self {
        Decov {
            mean: vec![0.0; width],
            centred: vec![0.0; rows * width],
            cov: vec![0.0; width * width],
            grad: vec![0.0; rows * width],
        }
    }

    /// The penalty `beta / 2 · Σ_{i≠j} C_ij²` of `h` (`b` rows of `width`), `C = Hcᵀ Hc / b`
    /// with `Hc` the centred batch, and its gradient `2 beta / b · Hc (C - diag C)` (the
    /// centring adds nothing: the rows of `Hc` sum to zero). GEMMs in fixed row blocks.
    fn forward(&mut self, h: &[f32], b: usize, width: usize, beta: f32) -> f64 {
        use kernels::{Precision, matmul_rows, view};
        let (centred, grad) = (&mut self.centred[..b * width], &mut self.grad[..b * width]);
        kernels::column_sums(h, &mut self.mean);
        self.mean.iter_mut().for_each(|m| *m /= b as f32);
        for (c, row) in centred.chunks_exact_mut(width).zip(h.chunks_exact(width)) {
            for ((c, &v), &m) in c.iter_mut().zip(row).zip(&self.mean) {
                *c = v - m;
            }
        }
        let hc = view(centred, b, width);
        matmul_rows(&mut self.cov, hc.transpose(), hc, false, Precision::F32, |_, _| {});
        let mut penalty = 0.0f64;
        for (k, c) in self.cov.iter_mut().enumerate() {
            *c /= b as f32;
            if k / width == k % width {
                *c = 0.0;
            } else {
                penalty += f64::from(*c) * f64::from(*c);
            }
            *c *= beta;
        }
        let scale = 2.0 / b as f32;
        matmul_rows(
            grad,
            hc,
            view(&self.cov, width, width),
            false,
            Precision::F32,
            |_, blk| blk.iter_mut().for_each(|g| *g *= scale),
        );
        0.5 * f64::from(beta) * penalty
    }
}

/// What the training forward of a regularizer needs besides the activations.
pub(crate) struct Step<'r> {
    /// 0-based epoch (for the top-k schedule).
    pub epoch: usize,
    /// Draws of dropout and binary-code noise.
    pub rng: &'r mut Rng,
}

impl State {
    /// Buffers for batches of up to `rows` rows of `width` units, in a network of `d_out`
    /// outputs (the AuxK loss's residual).
    pub fn new(reg: &Regularizer, rows: usize, width: usize, d_out: usize) -> Self {
        let per_row = |on: bool| if on { vec![0.0; rows * width] } else { Vec::new() };
        State {
            raw: per_row(reg.masks()),
            mask: per_row(reg.masks()),
            rho_hat: if reg.kl.is_some() { vec![0.0; width] } else { Vec::new() },
            topk_idx: Vec::new(),
            decov: if reg.decov > 0.0 {
                Decov::new(rows, width)
            } else {
                Decov::default()
            },
            aux: reg.auxk.map(|a| auxk::AuxState::new(&a, rows, width, d_out)),
        }
    }

    /// Builds the mask (top-k, dropout) from the layer's output `h` (`b` rows of `width`),
    /// writes `h = h * mask` in place and returns the penalty (L1, KL) of `h`, averaged per
    /// sample.
    pub fn forward(&mut self, reg: &Regularizer, h: &mut [f32], b: usize, width: usize, step: &mut Step<'_>) -> f64 {
        if reg.masks() {
            let (raw, mask) = (&mut self.raw[..b * width], &mut self.mask[..b * width]);
            raw.copy_from_slice(h);
            mask.fill(1.0);
            match reg.topk {
                // BatchTopK: the batch's k × b largest values, wherever they are.
                Some(t) if t.batch => {
                    for &j in dropped_by_top_k(raw, t.k * b, &mut self.topk_idx) {
                        mask[j] = 0.0;
                    }
                }
                Some(t) => {
                    // Rows in parallel, each row's selection its own: the same mask on any
                    // number of threads.
                    use rayon::prelude::*;
                    let k = t.k_at(step.epoch);
                    mask.par_chunks_mut(width)
                        .zip(raw.par_chunks(width))
                        .for_each_init(Vec::new, |idx, (m, row)| {
                            for &j in dropped_by_top_k(row, k, idx) {
                                m[j] = 0.0;
                            }
                        });
                }
                None => {}
            }
            if reg.dropout > 0.0 {
                let keep = 1.0 / (1.0 - reg.dropout);
                for m in mask.iter_mut() {
                    *m *= if step.rng.uniform() < reg.dropout { 0.0 } else { keep };
                }
            }
            if reg.binary == Some(BinaryCode::StraightThrough) {
                // Forward: the 0/1 code; backward: through the sigmoid as if unthresholded (the
                // derivative uses `raw`, the mask is 1).
                h.iter_mut().for_each(|v| *v = if *v > 0.5 { 1.0 } else { 0.0 });
            }
            h.iter_mut().zip(mask.iter()).for_each(|(h, m)| *h *= m);
        }
        if let Some(aux) = &mut self.aux {
            aux.observe(h, b, width);
        }
        if let Some(BinaryCode::Noise { sigma }) = reg.binary {
            // h = sigmoid(z + sigma * e), from h = sigmoid(z); the sigmoid derivative of the
            // backward pass then uses the noisy h, which is the derivative at z + sigma * e.
            for v in h.iter_mut() {
                let p = v.clamp(1e-7, 1.0 - 1e-7);
                let z = (p / (1.0 - p)).ln() + sigma * step.rng.normal();
                *v = 1.0 / (1.0 + (-z).exp());
            }
        }
        let mut penalty = 0.0f64;
        if reg.decov > 0.0 {
            penalty += self.decov.forward(h, b, width, reg.decov);
        }
        if reg.l1 > 0.0 {
            penalty += reg.l1 as f64 * h.iter().map(|v| v.abs() as f64).sum::<f64>() / b as f64;
        }
        if let Some(kl) = reg.kl {
            let rho_hat = &mut self.rho_hat;
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

    /// The AuxK loss of the last batch (see [`auxk::AuxState::loss`]): `h` is the code as the
    /// layer above saw it, `x` the targets and `y` the output, `w` the decoder's weight (and its
    /// transpose when the caller made it).
    #[allow(clippy::too_many_arguments)]
    pub fn aux_loss(
        &mut self,
        reg: &Regularizer,
        h: &[f32],
        x: &[f32],
        y: &[f32],
        w: (&[f32], Option<&[f32]>),
        b: usize,
        width: usize,
    ) -> f64 {
        let (Some(aux), Some(st)) = (reg.auxk, self.aux.as_mut()) else {
            return 0.0;
        };
        let raw = if reg.masks() { &self.raw[..b * width] } else { h };
        st.loss(&aux, raw, x, y, w, b, width)
    }

    /// The output the activation derivative of the backward pass needs: before the mask when
    /// there is one, else `h` itself.
    pub fn unmasked<'a>(&'a self, reg: &Regularizer, h: &'a [f32]) -> &'a [f32] {
        if reg.masks() { &self.raw[..h.len()] } else { h }
    }

    /// The gradient terms for a batch of `b` rows whose masked output is `h`.
    pub fn grad<'a>(&'a self, reg: &Regularizer, h: &'a [f32], b: usize) -> CodeGrad<'a> {
        CodeGrad {
            h,
            mask: reg.masks().then(|| &self.mask[..h.len()]),
            l1: reg.l1 / b as f32,
            kl: reg.kl.map(|kl| (kl.rho, kl.beta / b as f32, &self.rho_hat[..])),
            decov: (reg.decov > 0.0).then(|| &self.decov.grad[..h.len()]),
            aux: self.aux.as_ref().filter(|a| a.active).map(|a| &a.grad[..h.len()]),
        }
    }
}

/// BatchTopK's inference threshold from code values before the mask: the `keep`-th largest
/// value (so that `keep` values are at or above it), never below zero; `None` for no values.
pub(crate) fn batch_threshold(values: &[f32], keep: usize) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    let at = keep.clamp(1, v.len()) - 1;
    let (_, t, _) = v.select_nth_unstable_by(at, |a, b| b.total_cmp(a));
    Some(t.max(0.0))
}

/// Gradient terms of a regularized layer, fused into the backward pass of the layer above:
/// `dL/dh += l1 sign(h) + kl'(h)`, then `dL/dy = dL/dh * mask`.
#[derive(Clone, Copy, Debug)]
pub struct CodeGrad<'a> {
    /// The output as the layer above saw it (after the mask), (batch, width).
    pub h: &'a [f32],
    /// Top-k / dropout multipliers, (batch, width).
    pub mask: Option<&'a [f32]>,
    /// L1 weight divided by the batch size.
    pub l1: f32,
    /// KL sparsity: `(rho, beta / batch, mean activation per unit)`.
    pub kl: Option<(f32, f32, &'a [f32])>,
    /// The decorrelation penalty's gradient, (batch, width).
    pub decov: Option<&'a [f32]>,
    /// The AuxK loss's gradient, (batch, width): it reaches units the mask dropped.
    pub aux: Option<&'a [f32]>,
}

impl CodeGrad<'_> {
    /// Applies the terms to `g`, the gradient rows starting at element `start` of the output.
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
            if let Some(d) = self.decov {
                *g += d[at];
            }
            if let Some(m) = self.mask {
                *g *= m[at];
            }
            if let Some(a) = self.aux {
                *g += a[at];
            }
        }
    }
}

/// Keeps the `k` largest values of each row (ties: the lower index) and zeroes the rest, in
/// place. Deterministic.
pub(crate) fn top_k_rows(h: &mut [f32], cols: usize, k: usize) {
    if k >= cols {
        return;
    }
    let mut idx: Vec<usize> = Vec::with_capacity(cols);
    for row in h.chunks_exact_mut(cols) {
        for &j in dropped_by_top_k(row, k, &mut idx) {
            row[j] = 0.0;
        }
    }
}

/// Indices of `row` outside its `k` largest values (ties: the lower index is kept), using
/// `idx` as scratch. The one selection rule of training and encoding alike.
fn dropped_by_top_k<'a>(row: &[f32], k: usize, idx: &'a mut Vec<usize>) -> &'a [usize] {
    idx.clear();
    idx.extend(0..row.len());
    if k >= row.len() {
        return &[];
    }
    idx.select_nth_unstable_by(k, |&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    &idx[k..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_grammar_for_flags_layers_and_files() {
        let s = Setting::parse_list("l1=1e-4,topk-encode=6,topk=3,dropout=0.1,binary=noise:2,kl=0.05/1").unwrap();
        let r = Regularizer::merged(None, &s).unwrap();
        assert_eq!(r.l1, 1e-4);
        assert_eq!(
            r.topk,
            Some(TopK {
                encode_k: Some(6),
                ..TopK::new(3)
            })
        );
        assert_eq!(r.dropout, 0.1);
        assert_eq!(r.binary, Some(BinaryCode::Noise { sigma: 2.0 }));
        assert_eq!(r.kl, Some(KlSparsity { rho: 0.05, beta: 1.0 }));
        assert_eq!(
            r.to_string(),
            "l1 0.0001, kl rho 0.05 beta 1, top-k 3 (encode 6), dropout 0.1, binary (noise sigma 2 in training)"
        );
        assert_eq!(Setting::parse_layer("2:l1=0.5").unwrap(), (2, vec![Setting::L1(0.5)]));
        for bad in ["l2=1", "topk=x", "kl=0.1", "binary=yes", "l1"] {
            assert!(Setting::parse(bad).unwrap_err().contains(bad), "{bad}");
        }
        assert!(Setting::parse_layer("x:l1=1").is_err());
        assert!(
            Regularizer::merged(None, &[Setting::TopKStart(4)])
                .unwrap_err()
                .contains("needs topk")
        );
        let sae = Regularizer::merged(
            None,
            &Setting::parse_list("auxk-alpha=0.5,batchtopk=8,auxk=16,auxk-window=1000").unwrap(),
        )
        .unwrap();
        let t = sae.topk.unwrap();
        assert!(t.batch && t.k == 8 && t.threshold.is_none());
        assert_eq!(
            sae.auxk,
            Some(AuxK {
                k: 16,
                alpha: 0.5,
                window: Some(1000)
            })
        );
        assert!(sae.validate(32, Activation::Relu).is_ok());
        assert!(sae.validate(12, Activation::Relu).unwrap_err().contains("auxk needs"));
        assert!(
            Regularizer::merged(None, &[Setting::AuxKAlpha(0.1)])
                .unwrap_err()
                .contains("needs auxk")
        );
        // The threshold rule: values at or above it stay.
        let mut calibrated = sae.clone();
        calibrated.topk.as_mut().unwrap().threshold = Some(0.5);
        let mut h = vec![0.2, 0.5, 0.9, 0.0];
        calibrated.encode(&mut h, 4);
        assert_eq!(h, vec![0.0, 0.5, 0.9, 0.0]);
        assert_eq!(batch_threshold(&[0.1, 0.7, 0.3, 0.9], 2), Some(0.7));
        assert_eq!(batch_threshold(&[-1.0, -2.0], 1), Some(0.0));
    }

    /// Settings given later (flags) replace only the keys they name in a base (a file).
    #[test]
    fn settings_merge_over_a_base_key_by_key() {
        let file = Regularizer {
            l1: 0.5,
            topk: Some(TopK {
                encode_k: Some(9),
                ..TopK::new(4)
            }),
            ..Default::default()
        };
        let r = Regularizer::merged(Some(&file), &[Setting::TopK(6), Setting::Dropout(0.2)]).unwrap();
        assert_eq!(r.l1, 0.5);
        assert_eq!(r.topk.unwrap().k, 6);
        assert_eq!(r.topk.unwrap().encode_k, Some(9));
        assert_eq!(r.dropout, 0.2);
        assert_eq!(Regularizer::merged(Some(&file), &[]).unwrap(), file);
    }

    #[test]
    fn validation_names_the_problem() {
        let kl = Regularizer {
            kl: Some(KlSparsity { rho: 0.05, beta: 1.0 }),
            ..Default::default()
        };
        assert!(kl.validate(4, Activation::Relu).unwrap_err().contains("sigmoid units"));
        assert!(kl.validate(4, Activation::Sigmoid).is_ok());
        let topk = Regularizer::merged(None, &[Setting::TopK(5)]).unwrap();
        assert!(topk.validate(4, Activation::Relu).unwrap_err().contains("width 4"));
        let dropout = Regularizer::merged(None, &[Setting::Dropout(1.0)]).unwrap();
        assert!(dropout.validate(4, Activation::Relu).unwrap_err().contains("dropout"));
    }

    #[test]
    fn top_k_keeps_the_largest_and_the_lower_index_on_ties() {
        let mut h = vec![1.0, 3.0, 3.0, -1.0, 2.0, 0.5, 0.5, 0.5];
        top_k_rows(&mut h, 4, 2);
        assert_eq!(&h[..4], &[0.0, 3.0, 3.0, 0.0]);
        assert_eq!(&h[4..], &[2.0, 0.5, 0.0, 0.0]);
        let mut topk = TopK::new(5);
        topk.start_k = Some(20);
        topk.anneal_epochs = 4;
        assert_eq!((topk.k_at(0), topk.k_at(2), topk.k_at(4), topk.k_at(9)), (20, 13, 5, 5));
    }

    /// Every penalty's gradient, as the backward pass applies it, against central differences
    /// of the penalty (f64 steps on f32 activations): each alone (so that none hides in the
    /// others' tolerance), then all together.
    #[test]
    fn penalty_gradients_match_finite_differences() {
        let (b, w) = (6, 5);
        let mut rng = Rng::new(31);
        // Correlated columns (a shared factor), so that decorrelation has work to do.
        let h0: Vec<f32> = (0..b)
            .flat_map(|_| {
                let f = rng.uniform_range(0.2, 0.8);
                (0..w)
                    .map(|_| (f + rng.uniform_range(-0.15, 0.15)).clamp(0.05, 0.95))
                    .collect::<Vec<_>>()
            })
            .collect();
        let kl = Some(KlSparsity { rho: 0.2, beta: 0.4 });
        let cases = [
            Regularizer {
                l1: 0.3,
                ..Default::default()
            },
            Regularizer {
                kl,
                ..Default::default()
            },
            Regularizer {
                decov: 2.0,
                ..Default::default()
            },
            Regularizer {
                l1: 0.3,
                kl,
                decov: 2.0,
                ..Default::default()
            },
        ];
        for reg in cases {
            let penalty = |h: &[f32]| {
                let mut state = State::new(&reg, b, w, w);
                let mut h = h.to_vec();
                state.forward(
                    &reg,
                    &mut h,
                    b,
                    w,
                    &mut Step {
                        epoch: 0,
                        rng: &mut Rng::new(1),
                    },
                )
            };
            let mut state = State::new(&reg, b, w, w);
            let mut h = h0.clone();
            state.forward(
                &reg,
                &mut h,
                b,
                w,
                &mut Step {
                    epoch: 0,
                    rng: &mut Rng::new(1),
                },
            );
            let mut analytic = vec![0.0f32; b * w];
            state.grad(&reg, &h, b).apply(&mut analytic, 0);
            let largest = analytic.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(largest > 1e-3, "{reg:?}: the check needs a gradient, got {largest}");
            let step = 1e-3f32;
            for i in 0..b * w {
                let (mut up, mut down) = (h0.clone(), h0.clone());
                up[i] += step;
                down[i] -= step;
                let numeric = (penalty(&up) - penalty(&down)) / (2.0 * f64::from(step));
                let a = f64::from(analytic[i]);
                assert!(
                    (numeric - a).abs() < 1e-2 * f64::from(largest) + 1e-6,
                    "{reg:?} value {i}: numeric {numeric} analytic {a}"
                );
            }
        }
        // Decorrelated columns cost nothing; correlated ones do.
        let same: Vec<f32> = (0..b).flat_map(|r| [r as f32; 2]).collect();
        let only = Regularizer {
            decov: 1.0,
            ..Default::default()
        };
        let mut state = State::new(&only, b, 2, 2);
        let mut h = same.clone();
        let p = state.forward(
            &only,
            &mut h,
            b,
            2,
            &mut Step {
                epoch: 0,
                rng: &mut Rng::new(0),
            },
        );
        assert!(p > 1.0, "{p}");
        assert_eq!(Setting::parse("decov=0.5"), Ok(Setting::Decov(0.5)));
    }
}
