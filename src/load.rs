//! The front door for data: reading a file the way training reads it (a CSV table becomes a
//! stored [`Tabular`] encoding when it needs one), and reading data for a trained model the way
//! its training data was read (the table's columns by name, images at the trained size). The
//! command line and any other front end call these; the library never prints, so what a
//! person should know (resized images, dropped columns) comes back as notes.

use crate::data::csv::RawTable;
use crate::data::tabular::{CategoricalColumns, Tabular, TabularOptions};
use crate::data::window::Windows;
use crate::data::{self, ColumnSelection, Dataset, Format};
use crate::error::{Error, Result};
use crate::format::ModelFile;
use crate::tensor::Matrix;
use std::path::Path;

/// Rows read from a file, with the table encoding that made them (if any) and notes for the
/// person who asked.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The rows and what is known about them.
    pub data: Dataset,
    /// The encoding fitted on (or used for) a CSV table.
    pub tabular: Option<Tabular>,
    /// Things worth telling: images resized, constant columns dropped, …
    pub notes: Vec<String>,
}

/// Whether `path` names a table a [`Tabular`] encoding reads: CSV (`.csv` or `.txt`) or
/// Parquet (`.parquet`, `.pq`, or any file that starts as one).
pub fn is_table(path: &Path) -> bool {
    let ext = |x: &str| path.extension().is_some_and(|e| e.eq_ignore_ascii_case(x));
    ext("csv") || ext("txt") || is_parquet(path)
}

/// Whether `path` names a Parquet file: by its extension, else by its first bytes.
pub fn is_parquet(path: &Path) -> bool {
    let ext = |x: &str| path.extension().is_some_and(|e| e.eq_ignore_ascii_case(x));
    if ext("parquet") || ext("pq") {
        return true;
    }
    let mut head = [0u8; 4];
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok()
        && data::parquet::sniff(&head)
}

/// A table's text fields: a CSV's or a Parquet file's (see [`data::csv::read_raw`]).
///
/// # Errors
/// As the readers.
pub fn read_raw(path: &Path, sel: &ColumnSelection) -> Result<RawTable> {
    if is_parquet(path) {
        data::parquet::read_raw(path, sel)
    } else {
        data::csv::read_raw(path, sel)
    }
}

/// The format of a table at `path`.
fn table_format(path: &Path) -> Format {
    if is_parquet(path) { Format::Parquet } else { Format::Csv }
}

/// Reads a data file (CSV, NPY, IDX or a folder of images); a folder is resized to
/// `image_shape` `(height, width, channels)` when given.
///
/// # Errors
/// As [`data::load_with`].
pub fn read(path: &Path, sel: &ColumnSelection, image_shape: Option<(usize, usize, usize)>) -> Result<Loaded> {
    let (ds, resized) = data::load_with(path, sel, image_shape)?;
    let mut notes = Vec::new();
    if resized > 0 {
        let (h, w, _) = ds.image_shape.unwrap_or_default();
        notes.push(format!(
            "resized {resized} of {} images in {} to {h}x{w} (height x width)",
            ds.x.rows(),
            path.display()
        ));
    }
    Ok(Loaded {
        data: ds,
        tabular: None,
        notes,
    })
}

/// Reads training data. A CSV becomes a [`Tabular`] encoding when `table` asks for one
/// (categorical columns, imputation) or when it has constant columns (dropped, with a note).
///
/// # Errors
/// As [`read`]; [`Error::Setting`] for table settings on a file that is not a CSV table, or
/// hashing without categorical columns; as [`Tabular::fit`] for the table's values.
pub fn training_data(
    path: &Path,
    sel: &ColumnSelection,
    table: &TabularOptions,
    image_shape: Option<(usize, usize, usize)>,
) -> Result<Loaded> {
    table.check()?;
    if let Some(t) = &table.text {
        sel.check_csv_only(path)?;
        return training_table(path, data::text::read(path, t)?, table);
    }
    let asked = table.asked();
    if !is_table(path) {
        if asked {
            return Err(table.not_a_table(path));
        }
        return read(path, sel, image_shape);
    }
    if !asked && is_parquet(path) {
        // Numbers straight from their columns, without text in between; a table with a
        // constant column takes the text path below, which drops it with a note.
        let loaded = read(path, sel, None)?;
        let x = &loaded.data.x;
        if x.rows() < 2 || (0..x.cols()).all(|j| (1..x.rows()).any(|i| x.row(i)[j] != x.row(0)[j])) {
            return Ok(loaded);
        }
    }
    training_table(path, read_raw(path, sel)?, table)
}

