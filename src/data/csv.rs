//! CSV tables: header detection, column selection, a label column, precise error positions.

use crate::error::{Error, Hint, Result};
use crate::fsutil::{Outputs, io_at};
use crate::tensor::Matrix;
use std::path::Path;

/// Which columns of a table become features.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ColumnSelection {
    /// Keep only these columns (names, or 0-based indices when the file has no header).
    pub columns: Option<Vec<String>>,
    /// Drop these columns.
    pub drop: Vec<String>,
    /// Keep this column out of the features and return it as labels.
    pub label_column: Option<String>,
}

impl ColumnSelection {
    /// The feature columns and the label column these choices pick from a table's `names`
    /// (0-based indices are names too in a table without a header), as indices; the label and
    /// the dropped columns are left out of the features.
    ///
    /// # Errors
    /// [`Error::NoColumn`] for a column that is not there; [`Error::Data`] when no feature
    /// column is left.
    pub(crate) fn choose(
        &self,
        path: &Path,
        names: &[String],
        has_header: bool,
    ) -> Result<(Vec<usize>, Option<usize>)> {
        let label = self
            .label_column
            .as_deref()
            .map(|k| resolve(path, names, has_header, k, "label_column"))
            .transpose()?;
        let mut keep: Vec<usize> = match &self.columns {
            Some(cols) => cols
                .iter()
                .map(|k| resolve(path, names, has_header, k, "columns"))
                .collect::<Result<_>>()?,
            None => (0..names.len()).collect(),
        };
        let dropped: Vec<usize> = self
            .drop
            .iter()
            .map(|k| resolve(path, names, has_header, k, "drop"))
            .collect::<Result<_>>()?;
        keep.retain(|i| !dropped.contains(i) && Some(*i) != label);
        if keep.is_empty() {
            return Err(Error::data(
                path,
                "no feature columns are left after the column choices (columns, drop, label column)",
            ));
        }
        Ok((keep, label))
    }

    /// An error for a file that is not a table when columns are chosen (they apply to CSV
    /// and Parquet files only).
    ///
    /// # Errors
    /// [`Error::Setting`] naming the first column setting given.
    pub fn check_csv_only(&self, path: &Path) -> Result<()> {
        let given = match (&self.columns, self.drop.first(), &self.label_column) {
            (Some(c), _, _) => ("columns", c.join(",")),
            (None, Some(d), _) => ("drop", d.clone()),
            (None, None, Some(l)) => ("label_column", l.clone()),
            (None, None, None) => return Ok(()),
        };
        Err(Error::setting(
            given.0,
            given.1,
            format!(
                "{}: column choices apply to CSV and Parquet tables only",
                path.display()
            ),
        ))
    }
}

/// A table read from CSV.
#[derive(Clone, Debug)]
pub struct Table {
    /// Feature values.
    pub matrix: Matrix,
    /// Names of the feature columns (from the header, or `c0`, `c1`, … without one).
    pub names: Vec<String>,
    /// Whether the file had a header line.
    pub has_header: bool,
    /// Values of the label column, as written.
    pub labels: Option<Vec<String>>,
}

/// The index of column `key` (a name, or a 0-based index in a file without a header), chosen
/// by the column setting `setting`.
pub(crate) fn resolve(
    path: &Path,
    names: &[String],
    has_header: bool,
    key: &str,
    setting: &'static str,
) -> Result<usize> {
    if let Some(i) = names.iter().position(|n| n == key) {
        return Ok(i);
    }
    if !has_header
        && let Ok(i) = key.parse::<usize>()
        && i < names.len()
    {
        return Ok(i);
    }
    Err(Error::NoColumn {
        path: path.into(),
        name: key.into(),
        setting,
        columns: if names.len() > 12 {
            format!("{} … ({} in all)", names[..12].join(", "), names.len())
        } else {
            names.join(", ")
        },
    })
}

/// Whether a CSV field means "missing": empty, `NA`, `N/A`, `NaN`, `null`, `None` or `?`.
pub fn is_missing(field: &str) -> bool {
    MISSING.contains(&field)
}

/// The spellings of a missing field (see [`is_missing`]).
pub const MISSING: [&str; 12] = [
    "", "NA", "na", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "none", "?",
];

/// Whether the first line of the CSV file at `path` is a header naming all of `names` (it
/// holds a field that is not a number). Unreadable files say no.
pub fn header_has(path: &Path, names: &[String]) -> bool {
    let Ok(file) = open_limited(path) else {
        return false;
    };
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(file);
    let Some(Ok(first)) = r.records().next() else {
        return false;
    };
    names.iter().all(|n| first.iter().any(|f| f == n)) && first.iter().any(|f| f.parse::<f64>().is_err())
}

