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
    /// Their labels (the label column), when one was chosen.
    pub labels: Option<Vec<String>>,
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
        let width = file.model.input_dim();
        let rows = chunk_rows(width);
        let source = |inner, total, notes| Source {
            path: path.into(),
            inner,
            tabular: file.tabular.clone(),
            rows,
            width,
            total,
            done: 0,
            notes,
        };
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
        if !load::is_table(path) {
            let loaded = load::for_model(file, path, sel)?;
            let total = loaded.data.x.rows();
            return Ok(source(Inner::Memory(Some(loaded.data)), Some(total), loaded.notes));
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
            (file.tabular.is_none()
                && sel.columns.is_none()
                && sel.drop.is_empty()
                && trained.len() == width
                && trained.iter().all(|n| names.contains(n)))
            .then(|| trained.clone())
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

    /// The next chunk; `None` once every row was handed out.
    ///
    /// # Errors
    /// As the readers and the table encoding, naming the row (line) at fault.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let path = self.path.clone();
        let encode = |tab: &Option<crate::data::tabular::Tabular>, raw: RawTable| -> Result<Chunk> {
            match tab {
                Some(t) => Ok(Chunk {
                    x: t.transform(&path, &raw)?,
                    labels: raw.labels,
                }),
                None => {
                    let t = csv::numeric(&path, raw)?;
                    Ok(Chunk {
                        x: t.matrix,
                        labels: t.labels,
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
                }),
            },
            Inner::Npy(c, hwc) => c.next_rows(self.rows)?.map(|m| Chunk {
                x: match *hwc {
                    Some((h, w, ch)) => crate::data::hwc_to_chw(&m, m.rows(), h, w, ch),
                    None => m,
                },
                labels: None,
            }),
            Inner::Idx(c) => c.next_rows(self.rows)?.map(|x| Chunk { x, labels: None }),
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

/// Per-row scores kept on disk (8 bytes a row, in a temporary file removed on drop) for exact
/// order statistics over any number of rows in bounded memory: [`Spill::kth`] selects by
/// radix over the scores' bit patterns, 16 bits per pass over the file.
pub struct Spill {
    file: BufWriter<std::fs::File>,
    n: usize,
}

impl std::fmt::Debug for Spill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spill").field("n", &self.n).finish_non_exhaustive()
    }
}

/// A key whose unsigned order is `f64::total_cmp`'s order.
fn key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

impl Spill {
    /// An empty spill in the system's temporary folder.
    ///
    /// # Errors
    /// [`Error::Io`] when no temporary file can be made.
    pub fn new() -> Result<Spill> {
        let file = tempfile::tempfile().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        Ok(Spill {
            file: BufWriter::new(file),
            n: 0,
        })
    }

    /// Appends scores.
    ///
    /// # Errors
    /// [`Error::Io`] when the temporary file cannot be written.
    pub fn push(&mut self, scores: &[f64]) -> Result<()> {
        for s in scores {
            self.file
                .write_all(&s.to_le_bytes())
                .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        }
        self.n += scores.len();
        Ok(())
    }

    /// Scores pushed so far.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether no score was pushed.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn each(&mut self, mut f: impl FnMut(f64)) -> Result<()> {
        let tmp = std::env::temp_dir();
        self.file.flush().map_err(|e| Error::io(&tmp, e))?;
        let f_ = self.file.get_mut();
        f_.seek(SeekFrom::Start(0)).map_err(|e| Error::io(&tmp, e))?;
        let mut r = std::io::BufReader::with_capacity(1 << 20, &*f_);
        let mut b = [0u8; 8];
        for _ in 0..self.n {
            r.read_exact(&mut b).map_err(|e| Error::io(&tmp, e))?;
            f(f64::from_le_bytes(b));
        }
        drop(r);
        f_.seek(SeekFrom::End(0)).map_err(|e| Error::io(&tmp, e))?;
        Ok(())
    }

    /// How many scores are strictly above `v`.
    ///
    /// # Errors
    /// [`Error::Io`] reading the file.
    pub fn count_above(&mut self, v: f64) -> Result<usize> {
        let mut n = 0;
        self.each(|s| n += usize::from(s > v))?;
        Ok(n)
    }

    /// The `k`-th smallest score (0-based) in `f64::total_cmp`'s order, exactly.
    ///
    /// # Errors
    /// [`Error::Io`] reading the file; [`Error::InvalidData`] for `k` out of range.
    pub fn kth(&mut self, k: usize) -> Result<f64> {
        if k >= self.n {
            return Err(Error::InvalidData {
                what: "scores".into(),
                message: format!("order statistic {k} of {} scores", self.n),
            });
        }
        let (mut prefix, mut rank) = (0u64, k);
        for pass in 0..4 {
            let shift = 48 - 16 * pass;
            let mask = if pass == 0 { 0 } else { u64::MAX << (64 - 16 * pass) };
            let mut counts = vec![0usize; 1 << 16];
            self.each(|v| {
                let key = key(v);
                if key & mask == prefix {
                    counts[((key >> shift) & 0xffff) as usize] += 1;
                }
            })?;
            let mut bin = 0;
            while rank >= counts[bin] {
                rank -= counts[bin];
                bin += 1;
            }
            prefix |= (bin as u64) << shift;
        }
        let b = if prefix >> 63 == 1 {
            prefix & !(1 << 63)
        } else {
            !prefix
        };
        Ok(f64::from_bits(b))
    }
}

