//! The autoencoder: [`AutoencoderConfig`] → [`AutoencoderConfig::init`] → [`Autoencoder`].

use crate::activation::Activation;
use crate::data::scale::Scaler;
use crate::error::{Error, Result};
use crate::kernels::ROW_BLOCK;
use crate::kernels::direct::transpose_images;
use crate::layer::{Dense, Init, Layer};
use crate::loss::Loss;
use crate::rng::Rng;
use crate::tensor::Matrix;
use serde::{Deserialize, Serialize};

/// The architecture of an MLP autoencoder. Plain data, validated once, saved in the model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutoencoderConfig {
    /// Width of the input rows.
    pub input_dim: usize,
    /// Encoder hidden widths, input side first (may be empty: a single-layer autoencoder).
    pub hidden: Vec<usize>,
    /// Width of the code.
    pub code: usize,
    /// Decoder hidden widths, code side first; `None` mirrors the encoder.
    #[serde(default)]
    pub decoder_hidden: Option<Vec<usize>>,
    /// Activation of every hidden layer.
    pub activation: Activation,
    /// Activation of the code layer.
    pub code_activation: Activation,
    /// Activation of the output layer.
    pub output_activation: Activation,
    /// Reconstruction loss.
    pub loss: Loss,
    /// Weight initialization.
    #[serde(default)]
    pub init: Init,
    /// Constraints on the code (sparsity, dropout).
    #[serde(default)]
    pub regularizer: CodeRegularizer,
    /// Tied weights: each decoder weight is the transpose of its mirror encoder weight.
    #[serde(default)]
    pub tied: bool,
    /// Regularizers of other hidden layers, by layer index (0-based, encoder first; the code
    /// layer uses `regularizer`, the output layer takes none).
    #[serde(default)]
    pub hidden_regularizers: std::collections::BTreeMap<usize, CodeRegularizer>,
    /// An architecture read from a file ([`crate::arch`]): when set, it defines the layers
    /// and `hidden`, `decoder_hidden` and `tied` are unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<crate::arch::Arch>,
    /// Width of the output when it differs from the input: a model trained on paired targets
    /// of another width (image -> mask). `None`: the input width (an autoencoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_dim: Option<usize>,
}

/// KL-divergence sparsity for sigmoid code units: penalty `beta Σ_j KL(rho ‖ rho_hat_j)`, where
/// `rho_hat_j` is the mean activation of unit j over the batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct KlSparsity {
    /// Target mean activation.
    pub rho: f32,
    /// Weight of the penalty.
    pub beta: f32,
}

/// k-sparse code (Makhzani & Frey 2013): only the k largest code activations of each sample
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
}

impl TopK {
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

/// Regularizers of the code layer; they combine. Stored in the model config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct CodeRegularizer {
    /// L1 penalty on code activations, `λ Σ|h|` averaged per sample (0: off).
    #[serde(default)]
    pub l1: f32,
    /// KL sparsity (sigmoid codes only).
    #[serde(default)]
    pub kl: Option<KlSparsity>,
    /// k-sparse code.
    #[serde(default)]
    pub topk: Option<TopK>,
    /// Dropout on the code in training (the "redundant" autoencoder); off at encode time.
    #[serde(default)]
    pub dropout: f32,
    /// Binary code (semantic hashing): sigmoid units pushed to 0/1 in training and thresholded
    /// at 0.5 at encode time.
    #[serde(default)]
    pub binary: Option<BinaryCode>,
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

impl CodeRegularizer {
    /// Whether training multiplies the code by a mask (top-k or dropout).
    pub fn masks(&self) -> bool {
        self.topk.is_some() || self.dropout > 0.0 || self.binary == Some(BinaryCode::StraightThrough)
    }

    /// Whether anything is on.
    pub fn is_active(&self) -> bool {
        self.masks() || self.l1 > 0.0 || self.kl.is_some() || self.binary.is_some()
    }
}

impl AutoencoderConfig {
    /// `input_dim -> code -> input_dim` with ReLU hidden units, a linear code, a sigmoid output
    /// and MSE; change fields or use the `with_*` methods for anything else.
    pub fn new(input_dim: usize, code: usize) -> Self {
        AutoencoderConfig {
            input_dim,
            hidden: Vec::new(),
            code,
            decoder_hidden: None,
            activation: Activation::Relu,
            code_activation: Activation::Identity,
            output_activation: Activation::Sigmoid,
            loss: Loss::Mse,
            init: Init::Auto,
            regularizer: CodeRegularizer::default(),
            tied: false,
            hidden_regularizers: Default::default(),
            arch: None,
            output_dim: None,
        }
    }

