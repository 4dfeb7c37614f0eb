//! Parquet files written a chunk of rows at a time.

use crate::error::{Error, Result};
use crate::tensor::Matrix;
use parquet::basic::{LogicalType, Type as Physical};
use parquet::data_type::ByteArray;
use std::path::Path;

/// Writes rows a chunk at a time as a Parquet file (one row group per chunk, Snappy): text
/// columns first (UTF-8 strings), then the numeric columns (f32).
pub struct ChunkWriter<W: std::io::Write + Send> {
    w: parquet::file::writer::SerializedFileWriter<W>,
}

impl<W: std::io::Write + Send> std::fmt::Debug for ChunkWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkWriter").finish_non_exhaustive()
    }
}

fn write_err(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> Error + '_ {
    move |e| Error::data(path, format!("cannot write Parquet: {e}"))
}

impl<W: std::io::Write + Send> ChunkWriter<W> {
    /// A file of text columns `leading` and numeric columns `names` on `w`; `path` names it in
    /// errors.
    ///
    /// # Errors
    /// [`Error::Data`] for names Parquet refuses.
    pub fn new(path: &Path, w: W, names: &[String], leading: &[String]) -> Result<Self> {
        use parquet::basic::{Compression, Repetition};
        use parquet::file::properties::WriterProperties;
        use parquet::schema::types::Type;
        use std::sync::Arc;
        let err = write_err(path);
        let mut fields = Vec::new();
        for n in leading {
            let t = Type::primitive_type_builder(n, Physical::BYTE_ARRAY)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(Some(LogicalType::String))
                .build()
                .map_err(&err)?;
            fields.push(Arc::new(t));
        }
        for n in names {
            let t = Type::primitive_type_builder(n, Physical::FLOAT)
                .with_repetition(Repetition::REQUIRED)
                .build()
                .map_err(&err)?;
            fields.push(Arc::new(t));
        }
        let schema = Type::group_type_builder("hourglass")
            .with_fields(fields)
            .build()
            .map_err(&err)?;
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let w = parquet::file::writer::SerializedFileWriter::new(w, Arc::new(schema), Arc::new(props)).map_err(&err)?;
        Ok(ChunkWriter { w })
    }

    /// Appends rows `m` with their text columns (one vector per leading column) as a row group.
    ///
    /// # Errors
    /// [`Error::Data`] when the writer fails.
    pub fn write(&mut self, path: &Path, m: &Matrix, leading: &[Vec<String>]) -> Result<()> {
        use parquet::data_type::{ByteArrayType, FloatType};
        let err = write_err(path);
        let mut rg = self.w.next_row_group().map_err(&err)?;
        for c in leading {
            let mut col = rg.next_column().map_err(&err)?.expect("a column per name");
            let v: Vec<ByteArray> = c.iter().map(|s| ByteArray::from(s.as_str())).collect();
            col.typed::<ByteArrayType>().write_batch(&v, None, None).map_err(&err)?;
            col.close().map_err(&err)?;
        }
        let mut values = Vec::with_capacity(m.rows());
        for j in 0..m.cols() {
            values.clear();
            values.extend((0..m.rows()).map(|i| m.row(i)[j]));
            let mut col = rg.next_column().map_err(&err)?.expect("a column per name");
            col.typed::<FloatType>()
                .write_batch(&values, None, None)
                .map_err(&err)?;
            col.close().map_err(&err)?;
        }
        rg.close().map_err(&err)?;
        Ok(())
    }

    /// Writes the footer and hands the writer back.
    ///
    /// # Errors
    /// [`Error::Data`] when the writer fails.
    pub fn finish(self, path: &Path) -> Result<W> {
        self.w.into_inner().map_err(write_err(path))
    }
}

/// Writes `m` (columns `names`, or `c0`, `c1`, … when empty, after text columns `leading`,
/// name and values each) as a Parquet file staged in `out`.
///
/// # Errors
/// As [`ChunkWriter`]; [`Error::Io`] naming the file.
pub fn write_in(
    out: &mut crate::fsutil::Outputs,
    path: &Path,
    m: &Matrix,
    names: &[String],
    leading: &[(String, Vec<String>)],
) -> Result<()> {
    let lead_names: Vec<String> = leading.iter().map(|(n, _)| n.clone()).collect();
    let lead_values: Vec<Vec<String>> = leading.iter().map(|(_, v)| v.clone()).collect();
    let names = crate::data::names_or_numbered(names, m.cols());
    let mut w = ChunkWriter::new(path, Vec::new(), &names, &lead_names)?;
    w.write(path, m, &lead_values)?;
    let bytes = w.finish(path)?;
    out.file(path, |f| f.write_all(&bytes).map_err(crate::fsutil::io_at(path)))
}