/// [`score::calibrate`](crate::score::calibrate) over a [`Source`]: the same threshold, exactly,
/// from rows read a chunk at a time (their scores spill to disk for the order statistic).
///
/// # Errors
/// As [`Source::next_chunk`] and [`score::threshold`](crate::score::threshold).
pub fn calibrate(
    model: &crate::model::Autoencoder,
    src: &mut Source,
    metric: crate::score::ScoreMetric,
    rule: crate::score::ThresholdRule,
    data_path: Option<String>,
) -> Result<crate::score::Threshold> {
    rule.validate()?;
    let mut spill = Spill::new()?;
    while let Some(chunk) = src.next_chunk()? {
        let scores = crate::score::scores(model, &chunk.x, metric)?;
        if scores.iter().any(|s| s.is_nan()) {
            return Err(Error::InvalidData {
                what: "calibration scores".into(),
                message: "a score is NaN (non-finite input?)".into(),
            });
        }
        spill.push(&scores)?;
    }
    let n = spill.len();
    let value = spill.kth(crate::score::threshold_rank(n, rule))?;
    let flagged = spill.count_above(value)?;
    Ok(crate::score::Threshold {
        metric,
        value,
        rule,
        calibration_rows: n,
        flagged_fraction: flagged as f64 / n as f64,
        data_path,
    })
}

/// Rows of one segment of a training file, read a chunk at a time: a Parquet row group, a
/// stretch of an NPY array, or a whole CSV file (read in order).
enum SegmentReader {
    Parquet {
        chunks: pq::Chunks,
        keep: Vec<usize>,
        first: usize,
    },
    Npy {
        chunks: crate::data::npy::NpyChunks,
        left: usize,
        hwc: Option<(usize, usize, usize)>,
    },
    Csv(CsvChunks),
    Idx(crate::data::idx::IdxChunks),
}

/// Where a training file's segments are and how to read them.
#[derive(Clone, Debug)]
enum Layout {
    /// Row groups: their first rows.
    Parquet { starts: Vec<usize>, sizes: Vec<usize> },
    /// Segments of `segment` rows of an array of `rows` rows.
    Npy { rows: usize, segment: usize },
    /// One segment, read in order.
    Csv,
    /// An IDX array: one segment, read in order.
    Idx,
}

/// Training rows read from a file a chunk at a time, for [`crate::train::fit_stream`]: the
/// numbers `sel` chooses from a CSV or Parquet table, or an NPY array, with a seeded share of
/// them held out for validation, scaled by a scaler fitted on the others in streaming passes
/// (exact: the same as [`Scaler::fit`](crate::data::scale::Scaler::fit) on them in file order).
///
/// Each epoch reads the file's segments (Parquet row groups, 65,536-row stretches of an NPY
/// array; a CSV file is one segment) in an order drawn from the epoch's seed, and shuffles the
/// rows within blocks of about four chunks (64 MiB of values): memory holds a block, not the
/// file. The held-out rows are those whose seeded hash of their row number falls below the
/// validation fraction; at most [`VALID_CAP`] of them are kept to validate on.
pub struct TrainingRows {
    path: PathBuf,
    sel: ColumnSelection,
    layout: Layout,
    names: Vec<String>,
    image_shape: Option<(usize, usize, usize)>,
    total: usize,
    width: usize,
    chunk: usize,
    scaler: crate::data::scale::Scaler,
    /// The table encoding the rows go through (fitted in the first passes), if any.
    tabular: Option<crate::data::tabular::Tabular>,
    held: (u64, u64),
    bce: bool,
    rows: usize,
    // The epoch: segments in order, the one being read, and the block handed out.
    order: Vec<usize>,
    next_segment: usize,
    reader: Option<SegmentReader>,
    rng: crate::rng::Rng,
    block: Vec<f32>,
    taken: usize,
}

impl std::fmt::Debug for TrainingRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainingRows")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// A shard of a file's rows: see [`TrainingRows::shard`].
#[derive(Debug)]
pub struct Shard {
    /// The shard's rows, as in the file (not scaled).
    pub x: Matrix,
    /// The columns' names (none for an NPY array).
    pub names: Vec<String>,
    /// The (height, width, channels) of an NPY array of images.
    pub image_shape: Option<(usize, usize, usize)>,
    /// Rows in the file, in every shard.
    pub total: usize,
    /// The table encoding the rows went through, when one was asked for.
    pub tabular: Option<crate::data::tabular::Tabular>,
    /// What the table encoding's fit has to say.
    pub notes: Vec<String>,
}

/// The most validation rows [`TrainingRows`] keeps in memory.
pub const VALID_CAP: usize = 65_536;

/// What [`TrainingRows::open`] finds: the stream, the validation rows and a sample of the
/// training rows (both scaled), and the fitted scaler.
#[derive(Debug)]
pub struct Training {
    /// The training rows.
    pub rows: TrainingRows,
    /// Held-out rows (scaled), when a validation fraction is asked for.
    pub valid: Option<Matrix>,
    /// The first training rows (scaled), up to [`crate::train::CODE_SAMPLE`].
    pub sample: Matrix,
    /// The scaler fitted on the training rows.
    pub scaler: crate::data::scale::Scaler,
    /// The table encoding fitted on the training rows, when one was asked for.
    pub tabular: Option<crate::data::tabular::Tabular>,
    /// What the table encoding's fit has to say (dropped columns, imputed values, …).
    pub notes: Vec<String>,
    /// Rows held out (all of them, kept or not).
    pub held_out: usize,
}

/// The most distinct values of a column that a streamed table fit counts (without hashing):
/// a categorical column with more must be hashed.
pub const TABLE_CATEGORY_CAP: usize = 65_536;

