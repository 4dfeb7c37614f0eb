//! Data a chunk of rows at a time, for the commands that use a trained model row by row
//! (`encode`, `reconstruct`, `score`, `calibrate`): a [`Source`] reads a CSV or Parquet table
//! or an NPY array in chunks (a Parquet file decodes only the model's columns), a [`Sink`]
//! writes each chunk's
//! results as they come (CSV, NPY or Parquet; staged beside the destination and renamed into
//! place only when everything is written), and [`Spill`] keeps per-row scores on disk for the
//! order statistics a summary or a threshold needs. Memory stays O(chunk × width + model),
//! whatever the number of rows.
//!
//! Rows give the same results in chunks as in one piece: the engine computes each row alone.

//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Source`] and [`Sink`]: chunked reading and writing |
//! | `spill.rs` | [`Spill`] and the streamed [`calibrate`] |
//! | `train.rs` | [`TrainingRows`]: training rows a chunk at a time, sharded for data-parallel ranks |

mod spill;
mod train;

pub use spill::{Spill, calibrate};
pub use train::{Shard, TABLE_CATEGORY_CAP, Training, TrainingRows, VALID_CAP};

use crate::data::Dataset;
use crate::data::csv::{self, ColumnSelection, CsvChunks, RawTable};
use crate::data::parquet::{self as pq, ParquetFile};
use crate::error::{Error, Result};
use crate::format::ModelFile;
use crate::fsutil::{Staged, io_at};
use crate::load;
use crate::tensor::Matrix;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Rows per chunk for rows of `width` values: about 16 MiB of f32 values, at least 256 rows.
pub fn chunk_rows(width: usize) -> usize {
    ((16 << 20) / (4 * width.max(1))).clamp(256, 1 << 16)
}

/// A chunk of rows, ready for the model.
#[derive(Clone, Debug)]
pub struct Chunk {
    /// The rows, encoded as the model reads them.
    pub x: Matrix,
    /// Their labels (the label column), when one was chosen; for a model of windows, each
    /// window's last step's.
    pub labels: Option<Vec<String>>,
    /// For a model of windows, the labels of the series' steps read for this chunk (the
    /// windows end among them), when a label column was chosen.
    pub step_labels: Option<Vec<String>>,
}

enum Inner {
    Csv(CsvChunks),
    /// An NPY array, and the (height, width, channels) of image rows stored channel-last.
    Npy(crate::data::npy::NpyChunks, Option<(usize, usize, usize)>),
    /// An IDX array (raw or gzipped), read in order.
    Idx(crate::data::idx::IdxChunks),
    Parquet(pq::Chunks, Vec<usize>),
    Memory(Option<Dataset>),
}

/// Whether `path` is a file the chunked readers take: a CSV or Parquet table, or an NPY
/// array (the files [`TrainingRows`] streams and shards).
pub fn is_chunked(path: &Path) -> bool {
    load::is_table(path) || is_npy(path) || crate::data::is_idx(path)
}

/// Whether `path` starts as an NPY file.
fn is_npy(path: &Path) -> bool {
    let mut head = [0u8; 6];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"\x93NUMPY"
}

