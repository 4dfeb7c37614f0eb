//! `hourglass._native`: the Python package's native module, thin bindings over the library's
//! front door. The estimators (scikit-learn, PyOD) live in Python; this module moves data in
//! (a float32 C-contiguous array read without a copy, or a table by column) and out, releases
//! the GIL around long calls, runs them on `threads` threads (results do not depend on the
//! count), and turns errors into Python exceptions.

use hourglass::data::csv::RawTable;
use hourglass::data::tabular::{CategoricalColumns, Impute, TabularOptions};
use hourglass::data::window::Windows;
use hourglass::format::{self, AnyModel, ModelFile, Provenance};
use hourglass::model::{Design, Dims};
use hourglass::score::{ScoreMetric, ThresholdRule};
use hourglass::{
    Error, Flow, InferPrecision, Matrix, MatrixRef, Noise, OptimizerConfig, Schedule, TrainConfig, TrainReport,
};
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

create_exception!(
    _native,
    HourglassError,
    PyValueError,
    "An error of hourglass: bad data or settings (a ValueError)."
);

/// The name tables held in memory go by in messages.
const TABLE: &str = "DataFrame";
/// How errors name an array handed over by Python.
const ARRAY: &str = "array";

fn py_err(e: Error) -> PyErr {
    match e {
        Error::Io { .. } => PyOSError::new_err(e.to_string()),
        e => HourglassError::new_err(e.to_string()),
    }
}

fn json_err(e: serde_json::Error) -> PyErr {
    HourglassError::new_err(format!("bad settings: {e}"))
}

/// Training settings as the Python estimators spell them (strings where the command line has
/// strings), turned into the library's `TrainConfig` by the library's own parsers.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Training {
    epochs: usize,
    batch_size: usize,
    lr: f32,
    optimizer: String,
    momentum: f32,
    nesterov: bool,
    weight_decay: f32,
    schedule: String,
    warmup: usize,
    clip_norm: Option<f32>,
    valid_fraction: f32,
    patience: Option<usize>,
    seed: u64,
    scale: String,
    precision: String,
    noise: Vec<String>,
    max_norm: Option<f32>,
    #[serde(default)]
    freeze_epochs: usize,
    #[serde(default)]
    binarize: bool,
    #[serde(default)]
    unit_norm_decoder: bool,
    #[serde(default)]
    tied_init: bool,
    #[serde(default)]
    pre_bias: bool,
}

impl Training {
    /// The training settings; warns (a `UserWarning`) when the precision asked for cannot
    /// run on this machine.
    fn parse(py: Python<'_>, json: &str) -> PyResult<TrainConfig> {
        let config = Self::settings(json)?;
        if let Some(note) = config.precision.fallback_note() {
            let message = std::ffi::CString::new(note).map_err(|e| HourglassError::new_err(e.to_string()))?;
            PyErr::warn(py, &py.get_type::<pyo3::exceptions::PyUserWarning>(), &message, 1)?;
        }
        Ok(config)
    }

    fn settings(json: &str) -> PyResult<TrainConfig> {
        let t: Training = serde_json::from_str(json).map_err(json_err)?;
        let bad = |m: String| HourglassError::new_err(m);
        Ok(TrainConfig {
            epochs: t.epochs,
            batch_size: t.batch_size,
            lr: t.lr,
            optimizer: match t.optimizer.as_str() {
                "adam" => OptimizerConfig::adam(t.weight_decay),
                "sgd" => OptimizerConfig::sgd(t.momentum, t.nesterov, t.weight_decay),
                other => return Err(bad(format!("unknown optimizer `{other}`; expected adam or sgd"))),
            },
            schedule: Schedule::parse(&t.schedule).map_err(bad)?,
            warmup_epochs: t.warmup,
            clip_norm: t.clip_norm,
            valid_fraction: t.valid_fraction,
            patience: t.patience,
            seed: t.seed,
            scaling: t.scale.parse().map_err(bad)?,
            precision: t.precision.parse().map_err(bad)?,
            noise: t
                .noise
                .iter()
                .map(|n| Noise::parse(n))
                .collect::<Result<_, _>>()
                .map_err(bad)?,
            image_shape: None,
            max_norm: t.max_norm,
            freeze_epochs: t.freeze_epochs,
            binarize: t.binarize,
            unit_norm_decoder: t.unit_norm_decoder,
            tied_init: t.tied_init,
            pre_bias: t.pre_bias,
        })
    }
}

