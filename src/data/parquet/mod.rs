//! Parquet tables: the flat columns of a Parquet file (numbers, booleans, text; nullable or
//! not; plain or dictionary-encoded; Snappy, gzip, Zstandard or uncompressed), read column by
//! column so that only the chosen columns are ever decoded (projection), a bounded number of
//! rows at a time ([`Chunks`]), into what a CSV becomes: a numeric
//! [`Table`] or text fields ([`RawTable`]) for the table encoding.
//!
//! Values: floating-point and integer columns (of any width, signed or not) are numbers, a
//! decimal column its value (unscaled / 10^scale), a boolean 1 or 0, a null a missing value
//! (the empty field of a CSV). Dates, times, timestamps, nested and binary columns are refused
//! with the column's name. Rows are numbered from 1 in errors, as the lines of the same table
//! written as CSV with a header would be from 2.

use super::csv::{ColumnSelection, RawTable, Table};
use crate::error::{Error, Hint, Result};
use crate::tensor::Matrix;
use parquet::basic::{ConvertedType, LogicalType, Type as Physical};
use parquet::column::page::Page;
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::{ByteArray, DataType};
use parquet::file::reader::{FileReader, RowGroupReader, SerializedFileReader};
use std::fs::File;
use std::path::{Path, PathBuf};

mod source;
mod write;

use source::Source;
pub use write::{ChunkWriter, write_in};

thread_local! {
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside the Parquet reader, where the `parquet` crate's panics on a
/// damaged file are caught and become errors: a panic hook stays quiet then (the command line
/// and the fuzz targets install one that asks).
pub fn catching_panics() -> bool {
    CATCHING.with(std::cell::Cell::get)
}

/// Runs `f` (calls into the `parquet` crate, which asserts on some damaged files instead of
/// returning an error) with its panics turned into [`Error::Data`] naming `path`.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let was = CATCHING.with(|c| c.replace(true));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(was));
    out.unwrap_or_else(|p| {
        let why = p
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unreadable".into());
        Err(Error::data(path, format!("a damaged Parquet file: {why}")))
    })
}

/// Whether the file at `path` starts with Parquet's magic bytes.
pub fn sniff(head: &[u8]) -> bool {
    head.starts_with(b"PAR1")
}

/// How a column's stored values become ours.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Bool,
    Int32 {
        unsigned: bool,
        scale: i32,
    },
    Int64 {
        unsigned: bool,
        scale: i32,
    },
    Float,
    Double,
    /// A decimal stored as big-endian two's complement bytes.
    FixedDecimal {
        scale: i32,
    },
    Text,
}

/// One column's values in a chunk.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Numbers; a null is NaN.
    Numbers(Vec<f64>),
    /// Text; a null is `None`.
    Text(Vec<Option<String>>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Numbers(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }

    /// Value `i` as a CSV field: a number as Rust prints it, a null as the empty field.
    fn field(&self, i: usize) -> String {
        match self {
            Values::Numbers(v) if v[i].is_nan() => String::new(),
            Values::Numbers(v) => format!("{}", v[i]),
            Values::Text(v) => v[i].clone().unwrap_or_default(),
        }
    }
}

/// An open Parquet file: its flat columns and their kinds.
pub struct ParquetFile {
    path: PathBuf,
    reader: SerializedFileReader<Source>,
    /// The top-level fields' names: a person's columns (a nested field is one column).
    names: Vec<String>,
    /// Each column's kind, or why it cannot be read.
    kinds: Vec<std::result::Result<Kind, String>>,
    /// Each column's first leaf in the file's schema (its only one when it is flat).
    leaves: Vec<usize>,
    /// Each column's maximum definition level (0: required, no nulls).
    max_defs: Vec<i16>,
}

impl std::fmt::Debug for ParquetFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetFile")
            .field("path", &self.path)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

fn pq_err(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> Error + '_ {
    move |e| Error::data(path, format!("not a readable Parquet file: {e}"))
}