/// The rows of a data file for a trained model, a chunk at a time (see the module).
pub struct Source {
    path: PathBuf,
    inner: Inner,
    tabular: Option<crate::data::tabular::Tabular>,
    rows: usize,
    width: usize,
    total: Option<usize>,
    done: usize,
    notes: Vec<String>,
    /// A model of windows: the series' windows, made as its steps come.
    windower: Option<crate::data::window::Windower>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("path", &self.path)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Source {
    /// Rows of `path` for the model in `file`, read as [`load::for_model`] reads them (a
    /// table through its stored encoding, the training columns by name, `sel`'s choices).
    /// CSV and Parquet tables and NPY arrays stream; other files (IDX, image folders) are read
    /// whole and handed out in one chunk.
    ///
    /// # Errors
    /// As the readers; [`Error::Data`] when the chosen columns do not number the model's
    /// inputs.
    pub fn for_model(file: &ModelFile, path: &Path, sel: &ColumnSelection) -> Result<Source> {
        // A model of windows reads the series' steps, `width` channels each, and makes every
        // window of them (stride 1); a chunk holds at least one window's steps.
        let width = file.data_width();
        let length = file.windows.map_or(1, |w| w.length);
        let rows = chunk_rows(file.model.input_dim()).max(length);
        let windower = file
            .windows
            .map(|w| crate::data::window::Windower::new(w.length, width));
        let source = |inner, total, notes| Source {
            path: path.into(),
            inner,
            tabular: file.tabular.clone(),
            rows,
            width,
            total,
            done: 0,
            notes,
            windower: windower.clone(),
        };
        // A text is read whole and cut into its tokens.
        let text = file.tabular.as_ref().is_some_and(|t| t.text.is_some());
        if text || !(load::is_table(path) || is_npy(path) || crate::data::is_idx(path)) {
            let loaded = load::steps_for_model(file, path, sel)?;
            let total = loaded.data.x.rows();
            return Ok(source(Inner::Memory(Some(loaded.data)), Some(total), loaded.notes));
        }
        if is_npy(path) {
            sel.check_csv_only(path)?;
            let c = crate::data::npy::NpyChunks::open(path, true)?;
            let shape = c.shape().to_vec();
            let cols = if shape.len() == 1 {
                1
            } else {
                crate::bounds::product(&shape[1..], path.display())?
            };
            if cols != width {
                return Err(Error::data(
                    path,
                    format!("has {cols} feature columns, the model expects {width}"),
                ));
            }
            let hwc = match shape[..] {
                [_, h, w, c] => Some((h, w, c)),
                _ => None,
            };
            return Ok(source(Inner::Npy(c, hwc), Some(shape[0]), Vec::new()));
        }
        if crate::data::is_idx(path) {
            sel.check_csv_only(path)?;
            let c = crate::data::idx::IdxChunks::open(path, true)?;
            if c.cols() != width {
                return Err(Error::data(
                    path,
                    format!("has {} feature columns, the model expects {width}", c.cols()),
                ));
            }
            let total = c.rows();
            return Ok(source(Inner::Idx(c), Some(total), Vec::new()));
        }
        let sel = match &file.tabular {
            Some(tab) => ColumnSelection {
                columns: Some(tab.input_names()),
                drop: Vec::new(),
                label_column: sel.label_column.clone(),
            },
            None => sel.clone(),
        };
        let named = |names: &[String]| {
            let trained = file.provenance.feature_names.as_ref()?;
            let trained = match &file.windows {
                Some(w) => w.channel_names(trained)?,
                None => trained.clone(),
            };
            (file.tabular.is_none()
                && sel.columns.is_none()
                && sel.drop.is_empty()
                && trained.len() == width
                && trained.iter().all(|n| names.contains(n)))
            .then_some(trained)
        };
        let (inner, total, chosen) = if load::is_parquet(path) {
            let pf = ParquetFile::open(path)?;
            let mut sel = sel.clone();
            if let Some(n) = named(pf.names()) {
                sel.columns = Some(n);
            }
            let (keep, label) = pf.select(&sel)?;
            let total = pf.rows();
            let all: Vec<usize> = keep.iter().copied().chain(label).collect();
            let chosen = keep.len();
            (Inner::Parquet(pf.into_chunks(&all, rows), keep), Some(total), chosen)
        } else {
            let mut c = CsvChunks::open(path, &sel, false)?;
            if let Some(n) = c.header_names().and_then(|h| named(&h)) {
                let sel = ColumnSelection {
                    columns: Some(n),
                    ..sel.clone()
                };
                c = CsvChunks::open(path, &sel, false)?;
            }
            let chosen = c.names().len();
            (Inner::Csv(c), None, chosen)
        };
        if file.tabular.is_none() && chosen != width {
            return Err(Error::data(
                path,
                format!("has {chosen} feature columns, the model expects {width}"),
            ));
        }
        Ok(source(inner, total, Vec::new()))
    }

    /// For a model of windows, an empty per-step accumulator for the scores of this source's
    /// windows (see [`crate::data::window::StepScores`]).
    pub fn step_scores(&self) -> Option<crate::data::window::StepScores> {
        self.windower
            .as_ref()
            .map(|w| crate::data::window::StepScores::new(w.length()))
    }

    /// What the person who asked should know (e.g. images resized on reading).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The number of rows, when the file says so before it is read (Parquet, NPY, IDX,
    /// images; not CSV).
    pub fn total_rows(&self) -> Option<usize> {
        self.total
    }

    /// Rows handed out so far.
    pub fn rows_done(&self) -> usize {
        self.done
    }

    /// The next chunk of the file's rows; `None` once every row was handed out.
    fn next_steps(&mut self) -> Result<Option<Chunk>> {
        let path = self.path.clone();
        let encode = |tab: &Option<crate::data::tabular::Tabular>, raw: RawTable| -> Result<Chunk> {
            match tab {
                Some(t) => Ok(Chunk {
                    x: t.transform(&path, &raw)?,
                    labels: raw.labels,
                    step_labels: None,
                }),
                None => {
                    let t = csv::numeric(&path, raw)?;
                    Ok(Chunk {
                        x: t.matrix,
                        labels: t.labels,
                        step_labels: None,
                    })
                }
            }
        };
        let chunk = match &mut self.inner {
            Inner::Memory(data) => match data.take() {
                None => None,
                Some(d) => Some(Chunk {
                    x: d.x,
                    labels: d.labels,
                    step_labels: None,
                }),
            },
            Inner::Npy(c, hwc) => c.next_rows(self.rows)?.map(|m| Chunk {
                x: match *hwc {
                    Some((h, w, ch)) => crate::data::hwc_to_chw(&m, m.rows(), h, w, ch),
                    None => m,
                },
                labels: None,
                step_labels: None,
            }),
            Inner::Idx(c) => c.next_rows(self.rows)?.map(|x| Chunk {
                x,
                labels: None,
                step_labels: None,
            }),
            Inner::Csv(c) => {
                let raw = c.next_raw(self.rows)?;
                if raw.rows() == 0 {
                    None
                } else {
                    Some(encode(&self.tabular, raw)?)
                }
            }
            Inner::Parquet(c, keep) => {
                let first = c.rows_done();
                match c.next().transpose()? {
                    None => None,
                    Some(values) => {
                        let cols = keep.len();
                        let labels = (values.len() > cols).then(|| pq::fields(&values[cols]));
                        if self.tabular.is_some() {
                            let mut raw = pq::raw_table(c.file(), keep, labels.is_some());
                            pq::append_raw(&mut raw, &values, first);
                            Some(encode(&self.tabular, raw)?)
                        } else {
                            let mut v = Vec::new();
                            pq::numbers_into(&path, c.file().names(), keep, &values[..cols], first, &mut v)?;
                            let rows = v.len() / cols;
                            Some(Chunk {
                                x: Matrix::from_vec(rows, cols, v)?,
                                labels,
                                step_labels: None,
                            })
                        }
                    }
                }
            }
        };
        if let Some(c) = &chunk {
            if c.x.cols() != self.width {
                return Err(Error::data(
                    &path,
                    format!("has {} feature columns, the model expects {}", c.x.cols(), self.width),
                ));
            }
            self.done += c.x.rows();
        }
        if chunk.is_none() && self.done == 0 {
            return Err(Error::data(&path, "no rows"));
        }
        Ok(chunk)
    }

    /// The next chunk; `None` once every row was handed out. For a model of windows, the
    /// windows that end among the next steps read (at least one).
    ///
    /// # Errors
    /// As the readers and the table encoding, naming the row (line) at fault; for a model of
    /// windows, [`Error::Data`] when the series is shorter than one window.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        if self.windower.is_none() {
            return self.next_steps();
        }
        let mut step_labels: Option<Vec<String>> = None;
        loop {
            let Some(c) = self.next_steps()? else {
                let length = self.windower.as_ref().map_or(1, crate::data::window::Windower::length);
                if self.done < length {
                    return Err(Error::data(
                        &self.path,
                        format!("has {} rows (time steps); a window needs at least {length}", self.done),
                    ));
                }
                return Ok(None);
            };
            let x = self.windower.as_mut().expect("a model of windows").push(&c.x);
            if let Some(l) = c.labels.as_ref() {
                step_labels.get_or_insert_default().extend_from_slice(l);
            }
            if x.rows() == 0 {
                // The first steps of a series, still shorter than a window.
                continue;
            }
            let labels = step_labels.as_ref().map(|l| l[l.len() - x.rows()..].to_vec());
            return Ok(Some(Chunk { x, labels, step_labels }));
        }
    }
}

