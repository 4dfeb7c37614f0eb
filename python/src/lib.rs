//! `hourglass._native`: the Python package's native module, thin bindings over the library's
//! front door. The estimators (scikit-learn, PyOD) live in Python; this module moves data in
//! (a float32 C-contiguous array read without a copy, or a table by column) and out, releases
//! the GIL around long calls, runs them on `threads` threads (results do not depend on the
//! count), and turns errors into Python exceptions.
//!
//! | file | holds |
//! |---|---|
//! | `lib.rs` | the module, its functions (`load`, `search`, `simd_level`, `detector_defaults`), errors, shared helpers |
//! | `model.rs` | the autoencoder class `Model` |
//! | `classifier.rs` | the classifier class `Classifier` |
//! | `data.rs` | arrays and tables handed over by Python, rows for a trained model |
//! | `training.rs` | the estimators' training settings, training watched for progress and Ctrl-C |

mod classifier;
mod data;
mod model;
mod training;

use classifier::Classifier;
use model::Model;

use hourglass::format::{self, AnyModel};
use hourglass::score::ScoreMetric;
use hourglass::{Error, Matrix};
use numpy::{IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use std::path::{Path, PathBuf};

create_exception!(
    _native,
    HourglassError,
    PyValueError,
    "An error of hourglass: bad data or settings (a ValueError)."
);

/// The name tables held in memory go by in messages.
pub(crate) const TABLE: &str = "DataFrame";
/// How errors name an array handed over by Python.
pub(crate) const ARRAY: &str = "array";

/// How errors name a text handed over from Python.
pub(crate) const TEXT: &str = "text";

pub(crate) fn py_err(e: Error) -> PyErr {
    match e {
        Error::Io { .. } => PyOSError::new_err(e.to_string()),
        e => HourglassError::new_err(e.to_string()),
    }
}

pub(crate) fn json_err(e: serde_json::Error) -> PyErr {
    HourglassError::new_err(format!("bad settings: {e}"))
}

/// Runs `f` without the GIL on `threads` threads.
pub(crate) fn run<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    f: impl FnOnce() -> hourglass::Result<T> + Send,
) -> PyResult<T> {
    py.detach(|| hourglass::with_threads(threads, f).and_then(|r| r))
        .map_err(py_err)
}

pub(crate) fn matrix_to_py<'py>(py: Python<'py>, m: Matrix) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let (r, c) = m.shape();
    m.into_vec().into_pyarray(py).reshape([r, c])
}

pub(crate) fn metric(name: &str) -> PyResult<ScoreMetric> {
    name.parse().map_err(HourglassError::new_err)
}

/// `outputs` by name, as `--outputs` takes them.
pub(crate) fn onnx_outputs(outputs: Option<Vec<String>>) -> PyResult<Option<Vec<hourglass::onnx::Output>>> {
    outputs
        .map(|o| o.iter().map(|n| n.parse()).collect::<Result<Vec<_>, String>>())
        .transpose()
        .map_err(pyo3::exceptions::PyValueError::new_err)
}

/// Writes `text` to `path` atomically.
pub(crate) fn write_text(path: &Path, text: &str) -> PyResult<()> {
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

/// The anomaly detector's data-sized defaults for `rows` training rows of `features` columns
/// (`hourglass::defaults`, the same numbers as the plain `hourglass train`): code, hidden (for
/// `code` if given), batch_size, epochs, patience, neighbours,
/// neighbour_rows.
#[pyfunction]
#[pyo3(signature = (rows, features, code=None))]
fn detector_defaults(
    py: Python<'_>,
    rows: usize,
    features: usize,
    code: Option<usize>,
) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    use hourglass::defaults as d;
    let code = code.unwrap_or_else(|| d::code_width(features));
    let out = pyo3::types::PyDict::new(py);
    out.set_item("code", code)?;
    out.set_item("hidden", d::hidden_width(features, code))?;
    out.set_item("batch_size", d::batch_size(rows))?;
    out.set_item("epochs", d::epochs(rows))?;
    out.set_item("patience", d::PATIENCE)?;
    out.set_item("neighbours", d::NEIGHBOURS)?;
    out.set_item("neighbour_rows", hourglass::neighbours::MAX_ROWS)?;
    Ok(out)
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_class::<Classifier>()?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(search, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(detector_defaults, m)?)?;
    m.add("HourglassError", m.py().get_type::<HourglassError>())?;
    m.add("FORMAT_VERSION", format::FORMAT_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
