//! Reading and writing data: CSV, Parquet, NPY, IDX (raw or gzipped), and the
//! [`Scaler`](scale::Scaler).
//!
//! Every reader returns rows of f32 features; 8-bit image data (IDX, u8 NPY) is read as
//! value / 255 in [0, 1].

pub mod csv;
pub mod idx;
pub mod images;
pub mod npy;
pub mod parquet;
pub mod scale;
pub mod tabular;
pub mod tensors;
pub mod text;
pub mod window;

use crate::error::{Error, Result};
use crate::fsutil::io_at;
use crate::tensor::Matrix;
use std::io::Read;
use std::path::Path;

pub use self::csv::ColumnSelection;

/// The file formats hourglass reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated text.
    Csv,
    /// An Apache Parquet table.
    Parquet,
    /// NumPy `.npy`.
    Npy,
    /// IDX (MNIST), raw or gzipped.
    Idx,
    /// A folder of PNG / JPEG images.
    Images,
    /// A `.safetensors` file of named tensors (one is read).
    Safetensors,
}

/// Rows read from a file, with what is known about them.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The features, one row per sample.
    pub x: Matrix,
    /// Feature names: a CSV's header (or `c0`, `c1`, … for a CSV without one); empty for
    /// files without names (NPY, IDX, images), whose columns can be counted in millions.
    pub names: Vec<String>,
    /// Labels from a CSV label column.
    pub labels: Option<Vec<String>>,
    /// Image shape `(height, width, channels)` when the file says so (IDX/NPY of rank 3 or 4).
    pub image_shape: Option<(usize, usize, usize)>,
    /// The file's format.
    pub format: Format,
    /// The image files, for data read from a folder (outputs can keep their names).
    pub files: Option<Vec<std::path::PathBuf>>,
}

/// Whether `path` holds an IDX file (raw, or gzipped), from its first bytes.
pub fn is_idx(path: &Path) -> bool {
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    !path.is_dir() && (head[..n].starts_with(&[0x1f, 0x8b]) || idx::sniff(&head[..n]))
}

fn detect(path: &Path) -> Result<Format> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut head = [0u8; 9];
    let mut f = std::fs::File::open(path).map_err(io_at(path))?;
    let n = f.read(&mut head).map_err(io_at(path))?;
    let head = &head[..n];
    if parquet::sniff(head) {
        return Ok(Format::Parquet);
    }
    if head.starts_with(b"\x93NUMPY") {
        return Ok(Format::Npy);
    }
    if head.starts_with(&[0x1f, 0x8b]) || idx::sniff(head) {
        return Ok(Format::Idx);
    }
    if tensors::sniff(head) {
        return Ok(Format::Safetensors);
    }
    match ext.as_str() {
        "csv" | "txt" => Ok(Format::Csv),
        "npy" => Err(Error::data(path, "not a .npy file (bad magic)")),
        "parquet" | "pq" => Err(Error::data(path, "not a Parquet file (bad magic)")),
        _ if n == 0 => Err(Error::data(path, "empty file")),
        _ => Err(Error::data(
            path,
            "unknown format; expected a .csv file, a Parquet file, a .npy file, a .safetensors file or an IDX file (raw or .gz)",
        )),
    }
}

/// The width of a file's rows from its header alone, for the binary formats (NPY, IDX) whose
/// headers declare it; `None` for CSV files and folders. Lets a command refuse data of the
/// wrong width before reading (or inflating) any of it.
///
/// # Errors
/// As the readers, for the header.
pub fn peek_width(path: &Path) -> Result<Option<usize>> {
    if path.is_dir() {
        return Ok(None);
    }
    let dims = match detect(path)? {
        Format::Npy => npy::peek(path)?,
        Format::Idx => idx::peek(path)?,
        Format::Csv | Format::Parquet | Format::Images | Format::Safetensors => return Ok(None),
    };
    Ok(Some(if dims.len() <= 1 {
        1
    } else {
        // An overflowing width fits no model: it is refused as a mismatch.
        crate::bounds::checked_product(&dims[1..]).unwrap_or(usize::MAX)
    }))
}