enum Writer {
    Csv(::csv::Writer<BufWriter<std::fs::File>>),
    Npy(BufWriter<std::fs::File>),
    Parquet(pq::ChunkWriter<std::fs::File>),
}

/// An output written a chunk at a time (see the module): `.csv`, `.npy` or `.parquet`.
pub struct Sink {
    dest: PathBuf,
    /// The temporary file renamed into place at the end; `None` for a device or pipe, written
    /// directly (CSV only).
    staged: Option<Staged>,
    writer: Option<Writer>,
    names: Vec<String>,
    leading: Vec<String>,
    rows: usize,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("dest", &self.dest)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// The alignment of an NPY header written before the row count is known: one 128-byte header
/// holds any count (at most 111 bytes before padding).
const NPY_ALIGN: usize = 128;

impl Sink {
    /// An output at `path` of numeric columns `names`, after text columns `leading` (ids,
    /// labels passed through; not in an NPY file). A device or pipe (`/dev/stdout`) gets CSV,
    /// written as it comes.
    ///
    /// # Errors
    /// [`Error::Config`] for another extension or text columns in an NPY file; [`Error::Io`]
    /// naming the file.
    pub fn create(path: &Path, names: &[String], leading: &[String]) -> Result<Sink> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let special = crate::fsutil::is_special(path);
        let kind = match ext.as_deref().filter(|_| !special).or(special.then_some("csv")) {
            Some(k @ ("csv" | "npy" | "parquet" | "pq")) => k.to_string(),
            _ => {
                return Err(Error::Config(format!(
                    "{}: output must end in .csv, .npy or .parquet",
                    path.display()
                )));
            }
        };
        if kind == "npy" && !leading.is_empty() {
            return Err(Error::Config(format!(
                "{}: passed-through columns need a .csv or .parquet output",
                path.display()
            )));
        }
        let io = io_at(path);
        let (staged, file) = if special {
            (None, std::fs::OpenOptions::new().write(true).open(path).map_err(&io)?)
        } else {
            let mut staged = Staged::new(path)?;
            let file = staged.file().try_clone().map_err(&io)?;
            (Some(staged), file)
        };
        let writer = match kind.as_str() {
            "csv" => {
                let mut w = ::csv::Writer::from_writer(BufWriter::new(file));
                let header: Vec<&str> = leading.iter().chain(names).map(String::as_str).collect();
                w.write_record(&header).map_err(|e| Error::data(path, e.to_string()))?;
                Writer::Csv(w)
            }
            "npy" => {
                let mut w = BufWriter::new(file);
                w.write_all(&crate::data::npy::header(0, names.len(), NPY_ALIGN))
                    .map_err(&io)?;
                Writer::Npy(w)
            }
            _ => Writer::Parquet(pq::ChunkWriter::new(path, file, names, leading)?),
        };
        Ok(Sink {
            dest: path.into(),
            staged,
            writer: Some(writer),
            names: names.to_vec(),
            leading: leading.to_vec(),
            rows: 0,
        })
    }

