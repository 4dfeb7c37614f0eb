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
    reader: Box<dyn Read + Send>,
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
    let mut reader: Box<dyn Read + Send> = if gz {
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
    let mut chunks = IdxChunks::open(path, u8_unit)?;
    let count =
        crate::bounds::checked_product(&chunks.dims).ok_or_else(|| chunks.bad("declared size overflows".into()))?;
    crate::bounds::check_alloc(count, 4, format_args!("{} ({:?} values)", path.display(), chunks.dims))?;
    // The values grow only with the rows actually present (an absurd header cannot trigger a
    // huge allocation), and the raw bytes are never held whole beside the values.
    let mut values: Vec<f32> = Vec::with_capacity(count.min(1 << 20));
    let rows = (1 << 16) / chunks.cols.max(1);
    while let Some(m) = chunks.next_rows(rows.max(1))? {
        values.extend_from_slice(m.as_slice());
    }
    let matrix = Matrix::from_vec(chunks.rows, chunks.cols, values)?;
    Ok(IdxArray {
        matrix,
        is_u8: chunks.dtype == 0x08,
        dims: chunks.dims,
    })
}

/// The rows of an IDX file a chunk at a time (gzipped or not: the data is read in order),
/// converted as [`read`] converts them: memory holds a chunk, not the file.
pub struct IdxChunks {
    path: std::path::PathBuf,
    reader: Box<dyn Read + Send>,
    gz: bool,
    dtype: u8,
    dims: Vec<usize>,
    rows: usize,
    cols: usize,
    size: usize,
    nbytes: usize,
    u8_unit: bool,
    done: usize,
    ended: bool,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for IdxChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdxChunks")
            .field("path", &self.path)
            .field("dims", &self.dims)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl IdxChunks {
    /// Opens `path` and reads its header (see [`read`] for `u8_unit`).
    ///
    /// # Errors
    /// As [`read`], for the header.
    pub fn open(path: &Path, u8_unit: bool) -> Result<IdxChunks> {
        let Opened {
            reader,
            dtype,
            dims,
            gz,
        } = open(path)?;
        let bad = |m: String| Error::data(path, m);
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
        let rows = dims.first().copied().unwrap_or(0);
        // Checked: with no rows the other dimensions are not bounded by the data.
        let cols = if dims.len() == 1 {
            1
        } else {
            crate::bounds::product(&dims[1..], path.display())?
        };
        Ok(IdxChunks {
            path: path.into(),
            reader,
            gz,
            dtype,
            dims,
            rows,
            cols,
            size,
            nbytes,
            u8_unit,
            done: 0,
            ended: false,
            bytes: Vec::new(),
        })
    }

    fn bad(&self, m: String) -> Error {
        Error::data(&self.path, m)
    }

    /// The declared dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Rows handed out so far.
    pub fn rows_done(&self) -> usize {
        self.done
    }

    /// The declared rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Values per row (the product of the dimensions after the first).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The (height, width, channels) of images: 3 or 4 dimensions.
    pub fn image_shape(&self) -> Option<(usize, usize, usize)> {
        match self.dims[..] {
            [_, h, w] => Some((h, w, 1)),
            [_, h, w, c] => Some((h, w, c)),
            _ => None,
        }
    }

    /// The next rows, up to `max`; `None` once every row was handed out (and the file was
    /// checked to end there).
    ///
    /// # Errors
    /// As [`read`]: corrupt gzip data, fewer or more bytes than the header declares, a
    /// non-finite value (naming its row and column in the file).
    pub fn next_rows(&mut self, max: usize) -> Result<Option<Matrix>> {
        let gz = self.gz;
        let cannot_read = |e: &std::io::Error| {
            if gz {
                format!("corrupt gzip data: {e}")
            } else {
                format!("cannot read data: {e}")
            }
        };
        let n = max.max(1).min(self.rows - self.done);
        if n == 0 {
            if !self.ended {
                self.ended = true;
                let mut extra = [0u8; 1];
                if read_full(&mut self.reader, &mut extra).map_err(|e| self.bad(cannot_read(&e)))? > 0 {
                    return Err(self.bad(format!(
                        "header declares dimensions {:?} ({} bytes of data), the file has {} or more",
                        self.dims, self.nbytes, self.nbytes
                    )));
                }
            }
            return Ok(None);
        }
        let (dtype, ndim, u8_unit) = (self.dtype, self.dims.len(), self.u8_unit);
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
        // Read in pieces of at most 64 Ki values: what is allocated follows what is present.
        let want_values = n * self.cols;
        let mut values = Vec::with_capacity(want_values.min(1 << 20));
        let piece = (1 << 16) * self.size;
        let mut left = want_values * self.size;
        let before = self.done * self.cols * self.size;
        while left > 0 {
            let want = left.min(piece);
            self.bytes.resize(want, 0);
            let got = read_full(&mut self.reader, &mut self.bytes[..want]).map_err(|e| self.bad(cannot_read(&e)))?;
            values.extend(self.bytes[..got - got % self.size].chunks_exact(self.size).map(convert));
            left -= got;
            if got < want {
                let read = before + want_values * self.size - left;
                return Err(self.bad(format!(
                    "header declares dimensions {:?} ({} bytes of data), the file has {read}",
                    self.dims, self.nbytes
                )));
            }
        }
        let m = Matrix::from_vec(n, self.cols, values)?;
        if let Some((r, c)) = m.find_non_finite() {
            return Err(self.bad(format!(
                "non-finite value at row {}, column {}",
                self.done + r + 1,
                c + 1
            )));
        }
        self.done += n;
        Ok(Some(m))
    }
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