/// The named columns of a CSV file as text, `(name, values)` each (e.g. ids passed through
/// beside codes).
///
/// # Errors
/// As [`read_raw`]; [`Error::NoColumn`] names the setting `keep_columns`.
pub fn read_columns(path: &Path, columns: &[String]) -> Result<Vec<(String, Vec<String>)>> {
    let sel = ColumnSelection {
        columns: Some(columns.to_vec()),
        ..Default::default()
    };
    let raw = read_raw(path, &sel).map_err(|e| match e {
        Error::NoColumn {
            path, name, columns, ..
        } => Error::NoColumn {
            path,
            name,
            setting: "keep_columns",
            columns,
        },
        e => e,
    })?;
    Ok(raw
        .names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            (
                name.clone(),
                (0..raw.rows()).map(|i| raw.get(i, j).to_string()).collect(),
            )
        })
        .collect())
}

/// A table read from CSV as text: the selected columns' fields, for categorical columns and
/// missing values (see [`tabular`](super::tabular)).
#[derive(Clone, Debug)]
pub struct RawTable {
    /// Names of the selected columns.
    pub names: Vec<String>,
    /// 1-based column number of each selected column in the file.
    pub file_columns: Vec<usize>,
    /// Fields, row-major: `rows * names.len()`.
    pub fields: Vec<String>,
    /// 1-based line of each row.
    pub lines: Vec<u64>,
    /// Whether the file had a header line.
    pub has_header: bool,
    /// Values of the label column, as written.
    pub labels: Option<Vec<String>>,
}

impl RawTable {
    /// A table held in memory (e.g. a data frame): columns of text fields, by name, with the
    /// column choices of `sel` applied as to a CSV file. Rows are numbered as the lines of
    /// that table written as CSV with a header (the first row is line 2); `path` names the
    /// table in errors.
    ///
    /// # Errors
    /// [`Error::NoColumn`] for a chosen column that is not in the table, [`Error::Shape`] for
    /// columns of different lengths, [`Error::Data`] for no rows or no feature columns.
    pub fn from_columns(
        path: &Path,
        names: Vec<String>,
        columns: Vec<Vec<String>>,
        sel: &ColumnSelection,
    ) -> Result<RawTable> {
        let rows = columns.first().map_or(0, Vec::len);
        if let Some((j, c)) = columns.iter().enumerate().find(|(_, c)| c.len() != rows) {
            return Err(Error::Shape {
                what: format!("column `{}`", names[j]),
                expected: format!("{rows} values (as the first column)"),
                got: format!("{} values", c.len()),
            });
        }
        if names.len() != columns.len() {
            return Err(Error::Shape {
                what: "table".into(),
                expected: format!("{} columns (one per name)", names.len()),
                got: format!("{} columns", columns.len()),
            });
        }
        let (keep, label) = sel.choose(path, &names, true)?;
        if rows == 0 {
            return Err(Error::data(path, "no rows"));
        }
        let columns = &columns;
        let fields: Vec<String> = (0..rows)
            .flat_map(|i| keep.iter().map(move |&j| columns[j][i].clone()))
            .collect();
        Ok(RawTable {
            names: keep.iter().map(|&j| names[j].clone()).collect(),
            file_columns: keep.iter().map(|&j| j + 1).collect(),
            fields,
            lines: (0..rows as u64).map(|i| i + 2).collect(),
            has_header: true,
            labels: label.map(|l| columns[l].clone()),
        })
    }

    /// Number of data rows.
    pub fn rows(&self) -> usize {
        self.lines.len()
    }

    /// Field of row `i`, selected column `j`.
    pub fn get(&self, i: usize, j: usize) -> &str {
        &self.fields[i * self.names.len() + j]
    }
}

/// Reads a CSV file. The first line is a header when any of its fields is not a number.
///
/// # Errors
/// [`Error::Parse`] with line and column for a ragged row, a non-numeric or non-finite value;
/// [`Error::Data`] for an empty file or an unknown column name.
pub fn read(path: &Path, sel: &ColumnSelection) -> Result<Table> {
    numeric(path, read_raw(path, sel)?)
}

