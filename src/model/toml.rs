//! Architecture files: any mix of dense and convolutional layers, described in TOML.
//!
//! ```toml
//! input = [1, 28, 28]          # channels, height, width (default: the data's image shape)
//! # output = [1, 28, 28]       # only for paired targets of another shape (default: input)
//! activation = "relu"          # hidden layers (default relu)
//! code_activation = "identity" # the last encoder layer (default identity)
//! output_activation = "sigmoid"# the last decoder layer with weights (default sigmoid;
//!                              # identity with loss ce)
//! loss = "bce"                 # mse (default), bce, or ce (categorical: a softmax layer last)
//!
//! [code]                       # the code's regularizers: a table of the saved form ...
//! l1 = 1e-4
//! # code = "l1=1e-4,topk=25"   # ... or the settings grammar (crate::regularize)
//!
//! [regularize]                 # other layers, by name or 0-based index, in the grammar
//! first = "dropout=0.1"
//!
//! [[encoder]]
//! type = "conv"                # conv, conv_transpose, conv1d, conv_transpose1d (along the steps
//!                              # of one-row images: a series' windows), lstm, gru (`units`,
//!                              # `return_sequences`; over one-row sequences), repeat (`steps`),
//!                              # max_pool, upsample, dense, flatten, reshape, gaussian, softmax
//!                              # (over each position's channels)
//! name = "first"
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
//! The last encoder layer is the code. Shape mistakes name the layer and the shapes that do
//! not fit; TOML mistakes give the line and column.

use super::arch::{Arch, Dims, LayerSpec, plain, shape_of};
use super::config::AutoencoderConfig;
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::layer::Init;
use crate::loss::Loss;
use crate::regularize::{Regularizer, Setting};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A regularizer in a file: the saved form's table, or the settings grammar.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum RegularizerSpec {
    Grammar(String),
    Table(Regularizer),
}

impl RegularizerSpec {
    fn resolve(self) -> std::result::Result<Regularizer, String> {
        match self {
            RegularizerSpec::Table(r) => Ok(r),
            RegularizerSpec::Grammar(s) => Regularizer::merged(None, &Setting::parse_list(&s)?),
        }
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
    code: Option<RegularizerSpec>,
    #[serde(default)]
    regularize: BTreeMap<String, RegularizerSpec>,
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
    config_of(file, data, target)
}

/// [`parse_paired`] on an architecture given as data of the file's shape (e.g. a Python dict
/// passed as JSON): the same keys, tables and arrays.
///
/// # Errors
/// The message.
pub fn from_value(
    value: serde_json::Value,
    data: Dims,
    target: Option<Dims>,
) -> std::result::Result<AutoencoderConfig, String> {
    let file: ArchFile = serde_json::from_value(value).map_err(|e| e.to_string())?;
    config_of(file, data, target)
}

/// The config an architecture file describes, for rows of shape `data`.
fn config_of(file: ArchFile, data: Dims, target: Option<Dims>) -> std::result::Result<AutoencoderConfig, String> {
    let input = file.input.clone().unwrap_or_else(|| data.to_vec());
    let hidden = file.activation.unwrap_or(Activation::Relu);
    let code_act = file.code_activation.unwrap_or(Activation::Identity);
    // Under a softmax output layer (loss ce), the last layer with weights gives the logits.
    let out_act = file.output_activation.unwrap_or(if file.loss == Some(Loss::Ce) {
        Activation::Identity
    } else {
        Activation::Sigmoid
    });
    let mut arch = Arch {
        input,
        encoder: file.encoder,
        decoder: file.decoder,
        output: file
            .output
            .or_else(|| target.filter(|t| t.len() != data.len()).map(Dims::to_vec)),
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
    if let Some(o) = &arch.output {
        shape_of(o, "output").map_err(plain)?;
    }
    let mut config = AutoencoderConfig::new(arch);
    config.loss = file.loss.unwrap_or(Loss::Mse);
    config.init = file.init.unwrap_or_default();
    let plan = config.plan().map_err(plain)?;
    let computing: Vec<_> = plan.iter().filter(|p| p.computes).collect();
    if let Some(code) = file.code {
        config.regularizers.insert(config.code_layer(), code.resolve()?);
    }
    for (key, spec) in file.regularize {
        let layer = key
            .parse::<usize>()
            .ok()
            .or_else(|| computing.iter().position(|p| p.name == key))
            .ok_or_else(|| {
                let names: Vec<&str> = computing.iter().map(|p| p.name.as_str()).collect();
                format!(
                    "[regularize] `{key}`: no such layer; give a 0-based index or a name: {}",
                    names.join(", ")
                )
            })?;
        config.regularizers.insert(layer, spec.resolve()?);
    }
    config.regularizers.retain(|_, r| r.is_active());
    config.validate().map_err(plain)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped example builds a model: the 32x32 segmentation net on its own image size,
    /// the series examples on windows of 64 steps of one channel, the others on 28x28 MNIST (a
    /// file's `input`, where given, must agree).
    #[test]
    fn shipped_examples_build() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let input = if path.ends_with("conv-segment.toml") {
                (1, 32, 32)
            } else if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("series-"))
            {
                (1, 1, 64)
            } else {
                (1, 28, 28)
            };
            let cfg = read(&path, Dims::Image(input)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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
        let plan = c.plan().unwrap();
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
        assert_eq!(c.code_dim(), 32 * 7 * 7);
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
        assert_eq!(c.code_dim(), 10);
        assert_eq!(c.input_dim(), 196);
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