    /// The active regularizer of layer `layer`, if any.
    pub fn regularizer_at(&self, layer: usize) -> Option<&CodeRegularizer> {
        let r = if layer + 1 == self.encoder_layers() {
            Some(&self.regularizer)
        } else {
            self.hidden_regularizers.get(&layer)
        };
        r.filter(|r| r.is_active())
    }

    fn check_regularizer(&self, r: &CodeRegularizer, width: usize, act: Activation, what: &str) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("{what}: {m}")));
        if !(r.l1 >= 0.0 && r.l1.is_finite()) {
            return bad(format!("l1 must be >= 0, got {}", r.l1));
        }
        if !(0.0..1.0).contains(&r.dropout) {
            return bad(format!("dropout must be in [0, 1), got {}", r.dropout));
        }
        if let Some(kl) = r.kl {
            if act != Activation::Sigmoid {
                return bad(format!(
                    "KL sparsity needs sigmoid units (for a sigmoid code: --code-activation sigmoid), got {act}"
                ));
            }
            if !(kl.rho > 0.0 && kl.rho < 1.0 && kl.beta >= 0.0) {
                return bad(format!(
                    "KL needs 0 < rho < 1 and beta >= 0, got {}, {}",
                    kl.rho, kl.beta
                ));
            }
        }
        if r.binary.is_some() && act != Activation::Sigmoid {
            return bad(format!(
                "a binary code needs sigmoid units (--code-activation sigmoid), got {act}"
            ));
        }
        if let Some(t) = r.topk {
            let ok = |k: usize| (1..=width).contains(&k);
            if !ok(t.k) || !t.encode_k.is_none_or(ok) || !t.start_k.is_none_or(|s| ok(s) && s >= t.k) {
                return bad(format!(
                    "top-k needs 1 <= k <= start k and encode k <= width {width}, got k {}, encode {:?}, start {:?}",
                    t.k, t.encode_k, t.start_k
                ));
            }
        }
        Ok(())
    }

    /// `(encoder layer, decoder layer)` pairs whose weights are tied (empty unless `tied`).
    pub fn tied_pairs(&self) -> Vec<(usize, usize)> {
        if !self.tied {
            return Vec::new();
        }
        let n = self.encoder_layers();
        (0..n).map(|e| (e, 2 * n - 1 - e)).collect()
    }

    /// Sets the encoder hidden widths (the decoder mirrors them unless set separately).
    pub fn with_hidden(mut self, hidden: &[usize]) -> Self {
        self.hidden = hidden.to_vec();
        self
    }

    /// Sets the hidden, code and output activations.
    pub fn with_activations(mut self, hidden: Activation, code: Activation, output: Activation) -> Self {
        self.activation = hidden;
        self.code_activation = code;
        self.output_activation = output;
        self
    }

    /// Sets the loss.
    pub fn with_loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// Widths of the decoder's hidden layers, code side first.
    pub fn decoder_widths(&self) -> Vec<usize> {
        self.decoder_hidden
            .clone()
            .unwrap_or_else(|| self.hidden.iter().rev().copied().collect())
    }

    /// `(n_in, n_out, activation)` of every layer, encoder first.
    pub fn layer_shapes(&self) -> Vec<(usize, usize, Activation)> {
        if let Some(arch) = &self.arch {
            return arch
                .plan()
                .map(|plan| {
                    plan.iter()
                        .filter(|p| p.computes)
                        .map(|p| (p.input.len(), p.output.len(), p.activation))
                        .collect()
                })
                .unwrap_or_default();
        }
        let mut shapes = Vec::new();
        let mut n_in = self.input_dim;
        for &h in &self.hidden {
            shapes.push((n_in, h, self.activation));
            n_in = h;
        }
        shapes.push((n_in, self.code, self.code_activation));
        n_in = self.code;
        for h in self.decoder_widths() {
            shapes.push((n_in, h, self.activation));
            n_in = h;
        }
        shapes.push((n_in, self.output_width(), self.output_activation));
        shapes
    }

    /// Width of the output rows: the input width, or `output_dim` for a model of paired
    /// targets of another width.
    pub fn output_width(&self) -> usize {
        self.output_dim.unwrap_or(self.input_dim)
    }

    /// Whether the output has the input's width (what reconstruction errors, anomaly scores and
    /// pictures compare).
    pub fn reconstructs_input(&self) -> bool {
        self.output_width() == self.input_dim
    }

    /// Number of encoder layers (the code layer included).
    pub fn encoder_layers(&self) -> usize {
        match &self.arch {
            Some(arch) => arch.encoder.iter().filter(|s| s.computes()).count(),
            None => self.hidden.len() + 1,
        }
    }

    /// Checks sizes and combinations.
    ///
    /// # Errors
    /// [`Error::Config`] naming the problem.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.input_dim == 0 {
            return bad("input width must be positive".into());
        }
        if self.code == 0 {
            return bad("code width must be positive".into());
        }
        if let Some(arch) = &self.arch {
            let plan = arch.plan()?;
            let out = plan.last().map_or(0, |p| p.output.len());
            if out != self.output_width() {
                return bad(format!(
                    "the architecture's output has {out} values, the config says {}",
                    self.output_width()
                ));
            }
            let input = arch.input_dims()?.len();
            let code = plan.iter().rfind(|p| p.encoder && p.computes).map(|p| p.output.len());
            if input != self.input_dim || code != Some(self.code) {
                return bad(format!(
                    "the architecture maps {input} values to a code of {code:?}, the config says {} and {}",
                    self.input_dim, self.code
                ));
            }
            if self.tied {
                return bad("tied weights are for dense autoencoders given by --hidden, not architecture files".into());
            }
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return bad(format!("hidden layer {} has width 0", i + 1));
        }
        if self.decoder_widths().contains(&0) {
            return bad("a decoder hidden layer has width 0".into());
        }
        let shapes = self.layer_shapes();
        self.check_regularizer(&self.regularizer, self.code, self.code_activation, "code regularizer")?;
        for (&l, r) in &self.hidden_regularizers {
            if l + 1 >= shapes.len() || l + 1 == self.encoder_layers() {
                let hidden: Vec<String> = (0..shapes.len() - 1)
                    .filter(|&i| i + 1 != self.encoder_layers())
                    .map(|i| i.to_string())
                    .collect();
                return bad(format!(
                    "a hidden regularizer on layer {l}: the hidden layers are [{}] (the code layer {} takes --l1/--kl/--topk/--code-dropout)",
                    hidden.join(", "),
                    self.encoder_layers() - 1
                ));
            }
            self.check_regularizer(r, shapes[l].1, shapes[l].2, &format!("regularizer of layer {l}"))?;
        }
        if self.output_dim == Some(0) {
            return bad("output width must be positive".into());
        }
        if self.tied && !self.reconstructs_input() {
            return bad("tied weights need the output to have the input's width".into());
        }
        if self.tied
            && self
                .decoder_hidden
                .as_ref()
                .is_some_and(|d| *d != self.hidden.iter().rev().copied().collect::<Vec<_>>())
        {
            return bad("tied weights need the decoder to mirror the encoder (no --decoder-hidden)".into());
        }
        if self.loss == Loss::Bce && self.output_activation != Activation::Sigmoid {
            return bad(format!(
                "loss bce needs a sigmoid output activation, got {}",
                self.output_activation
            ));
        }
        Ok(())
    }

    /// Builds the model with weights drawn from `seed`.
    ///
    /// # Errors
    /// As [`AutoencoderConfig::validate`].
    pub fn init(&self, seed: u64) -> Result<Autoencoder> {
        self.validate()?;
        let mut rng = Rng::stream(seed, 0x1417);
        let layers = match &self.arch {
            Some(arch) => arch.build(self.init, &mut rng)?,
            None => self
                .layer_shapes()
                .into_iter()
                .map(|(i, o, a)| Layer::Dense(Dense::new(i, o, a, self.init, &mut rng)))
                .collect(),
        };
        let mut model = Autoencoder {
            config: self.clone(),
            layers,
            scaler: Scaler::default(),
        };
        model.sync_tied();
        Ok(model)
    }
}

