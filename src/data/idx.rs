//! IDX files (the MNIST format), raw or gzipped.

use crate::error::{Error, Result};
use crate::fsutil::io_at;
use crate::tensor::Matrix;
use std::io::Read;
use std::path::Path;

/// A parsed IDX array: `dims[0]` rows of the product of the other dims.
#[derive(Clone, Debug)]
pub struct IdxArray {
    /// The values as f32 (8-bit data divided by 255 when asked).
    pub matrix: Matrix,
    /// The declared dimensions.
    pub dims: Vec<usize>,
    /// Whether the element type was unsigned 8-bit.
    pub is_u8: bool,
}

/// Whether the first bytes look like an IDX header.
pub fn sniff(head: &[u8]) -> bool {
    head.len() >= 4
        && head[0] == 0
        && head[1] == 0
        && matches!(head[2], 0x08 | 0x09 | 0x0B | 0x0C | 0x0D | 0x0E)
        && (1..=8).contains(&head[3])
}

/// Reads an IDX file (gzip detected from the content). Unsigned 8-bit data of two or more
/// dimensions (images) is divided by 255 when `u8_unit`.
///
/// # Errors
/// [`Error::Data`] naming the file for a bad header, a declared size that does not match the
/// data (never allocating more than the data actually present), or truncation.
pub fn read(path: &Path, u8_unit: bool) -> Result<IdxArray> {
    let file = std::fs::File::open(path).map_err(io_at(path))?;
    let mut raw = std::io::BufReader::new(file);
    let mut magic = [0u8; 2];
    raw.read_exact(&mut magic)
        .map_err(|_| Error::data(path, "file is empty or too short for an IDX header"))?;
    let chained = std::io::Cursor::new(magic).chain(raw);
    let mut reader: Box<dyn Read> = if magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(chained))
    } else {
        Box::new(chained)
    };
    let bad = |m: String| Error::data(path, m);
    let mut head = [0u8; 4];
    reader
        .read_exact(&mut head)
        .map_err(|_| bad("too short for an IDX header".into()))?;
    if !sniff(&head) {
        return Err(bad("not an IDX file (bad magic number)".into()));
    }
    let (dtype, ndim) = (head[2], head[3] as usize);
    let mut dims = Vec::with_capacity(ndim);
    for _ in 0..ndim {
        let mut b = [0u8; 4];
        reader
            .read_exact(&mut b)
            .map_err(|_| bad("header is truncated".into()))?;
        dims.push(u32::from_be_bytes(b) as usize);
    }
    let size = match dtype {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        _ => 8,
    };
    let count = dims
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or_else(|| bad("declared size overflows".into()))?;
    let nbytes = count
        .checked_mul(size)
        .ok_or_else(|| bad("declared size overflows".into()))?;
    // Read at most what was declared (+1 to detect trailing data); the buffer grows only with
    // the bytes actually present, so an absurd header cannot trigger a huge allocation.
    let mut data = Vec::new();
    reader
        .take(nbytes as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| bad(format!("cannot read data: {e}")))?;
    if data.len() != nbytes {
        return Err(bad(format!(
            "header declares dimensions {dims:?} ({nbytes} bytes of data), the file has {}{}",
            data.len().min(nbytes),
            if data.len() > nbytes { " or more" } else { "" }
        )));
    }
    let values: Vec<f32> = match dtype {
        0x08 if u8_unit && ndim >= 2 => data.iter().map(|&v| v as f32 / 255.0).collect(),
        0x08 => data.iter().map(|&v| v as f32).collect(),
        0x09 => data.iter().map(|&v| v as i8 as f32).collect(),
        0x0B => data
            .chunks_exact(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]) as f32)
            .collect(),
        0x0C => data
            .chunks_exact(4)
            .map(|c| i32::from_be_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        0x0D => data
            .chunks_exact(4)
            .map(|c| f32::from_be_bytes(c.try_into().unwrap()))
            .collect(),
        _ => data
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes(c.try_into().unwrap()) as f32)
            .collect(),
    };
    let rows = dims.first().copied().unwrap_or(0);
    let cols = if ndim == 1 { 1 } else { dims[1..].iter().product() };
    let matrix = Matrix::from_vec(rows, cols, values)?;
    if let Some((r, c)) = matrix.find_non_finite() {
        return Err(bad(format!("non-finite value at row {}, column {}", r + 1, c + 1)));
    }
    Ok(IdxArray {
        matrix,
        dims,
        is_u8: dtype == 0x08,
    })
}

/// Writes an unsigned 8-bit IDX file (used to make test fixtures), gzipped when the name ends
/// in `.gz`.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_u8(path: &Path, dims: &[usize], data: &[u8]) -> Result<()> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        bytes.extend_from_slice(&(d as u32).to_be_bytes());
    }
    bytes.extend_from_slice(data);
    crate::fsutil::write_atomic(path, |w| {
        if path.extension().is_some_and(|e| e == "gz") {
            let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::best());
            std::io::Write::write_all(&mut gz, &bytes).map_err(io_at(path))?;
            gz.finish().map_err(io_at(path))?;
            Ok(())
        } else {
            w.write_all(&bytes).map_err(io_at(path))
        }
    })
}
