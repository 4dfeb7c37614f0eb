//! Semantic hashing: binary codes packed into `u64` words, Hamming search by popcount,
//! retrieval metrics (mAP, precision@k), and the ITQ baseline (PCA + iterative quantization).
//!
//! The `.hgh` file: the 8 bytes `HGHASH` `\0` `1` (magic and version), then `n` (u64), `bits`
//! (u32) and `words` per row (u32), then `n * words` u64 words, all little-endian. Bit `j` of a
//! row is bit `j % 64` of word `j / 64`; unused high bits are 0.

use crate::error::{Error, Result};
use crate::fsutil::{io_at, write_bytes};
use crate::tensor::Matrix;
use rayon::prelude::*;
use std::io::Read;
use std::path::Path;

const MAGIC: &[u8; 8] = b"HGHASH\x001";

/// Packed binary codes, one row per item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codes {
    /// Bits per code.
    pub bits: usize,
    /// `u64` words per code.
    pub words: usize,
    /// `rows * words` words.
    pub data: Vec<u64>,
}

impl Codes {
    /// The binary codes of rows `x` (in the data's units) under `model`: its code thresholded at
    /// 0.5 for sigmoid codes, at 0 otherwise. Returns the codes and the threshold.
    ///
    /// # Errors
    /// As [`crate::model::Autoencoder::encode`].
    pub fn of<'a>(
        model: &crate::model::Autoencoder,
        x: impl Into<crate::tensor::MatrixRef<'a>>,
    ) -> Result<(Codes, f32)> {
        let threshold = if model.config().code_activation() == crate::activation::Activation::Sigmoid {
            0.5
        } else {
            0.0
        };
        Ok((Codes::pack(&model.encode(x)?, threshold), threshold))
    }

    /// Fraction of the bits that are set.
    pub fn fraction_set(&self) -> f64 {
        let ones: u64 = self.data.iter().map(|w| u64::from(w.count_ones())).sum();
        ones as f64 / (self.rows() * self.bits).max(1) as f64
    }

    /// Packs `x > threshold` of each row.
    pub fn pack(x: &Matrix, threshold: f32) -> Codes {
        let bits = x.cols();
        let words = bits.div_ceil(64).max(1);
        let mut data = vec![0u64; x.rows() * words];
        for (i, row) in data.chunks_exact_mut(words).enumerate() {
            for (j, &v) in x.row(i).iter().enumerate() {
                if v > threshold {
                    row[j / 64] |= 1 << (j % 64);
                }
            }
        }
        Codes { bits, words, data }
    }

    /// Number of codes.
    pub fn rows(&self) -> usize {
        self.data.len() / self.words
    }

    /// The words of code `i`.
    pub fn row(&self, i: usize) -> &[u64] {
        &self.data[i * self.words..(i + 1) * self.words]
    }

    /// Codes `start..end` as their own set.
    pub fn slice(&self, start: usize, end: usize) -> Codes {
        Codes {
            bits: self.bits,
            words: self.words,
            data: self.data[start * self.words..end * self.words].to_vec(),
        }
    }

    /// Bit `j` of code `i`.
    pub fn bit(&self, i: usize, j: usize) -> bool {
        self.row(i)[j / 64] >> (j % 64) & 1 == 1
    }

    /// Writes a `.hgh` file atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes = Vec::with_capacity(24 + 8 * self.data.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(self.rows() as u64).to_le_bytes());
        bytes.extend_from_slice(&(self.bits as u32).to_le_bytes());
        bytes.extend_from_slice(&(self.words as u32).to_le_bytes());
        bytes.extend(self.data.iter().flat_map(|w| w.to_le_bytes()));
        write_bytes(path, &bytes)
    }

    /// Reads a `.hgh` file, checking the header against the file size before allocating.
    ///
    /// # Errors
    /// [`Error::Data`] naming the file for a foreign, truncated or inconsistent file.
    pub fn load(path: &Path) -> Result<Codes> {
        let mut f = std::fs::File::open(path).map_err(io_at(path))?;
        let size = f.metadata().map_err(io_at(path))?.len();
        let mut head = [0u8; 24];
        f.read_exact(&mut head)
            .map_err(|_| Error::data(path, "too short for a .hgh header (24 bytes)"))?;
        if &head[..8] != MAGIC {
            return Err(Error::data(
                path,
                "not a .hgh code file (bad magic; `hourglass hash` writes them)",
            ));
        }
        let n = u64::from_le_bytes(head[8..16].try_into().unwrap());
        let bits = u32::from_le_bytes(head[16..20].try_into().unwrap()) as usize;
        let words = u32::from_le_bytes(head[20..24].try_into().unwrap()) as usize;
        if bits == 0 || words != bits.div_ceil(64) {
            return Err(Error::data(path, format!("header says {bits} bits in {words} words")));
        }
        let expected = n.checked_mul(8 * words as u64).and_then(|b| b.checked_add(24));
        if expected != Some(size) {
            return Err(Error::data(
                path,
                format!("header says {n} codes of {words} words, but the file has {size} bytes"),
            ));
        }
        let mut bytes = Vec::with_capacity(size as usize - 24);
        f.read_to_end(&mut bytes).map_err(io_at(path))?;
        let data: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        // The bits past `bits` in each code's last word are zero in every file `hash` writes;
        // set, they would count in distances and push items out of rankings.
        if !bits.is_multiple_of(64) {
            let unused = !0u64 << (bits % 64);
            if let Some(i) = data.chunks_exact(words).position(|c| c[words - 1] & unused != 0) {
                return Err(Error::data(
                    path,
                    format!("code {i} has bits set past its {bits} bits (the file is corrupt)"),
                ));
            }
        }
        Ok(Codes { bits, words, data })
    }
}

