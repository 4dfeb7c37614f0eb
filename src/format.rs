//! Model files: one `.safetensors` file whose metadata makes it self-describing, for both
//! kinds of model ([`kind`], [`load_any`]).
//!
//! Autoencoders: metadata keys `format` (= `"hourglass"`), `format_version`, `model` (the
//! [`AutoencoderConfig`] as JSON), `scaler`, `provenance` (training config, report, data
//! shape; optional), `crate_version`, once calibrated `anomaly` (the threshold) and for
//! encoded tables `tabular`, for a model of a time series' windows `windows`, for a code
//! neighbourhood `neighbours` (k, rows, the reachability floor and the scores' training spread;
//! tensors `neighbours.codes` `(rows, code)`, `neighbours.kdist` (k-distances, at least the
//! floor) and `neighbours.lrd` `(rows)`). Tensors: `encoder.{i}.weight` (PyTorch's layout: `(n_out, n_in)`
//! for dense layers, `(c_out, c_in, k, k)` for convolutions), `encoder.{i}.bias` `(n_out)`,
//! `decoder.{i}.…`, all f32 little-endian; `i` counts the layers that compute.
//!
//! Classifiers: `kind` = `classifier`, `classifier` (the [`ClassifierConfig`] as JSON),
//! `scaler`; tensors `layer.{i}.weight` and `layer.{i}.bias`, the head last.
//!
//! Versions: 2 stores every network as a layer stack; version-1 files (MLP fields, or an
//! architecture beside them; dense classifiers) are converted on load.

use crate::classifier::{Classifier, ClassifierConfig};
use crate::data::scale::Scaler;
use crate::error::{Error, Result};
use crate::fsutil::{io_at, write_bytes};
use crate::layer::Layer;
use crate::model::arch::Planned;
use crate::model::{Autoencoder, AutoencoderConfig};
use crate::tensorfile::TensorData;
use crate::train::{TrainConfig, TrainReport};
use safetensors::tensor::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The value of the `format` metadata key.
pub const FORMAT_NAME: &str = "hourglass";
/// The newest model-file version this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;

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
    /// How many data-parallel ranks trained the model, and how they kept one model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<crate::dist::Parallel>,
}

impl Provenance {
    /// The provenance of a model trained with `train` on `data`, read from `path`; `report` is
    /// what training reported (none when it stopped early with an error).
    pub fn training(
        train: &TrainConfig,
        report: Option<TrainReport>,
        path: &Path,
        data: &crate::data::Dataset,
    ) -> Self {
        Provenance {
            train: Some(train.clone()),
            report: report.map(TrainReport::without_timing),
            image_shape: train.image_shape.or(data.image_shape),
            ..Provenance::of_data(path, data)
        }
    }

    /// What is known about the data a model was made from: its path, shape, image shape and
    /// feature names.
    pub fn of_data(path: &Path, data: &crate::data::Dataset) -> Self {
        Provenance {
            data_path: Some(path.display().to_string()),
            data_shape: Some(data.x.shape()),
            image_shape: data.image_shape,
            feature_names: (!data.names.is_empty()).then(|| data.names.clone()),
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            ..Provenance::default()
        }
    }
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
    /// The sliding windows a model of a time series reads (metadata key `windows`): its rows
    /// are windows of the series' steps, not the steps.
    pub windows: Option<crate::data::window::Windows>,
    /// The training rows' codes and neighbourhoods behind the `mse+lof` score (metadata key
    /// `neighbours` and the `neighbours.*` tensors).
    pub neighbours: Option<crate::neighbours::CodeNeighbours>,
}

impl ModelFile {
    /// A model without provenance, threshold or table encoding.
    pub fn new(model: Autoencoder) -> Self {
        ModelFile {
            model,
            provenance: Provenance::default(),
            anomaly: None,
            tabular: None,
            windows: None,
            neighbours: None,
        }
    }

