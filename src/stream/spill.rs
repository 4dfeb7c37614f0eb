//! Per-row scores on disk, for exact order statistics over any number of rows.

use super::Source;
use crate::error::{Error, Result};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};

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
    file: &crate::format::ModelFile,
    src: &mut Source,
    metric: crate::score::ScoreMetric,
    rule: crate::score::ThresholdRule,
    data_path: Option<String>,
) -> Result<crate::score::Threshold> {
    rule.validate()?;
    let mut spill = Spill::new()?;
    // A model of windows is calibrated on its steps' scores, the scores `score` gives.
    let mut steps = src.step_scores();
    let mut push = |scores: &[f64]| {
        if scores.iter().any(|s| s.is_nan()) {
            return Err(Error::InvalidData {
                what: "calibration scores".into(),
                message: "a score is NaN (non-finite input?)".into(),
            });
        }
        spill.push(scores)
    };
    while let Some(chunk) = src.next_chunk()? {
        let scores = file.scores(&chunk.x, metric)?;
        match steps.as_mut() {
            Some(acc) => push(&acc.push(&scores))?,
            None => push(&scores)?,
        }
    }
    if let Some(acc) = steps {
        push(&acc.finish())?;
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
