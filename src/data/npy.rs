//! NumPy `.npy` files (format versions 1–3, C order).

use crate::error::{Error, Result};
use crate::fsutil::{Outputs, io_at};
use crate::tensor::Matrix;
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// A parsed `.npy` array flattened to rows: `shape[0]` rows of the product of the other dims.
#[derive(Clone, Debug)]
pub struct NpyArray {
    /// The values as f32 (u8 divided by 255 when `unit_scale`).
    pub matrix: Matrix,
    /// The declared shape.
    pub shape: Vec<usize>,
    /// The declared dtype (`<f4`, `|u1`, …).
    pub descr: String,
}

fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    Some(rest)
}

/// The header of a `.npy` file at the start of `bytes`: the shape, the dtype and where the
/// data starts.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, String, usize)> {
    let bad = |m: String| Error::data(path, m);
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("not a .npy file (bad magic)".into()));
    }
    let major = bytes[6];
    let (hlen, hstart) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(bad(format!("unsupported .npy format version {major}"))),
    };
    let header = bytes
        .get(hstart..hstart.saturating_add(hlen))
        .ok_or_else(|| bad("header is longer than the file".into()))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text".into()))?;
    let descr = header_value(header, "descr")
        .and_then(|v| v.strip_prefix('\''))
        .and_then(|v| v.split('\'').next())
        .ok_or_else(|| bad("header has no 'descr'".into()))?
        .to_string();
    let fortran = header_value(header, "fortran_order").ok_or_else(|| bad("header has no 'fortran_order'".into()))?;
    if fortran.starts_with("True") {
        return Err(bad(
            "Fortran-order arrays are not supported; save with np.ascontiguousarray".into(),
        ));
    }
    let shape_txt = header_value(header, "shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split(')').next())
        .ok_or_else(|| bad("header has no 'shape'".into()))?;
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad(format!("bad shape ({shape_txt})")))?;
    if shape.is_empty() {
        return Err(bad("a scalar array has no rows".into()));
    }
    Ok((shape, descr, hstart + hlen))
}

/// The declared shape of a `.npy` file, from its header alone.
///
/// # Errors
/// As [`read`], for the header.
pub fn peek(path: &Path) -> Result<Vec<usize>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(io_at(path))?;
    let len = file.metadata().map_err(io_at(path))?.len();
    let mut head = Vec::new();
    file.take(12).read_to_end(&mut head).map_err(io_at(path))?;
    let hlen = match head.get(6) {
        Some(1) if head.len() >= 10 => u16::from_le_bytes([head[8], head[9]]) as u64 + 10,
        Some(2 | 3) if head.len() >= 12 => u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as u64 + 12,
        _ => 12,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io_at(path))?
        .take(hlen.min(len))
        .read_to_end(&mut bytes)
        .map_err(io_at(path))?;
    parse_header(path, &bytes).map(|(shape, _, _)| shape)
}

/// Reads a `.npy` file. 8-bit unsigned data of two or more dimensions (images) is divided by
/// 255 when `u8_unit`; a vector of u8 (labels) is read as is.
///
/// # Errors
/// [`Error::Data`] naming the file for a bad magic, an unsupported dtype or order, a declared
/// size that does not match the file length (checked before allocating), or non-finite values.
pub fn read(path: &Path, u8_unit: bool) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(io_at(path))?;
    let bad = |m: String| Error::data(path, m);
    let (shape, descr, start) = parse_header(path, &bytes)?;
    let (kind, size) = dtype(path, &descr)?;
    let count = data_size(path, &shape, &descr, size, bytes.len() - start)?;
    crate::bounds::check_alloc(count, 4, format_args!("{} ({shape:?} values)", path.display()))?;
    let values = decode(kind, size, u8_unit && shape.len() >= 2, &bytes[start..]);
    let rows = shape[0];
    let cols = if shape.len() == 1 { 1 } else { count / rows.max(1) };
    // Checked: with no rows the other dimensions are not bounded by the data.
    let cols = if rows == 0 {
        crate::bounds::product(&shape[1..], path.display())?
    } else {
        cols
    };
    let matrix = Matrix::from_vec(rows, cols, values)?;
    if let Some((r, c)) = matrix.find_non_finite() {
        return Err(bad(format!("non-finite value at row {}, column {}", r + 1, c + 1)));
    }
    Ok(NpyArray { matrix, shape, descr })
}

/// The kind (`f`, `u`, `i`) and byte size of a dtype hourglass reads.
fn dtype(path: &Path, descr: &str) -> Result<(char, usize)> {
    Ok(match descr {
        "<f4" => ('f', 4),
        "<f8" => ('f', 8),
        "|u1" | "<u1" => ('u', 1),
        "<i4" => ('i', 4),
        "<i8" => ('i', 8),
        other => {
            return Err(Error::data(
                path,
                format!("unsupported dtype '{other}'; expected little-endian f4, f8, u1, i4 or i8"),
            ));
        }
    })
}

/// The number of values `shape` declares, checked against the `len` bytes of data the file
/// has after its header.
fn data_size(path: &Path, shape: &[usize], descr: &str, size: usize, len: usize) -> Result<usize> {
    let bad = |m: String| Error::data(path, m);
    let count =
        crate::bounds::checked_product(shape).ok_or_else(|| bad(format!("declared shape {shape:?} overflows")))?;
    if Some(len) != count.checked_mul(size) {
        return Err(bad(format!(
            "declared shape {shape:?} of {descr} needs {} bytes of data, the file has {len}",
            count.saturating_mul(size),
        )));
    }
    Ok(count)
}