/// The numbers of a table read as text; `path` names it in errors.
///
/// # Errors
/// [`Error::Parse`] with line and column for a non-numeric or non-finite value (with a hint).
pub fn numeric(path: &Path, raw: RawTable) -> Result<Table> {
    let mut values = Vec::with_capacity(raw.fields.len());
    let cols = raw.names.len();
    for (k, field) in raw.fields.iter().enumerate() {
        let (i, j) = (k / cols, k % cols);
        let at = |message: String| Error::Parse {
            path: path.into(),
            line: raw.lines[i],
            column: raw.file_columns[j],
            message,
        };
        let v: f32 = field.parse().map_err(|_| {
            at(format!(
                "column `{}`: expected a number, found {}",
                raw.names[j],
                if field.is_empty() {
                    "an empty field".to_string()
                } else {
                    quote(field)
                },
            ))
            .with_hint(if is_missing(field) {
                Hint::Impute
            } else {
                Hint::Categorical
            })
        })?;
        if !v.is_finite() {
            return Err(at(format!(
                "column `{}`: non-finite value {}",
                raw.names[j],
                quote(field)
            )));
        }
        values.push(v);
    }
    Ok(Table {
        matrix: Matrix::from_vec(raw.rows(), cols, values)?,
        names: raw.names,
        has_header: raw.has_header,
        labels: raw.labels,
    })
}

/// A field as error messages show it: quoted, control characters escaped (a field may hold a
/// quoted newline), and cut to 40 characters with its full length said.
pub fn quote(field: &str) -> String {
    const SHOWN: usize = 40;
    let n = field.chars().count();
    let shown: String = field.chars().take(SHOWN).flat_map(char::escape_debug).collect();
    if n > SHOWN {
        format!("`{shown}…` ({} bytes)", field.len())
    } else {
        format!("`{shown}`")
    }
}

/// The longest line a CSV file may have: the smaller of 1 GiB and an eighth of the memory
/// limit. A file without line ends (a device, a binary file) is refused at that point instead
/// of growing one line until memory runs out.
fn max_line() -> u64 {
    (crate::bounds::memory_limit() / 8).min(1 << 30)
}

/// A reader that fails once a line grows past `limit` bytes.
pub(crate) struct LineLimit<R> {
    inner: R,
    run: u64,
    limit: u64,
    line: u64,
}

impl<R: std::io::Read> std::io::Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.run = 0;
                self.line += 1;
            } else {
                self.run += 1;
            }
        }
        if self.run > self.limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "line {} is longer than {} without a line end (not a CSV file?)",
                    self.line + 1,
                    crate::bounds::human(self.limit)
                ),
            ));
        }
        Ok(n)
    }
}

/// Opens a CSV file for reading with the line limit, refusing a file too large for memory.
pub(crate) fn open_limited(path: &Path) -> Result<LineLimit<std::fs::File>> {
    open_lines(path, true)
}

/// Opens a CSV file for reading with the line limit; `whole`: it is to be held in memory, so
/// a file too large for memory is refused.
fn open_lines(path: &Path, whole: bool) -> Result<LineLimit<std::fs::File>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    if let Ok(meta) = file.metadata()
        && meta.is_file()
        && whole
    {
        // The fields are held as text, and the numbers beside them.
        crate::bounds::check_alloc(usize::try_from(meta.len()).unwrap_or(usize::MAX), 2, path.display())?;
    }
    Ok(LineLimit {
        inner: file,
        run: 0,
        limit: max_line(),
        line: 0,
    })
}

/// Reads a CSV file as text fields (same header rule, selection and errors for ragged rows as
/// [`read`]).
///
/// # Errors
/// [`Error::Parse`] for a ragged row; [`Error::Data`] for an empty file or an unknown column.
pub fn read_raw(path: &Path, sel: &ColumnSelection) -> Result<RawTable> {
    let mut chunks = CsvChunks::open(path, sel, true)?;
    let raw = chunks.next_raw(usize::MAX)?;
    if raw.rows() == 0 {
        return Err(Error::data(path, "no data rows (only a header)"));
    }
    Ok(raw)
}

/// A CSV file read a bounded number of rows at a time ([`CsvChunks::next_raw`]), with the
/// header rule, column choices and errors of [`read_raw`].
pub struct CsvChunks {
    path: std::path::PathBuf,
    records: csv::StringRecordsIntoIter<LineLimit<std::fs::File>>,
    /// The first record when it is a row, not a header.
    pending: Option<csv::StringRecord>,
    width: usize,
    keep: Vec<usize>,
    label: Option<usize>,
    names: Vec<String>,
    all_names: Vec<String>,
    has_header: bool,
    done: usize,
}