impl ParquetFile {
    /// Opens `path` and reads its footer (the schema and row groups; no values).
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be opened; [`Error::Data`] for a malformed footer, nested
    /// columns, or no columns.
    pub fn open(path: &Path) -> Result<ParquetFile> {
        guarded(path, || Self::open_unguarded(path))
    }

    fn open_unguarded(path: &Path) -> Result<ParquetFile> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let reader = SerializedFileReader::new(Source { file, len }).map_err(pq_err(path))?;
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let (mut names, mut kinds, mut leaves, mut max_defs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (leaf, c) in schema.columns().iter().enumerate() {
            // A nested field's leaves (`lst.list.element`, …) make one column, `lst`,
            // refused as a whole.
            let nested = c.path().parts().len() != 1 || c.max_rep_level() > 0;
            let name = &c.path().parts()[0];
            if nested && leaf > 0 && schema.column(leaf - 1).path().parts()[0] == *name {
                continue;
            }
            names.push(name.clone());
            kinds.push(if nested {
                Err("a nested column (list, map or struct)".to_string())
            } else {
                kind_of(c)
            });
            leaves.push(leaf);
            max_defs.push(c.max_def_level());
        }
        if names.is_empty() {
            return Err(Error::data(path, "a Parquet file without columns"));
        }
        Ok(ParquetFile {
            path: path.into(),
            reader,
            names,
            kinds,
            leaves,
            max_defs,
        })
    }

    /// The columns' names, in the file's order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Rows in the file (from the footer).
    pub fn rows(&self) -> usize {
        usize::try_from(self.reader.metadata().file_metadata().num_rows()).unwrap_or(0)
    }

    /// The feature columns and the label column that `sel` chooses, as column indices.
    ///
    /// # Errors
    /// [`Error::NoColumn`] for a name that is not a column; [`Error::Data`] when none is left,
    /// or a chosen column cannot be read (with its type).
    pub fn select(&self, sel: &ColumnSelection) -> Result<(Vec<usize>, Option<usize>)> {
        let path = &self.path;
        let (keep, label) = sel.choose(path, &self.names, true)?;
        for &j in keep.iter().chain(&label) {
            if let Err(why) = &self.kinds[j] {
                return Err(Error::data(
                    path,
                    format!(
                        "column `{}` is {why}: hourglass reads numbers, booleans and text",
                        self.names[j]
                    ),
                ));
            }
        }
        Ok((keep, label))
    }

    /// The chosen `columns` (indices), `rows` rows at a time, in the file's order.
    pub fn into_chunks(self, columns: &[usize], rows: usize) -> Chunks {
        let groups = (0..self.reader.num_row_groups()).collect();
        self.into_group_chunks(columns, rows, groups)
    }

    /// The rows of each row group (the file's order).
    pub fn group_rows(&self) -> Vec<usize> {
        self.reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| usize::try_from(g.num_rows()).unwrap_or(0))
            .collect()
    }

    /// [`ParquetFile::into_chunks`] over the row groups `groups`, in that order (a chunk never
    /// spans two groups that are not neighbours in the file).
    pub fn into_group_chunks(self, columns: &[usize], rows: usize, groups: Vec<usize>) -> Chunks {
        Chunks {
            file: self,
            columns: columns.to_vec(),
            rows: rows.max(1),
            groups,
            group: 0,
            readers: Vec::new(),
            done: 0,
        }
    }
}