/// Hamming distance between two codes.
#[inline]
pub fn hamming(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// One search hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Row of the database.
    pub item: usize,
    /// Hamming distance to the query.
    pub distance: u32,
}

/// Items of `db` ordered by Hamming distance to `query`, ties by index (a counting sort over
/// the `bits + 1` possible distances): the first `k`, or all within `radius` when given.
pub fn search(db: &Codes, query: &[u64], k: usize, radius: Option<u32>) -> Vec<Hit> {
    let max = radius.map_or(db.bits as u32, |r| r.min(db.bits as u32));
    let mut counts = vec![0usize; db.bits + 2];
    let mut dist = Vec::with_capacity(db.rows());
    for i in 0..db.rows() {
        let d = hamming(db.row(i), query);
        dist.push(d);
        if d <= max {
            counts[d as usize + 1] += 1;
        }
    }
    // Distances up to which k items are reached (all of them for a radius search).
    let limit = match radius {
        Some(_) => max,
        None => {
            let (mut seen, mut d) = (0, 0u32);
            while d < max && seen + counts[d as usize + 1] < k {
                seen += counts[d as usize + 1];
                d += 1;
            }
            d
        }
    };
    for d in 1..counts.len() {
        counts[d] += counts[d - 1];
    }
    let total = counts[limit as usize + 1];
    let mut out = vec![Hit { item: 0, distance: 0 }; total];
    for (i, &d) in dist.iter().enumerate() {
        if d <= limit {
            let slot = &mut counts[d as usize];
            out[*slot] = Hit { item: i, distance: d };
            *slot += 1;
        }
    }
    if radius.is_none() {
        out.truncate(k);
    }
    out
}

/// Retrieval quality of `queries` against `db` with relevance = same label.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Retrieval {
    /// Number of queries.
    pub queries: usize,
    /// Database size.
    pub database: usize,
    /// Mean average precision over the whole ranking (ties by database index).
    pub map: f64,
    /// `k` of the precision below.
    pub k: usize,
    /// Mean precision of the first `k` items.
    pub precision_at_k: f64,
}