/// A multilayer autoencoder `x -> code -> x̂`, with the scaler fitted on its training data.
///
/// `encode`, `decode` and `reconstruct` take and return data in the user's units; the scaler
/// is applied and inverted inside.
#[derive(Clone, Debug, PartialEq)]
pub struct Autoencoder {
    pub(crate) config: AutoencoderConfig,
    pub(crate) layers: Vec<Layer>,
    pub(crate) scaler: Scaler,
}

impl Autoencoder {
    /// Assembles a model from its parts (used by the file loader).
    ///
    /// # Errors
    /// [`Error::Config`] when the layers do not match the config.
    pub fn from_parts(config: AutoencoderConfig, layers: Vec<Dense>, scaler: Scaler) -> Result<Self> {
        Self::from_layers(config, layers.into_iter().map(Layer::Dense).collect(), scaler)
    }

    /// Assembles a model of any architecture from its layers.
    ///
    /// # Errors
    /// [`Error::Config`] when the layers do not match the config.
    pub fn from_layers(config: AutoencoderConfig, layers: Vec<Layer>, scaler: Scaler) -> Result<Self> {
        config.validate()?;
        let shapes = config.layer_shapes();
        let kinds_ok = match &config.arch {
            // Convolutions: the kinds and weight shapes (the widths alone do not pin them down).
            Some(arch) => {
                let template = arch.build(config.init, &mut Rng::new(0))?;
                template.len() == layers.len()
                    && template
                        .iter()
                        .zip(&layers)
                        .all(|(t, l)| t.kind() == l.kind() && t.weight_shape() == l.weight_shape())
            }
            None => layers.iter().all(|l| l.as_dense().is_some()),
        };
        let ok = kinds_ok
            && shapes.len() == layers.len()
            && shapes
                .iter()
                .zip(&layers)
                .all(|(&(i, o, a), l)| l.n_in() == i && l.n_out() == o && l.activation() == a);
        if !ok {
            return Err(Error::Config("layers do not match the architecture".into()));
        }
        if !scaler.is_identity() && (scaler.offset.len() != config.input_dim || scaler.scale.len() != config.input_dim)
        {
            return Err(Error::Config(format!(
                "scaler has {} features, model input has {}",
                scaler.offset.len(),
                config.input_dim
            )));
        }
        let model = Autoencoder { config, layers, scaler };
        let mut synced = model.clone();
        synced.sync_tied();
        if synced != model {
            return Err(Error::Config(
                "tied model: a decoder weight is not the transpose of its encoder weight".into(),
            ));
        }
        Ok(model)
    }