/// [`training_data`] for a table already read as text (a CSV file, or a data frame held in
/// memory: [`RawTable::from_columns`](data::csv::RawTable::from_columns)); `path` names it.
///
/// # Errors
/// As [`Tabular::fit`], and [`Error::Parse`] for text in a numeric column without table
/// settings.
pub fn training_table(path: &Path, raw: RawTable, table: &TabularOptions) -> Result<Loaded> {
    if !table.asked() {
        let t = data::csv::numeric(path, raw.clone())?;
        let x = &t.matrix;
        let constant = (0..x.cols()).any(|j| (1..x.rows()).all(|i| x.row(i)[j] == x.row(0)[j]));
        if !constant || x.rows() < 2 {
            return Ok(Loaded {
                data: Dataset {
                    x: t.matrix,
                    names: t.names,
                    labels: t.labels,
                    image_shape: None,
                    format: table_format(path),
                    files: None,
                },
                tabular: None,
                notes: Vec::new(),
            });
        }
    }
    let opts = TabularOptions {
        max_categories: table.max_categories.max(1),
        categorical: match table.text {
            Some(_) => CategoricalColumns::Names(vec![data::text::COLUMN.into()]),
            None => table.categorical.clone(),
        },
        ..table.clone()
    };
    let (mut tab, notes) = Tabular::fit(path, &raw, &opts)?;
    tab.text = table.text;
    let x = tab.transform(path, &raw)?;
    Ok(Loaded {
        data: Dataset {
            x,
            names: tab.feature_names(),
            labels: raw.labels,
            image_shape: None,
            format: table_format(path),
            files: None,
        },
        tabular: Some(tab),
        notes,
    })
}

/// [`for_model`] for a table held in memory by column (`names`, text `columns`): the model's
/// stored encoding, or its training columns by name when they are all there (else every
/// column, in order); `label_column` is kept out of the features and returned as labels.
///
/// # Errors
/// As [`RawTable::from_columns`](data::csv::RawTable::from_columns), [`Tabular::transform`]
/// and [`data::csv::numeric`]; [`Error::Data`] when the width differs from the model's.
pub fn table_for_model(
    file: &ModelFile,
    path: &Path,
    names: Vec<String>,
    columns: Vec<Vec<String>>,
    label_column: Option<String>,
) -> Result<Loaded> {
    let chosen = match &file.tabular {
        Some(tab) => Some(tab.input_names()),
        None => file
            .provenance
            .feature_names
            .as_ref()
            .and_then(|f| match &file.windows {
                Some(w) => w.channel_names(f),
                None => Some(f.clone()),
            })
            .filter(|f| f.len() == file.data_width() && f.iter().all(|n| names.contains(n))),
    };
    let sel = ColumnSelection {
        columns: chosen,
        drop: Vec::new(),
        label_column,
    };
    let raw = RawTable::from_columns(path, names, columns, &sel)?;
    let data = match &file.tabular {
        Some(tab) => Dataset {
            x: tab.transform(path, &raw)?,
            names: tab.feature_names(),
            labels: raw.labels,
            image_shape: None,
            format: Format::Csv,
            files: None,
        },
        None => {
            let t = data::csv::numeric(path, raw)?;
            Dataset {
                x: t.matrix,
                names: t.names,
                labels: t.labels,
                image_shape: None,
                format: Format::Csv,
                files: None,
            }
        }
    };
    if data.x.cols() != file.data_width() {
        return Err(Error::data(
            path,
            format!(
                "has {} feature columns, the model expects {}",
                data.x.cols(),
                file.data_width()
            ),
        ));
    }
    let data = match &file.windows {
        Some(w) => windowed(data, &w.every(), path)?,
        None => data,
    };
    Ok(Loaded {
        data,
        tabular: file.tabular.clone(),
        notes: Vec::new(),
    })
}

/// Encodes a table (CSV or Parquet) with a fitted [`Tabular`]: its input columns by name (plus
/// the label column).
///
/// # Errors
/// [`Error::Data`] for a file that is not a table; as [`Tabular::transform`].
pub fn encode_table(tab: &Tabular, path: &Path, sel: &ColumnSelection) -> Result<Dataset> {
    if let Some(t) = &tab.text {
        sel.check_csv_only(path)?;
        let raw = data::text::read(path, t)?;
        return Ok(Dataset {
            x: tab.transform(path, &raw)?,
            names: tab.feature_names(),
            labels: None,
            image_shape: None,
            format: Format::Csv,
            files: None,
        });
    }
    if !is_table(path) {
        return Err(Error::data(
            path,
            format!(
                "the model was trained on a table with encoded columns; give a CSV or Parquet table with the columns {}",
                tab.input_names().join(", ")
            ),
        ));
    }
    let sel = ColumnSelection {
        columns: Some(tab.input_names()),
        drop: Vec::new(),
        label_column: sel.label_column.clone(),
    };
    let raw = read_raw(path, &sel)?;
    let x = tab.transform(path, &raw)?;
    Ok(Dataset {
        x,
        names: tab.feature_names(),
        labels: raw.labels,
        image_shape: None,
        format: table_format(path),
        files: None,
    })
}