/// What a column's annotations make of its physical type.
fn kind_of(c: &parquet::schema::types::ColumnDescriptor) -> std::result::Result<Kind, String> {
    let logical = c.logical_type_ref();
    if let Some(t @ (LogicalType::Date | LogicalType::Time(_) | LogicalType::Timestamp(_))) = logical {
        return Err(format!(
            "a {} column; convert it to a number first",
            format!("{t:?}").to_lowercase()
        ));
    }
    let scale = match logical {
        Some(LogicalType::Decimal(d)) => d.scale,
        _ if c.converted_type() == ConvertedType::DECIMAL => c.type_scale(),
        _ => 0,
    };
    let unsigned = matches!(logical, Some(LogicalType::Integer(i)) if !i.is_signed)
        || matches!(
            c.converted_type(),
            ConvertedType::UINT_8 | ConvertedType::UINT_16 | ConvertedType::UINT_32 | ConvertedType::UINT_64
        );
    let timelike = matches!(
        c.converted_type(),
        ConvertedType::DATE
            | ConvertedType::TIME_MILLIS
            | ConvertedType::TIME_MICROS
            | ConvertedType::TIMESTAMP_MILLIS
            | ConvertedType::TIMESTAMP_MICROS
    );
    if timelike {
        return Err("a date or time column; convert it to a number first".into());
    }
    match c.physical_type() {
        Physical::BOOLEAN => Ok(Kind::Bool),
        Physical::INT32 => Ok(Kind::Int32 { unsigned, scale }),
        Physical::INT64 => Ok(Kind::Int64 { unsigned, scale }),
        Physical::FLOAT => Ok(Kind::Float),
        Physical::DOUBLE => Ok(Kind::Double),
        Physical::BYTE_ARRAY
            if matches!(
                logical,
                Some(LogicalType::String | LogicalType::Enum | LogicalType::Json)
            ) || matches!(
                c.converted_type(),
                ConvertedType::UTF8 | ConvertedType::ENUM | ConvertedType::JSON
            ) || logical.is_none() && c.converted_type() == ConvertedType::NONE =>
        {
            Ok(Kind::Text)
        }
        Physical::FIXED_LEN_BYTE_ARRAY
            if matches!(logical, Some(LogicalType::Decimal(_))) || c.converted_type() == ConvertedType::DECIMAL =>
        {
            if c.type_length() > 16 {
                return Err(format!("a decimal of {} bytes", c.type_length()));
            }
            Ok(Kind::FixedDecimal { scale })
        }
        Physical::INT96 => Err("an INT96 timestamp column; convert it to a number first".into()),
        other => Err(format!("a column of {other} values ({logical:?})")),
    }
}

/// Reads a file's chosen columns a bounded number of rows at a time (see
/// [`ParquetFile::into_chunks`]); each item holds one [`Values`] per chosen column.
pub struct Chunks {
    file: ParquetFile,
    columns: Vec<usize>,
    rows: usize,
    /// The row groups to read, in order.
    groups: Vec<usize>,
    /// The next of `groups` to open.
    group: usize,
    /// The open row group's column readers and the rows left in it.
    readers: Vec<ColumnReader>,
    /// Rows handed out so far.
    done: usize,
}

impl std::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunks")
            .field("columns", &self.columns)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Chunks {
    /// The file being read.
    pub fn file(&self) -> &ParquetFile {
        &self.file
    }

    /// Rows handed out so far: the next chunk's first row is this + 1 (1-based).
    pub fn rows_done(&self) -> usize {
        self.done
    }

    fn next_chunk(&mut self) -> Result<Option<Vec<Values>>> {
        let path = &self.file.path;
        let mut out: Vec<Values> = self
            .columns
            .iter()
            .map(|&j| match self.file.kinds[j] {
                Ok(Kind::Text) => Values::Text(Vec::new()),
                _ => Values::Numbers(Vec::new()),
            })
            .collect();
        let mut have = 0;
        while have < self.rows {
            if self.readers.is_empty() {
                let Some(&next) = self.groups.get(self.group) else {
                    break;
                };
                if next >= self.file.reader.num_row_groups() {
                    return Err(Error::data(path, format!("no row group {next}")));
                }
                let g = self.file.reader.get_row_group(next).map_err(pq_err(path))?;
                for &j in &self.columns {
                    check_dictionary(path, &*g, self.file.leaves[j], &self.file.names[j])?;
                }
                self.readers = self
                    .columns
                    .iter()
                    .map(|&j| g.get_column_reader(self.file.leaves[j]))
                    .collect::<parquet::errors::Result<_>>()
                    .map_err(pq_err(path))?;
                self.group += 1;
            }
            let want = self.rows - have;
            let mut got = None;
            for (k, reader) in self.readers.iter_mut().enumerate() {
                let j = self.columns[k];
                let kind = self.file.kinds[j].clone().expect("selected columns are readable");
                let n = read_column(reader, kind, self.file.max_defs[j], want, &mut out[k]).map_err(|e| {
                    Error::data(
                        path,
                        format!("column `{}`: cannot read its values: {e}", self.file.names[j]),
                    )
                })?;
                match got {
                    None => got = Some(n),
                    Some(m) if m != n => {
                        return Err(Error::data(
                            path,
                            format!("column `{}` has {n} rows where the others have {m}", self.file.names[j]),
                        ));
                    }
                    Some(_) => {}
                }
            }
            let got = got.unwrap_or(0);
            if got < want {
                self.readers.clear(); // this row group is done
            }
            have += got;
        }
        self.done += have;
        Ok((have > 0).then_some(out))
    }
}

