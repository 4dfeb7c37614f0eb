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

/// An IDX file opened past its header: the reader of its data, the element type and the
/// declared dimensions.
struct Opened {
    reader: Box<dyn Read>,
    dtype: u8,
    dims: Vec<usize>,
    gz: bool,
}

/// Opens an IDX file (gzip detected from the content) and reads its header.
fn open(path: &Path) -> Result<Opened> {
    let file = std::fs::File::open(path).map_err(io_at(path))?;
    let mut raw = std::io::BufReader::new(file);
    let mut magic = [0u8; 2];
    raw.read_exact(&mut magic)
        .map_err(|_| Error::data(path, "file is empty or too short for an IDX header"))?;
    let gz = magic == [0x1f, 0x8b];
    let chained = std::io::Cursor::new(magic).chain(raw);
    let mut reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(chained))
    } else {
        Box::new(chained)
    };
    let bad = |m: String| Error::data(path, m);
    // A gzip stream that cannot be inflated is named as such, not as a short header.
    let short = |e: std::io::Error, what: &str| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => bad(what.into()),
        _ if gz => bad(format!("corrupt gzip data: {e}")),
        _ => bad(format!("cannot read the header: {e}")),
    };
    let mut head = [0u8; 4];
    reader
        .read_exact(&mut head)
        .map_err(|e| short(e, "too short for an IDX header"))?;
    if !sniff(&head) {
        return Err(bad(format!(
            "not an IDX file (bad magic number){}",
            if gz { " inside the gzip data" } else { "" }
        )));
    }
    let (dtype, ndim) = (head[2], head[3] as usize);
    let mut dims = Vec::with_capacity(ndim);
    for _ in 0..ndim {
        let mut b = [0u8; 4];
        reader.read_exact(&mut b).map_err(|e| short(e, "header is truncated"))?;
        dims.push(u32::from_be_bytes(b) as usize);
    }
    Ok(Opened {
        reader,
        dtype,
        dims,
        gz,
    })
}

/// The declared dimensions of an IDX file, from its header alone.
///
/// # Errors
/// As [`read`], for the header.
pub fn peek(path: &Path) -> Result<Vec<usize>> {
    open(path).map(|o| o.dims)
}

/// Reads an IDX file (gzip detected from the content). Unsigned 8-bit data of two or more
/// dimensions (images) is divided by 255 when `u8_unit`.
///
/// # Errors
/// [`Error::Data`] naming the file for a bad header, corrupt gzip data, a declared size that
/// does not match the data (never allocating more than the data actually present), or
/// truncation; [`Error::TooLarge`] when the declared values do not fit in memory.
pub fn read(path: &Path, u8_unit: bool) -> Result<IdxArray> {
    let Opened {
        gz,
        mut reader,
        dtype,
        dims,
    } = open(path)?;
    let bad = |m: String| Error::data(path, m);
    let cannot_read = |gz: bool, e: &std::io::Error| {
        bad(if gz {
            format!("corrupt gzip data: {e}")
        } else {
            format!("cannot read data: {e}")
        })
    };
    let ndim = dims.len();
    let size = match dtype {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        _ => 8,
    };
    let count = crate::bounds::checked_product(&dims).ok_or_else(|| bad("declared size overflows".into()))?;
    let nbytes = count
        .checked_mul(size)
        .ok_or_else(|| bad("declared size overflows".into()))?;
    crate::bounds::check_alloc(count, 4, format_args!("{} ({dims:?} values)", path.display()))?;
    let convert = |c: &[u8]| -> f32 {
        match dtype {
            0x08 if u8_unit && ndim >= 2 => f32::from(c[0]) / 255.0,
            0x08 => f32::from(c[0]),
            0x09 => f32::from(c[0] as i8),
            0x0B => f32::from(i16::from_be_bytes([c[0], c[1]])),
            0x0C => i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f32,
            0x0D => f32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            _ => f64::from_be_bytes(c.try_into().expect("8 bytes")) as f32,
        }
    };
    // The data is read and converted in chunks: the values grow only with the bytes actually
    // present (an absurd header cannot trigger a huge allocation), and the raw bytes are never
    // held whole beside the values.
    let mut values: Vec<f32> = Vec::with_capacity(count.min(1 << 20));
    let mut chunk = vec![0u8; (1 << 16) * size];
    let mut left = nbytes;
    while left > 0 {
        let want = left.min(chunk.len());
        let got = read_full(&mut reader, &mut chunk[..want]).map_err(|e| cannot_read(gz, &e))?;
        values.extend(chunk[..got - got % size].chunks_exact(size).map(convert));
        left -= got;
        if got < want {
            return Err(bad(format!(
                "header declares dimensions {dims:?} ({nbytes} bytes of data), the file has {}",
                nbytes - left
            )));
        }
    }
    let mut extra = [0u8; 1];
    if read_full(&mut reader, &mut extra).map_err(|e| cannot_read(gz, &e))? > 0 {
        return Err(bad(format!(
            "header declares dimensions {dims:?} ({nbytes} bytes of data), the file has {nbytes} or more"
        )));
    }
    let rows = dims.first().copied().unwrap_or(0);
    // Checked: with no rows the other dimensions are not bounded by the data.
    let cols = if ndim == 1 {
        1
    } else {
        crate::bounds::product(&dims[1..], path.display())?
    };
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

/// Reads until `buf` is full or the data ends; the number of bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
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