/// Reads a data file, choosing the reader from the content and extension.
///
/// # Errors
/// Whatever the reader reports, naming the file; [`Error::Config`] when column options are
/// given for a non-CSV file.
pub fn load(path: &Path, sel: &ColumnSelection) -> Result<Dataset> {
    load_with(path, sel, None).map(|(ds, _)| ds)
}

/// [`load`], where a folder of images is resized to `image_shape` `(height, width, channels)`
/// when given; also returns how many images were resized.
///
/// # Errors
/// As [`load`] and [`images::read_folder`].
pub fn load_with(
    path: &Path,
    sel: &ColumnSelection,
    image_shape: Option<(usize, usize, usize)>,
) -> Result<(Dataset, usize)> {
    if path.is_dir() {
        sel.check_csv_only(path)?;
        return images::read_folder(path, image_shape);
    }
    let format = detect(path)?;
    if format == Format::Safetensors {
        return read_tensor(path, sel).map(|ds| (ds, 0));
    }
    if !matches!(format, Format::Csv | Format::Parquet) {
        sel.check_csv_only(path)?;
    }
    let image = |dims: &[usize]| match dims.len() {
        3 => Some((dims[1], dims[2], 1)),
        4 => Some((dims[1], dims[2], dims[3])),
        _ => None,
    };
    let ds = match format {
        // `detect` reads files; folders were handled above.
        Format::Images => return Err(Error::data(path, "expected a file, found a folder of images")),
        Format::Safetensors => unreachable!("read by read_tensor above"),
        Format::Csv | Format::Parquet => {
            let t = if format == Format::Csv {
                csv::read(path, sel)?
            } else {
                parquet::read(path, sel)?
            };
            Dataset {
                x: t.matrix,
                names: t.names,
                labels: t.labels,
                image_shape: None,
                format,
                files: None,
            }
        }
        Format::Npy => {
            let mut a = npy::read(path, true)?;
            if let [n, h, w, c] = a.shape[..] {
                // (N, H, W, C) images become channel-major rows (C, H, W).
                a.matrix = hwc_to_chw(&a.matrix, n, h, w, c);
            }
            Dataset {
                image_shape: image(&a.shape),
                x: a.matrix,
                names: Vec::new(),
                labels: None,
                format,
                files: None,
            }
        }
        Format::Idx => {
            let a = idx::read(path, true)?;
            Dataset {
                image_shape: image(&a.dims),
                x: a.matrix,
                names: Vec::new(),
                labels: None,
                format,
                files: None,
            }
        }
    };
    if ds.x.rows() == 0 {
        return Err(Error::data(path, "no rows"));
    }
    Ok((ds, 0))
}

/// A `.safetensors` file's tensor as a dataset: `--columns NAME` (one name) picks the tensor.
fn read_tensor(path: &Path, sel: &ColumnSelection) -> Result<Dataset> {
    let name = match &sel.columns {
        Some(c) if c.len() == 1 && sel.drop.is_empty() && sel.label_column.is_none() => Some(c[0].as_str()),
        None if sel.drop.is_empty() && sel.label_column.is_none() => None,
        _ => {
            return Err(Error::setting(
                "columns",
                sel.columns.as_ref().map_or(String::new(), |c| c.join(",")),
                format!(
                    "{}: a safetensors file takes one tensor name (--columns NAME) and no other column choice",
                    path.display()
                ),
            ));
        }
    };
    let (x, shape) = tensors::read(path, name)?;
    if x.rows() == 0 {
        return Err(Error::data(path, "no rows"));
    }
    Ok(Dataset {
        x,
        names: Vec::new(),
        labels: None,
        image_shape: match shape[..] {
            [_, h, w] => Some((h, w, 1)),
            _ => None,
        },
        format: Format::Safetensors,
        files: None,
    })
}

/// Reorders rows of `(H, W, C)` images into `(C, H, W)`.
pub fn hwc_to_chw(m: &Matrix, n: usize, h: usize, w: usize, c: usize) -> Matrix {
    let mut out = Matrix::zeros(n, h * w * c);
    for i in 0..n {
        let (src, dst) = (m.row(i), out.row_mut(i));
        for p in 0..h * w {
            for ch in 0..c {
                dst[ch * h * w + p] = src[p * c + ch];
            }
        }
    }
    out
}