    /// Copies each tied encoder weight, transposed, into its decoder layer.
    pub(crate) fn sync_tied(&mut self) {
        for (e, d) in self.config.tied_pairs() {
            let (n_in, n_out) = (self.layers[e].n_in(), self.layers[e].n_out());
            let (enc, dec) = self.layers.split_at_mut(d);
            let (w, wt) = (enc[e].params().0, dec[0].params_mut().0);
            for o in 0..n_out {
                for i in 0..n_in {
                    wt[i * n_out + o] = w[o * n_in + i];
                }
            }
        }
    }

    /// The architecture.
    pub fn config(&self) -> &AutoencoderConfig {
        &self.config
    }

    /// All layers, encoder first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The layers as dense layers, when they all are (MLP autoencoders).
    pub fn dense_layers(&self) -> Option<Vec<&Dense>> {
        self.layers.iter().map(Layer::as_dense).collect()
    }

    /// Sets how many code units top-k keeps at encode time (e.g. 3k, as Makhzani & Frey do for
    /// classification features).
    ///
    /// # Errors
    /// [`Error::Config`] when the code has no top-k or `k` is 0 or wider than the code.
    pub fn set_encode_k(&mut self, k: usize) -> Result<()> {
        let code = self.config.code;
        let Some(t) = self.config.regularizer.topk.as_mut() else {
            return Err(Error::Config(
                "the model's code has no top-k (--topk-encode needs one)".into(),
            ));
        };
        if k == 0 || k > code {
            return Err(Error::Config(format!(
                "--topk-encode {k}: must be 1 ..= {code} (the code width)"
            )));
        }
        t.encode_k = Some(k);
        Ok(())
    }