/// Data handed over by Python.
enum Data<'py> {
    /// Rows of a float32 C-contiguous matrix, read in place.
    Array(PyReadonlyArray2<'py, f32>),
    /// A table by column (names, text fields), encoded as a CSV of the same values would be.
    Table(Vec<String>, Vec<Vec<String>>),
}

impl<'py> Data<'py> {
    /// `data` is a 2-D float32 C-contiguous array, or `("table", names, columns)` where each
    /// column is a float64 array (NaN = missing) or a list of strings (None = missing).
    fn extract(data: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(t) = data.cast::<PyTuple>() {
            let names: Vec<String> = t.get_item(1)?.extract()?;
            let mut columns = Vec::with_capacity(names.len());
            for c in t.get_item(2)?.cast::<PyList>()?.iter() {
                columns.push(match c.extract::<PyReadonlyArray1<'_, f64>>() {
                    Ok(a) => a
                        .as_array()
                        .iter()
                        .map(|v| if v.is_nan() { String::new() } else { format!("{v}") })
                        .collect(),
                    Err(_) => c
                        .extract::<Vec<Option<String>>>()?
                        .into_iter()
                        .map(Option::unwrap_or_default)
                        .collect(),
                });
            }
            return Ok(Data::Table(names, columns));
        }
        Ok(Data::Array(data.extract()?))
    }

    /// The array's rows, or `None` for a table.
    fn rows(&self) -> PyResult<Option<MatrixRef<'_>>> {
        match self {
            Data::Array(a) => {
                let (r, c) = (a.shape()[0], a.shape()[1]);
                let s = a
                    .as_slice()
                    .map_err(|_| HourglassError::new_err("the array must be C-contiguous"))?;
                Ok(Some(MatrixRef::new(r, c, s).map_err(py_err)?))
            }
            Data::Table(..) => Ok(None),
        }
    }
}

/// Rows for a trained model: the array as it is, or a table encoded the model's way.
fn model_rows<'a>(file: &ModelFile, data: &'a Data<'_>, owned: &'a mut Option<Matrix>) -> PyResult<MatrixRef<'a>> {
    if let Some(m) = data.rows()? {
        let Some(w) = &file.windows else { return Ok(m) };
        // A model of windows: every window of the series (steps × channels).
        let every = w.every();
        check_channels(file, m.cols())?;
        let x = every.apply(Path::new(ARRAY), &m.to_matrix()).map_err(py_err)?;
        return Ok(owned.insert(x).view());
    }
    let Data::Table(names, columns) = data else {
        unreachable!("rows() is None only for tables")
    };
    let loaded = hourglass::load::table_for_model(file, Path::new(TABLE), names.clone(), columns.clone(), None)
        .map_err(py_err)?;
    Ok(owned.insert(loaded.data.x).view())
}

/// The series' steps for a model of windows: `cols` channels, the model's.
fn check_channels(file: &ModelFile, cols: usize) -> PyResult<()> {
    if cols != file.data_width() {
        return Err(HourglassError::new_err(format!(
            "the series has {cols} channels, the model was fitted on {}",
            file.data_width()
        )));
    }
    Ok(())
}

/// The series' steps held by `data`, for a model of windows: an array of numbers (a series
/// with text or missing values is encoded before it is cut into windows, by the caller).
fn series_rows<'a>(file: &ModelFile, data: &'a Data<'_>) -> PyResult<MatrixRef<'a>> {
    let Some(m) = data.rows()? else {
        return Err(HourglassError::new_err(
            "a series is read as numbers: encode text and missing values before cutting it into windows",
        ));
    };
    check_channels(file, m.cols())?;
    Ok(m)
}