fn mix(seed: u64, row: u64) -> u64 {
    // SplitMix64 of the seed and the row number.
    let mut z = seed ^ row.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl TrainingRows {
    /// Reads `path` through once (twice for standard scaling) to count the rows, hold out the
    /// validation rows, keep a sample and fit the scaler. `bce`: the loss needs values in
    /// [0, 1] after scaling (checked as the rows are read).
    ///
    /// # Errors
    /// As the readers; [`Error::Data`] for a file without rows, or text where numbers are
    /// expected.
    pub fn open(
        path: &Path,
        sel: &ColumnSelection,
        scaling: crate::data::scale::Scaling,
        valid_fraction: f32,
        seed: u64,
        bce: bool,
    ) -> Result<Training> {
        Self::open_table(path, sel, &Default::default(), scaling, valid_fraction, seed, bce)
    }

    /// [`TrainingRows::open`] through a table encoding when `table` asks for one (categorical
    /// columns, imputation): it is fitted first over the training rows in streaming passes
    /// ([`crate::data::tabular::TabularFit`]: the same encoding [`crate::data::tabular::Tabular::fit`]
    /// would fit in memory; one more pass for medians), over every row of the file (held-out
    /// ones included, as in memory), then every chunk is encoded by it as it is read.
    ///
    /// # Errors
    /// As [`TrainingRows::open`] and the table fit; [`Error::Setting`] for table settings on
    /// an array.
    #[allow(clippy::too_many_arguments)]
    pub fn open_table(
        path: &Path,
        sel: &ColumnSelection,
        table: &crate::data::tabular::TabularOptions,
        scaling: crate::data::scale::Scaling,
        valid_fraction: f32,
        seed: u64,
        bce: bool,
    ) -> Result<Training> {
        let (mut rows, notes) = Self::table_reader(path, sel, table)?;
        let threshold = (f64::from(valid_fraction.clamp(0.0, 1.0)) * u64::MAX as f64) as u64;
        rows.held = (seed, threshold);
        rows.bce = bce;
        rows.rng = crate::rng::Rng::new(seed);
        let width = rows.width;
        let mut fit = crate::data::scale::ScalerFit::new(scaling, width);
        let mut valid = Vec::new();
        let mut total = 0;
        let mut sample = Vec::new();
        let k = crate::train::CODE_SAMPLE;
        for pass in 0..fit.passes().max(1) {
            let mut n = 0;
            rows.for_each_chunk(&mut |first, x| {
                let (train, held) = rows_split(x, first, rows.held);
                if pass == 0 {
                    total += x.rows();
                    for i in &held {
                        if valid.len() < VALID_CAP * width {
                            valid.extend_from_slice(x.row(*i));
                        }
                    }
                    for &i in train.iter().take(k.saturating_sub(sample.len() / width)) {
                        sample.extend_from_slice(x.row(i));
                    }
                }
                n += train.len();
                fit.add(pass, &x.select_rows(&train));
                Ok(())
            })?;
            rows.rows = n;
        }
        if rows.rows == 0 {
            return Err(Error::data(path, "no training rows"));
        }
        let scaler = fit.finish();
        let mut valid = Matrix::from_vec(valid.len() / width, width, valid)?;
        let mut sample = Matrix::from_vec(sample.len() / width, width, sample)?;
        scaler.transform(&mut valid);
        scaler.transform(&mut sample);
        rows.scaler = scaler.clone();
        rows.total = total;
        let held_out = total - rows.rows;
        Ok(Training {
            tabular: rows.tabular.clone(),
            rows,
            valid: (valid_fraction > 0.0 && valid.rows() > 0).then_some(valid),
            sample,
            scaler,
            notes,
            held_out,
        })
    }

    /// Fits the table encoding over the file's rows (see [`TrainingRows::open_table`]); from
    /// then on every chunk is read through it.
    fn fit_table(&mut self, table: &crate::data::tabular::TabularOptions) -> Result<Vec<String>> {
        use crate::data::tabular::{TabularFit, TabularOptions};
        if !matches!(self.layout, Layout::Csv | Layout::Parquet { .. }) {
            return Err(table.not_a_table(&self.path));
        }
        let opts = TabularOptions {
            max_categories: table.max_categories.max(1),
            ..table.clone()
        };
        // With hashing, counting past the category limit decides nothing more.
        let cap = match opts.hash_buckets {
            Some(_) => opts.max_categories.saturating_add(1),
            None => TABLE_CATEGORY_CAP,
        };
        let mut fit = TabularFit::new(&self.path, &self.names, &opts, cap)?;
        self.for_each_raw(&mut |raw| fit.add(raw))?;
        if fit.needs_second_pass() {
            self.for_each_raw(&mut |raw| {
                fit.add_second(raw);
                Ok(())
            })?;
        }
        let (tab, notes) = fit.finish()?;
        self.width = tab.width().ok_or_else(|| Error::TooLarge {
            what: "the encoded table".into(),
            detail: "its feature count overflows".into(),
        })?;
        self.names = tab.feature_names();
        self.chunk = chunk_rows(self.width);
        self.tabular = Some(tab);
        Ok(notes)
    }

    /// Every chunk of a table, as text, in file order.
    fn for_each_raw(&self, f: &mut dyn FnMut(&crate::data::csv::RawTable) -> Result<()>) -> Result<()> {
        for seg in 0..self.segments() {
            let mut r = self.open_segment(seg)?;
            while let Some((_, raw)) = self.next_raw_of(&mut r)? {
                f(&raw)?;
            }
        }
        Ok(())
    }

    /// The next chunk of a table's segment as text, with the row number of its first row.
    fn next_raw_of(&self, r: &mut SegmentReader) -> Result<Option<(usize, crate::data::csv::RawTable)>> {
        match r {
            SegmentReader::Parquet { chunks, keep, first } => {
                let at = *first + chunks.rows_done();
                let Some(values) = chunks.next().transpose()? else {
                    return Ok(None);
                };
                let mut raw = pq::raw_table(chunks.file(), keep, false);
                pq::append_raw(&mut raw, &values, at);
                Ok(Some((at, raw)))
            }
            SegmentReader::Csv(c) => {
                let at = c.rows_done();
                let raw = c.next_raw(self.chunk)?;
                Ok((raw.rows() > 0).then_some((at, raw)))
            }
            SegmentReader::Npy { .. } | SegmentReader::Idx(_) => {
                Err(Error::data(&self.path, "an array has no text to encode"))
            }
        }
    }

    /// Rank `rank`'s shard of `path`'s rows, for a data-parallel run of `ranks` ranks, read a
    /// chunk at a time so that memory holds the shard and one chunk: when the file has at least
    /// as many segments as there are ranks (Parquet row groups, 65,536-row stretches of an NPY
    /// array), segments `rank`, `rank + ranks`, … and nothing else is read; otherwise (and for
    /// CSV and IDX files, read in order) rows `rank`, `rank + ranks`, …. Returns the rows (as in
    /// the file, not scaled), the columns' names (none for an array), the image shape of an
    /// array of images, and the file's row count. When `table` asks for a table encoding, it
    /// is fitted first over the whole file (as [`TrainingRows::open_table`] fits it: every
    /// rank fits the same one), and the shard's rows are encoded by it.
    ///
    /// # Errors
    /// As [`TrainingRows::open_table`].
    pub fn shard(
        path: &Path,
        sel: &ColumnSelection,
        table: &crate::data::tabular::TabularOptions,
        rank: usize,
        ranks: usize,
    ) -> Result<Shard> {
        let (rows, notes) = Self::table_reader(path, sel, table)?;
        let ranks = ranks.max(1);
        let mut keep = Vec::new();
        let segments = rows.segments();
        // Files whose segments can be read on their own (and that say their row count).
        let seekable = match &rows.layout {
            Layout::Parquet { sizes, .. } => Some(sizes.iter().sum()),
            Layout::Npy { rows: n, .. } => Some(*n),
            Layout::Csv | Layout::Idx => None,
        };
        let total = match seekable {
            Some(total) if segments >= ranks => {
                for seg in (rank..segments).step_by(ranks) {
                    let mut r = rows.open_segment(seg)?;
                    while let Some((_, x)) = rows.next_of(&mut r)? {
                        keep.extend_from_slice(x.as_slice());
                    }
                }
                total
            }
            _ => {
                let mut total = 0;
                rows.for_each_chunk(&mut |first, x| {
                    total += x.rows();
                    for i in (0..x.rows()).filter(|i| (first + i) % ranks == rank) {
                        keep.extend_from_slice(x.row(i));
                    }
                    Ok(())
                })?;
                total
            }
        };
        Ok(Shard {
            x: Matrix::from_vec(keep.len() / rows.width.max(1), rows.width, keep)?,
            names: rows.names,
            image_shape: rows.image_shape,
            total,
            tabular: rows.tabular,
            notes,
        })
    }

    /// [`TrainingRows::reader`], with the table encoding `table` asks for (if any) fitted
    /// over the whole file; and the fit's notes.
    fn table_reader(
        path: &Path,
        sel: &ColumnSelection,
        table: &crate::data::tabular::TabularOptions,
    ) -> Result<(TrainingRows, Vec<String>)> {
        table.check()?;
        let mut rows = Self::reader(path, sel)?;
        let notes = if table.asked() {
            rows.fit_table(table)?
        } else {
            Vec::new()
        };
        Ok((rows, notes))
    }

    /// The file's layout and columns, before any row is read.
    fn reader(path: &Path, sel: &ColumnSelection) -> Result<TrainingRows> {
        let sel = ColumnSelection {
            label_column: None,
            ..sel.clone()
        };
        let (layout, names, image_shape) = if load::is_parquet(path) {
            let f = ParquetFile::open(path)?;
            let (keep, _) = f.select(&sel)?;
            let sizes = f.group_rows();
            let starts = sizes
                .iter()
                .scan(0, |s, &n| Some(std::mem::replace(s, *s + n)))
                .collect();
            let names = keep.iter().map(|&j| f.names()[j].clone()).collect();
            (Layout::Parquet { starts, sizes }, names, None)
        } else if is_npy(path) {
            sel.check_csv_only(path)?;
            let c = crate::data::npy::NpyChunks::open(path, true)?;
            let shape = c.shape().to_vec();
            let w = if shape.len() == 1 {
                1
            } else {
                crate::bounds::product(&shape[1..], path.display())?
            };
            let image = match shape[..] {
                [_, h, w] => Some((h, w, 1)),
                [_, h, w, c] => Some((h, w, c)),
                _ => None,
            };
            (
                Layout::Npy {
                    rows: shape[0],
                    segment: 1 << 16,
                },
                vec![String::new(); w],
                image,
            )
        } else if crate::data::is_idx(path) {
            sel.check_csv_only(path)?;
            let c = crate::data::idx::IdxChunks::open(path, true)?;
            (Layout::Idx, vec![String::new(); c.cols()], c.image_shape())
        } else if load::is_table(path) {
            (Layout::Csv, CsvChunks::open(path, &sel, false)?.names().to_vec(), None)
        } else {
            return Err(Error::data(
                path,
                "streamed training reads CSV, Parquet, NPY and IDX files",
            ));
        };
        let width = names.len();
        let names = if image_shape.is_some() || names.iter().all(String::is_empty) {
            Vec::new()
        } else {
            names
        };
        Ok(TrainingRows {
            path: path.into(),
            sel,
            layout,
            names,
            image_shape,
            total: 0,
            width,
            chunk: chunk_rows(width),
            scaler: crate::data::scale::Scaler::default(),
            tabular: None,
            held: (0, 0),
            bce: false,
            rows: 0,
            order: Vec::new(),
            next_segment: 0,
            reader: None,
            rng: crate::rng::Rng::new(0),
            block: Vec::new(),
            taken: 0,
        })
    }

    /// The columns' names (none for an NPY array).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The image shape `(height, width, channels)` of an NPY array of images.
    pub fn image_shape(&self) -> Option<(usize, usize, usize)> {
        self.image_shape
    }

    /// Rows in the file, held out or not.
    pub fn total_rows(&self) -> usize {
        self.total
    }

    fn segments(&self) -> usize {
        match &self.layout {
            Layout::Parquet { sizes, .. } => sizes.len(),
            Layout::Npy { rows, segment } => rows.div_ceil(*segment),
            Layout::Csv | Layout::Idx => 1,
        }
    }

    fn open_segment(&self, seg: usize) -> Result<SegmentReader> {
        let path = &self.path;
        Ok(match &self.layout {
            Layout::Parquet { starts, .. } => {
                let f = ParquetFile::open(path)?;
                let (keep, _) = f.select(&self.sel)?;
                SegmentReader::Parquet {
                    chunks: f.into_group_chunks(&keep, self.chunk, vec![seg]),
                    keep,
                    first: starts[seg],
                }
            }
            Layout::Npy { rows, segment } => {
                let mut chunks = crate::data::npy::NpyChunks::open(path, true)?;
                chunks.seek_row(seg * segment)?;
                let hwc = match chunks.shape()[..] {
                    [_, h, w, c] => Some((h, w, c)),
                    _ => None,
                };
                SegmentReader::Npy {
                    chunks,
                    left: (*rows - seg * segment).min(*segment),
                    hwc,
                }
            }
            Layout::Csv => SegmentReader::Csv(CsvChunks::open(path, &self.sel, false)?),
            Layout::Idx => SegmentReader::Idx(crate::data::idx::IdxChunks::open(path, true)?),
        })
    }

    /// The next chunk of a segment, with the row number of its first row.
    fn next_of(&self, r: &mut SegmentReader) -> Result<Option<(usize, Matrix)>> {
        let path = &self.path;
        if let Some(tab) = &self.tabular {
            return match self.next_raw_of(r)? {
                Some((at, raw)) => Ok(Some((at, tab.transform(path, &raw)?))),
                None => Ok(None),
            };
        }
        match r {
            SegmentReader::Parquet { chunks, keep, first } => {
                let at = *first + chunks.rows_done();
                let Some(values) = chunks.next().transpose()? else {
                    return Ok(None);
                };
                let mut v = Vec::new();
                pq::numbers_into(path, chunks.file().names(), keep, &values, at, &mut v)?;
                Ok(Some((at, Matrix::from_vec(v.len() / keep.len(), keep.len(), v)?)))
            }
            SegmentReader::Npy { chunks, left, hwc } => {
                let at = chunks.rows_done();
                match chunks.next_rows(self.chunk.min(*left))? {
                    Some(m) if *left > 0 => {
                        *left -= m.rows();
                        let m = match *hwc {
                            Some((h, w, c)) => crate::data::hwc_to_chw(&m, m.rows(), h, w, c),
                            None => m,
                        };
                        Ok(Some((at, m)))
                    }
                    _ => Ok(None),
                }
            }
            SegmentReader::Idx(c) => {
                let at = c.rows_done();
                Ok(c.next_rows(self.chunk)?.map(|m| (at, m)))
            }
            SegmentReader::Csv(c) => {
                let at = c.rows_done();
                let raw = c.next_raw(self.chunk)?;
                if raw.rows() == 0 {
                    return Ok(None);
                }
                Ok(Some((at, csv::numeric(path, raw)?.matrix)))
            }
        }
    }

    /// Every chunk of the file, in file order.
    fn for_each_chunk(&self, f: &mut dyn FnMut(usize, &Matrix) -> Result<()>) -> Result<()> {
        for seg in 0..self.segments() {
            let mut r = self.open_segment(seg)?;
            while let Some((first, x)) = self.next_of(&mut r)? {
                f(first, &x)?;
            }
        }
        Ok(())
    }

    /// Fills the block with the next chunks of the epoch (training rows only, scaled,
    /// shuffled); false when the epoch has no rows left.
    fn refill(&mut self) -> Result<bool> {
        self.block.clear();
        self.taken = 0;
        let want = 4 * self.chunk * self.width;
        while self.block.len() < want {
            if self.reader.is_none() {
                let Some(&seg) = self.order.get(self.next_segment) else {
                    break;
                };
                self.next_segment += 1;
                self.reader = Some(self.open_segment(seg)?);
            }
            let mut r = self.reader.take().expect("a segment is open");
            match self.next_of(&mut r)? {
                None => {}
                Some((first, x)) => {
                    let (train, _) = rows_split(&x, first, self.held);
                    let mut t = x.select_rows(&train);
                    self.scaler.transform(&mut t);
                    if self.bce
                        && let Some(bad) = t.as_slice().iter().find(|v| !(0.0..=1.0).contains(*v))
                    {
                        return Err(Error::data(
                            &self.path,
                            format!(
                                "loss bce needs values in [0, 1] after scaling, found {bad}; hint: scale to [0, 1] (minmax) or use the mse loss"
                            ),
                        ));
                    }
                    self.block.extend_from_slice(t.as_slice());
                    self.reader = Some(r);
                }
            }
        }
        let n = self.block.len() / self.width.max(1);
        let mut idx: Vec<usize> = (0..n).collect();
        self.rng.shuffle(&mut idx);
        let mut shuffled = Vec::with_capacity(self.block.len());
        for i in idx {
            shuffled.extend_from_slice(&self.block[i * self.width..(i + 1) * self.width]);
        }
        self.block = shuffled;
        Ok(n > 0)
    }
}

/// The training and held-out rows of a chunk whose first row is `first` (row numbers in the
/// file).
fn rows_split(x: &Matrix, first: usize, (seed, threshold): (u64, u64)) -> (Vec<usize>, Vec<usize>) {
    (0..x.rows()).partition(|&i| threshold == 0 || mix(seed, (first + i) as u64) >= threshold)
}

impl crate::train::RowStream for TrainingRows {
    fn rows(&self) -> usize {
        self.rows
    }

    fn begin_epoch(&mut self, rng: &mut crate::rng::Rng) -> Result<()> {
        self.order = (0..self.segments()).collect();
        rng.shuffle(&mut self.order);
        self.rng = crate::rng::Rng::new(rng.next_u64());
        self.next_segment = 0;
        self.reader = None;
        self.block.clear();
        self.taken = 0;
        Ok(())
    }

    fn next_rows(&mut self, out: &mut [f32]) -> Result<usize> {
        let w = self.width.max(1);
        let mut filled = 0;
        while filled < out.len() / w {
            if self.taken * w >= self.block.len() && !self.refill()? {
                break;
            }
            let n = (out.len() / w - filled).min(self.block.len() / w - self.taken);
            out[filled * w..(filled + n) * w].copy_from_slice(&self.block[self.taken * w..(self.taken + n) * w]);
            self.taken += n;
            filled += n;
        }
        Ok(filled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::scale::{Scaler, Scaling};
    use crate::model::Mlp;
    use crate::score::{ScoreMetric, ThresholdRule};

    #[test]
    fn spilled_order_statistics_are_exact() {
        let mut rng = crate::rng::Rng::new(5);
        let mut v: Vec<f64> = (0..700).map(|_| (rng.uniform() as f64 - 0.3) * 1e3).collect();
        v.extend([
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-310,
            -1e-310,
            5.0,
            5.0,
            5.0,
        ]);
        let mut spill = Spill::new().unwrap();
        spill.push(&v[..300]).unwrap();
        spill.push(&v[300..]).unwrap();
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        for (k, want) in sorted.iter().enumerate() {
            assert_eq!(spill.kth(k).unwrap().to_bits(), want.to_bits(), "k = {k}");
        }
        assert!(spill.kth(v.len()).is_err());
        assert_eq!(spill.count_above(5.0).unwrap(), v.iter().filter(|&&s| s > 5.0).count());
        // The file can still grow after reading.
        spill.push(&[-1e9]).unwrap();
        assert_eq!(spill.len(), v.len() + 1);
        assert_eq!(spill.kth(1).unwrap(), -1e9, "above -inf only");
    }

    fn model() -> ModelFile {
        let mut m = Mlp::new(3, 2).with_hidden(&[4]).config().init(3).unwrap();
        let x = Matrix::from_vec(2, 3, vec![0.0, 1.0, 2.0, 3.0, 5.0, 4.0]).unwrap();
        m.set_scaler(Scaler::fit(Scaling::Standard, &x)).unwrap();
        let mut f = ModelFile::new(m);
        f.provenance.feature_names = Some(vec!["a".into(), "b".into(), "c".into()]);
        f
    }

    fn table(rows: usize) -> String {
        let mut s = String::from("id,c,b,a\n");
        for i in 0..rows {
            let v = i as f32 * 0.37;
            s += &format!("r{i},{},{},{}\n", v.sin(), (v * 0.5).cos(), v % 3.0);
        }
        s
    }

    #[test]
    fn chunks_give_what_the_whole_file_gives() {
        let dir = tempfile::tempdir().unwrap();
        let csv_path = dir.path().join("t.csv");
        std::fs::write(&csv_path, table(1000)).unwrap();
        let file = model();
        let sel = ColumnSelection {
            label_column: Some("id".into()),
            ..Default::default()
        };
        let whole = load::for_model(&file, &csv_path, &sel).unwrap().data;
        let mut src = Source::for_model(&file, &csv_path, &sel).unwrap();
        src.rows = 300; // four chunks, the last one short
        let (mut rows, mut labels, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(c) = src.next_chunk().unwrap() {
            sizes.push(c.x.rows());
            rows.extend_from_slice(c.x.as_slice());
            labels.extend(c.labels.unwrap());
        }
        assert_eq!(sizes, vec![300, 300, 300, 100]);
        assert_eq!(rows, whole.x.as_slice(), "columns by the training names, in chunks");
        assert_eq!(labels, whole.labels.unwrap());

        // The same table as Parquet, through a Sink: the same rows again.
        let pq_path = dir.path().join("t.parquet");
        let names: Vec<String> = ["c", "b", "a"].map(String::from).to_vec();
        let mut sink = Sink::create(&pq_path, &names, &["id".to_string()]).unwrap();
        let raw = csv::read_raw(&csv_path, &ColumnSelection::default()).unwrap();
        let ids: Vec<String> = (0..raw.rows()).map(|i| raw.get(i, 0).to_string()).collect();
        let t = csv::read(
            &csv_path,
            &ColumnSelection {
                drop: vec!["id".into()],
                ..Default::default()
            },
        )
        .unwrap();
        sink.write(&t.matrix, &[ids]).unwrap();
        assert!(!pq_path.exists(), "nothing in place before finish");
        sink.finish().unwrap();
        let mut src = Source::for_model(&file, &pq_path, &sel).unwrap();
        src.rows = 256;
        assert_eq!(src.total_rows(), Some(1000));
        let mut rows = Vec::new();
        while let Some(c) = src.next_chunk().unwrap() {
            rows.extend_from_slice(c.x.as_slice());
        }
        assert_eq!(rows, whole.x.as_slice());

        // Calibrated from chunks, the threshold is the in-memory one.
        let rule = ThresholdRule::Contamination(0.05);
        let mut src = Source::for_model(&file, &pq_path, &sel).unwrap();
        src.rows = 99;
        let streamed = calibrate(&file.model, &mut src, ScoreMetric::Mse, rule, None).unwrap();
        let direct = crate::score::calibrate(&file.model, &whole.x, ScoreMetric::Mse, rule, None).unwrap();
        assert_eq!(streamed, direct);
    }

    fn npy_file(path: &Path, descr: &str, shape: &[usize], data: &[u8]) {
        let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
        let mut h = format!(
            "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({},), }}",
            dims.join(", ")
        );
        while (h.len() + 11) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
        bytes.extend_from_slice(h.as_bytes());
        bytes.extend_from_slice(data);
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn npy_arrays_stream_as_they_load() {
        let dir = tempfile::tempdir().unwrap();
        let f64s = dir.path().join("x.npy");
        let values: Vec<f64> = (0..3000).map(|i| (i as f64 * 0.731).sin()).collect();
        npy_file(
            &f64s,
            "<f8",
            &[1000, 3],
            &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        );
        let images = dir.path().join("im.npy");
        let pixels: Vec<u8> = (0..50 * 12).map(|i| (i * 37 % 256) as u8).collect();
        npy_file(&images, "|u1", &[50, 2, 2, 3], &pixels);
        let wide = ModelFile::new(Mlp::new(12, 2).config().init(1).unwrap());
        for (file, path) in [(model(), &f64s), (wide, &images)] {
            let whole = load::for_model(&file, path, &ColumnSelection::default()).unwrap().data;
            let mut src = Source::for_model(&file, path, &ColumnSelection::default()).unwrap();
            src.rows = 7;
            let mut rows = Vec::new();
            while let Some(c) = src.next_chunk().unwrap() {
                rows.extend_from_slice(c.x.as_slice());
            }
            assert_eq!(rows, whole.x.as_slice(), "{}", path.display());
        }
        // A non-finite value is found with its row, in whichever chunk it is.
        let mut bad = values.clone();
        bad[3 * 700 + 1] = f64::NAN;
        npy_file(
            &f64s,
            "<f8",
            &[1000, 3],
            &bad.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        );
        let mut src = Source::for_model(&model(), &f64s, &ColumnSelection::default()).unwrap();
        src.rows = 64;
        let err = loop {
            match src.next_chunk() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the NaN was not found"),
                Err(e) => break e.to_string(),
            }
        };
        assert!(err.contains("row 701, column 2"), "{err}");
        let sel = ColumnSelection {
            columns: Some(vec!["a".into()]),
            ..Default::default()
        };
        assert!(
            Source::for_model(&model(), &f64s, &sel).is_err(),
            "columns apply to tables"
        );
    }

    #[test]
    fn an_npy_sink_learns_its_row_count_at_the_end_and_an_unfinished_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.npy");
        let names = vec!["x".to_string(), "y".to_string()];
        let mut sink = Sink::create(&path, &names, &[]).unwrap();
        for k in 0..3 {
            let m = Matrix::from_vec(2, 2, vec![k as f32, 1.0, 2.0, -3.5]).unwrap();
            sink.write(&m, &[]).unwrap();
        }
        assert!(sink.write(&Matrix::zeros(1, 3), &[]).is_err());
        sink.finish().unwrap();
        let a = crate::data::npy::read(&path, false).unwrap();
        assert_eq!(a.shape, vec![6, 2]);
        assert_eq!(a.matrix.row(4), &[2.0, 1.0]);
        let other = dir.path().join("p.csv");
        let mut sink = Sink::create(&other, &names, &[]).unwrap();
        sink.write(&Matrix::zeros(1, 2), &[]).unwrap();
        drop(sink);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "only o.npy");
        assert!(Sink::create(&dir.path().join("o.npy"), &names, &["id".into()]).is_err());
        assert!(Sink::create(&dir.path().join("o.txt"), &names, &[]).is_err());
    }

    #[test]
    fn streamed_training_rows_are_every_training_row_once_an_epoch_and_the_scaler_is_exact() {
        use crate::train::RowStream;
        let dir = tempfile::tempdir().unwrap();
        let n = 3000;
        let values: Vec<f64> = (0..n * 3)
            .map(|i| (i as f64 * 0.377).sin() * (1.0 + (i % 7) as f64))
            .collect();
        let npy = dir.path().join("x.npy");
        npy_file(
            &npy,
            "<f8",
            &[n, 3],
            &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        );
        let csv_path = dir.path().join("x.csv");
        let mut text = String::from("a,b,c\n");
        let x = crate::data::load(&npy, &ColumnSelection::default()).unwrap().x;
        for i in 0..n {
            let r = x.row(i);
            text += &format!("{},{},{}\n", r[0], r[1], r[2]);
        }
        std::fs::write(&csv_path, text).unwrap();
        let pq_path = dir.path().join("x.parquet");
        let mut w = pq::ChunkWriter::new(
            &pq_path,
            std::fs::File::create(&pq_path).unwrap(),
            &["a".into(), "b".into(), "c".into()],
            &[],
        )
        .unwrap();
        for part in [0..1000, 1000..1700, 1700..n] {
            let rows: Vec<usize> = part.collect();
            w.write(&pq_path, &x.select_rows(&rows), &[]).unwrap();
        }
        w.finish(&pq_path).unwrap();
        let scaling = crate::data::scale::Scaling::Standard;
        let mut models = Vec::new();
        for path in [&npy, &csv_path, &pq_path] {
            let mut t = TrainingRows::open(path, &ColumnSelection::default(), scaling, 0.2, 9, false).unwrap();
            let (train, held) = rows_split(&x, 0, t.rows.held);
            assert_eq!(
                (t.rows.rows(), t.held_out),
                (train.len(), held.len()),
                "{}",
                path.display()
            );
            assert!(
                (500..700).contains(&held.len()),
                "about a fifth held out: {}",
                held.len()
            );
            let expected = crate::data::scale::Scaler::fit(scaling, &x.select_rows(&train));
            assert_eq!(t.scaler, expected, "the scaler of the training rows, exactly");
            let mut want = x.select_rows(&train);
            expected.transform(&mut want);
            let key = |r: &[f32]| r.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
            let mut want: Vec<Vec<u32>> = (0..want.rows()).map(|i| key(want.row(i))).collect();
            want.sort();
            t.rows.chunk = 256; // blocks of 1,024 rows: several per epoch
            let mut rng = crate::rng::Rng::new(4);
            let mut firsts = Vec::new();
            for _ in 0..2 {
                t.rows.begin_epoch(&mut rng).unwrap();
                let mut got = Vec::new();
                let mut buf = vec![0f32; 100 * 3];
                loop {
                    let k = t.rows.next_rows(&mut buf).unwrap();
                    if k == 0 {
                        break;
                    }
                    got.extend(buf[..k * 3].chunks(3).map(key));
                }
                firsts.push(got[..10].to_vec());
                got.sort();
                assert_eq!(got, want, "{}: each training row once", path.display());
            }
            assert_ne!(firsts[0], firsts[1], "another order each epoch");
            assert_eq!(t.valid.as_ref().unwrap().rows(), held.len());
            // A seed gives the same model, whatever the thread count.
            let mut model = Mlp::new(3, 2).with_hidden(&[8]).config().init(1).unwrap();
            model.set_scaler(t.scaler.clone()).unwrap();
            let cfg = crate::train::TrainConfig {
                epochs: 2,
                batch_size: 64,
                seed: 3,
                ..Default::default()
            };
            let report = crate::with_threads(Some(1), || {
                crate::train::fit_stream(&mut model, &mut t.rows, t.valid.clone(), t.sample.clone(), &cfg, |_| ())
            })
            .unwrap()
            .unwrap();
            assert_eq!(report.train_rows, train.len());
            assert!(report.history[1].valid_loss.is_some());
            models.push((path.clone(), model));
        }
        // The same rows from NPY and Parquet segments of other sizes train other orders, but
        // each file trains the same model again at two threads.
        let (path, one) = &models[2];
        let mut t = TrainingRows::open(path, &ColumnSelection::default(), scaling, 0.2, 9, false).unwrap();
        t.rows.chunk = 256;
        let mut two = Mlp::new(3, 2).with_hidden(&[8]).config().init(1).unwrap();
        two.set_scaler(t.scaler.clone()).unwrap();
        let cfg = crate::train::TrainConfig {
            epochs: 2,
            batch_size: 64,
            seed: 3,
            ..Default::default()
        };
        crate::with_threads(Some(2), || {
            crate::train::fit_stream(&mut two, &mut t.rows, t.valid.clone(), t.sample.clone(), &cfg, |_| ())
        })
        .unwrap()
        .unwrap();
        assert_eq!(one.layers, two.layers);
    }

    /// A rank's shard: its row groups when there are enough, else every N-th row; the
    /// shards together are every row once. IDX files stream and shard as they load.
    #[test]
    fn shards_split_the_rows_and_idx_files_stream() {
        let dir = tempfile::tempdir().unwrap();
        let n = 300;
        let x = Matrix::from_vec(n, 2, (0..2 * n).map(|i| i as f32).collect()).unwrap();
        let pq_path = dir.path().join("x.parquet");
        let mut w = pq::ChunkWriter::new(
            &pq_path,
            std::fs::File::create(&pq_path).unwrap(),
            &["a".into(), "b".into()],
            &[],
        )
        .unwrap();
        for part in [0..100, 100..170, 170..n] {
            w.write(&pq_path, &x.select_rows(&part.collect::<Vec<_>>()), &[])
                .unwrap();
        }
        w.finish(&pq_path).unwrap();
        let sel = ColumnSelection::default();
        let rows = |m: &Matrix| (0..m.rows()).map(|i| m.row(i)[0] as usize / 2).collect::<Vec<_>>();
        // Three row groups, two ranks: groups 0 and 2, then group 1.
        let s0 = TrainingRows::shard(&pq_path, &sel, &Default::default(), 0, 2).unwrap();
        let s1 = TrainingRows::shard(&pq_path, &sel, &Default::default(), 1, 2).unwrap();
        assert_eq!(rows(&s0.x), (0..100).chain(170..n).collect::<Vec<_>>());
        assert_eq!(rows(&s1.x), (100..170).collect::<Vec<_>>());
        assert_eq!(
            (s0.total, s0.names.clone()),
            (n, vec!["a".to_string(), "b".to_string()])
        );
        // Four ranks, three groups: every fourth row.
        let s3 = TrainingRows::shard(&pq_path, &sel, &Default::default(), 3, 4).unwrap();
        assert_eq!(rows(&s3.x), (3..n).step_by(4).collect::<Vec<_>>());
        // An IDX array of 300 images of 2 x 3: chunks as the whole file, shards by rows.
        let idx = dir.path().join("x.idx");
        let bytes: Vec<u8> = (0..n * 6).map(|i| (i % 251) as u8).collect();
        crate::data::idx::write_u8(&idx, &[n, 2, 3], &bytes).unwrap();
        let whole = crate::data::load(&idx, &sel).unwrap().x;
        let file = ModelFile {
            model: Mlp::new(6, 2).config().init(1).unwrap(),
            provenance: Default::default(),
            anomaly: None,
            tabular: None,
        };
        let mut src = Source::for_model(&file, &idx, &sel).unwrap();
        src.rows = 128;
        let mut got = Vec::new();
        while let Some(c) = src.next_chunk().unwrap() {
            assert!(c.x.rows() <= 128);
            got.extend_from_slice(c.x.as_slice());
        }
        assert_eq!(got, whole.as_slice());
        let s = TrainingRows::shard(&idx, &sel, &Default::default(), 1, 3).unwrap();
        assert_eq!(s.x, whole.select_rows(&(1..n).step_by(3).collect::<Vec<_>>()));
        assert_eq!(s.image_shape, Some((2, 3, 1)));
        // A truncated IDX file is refused when the chunk reaches the missing bytes.
        std::fs::write(&idx, &std::fs::read(&idx).unwrap()[..16 + 6 * 200]).unwrap();
        let mut src = Source::for_model(&file, &idx, &sel).unwrap();
        src.rows = 128;
        assert!(src.next_chunk().unwrap().is_some());
        let e = src.next_chunk().unwrap_err().to_string();
        assert!(e.contains("the file has 1200"), "{e}");
    }
}
