//! The autoencoder model class.

use crate::data::{Data, model_rows, series_rows, table_options};
use crate::training::{Training, train_watched};
use crate::{
    ARRAY, HourglassError, TABLE, TEXT, json_err, matrix_to_py, metric, onnx_outputs, py_err, run, write_text,
};
use hourglass::InferPrecision;
use hourglass::data::csv::RawTable;
use hourglass::data::tabular::TabularOptions;
use hourglass::data::window::Windows;
use hourglass::format::{self, ModelFile, Provenance};
use hourglass::model::{Design, Dims};
use hourglass::score::ThresholdRule;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::{Path, PathBuf};

/// An autoencoder model file held in memory.
#[pyclass(module = "hourglass._native")]
pub(crate) struct Model {
    pub(crate) file: ModelFile,
}

#[pymethods]
impl Model {
    /// Trains a model on `data` (an array or a table) with `design` and `train` (JSON of the
    /// library's `Design` and `TrainConfig`), the table settings, and `image_shape`
    /// `(h, w, c)` for image rows. Returns the model and the training report as JSON.
    #[staticmethod]
    #[pyo3(signature = (data, design, train, image_shape=None, categorical=None, impute=None, max_categories=50, hash_buckets=None, threads=None, progress=None, batches=false, feature_names=None, windows=None, text=None))]
    #[allow(clippy::too_many_arguments)]
    fn fit(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        design: &str,
        train: &str,
        image_shape: Option<(usize, usize, usize)>,
        categorical: Option<Vec<String>>,
        impute: Option<&str>,
        max_categories: usize,
        hash_buckets: Option<usize>,
        threads: Option<usize>,
        progress: Option<Py<PyAny>>,
        batches: bool,
        feature_names: Option<Vec<String>>,
        windows: Option<(usize, usize)>,
        text: Option<(String, bool)>,
    ) -> PyResult<(Model, String)> {
        let mut design: Design = serde_json::from_str(design).map_err(json_err)?;
        let mut config = Training::parse(py, train)?;
        let data = Data::extract(data)?;
        let mut options = table_options(categorical, impute, max_categories, hash_buckets)?;
        options.text = text
            .map(|(unit, lowercase)| {
                Ok::<_, PyErr>(hourglass::data::text::TextTokens {
                    unit: unit.parse().map_err(HourglassError::new_err)?,
                    lowercase,
                })
            })
            .transpose()?;
        let (owned, tabular, names) = match &data {
            Data::Text(t) => {
                let Some(tokens) = &options.text else {
                    return Err(HourglassError::new_err("a text needs text=(unit, lowercase)"));
                };
                let raw = hourglass::data::text::table(Path::new(TEXT), t, tokens).map_err(py_err)?;
                let loaded = hourglass::load::training_table(Path::new(TEXT), raw, &options).map_err(py_err)?;
                if let Some((length, _)) = windows {
                    design.for_text(length, loaded.data.x.cols());
                }
                (Some(loaded.data.x), loaded.tabular, loaded.data.names)
            }
            _ if options.text.is_some() => {
                return Err(HourglassError::new_err("text=(unit, lowercase) reads a text (a str)"));
            }
            Data::Table(names, columns) => {
                let raw = RawTable::from_columns(Path::new(TABLE), names.clone(), columns.clone(), &Default::default())
                    .map_err(py_err)?;
                let loaded = hourglass::load::training_table(Path::new(TABLE), raw, &options).map_err(py_err)?;
                (Some(loaded.data.x), loaded.tabular, loaded.data.names)
            }
            Data::Array(_) => {
                if options != TabularOptions::default() {
                    return Err(HourglassError::new_err(
                        "categorical columns and imputation apply to tables (DataFrames) only",
                    ));
                }
                (None, None, feature_names.unwrap_or_default())
            }
        };
        let x = match &owned {
            Some(m) => m.view(),
            None => data.rows()?.expect("an array"),
        };
        let names = if names.is_empty() {
            hourglass::data::numbered("c", x.cols())
        } else if names.len() == x.cols() {
            names
        } else {
            return Err(HourglassError::new_err(format!(
                "{} feature names for {} columns",
                names.len(),
                x.cols()
            )));
        };
        // A text's epochs 0: the command line's default for windows, at least 10 epochs and
        // 1,000 optimizer steps.
        if config.epochs == 0 && options.text.is_some() {
            let rows = windows.map_or(x.rows(), |(l, s)| Windows { length: l, stride: s }.count(x.rows()));
            config.epochs =
                hourglass::train::epochs_for_steps(rows, config.batch_size, 10, hourglass::train::SERIES_MIN_STEPS);
        }
        // A series: its windows are the rows, one-row images of `length` steps.
        let windows = windows.map(|(length, stride)| Windows { length, stride });
        let mut cut = None;
        let (x, names, image_shape) = match &windows {
            Some(w) => {
                w.validate().map_err(py_err)?;
                let m = w.apply(Path::new(ARRAY), &x.to_matrix()).map_err(py_err)?;
                let shape = w.image_shape(x.cols());
                (cut.insert(m).view(), w.names(&names), Some(shape))
            }
            None => (x, names, image_shape),
        };
        let input = match image_shape {
            Some((h, w, c)) if h * w * c == x.cols() => Dims::Image((c, h, w)),
            _ => Dims::Flat(x.cols()),
        };
        config.image_shape = image_shape;
        let mut model = design
            .config(input, None)
            .map_err(py_err)?
            .init(config.seed)
            .map_err(py_err)?;
        let report = train_watched(py, progress.as_ref(), batches, |on_event| {
            hourglass::with_threads(threads, || hourglass::fit(&mut model, x, None, &config, on_event))?
        })?;
        let provenance = Provenance {
            train: Some(config.clone()),
            report: Some(report.clone()),
            data_path: Some("<python>".into()),
            data_shape: Some(x.shape()),
            image_shape,
            feature_names: Some(names),
            crate_version: env!("CARGO_PKG_VERSION").into(),
            ..Provenance::default()
        };
        let json = serde_json::to_string(&report).map_err(json_err)?;
        Ok((
            Model {
                file: ModelFile {
                    model,
                    provenance,
                    anomaly: None,
                    tabular,
                    windows,
                    neighbours: None,
                },
            },
            json,
        ))
    }

