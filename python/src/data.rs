//! Data handed over by Python: arrays read in place, tables by column, and rows for a
//! trained model (a table encoded its way, a series cut into its windows).

use crate::{ARRAY, HourglassError, TABLE, TEXT, py_err};
use hourglass::data::tabular::{CategoricalColumns, Impute, TabularOptions};
use hourglass::format::ModelFile;
use hourglass::{Matrix, MatrixRef};
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use std::path::Path;

/// Data handed over by Python.
pub(crate) enum Data<'py> {
    /// Rows of a float32 C-contiguous matrix, read in place.
    Array(PyReadonlyArray2<'py, f32>),
    /// A table by column (names, text fields), encoded as a CSV of the same values would be.
    Table(Vec<String>, Vec<Vec<String>>),
    /// A text, cut into tokens as the model's text was (`("text", str)`).
    Text(String),
}

impl<'py> Data<'py> {
    /// `data` is a 2-D float32 C-contiguous array, or `("table", names, columns)` where each
    /// column is a float64 array (NaN = missing) or a list of strings (None = missing).
    pub(crate) fn extract(data: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(t) = data.cast::<PyTuple>() {
            if t.get_item(0)?.extract::<String>()? == TEXT {
                return Ok(Data::Text(t.get_item(1)?.extract()?));
            }
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
    pub(crate) fn rows(&self) -> PyResult<Option<MatrixRef<'_>>> {
        match self {
            Data::Array(a) => {
                let (r, c) = (a.shape()[0], a.shape()[1]);
                let s = a
                    .as_slice()
                    .map_err(|_| HourglassError::new_err("the array must be C-contiguous"))?;
                Ok(Some(MatrixRef::new(r, c, s).map_err(py_err)?))
            }
            Data::Table(..) | Data::Text(_) => Ok(None),
        }
    }
}

/// Rows for a trained model: the array as it is, or a table encoded the model's way.
pub(crate) fn model_rows<'a>(
    file: &ModelFile,
    data: &'a Data<'_>,
    owned: &'a mut Option<Matrix>,
) -> PyResult<MatrixRef<'a>> {
    if let Some(m) = data.rows()? {
        let Some(w) = &file.windows else { return Ok(m) };
        // A model of windows: every window of the series (steps × channels).
        let every = w.every();
        check_channels(file, m.cols())?;
        let x = every.apply(Path::new(ARRAY), &m.to_matrix()).map_err(py_err)?;
        return Ok(owned.insert(x).view());
    }
    let (names, columns) = match data {
        Data::Table(names, columns) => (names, columns),
        Data::Text(t) => {
            let steps = text_steps(file, t)?;
            let x = match &file.windows {
                Some(w) => w.every().apply(Path::new(TEXT), &steps).map_err(py_err)?,
                None => steps,
            };
            return Ok(owned.insert(x).view());
        }
        Data::Array(_) => unreachable!("rows() is None only for tables and texts"),
    };
    let loaded = hourglass::load::table_for_model(file, Path::new(TABLE), names.clone(), columns.clone(), None)
        .map_err(py_err)?;
    Ok(owned.insert(loaded.data.x).view())
}

/// The series' steps for a model of windows: `cols` channels, the model's.
pub(crate) fn check_channels(file: &ModelFile, cols: usize) -> PyResult<()> {
    if cols != file.data_width() {
        return Err(HourglassError::new_err(format!(
            "the series has {cols} channels, the model was fitted on {}",
            file.data_width()
        )));
    }
    Ok(())
}

/// A text's steps for a model fitted on a text: its tokens one-hot over the model's vocabulary.
fn text_steps(file: &ModelFile, text: &str) -> PyResult<Matrix> {
    let Some((tab, tokens)) = file.tabular.as_ref().and_then(|t| Some((t, t.text?))) else {
        return Err(HourglassError::new_err("the model was not fitted on a text"));
    };
    let raw = hourglass::data::text::table(Path::new(TEXT), text, &tokens).map_err(py_err)?;
    tab.transform(Path::new(TEXT), &raw).map_err(py_err)
}

/// The series' steps held by `data`, for a model of windows: an array of numbers (a series
/// with text or missing values is encoded before it is cut into windows, by the caller), or a
/// text for a model fitted on one (its one-hot tokens, kept in `owned`).
pub(crate) fn series_rows<'a>(
    file: &ModelFile,
    data: &'a Data<'_>,
    owned: &'a mut Option<Matrix>,
) -> PyResult<MatrixRef<'a>> {
    if let Data::Text(t) = data {
        return Ok(owned.insert(text_steps(file, t)?).view());
    }
    let Some(m) = data.rows()? else {
        return Err(HourglassError::new_err(
            "a series is read as numbers: encode text and missing values before cutting it into windows",
        ));
    };
    check_channels(file, m.cols())?;
    Ok(m)
}

pub(crate) fn table_options(
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
        text: None,
    })
}
