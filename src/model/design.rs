//! [`Design`]: how a front end (the command line's flags, Python's keyword arguments) asks for
//! an autoencoder — the MLP shorthand's widths and activations, or an architecture file, plus
//! regularizer settings for the code and other layers — and the one place that turns it into
//! an [`AutoencoderConfig`] for data of a given shape.

use super::arch::Dims;
use super::config::{AutoencoderConfig, Mlp};
use crate::activation::Activation;
use crate::error::Result;
use crate::layer::Init;
use crate::loss::Loss;
use crate::regularize::Setting;
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

/// Where an architecture comes from.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchSource {
    /// A TOML file.
    File(PathBuf),
    /// The text of one.
    Text(String),
    /// Its contents as data (keys, tables and arrays, e.g. a Python dict).
    Table(serde_json::Value),
}

/// The autoencoder a front end asks for. Field defaults are the command line's.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Design {
    /// Encoder hidden widths, input side first (the MLP shorthand).
    pub hidden: Vec<usize>,
    /// Width of the code (the MLP shorthand; required without `arch`).
    pub code: Option<usize>,
    /// Decoder hidden widths, code side first; `None` mirrors the encoder.
    pub decoder_hidden: Option<Vec<usize>>,
    /// Hidden activation.
    pub activation: Activation,
    /// Code activation.
    pub code_activation: Activation,
    /// Output activation (see [`default_output_activation`] for a front end's default).
    pub output_activation: Activation,
    /// Reconstruction loss.
    pub loss: Loss,
    /// Weight initialization.
    pub init: Init,
    /// Tied weights.
    pub tied: bool,
    /// An architecture file (or its text) instead of the shorthand: its layers, activations,
    /// loss, initialization and code regularizers.
    pub arch: Option<ArchSource>,
    /// Regularizer settings of the code, over the architecture file's.
    #[serde(deserialize_with = "settings")]
    pub code_reg: Vec<Setting>,
    /// Regularizer settings of other layers, by 0-based layer index.
    #[serde(deserialize_with = "layer_settings")]
    pub hidden_reg: Vec<(usize, Vec<Setting>)>,
    /// A variational autoencoder (the shorthand only; an architecture file has a `gaussian`
    /// layer instead): the code's KL term.
    pub vae: Option<crate::layer::Prior>,
}

/// The output activation a front end uses when none is asked for: a sigmoid where the
/// network's targets lie in [0, 1] (the BCE loss, min-max scaling, or unscaled data in
/// [0, 1] such as images), else the identity, which can reach any value (standardized
/// columns, a series' steps). A sigmoid output on standardized data cannot reach the
/// negative half of each column and leaves about half the variance unexplained.
pub fn default_output_activation(
    loss: Loss,
    scaling: crate::data::scale::Scaling,
    x: crate::tensor::MatrixRef<'_>,
) -> Activation {
    use crate::data::scale::Scaling;
    let unit = match scaling {
        Scaling::Minmax => true,
        Scaling::Standard => false,
        Scaling::None => x.as_slice().iter().all(|v| (0.0..=1.0).contains(v)),
    };
    if loss == Loss::Bce || unit {
        Activation::Sigmoid
    } else {
        Activation::Identity
    }
}

impl Default for Design {
    fn default() -> Self {
        Design {
            hidden: Vec::new(),
            code: None,
            decoder_hidden: None,
            activation: Activation::Relu,
            code_activation: Activation::Identity,
            output_activation: Activation::Sigmoid,
            loss: Loss::Mse,
            init: Init::Auto,
            tied: false,
            arch: None,
            code_reg: Vec::new(),
            hidden_reg: Vec::new(),
            vae: None,
        }
    }
}

/// Settings as the grammar's strings (`"l1=1e-4"`), in JSON or any other serde format.
fn settings<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Setting>, D::Error> {
    let items: Vec<String> = Vec::deserialize(d)?;
    items
        .iter()
        .map(|s| Setting::parse(s).map_err(serde::de::Error::custom))
        .collect()
}

/// `[[layer, ["l1=1e-4", …]], …]`.
fn layer_settings<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<(usize, Vec<Setting>)>, D::Error> {
    let items: Vec<(usize, Vec<String>)> = Vec::deserialize(d)?;
    items
        .into_iter()
        .map(|(l, s)| {
            s.iter()
                .map(|s| Setting::parse(s).map_err(serde::de::Error::custom))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map(|s| (l, s))
        })
        .collect()
}