impl Iterator for Chunks {
    type Item = Result<Vec<Values>>;

    fn next(&mut self) -> Option<Self::Item> {
        let path = self.file.path.clone();
        let out = guarded(&path, || self.next_chunk());
        if out.is_err() {
            // Nothing more is read after a damaged page.
            self.readers.clear();
            self.group = usize::MAX;
        }
        out.transpose()
    }
}

/// Checks the dictionary page of column `leaf` of row group `g` (named `name`) before the
/// `parquet` crate decodes it: the crate sizes a dictionary by its header's count of values
/// before reading them, so a damaged header declaring two billion doubles asked for 16 GB.
/// A count that cannot fit in the page's bytes (each value takes at least its width; a text
/// value its 4-byte length, a boolean one bit) is refused, and the dictionary must fit in the
/// memory limit ([`crate::bounds`]).
fn check_dictionary(path: &Path, g: &dyn RowGroupReader, leaf: usize, name: &str) -> Result<()> {
    let mut pages = g.get_column_page_reader(leaf).map_err(pq_err(path))?;
    let Some(Page::DictionaryPage { buf, num_values, .. }) = pages.get_next_page().map_err(pq_err(path))? else {
        return Ok(());
    };
    let c = g.metadata().column(leaf).column_descr();
    let bits: u64 = match c.physical_type() {
        Physical::BOOLEAN => 1,
        Physical::INT32 | Physical::FLOAT | Physical::BYTE_ARRAY => 32,
        Physical::INT64 | Physical::DOUBLE => 64,
        Physical::INT96 => 96,
        Physical::FIXED_LEN_BYTE_ARRAY => 8 * u64::try_from(c.type_length()).unwrap_or(0).max(1),
    };
    if u64::from(num_values) * bits > buf.len() as u64 * 8 {
        return Err(Error::data(
            path,
            format!(
                "column `{name}`: a damaged dictionary page: {num_values} values declared in {} bytes",
                buf.len()
            ),
        ));
    }
    let each = std::mem::size_of::<ByteArray>().max(8);
    crate::bounds::check_alloc(
        num_values as usize,
        each,
        format!("{}: column `{name}`'s dictionary", path.display()),
    )
}