    /// Each row's anomaly score by `metric` (higher = more anomalous): [`crate::score::scores`],
    /// and `mse+lof` or `mse+knn` from the file's code neighbourhood.
    ///
    /// # Errors
    /// As [`crate::score::scores`]; [`Error::Setting`] for `mse+lof` or `mse+knn` on a file
    /// without a code neighbourhood.
    pub fn scores<'a>(
        &self,
        x: impl Into<crate::tensor::MatrixRef<'a>>,
        metric: crate::score::ScoreMetric,
    ) -> Result<Vec<f64>> {
        match (&self.neighbours, crate::neighbours::Part::of(metric)) {
            (Some(n), Some(part)) => n.scores(&self.model, x, part),
            (None, Some(_)) => Err(Error::setting(
                "metric",
                metric.name(),
                "this model holds no code neighbourhood (train it with `--neighbours K`, or the Python detector's defaults)",
            )),
            _ => crate::score::scores(&self.model, x, metric),
        }
    }

    /// The metric `score` uses when none is asked for: the calibrated one, else
    /// [`Self::own_metric`].
    pub fn default_metric(&self) -> crate::score::ScoreMetric {
        self.anomaly.as_ref().map_or(self.own_metric(), |t| t.metric)
    }

    /// The metric of the model itself, before any calibration (what `calibrate` uses when
    /// none is asked for): the neighbourhood's own part (`mse+lof` or `mse+knn`) for a file
    /// with a code neighbourhood, else `mse`.
    pub fn own_metric(&self) -> crate::score::ScoreMetric {
        self.neighbours
            .as_ref()
            .map_or(crate::score::ScoreMetric::Mse, |n| n.settings.part.metric())
    }

    /// The width of the rows of the model's data file: the model's inputs, or for a model of
    /// windows the series' channels.
    pub fn data_width(&self) -> usize {
        let d = self.model.input_dim();
        self.windows.map_or(d, |w| d / w.length)
    }

    /// Names of the model's input features: the training columns, else `c0`, `c1`, …
    pub fn feature_names(&self) -> Vec<String> {
        self.provenance
            .feature_names
            .clone()
            .filter(|n| n.len() == self.model.input_dim())
            .unwrap_or_else(|| crate::data::numbered("c", self.model.input_dim()))
    }

    /// The image shape `(height, width, channels)` of the model's rows: `given`, else the
    /// data's, else the training data's, else square gray images when the width is a square.
    ///
    /// # Errors
    /// [`Error::Config`] when none fits the model's input width (with a hint to give one).
    pub fn image_shape(
        &self,
        given: Option<(usize, usize, usize)>,
        data: Option<(usize, usize, usize)>,
    ) -> Result<(usize, usize, usize)> {
        let d = self.model.input_dim();
        let shape = given.or(data).or(self.provenance.image_shape).or_else(|| {
            let side = (d as f64).sqrt().round() as usize;
            (side * side == d).then_some((side, side, 1))
        });
        match shape {
            Some((h, w, c)) if crate::bounds::checked_product(&[h, w, c]) == Some(d) => Ok((h, w, c)),
            Some((h, w, c)) => Err(Error::Config(format!(
                "image shape {h}x{w}x{c} does not fit the model's {d} inputs"
            ))),
            None => Err(
                Error::Config(format!("the model's {d} inputs are not square gray images"))
                    .with_hint(crate::error::Hint::ImageShape),
            ),
        }
    }
}

fn tensor_names(config: &AutoencoderConfig, layers: usize) -> Vec<(String, usize)> {
    let n_enc = config.encoder_layers();
    (0..layers)
        .map(|i| {
            if i < n_enc {
                (format!("encoder.{i}"), i)
            } else {
                (format!("decoder.{}", i - n_enc), i)
            }
        })
        .collect()
}

/// A classifier's tensor names: `layer.{i}`.
fn classifier_names(layers: usize) -> Vec<(String, usize)> {
    (0..layers).map(|i| (format!("layer.{i}"), i)).collect()
}

/// The weight and bias tensors of `layers` under `names` (`(name, layer)`), for
/// [`write_safetensors`]; layers without parameters have none.
fn params<'a>(layers: &'a [Layer], names: &[(String, usize)]) -> Vec<(String, Vec<usize>, &'a [f32])> {
    let mut tensors = Vec::new();
    for (name, i) in names {
        let l = &layers[*i];
        if let Some(shape) = l.weight_shape() {
            let (w, b) = l.params();
            tensors.push((format!("{name}.weight"), shape, w));
            tensors.push((format!("{name}.bias"), vec![b.len()], b));
        }
    }
    tensors
}

