//! [`AutoencoderConfig`]: the one description of an autoencoder — a layer stack ([`Arch`]),
//! the loss, the initialization, tied weights and the regularizers of its layers. [`Mlp`] is
//! the `--hidden/--code` shorthand that builds one; version-1 model files (MLP fields, or an
//! architecture beside them) are converted by [`AutoencoderConfig::from_v1`].

use super::arch::{Arch, Dims, LayerSpec, Planned};
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::layer::{Init, Layer, Prior};
use crate::loss::Loss;
use crate::regularize::{Regularizer, Setting};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An autoencoder's architecture. Plain data, validated once ([`AutoencoderConfig::validate`]),
/// saved in the model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutoencoderConfig {
    /// The layers: encoder (its last computing layer is the code), then decoder.
    pub arch: Arch,
    /// Reconstruction loss.
    pub loss: Loss,
    /// Weight initialization.
    #[serde(default)]
    pub init: Init,
    /// Tied weights: each decoder weight is the transpose of its mirror encoder weight (dense
    /// stacks whose decoder mirrors the encoder).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tied: bool,
    /// Regularizers by computing layer (0-based, encoder first; the code layer is
    /// [`AutoencoderConfig::code_layer`]; the output layer takes none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub regularizers: BTreeMap<usize, Regularizer>,
}

impl AutoencoderConfig {
    /// A config of `arch` with MSE, the default initialization, no ties and no regularizers.
    pub fn new(arch: Arch) -> Self {
        AutoencoderConfig {
            arch,
            loss: Loss::Mse,
            init: Init::Auto,
            tied: false,
            regularizers: BTreeMap::new(),
        }
    }

    /// Every layer with its shapes.
    ///
    /// # Errors
    /// As [`Arch::plan`].
    pub fn plan(&self) -> Result<Vec<Planned>> {
        self.arch.plan()
    }

    /// The computing layers of the plan (what the model holds), encoder first.
    fn computing(&self) -> Vec<Planned> {
        self.plan()
            .map(|p| p.into_iter().filter(|p| p.computes).collect())
            .unwrap_or_default()
    }

    /// `(n_in, n_out, activation)` of every computing layer, encoder first.
    ///
    /// # Errors
    /// As [`Arch::plan`].
    pub fn layer_shapes(&self) -> Result<Vec<(usize, usize, Activation)>> {
        Ok(self
            .plan()?
            .iter()
            .filter(|p| p.computes)
            .map(|p| (p.input.len(), p.output.len(), p.activation))
            .collect())
    }

    /// Width of the input rows (0 for an invalid input shape).
    pub fn input_dim(&self) -> usize {
        self.arch.input_dims().map_or(0, Dims::len)
    }

    /// Width of the output rows: the input width, or the declared output's for a model of
    /// paired targets of another width.
    pub fn output_width(&self) -> usize {
        self.arch.output_dims().map_or(0, Dims::len)
    }

    /// Whether the output has the input's width (what reconstruction errors, anomaly scores and
    /// pictures compare).
    pub fn reconstructs_input(&self) -> bool {
        self.output_width() == self.input_dim()
    }

    /// Number of encoder layers that compute (the code layer included).
    pub fn encoder_layers(&self) -> usize {
        self.arch.encoder.iter().filter(|s| s.computes()).count()
    }

    /// Index of the code layer among the computing layers.
    pub fn code_layer(&self) -> usize {
        self.encoder_layers().saturating_sub(1)
    }

    /// Width of the code (0 for an invalid architecture).
    pub fn code_dim(&self) -> usize {
        self.computing().get(self.code_layer()).map_or(0, |p| p.output.len())
    }

    /// Activation of the code layer.
    pub fn code_activation(&self) -> Activation {
        self.computing()
            .get(self.code_layer())
            .map_or(Activation::Identity, |p| p.activation)
    }

    /// Activation of the output layer.
    pub fn output_activation(&self) -> Activation {
        self.computing().last().map_or(Activation::Identity, |p| p.activation)
    }

    /// The active regularizer of computing layer `layer`, if any.
    pub fn regularizer_at(&self, layer: usize) -> Option<&Regularizer> {
        self.regularizers.get(&layer).filter(|r| r.is_active())
    }

    /// The code layer's regularizer (active or not).
    pub fn code_regularizer(&self) -> Option<&Regularizer> {
        self.regularizers.get(&self.code_layer())
    }

    /// `(encoder layer, decoder layer)` pairs whose weights are tied (empty unless `tied`).
    pub fn tied_pairs(&self) -> Vec<(usize, usize)> {
        if !self.tied {
            return Vec::new();
        }
        let n = self.encoder_layers();
        (0..n).map(|e| (e, 2 * n - 1 - e)).collect()
    }