    /// The fitted scaler.
    pub fn scaler(&self) -> &Scaler {
        &self.scaler
    }

    /// Width of the input.
    pub fn input_dim(&self) -> usize {
        self.config.input_dim
    }

    /// Width of the code.
    pub fn code_dim(&self) -> usize {
        self.config.code
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.layers.iter().map(Layer::num_params).sum()
    }

    /// An error unless the output has the input's width (see
    /// [`AutoencoderConfig::reconstructs_input`]).
    ///
    /// # Errors
    /// [`Error::Config`] naming both widths.
    pub fn check_reconstructs(&self) -> Result<()> {
        if self.config.reconstructs_input() {
            return Ok(());
        }
        Err(Error::Config(format!(
            "this model maps {} input values to {} output values (trained on paired targets): it has no reconstruction error; compare its outputs with targets (eval --target)",
            self.config.input_dim,
            self.config.output_width()
        )))
    }

    fn check_width(&self, x: &Matrix, expected: usize, what: &str) -> Result<()> {
        if x.cols() != expected {
            return Err(Error::Shape {
                what: what.into(),
                expected: format!("{expected} columns"),
                got: format!("{} columns", x.cols()),
            });
        }
        Ok(())
    }

    /// The codes of `x` (rows in, rows out).
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` does not have `input_dim` columns.
    pub fn encode(&self, x: &Matrix) -> Result<Matrix> {
        self.encode_layer(x, self.config.encoder_layers() - 1)
    }

    /// The activations of encoder layer `layer` (0-based; the last encoder layer is the code).
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong input width, [`Error::Config`] for a layer out of range.
    pub fn encode_layer(&self, x: &Matrix, layer: usize) -> Result<Matrix> {
        self.check_width(x, self.config.input_dim, "encoder input")?;
        if layer >= self.config.encoder_layers() {
            return Err(Error::Config(format!(
                "encoder layer {layer} does not exist; the encoder has layers 0..={}",
                self.config.encoder_layers() - 1
            )));
        }
        Ok(self.forward_scaled(&self.scaled(x), 0..layer + 1))
    }

    /// Reconstructions of codes.
    ///
    /// # Errors
    /// [`Error::Shape`] if `codes` does not have `code_dim` columns.
    pub fn decode(&self, codes: &Matrix) -> Result<Matrix> {
        self.check_width(codes, self.config.code, "decoder input (codes)")?;
        let mut out = self.forward_scaled(codes, self.config.encoder_layers()..self.layers.len());
        self.scaler.inverse(&mut out);
        Ok(out)
    }

    /// `decode(encode(x))`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` does not have `input_dim` columns.
    pub fn reconstruct(&self, x: &Matrix) -> Result<Matrix> {
        self.check_width(x, self.config.input_dim, "autoencoder input")?;
        let mut out = self.forward_scaled(&self.scaled(x), 0..self.layers.len());
        self.scaler.inverse(&mut out);
        Ok(out)
    }