/// Writes a matrix as `.npy`, `.csv` or `.parquet` (chosen by the extension; CSV to a device
/// or a pipe such as `/dev/stdout`), atomically.
///
/// # Errors
/// [`Error::Config`] for another extension; [`Error::Io`] naming the file.
pub fn write(path: &Path, m: &Matrix, names: &[String], leading: &[(String, Vec<String>)]) -> Result<()> {
    let mut out = crate::fsutil::Outputs::new();
    write_in(&mut out, path, m, names, leading)?;
    out.commit()
}

/// [`write()`], staged in `out` with other outputs of the same command (all or nothing).
///
/// # Errors
/// As [`write()`].
pub fn write_in(
    out: &mut crate::fsutil::Outputs,
    path: &Path,
    m: &Matrix,
    names: &[String],
    leading: &[(String, Vec<String>)],
) -> Result<()> {
    // A passed-through column is one value per output row (never cut short or padded).
    if let Some((name, v)) = leading.iter().find(|(_, v)| v.len() != m.rows()) {
        return Err(Error::Config(format!(
            "{}: column {name} has {} values for {} rows",
            path.display(),
            v.len(),
            m.rows()
        )));
    }
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref().or(crate::fsutil::is_special(path).then_some("csv")) {
        Some("npy") if leading.is_empty() => npy::write_in(out, path, m),
        Some("npy") => Err(Error::Config(format!(
            "{}: passed-through columns need a .csv or .parquet output",
            path.display()
        ))),
        Some("csv") => csv::write_in(out, path, m, names, leading),
        Some("parquet" | "pq") => parquet::write_in(out, path, m, names, leading),
        _ => Err(Error::Config(format!(
            "{}: output must end in .csv, .npy or .parquet",
            path.display()
        ))),
    }
}

/// Column names for an output of `cols` columns: `names`, or `c0`, `c1`, … for rows without
/// names (from NPY, IDX or images).
pub fn names_or_numbered(names: &[String], cols: usize) -> std::borrow::Cow<'_, [String]> {
    if names.is_empty() && cols > 0 {
        std::borrow::Cow::Owned(numbered("c", cols))
    } else {
        std::borrow::Cow::Borrowed(names)
    }
}

/// Parses a row range `START..END`, `START..` or `..END` (0-based, end excluded).
///
/// # Errors
/// A message naming the expected form, or for an end before the start.
pub fn parse_rows(s: &str) -> std::result::Result<(usize, Option<usize>), String> {
    let err = || format!("bad range `{s}`; expected START..END, START.. or ..END");
    let (a, b) = s.split_once("..").ok_or_else(err)?;
    let start = if a.trim().is_empty() {
        0
    } else {
        a.trim().parse().map_err(|_| err())?
    };
    let end = if b.trim().is_empty() {
        None
    } else {
        Some(b.trim().parse().map_err(|_| err())?)
    };
    if end.is_some_and(|e| e < start) {
        return Err(err());
    }
    Ok((start, end))
}

/// Which of `total` rows to keep: those whose label is in `keep_labels` (all when empty;
/// `labels` has one per row then), then positions `start..end` of those (`rows`).
///
/// # Errors
/// [`Error::Setting`] for a range past the rows left, [`Error::InvalidData`] when nothing is
/// left.
pub fn select_rows(
    total: usize,
    labels: &[String],
    keep_labels: &[String],
    rows: Option<(usize, Option<usize>)>,
) -> Result<Vec<usize>> {
    let mut keep: Vec<usize> = (0..total)
        .filter(|&i| keep_labels.is_empty() || keep_labels.contains(&labels[i]))
        .collect();
    if let Some((start, given_end)) = rows {
        let end = given_end.unwrap_or(keep.len().max(start));
        if end > keep.len() {
            return Err(Error::setting(
                "rows",
                format!("{start}..{}", given_end.map(|e| e.to_string()).unwrap_or_default()),
                format!("only {} rows are left to choose from", keep.len()),
            ));
        }
        keep = keep[start..end].to_vec();
    }
    if keep.is_empty() {
        return Err(Error::invalid("selection", format!("no rows selected (of {total})")));
    }
    Ok(keep)
}