    /// Applies regularizer `settings` to computing layer `layer` over what it has (the settings
    /// grammar of [`crate::regularize`]: flags over a file's, key by key).
    ///
    /// # Errors
    /// [`Error::Layer`] for a top-k modifier without top-k (values are checked by
    /// [`AutoencoderConfig::validate`]).
    pub fn regularize(&mut self, layer: usize, settings: &[Setting]) -> Result<()> {
        if settings.is_empty() {
            return Ok(());
        }
        let merged = Regularizer::merged(self.regularizers.get(&layer), settings).map_err(|message| Error::Layer {
            layer: self.layer_name(layer),
            kind: "regularizer",
            message,
        })?;
        self.regularizers.insert(layer, merged);
        self.regularizers.retain(|_, r| r.is_active());
        Ok(())
    }

    /// The name of computing layer `l` in messages: `code` or `layer l`.
    fn layer_name(&self, l: usize) -> String {
        if l == self.code_layer() {
            "code".into()
        } else {
            l.to_string()
        }
    }

    /// Checks the architecture, the regularizers and the combinations.
    ///
    /// # Errors
    /// [`Error::Layer`] naming a layer (or its regularizer); [`Error::Config`] for the whole.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        let plan = self.plan()?;
        let layers: Vec<&Planned> = plan.iter().filter(|p| p.computes).collect();
        for (&l, r) in &self.regularizers {
            let Some(p) = layers.get(l).filter(|_| l + 1 < layers.len()) else {
                let hidden: Vec<String> = (0..layers.len() - 1).map(|i| i.to_string()).collect();
                return bad(format!(
                    "a regularizer on layer {l}: the layers that take one are [{}] (the code is layer {}; the output layer takes none)",
                    hidden.join(", "),
                    self.code_layer()
                ));
            };
            if p.kind == "gaussian" {
                return bad(format!(
                    "a regularizer on layer {l}: a Gaussian (variational) code takes none; its KL term is its regularizer"
                ));
            }
            r.validate(p.output.len(), p.activation)
                .map_err(|message| Error::Layer {
                    layer: self.layer_name(l),
                    kind: p.kind,
                    message: format!("regularizer: {message}"),
                })?;
        }
        if self.tied {
            let n = self.encoder_layers();
            let mirrored = self.arch.is_dense()
                && layers.len() == 2 * n
                && (0..n).all(|e| {
                    let (a, b) = (layers[e], layers[2 * n - 1 - e]);
                    a.input.len() == b.output.len() && a.output.len() == b.input.len()
                });
            if !mirrored {
                return bad("tied weights need dense layers whose decoder mirrors the encoder".into());
            }
        }
        let output = layers.last().map_or(Activation::Identity, |p| p.activation);
        if self.loss == Loss::Bce && output != Activation::Sigmoid {
            return bad(format!("loss bce needs a sigmoid output activation, got {output}"));
        }
        let last_kind = layers.last().map_or("none", |p| p.kind);
        if self.loss == Loss::Ce && last_kind != "softmax" {
            return bad(format!(
                "loss ce needs a softmax layer last (the probabilities over each position's channels), got {last_kind}"
            ));
        }
        Ok(())
    }

    /// Builds the model with weights drawn from `seed`.
    ///
    /// # Errors
    /// As [`AutoencoderConfig::validate`].
    pub fn init(&self, seed: u64) -> Result<super::Autoencoder> {
        self.validate()?;
        let mut rng = Rng::stream(seed, 0x1417);
        let layers = self.arch.build(self.init, &mut rng)?;
        let mut model = super::Autoencoder {
            config: self.clone(),
            layers,
            scaler: Default::default(),
            int8: None,
        };
        model.sync_tied();
        Ok(model)
    }

    /// Converts the `model` metadata of a version-1 file.
    ///
    /// # Errors
    /// The JSON error when it is not a version-1 config.
    pub fn from_v1(json: &str) -> std::result::Result<Self, serde_json::Error> {
        let v1: V1Config = serde_json::from_str(json)?;
        let mut regularizers = v1.hidden_regularizers;
        let code_layer;
        let arch = match v1.arch {
            Some(arch) => {
                code_layer = arch.encoder.iter().filter(|s| s.computes()).count().saturating_sub(1);
                arch
            }
            None => {
                code_layer = v1.hidden.len();
                Mlp {
                    input_dim: v1.input_dim,
                    hidden: v1.hidden,
                    code: v1.code,
                    decoder_hidden: v1.decoder_hidden,
                    activation: v1.activation,
                    code_activation: v1.code_activation,
                    output_activation: v1.output_activation,
                    output_dim: v1.output_dim,
                    ..Mlp::new(0, 0)
                }
                .arch()
            }
        };
        if v1.regularizer.is_active() {
            regularizers.insert(code_layer, v1.regularizer);
        }
        regularizers.retain(|_, r| r.is_active());
        Ok(AutoencoderConfig {
            arch,
            loss: v1.loss,
            init: v1.init,
            tied: v1.tied,
            regularizers,
        })
    }
}