/// Reads up to `want` rows of one flat column into `out`; returns the rows read.
fn read_column(
    reader: &mut ColumnReader,
    kind: Kind,
    max_def: i16,
    want: usize,
    out: &mut Values,
) -> parquet::errors::Result<usize> {
    let scaled = |v: f64, scale: i32| if scale == 0 { v } else { v / 10f64.powi(scale) };
    match (reader, out) {
        (ColumnReader::BoolColumnReader(r), Values::Numbers(o)) => {
            fill(r, max_def, want, o, |b: &bool| f64::from(u8::from(*b)))
        }
        (ColumnReader::Int32ColumnReader(r), Values::Numbers(o)) => {
            let Kind::Int32 { unsigned, scale } = kind else {
                unreachable!()
            };
            fill(r, max_def, want, o, |&v: &i32| {
                scaled(if unsigned { f64::from(v as u32) } else { f64::from(v) }, scale)
            })
        }
        (ColumnReader::Int64ColumnReader(r), Values::Numbers(o)) => {
            let Kind::Int64 { unsigned, scale } = kind else {
                unreachable!()
            };
            fill(r, max_def, want, o, |&v: &i64| {
                scaled(if unsigned { v as u64 as f64 } else { v as f64 }, scale)
            })
        }
        (ColumnReader::FloatColumnReader(r), Values::Numbers(o)) => fill(r, max_def, want, o, |&v: &f32| f64::from(v)),
        (ColumnReader::DoubleColumnReader(r), Values::Numbers(o)) => fill(r, max_def, want, o, |&v: &f64| v),
        (ColumnReader::FixedLenByteArrayColumnReader(r), Values::Numbers(o)) => {
            let Kind::FixedDecimal { scale } = kind else {
                unreachable!()
            };
            fill(r, max_def, want, o, |v| {
                let b = v.data();
                // Sign-extend the big-endian two's complement bytes to 16.
                let mut wide = [if b.first().is_some_and(|&x| x & 0x80 != 0) {
                    0xff
                } else {
                    0
                }; 16];
                wide[16 - b.len()..].copy_from_slice(b);
                scaled(i128::from_be_bytes(wide) as f64, scale)
            })
        }
        (ColumnReader::ByteArrayColumnReader(r), Values::Text(o)) => {
            let mut text = Vec::new();
            let n = fill_with(r, max_def, want, &mut text, None, |v: &ByteArray| {
                Some(String::from_utf8_lossy(v.data()).into_owned())
            })?;
            o.extend(text);
            Ok(n)
        }
        _ => Err(parquet::errors::ParquetError::General("unexpected column type".into())),
    }
}

fn fill<T: DataType>(
    r: &mut ColumnReaderImpl<T>,
    max_def: i16,
    want: usize,
    out: &mut Vec<f64>,
    f: impl Fn(&T::T) -> f64,
) -> parquet::errors::Result<usize> {
    fill_with(r, max_def, want, out, f64::NAN, f)
}

/// Reads up to `want` records, spreading the non-null values over the rows by their
/// definition levels (`null` where a row has none).
fn fill_with<T: DataType, V: Clone>(
    r: &mut ColumnReaderImpl<T>,
    max_def: i16,
    want: usize,
    out: &mut Vec<V>,
    null: V,
    f: impl Fn(&T::T) -> V,
) -> parquet::errors::Result<usize> {
    let mut total = 0;
    while total < want {
        let mut defs = Vec::new();
        let mut values = Vec::new();
        let (records, _, levels) =
            r.read_records(want - total, (max_def > 0).then_some(&mut defs), None, &mut values)?;
        if records == 0 {
            break;
        }
        if max_def > 0 {
            let mut it = values.iter();
            for &d in &defs[..levels] {
                out.push(if d == max_def {
                    f(it.next().expect("one value per defined level"))
                } else {
                    null.clone()
                });
            }
        } else {
            out.extend(values.iter().map(&f));
        }
        total += records;
    }
    Ok(total)
}

/// A column's values as CSV fields (a null as the empty field).
pub fn fields(v: &Values) -> Vec<String> {
    (0..v.len()).map(|i| v.field(i)).collect()
}

/// Reads the numeric table `sel` chooses (see [`csv::read`](super::csv::read)).
///
/// # Errors
/// As [`ParquetFile::open`] and [`ParquetFile::select`]; [`Error::Parse`] (row, column) for a
/// text column, a missing value or a non-finite number, with a hint.
pub fn read(path: &Path, sel: &ColumnSelection) -> Result<Table> {
    let file = ParquetFile::open(path)?;
    let (keep, label) = file.select(sel)?;
    let cols = keep.len();
    crate::bounds::check_alloc(file.rows(), cols * 4, path.display())?;
    let mut values = Vec::with_capacity(file.rows() * cols);
    let mut labels = label.map(|_| Vec::new());
    let names = file.names().to_vec();
    let all: Vec<usize> = keep.iter().copied().chain(label).collect();
    let mut chunks = file.into_chunks(&all, 1 << 16);
    loop {
        let first = chunks.rows_done();
        let Some(chunk) = chunks.next().transpose()? else {
            break;
        };
        numbers_into(path, &names, &keep, &chunk[..cols], first, &mut values)?;
        if let Some(l) = labels.as_mut() {
            l.extend(fields(&chunk[cols]));
        }
    }
    let rows = values.len() / cols;
    if rows == 0 {
        return Err(Error::data(path, "no rows"));
    }
    Ok(Table {
        matrix: Matrix::from_vec(rows, cols, values)?,
        names: keep.iter().map(|&j| names[j].clone()).collect(),
        has_header: true,
        labels,
    })
}

