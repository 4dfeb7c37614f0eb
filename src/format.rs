//! Model files: one `.safetensors` file whose metadata makes it self-describing.
//!
//! Metadata keys: `format` (= `"hourglass"`), `format_version`, `model` (the
//! [`AutoencoderConfig`] as JSON), `scaler`, `provenance` (training config, report, data
//! shape; optional), `crate_version` and, once calibrated, `anomaly` (the threshold). Tensors: `encoder.{i}.weight` `(n_out, n_in)`,
//! `encoder.{i}.bias` `(n_out)`, `decoder.{i}.…`, all f32 little-endian.

use crate::data::scale::Scaler;
use crate::error::{Error, Result};
use crate::fsutil::{io_at, write_atomic};
use crate::model::{Autoencoder, AutoencoderConfig};
use crate::train::{TrainConfig, TrainReport};
use safetensors::tensor::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The value of the `format` metadata key.
pub const FORMAT_NAME: &str = "hourglass";
/// The newest model-file version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Where a model came from: saved beside the weights, shown by `inspect`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Provenance {
    /// The training settings.
    pub train: Option<TrainConfig>,
    /// What training reported.
    pub report: Option<TrainReport>,
    /// The training data file.
    pub data_path: Option<String>,
    /// `(rows, cols)` of the training data.
    pub data_shape: Option<(usize, usize)>,
    /// Image shape `(height, width, channels)` of the training data, when known.
    pub image_shape: Option<(usize, usize, usize)>,
    /// Feature names of the training data.
    pub feature_names: Option<Vec<String>>,
    /// Version of hourglass that wrote the file.
    pub crate_version: String,
    /// The spectrum, for models made by PCA.
    #[serde(default)]
    pub pca: Option<crate::pca::PcaSummary>,
}

/// A model with its provenance, as stored in a file.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFile {
    /// The model.
    pub model: Autoencoder,
    /// Where it came from.
    pub provenance: Provenance,
    /// The anomaly threshold set by `calibrate`, if any (metadata key `anomaly`).
    pub anomaly: Option<crate::score::Threshold>,
    /// How CSV columns become features (categories, missing values, dropped constant columns),
    /// when training needed it (metadata key `tabular`).
    pub tabular: Option<crate::data::tabular::Tabular>,
}

fn tensor_names(config: &AutoencoderConfig) -> Vec<(String, usize)> {
    let n_enc = config.encoder_layers();
    (0..config.layer_shapes().len())
        .map(|i| {
            if i < n_enc {
                (format!("encoder.{i}"), i)
            } else {
                (format!("decoder.{}", i - n_enc), i)
            }
        })
        .collect()
}

/// Serializes a model to the bytes of a `.safetensors` file.
///
/// The header is written with sorted keys and the tensors in name order, so the same model
/// always gives the same bytes (the `safetensors` crate's writer orders metadata by hash).
///
/// # Errors
/// [`Error::Config`] if a config cannot be serialized (it can for every valid model).
pub fn to_bytes(file: &ModelFile) -> Result<Vec<u8>> {
    let m = &file.model;
    let json = |v: &dyn erased::Json| v.to_json();
    let mut meta = serde_json::Map::new();
    meta.insert("format".into(), FORMAT_NAME.into());
    meta.insert("format_version".into(), FORMAT_VERSION.to_string().into());
    meta.insert("model".into(), json(&m.config)?.into());
    meta.insert("scaler".into(), json(&m.scaler)?.into());
    meta.insert("provenance".into(), json(&file.provenance)?.into());
    meta.insert("crate_version".into(), env!("CARGO_PKG_VERSION").into());
    if let Some(t) = &file.anomaly {
        meta.insert("anomaly".into(), json(t)?.into());
    }
    if let Some(t) = &file.tabular {
        meta.insert("tabular".into(), json(t)?.into());
    }
    let mut tensors: Vec<(String, Vec<usize>, &[f32])> = Vec::new();
    for (name, i) in tensor_names(&m.config) {
        let l = &m.layers[i];
        if let Some(shape) = l.weight_shape() {
            let (w, b) = l.params();
            tensors.push((format!("{name}.weight"), shape, w));
            tensors.push((format!("{name}.bias"), vec![b.len()], b));
        }
    }
    write_safetensors(meta, &mut tensors)
}

/// The bytes of a `.safetensors` file with metadata `meta` and f32 `tensors` (name, shape,
/// data), header keys sorted and tensors in name order, so equal inputs give equal bytes.
///
/// # Errors
/// [`Error::Config`] if the header cannot be serialized.
pub fn write_safetensors(
    meta: serde_json::Map<String, serde_json::Value>,
    tensors: &mut [(String, Vec<usize>, &[f32])],
) -> Result<Vec<u8>> {
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    // serde_json's Map is a BTreeMap: keys come out sorted ("__metadata__" first).
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::Value::Object(meta));
    let mut offset = 0usize;
    for (name, shape, data) in tensors.iter() {
        let end = offset + 4 * data.len();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut text = serde_json::to_string(&header).map_err(|e| Error::Config(e.to_string()))?;
    text.push_str(&" ".repeat((8 - text.len() % 8) % 8)); // data starts 8-byte aligned
    let mut bytes = Vec::with_capacity(8 + text.len() + offset);
    bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
    for (_, _, data) in tensors.iter() {
        bytes.extend(data.iter().flat_map(|x| x.to_le_bytes()));
    }
    Ok(bytes)
}