/// Runs `f` without the GIL on `threads` threads.
fn run<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    f: impl FnOnce() -> hourglass::Result<T> + Send,
) -> PyResult<T> {
    py.detach(|| hourglass::with_threads(threads, f).and_then(|r| r))
        .map_err(py_err)
}

fn matrix_to_py<'py>(py: Python<'py>, m: Matrix) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let (r, c) = m.shape();
    m.into_vec().into_pyarray(py).reshape([r, c])
}

fn metric(name: &str) -> PyResult<ScoreMetric> {
    name.parse().map_err(HourglassError::new_err)
}

/// Training events as Python sees them: `("epoch_start", epoch, epochs, batches)`,
/// `("batch", batch, loss)`, `("epoch_end", stats_json)`.
enum Message {
    EpochStart(usize, usize, usize),
    Batch(usize, f64),
    EpochEnd(String),
}

impl Message {
    fn of(e: &hourglass::Event<'_>) -> Option<Self> {
        Some(match e {
            hourglass::Event::EpochStart { epoch, epochs, batches } => Message::EpochStart(*epoch, *epochs, *batches),
            hourglass::Event::Batch { batch, loss } => Message::Batch(*batch, *loss),
            hourglass::Event::EpochEnd(s) => Message::EpochEnd(serde_json::to_string(s).ok()?),
            _ => return None,
        })
    }

    fn call(self, py: Python<'_>, callback: &Py<PyAny>) -> PyResult<()> {
        match self {
            Message::EpochStart(e, n, b) => callback.call1(py, ("epoch_start", e, n, b)),
            Message::Batch(b, l) => callback.call1(py, ("batch", b, l)),
            Message::EpochEnd(s) => callback.call1(py, ("epoch_end", s)),
        }
        .map(|_| ())
    }
}

