//! Architectures from a file: any mix of dense and convolutional layers, described in TOML.
//!
//! ```toml
//! input = [1, 28, 28]          # channels, height, width (default: the data's image shape)
//! # output = [1, 28, 28]       # only for paired targets of another shape (default: input)
//! activation = "relu"          # hidden layers (default relu)
//! code_activation = "identity" # the last encoder layer (default identity)
//! output_activation = "sigmoid"# the last decoder layer (default sigmoid)
//! loss = "bce"
//!
//! [code]                       # regularizers of the code, as the train flags set them
//! l1 = 1e-4
//!
//! [[encoder]]
//! type = "conv"                # conv, conv_transpose, max_pool, upsample, dense, flatten, reshape
//! filters = 16
//! kernel = 3
//! stride = 2
//! padding = 1
//!
//! [[encoder]]
//! type = "dense"
//! units = 32
//!
//! [[decoder]]
//! type = "dense"
//! units = 3136
//!
//! [[decoder]]
//! type = "reshape"
//! shape = [16, 14, 14]
//!
//! [[decoder]]
//! type = "conv_transpose"
//! filters = 1
//! kernel = 3
//! stride = 2
//! padding = 1
//! output_padding = 1
//! ```
//!
//! The last encoder layer is the code. A dense layer flattens an image input by itself;
//! `flatten` and `reshape` only change how the next layer sees a row (rows stay (C, H, W)
//! values, channel-major). Shape mistakes name the layer and the shapes that do not fit.

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::layer::conv::Geometry;
use crate::layer::{Conv2d, ConvTranspose2d, Dense, Init, Layer, MaxPool2d, Shape, Upsample};
use crate::loss::Loss;
use crate::model::{AutoencoderConfig, CodeRegularizer};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

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