    /// An untrained model of `design` for the rows of `data` (`image_shape` for image rows),
    /// weights drawn from `seed`, its scaler (`scale`) fitted on `data`.
    #[staticmethod]
    #[pyo3(signature = (design, data, seed, scale="none", image_shape=None))]
    fn new(
        design: &str,
        data: PyReadonlyArray2<'_, f32>,
        seed: u64,
        scale: &str,
        image_shape: Option<(usize, usize, usize)>,
    ) -> PyResult<Model> {
        let design: Design = serde_json::from_str(design).map_err(json_err)?;
        let data = Data::Array(data);
        let x = data.rows()?.expect("an array");
        let input = match image_shape {
            Some((h, w, c)) if h * w * c == x.cols() => Dims::Image((c, h, w)),
            _ => Dims::Flat(x.cols()),
        };
        let mut model = design.config(input, None).map_err(py_err)?.init(seed).map_err(py_err)?;
        let scaling = scale.parse().map_err(HourglassError::new_err)?;
        model.set_scaler(hourglass::Scaler::fit(scaling, x)).map_err(py_err)?;
        Ok(Model {
            file: ModelFile::new(model),
        })
    }

    /// PCA of `data` as a linear autoencoder (`scaling`: none, minmax or standard; `itq`:
    /// `(rounds, seed)` to rotate the code for hashing).
    #[staticmethod]
    #[pyo3(signature = (data, components, scaling="none", itq=None, threads=None))]
    fn pca(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        components: usize,
        scaling: &str,
        itq: Option<(usize, u64)>,
        threads: Option<usize>,
    ) -> PyResult<Model> {
        let data = Data::extract(data)?;
        let x = data
            .rows()?
            .ok_or_else(|| HourglassError::new_err("PCA takes an array"))?;
        let settings = hourglass::pca::PcaSettings {
            components,
            scaling: scaling.parse().map_err(HourglassError::new_err)?,
            itq,
        };
        let (model, summary) = run(py, threads, || hourglass::pca::build(x, &settings, None))?;
        let provenance = Provenance {
            data_shape: Some(x.shape()),
            feature_names: Some(hourglass::data::numbered("c", x.cols())),
            crate_version: env!("CARGO_PKG_VERSION").into(),
            pca: Some(summary),
            ..Provenance::default()
        };
        Ok(Model {
            file: ModelFile {
                provenance,
                ..ModelFile::new(model)
            },
        })
    }