/// mAP and precision@k of Hamming ranking; queries without a relevant item count as AP 0.
///
/// # Panics
/// If label counts do not match the code counts.
#[track_caller]
pub fn retrieval(db: &Codes, db_labels: &[u32], queries: &Codes, query_labels: &[u32], k: usize) -> Retrieval {
    assert_eq!(db.rows(), db_labels.len());
    assert_eq!(queries.rows(), query_labels.len());
    let per_query: Vec<(f64, f64)> = (0..queries.rows())
        .into_par_iter()
        .map(|q| {
            let ranked = search(db, queries.row(q), db.rows(), None);
            let label = query_labels[q];
            let relevant = db_labels.iter().filter(|&&l| l == label).count();
            let (mut hits, mut ap, mut p_at_k) = (0usize, 0f64, 0f64);
            for (r, h) in ranked.iter().enumerate() {
                if db_labels[h.item] == label {
                    hits += 1;
                    ap += hits as f64 / (r + 1) as f64;
                }
                if r + 1 == k {
                    p_at_k = hits as f64 / k as f64;
                }
            }
            let ap = if relevant > 0 { ap / relevant as f64 } else { 0.0 };
            (ap, p_at_k)
        })
        .collect();
    let nq = per_query.len().max(1) as f64;
    Retrieval {
        queries: queries.rows(),
        database: db.rows(),
        map: per_query.iter().map(|p| p.0).sum::<f64>() / nq,
        k,
        precision_at_k: per_query.iter().map(|p| p.1).sum::<f64>() / nq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random_codes(n: usize, bits: usize, seed: u64) -> Codes {
        let mut rng = Rng::new(seed);
        let x = Matrix::from_vec(n, bits, (0..n * bits).map(|_| rng.uniform()).collect()).unwrap();
        Codes::pack(&x, 0.5)
    }

    #[test]
    fn pack_save_load_round_trip() {
        for bits in [1, 7, 63, 64, 65, 130] {
            let c = random_codes(9, bits, bits as u64);
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("c.hgh");
            c.save(&p).unwrap();
            assert_eq!(Codes::load(&p).unwrap(), c);
            // Unused high bits stay zero.
            if bits % 64 != 0 {
                assert!(c.data.chunks(c.words).all(|w| w[c.words - 1] >> (bits % 64) == 0));
            }
        }
        let x = Matrix::from_vec(1, 3, vec![0.9, 0.1, 0.6]).unwrap();
        let c = Codes::pack(&x, 0.5);
        assert_eq!(c.data, [0b101]);
        assert!(c.bit(0, 2) && !c.bit(0, 1));
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.hgh");
        random_codes(5, 32, 1).save(&p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        assert!(Codes::load(&p).unwrap_err().to_string().contains("but the file has"));
        std::fs::write(&p, b"not a code file at all, really").unwrap();
        assert!(Codes::load(&p).unwrap_err().to_string().contains("bad magic"));
    }

    #[test]
    fn search_matches_brute_force() {
        let db = random_codes(500, 70, 2);
        let q = random_codes(20, 70, 3);
        for i in 0..q.rows() {
            let mut brute: Vec<Hit> = (0..db.rows())
                .map(|j| Hit {
                    item: j,
                    distance: (0..70).filter(|&b| db.bit(j, b) != q.bit(i, b)).count() as u32,
                })
                .collect();
            brute.sort_by_key(|h| (h.distance, h.item));
            assert_eq!(search(&db, q.row(i), 10, None), brute[..10]);
            let r = brute[3].distance;
            let within: Vec<Hit> = brute.iter().copied().filter(|h| h.distance <= r).collect();
            assert_eq!(search(&db, q.row(i), 0, Some(r)), within);
        }
    }

    #[test]
    fn map_and_precision_of_a_hand_computed_case() {
        // One-bit codes: db = [0, 1, 0, 1], labels [a, b, b, a]; query code 0 with label a.
        // Ranking by distance then index: items 0 (a), 2 (b), 1 (b), 3 (a):
        // AP = (1/1 + 2/4) / 2 = 0.75; precision@2 = 1/2.
        let db = Codes::pack(&Matrix::from_vec(4, 1, vec![0.0, 1.0, 0.0, 1.0]).unwrap(), 0.5);
        let q = Codes::pack(&Matrix::from_vec(1, 1, vec![0.0]).unwrap(), 0.5);
        let r = retrieval(&db, &[0, 1, 1, 0], &q, &[0], 2);
        assert!((r.map - 0.75).abs() < 1e-12);
        assert!((r.precision_at_k - 0.5).abs() < 1e-12);
    }
}
