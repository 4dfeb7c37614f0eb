//! The file under the `parquet` crate's reader: its reads stop at the end of the file, and
//! fail there.

use std::fs::File;

/// The file under the `parquet` crate's reader, with reads past its end refused. The crate
/// reads page headers through [`std::io::Read`] and skips an unknown field's bytes with
/// `io::copy`, which takes reading nothing for the end of a skip, not an error: a damaged header
/// declaring a list of two billion doubles spent two billion empty reads (minutes) at the end of
/// the file. Here reading at the end is an error, so such a header fails at once; and a chunk
/// reaching past the end is refused before its buffer is allocated.
pub(super) struct Source {
    pub(super) file: File,
    pub(super) len: u64,
}

/// A reader of [`Source`] from some offset: its end is the file's, and reading there fails.
pub(super) struct SourceRead {
    inner: std::io::BufReader<File>,
    left: u64,
}

impl std::io::Read for SourceRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "a read past the end of the file",
            ));
        }
        let take = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..take])?;
        if n == 0 {
            // The file shrank under the reader.
            self.left = 0;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

impl parquet::file::reader::Length for Source {
    fn len(&self) -> u64 {
        self.len
    }
}

impl parquet::file::reader::ChunkReader for Source {
    type T = SourceRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<SourceRead> {
        use std::io::Seek;
        let left = self.len.checked_sub(start).ok_or_else(|| {
            parquet::errors::ParquetError::EOF(format!("offset {start} is past the end ({} bytes)", self.len))
        })?;
        let mut file = self.file.try_clone()?;
        file.seek(std::io::SeekFrom::Start(start))?;
        Ok(SourceRead {
            inner: std::io::BufReader::new(file),
            left,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        use std::io::Read;
        if start.checked_add(length as u64).is_none_or(|end| end > self.len) {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "{length} bytes at offset {start} reach past the end ({} bytes)",
                self.len
            )));
        }
        let mut buffer = vec![0; length];
        self.get_read(start)?.read_exact(&mut buffer)?;
        Ok(buffer.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::ChunkReader;
    use std::io::Read;

    /// A skip that runs past the end fails (it came back empty, without an error, from the
    /// file as the `parquet` crate reads it); whole chunks past the end are refused.
    #[test]
    fn reads_fail_at_the_end_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ten");
        std::fs::write(&path, b"0123456789").unwrap();
        let source = Source {
            file: File::open(&path).unwrap(),
            len: 10,
        };
        let mut r = source.get_read(6).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"6789");
        assert_eq!(r.read(&mut buf).unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
        let skip = std::io::copy(&mut source.get_read(8).unwrap().take(8), &mut std::io::sink());
        assert!(skip.is_err(), "{skip:?}");
        assert_eq!(source.get_bytes(2, 8).unwrap().as_ref(), b"23456789");
        assert!(source.get_bytes(8, 4).is_err());
        assert!(source.get_read(11).is_err());
    }
}