/// The `model` metadata of version-1 files: MLP fields, or an architecture beside them.
#[derive(Deserialize)]
struct V1Config {
    input_dim: usize,
    hidden: Vec<usize>,
    code: usize,
    #[serde(default)]
    decoder_hidden: Option<Vec<usize>>,
    activation: Activation,
    code_activation: Activation,
    output_activation: Activation,
    loss: Loss,
    #[serde(default)]
    init: Init,
    #[serde(default)]
    regularizer: Regularizer,
    #[serde(default)]
    tied: bool,
    #[serde(default)]
    hidden_regularizers: BTreeMap<usize, Regularizer>,
    #[serde(default)]
    arch: Option<Arch>,
    #[serde(default)]
    output_dim: Option<usize>,
}

/// The MLP shorthand: `input -> hidden... -> code -> decoder hidden... -> output`, dense layers
/// with one hidden activation. [`Mlp::config`] builds the [`AutoencoderConfig`].
///
/// Defaults: ReLU hidden units, a linear code, a sigmoid output, MSE, no hidden layers.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// Width of the input rows.
    pub input_dim: usize,
    /// Encoder hidden widths, input side first (may be empty: a single-layer autoencoder).
    pub hidden: Vec<usize>,
    /// Width of the code.
    pub code: usize,
    /// Decoder hidden widths, code side first; `None` mirrors the encoder.
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
    pub init: Init,
    /// Tied weights.
    pub tied: bool,
    /// The code's regularizer.
    pub regularizer: Regularizer,
    /// Regularizers of other hidden layers, by layer index (0-based, encoder first).
    pub hidden_regularizers: BTreeMap<usize, Regularizer>,
    /// Width of the output when it differs from the input (a model of paired targets).
    pub output_dim: Option<usize>,
    /// A variational code: the code layer becomes a linear `[μ | log σ²]` layer of twice the
    /// code's width and a Gaussian layer with this KL term ([`crate::layer::gaussian`]).
    pub vae: Option<Prior>,
}

impl Mlp {
    /// `input_dim -> code -> input_dim` with the defaults.
    pub fn new(input_dim: usize, code: usize) -> Self {
        Mlp {
            input_dim,
            hidden: Vec::new(),
            code,
            decoder_hidden: None,
            activation: Activation::Relu,
            code_activation: Activation::Identity,
            output_activation: Activation::Sigmoid,
            loss: Loss::Mse,
            init: Init::Auto,
            tied: false,
            regularizer: Regularizer::default(),
            hidden_regularizers: BTreeMap::new(),
            output_dim: None,
            vae: None,
        }
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

    /// The layer stack.
    pub fn arch(&self) -> Arch {
        let dense = |units, act| LayerSpec::Dense {
            units,
            activation: Some(act),
            name: None,
        };
        let mut encoder: Vec<LayerSpec> = self.hidden.iter().map(|&h| dense(h, self.activation)).collect();
        match self.vae {
            Some(p) => {
                encoder.push(dense(2 * self.code, Activation::Identity));
                encoder.push(LayerSpec::Gaussian {
                    beta: p.beta,
                    capacity: p.capacity,
                    warmup: p.warmup,
                    samples: p.samples,
                    name: None,
                });
            }
            None => encoder.push(dense(self.code, self.code_activation)),
        }
        let mut decoder: Vec<LayerSpec> = self
            .decoder_widths()
            .into_iter()
            .map(|h| dense(h, self.activation))
            .collect();
        decoder.push(dense(self.output_dim.unwrap_or(self.input_dim), self.output_activation));
        Arch {
            input: vec![self.input_dim],
            encoder,
            decoder,
            output: self.output_dim.map(|d| vec![d]),
        }
    }

    /// The config this shorthand describes.
    pub fn config(&self) -> AutoencoderConfig {
        let mut regularizers = self.hidden_regularizers.clone();
        if self.regularizer.is_active() {
            regularizers.insert(
                self.hidden.len() + usize::from(self.vae.is_some()),
                self.regularizer.clone(),
            );
        }
        regularizers.retain(|_, r| r.is_active());
        AutoencoderConfig {
            arch: self.arch(),
            loss: self.loss,
            init: self.init,
            tied: self.tied,
            regularizers,
        }
    }

    /// [`AutoencoderConfig::init`] of [`Mlp::config`].
    ///
    /// # Errors
    /// As [`AutoencoderConfig::validate`].
    pub fn init(&self, seed: u64) -> Result<super::Autoencoder> {
        self.config().init(seed)
    }
}

/// The layers of a config, checked against it: their kinds, shapes and activations (used by
/// the file loader and by code that assembles models from parts).
pub(crate) fn check_layers(config: &AutoencoderConfig, layers: &[Layer]) -> Result<()> {
    let plan: Vec<Planned> = config.plan()?.into_iter().filter(|p| p.computes).collect();
    let ok = plan.len() == layers.len()
        && plan.iter().zip(layers).all(|(p, l)| {
            // 1-D convolutions are convolution layers with one-row kernels.
            let kind = match p.kind {
                "conv1d" => "conv",
                "conv_transpose1d" => "conv_transpose",
                k => k,
            };
            kind == l.kind()
                && p.weight_shape() == l.weight_shape()
                && p.input.len() == l.n_in()
                && p.output.len() == l.n_out()
                && p.activation == l.activation()
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Config("layers do not match the architecture".into()))
    }
}