impl LayerSpec {
    fn name(&self) -> Option<&str> {
        match self {
            LayerSpec::Dense { name, .. }
            | LayerSpec::Conv { name, .. }
            | LayerSpec::ConvTranspose { name, .. }
            | LayerSpec::MaxPool { name, .. }
            | LayerSpec::Upsample { name, .. }
            | LayerSpec::Flatten { name }
            | LayerSpec::Reshape { name, .. } => name.as_deref(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Dense { .. } => "dense",
            LayerSpec::Conv { .. } => "conv",
            LayerSpec::ConvTranspose { .. } => "conv_transpose",
            LayerSpec::MaxPool { .. } => "max_pool",
            LayerSpec::Upsample { .. } => "upsample",
            LayerSpec::Flatten { .. } => "flatten",
            LayerSpec::Reshape { .. } => "reshape",
        }
    }

    fn activation_mut(&mut self) -> Option<&mut Option<Activation>> {
        match self {
            LayerSpec::Dense { activation, .. }
            | LayerSpec::Conv { activation, .. }
            | LayerSpec::ConvTranspose { activation, .. } => Some(activation),
            _ => None,
        }
    }

    fn has_params(&self) -> bool {
        matches!(
            self,
            LayerSpec::Dense { .. } | LayerSpec::Conv { .. } | LayerSpec::ConvTranspose { .. }
        )
    }

    /// Whether the layer computes anything (`flatten` and `reshape` do not).
    pub fn computes(&self) -> bool {
        !matches!(self, LayerSpec::Flatten { .. } | LayerSpec::Reshape { .. })
    }
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
    /// Number of values in a row.
    pub fn len(self) -> usize {
        match self {
            Dims::Flat(n) => n,
            Dims::Image((c, h, w)) => c * h * w,
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

/// One row of [`Arch::plan`]: a layer with the shapes it maps between.
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

impl Arch {
    /// The input shape.
    ///
    /// # Errors
    /// [`Error::Config`] unless `input` has 1 or 3 positive entries.
    pub fn input_dims(&self) -> Result<Dims> {
        shape_of(&self.input, "input")
    }

    /// Every layer with its input and output shapes; checks that each fits the one before,
    /// that the encoder ends in a computing layer and that the output has the input's size.
    ///
    /// # Errors
    /// [`Error::Config`] naming the layer and the shapes that do not fit.
    pub fn plan(&self) -> Result<Vec<Planned>> {
        let input = self.input_dims()?;
        let mut cur = input;
        let mut out = Vec::new();
        for (encoder, specs) in [(true, &self.encoder), (false, &self.decoder)] {
            for (i, spec) in specs.iter().enumerate() {
                let side = if encoder { "encoder" } else { "decoder" };
                let name = spec.name().map_or_else(|| format!("{side}[{i}]"), str::to_string);
                let bad = |m: String| Error::Config(format!("layer {name} ({}): {m}", spec.kind()));
                let image = |what: &str| match cur {
                    Dims::Image(s) => Ok(s),
                    Dims::Flat(n) => Err(bad(format!(
                        "{what} needs an image input, got a flat row of {n}; add a reshape layer before it"
                    ))),
                };
                let act = |a: &Option<Activation>| a.unwrap_or(Activation::Identity);
                let positive = |v: &[(&str, usize)]| -> Result<()> {
                    match v.iter().find(|(_, x)| *x == 0) {
                        Some((k, _)) => Err(bad(format!("{k} must be positive"))),
                        None => Ok(()),
                    }
                };
                let output = match spec {
                    LayerSpec::Dense { units, .. } => {
                        positive(&[("units", *units)])?;
                        Dims::Flat(*units)
                    }
                    LayerSpec::Conv {
                        filters,
                        kernel,
                        stride,
                        padding,
                        ..
                    } => {
                        positive(&[("filters", *filters), ("kernel", *kernel), ("stride", *stride)])?;
                        let s = image("a convolution")?;
                        let g = Geometry {
                            input: s,
                            kernel: *kernel,
                            stride: *stride,
                            padding: *padding,
                        };
                        let (ho, wo) = g
                            .output_hw()
                            .map_err(|e| bad(format!("input {}: {}", Dims::Image(s), plain(e))))?;
                        Dims::Image((*filters, ho, wo))
                    }
                    LayerSpec::ConvTranspose {
                        filters,
                        kernel,
                        stride,
                        padding,
                        output_padding,
                        ..
                    } => {
                        positive(&[("filters", *filters), ("kernel", *kernel), ("stride", *stride)])?;
                        let s = image("a transposed convolution")?;
                        let g = ConvTranspose2d::geometry(s, *filters, *kernel, *stride, *padding, *output_padding)
                            .map_err(|e| bad(format!("input {}: {}", Dims::Image(s), plain(e))))?;
                        Dims::Image(g.input)
                    }
                    LayerSpec::MaxPool { size, .. } => {
                        let s = image("pooling")?;
                        let l = MaxPool2d::new(s, *size).map_err(|e| bad(plain(e)))?;
                        Dims::Image(l.out_shape())
                    }
                    LayerSpec::Upsample { factor, .. } => {
                        positive(&[("factor", *factor)])?;
                        let s = image("upsampling")?;
                        Dims::Image(
                            Upsample {
                                input: s,
                                factor: *factor,
                            }
                            .out_shape(),
                        )
                    }
                    LayerSpec::Flatten { .. } => Dims::Flat(cur.len()),
                    LayerSpec::Reshape { shape: [c, h, w], .. } => {
                        let to = Dims::Image((*c, *h, *w));
                        if to.len() != cur.len() || to.is_empty() {
                            return Err(bad(format!(
                                "cannot reshape {cur} ({} values) to {to} ({} values)",
                                cur.len(),
                                to.len()
                            )));
                        }
                        to
                    }
                };
                let mut s = spec.clone();
                let activation = s.activation_mut().map_or(Activation::Identity, |a| act(a));
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
        if !self.encoder.iter().any(LayerSpec::computes) {
            return Err(Error::Config("the encoder has no layer that computes a code".into()));
        }
        if !self.decoder.iter().any(LayerSpec::computes) {
            return Err(Error::Config("the decoder has no layer".into()));
        }
        let (want, what) = match &self.output {
            Some(o) => (shape_of(o, "output")?, "the declared output"),
            None => (input, "the input"),
        };
        if cur.len() != want.len() {
            return Err(Error::Config(format!(
                "the decoder's output is {cur} ({} values) but {what} is {want} ({} values)",
                cur.len(),
                want.len()
            )));
        }
        Ok(out)
    }

    /// The layers that compute, with weights drawn from `rng`.
    ///
    /// # Errors
    /// As [`Arch::plan`].
    pub fn build(&self, init: Init, rng: &mut Rng) -> Result<Vec<Layer>> {
        let mut layers = Vec::new();
        for p in self.plan()? {
            let image = |d: Dims| match d {
                Dims::Image(s) => s,
                Dims::Flat(n) => (n, 1, 1),
            };
            let layer = match &p.spec {
                LayerSpec::Dense { units, .. } => {
                    Layer::Dense(Dense::new(p.input.len(), *units, p.activation, init, rng))
                }
                LayerSpec::Conv {
                    filters,
                    kernel,
                    stride,
                    padding,
                    ..
                } => Layer::Conv2d(Conv2d::new(
                    image(p.input),
                    *filters,
                    *kernel,
                    *stride,
                    *padding,
                    p.activation,
                    init,
                    rng,
                )?),
                LayerSpec::ConvTranspose {
                    filters,
                    kernel,
                    stride,
                    padding,
                    output_padding,
                    ..
                } => Layer::ConvTranspose2d(ConvTranspose2d::new(
                    image(p.input),
                    *filters,
                    *kernel,
                    *stride,
                    *padding,
                    *output_padding,
                    p.activation,
                    init,
                    rng,
                )?),
                LayerSpec::MaxPool { size, .. } => Layer::MaxPool2d(MaxPool2d::new(image(p.input), *size)?),
                LayerSpec::Upsample { factor, .. } => Layer::Upsample(Upsample {
                    input: image(p.input),
                    factor: *factor,
                }),
                LayerSpec::Flatten { .. } | LayerSpec::Reshape { .. } => continue,
            };
            layers.push(layer);
        }
        Ok(layers)
    }
}

/// `[n]` or `[channels, height, width]`, all positive.
fn shape_of(v: &[usize], what: &str) -> Result<Dims> {
    match v[..] {
        [n] if n > 0 => Ok(Dims::Flat(n)),
        [c, h, w] if c > 0 && h > 0 && w > 0 => Ok(Dims::Image((c, h, w))),
        _ => Err(Error::Config(format!(
            "{what} = {v:?}: expected [width] or [channels, height, width], all positive"
        ))),
    }
}

/// An error's message without the "invalid configuration: " prefix.
fn plain(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        e => e.to_string(),
    }
}

/// The top level of an architecture file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchFile {
    #[serde(default)]
    input: Option<Vec<usize>>,
    #[serde(default)]
    output: Option<Vec<usize>>,
    #[serde(default)]
    activation: Option<Activation>,
    #[serde(default)]
    code_activation: Option<Activation>,
    #[serde(default)]
    output_activation: Option<Activation>,
    #[serde(default)]
    loss: Option<Loss>,
    #[serde(default)]
    init: Option<Init>,
    #[serde(default)]
    code: Option<CodeRegularizer>,
    #[serde(default)]
    encoder: Vec<LayerSpec>,
    #[serde(default)]
    decoder: Vec<LayerSpec>,
}

/// Reads an architecture file into a model config. `data` is the shape of the data's rows,
/// used when the file gives no `input` (and checked against it when it does).
///
/// # Errors
/// [`Error::InvalidData`] naming the file, with the line and column of a TOML mistake or the
/// layer whose shapes do not fit.
pub fn read(path: &Path, data: Dims) -> Result<AutoencoderConfig> {
    read_paired(path, data, None)
}

/// [`read`] for a model of paired targets whose rows have shape `target`: when the file gives
/// no `output` and the targets' width differs from the inputs', the output takes the targets'
/// shape.
///
/// # Errors
/// As [`read`].
pub fn read_paired(path: &Path, data: Dims, target: Option<Dims>) -> Result<AutoencoderConfig> {
    let text = std::fs::read_to_string(path).map_err(crate::fsutil::io_at(path))?;
    parse_paired(&text, data, target).map_err(|m| Error::invalid(path.display().to_string(), m))
}

/// [`read`] on the text of a file.
///
/// # Errors
/// The message, without the file name.
pub fn parse(text: &str, data: Dims) -> std::result::Result<AutoencoderConfig, String> {
    parse_paired(text, data, None)
}

/// [`read_paired`] on the text of a file.
///
/// # Errors
/// The message, without the file name.
pub fn parse_paired(text: &str, data: Dims, target: Option<Dims>) -> std::result::Result<AutoencoderConfig, String> {
    let file: ArchFile = toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', " "))?;
    let input = file.input.clone().unwrap_or_else(|| match data {
        Dims::Flat(n) => vec![n],
        Dims::Image((c, h, w)) => vec![c, h, w],
    });
    let hidden = file.activation.unwrap_or(Activation::Relu);
    let code_act = file.code_activation.unwrap_or(Activation::Identity);
    let out_act = file.output_activation.unwrap_or(Activation::Sigmoid);
    let mut arch = Arch {
        input,
        encoder: file.encoder,
        decoder: file.decoder,
        output: file.output.or_else(|| {
            target.filter(|t| t.len() != data.len()).map(|t| match t {
                Dims::Flat(n) => vec![n],
                Dims::Image((c, h, w)) => vec![c, h, w],
            })
        }),
    };
    let last = |specs: &[LayerSpec]| specs.iter().rposition(LayerSpec::has_params);
    let (code_at, out_at) = (last(&arch.encoder), last(&arch.decoder));
    for (specs, last, end) in [
        (&mut arch.encoder, code_at, code_act),
        (&mut arch.decoder, out_at, out_act),
    ] {
        for (i, s) in specs.iter_mut().enumerate() {
            if let Some(a) = s.activation_mut() {
                a.get_or_insert(if Some(i) == last { end } else { hidden });
            }
        }
    }
    let dims = arch.input_dims().map_err(plain)?;
    if dims.len() != data.len() {
        return Err(format!(
            "input = {:?} ({} values) but the data's rows have {} values",
            arch.input,
            dims.len(),
            data.len()
        ));
    }
    let plan = arch.plan().map_err(plain)?;
    let code = plan.iter().rfind(|p| p.encoder && p.computes).map(|p| p.output.len());
    let output = plan.iter().rfind(|p| p.computes).map(|p| p.activation);
    let code_activation = plan.iter().rfind(|p| p.encoder && p.computes).map(|p| p.activation);
    let mut config = AutoencoderConfig::new(dims.len(), code.unwrap_or(0));
    if let Some(o) = &arch.output {
        config.output_dim = Some(shape_of(o, "output").map_err(plain)?.len()).filter(|&n| n != dims.len());
    }
    config.code_activation = code_activation.unwrap_or(code_act);
    config.output_activation = output.unwrap_or(out_act);
    config.activation = hidden;
    config.loss = file.loss.unwrap_or(Loss::Mse);
    config.init = file.init.unwrap_or_default();
    config.regularizer = file.code.unwrap_or_default();
    config.arch = Some(arch);
    config.validate().map_err(plain)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped example builds a model: the 32x32 segmentation net on its own image size,
    /// the others on 28x28 MNIST (a file's `input`, where given, must agree).
    #[test]
    fn shipped_examples_build() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let side = if path.ends_with("conv-segment.toml") { 32 } else { 28 };
            let cfg = read(&path, Dims::Image((1, side, side))).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            cfg.init(0).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
        assert!(seen >= 6, "{seen} examples");
    }

    const CONV: &str = r#"
        input = [1, 28, 28]
        loss = "bce"
        [[encoder]]
        type = "conv"
        filters = 16
        kernel = 3
        stride = 2
        padding = 1
        [[encoder]]
        type = "conv"
        filters = 32
        kernel = 3
        stride = 2
        padding = 1
        [[decoder]]
        type = "conv_transpose"
        filters = 16
        kernel = 3
        stride = 2
        padding = 1
        output_padding = 1
        [[decoder]]
        type = "conv_transpose"
        name = "out"
        filters = 1
        kernel = 3
        stride = 2
        padding = 1
        output_padding = 1
    "#;

    #[test]
    fn the_benchmark_network_has_the_expected_shapes() {
        let c = parse(CONV, Dims::Flat(784)).unwrap();
        let plan = c.arch.as_ref().unwrap().plan().unwrap();
        let shapes: Vec<String> = plan.iter().map(|p| format!("{} -> {}", p.input, p.output)).collect();
        assert_eq!(
            shapes,
            [
                "1x28x28 -> 16x14x14",
                "16x14x14 -> 32x7x7",
                "32x7x7 -> 16x14x14",
                "16x14x14 -> 1x28x28"
            ]
        );
        assert_eq!(c.code, 32 * 7 * 7);
        assert_eq!(plan[1].activation, Activation::Identity, "the code layer's default");
        assert_eq!(plan[0].activation, Activation::Relu);
        assert_eq!(plan[3].activation, Activation::Sigmoid);
        assert_eq!(c.loss, Loss::Bce);
        let m = c.init(1).unwrap();
        assert_eq!(m.layers().len(), 4);
        assert_eq!(
            m.num_params(),
            (16 * 9 + 16) + (32 * 16 * 9 + 32) + (32 * 16 * 9 + 16) + (16 * 9 + 1)
        );
    }

    #[test]
    fn mixed_dense_and_conv_with_reshape() {
        let text = r#"
            [[encoder]]
            type = "conv"
            filters = 4
            kernel = 3
            padding = 1
            [[encoder]]
            type = "max_pool"
            size = 2
            [[encoder]]
            type = "flatten"
            [[encoder]]
            type = "dense"
            units = 10
            [[decoder]]
            type = "dense"
            units = 196
            [[decoder]]
            type = "reshape"
            shape = [4, 7, 7]
            [[decoder]]
            type = "upsample"
            factor = 2
            [[decoder]]
            type = "conv"
            filters = 1
            kernel = 3
            padding = 1
        "#;
        let c = parse(text, Dims::Image((1, 14, 14))).unwrap();
        assert_eq!(c.code, 10);
        assert_eq!(c.input_dim, 196);
        let m = c.init(0).unwrap();
        assert_eq!(m.config().encoder_layers(), 3);
        let x = crate::Matrix::zeros(3, 196);
        assert_eq!(m.reconstruct(&x).unwrap().shape(), (3, 196));
        assert_eq!(m.encode(&x).unwrap().shape(), (3, 10));
    }

    #[test]
    fn shape_mistakes_name_the_layer_and_the_shapes() {
        let cases = [
            (
                CONV.replace(
                    "output_padding = 1\n        [[decoder]]",
                    "output_padding = 0\n        [[decoder]]",
                ),
                "the decoder's output is 1x26x26 (676 values) but the input is 1x28x28 (784 values)",
            ),
            (
                CONV.replacen("kernel = 3", "kernel = 31", 1),
                "layer encoder[0] (conv): input 1x28x28: a 31x31 kernel does not fit a 28x28 input with padding 1",
            ),
            (
                r#"
                [[encoder]]
                type = "dense"
                units = 8
                [[decoder]]
                type = "conv"
                name = "up"
                filters = 1
                kernel = 3
            "#
                .to_string(),
                "layer up (conv): a convolution needs an image input, got a flat row of 8; add a reshape layer",
            ),
            (
                r#"
                [[encoder]]
                type = "dense"
                units = 8
                [[decoder]]
                type = "reshape"
                shape = [1, 3, 3]
            "#
                .to_string(),
                "layer decoder[0] (reshape): cannot reshape 8 (8 values) to 1x3x3 (9 values)",
            ),
            (
                CONV.replace("filters = 16\n        kernel", "filter = 16\n        kernel"),
                "unknown field `filter`",
            ),
            (
                CONV.replace("type = \"conv\"", "type = \"convolution\""),
                "unknown variant `convolution`",
            ),
            (
                CONV.replace("input = [1, 28, 28]", "input = [1, 28, 29]"),
                "but the data's rows have 784",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text, Dims::Flat(784)).unwrap_err();
            assert!(err.contains(want), "expected `{want}` in `{err}`");
        }
        let err = parse("[[encoder]]\ntype = \"dense\"\nunits = x\n", Dims::Flat(4)).unwrap_err();
        assert!(err.contains("line 3"), "{err}");
    }
}