/// Runs a training call on its own thread while this one, without the GIL, waits for its
/// events: each goes to `progress` (with the GIL; batch events only when `batches`, since
/// waking Python for every batch costs time), and Ctrl-C (`KeyboardInterrupt`) stops
/// training cleanly at the next batch. Returns the report; an interrupted report says so.
fn train_watched<F>(py: Python<'_>, progress: Option<&Py<PyAny>>, batches: bool, train: F) -> PyResult<TrainReport>
where
    F: FnOnce(&mut (dyn FnMut(&hourglass::Event<'_>) -> Flow + Send)) -> hourglass::Result<TrainReport> + Send,
{
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Message>();
    let rx = Mutex::new(rx);
    let mut failure: Option<PyErr> = None;
    let outcome = std::thread::scope(|s| {
        let stop = &stop;
        let worker = s.spawn(move || {
            let mut on_event = |e: &hourglass::Event<'_>| {
                if let Some(m) = Message::of(e)
                    && (batches || !matches!(m, Message::Batch(..)))
                {
                    // The receiver lives until the worker is joined.
                    let _ = tx.send(m);
                }
                if stop.load(Ordering::Relaxed) {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            };
            train(&mut on_event)
        });
        loop {
            let got = py.detach(|| {
                rx.lock()
                    .expect("only this thread receives")
                    .recv_timeout(Duration::from_millis(50))
            });
            match got {
                Ok(m) => {
                    if let (Some(cb), None) = (progress, &failure)
                        && let Err(e) = m.call(py, cb)
                    {
                        // A callback that fails (or is interrupted) stops training.
                        stop.store(true, Ordering::Relaxed);
                        failure = Some(e);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if let Err(e) = py.check_signals() {
                stop.store(true, Ordering::Relaxed);
                // Ctrl-C ends training cleanly; anything else is raised after it ends.
                if !e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) && failure.is_none() {
                    failure = Some(e);
                }
            }
        }
        worker.join()
    });
    let report = match outcome {
        Ok(r) => r.map_err(py_err)?,
        Err(_) => return Err(HourglassError::new_err("internal error: training panicked")),
    };
    if let Some(e) = failure
        && !e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py)
    {
        return Err(e);
    }
    Ok(report)
}

/// An autoencoder model file held in memory.
#[pyclass(module = "hourglass._native")]
struct Model {
    file: ModelFile,
}

fn table_options(
    categorical: Option<Vec<String>>,
    impute: Option<&str>,
    max_categories: usize,
    hash_buckets: Option<usize>,
) -> PyResult<TabularOptions> {
    Ok(TabularOptions {
        categorical: match categorical.as_deref() {
            None | Some([]) => CategoricalColumns::None,
            Some([a]) if a == "auto" => CategoricalColumns::Auto,
            Some(names) => CategoricalColumns::Names(names.to_vec()),
        },
        impute: impute
            .map(|s| s.parse::<Impute>())
            .transpose()
            .map_err(HourglassError::new_err)?,
        max_categories,
        hash_buckets,
    })
}

#[pymethods]
impl Model {
    /// Trains a model on `data` (an array or a table) with `design` and `train` (JSON of the
    /// library's `Design` and `TrainConfig`), the table settings, and `image_shape`
    /// `(h, w, c)` for image rows. Returns the model and the training report as JSON.
    #[staticmethod]
    #[pyo3(signature = (data, design, train, image_shape=None, categorical=None, impute=None, max_categories=50, hash_buckets=None, threads=None, progress=None, batches=false, feature_names=None, windows=None))]
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
    ) -> PyResult<(Model, String)> {
        let design: Design = serde_json::from_str(design).map_err(json_err)?;
        let mut config = Training::parse(py, train)?;
        let data = Data::extract(data)?;
        let options = table_options(categorical, impute, max_categories, hash_buckets)?;
        let (owned, tabular, names) = match &data {
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

    /// Anomaly scores (reconstruction error in the model's scaled units; higher = more
    /// anomalous, as PyOD and the command line have it).
    #[pyo3(signature = (data, metric="mse", threads=None))]
    fn scores<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        metric: &str,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let metric = self::metric(metric)?;
        let data = Data::extract(data)?;
        let mut owned = None;
        let x = model_rows(&self.file, &data, &mut owned)?;
        let m = &self.file.model;
        let s = run(py, threads, || hourglass::score::scores(m, x, metric))?;
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
        let x = series_rows(&self.file, &data)?;
        let m = &self.file.model;
        let s = run(py, threads, || {
            hourglass::score::step_scores(m, w, Path::new(ARRAY), x, metric)
        })?;
        Ok(s.into_pyarray(py))
    }

    /// Scores with each feature's expected value (data's units) and share of the error.
    #[pyo3(signature = (data, metric="mse", threads=None))]
    #[allow(clippy::type_complexity)]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        metric: &str,
        threads: Option<usize>,
    ) -> PyResult<(
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray2<f32>>,
        Bound<'py, PyArray2<f32>>,
    )> {
        let metric = self::metric(metric)?;
        let data = Data::extract(data)?;
        let mut owned = None;
        let x = model_rows(&self.file, &data, &mut owned)?;
        let m = &self.file.model;
        let e = run(py, threads, || hourglass::score::explain(m, x, metric))?;
        Ok((
            e.scores.into_pyarray(py),
            matrix_to_py(py, e.expected)?,
            matrix_to_py(py, e.share)?,
        ))
    }

    /// Sets the anomaly threshold from `data` by `rule` (contamination, quantile or fpr) at
    /// `value`; returns the threshold.
    #[pyo3(signature = (data, rule, value, metric="mse", threads=None))]
    fn calibrate(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        rule: &str,
        value: f64,
        metric: &str,
        threads: Option<usize>,
    ) -> PyResult<f64> {
        let metric = self::metric(metric)?;
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
                let x = series_rows(&self.file, &data)?;
                run(py, threads, || {
                    let s = hourglass::score::step_scores(m, w, Path::new(ARRAY), x, metric)?;
                    hourglass::score::calibrate_scores(&s, metric, rule, None)
                })?
            }
            None => {
                let x = model_rows(&self.file, &data, &mut owned)?;
                run(py, threads, || hourglass::score::calibrate(m, x, metric, rule, None))?
            }
        };
        let value = t.value;
        self.file.anomaly = Some(t);
        Ok(value)
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
        });
        serde_json::to_string(&v).map_err(json_err)
    }
}

