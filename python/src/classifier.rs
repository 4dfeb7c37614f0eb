//! The classifier model class.

use crate::data::Data;
use crate::model::Model;
use crate::training::{Training, train_watched};
use crate::{json_err, matrix_to_py, onnx_outputs, py_err, run, write_text};
use hourglass::format::{self};
use numpy::{PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::{Path, PathBuf};

/// A classifier model file held in memory: an encoder with a softmax head.
#[pyclass(module = "hourglass._native")]
pub(crate) struct Classifier {
    pub(crate) model: hourglass::classifier::Classifier,
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