impl std::fmt::Debug for CsvChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvChunks")
            .field("path", &self.path)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl CsvChunks {
    /// Opens `path`, reads its first line (a header when a field is not a number) and resolves
    /// the column choices; `whole`: the file is to be read into memory at once, so one larger
    /// than memory is refused before reading.
    ///
    /// # Errors
    /// As [`read_raw`].
    pub fn open(path: &Path, sel: &ColumnSelection, whole: bool) -> Result<CsvChunks> {
        let mut records = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(open_lines(path, whole)?)
            .into_records();
        let first = match records.next() {
            None => return Err(Error::data(path, "empty file: no header and no rows")),
            Some(r) => r.map_err(|e| csv_err(path, e))?,
        };
        let has_header = first.iter().any(|f| f.parse::<f64>().is_err());
        let width = first.len();
        let all_names: Vec<String> = if has_header {
            first.iter().map(str::to_string).collect()
        } else {
            (0..width).map(|i| format!("c{i}")).collect()
        };
        let (keep, label) = sel.choose(path, &all_names, has_header)?;
        Ok(CsvChunks {
            path: path.into(),
            records,
            pending: (!has_header).then_some(first),
            width,
            names: keep.iter().map(|&i| all_names[i].clone()).collect(),
            all_names,
            keep,
            label,
            has_header,
            done: 0,
        })
    }

    /// The names of the chosen feature columns.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Rows handed out so far.
    pub fn rows_done(&self) -> usize {
        self.done
    }

    /// Every column's name from the header; `None` without one.
    pub fn header_names(&self) -> Option<Vec<String>> {
        self.has_header.then(|| self.all_names.clone())
    }

    /// The next `rows` rows (fewer at the end; none once the file is read).
    ///
    /// # Errors
    /// [`Error::Parse`] for a ragged row or a line that is not CSV.
    pub fn next_raw(&mut self, rows: usize) -> Result<RawTable> {
        let path = self.path.clone();
        let mut raw = RawTable {
            names: self.names.clone(),
            file_columns: self.keep.iter().map(|&j| j + 1).collect(),
            fields: Vec::new(),
            lines: Vec::new(),
            has_header: self.has_header,
            labels: self.label.map(|_| Vec::new()),
        };
        while raw.lines.len() < rows {
            let rec = match self.pending.take() {
                Some(r) => r,
                None => match self.records.next() {
                    None => break,
                    Some(r) => r.map_err(|e| csv_err(&path, e))?,
                },
            };
            let line = rec.position().map_or(0, |p| p.line());
            if rec.len() == 1 && rec.get(0) == Some("") {
                continue; // blank line
            }
            if rec.len() != self.width {
                return Err(Error::Parse {
                    path: path.clone(),
                    line,
                    column: rec.len().min(self.width) + 1,
                    message: format!("expected {} fields, found {}", self.width, rec.len()),
                });
            }
            for &j in &self.keep {
                raw.fields.push(rec[j].to_string());
            }
            raw.lines.push(line);
            if let (Some(l), Some(labels)) = (self.label, raw.labels.as_mut()) {
                labels.push(rec[l].to_string());
            }
        }
        self.done += raw.lines.len();
        Ok(raw)
    }
}

fn csv_err(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        csv::ErrorKind::Utf8 { err, .. } => Error::Parse {
            path: path.into(),
            line,
            column: err.field() + 1,
            message: "not valid UTF-8".into(),
        },
        other => Error::Parse {
            path: path.into(),
            line,
            column: 1,
            message: format!("{other:?}"),
        },
    }
}

/// Writes `m` as CSV with a header line (`names`, or `c0`, `c1`, … when empty), atomically. Extra leading columns (`leading`: a header
/// name and one value per row) come first, e.g. ids or labels passed through.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write(path: &Path, m: &Matrix, names: &[String], leading: &[(String, Vec<String>)]) -> Result<()> {
    let mut out = Outputs::new();
    write_in(&mut out, path, m, names, leading)?;
    out.commit()
}

/// [`write()`], staged in `outputs` (renamed into place with the others at its commit).
///
/// # Errors
/// As [`write()`].
pub fn write_in(
    outputs: &mut Outputs,
    path: &Path,
    m: &Matrix,
    names: &[String],
    leading: &[(String, Vec<String>)],
) -> Result<()> {
    outputs.file(path, |w| {
        let mut out = csv::Writer::from_writer(w);
        let io = |e: csv::Error| match e.into_kind() {
            csv::ErrorKind::Io(io) => Error::io(path, io),
            other => Error::data(path, format!("{other:?}")),
        };
        let names = super::names_or_numbered(names, m.cols());
        let header: Vec<&str> = leading
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(names.iter().map(String::as_str))
            .collect();
        out.write_record(&header).map_err(io)?;
        let mut rec = Vec::with_capacity(header.len());
        for i in 0..m.rows() {
            rec.clear();
            for (_, vals) in leading {
                rec.push(vals[i].clone());
            }
            for v in m.row(i) {
                rec.push(v.to_string());
            }
            out.write_record(&rec).map_err(io)?;
        }
        out.flush().map_err(io_at(path))
    })
}