/// A classifier model file held in memory: an encoder with a softmax head.
#[pyclass(module = "hourglass._native")]
struct Classifier {
    model: hourglass::classifier::Classifier,
}

#[pymethods]
impl Classifier {
    /// Fine-tunes the encoder of `encoder` (an autoencoder) with a head for `classes` on rows
    /// `x` with class indices `y` (`train`: JSON of `TrainConfig`; `dropout` on every encoder
    /// layer; `from_scratch` draws the same network's weights anew). Returns the classifier
    /// and the report as JSON.
    #[staticmethod]
    #[pyo3(signature = (encoder, x, y, classes, train, dropout=0.0, from_scratch=false, threads=None, progress=None, batches=false))]
    #[allow(clippy::too_many_arguments)]
    fn finetune(
        py: Python<'_>,
        encoder: &Model,
        x: PyReadonlyArray2<'_, f32>,
        y: Vec<usize>,
        classes: Vec<String>,
        train: &str,
        dropout: f32,
        from_scratch: bool,
        threads: Option<usize>,
        progress: Option<Py<PyAny>>,
        batches: bool,
    ) -> PyResult<(Classifier, String)> {
        let config = Training::parse(py, train)?;
        let data = Data::Array(x);
        let x = data.rows()?.expect("an array");
        let mut model = hourglass::classifier::Classifier::from_encoder(&encoder.file.model, classes, config.seed)
            .map_err(py_err)?;
        if from_scratch {
            model = model.reinit(config.seed).map_err(py_err)?;
        }
        model.config.dropout = dropout;
        let report = train_watched(py, progress.as_ref(), batches, |on_event| {
            hourglass::with_threads(threads, || {
                hourglass::classifier::finetune(&mut model, x, &y, None, &config, on_event)
            })?
        })?;
        Ok((Classifier { model }, serde_json::to_string(&report).map_err(json_err)?))
    }

    /// Class probabilities of the rows of `x`.
    #[pyo3(signature = (x, threads=None))]
    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let data = Data::Array(x);
        let x = data.rows()?.expect("an array");
        let m = &self.model;
        let p = run(py, threads, || m.predict_proba(x))?;
        matrix_to_py(py, p)
    }

    /// The class names, in the order of `predict_proba`'s columns.
    fn classes(&self) -> Vec<String> {
        self.model.config.classes.clone()
    }

    /// Width of the input rows.
    fn input_dim(&self) -> usize {
        self.model.input_dim()
    }

    /// The classifier file's bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = format::classifier_to_bytes(&self.model).map_err(py_err)?;
        Ok(PyBytes::new(py, &b))
    }

    /// A classifier from a classifier file's bytes.
    #[staticmethod]
    fn from_bytes(bytes: &[u8]) -> PyResult<Classifier> {
        let model = format::classifier_from_bytes(Path::new("<bytes>"), bytes).map_err(py_err)?;
        Ok(Classifier { model })
    }

    /// Saves the classifier file (atomically).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        format::save_classifier(&path, &self.model).map_err(py_err)
    }

    /// Writes the classifier as ONNX (outputs `probabilities` and `class`).
    #[pyo3(signature = (path, outputs=None))]
    fn to_onnx(&self, path: PathBuf, outputs: Option<Vec<String>>) -> PyResult<()> {
        let outputs = onnx_outputs(outputs)?;
        let e = hourglass::onnx::classifier(&self.model, outputs.as_deref()).map_err(py_err)?;
        e.save(&path).map_err(py_err)
    }

    /// Writes the HTML report: with rows `x` and their class names `labels`, the confusion
    /// matrix.
    #[pyo3(signature = (path, x=None, labels=None, threads=None))]
    fn report(
        &self,
        py: Python<'_>,
        path: PathBuf,
        x: Option<PyReadonlyArray2<'_, f32>>,
        labels: Option<Vec<String>>,
        threads: Option<usize>,
    ) -> PyResult<()> {
        let data = x.map(Data::Array);
        let x = match &data {
            Some(d) => d.rows()?.map(|r| r.to_matrix()),
            None => None,
        };
        let m = &self.model;
        let html = run(py, threads, || {
            let d = x.as_ref().map(|x| hourglass::report::Data {
                name: "the rows given".into(),
                x,
                image: None,
                labels: labels.map(hourglass::report::Labels::Class),
            });
            hourglass::report::classifier(m, "classifier", d.as_ref())
        })?;
        write_text(&path, &html)
    }
}