    /// Appends rows `m` (one column per name) with their text columns (one vector per
    /// leading column).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file; [`Error::Config`] for rows of another width.
    pub fn write(&mut self, m: &Matrix, leading: &[Vec<String>]) -> Result<()> {
        let path = self.dest.clone();
        if m.cols() != self.names.len() || leading.len() != self.leading.len() {
            return Err(Error::Config(format!(
                "{}: rows of {} values and {} text columns for an output of {} and {}",
                path.display(),
                m.cols(),
                leading.len(),
                self.names.len(),
                self.leading.len()
            )));
        }
        let io = io_at(&path);
        match self.writer.as_mut().expect("not finished") {
            Writer::Csv(w) => {
                let mut rec = Vec::with_capacity(self.leading.len() + m.cols());
                for i in 0..m.rows() {
                    rec.clear();
                    rec.extend(leading.iter().map(|c| c[i].clone()));
                    rec.extend(m.row(i).iter().map(f32::to_string));
                    w.write_record(&rec).map_err(|e| Error::data(&path, e.to_string()))?;
                }
            }
            Writer::Npy(w) => {
                let mut buf = Vec::with_capacity(m.as_slice().len() * 4);
                for v in m.as_slice() {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
                w.write_all(&buf).map_err(&io)?;
            }
            Writer::Parquet(w) => w.write(&path, m, leading)?,
        }
        self.rows += m.rows();
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Finishes the file (an NPY header gets its row count, a Parquet file its footer) and
    /// renames it into place.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn finish(mut self) -> Result<()> {
        let path = self.dest.clone();
        let io = io_at(&path);
        match self.writer.take().expect("not finished") {
            Writer::Csv(w) => {
                w.into_inner()
                    .map_err(|e| Error::io(&path, std::io::Error::other(e.to_string())))?
                    .flush()
                    .map_err(&io)?;
            }
            Writer::Npy(w) => {
                w.into_inner().map_err(|e| Error::io(&path, e.into_error()))?;
                let f = self.staged.as_mut().expect("an NPY file is staged").file();
                f.seek(SeekFrom::Start(0)).map_err(&io)?;
                f.write_all(&crate::data::npy::header(self.rows, self.names.len(), NPY_ALIGN))
                    .map_err(&io)?;
            }
            Writer::Parquet(w) => {
                w.finish(&path)?;
            }
        }
        match self.staged {
            Some(s) => s.commit(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