/// Little-endian values of `kind` and `size` as f32 (u8 divided by 255 when `unit`).
fn decode(kind: char, size: usize, unit: bool, data: &[u8]) -> Vec<f32> {
    match (kind, size) {
        ('f', 4) => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        ('f', 8) => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        ('u', 1) if unit => data.iter().map(|&v| v as f32 / 255.0).collect(),
        ('u', 1) => data.iter().map(|&v| v as f32).collect(),
        ('i', 4) => data
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        _ => data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
    }
}

/// An NPY array read a bounded number of rows at a time, with [`read`]'s checks (the data's
/// size against the header before anything is read; non-finite values with their row).
pub struct NpyChunks {
    path: std::path::PathBuf,
    file: std::io::BufReader<std::fs::File>,
    shape: Vec<usize>,
    kind: char,
    size: usize,
    unit: bool,
    cols: usize,
    done: usize,
}

impl std::fmt::Debug for NpyChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpyChunks")
            .field("path", &self.path)
            .field("shape", &self.shape)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl NpyChunks {
    /// Opens `path` and checks its header (u8 data of two or more dimensions is divided by 255
    /// when `u8_unit`, as [`read`] does).
    ///
    /// # Errors
    /// As [`read`], for the header and the file's size.
    pub fn open(path: &Path, u8_unit: bool) -> Result<NpyChunks> {
        use std::io::{Seek, SeekFrom};
        let shape = peek(path)?;
        let mut head = Vec::new();
        {
            use std::io::Read;
            let file = std::fs::File::open(path).map_err(io_at(path))?;
            file.take(1 << 20).read_to_end(&mut head).map_err(io_at(path))?;
        }
        let (_, descr, start) = parse_header(path, &head)?;
        let (kind, size) = dtype(path, &descr)?;
        let mut file = std::fs::File::open(path).map_err(io_at(path))?;
        let len = file.metadata().map_err(io_at(path))?.len() as usize;
        let count = data_size(path, &shape, &descr, size, len.saturating_sub(start))?;
        file.seek(SeekFrom::Start(start as u64)).map_err(io_at(path))?;
        let cols = if shape.len() == 1 { 1 } else { count / shape[0].max(1) };
        Ok(NpyChunks {
            path: path.into(),
            file: std::io::BufReader::with_capacity(1 << 20, file),
            unit: u8_unit && shape.len() >= 2,
            shape,
            kind,
            size,
            cols,
            done: 0,
        })
    }

    /// The declared shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Rows read so far (the next row's 0-based number).
    pub fn rows_done(&self) -> usize {
        self.done
    }

    /// Goes to row `row` (0-based): the next rows read start there.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn seek_row(&mut self, row: usize) -> Result<()> {
        let row = row.min(self.shape[0]);
        let delta = (row as i64 - self.done as i64) * (self.cols * self.size) as i64;
        self.file.seek_relative(delta).map_err(io_at(&self.path))?;
        self.done = row;
        Ok(())
    }

    /// The next `rows` rows (fewer at the end); `None` once every row was read.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file; [`Error::Data`] for a non-finite value (with its row).
    pub fn next_rows(&mut self, rows: usize) -> Result<Option<Matrix>> {
        use std::io::Read;
        let n = rows.min(self.shape[0] - self.done);
        if n == 0 {
            return Ok(None);
        }
        let mut bytes = vec![0u8; n * self.cols * self.size];
        self.file.read_exact(&mut bytes).map_err(io_at(&self.path))?;
        let m = Matrix::from_vec(n, self.cols, decode(self.kind, self.size, self.unit, &bytes))?;
        if let Some((r, c)) = m.find_non_finite() {
            return Err(Error::data(
                &self.path,
                format!("non-finite value at row {}, column {}", self.done + r + 1, c + 1),
            ));
        }
        self.done += n;
        Ok(Some(m))
    }
}

/// The header (magic, version 1.0, length, dictionary) of a `(rows, cols)` little-endian f32
/// array, padded with spaces so the data starts on a multiple of `align` bytes (64 is NumPy's
/// rule; a writer that fills in the row count at the end reserves 128 for any count).
pub fn header(rows: usize, cols: usize, align: usize) -> Vec<u8> {
    let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let total = MAGIC.len() + 2 + 2 + h.len() + 1;
    h.push_str(&" ".repeat((align - total % align) % align));
    h.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out
}

/// Writes `m` as a `(rows, cols)` little-endian f32 `.npy` file, atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write(path: &Path, m: &Matrix) -> Result<()> {
    let mut out = Outputs::new();
    write_in(&mut out, path, m)?;
    out.commit()
}

/// [`write()`], staged in `out` (renamed into place with the others at its commit).
///
/// # Errors
/// As [`write()`].
pub fn write_in(out: &mut Outputs, path: &Path, m: &Matrix) -> Result<()> {
    let header = header(m.rows(), m.cols(), 64);
    out.file(path, |w| {
        let io = io_at(path);
        w.write_all(&header).map_err(&io)?;
        let mut buf = Vec::with_capacity(m.as_slice().len() * 4);
        for v in m.as_slice() {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&buf).map_err(&io)
    })
}