/// The windows of the series `ds` (steps × channels) as a dataset of windows: their values
/// channel-major, named `NAME@i`, each labelled with its last step's label, shaped as one-row
/// images of `length` steps; `path` names the series in errors.
///
/// # Errors
/// As [`Windows::apply`]; [`Error::Setting`] for bad window settings.
pub fn windowed(ds: Dataset, windows: &Windows, path: &Path) -> Result<Dataset> {
    windows.validate()?;
    let channels = ds.x.cols();
    Ok(Dataset {
        x: windows.apply(path, &ds.x)?,
        names: windows.names(&ds.names),
        labels: ds.labels.map(|l| windows.labels(&l)),
        image_shape: Some(windows.image_shape(channels)),
        format: ds.format,
        files: None,
    })
}

/// Reads data for a trained model the way its training data was read: a table through its
/// stored encoding; a CSV with a header by the training columns' names unless columns are
/// chosen in `sel`; a folder of images at the trained size; a series cut into every window
/// (stride 1) for a model of windows. The width must match the model.
///
/// # Errors
/// As [`read`] and [`encode_table`]; [`Error::Data`] when the width differs from the model's.
pub fn for_model(file: &ModelFile, path: &Path, sel: &ColumnSelection) -> Result<Loaded> {
    let mut loaded = steps_for_model(file, path, sel)?;
    if let Some(w) = &file.windows {
        let every = w.every();
        loaded.data = windowed(loaded.data, &every, path)?;
    }
    Ok(loaded)
}

/// [`for_model`] before a model of windows cuts the series into them: the rows of the file.
///
/// # Errors
/// As [`for_model`].
pub fn steps_for_model(file: &ModelFile, path: &Path, sel: &ColumnSelection) -> Result<Loaded> {
    if let Some(tab) = &file.tabular {
        return Ok(Loaded {
            data: encode_table(tab, path, sel)?,
            tabular: Some(tab.clone()),
            notes: Vec::new(),
        });
    }
    let mut sel = sel.clone();
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let trained = file
        .provenance
        .feature_names
        .as_ref()
        .and_then(|n| match &file.windows {
            Some(w) => w.channel_names(n),
            None => Some(n.clone()),
        });
    let width = file.data_width();
    if sel.columns.is_none()
        && sel.drop.is_empty()
        && let Some(names) = &trained
        && names.len() == width
        && ((is_csv && data::csv::header_has(path, names))
            || (is_parquet(path)
                && data::parquet::ParquetFile::open(path).is_ok_and(|f| names.iter().all(|n| f.names().contains(n)))))
    {
        sel.columns = Some(names.clone());
    }
    let image_shape = file.provenance.image_shape.filter(|_| file.windows.is_none());
    read_of_width(path, &sel, image_shape, width)
}

/// [`read`] for a model of `width` inputs: the width is checked from an NPY or IDX header
/// before any data is read (or inflated), and on the rows read.
fn read_of_width(
    path: &Path,
    sel: &ColumnSelection,
    image_shape: Option<(usize, usize, usize)>,
    width: usize,
) -> Result<Loaded> {
    let check = |cols: usize| {
        if cols == width {
            return Ok(());
        }
        Err(Error::data(
            path,
            format!("has {cols} feature columns, the model expects {width}"),
        ))
    };
    if let Some(cols) = data::peek_width(path)? {
        check(cols)?;
    }
    let loaded = read(path, sel, image_shape)?;
    check(loaded.data.x.cols())?;
    Ok(loaded)
}

/// Labels for `rows` rows: from a labels file when given, else from the data's label column.
///
/// # Errors
/// [`Error::Data`] when there are none, or not one per row.
pub fn labels(
    data_path: &Path,
    file: Option<&Path>,
    from_column: Option<Vec<String>>,
    rows: usize,
) -> Result<Vec<String>> {
    let (l, source) = match (file, from_column) {
        (Some(p), _) => (data::load_labels_for(p, rows)?, p),
        (None, Some(l)) => (l, data_path),
        (None, None) => {
            return Err(Error::data(
                data_path,
                "no labels; give a labels file or a label column",
            ));
        }
    };
    if l.len() != rows {
        return Err(Error::data(
            source,
            format!("{} labels for {rows} rows of {}", l.len(), data_path.display()),
        ));
    }
    Ok(l)
}

/// Rows of `width` features and their labels (from `labels`, or the label column of `sel`).
///
/// # Errors
/// As [`read`] and [`labels`]; [`Error::Data`] for another width.
pub fn labelled(
    path: &Path,
    labels_file: Option<&Path>,
    sel: &ColumnSelection,
    width: usize,
) -> Result<(Matrix, Vec<String>)> {
    let ds = read_of_width(path, sel, None, width)?.data;
    let l = labels(path, labels_file, ds.labels, ds.x.rows())?;
    Ok((ds.x, l))
}