/// Column names `prefix0`, `prefix1`, …
pub fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Reads labels, one per row: an IDX or NPY vector (e.g. MNIST's label files), or a CSV file of
/// one column. Its first line is a header when it is not a number and either every other line
/// is a number or the value does not occur again ([`load_labels_for`] decides by the row count
/// instead, when it is known).
/// Whole numbers are written without a fraction (`3`, not `3.0`).
///
/// # Errors
/// [`Error::Data`] naming the file when it holds more than one column or no rows.
pub fn load_labels(path: &Path) -> Result<Vec<String>> {
    load_labels_inner(path, None)
}

/// [`load_labels`] for `rows` rows of data: a CSV's first line is its header when the file has
/// one line more than there are rows (and that line is not a number), and is a label when it
/// has exactly as many, so a headerless file of text labels keeps its first label.
///
/// # Errors
/// As [`load_labels`].
pub fn load_labels_for(path: &Path, rows: usize) -> Result<Vec<String>> {
    load_labels_inner(path, Some(rows))
}

fn load_labels_inner(path: &Path, rows: Option<usize>) -> Result<Vec<String>> {
    let labels = match detect(path)? {
        Format::Csv => {
            let mut r = ::csv::ReaderBuilder::new()
                .has_headers(false)
                .trim(::csv::Trim::All)
                .flexible(true)
                .from_reader(csv::open_limited(path)?);
            let mut out = Vec::new();
            for (line, rec) in r.records().enumerate() {
                let rec = rec.map_err(|e| Error::data(path, e.to_string()))?;
                if rec.len() != 1 {
                    return Err(Error::Parse {
                        path: path.into(),
                        line: line as u64 + 1,
                        column: rec.len(),
                        message: format!("a labels file has one column; this line has {}", rec.len()),
                    });
                }
                out.push(rec[0].to_string());
            }
            let number = |s: &str| s.parse::<f64>().is_ok();
            let header = match rows {
                Some(n) if out.len() == n + 1 => !number(&out[0]),
                Some(n) if out.len() == n => false,
                // The count is wrong either way: the usual rule, for the error message.
                _ => {
                    out.len() >= 2
                        && !number(&out[0])
                        && (out[1..].iter().all(|s| number(s)) || !out[1..].contains(&out[0]))
                }
            };
            if header {
                out.remove(0);
            }
            out
        }
        Format::Parquet => {
            let raw = parquet::read_raw(path, &ColumnSelection::default())?;
            if raw.names.len() != 1 {
                return Err(Error::data(
                    path,
                    format!("a labels file has one column; this one has {}", raw.names.len()),
                ));
            }
            raw.fields
        }
        _ => {
            let ds = load(path, &ColumnSelection::default())?;
            if ds.x.cols() != 1 {
                return Err(Error::data(
                    path,
                    format!("a labels file has one value per row; this one has {}", ds.x.cols()),
                ));
            }
            ds.x.as_slice()
                .iter()
                .map(|&v| {
                    if v.fract() == 0.0 && v.abs() < 1e9 {
                        format!("{}", v as i64)
                    } else {
                        v.to_string()
                    }
                })
                .collect()
        }
    };
    if labels.is_empty() {
        return Err(Error::data(path, "no labels"));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    /// A passed-through column of another length than the rows is refused, and nothing is
    /// written.
    #[test]
    fn passed_through_columns_match_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let m = crate::tensor::Matrix::zeros(3, 1);
        let names = vec!["code0".to_string()];
        let short = [("id".to_string(), vec!["a".to_string(), "b".to_string()])];
        let e = super::write(&path, &m, &names, &short).unwrap_err().to_string();
        assert!(e.contains("column id has 2 values for 3 rows"), "{e}");
        assert!(!path.exists());
        let full = [("id".to_string(), vec!["a".into(), "b".into(), "c".into()])];
        super::write(&path, &m, &names, &full).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 4);
    }
}
