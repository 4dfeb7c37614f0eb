//! The one description of a network: a stack of layers ([`LayerSpec`]) with the shapes
//! between them. Autoencoders ([`Arch`]: encoder, then decoder) and classifiers (encoder, then
//! a head) are both planned by [`plan_stack`] and built by [`build`]; the `--hidden/--code`
//! shorthand ([`super::Mlp`]) and architecture files ([`super::toml`]) both make one.
//!
//! Rows stay (C, H, W) values, channel-major. A dense layer flattens an image input by
//! itself; `flatten` and `reshape` only change how the next layer sees a row. Shape mistakes
//! name the layer and the shapes that do not fit.

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::layer::conv::Geometry;
use crate::layer::{
    Conv2d, ConvTranspose2d, Dense, Gaussian, Gru, Init, Layer, Lstm, MaxPool2d, Prior, Repeat, Shape, Softmax,
    Upsample,
};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One entry of `[[encoder]]` or `[[decoder]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// Fully connected layer (flattens an image input).
    Dense {
        /// Output width.
        units: usize,
        /// Activation (default: the file's, by position).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<Activation>,
        /// Name shown in messages and `inspect`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// 2-D convolution.
    Conv {
        /// Output channels.
        filters: usize,
        /// Kernel size (square).
        kernel: usize,
        /// Stride (default 1).
        #[serde(default = "one")]
        stride: usize,
        /// Zero padding (default 0).
        #[serde(default)]
        padding: usize,
        /// Activation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<Activation>,
        /// Name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// 2-D transposed convolution.
    ConvTranspose {
        /// Output channels.
        filters: usize,
        /// Kernel size (square).
        kernel: usize,
        /// Stride (default 1).
        #[serde(default = "one")]
        stride: usize,
        /// Zero padding (default 0).
        #[serde(default)]
        padding: usize,
        /// Extra rows and columns on the bottom/right of the output (below the stride).
        #[serde(default)]
        output_padding: usize,
        /// Activation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<Activation>,
        /// Name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// 1-D convolution along the steps of one-row images (a series' windows, `train
    /// --window`): kernel, stride and padding along the width.
    Conv1d {
        /// Output channels.
        filters: usize,
        /// Kernel length in steps.
        kernel: usize,
        /// Stride (default 1).
        #[serde(default = "one")]
        stride: usize,
        /// Zero padding at both ends (default 0).
        #[serde(default)]
        padding: usize,
        /// Activation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<Activation>,
        /// Name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// 1-D transposed convolution along the steps of one-row images.
    ConvTranspose1d {
        /// Output channels.
        filters: usize,
        /// Kernel length in steps.
        kernel: usize,
        /// Stride (default 1).
        #[serde(default = "one")]
        stride: usize,
        /// Zero padding at both ends (default 0).
        #[serde(default)]
        padding: usize,
        /// Extra steps at the end of the output (below the stride).
        #[serde(default)]
        output_padding: usize,
        /// Activation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<Activation>,
        /// Name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// `size x size` max pooling, stride `size`.
    MaxPool {
        /// Window and stride.
        size: usize,
        /// Name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Nearest-neighbour upsampling.
    Upsample {
        /// Scale factor.
        factor: usize,
        /// Name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Images become flat rows (no computation).
    Flatten {
        /// Name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// The Gaussian code of a variational autoencoder: `[μ | log σ²]` in (an even width),
    /// `μ + σ ε` out in training and `μ` at inference; its KL term to `N(0, I)` is trained
    /// with it ([`crate::layer::gaussian`]).
    Gaussian {
        /// Weight of the KL term (default 1).
        #[serde(default = "unit")]
        beta: f32,
        /// Capacity target in nats per row (default 0: none).
        #[serde(default, skip_serializing_if = "is_zero")]
        capacity: f32,
        /// KL warm-up epochs (default 0: none).
        #[serde(default, skip_serializing_if = "is_zero_usize")]
        warmup: usize,
        /// Importance samples of the IWAE objective (default 1: the ELBO).
        #[serde(default = "one_sample", skip_serializing_if = "is_one_sample")]
        samples: usize,
        /// Name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Long short-term memory along the steps of one-row inputs `(channels, 1, steps)` (a
    /// series' windows, `train --window`): every step's state `(units, 1, steps)` out with
    /// `return_sequences = true`, else only the last step's `units` values (Keras' default).
    Lstm {
        /// Hidden units.
        units: usize,
        /// Every step's state (true) or the last step's (false, the default).
        #[serde(default)]
        return_sequences: bool,
        /// Name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Gated recurrent units (Cho et al.'s gates) along the steps of one-row inputs, as
    /// `lstm`.
    Gru {
        /// Hidden units.
        units: usize,
        /// Every step's state (true) or the last step's (false, the default).
        #[serde(default)]
        return_sequences: bool,
        /// Name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// A row of `n` values repeated at every one of `steps` steps: the one-row sequence
    /// `(n, 1, steps)` a recurrent decoder reads the code from (Keras' `RepeatVector`).
    Repeat {
        /// Steps of the output sequence.
        steps: usize,
        /// Name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Softmax over the channels at each position of its input (over a flat row's values): the
    /// probabilities a categorical output is trained to with `loss = "ce"` (Keras'
    /// `Softmax(axis=channels)`). No parameters.
    Softmax {
        /// Name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Flat rows become images of `shape = [channels, height, width]` (no computation).
    Reshape {
        /// Channels, height, width.
        shape: [usize; 3],
        /// Name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

fn one() -> usize {
    1
}

fn unit() -> f32 {
    1.0
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

fn is_zero_usize(v: &usize) -> bool {
    *v == 0
}

impl LayerSpec {
    /// The name given in the file, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            LayerSpec::Dense { name, .. }
            | LayerSpec::Conv { name, .. }
            | LayerSpec::ConvTranspose { name, .. }
            | LayerSpec::Conv1d { name, .. }
            | LayerSpec::ConvTranspose1d { name, .. }
            | LayerSpec::MaxPool { name, .. }
            | LayerSpec::Upsample { name, .. }
            | LayerSpec::Flatten { name }
            | LayerSpec::Gaussian { name, .. }
            | LayerSpec::Lstm { name, .. }
            | LayerSpec::Gru { name, .. }
            | LayerSpec::Repeat { name, .. }
            | LayerSpec::Softmax { name }
            | LayerSpec::Reshape { name, .. } => name.as_deref(),
        }
    }

    /// The kind, as architecture files spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Dense { .. } => "dense",
            LayerSpec::Conv { .. } => "conv",
            LayerSpec::ConvTranspose { .. } => "conv_transpose",
            LayerSpec::Conv1d { .. } => "conv1d",
            LayerSpec::ConvTranspose1d { .. } => "conv_transpose1d",
            LayerSpec::MaxPool { .. } => "max_pool",
            LayerSpec::Upsample { .. } => "upsample",
            LayerSpec::Flatten { .. } => "flatten",
            LayerSpec::Reshape { .. } => "reshape",
            LayerSpec::Gaussian { .. } => "gaussian",
            LayerSpec::Lstm { .. } => "lstm",
            LayerSpec::Gru { .. } => "gru",
            LayerSpec::Repeat { .. } => "repeat",
            LayerSpec::Softmax { .. } => "softmax",
        }
    }

    pub(crate) fn activation_mut(&mut self) -> Option<&mut Option<Activation>> {
        match self {
            LayerSpec::Dense { activation, .. }
            | LayerSpec::Conv { activation, .. }
            | LayerSpec::ConvTranspose { activation, .. }
            | LayerSpec::Conv1d { activation, .. }
            | LayerSpec::ConvTranspose1d { activation, .. } => Some(activation),
            _ => None,
        }
    }

    pub(crate) fn has_params(&self) -> bool {
        matches!(self, LayerSpec::Dense { .. }) || self.recurrent().is_some() || self.conv_sizes().is_some()
    }

    /// A recurrent layer's `(gates, units, return_sequences)`; `None` for other layers.
    fn recurrent(&self) -> Option<(usize, usize, bool)> {
        match *self {
            LayerSpec::Lstm {
                units,
                return_sequences,
                ..
            } => Some((4, units, return_sequences)),
            LayerSpec::Gru {
                units,
                return_sequences,
                ..
            } => Some((3, units, return_sequences)),
            _ => None,
        }
    }

    /// A convolution's sizes, each `(height, width)`: square for `conv` and
    /// `conv_transpose`, along the width of one-row images for `conv1d` and
    /// `conv_transpose1d`; `None` for other layers.
    fn conv_sizes(&self) -> Option<ConvSizes> {
        let sq = |n: usize| (n, n);
        let row = |n: usize| (1, n);
        let (filters, kernel, stride, padding, output_padding, one_d) = match *self {
            LayerSpec::Conv {
                filters,
                kernel,
                stride,
                padding,
                ..
            } => (filters, sq(kernel), sq(stride), sq(padding), None, false),
            LayerSpec::ConvTranspose {
                filters,
                kernel,
                stride,
                padding,
                output_padding,
                ..
            } => (
                filters,
                sq(kernel),
                sq(stride),
                sq(padding),
                Some(sq(output_padding)),
                false,
            ),
            LayerSpec::Conv1d {
                filters,
                kernel,
                stride,
                padding,
                ..
            } => (filters, row(kernel), row(stride), (0, padding), None, true),
            LayerSpec::ConvTranspose1d {
                filters,
                kernel,
                stride,
                padding,
                output_padding,
                ..
            } => (
                filters,
                row(kernel),
                row(stride),
                (0, padding),
                Some((0, output_padding)),
                true,
            ),
            _ => return None,
        };
        Some(ConvSizes {
            filters,
            kernel,
            stride,
            padding,
            output_padding,
            one_d,
        })
    }

    /// Whether the layer computes anything (`flatten` and `reshape` do not).
    pub fn computes(&self) -> bool {
        !matches!(self, LayerSpec::Flatten { .. } | LayerSpec::Reshape { .. })
    }
}

/// What [`LayerSpec::conv_sizes`] reads from a convolution's description.
struct ConvSizes {
    filters: usize,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    /// `Some` for a transposed convolution.
    output_padding: Option<(usize, usize)>,
    one_d: bool,
}

/// The shape of a row between layers: flat, or an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dims {
    /// A vector of this many values.
    Flat(usize),
    /// An image (channels, height, width).
    Image(Shape),
}

impl Dims {
    /// Number of values in a row (saturating: a plan refuses shapes whose size overflows,
    /// see [`Dims::checked_len`]).
    pub fn len(self) -> usize {
        self.checked_len().unwrap_or(usize::MAX)
    }

    /// Number of values in a row, `None` when it overflows.
    pub fn checked_len(self) -> Option<usize> {
        match self {
            Dims::Flat(n) => Some(n),
            Dims::Image((c, h, w)) => crate::bounds::checked_product(&[c, h, w]),
        }
    }

    /// Whether a row is empty.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dims::Flat(n) => write!(f, "{n}"),
            Dims::Image((c, h, w)) => write!(f, "{c}x{h}x{w}"),
        }
    }
}

/// A described architecture, as stored in the model config (activations resolved).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arch {
    /// Input shape: `[n]` for flat rows or `[channels, height, width]` for images.
    pub input: Vec<usize>,
    /// Encoder layers, input side first; the last one that computes is the code.
    pub encoder: Vec<LayerSpec>,
    /// Decoder layers, code side first; the last one is the output.
    pub decoder: Vec<LayerSpec>,
    /// Output shape when it differs from the input's (a model of paired targets, e.g.
    /// `[1, 32, 32]` masks for `[3, 32, 32]` images); `None`: the input's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Vec<usize>>,
}

/// One row of a plan ([`plan_stack`], [`Arch::plan`]): a layer with the shapes it maps between.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    /// The layer's name (its own, or `encoder[i]` / `decoder[i]`).
    pub name: String,
    /// Its kind, as the file spells it.
    pub kind: &'static str,
    /// Input shape.
    pub input: Dims,
    /// Output shape.
    pub output: Dims,
    /// Activation (identity for layers without one).
    pub activation: Activation,
    /// Whether the layer is in the encoder.
    pub encoder: bool,
    /// Whether it computes anything (`flatten` and `reshape` do not).
    pub computes: bool,
    spec: LayerSpec,
}

impl Planned {
    /// The shape of the layer's weight tensor as stored in model files (PyTorch's layouts),
    /// `None` for layers without parameters.
    pub fn weight_shape(&self) -> Option<Vec<usize>> {
        let channels = |d: Dims| match d {
            Dims::Image((c, _, _)) => c,
            Dims::Flat(n) => n,
        };
        if let LayerSpec::Dense { units, .. } = self.spec {
            return Some(vec![units, self.input.len()]);
        }
        if let Some((gates, units, _)) = self.spec.recurrent() {
            // The input and recurrent weights side by side: `[x_t ; h_{t-1}]`.
            return Some(vec![gates * units, channels(self.input) + units]);
        }
        let c = self.spec.conv_sizes()?;
        let (kh, kw) = c.kernel;
        Some(match c.output_padding {
            None => vec![c.filters, channels(self.input), kh, kw],
            Some(_) => vec![channels(self.input), c.filters, kh, kw],
        })
    }

    /// The length of the layer's bias (0 for layers without parameters).
    pub fn bias_len(&self) -> usize {
        match self.spec {
            LayerSpec::Dense { units, .. } => units,
            LayerSpec::Lstm { units, .. } => 4 * units,
            LayerSpec::Gru { units, .. } => 3 * units,
            _ => self.spec.conv_sizes().map_or(0, |c| c.filters),
        }
    }

    /// The layer's description.
    pub fn spec(&self) -> &LayerSpec {
        &self.spec
    }
}

impl Arch {
    /// The input shape.
    ///
    /// # Errors
    /// [`Error::Config`] unless `input` has 1 or 3 positive entries.
    pub fn input_dims(&self) -> Result<Dims> {
        shape_of(&self.input, "input")
    }

    /// The output shape: the declared one, else the input's.
    ///
    /// # Errors
    /// As [`Arch::input_dims`].
    pub fn output_dims(&self) -> Result<Dims> {
        match &self.output {
            Some(o) => shape_of(o, "output"),
            None => self.input_dims(),
        }
    }

    /// Every layer with its input and output shapes; checks that each fits the one before,
    /// that the encoder and the decoder each have a layer that computes and that the output
    /// has the input's size (or the declared output's).
    ///
    /// # Errors
    /// [`Error::Layer`] naming the layer and the shapes that do not fit; [`Error::Config`] for
    /// the whole stack's mistakes.
    pub fn plan(&self) -> Result<Vec<Planned>> {
        let input = self.input_dims()?;
        let plan = plan_stack(input, &[(true, &self.encoder), (false, &self.decoder)])?;
        if !self.encoder.iter().any(LayerSpec::computes) {
            return Err(Error::Config("the encoder has no layer that computes a code".into()));
        }
        if !self.decoder.iter().any(LayerSpec::computes) {
            return Err(Error::Config("the decoder has no layer".into()));
        }
        let cur = plan.last().map_or(input, |p| p.output);
        let want = self.output_dims()?;
        let what = if self.output.is_some() {
            "the declared output"
        } else {
            "the input"
        };
        if cur.len() != want.len() {
            return Err(Error::Config(format!(
                "the decoder's output is {cur} ({} values) but {what} is {want} ({} values)",
                cur.len(),
                want.len()
            )));
        }
        Ok(plan)
    }

    /// The layers that compute, with weights drawn from `rng`.
    ///
    /// # Errors
    /// As [`Arch::plan`].
    pub fn build(&self, init: Init, rng: &mut Rng) -> Result<Vec<Layer>> {
        build(&self.plan()?, init, rng)
    }

    /// Whether every layer is dense (no convolution, pooling, flatten or reshape).
    pub fn is_dense(&self) -> bool {
        self.encoder
            .iter()
            .chain(&self.decoder)
            .all(|s| matches!(s, LayerSpec::Dense { .. }))
    }
}

/// Plans a stack of layer groups (`(is_encoder, specs)`, e.g. encoder then decoder, or
/// encoder then a classifier's head) from `input`: every layer with the shapes it maps
/// between. Layers without a name are called `encoder[i]` or `decoder[i]`.
///
/// # Errors
/// [`Error::Layer`] naming the first layer whose shapes do not fit.
pub fn plan_stack(input: Dims, groups: &[(bool, &[LayerSpec])]) -> Result<Vec<Planned>> {
    let mut cur = input;
    let mut out = Vec::new();
    for &(encoder, specs) in groups {
        for (i, spec) in specs.iter().enumerate() {
            let side = if encoder { "encoder" } else { "decoder" };
            let name = spec.name().map_or_else(|| format!("{side}[{i}]"), str::to_string);
            let layer_error = |message| Error::Layer {
                layer: name.clone(),
                kind: spec.kind(),
                message,
            };
            let output = plan_one(spec, cur).map_err(layer_error)?;
            if output.checked_len().is_none() {
                return Err(layer_error(format!("its output {output} overflows")));
            }
            crate::bounds::check_alloc(
                output.len(),
                4,
                format_args!("layer {name}'s output ({output} values a row)"),
            )?;
            let mut s = spec.clone();
            let activation = s
                .activation_mut()
                .map_or(Activation::Identity, |a| a.unwrap_or(Activation::Identity));
            out.push(Planned {
                name,
                kind: spec.kind(),
                input: cur,
                output,
                activation,
                encoder,
                computes: spec.computes(),
                spec: s,
            });
            cur = output;
        }
    }
    let mut params = 0usize;
    for p in &out {
        let weights = match p.weight_shape() {
            Some(shape) => crate::bounds::product(&shape, format_args!("layer {}'s weights", p.name))?,
            None => 0,
        };
        params = weights
            .checked_add(p.bias_len())
            .and_then(|n| params.checked_add(n))
            .ok_or_else(|| Error::TooLarge {
                what: "the model".into(),
                detail: "its parameter count overflows".into(),
            })?;
    }
    crate::bounds::check_alloc(params, 4, format_args!("the model ({params} parameters)"))?;
    Ok(out)
}

/// The output shape of one layer on input `cur`, or what does not fit.
fn plan_one(spec: &LayerSpec, cur: Dims) -> std::result::Result<Dims, String> {
    let image = |what: &str| match cur {
        Dims::Image(s) => Ok(s),
        Dims::Flat(n) => Err(format!(
            "{what} needs an image input, got a flat row of {n}; add a reshape layer before it"
        )),
    };
    let positive = |v: &[(&str, usize)]| -> std::result::Result<(), String> {
        match v.iter().find(|(_, x)| *x == 0) {
            Some((k, _)) => Err(format!("{k} must be positive")),
            None => Ok(()),
        }
    };
    Ok(match spec {
        LayerSpec::Dense { units, .. } => {
            positive(&[("units", *units)])?;
            Dims::Flat(*units)
        }
        LayerSpec::Conv { .. }
        | LayerSpec::ConvTranspose { .. }
        | LayerSpec::Conv1d { .. }
        | LayerSpec::ConvTranspose1d { .. } => {
            let c = spec.conv_sizes().expect("a convolution");
            positive(&[("filters", c.filters), ("kernel", c.kernel.1), ("stride", c.stride.1)])?;
            let what = match (c.output_padding, c.one_d) {
                (None, false) => "a convolution",
                (Some(_), false) => "a transposed convolution",
                (None, true) => "a 1-D convolution",
                (Some(_), true) => "a 1-D transposed convolution",
            };
            let s = image(what)?;
            if c.one_d && s.1 != 1 {
                return Err(format!(
                    "{what} reads one-row inputs (a series' windows, train --window), got {}",
                    Dims::Image(s)
                ));
            }
            let fail = |e| format!("input {}: {}", Dims::Image(s), plain(e));
            match c.output_padding {
                None => {
                    let g = Geometry {
                        input: s,
                        kernel: c.kernel,
                        stride: c.stride,
                        padding: c.padding,
                    };
                    let (ho, wo) = g.output_hw().map_err(fail)?;
                    Dims::Image((c.filters, ho, wo))
                }
                Some(op) => {
                    let g = ConvTranspose2d::geometry(s, c.filters, c.kernel, c.stride, c.padding, op).map_err(fail)?;
                    Dims::Image(g.input)
                }
            }
        }
        LayerSpec::MaxPool { size, .. } => {
            let s = image("pooling")?;
            let l = MaxPool2d::new(s, *size).map_err(plain)?;
            Dims::Image(l.out_shape())
        }
        LayerSpec::Upsample { factor, .. } => {
            positive(&[("factor", *factor)])?;
            let s = image("upsampling")?;
            if s.1
                .checked_mul(*factor)
                .and_then(|h| s.2.checked_mul(*factor).map(|w| (h, w)))
                .is_none()
            {
                return Err(format!("upsampling {}x{} by {factor} overflows", s.1, s.2));
            }
            Dims::Image(
                Upsample {
                    input: s,
                    factor: *factor,
                }
                .out_shape(),
            )
        }
        LayerSpec::Flatten { .. } => Dims::Flat(cur.len()),
        LayerSpec::Softmax { .. } => cur,
        LayerSpec::Lstm { .. } | LayerSpec::Gru { .. } => {
            let (_, units, sequences) = spec.recurrent().expect("a recurrent layer");
            positive(&[("units", units)])?;
            let what = format!("a recurrent layer ({})", spec.kind());
            let (_, h, t) = match cur {
                Dims::Image(s) if s.1 == 1 => s,
                _ => {
                    return Err(format!(
                        "{what} reads one-row sequences (channels, 1, steps), such as a series' \
                         windows (train --window) or a repeat layer's output, got {cur}"
                    ));
                }
            };
            debug_assert_eq!(h, 1);
            if sequences {
                Dims::Image((units, 1, t))
            } else {
                Dims::Flat(units)
            }
        }
        LayerSpec::Repeat { steps, .. } => {
            positive(&[("steps", *steps)])?;
            if cur.len().checked_mul(*steps).is_none() {
                return Err(format!("repeating {cur} {steps} times overflows"));
            }
            Dims::Image((cur.len(), 1, *steps))
        }
        LayerSpec::Gaussian {
            beta,
            capacity,
            warmup,
            samples,
            ..
        } => {
            prior(*beta, *capacity, *warmup, *samples).check()?;
            if cur.len() < 2 || !cur.len().is_multiple_of(2) {
                return Err(format!(
                    "its input {cur} must have an even number of values ([mean | log-variance]), got {}",
                    cur.len()
                ));
            }
            Dims::Flat(cur.len() / 2)
        }
        LayerSpec::Reshape { shape: [c, h, w], .. } => {
            let to = Dims::Image((*c, *h, *w));
            if to.checked_len() != Some(cur.len()) || to.is_empty() {
                return Err(format!(
                    "cannot reshape {cur} ({} values) to {to} ({} values)",
                    cur.len(),
                    to.len()
                ));
            }
            to
        }
    })
}

/// The layers of a plan that compute, with weights drawn from `rng` in order.
///
/// # Errors
/// [`Error::Config`] when a convolution's tables cannot be made (images too large).
pub fn build(plan: &[Planned], init: Init, rng: &mut Rng) -> Result<Vec<Layer>> {
    let mut layers = Vec::new();
    for p in plan {
        let image = |d: Dims| match d {
            Dims::Image(s) => s,
            Dims::Flat(n) => (n, 1, 1),
        };
        let layer = match &p.spec {
            LayerSpec::Dense { units, .. } => Layer::Dense(Dense::new(p.input.len(), *units, p.activation, init, rng)),
            spec @ (LayerSpec::Conv { .. }
            | LayerSpec::ConvTranspose { .. }
            | LayerSpec::Conv1d { .. }
            | LayerSpec::ConvTranspose1d { .. }) => {
                let c = spec.conv_sizes().expect("a convolution");
                let input = image(p.input);
                match c.output_padding {
                    None => {
                        let g = Geometry {
                            input,
                            kernel: c.kernel,
                            stride: c.stride,
                            padding: c.padding,
                        };
                        Layer::Conv2d(Conv2d::new(g, c.filters, p.activation, init, rng)?)
                    }
                    Some(op) => Layer::ConvTranspose2d(ConvTranspose2d::new(
                        input,
                        c.filters,
                        c.kernel,
                        c.stride,
                        c.padding,
                        op,
                        p.activation,
                        init,
                        rng,
                    )?),
                }
            }
            LayerSpec::MaxPool { size, .. } => Layer::MaxPool2d(MaxPool2d::new(image(p.input), *size)?),
            LayerSpec::Upsample { factor, .. } => Layer::Upsample(Upsample {
                input: image(p.input),
                factor: *factor,
            }),
            LayerSpec::Gaussian {
                beta,
                capacity,
                warmup,
                samples,
                ..
            } => Layer::Gaussian(Gaussian::new(
                p.output.len(),
                prior(*beta, *capacity, *warmup, *samples),
            )),
            LayerSpec::Lstm { .. } | LayerSpec::Gru { .. } => {
                let (gates, units, sequences) = p.spec.recurrent().expect("a recurrent layer");
                let (c, _, t) = image(p.input);
                if gates == 4 {
                    Layer::Lstm(Lstm::new(c, units, t, !sequences, init, rng))
                } else {
                    Layer::Gru(Gru::new(c, units, t, !sequences, init, rng))
                }
            }
            LayerSpec::Repeat { steps, .. } => Layer::Repeat(Repeat {
                width: p.input.len(),
                steps: *steps,
            }),
            LayerSpec::Softmax { .. } => {
                let (channels, h, w) = image(p.input);
                Layer::Softmax(Softmax {
                    channels,
                    positions: h * w,
                })
            }
            LayerSpec::Flatten { .. } | LayerSpec::Reshape { .. } => continue,
        };
        layers.push(layer);
    }
    Ok(layers)
}

fn prior(beta: f32, capacity: f32, warmup: usize, samples: usize) -> Prior {
    Prior {
        beta,
        capacity,
        warmup,
        samples,
    }
}

fn one_sample() -> usize {
    1
}

fn is_one_sample(k: &usize) -> bool {
    *k == 1
}

/// `[n]` or `[channels, height, width]`, all positive.
pub(crate) fn shape_of(v: &[usize], what: &str) -> Result<Dims> {
    match v[..] {
        [n] if n > 0 => Ok(Dims::Flat(n)),
        [c, h, w] if c > 0 && h > 0 && w > 0 => {
            let d = Dims::Image((c, h, w));
            d.checked_len().ok_or_else(|| Error::TooLarge {
                what: format!("{what} = {v:?}"),
                detail: "its size overflows".into(),
            })?;
            Ok(d)
        }
        _ => Err(Error::Config(format!(
            "{what} = {v:?}: expected [width] or [channels, height, width], all positive"
        ))),
    }
}

/// An error's message without the "invalid configuration: " prefix.
pub(crate) fn plain(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        e => e.to_string(),
    }
}

impl Dims {
    /// As written in an architecture file: `[n]` or `[c, h, w]`.
    pub fn to_vec(self) -> Vec<usize> {
        match self {
            Dims::Flat(n) => vec![n],
            Dims::Image((c, h, w)) => vec![c, h, w],
        }
    }
}