    /// `x` in the network's units (scaled) and its reconstruction in the same units: what
    /// anomaly scores compare, so that no feature weighs more for being measured in larger units.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` does not have `input_dim` columns.
    pub fn reconstruct_scaled<'a>(&self, x: &'a Matrix) -> Result<(std::borrow::Cow<'a, Matrix>, Matrix)> {
        self.check_width(x, self.config.input_dim, "autoencoder input")?;
        self.check_reconstructs()?;
        let xs = self.scaled(x);
        let out = self.forward_scaled(&xs, 0..self.layers.len());
        Ok((xs, out))
    }

    /// `x` scaled for the network (borrowed when the scaler is the identity).
    fn scaled<'a>(&self, x: &'a Matrix) -> std::borrow::Cow<'a, Matrix> {
        let mut x = std::borrow::Cow::Borrowed(x);
        if !self.scaler.is_identity() {
            self.scaler.transform(x.to_mut());
        }
        x
    }

    /// Runs `layers` on already-scaled rows: blocks of [`ROW_BLOCK`] rows go through all the
    /// layers on one thread each (no synchronization between layers).
    pub(crate) fn forward_scaled(&self, x: &Matrix, layers: std::ops::Range<usize>) -> Matrix {
        let out_dim = self.layers[layers.end - 1].n_out();
        let in_dim = x.cols();
        let run = |xb: &[f32], ob: &mut [f32]| {
            let rows = xb.len() / in_dim;
            let n = layers.len();
            // The first layer reads the input block, the last writes the output block; two
            // buffers in between, swapped (no copies, no fresh large allocations per layer).
            // Taken from the thread's scratch and put back after (a nested task on the same
            // thread finds it empty and allocates its own).
            let [mut cur, mut next, mut tmp_in, mut tmp_out] = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
            // Consecutive convolutions pass channels-last images (`last` = their channels) and
            // convert back to channel-major only before another kind of layer, a code
            // regularizer or the output.
            let mut last: Option<usize> = None;
            for (i, l) in self.layers[layers.clone()].iter().enumerate() {
                // Every layer writes all of its output: the buffers grow but are never cleared.
                let dst: &mut [f32] = if i + 1 == n {
                    &mut *ob
                } else {
                    grow(&mut next, rows * l.n_out())
                };
                let src: &[f32] = if i == 0 { xb } else { &cur[..rows * l.n_in()] };
                let reg = self.config.regularizer_at(layers.start + i);
                let ends = i + 1 == n || reg.is_some();
                if let Some(conv) = l.channels_last() {
                    let (c_in, c_out) = (conv.geometry.input.0, conv.c_out);
                    let input: &[f32] = if last.is_none() && c_in > 1 {
                        let t = grow(&mut tmp_in, src.len());
                        transpose_images(src, l.n_in(), c_in, t, true);
                        t
                    } else {
                        src
                    };
                    if ends && c_out > 1 {
                        let t = grow(&mut tmp_out, dst.len());
                        conv.infer_channels_last(input, t);
                        transpose_images(t, l.n_out(), c_out, dst, false);
                    } else {
                        conv.infer_channels_last(input, dst);
                    }
                    last = (c_out > 1 && !ends).then_some(c_out);
                } else {
                    let input: &[f32] = match last.take() {
                        Some(c) => {
                            let t = grow(&mut tmp_in, src.len());
                            transpose_images(src, l.n_in(), c, t, false);
                            t
                        }
                        None => src,
                    };
                    l.infer(input, dst, crate::kernels::Precision::F32);
                }
                if let Some(r) = reg {
                    if let Some(t) = r.topk {
                        top_k_rows(dst, l.n_out(), t.encode_k.unwrap_or(t.k));
                    }
                    if r.binary.is_some() {
                        dst.iter_mut().for_each(|v| *v = if *v > 0.5 { 1.0 } else { 0.0 });
                    }
                }
                std::mem::swap(&mut cur, &mut next);
            }
            SCRATCH.with(|s| *s.borrow_mut() = [cur, next, tmp_in, tmp_out]);
        };
        // Each block's output is zeroed by the task that writes it (in cache, in parallel).
        let data = crate::kernels::par_fill_blocks(x.rows() * out_dim, ROW_BLOCK * out_dim, |i, ob| {
            run(
                &x.as_slice()[i * ROW_BLOCK * in_dim..][..ob.len() / out_dim * in_dim],
                ob,
            )
        });
        Matrix::from_vec(x.rows(), out_dim, data).expect("rows * out_dim values")
    }
}

thread_local! {
    /// Per-thread activation buffers of inference, reused between calls (fresh multi-megabyte
    /// buffers would page-fault on every call).
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 4]> = const { std::cell::RefCell::new([const { Vec::new() }; 4]) };
}

/// The first `len` values of `buf`, grown (never shrunk or cleared) to hold them.
fn grow(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// Keeps the `k` largest values of each row (ties: the lower index) and zeroes the rest;
/// returns nothing, writes in place. Deterministic.
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
pub(crate) fn dropped_by_top_k<'a>(row: &[f32], k: usize, idx: &'a mut Vec<usize>) -> &'a [usize] {
    idx.clear();
    idx.extend(0..row.len());
    if k >= row.len() {
        return &[];
    }
    idx.select_nth_unstable_by(k, |&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    &idx[k..]
}