/// Reads the weight and bias of each layer under `names` (`(name, layer)`) from the file's
/// tensors, checking shapes and values.
fn read_params(path: &Path, st: &SafeTensors<'_>, layers: &mut [Layer], names: &[(String, usize)]) -> Result<()> {
    for (name, i) in names {
        let l = &mut layers[*i];
        let Some(shape) = l.weight_shape() else { continue };
        let (w, b) = l.params_mut();
        let n_b = b.len();
        w.copy_from_slice(&tensor_f32(path, st, &format!("{name}.weight"), &shape)?);
        b.copy_from_slice(&tensor_f32(path, st, &format!("{name}.bias"), &[n_b])?);
    }
    Ok(())
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
    if let Some(w) = &file.windows {
        meta.insert("windows".into(), json(w)?.into());
    }
    let mut tensors = params(&m.layers, &tensor_names(&m.config, m.layers.len()));
    if let Some(n) = &file.neighbours {
        meta.insert("neighbours".into(), json(&n.settings)?.into());
        let rows = n.settings.rows;
        tensors.push((
            "neighbours.codes".into(),
            vec![rows, n.codes.cols()],
            n.codes.as_slice(),
        ));
        tensors.push(("neighbours.kdist".into(), vec![rows], &n.kdist));
        tensors.push(("neighbours.lrd".into(), vec![rows], &n.lrd));
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
    let mut typed: Vec<_> = tensors
        .iter()
        .map(|(name, shape, data)| (name.clone(), shape.clone(), TensorData::F32(data)))
        .collect();
    crate::tensorfile::write_typed(meta, &mut typed)
}

/// Parses a `.safetensors` file written by hourglass: checks `format` and `format_version`
/// and returns the metadata (with `format_version` parsed) and the tensors.
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
    let (meta, st) =
        crate::tensorfile::parse(bytes).map_err(|e| unknown(format!("not a valid safetensors file ({e})")))?;
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

/// Tensor `name` is f32 of exactly `shape` (read from the header alone).
///
/// # Errors
/// [`Error::MissingTensor`], or [`Error::BadTensor`] for another dtype or shape.
fn check_tensor(path: &Path, st: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<()> {
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
    Ok(())
}

/// Every tensor a plan's layers need, under `names` (`(name, index among the layers that
/// compute)`), is in the file with its shape: checked before any layer is allocated, so what
/// loading allocates is bounded by the file's own size, whatever its metadata declares.
///
/// # Errors
/// As [`check_tensor`].
fn check_shapes(path: &Path, st: &SafeTensors<'_>, plan: &[Planned], names: &[(String, usize)]) -> Result<()> {
    let computing: Vec<&Planned> = plan.iter().filter(|p| p.computes).collect();
    for (name, i) in names {
        let Some(p) = computing.get(*i) else { continue };
        if let Some(shape) = p.weight_shape() {
            check_tensor(path, st, &format!("{name}.weight"), &shape)?;
            check_tensor(path, st, &format!("{name}.bias"), &[p.bias_len()])?;
        }
    }
    Ok(())
}

/// Tensor `name` as f32 values of exactly `shape`, all finite.
///
/// # Errors
/// [`Error::MissingTensor`], or [`Error::BadTensor`] for another dtype, shape or a non-finite value.
pub fn tensor_f32(path: &Path, st: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    check_tensor(path, st, name, shape)?;
    let view = st.tensor(name).map_err(|_| Error::MissingTensor {
        path: path.into(),
        name: name.into(),
    })?;
    let v = crate::tensorfile::f32_values(&view);
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
    write_bytes(path, &bytes)
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
            "a classifier, not an autoencoder (use it to predict classes or evaluate accuracy)".into(),
        ));
    }
    let parse = |key: &str| -> Result<serde_json::Value> {
        let text = meta
            .get(key)
            .ok_or_else(|| unknown(format!("missing `{key}` metadata")))?;
        serde_json::from_str(text).map_err(|e| unknown(format!("bad `{key}` metadata: {e}")))
    };
    let model_text = meta
        .get("model")
        .ok_or_else(|| unknown("missing `model` metadata".into()))?;
    let config: AutoencoderConfig = match version(&meta) {
        1 => AutoencoderConfig::from_v1(model_text),
        _ => serde_json::from_str(model_text),
    }
    .map_err(|e| unknown(format!("bad `model` metadata: {e}")))?;
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
    let plan = config.plan().map_err(|e| unknown(e.to_string()))?;
    let names = tensor_names(&config, plan.iter().filter(|p| p.computes).count());
    check_shapes(path, &st, &plan, &names)?;
    let mut layers = config.init(0).map_err(|e| unknown(e.to_string()))?.layers;
    read_params(path, &st, &mut layers, &names)?;
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
    let windows: Option<crate::data::window::Windows> = match meta.get("windows") {
        Some(_) => {
            let w: crate::data::window::Windows = serde_json::from_value(parse("windows")?)
                .map_err(|e| unknown(format!("bad `windows` metadata: {e}")))?;
            w.validate()
                .and_then(|()| w.channels(model.input_dim()))
                .map_err(|e| unknown(format!("bad `windows` metadata: {e}")))?;
            Some(w)
        }
        None => None,
    };
    let neighbours = match meta.get("neighbours") {
        Some(_) => {
            let settings: crate::neighbours::NeighbourSettings = serde_json::from_value(parse("neighbours")?)
                .map_err(|e| unknown(format!("bad `neighbours` metadata: {e}")))?;
            let (rows, code) = (settings.rows, model.code_dim());
            let codes = tensor_f32(path, &st, "neighbours.codes", &[rows, code])?;
            let n = crate::neighbours::CodeNeighbours {
                settings,
                codes: crate::tensor::Matrix::from_vec(rows, code, codes)?,
                kdist: tensor_f32(path, &st, "neighbours.kdist", &[rows])?,
                lrd: tensor_f32(path, &st, "neighbours.lrd", &[rows])?,
            };
            n.validate(code).map_err(|e| unknown(e.to_string()))?;
            Some(n)
        }
        None => None,
    };
    let data_width = windows.map_or(model.input_dim(), |w| model.input_dim() / w.length);
    if let Some(t) = &tabular {
        t.check(data_width)
            .map_err(|e| unknown(format!("bad `tabular` metadata: {e}")))?;
    }
    Ok(ModelFile {
        model,
        provenance,
        anomaly,
        tabular,
        windows,
        neighbours,
    })
}