/// `outputs` by name, as `--outputs` takes them.
fn onnx_outputs(outputs: Option<Vec<String>>) -> PyResult<Option<Vec<hourglass::onnx::Output>>> {
    outputs
        .map(|o| o.iter().map(|n| n.parse()).collect::<Result<Vec<_>, String>>())
        .transpose()
        .map_err(pyo3::exceptions::PyValueError::new_err)
}

/// Writes `text` to `path` atomically.
fn write_text(path: &Path, text: &str) -> PyResult<()> {
    hourglass::fsutil::write_bytes(path, text.as_bytes()).map_err(py_err)
}

/// Loads a model file of either kind: `("autoencoder", Model)` or `("classifier", Classifier)`.
#[pyfunction]
fn load(py: Python<'_>, path: PathBuf) -> PyResult<(String, Py<PyAny>)> {
    Ok(match format::load_any(&path).map_err(py_err)? {
        AnyModel::Autoencoder(file) => ("autoencoder".into(), Py::new(py, Model { file: *file })?.into_any()),
        AnyModel::Classifier(model) => (
            "classifier".into(),
            Py::new(py, Classifier { model: *model })?.into_any(),
        ),
    })
}

/// The `k` nearest codes of each query by Hamming distance (ties by item index), or all
/// within `radius`: `(query, rank, item, distance)` rows as an (n, 4) uint64 array.
#[pyfunction]
#[pyo3(signature = (database, queries, bits, k=10, radius=None))]
fn search<'py>(
    py: Python<'py>,
    database: PyReadonlyArray2<'py, u64>,
    queries: PyReadonlyArray2<'py, u64>,
    bits: usize,
    k: usize,
    radius: Option<u32>,
) -> PyResult<Bound<'py, PyArray2<u64>>> {
    let words = bits.div_ceil(64);
    let codes = |a: &PyReadonlyArray2<'py, u64>| -> PyResult<hourglass::hash::Codes> {
        if a.shape()[1] != words {
            return Err(HourglassError::new_err(format!(
                "codes of {bits} bits have {words} words per row, got {}",
                a.shape()[1]
            )));
        }
        Ok(hourglass::hash::Codes {
            bits,
            words,
            data: a.as_array().iter().copied().collect(),
        })
    };
    let (db, q) = (codes(&database)?, codes(&queries)?);
    let rows: Vec<u64> = py.detach(|| {
        (0..q.rows())
            .flat_map(|i| {
                hourglass::hash::search(&db, q.row(i), k, radius)
                    .into_iter()
                    .enumerate()
                    .flat_map(move |(r, h)| [i as u64, r as u64 + 1, h.item as u64, u64::from(h.distance)])
            })
            .collect()
    });
    let n = rows.len() / 4;
    rows.into_pyarray(py).reshape([n, 4])
}

/// The SIMD level the kernels run at on this machine.
#[pyfunction]
fn simd_level() -> &'static str {
    hourglass::kernels::simd_level()
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_class::<Classifier>()?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(search, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add("HourglassError", m.py().get_type::<HourglassError>())?;
    m.add("FORMAT_VERSION", format::FORMAT_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
