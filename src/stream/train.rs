//! Training rows read from a file a chunk at a time (and a rank's shard of them).

use super::*;

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
    pub(super) chunk: usize,
    scaler: crate::data::scale::Scaler,
    /// The table encoding the rows go through (fitted in the first passes), if any.
    tabular: Option<crate::data::tabular::Tabular>,
    pub(super) held: (u64, u64),
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
    /// validation rows, keep a sample and fit the scaler. (A loss whose targets lie in [0, 1]
    /// checks each batch as training reads it.)
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
    ) -> Result<Training> {
        Self::open_table(path, sel, &Default::default(), scaling, valid_fraction, seed)
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
    ) -> Result<Training> {
        let (mut rows, notes) = Self::table_reader(path, sel, table)?;
        let threshold = (f64::from(valid_fraction.clamp(0.0, 1.0)) * u64::MAX as f64) as u64;
        rows.held = (seed, threshold);
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
        if let Some(t) = &table.text {
            return Err(Error::setting(
                "text",
                t.unit,
                "a text is read whole and cut into windows: train it in memory",
            ));
        }
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
pub(super) fn rows_split(x: &Matrix, first: usize, (seed, threshold): (u64, u64)) -> (Vec<usize>, Vec<usize>) {
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