    /// The codes of `data` (the activations of encoder layer `layer` when given).
    #[pyo3(signature = (data, layer=None, threads=None))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        layer: Option<usize>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let data = Data::extract(data)?;
        let mut owned = None;
        let x = model_rows(&self.file, &data, &mut owned)?;
        let m = &self.file.model;
        let layer = layer.unwrap_or(m.encoder_layers() - 1);
        let codes = run(py, threads, || m.encode_layer(x, layer))?;
        matrix_to_py(py, codes)
    }

    /// Reconstructions of codes, in the data's units.
    #[pyo3(signature = (codes, threads=None))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        codes: PyReadonlyArray2<'py, f32>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let data = Data::Array(codes);
        let x = data.rows()?.expect("an array");
        let m = &self.file.model;
        let out = run(py, threads, || m.decode(x))?;
        matrix_to_py(py, out)
    }

    /// `n` rows decoded from codes drawn from the prior (a variational autoencoder).
    #[pyo3(signature = (n, seed, threads=None))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        seed: u64,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let m = &self.file.model;
        let out = run(py, threads, || {
            hourglass::vae::sample(m, n, &mut hourglass::Rng::new(seed))
        })?;
        matrix_to_py(py, out)
    }

    /// Each row's ELBO, importance-weighted log-likelihood, KL and reconstruction term, in
    /// nats (a variational autoencoder).
    #[pyo3(signature = (data, samples, seed, threads=None))]
    #[allow(clippy::type_complexity)]
    fn vae_bounds<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        samples: usize,
        seed: u64,
        threads: Option<usize>,
    ) -> PyResult<(
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<f64>>,
    )> {
        let data = Data::extract(data)?;
        let mut owned = None;
        let x = model_rows(&self.file, &data, &mut owned)?;
        let m = &self.file.model;
        let rows = run(py, threads, || {
            hourglass::vae::bounds(m, x, samples, &mut hourglass::Rng::stream(seed, 0x7ae))
        })?;
        let col = |f: fn(&hourglass::vae::RowBounds) -> f64| rows.iter().map(f).collect::<Vec<f64>>().into_pyarray(py);
        Ok((
            col(|r| r.elbo),
            col(|r| r.log_likelihood),
            col(|r| r.kl),
            col(|r| r.reconstruction),
        ))
    }

    /// The reconstruction of each row, in the data's units.
    #[pyo3(signature = (data, threads=None))]
    fn reconstruct<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let data = Data::extract(data)?;
        let mut owned = None;
        let x = model_rows(&self.file, &data, &mut owned)?;
        let m = &self.file.model;
        let out = run(py, threads, || m.reconstruct(x))?;
        matrix_to_py(py, out)
    }

    /// A model with a softmax output: over every window (row) of `data`, the share of
    /// positions whose most probable channel is the input's, and the mean cross-entropy per
    /// position in nats (`hourglass eval`'s `categorical`).
    #[pyo3(signature = (data, threads=None))]
    fn categorical(&self, py: Python<'_>, data: &Bound<'_, PyAny>, threads: Option<usize>) -> PyResult<(f64, f64)> {
        let Some(hourglass::layer::Layer::Softmax(s)) = self.file.model.layers().last() else {
            return Err(HourglassError::new_err("the model has no softmax output"));
        };
        let data = Data::extract(data)?;
        let mut owned = None;
        let x = model_rows(&self.file, &data, &mut owned)?;
        let m = &self.file.model;
        let y = run(py, threads, || m.reconstruct(x))?;
        let mut sums = hourglass::metrics::CategoricalSums::new(s.channels, s.positions);
        sums.add(x, &y);
        let c = sums
            .finish()
            .ok_or_else(|| HourglassError::new_err("no position holds a category"))?;
        Ok((c.accuracy, c.cross_entropy))
    }

    /// A model of a text's windows: `outputs`, its reconstruction of every window of a text in
    /// order, written back as text (each token the most probable under the mean of the
    /// windows that hold it).
    fn text_of(&self, outputs: numpy::PyReadonlyArray2<'_, f32>) -> PyResult<String> {
        use hourglass::data::text;
        let (Some(tab), Some(w)) = (&self.file.tabular, &self.file.windows) else {
            return Err(HourglassError::new_err("the model was not fitted on a text"));
        };
        let (Some(tokens), Some(vocab)) = (tab.text, tab.vocabulary()) else {
            return Err(HourglassError::new_err("the model was not fitted on a text"));
        };
        let y = outputs.as_array();
        if y.ncols() != vocab.len() * w.length {
            return Err(HourglassError::new_err(format!(
                "outputs of {} values a row; the model's windows have {}",
                y.ncols(),
                vocab.len() * w.length
            )));
        }
        let mut d = text::TextDecoder::new(vocab, w.length);
        for row in y.rows() {
            d.push(&row.to_vec());
        }
        Ok(text::join(&d.finish(), tokens.unit))
    }

    /// Anomaly scores (higher = more anomalous, as PyOD and the command line have it) by
    /// `metric`; None: the calibrated metric, else the neighbourhood's own (mse+lof or mse+knn)
    /// for a model with a code neighbourhood, else mse (what `hourglass score` uses).
    #[pyo3(signature = (data, metric=None, threads=None))]
    fn scores<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        metric: Option<&str>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let metric = metric.map_or(Ok(self.file.default_metric()), self::metric)?;
        let data = Data::extract(data)?;
        let mut owned = None;
        let x = model_rows(&self.file, &data, &mut owned)?;
        let f = &self.file;
        let s = run(py, threads, || f.scores(x, metric))?;
        Ok(s.into_pyarray(py))
    }

    /// A model of windows: each step's score, the mean of the scores of the windows of the
    /// series `data` (steps × channels) that contain it (higher = more anomalous).
    #[pyo3(signature = (data, metric="mse", threads=None))]
    fn step_scores<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        metric: &str,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let Some(w) = &self.file.windows else {
            return Err(HourglassError::new_err(
                "step scores need a model of windows (fitted on a series)",
            ));
        };
        let metric = self::metric(metric)?;
        let data = Data::extract(data)?;
        let mut owned = None;
        let x = series_rows(&self.file, &data, &mut owned)?;
        let m = &self.file.model;
        let s = run(py, threads, || {
            hourglass::score::step_scores(m, w, Path::new(ARRAY), x, metric)
        })?;
        Ok(s.into_pyarray(py))
    }

    /// Scores with each feature's expected value (data's units) and share of the error.
    #[pyo3(signature = (data, metric=None, threads=None))]
    #[allow(clippy::type_complexity)]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        metric: Option<&str>,
        threads: Option<usize>,
    ) -> PyResult<(
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray2<f32>>,
        Bound<'py, PyArray2<f32>>,
    )> {
        let metric = metric.map_or(Ok(self.file.default_metric()), self::metric)?;
        // Shares are of the reconstruction error (for mse+lof, of its mse part).
        let shared = metric.error_part();
        let data = Data::extract(data)?;
        let mut owned = None;
        let x = model_rows(&self.file, &data, &mut owned)?;
        let f = &self.file;
        let (e, scores) = run(py, threads, || {
            let e = hourglass::score::explain(&f.model, x, shared)?;
            let scores = if shared == metric {
                e.scores.clone()
            } else {
                f.scores(x, metric)?
            };
            Ok((e, scores))
        })?;
        Ok((
            scores.into_pyarray(py),
            matrix_to_py(py, e.expected)?,
            matrix_to_py(py, e.share)?,
        ))
    }

    /// Sets the anomaly threshold from `data` by `rule` (contamination, quantile or fpr) at
    /// `value`; returns the threshold.
    /// `metric` None: the neighbourhood's own (mse+lof or mse+knn) for a model with a code
    /// neighbourhood, else mse.
    #[pyo3(signature = (data, rule, value, metric=None, threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn calibrate(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        rule: &str,
        value: f64,
        metric: Option<&str>,
        threads: Option<usize>,
    ) -> PyResult<f64> {
        let metric = metric.map_or(Ok(self.file.own_metric()), self::metric)?;
        let rule = match rule {
            "contamination" => ThresholdRule::Contamination(value),
            "quantile" => ThresholdRule::Quantile(value),
            "fpr" => ThresholdRule::Fpr(value),
            other => {
                return Err(HourglassError::new_err(format!(
                    "unknown rule `{other}`; expected contamination, quantile or fpr"
                )));
            }
        };
        let data = Data::extract(data)?;
        let mut owned = None;
        let m = &self.file.model;
        let t = match &self.file.windows {
            // A model of windows is calibrated on its steps' scores, the scores it gives.
            Some(w) => {
                let mut steps = None;
                let x = series_rows(&self.file, &data, &mut steps)?;
                run(py, threads, || {
                    let s = hourglass::score::step_scores(m, w, Path::new(ARRAY), x, metric)?;
                    hourglass::score::calibrate_scores(&s, metric, rule, None)
                })?
            }
            None => {
                let x = model_rows(&self.file, &data, &mut owned)?;
                let f = &self.file;
                run(py, threads, || {
                    hourglass::score::calibrate_scores(&f.scores(x, metric)?, metric, rule, None)
                })?
            }
        };
        let value = t.value;
        self.file.anomaly = Some(t);
        Ok(value)
    }

    /// Keeps the codes of (up to 10,000 of) the training rows `data` and their neighbourhoods
    /// with `k` neighbours, so that the default score becomes the neighbourhood's own, mse+lof
    /// or mse+knn (as `train --neighbours`).
    #[pyo3(signature = (data, k, threads=None))]
    fn fit_neighbours(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        k: usize,
        threads: Option<usize>,
    ) -> PyResult<()> {
        let data = Data::extract(data)?;
        let mut owned = None;
        let x = model_rows(&self.file, &data, &mut owned)?;
        let m = &self.file.model;
        let n = run(py, threads, || hourglass::neighbours::CodeNeighbours::fit(m, x, k))?;
        self.file.neighbours = Some(n);
        Ok(())
    }

    /// Binary codes of `data`, packed 64 bits to a word: `(words (n, w) uint64, bits)`.
    #[pyo3(signature = (data, threads=None))]
    fn hash<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        threads: Option<usize>,
    ) -> PyResult<(Bound<'py, PyArray2<u64>>, usize)> {
        let data = Data::extract(data)?;
        let mut owned = None;
        let x = model_rows(&self.file, &data, &mut owned)?;
        let m = &self.file.model;
        let (codes, _) = run(py, threads, || hourglass::hash::Codes::of(m, x))?;
        let (n, w, bits) = (codes.rows(), codes.words, codes.bits);
        Ok((codes.data.into_pyarray(py).reshape([n, w])?, bits))
    }

    /// The model file's bytes (what `save` writes and pickling keeps).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = format::to_bytes(&self.file).map_err(py_err)?;
        Ok(PyBytes::new(py, &b))
    }

    /// A model from a model file's bytes.
    #[staticmethod]
    fn from_bytes(bytes: &[u8]) -> PyResult<Model> {
        let file = format::from_bytes(Path::new("<bytes>"), bytes).map_err(py_err)?;
        Ok(Model { file })
    }

    /// Saves the model file (atomically).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        format::save(&path, &self.file).map_err(py_err)
    }

    /// Writes the model as ONNX (see `hourglass export`); `outputs` names the graph's outputs
    /// (default: the command's). Returns the notes (what the caller must feed that the graph
    /// cannot compute).
    #[pyo3(signature = (path, outputs=None))]
    fn to_onnx(&self, path: PathBuf, outputs: Option<Vec<String>>) -> PyResult<Vec<String>> {
        let outputs = onnx_outputs(outputs)?;
        let e = hourglass::onnx::autoencoder(&self.file, outputs.as_deref()).map_err(py_err)?;
        e.save(&path).map_err(py_err)?;
        Ok(e.notes)
    }

    /// Writes the HTML report (see `hourglass report`) to `path`: with `data`, its sections on
    /// those rows; `anomaly` marks the labelled anomalies; `image` is (height, width, channels).
    #[pyo3(signature = (path, data=None, anomaly=None, image=None, threads=None))]
    fn report(
        &self,
        py: Python<'_>,
        path: PathBuf,
        data: Option<&Bound<'_, PyAny>>,
        anomaly: Option<Vec<bool>>,
        image: Option<(usize, usize, usize)>,
        threads: Option<usize>,
    ) -> PyResult<()> {
        let data = data.map(Data::extract).transpose()?;
        let mut owned = None;
        let x = data
            .as_ref()
            .map(|d| model_rows(&self.file, d, &mut owned))
            .transpose()?;
        let x = x.map(|x| x.to_matrix());
        let file = &self.file;
        let html = run(py, threads, || {
            let d = x.as_ref().map(|x| hourglass::report::Data {
                name: "the rows given".into(),
                x,
                image,
                labels: anomaly.map(hourglass::report::Labels::Anomaly),
            });
            hourglass::report::autoencoder(file, "model", d.as_ref(), None)
        })?;
        write_text(&path, &html)
    }

    /// Sets the arithmetic of inference (`encode`, `decode`, `reconstruct`, scores, `calibrate`):
    /// "f32", or "int8" (the weights of the dense layers and of the convolutions whose filters
    /// read at least 32 inputs quantized per output row or filter, once, here; the other layers
    /// stay f32). Returns how many layers run in int8. Not stored in the file.
    fn set_precision(&mut self, precision: &str) -> PyResult<usize> {
        let p: InferPrecision = precision.parse().map_err(HourglassError::new_err)?;
        let m = &mut self.file.model;
        if m.precision() != p {
            m.set_precision(p).map_err(py_err)?;
        }
        Ok(m.int8_layers())
    }

    /// The arithmetic of inference: "f32" or "int8".
    fn precision(&self) -> &'static str {
        self.file.model.precision().name()
    }

    /// Everything known about the model, as JSON: config, provenance, widths, feature names,
    /// the anomaly threshold and the table's input columns.
    fn info(&self) -> PyResult<String> {
        let f = &self.file;
        let m = &f.model;
        let v = serde_json::json!({
            "config": m.config(),
            "provenance": f.provenance,
            "input_dim": m.input_dim(),
            "code_dim": m.code_dim(),
            "output_dim": m.output_dim(),
            "encoder_layers": m.encoder_layers(),
            "num_params": m.num_params(),
            "feature_names": f.feature_names(),
            "table_inputs": f.tabular.as_ref().map(|t| t.input_names()),
            "anomaly": f.anomaly,
            "scaling": m.scaler().kind,
            "windows": f.windows,
            "text": f.tabular.as_ref().and_then(|t| t.text),
            "vocabulary": f.tabular.as_ref().filter(|t| t.text.is_some()).and_then(|t| t.vocabulary()),
            "neighbours": f.neighbours.as_ref().map(|n| n.settings),
            "default_metric": f.default_metric(),
        });
        serde_json::to_string(&v).map_err(json_err)
    }
}