impl Design {
    /// The default sequence autoencoder of a text's windows of `steps` tokens over a
    /// vocabulary of `vocab` ([`crate::data::text::sequence_arch`]), unless an architecture is
    /// named: the shorthand's first hidden width becomes its LSTMs' units and its code its
    /// code (else [`crate::data::text::SEQUENCE_UNITS`] and [`crate::data::text::SEQUENCE_CODE`]).
    pub fn for_text(&mut self, steps: usize, vocab: usize) {
        use crate::data::text;
        if self.arch.is_some() {
            return;
        }
        let units = self.hidden.first().copied().unwrap_or(text::SEQUENCE_UNITS);
        let code = self.code.unwrap_or(text::SEQUENCE_CODE);
        self.arch = Some(ArchSource::Text(text::sequence_arch(steps, vocab, units, code)));
        self.hidden.clear();
        self.code = None;
        self.decoder_hidden = None;
    }

    /// The config for rows of shape `input`; `target` is the shape of paired targets' rows
    /// (their width, when it differs from the input's, is the output's).
    ///
    /// # Errors
    /// [`crate::Error::InvalidData`] for an architecture file that does not fit, as
    /// [`AutoencoderConfig::regularize`] for the settings; the config is validated by
    /// [`AutoencoderConfig::init`].
    pub fn config(&self, input: Dims, target: Option<Dims>) -> Result<AutoencoderConfig> {
        if self.vae.is_some() && self.arch.is_some() {
            return Err(crate::error::Error::Config(
                "a variational code with an architecture file: put a `gaussian` layer at the end of its encoder (after a layer of twice the code's width)".into(),
            ));
        }
        let mut model = match &self.arch {
            Some(ArchSource::File(path)) => super::toml::read_paired(path, input, target)?,
            Some(ArchSource::Text(text)) => super::toml::parse_paired(text, input, target)
                .map_err(|m| crate::error::Error::invalid("architecture", m))?,
            Some(ArchSource::Table(value)) => super::toml::from_value(value.clone(), input, target)
                .map_err(|m| crate::error::Error::invalid("architecture", m))?,
            None => Mlp {
                hidden: self.hidden.clone(),
                decoder_hidden: self.decoder_hidden.clone(),
                activation: self.activation,
                code_activation: self.code_activation,
                output_activation: self.output_activation,
                loss: self.loss,
                init: self.init,
                tied: self.tied,
                output_dim: target.map(Dims::len).filter(|&w| w != input.len()),
                vae: self.vae,
                ..Mlp::new(input.len(), self.code.unwrap_or(0))
            }
            .config(),
        };
        let code = model.code_layer();
        model.regularize(code, &self.code_reg)?;
        for (layer, s) in &self.hidden_reg {
            model.regularize(*layer, s)?;
        }
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A front end's JSON becomes the same config as the shorthand with the same settings.
    #[test]
    fn json_designs_build_configs() {
        let d: Design = serde_json::from_str(
            r#"{"hidden": [8], "code": 3, "activation": "tanh", "code_reg": ["topk=2", "l1=0.001"],
                "hidden_reg": [[0, ["dropout=0.1"]]]}"#,
        )
        .unwrap();
        let c = d.config(Dims::Flat(6), None).unwrap();
        assert_eq!(c.code_dim(), 3);
        assert_eq!(c.regularizers[&1].topk.unwrap().k, 2);
        assert_eq!(c.regularizers[&0].dropout, 0.1);
        c.init(1).unwrap();
        let err = serde_json::from_str::<Design>(r#"{"code": 3, "code_reg": ["l2=1"]}"#).unwrap_err();
        assert!(err.to_string().contains("l2=1"), "{err}");
        assert!(
            serde_json::from_str::<Design>(r#"{"cod": 3}"#).is_err(),
            "unknown fields are refused"
        );
        let text = Design {
            arch: Some(ArchSource::Text(
                "[[encoder]]\ntype = \"dense\"\nunits = 2\n[[decoder]]\ntype = \"dense\"\nunits = 6\n".into(),
            )),
            ..Design::default()
        };
        assert_eq!(text.config(Dims::Flat(6), None).unwrap().code_dim(), 2);
        let table: Design = serde_json::from_str(
            r#"{"arch": {"table": {"encoder": [{"type": "dense", "units": 3}], "decoder": [{"type": "dense", "units": 6}],
                "code": "topk=2"}}}"#,
        )
        .unwrap();
        let c = table.config(Dims::Flat(6), None).unwrap();
        assert_eq!((c.code_dim(), c.regularizers[&0].topk.unwrap().k), (3, 2));
    }
}