/// The `format_version` of metadata that [`read_safetensors`] accepted.
fn version(meta: &std::collections::HashMap<String, String>) -> u32 {
    meta.get("format_version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(FORMAT_VERSION)
}

/// The kinds of model file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An autoencoder (PCA models included).
    Autoencoder,
    /// A classifier (an encoder with a softmax head).
    Classifier,
}

/// The kind of the model file at `path`, from its header alone (the weights are not read).
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::UnknownFormat`] for a file that is not
/// an hourglass model, [`Error::NewerVersion`] for a file from a newer hourglass.
pub fn kind(path: &Path) -> Result<Kind> {
    use std::io::Read;
    let unknown = |reason: &str| Error::UnknownFormat {
        path: path.into(),
        reason: reason.into(),
    };
    let mut f = std::fs::File::open(path).map_err(io_at(path))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| unknown("not a valid safetensors file (too short)"))?;
    let len = u64::from_le_bytes(len);
    // A header larger than the file is not a model file; never allocate for it.
    if len > f.metadata().map_err(io_at(path))?.len() {
        return Err(unknown("not a valid safetensors file (bad header length)"));
    }
    let mut text = vec![0u8; len as usize];
    f.read_exact(&mut text).map_err(io_at(path))?;
    let header: serde_json::Value =
        serde_json::from_slice(&text).map_err(|_| unknown("not a valid safetensors file (bad header)"))?;
    let meta = &header["__metadata__"];
    if meta["format"] != FORMAT_NAME {
        return Err(unknown(
            "a safetensors file without hourglass metadata (no `format` key)",
        ));
    }
    let found: u32 = meta["format_version"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if found > FORMAT_VERSION {
        return Err(Error::NewerVersion {
            path: path.into(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    Ok(if meta["kind"] == "classifier" {
        Kind::Classifier
    } else {
        Kind::Autoencoder
    })
}

/// A model file of either kind.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyModel {
    /// An autoencoder with its provenance, threshold and table encoding.
    Autoencoder(Box<ModelFile>),
    /// A classifier.
    Classifier(Box<Classifier>),
}

/// Loads a model file of either kind.
///
/// # Errors
/// As [`load`] and [`load_classifier`].
pub fn load_any(path: &Path) -> Result<AnyModel> {
    Ok(match kind(path)? {
        Kind::Autoencoder => AnyModel::Autoencoder(Box::new(load(path)?)),
        Kind::Classifier => AnyModel::Classifier(Box::new(load_classifier(path)?)),
    })
}

/// The bytes of a classifier file (deterministic, as [`to_bytes`]).
///
/// # Errors
/// [`Error::Config`] if the config cannot be serialized.
pub fn classifier_to_bytes(model: &Classifier) -> Result<Vec<u8>> {
    let json = |v: &dyn erased::Json| v.to_json();
    let mut meta = serde_json::Map::new();
    meta.insert("format".into(), FORMAT_NAME.into());
    meta.insert("format_version".into(), FORMAT_VERSION.to_string().into());
    meta.insert("kind".into(), "classifier".into());
    meta.insert("classifier".into(), json(&model.config)?.into());
    meta.insert("scaler".into(), json(&model.scaler)?.into());
    if let Some(r) = &model.report {
        meta.insert("report".into(), json(r)?.into());
    }
    meta.insert("crate_version".into(), env!("CARGO_PKG_VERSION").into());
    write_safetensors(meta, &mut params(&model.layers, &classifier_names(model.layers.len())))
}

/// Saves a classifier atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn save_classifier(path: &Path, model: &Classifier) -> Result<()> {
    let bytes = classifier_to_bytes(model)?;
    write_bytes(path, &bytes)
}

/// Loads a classifier file.
///
/// # Errors
/// [`Error::UnknownFormat`] for a file that is not an hourglass classifier (an autoencoder
/// file is named as such); [`Error::MissingTensor`]/[`Error::BadTensor`] for bad tensors.
pub fn load_classifier(path: &Path) -> Result<Classifier> {
    let bytes = std::fs::read(path).map_err(io_at(path))?;
    classifier_from_bytes(path, &bytes)
}

/// Parses the bytes of a classifier file; `path` is used in error messages.
///
/// # Errors
/// As [`load_classifier`].
pub fn classifier_from_bytes(path: &Path, bytes: &[u8]) -> Result<Classifier> {
    let (meta, st) = read_safetensors(path, bytes)?;
    let unknown = |reason: String| Error::UnknownFormat {
        path: path.into(),
        reason,
    };
    if meta.get("kind").map(String::as_str) != Some("classifier") {
        return Err(unknown(
            "an autoencoder, not a classifier (make one by fine-tuning an autoencoder's encoder)".into(),
        ));
    }
    let get = |k: &str| meta.get(k).ok_or_else(|| unknown(format!("missing `{k}` metadata")));
    let text = get("classifier")?;
    let config = match version(&meta) {
        1 => ClassifierConfig::from_v1(text),
        _ => serde_json::from_str::<ClassifierConfig>(text).map_err(|e| e.to_string()),
    }
    .map_err(|e| unknown(format!("bad `classifier` metadata: {e}")))?;
    let scaler: Scaler =
        serde_json::from_str(get("scaler")?).map_err(|e| unknown(format!("bad `scaler` metadata: {e}")))?;
    config
        .validate()
        .map_err(|e| unknown(format!("stored architecture is invalid: {e}")))?;
    let plan = config.plan().map_err(|e| unknown(e.to_string()))?;
    let names = classifier_names(plan.iter().filter(|p| p.computes).count());
    check_shapes(path, &st, &plan, &names)?;
    let mut layers = crate::model::arch::build(&plan, crate::layer::Init::Auto, &mut crate::rng::Rng::new(0))
        .map_err(|e| unknown(e.to_string()))?;
    read_params(path, &st, &mut layers, &names)?;
    let report = meta
        .get("report")
        .map(|r| serde_json::from_str::<TrainReport>(r))
        .transpose()
        .map_err(|e| unknown(format!("bad `report` metadata: {e}")))?;
    let mut model = Classifier::from_layers(config, layers, scaler).map_err(|e| unknown(e.to_string()))?;
    model.report = report;
    Ok(model)
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