/// Parses a `.safetensors` file written by hourglass: checks `format` and `format_version`
/// and returns the metadata with the tensors.
///
/// # Errors
/// [`Error::UnknownFormat`] for a foreign or truncated file, [`Error::NewerVersion`] for a file
/// from a newer hourglass.
pub fn read_safetensors<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> Result<(std::collections::HashMap<String, String>, SafeTensors<'a>)> {
    let unknown = |reason: String| Error::UnknownFormat {
        path: path.into(),
        reason,
    };
    let st = SafeTensors::deserialize(bytes).map_err(|e| unknown(format!("not a valid safetensors file ({e})")))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| unknown(e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    match meta.get("format").map(String::as_str) {
        Some(FORMAT_NAME) => {}
        Some(other) => return Err(unknown(format!("its format is `{other}`"))),
        None => {
            return Err(unknown(
                "a safetensors file without hourglass metadata (no `format` key)".into(),
            ));
        }
    }
    let version: u32 = meta
        .get("format_version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| unknown("missing or bad `format_version`".into()))?;
    if version > FORMAT_VERSION {
        return Err(Error::NewerVersion {
            path: path.into(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok((meta, st))
}

/// Tensor `name` as f32 values of exactly `shape`, all finite.
///
/// # Errors
/// [`Error::MissingTensor`], or [`Error::BadTensor`] for another dtype, shape or a non-finite value.
pub fn tensor_f32(path: &Path, st: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let view = st.tensor(name).map_err(|_| Error::MissingTensor {
        path: path.into(),
        name: name.into(),
    })?;
    if view.dtype() != Dtype::F32 || view.shape() != shape {
        return Err(Error::BadTensor {
            path: path.into(),
            name: name.into(),
            expected: format!("F32 {shape:?}"),
            got: format!("{:?} {:?}", view.dtype(), view.shape()),
        });
    }
    let v: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    if let Some(k) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::BadTensor {
            path: path.into(),
            name: name.into(),
            expected: "finite values".into(),
            got: format!("{} at index {k}", v[k]),
        });
    }
    Ok(v)
}

/// Saves a model file atomically (temporary file, then rename).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn save(path: &Path, file: &ModelFile) -> Result<()> {
    let bytes = to_bytes(file)?;
    write_atomic(path, |w| w.write_all(&bytes).map_err(io_at(path)))
}

/// Loads and checks a model file.
///
/// # Errors
/// [`Error::UnknownFormat`] for a file that is not an hourglass model (or is truncated),
/// [`Error::NewerVersion`] for a file from a newer hourglass, [`Error::MissingTensor`] and
/// [`Error::BadTensor`] for tensors that do not match the stored architecture.
pub fn load(path: &Path) -> Result<ModelFile> {
    let bytes = std::fs::read(path).map_err(io_at(path))?;
    from_bytes(path, &bytes)
}

/// Parses the bytes of a model file; `path` is used in error messages.
///
/// # Errors
/// As [`load`].
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<ModelFile> {
    let unknown = |reason: String| Error::UnknownFormat {
        path: path.into(),
        reason,
    };
    let (meta, st) = read_safetensors(path, bytes)?;
    if meta.get("kind").map(String::as_str) == Some("classifier") {
        return Err(unknown(
            "a classifier, not an autoencoder (use it with `hourglass predict` or `eval`)".into(),
        ));
    }
    let parse = |key: &str| -> Result<serde_json::Value> {
        let text = meta
            .get(key)
            .ok_or_else(|| unknown(format!("missing `{key}` metadata")))?;
        serde_json::from_str(text).map_err(|e| unknown(format!("bad `{key}` metadata: {e}")))
    };
    let config: AutoencoderConfig =
        serde_json::from_value(parse("model")?).map_err(|e| unknown(format!("bad `model` metadata: {e}")))?;
    config
        .validate()
        .map_err(|e| unknown(format!("stored architecture is invalid: {e}")))?;
    let scaler: Scaler =
        serde_json::from_value(parse("scaler")?).map_err(|e| unknown(format!("bad `scaler` metadata: {e}")))?;
    let provenance: Provenance = match meta.get("provenance") {
        Some(_) => serde_json::from_value(parse("provenance")?).unwrap_or_default(),
        None => Provenance::default(),
    };
    // The architecture gives the layers; the file gives their parameters.
    let mut layers = config.init(0).map_err(|e| unknown(e.to_string()))?.layers;
    for (name, i) in tensor_names(&config) {
        let l = &mut layers[i];
        let Some(shape) = l.weight_shape() else { continue };
        let (w, b) = l.params_mut();
        let n_b = b.len();
        w.copy_from_slice(&tensor_f32(path, &st, &format!("{name}.weight"), &shape)?);
        b.copy_from_slice(&tensor_f32(path, &st, &format!("{name}.bias"), &[n_b])?);
    }
    let model = Autoencoder::from_layers(config, layers, scaler).map_err(|e| unknown(e.to_string()))?;
    let anomaly = match meta.get("anomaly") {
        Some(_) => Some(
            serde_json::from_value(parse("anomaly")?).map_err(|e| unknown(format!("bad `anomaly` metadata: {e}")))?,
        ),
        None => None,
    };
    let tabular: Option<crate::data::tabular::Tabular> = match meta.get("tabular") {
        Some(_) => Some(
            serde_json::from_value(parse("tabular")?).map_err(|e| unknown(format!("bad `tabular` metadata: {e}")))?,
        ),
        None => None,
    };
    if let Some(t) = &tabular
        && t.feature_names().len() != model.input_dim()
    {
        return Err(unknown(
            "`tabular` metadata does not match the model's input width".into(),
        ));
    }
    Ok(ModelFile {
        model,
        provenance,
        anomaly,
        tabular,
    })
}

pub(crate) mod erased {
    use crate::error::{Error, Result};
    /// Serializes any serde value to a JSON string (object-safe helper).
    pub trait Json {
        fn to_json(&self) -> Result<String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<String> {
            serde_json::to_string(self).map_err(|e| Error::Config(e.to_string()))
        }
    }
}