/// Appends a chunk's rows of numbers (row-major f32) to `out`; `first` rows came before it.
///
/// # Errors
/// [`Error::Data`] naming the row and column for text, a missing value or a non-finite number.
pub fn numbers_into(
    path: &Path,
    names: &[String],
    columns: &[usize],
    chunk: &[Values],
    first: usize,
    out: &mut Vec<f32>,
) -> Result<()> {
    let rows = chunk.first().map_or(0, Values::len);
    let at = |i: usize, k: usize, message: String| {
        Error::data(
            path,
            format!("row {}, column `{}`: {message}", first + i + 1, names[columns[k]]),
        )
    };
    let mut cols = Vec::with_capacity(chunk.len());
    for (k, c) in chunk.iter().enumerate() {
        match c {
            Values::Numbers(v) => cols.push(v),
            Values::Text(_) => {
                return Err(Error::data(
                    path,
                    format!("column `{}`: expected numbers, found a text column", names[columns[k]]),
                )
                .with_hint(Hint::Categorical));
            }
        }
    }
    out.reserve(rows * cols.len());
    for i in 0..rows {
        for (k, c) in cols.iter().enumerate() {
            let v = c[i];
            if v.is_nan() {
                return Err(at(i, k, "a missing value (null)".into()).with_hint(Hint::Impute));
            }
            let x = v as f32;
            if !x.is_finite() {
                return Err(at(i, k, format!("non-finite value {v}")));
            }
            out.push(x);
        }
    }
    Ok(())
}

/// Reads the columns `sel` chooses as text fields, for the table encoding (see
/// [`csv::read_raw`](super::csv::read_raw)).
///
/// # Errors
/// As [`ParquetFile::open`] and [`ParquetFile::select`].
pub fn read_raw(path: &Path, sel: &ColumnSelection) -> Result<RawTable> {
    let file = ParquetFile::open(path)?;
    let (keep, label) = file.select(sel)?;
    let mut raw = raw_table(&file, &keep, label.is_some());
    let all: Vec<usize> = keep.iter().copied().chain(label).collect();
    let mut chunks = file.into_chunks(&all, 1 << 16);
    loop {
        let first = chunks.rows_done();
        let Some(chunk) = chunks.next().transpose()? else {
            break;
        };
        append_raw(&mut raw, &chunk, first);
    }
    if raw.rows() == 0 {
        return Err(Error::data(path, "no rows"));
    }
    Ok(raw)
}

/// An empty [`RawTable`] of `keep`'s columns (and a label column).
pub fn raw_table(file: &ParquetFile, keep: &[usize], label: bool) -> RawTable {
    RawTable {
        names: keep.iter().map(|&j| file.names()[j].clone()).collect(),
        file_columns: keep.iter().map(|&j| j + 1).collect(),
        fields: Vec::new(),
        lines: Vec::new(),
        has_header: true,
        labels: label.then(Vec::new),
    }
}

/// Appends a chunk (the features' columns, then the label's when `raw` has labels) to `raw`
/// as text fields; `first` rows of the file came before it (row `first + 1` is numbered as
/// line `first + 2` of a CSV with a header).
pub fn append_raw(raw: &mut RawTable, chunk: &[Values], first: usize) {
    let cols = raw.names.len();
    let rows = chunk.first().map_or(0, Values::len);
    let next = first as u64 + 2;
    raw.fields.reserve(rows * cols);
    for i in 0..rows {
        for c in &chunk[..cols] {
            raw.fields.push(c.field(i));
        }
        raw.lines.push(next + i as u64);
    }
    if let Some(l) = raw.labels.as_mut() {
        l.extend((0..rows).map(|i| chunk[cols].field(i)));
    }
}

#[cfg(test)]
mod tests;
