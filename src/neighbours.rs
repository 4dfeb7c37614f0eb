//! The code neighbourhood: a score that adds to the reconstruction error how isolated a row's
//! code is among the training rows' codes: its local outlier factor (LOF, `mse+lof`) or its
//! distance to the k-th nearest training code (`mse+knn`).
//!
//! The reconstruction error misses anomalies that the model reconstructs well (a digit that
//! resembles the training digit stroke by stroke, a tight cluster of unusual rows); their codes
//! still land away from the training codes' neighbourhoods. [`CodeNeighbours::fit`] keeps the
//! codes of (up to [`MAX_ROWS`] of) the training rows with each one's k-distance and local
//! reachability density (Breunig et al. 2000), and the median and interquartile range of the
//! training rows' error, LOF and k-th neighbour distance; [`CodeNeighbours::scores`] gives each
//! row `(mse − median) / IQR + (part − median) / IQR`, both parts in units of their training
//! spread (higher = more anomalous). Which part a file scores by unless asked is
//! [`Part::for_widths`]: the distance where the code keeps at least half the input's width
//! (tables), the LOF where it compresses more (images), each measured better there. Reachability distances are floored at [`FLOOR`] times the median
//! positive k-distance: a table with repeated rows (integer or binary columns) has codes with
//! k-distance 0, whose density would otherwise be 10¹⁰ and make the LOF of every normal row
//! next to them huge. Neighbours are found exactly (all pairs, Euclidean distance in code
//! space, the squared distances from one GEMM per fixed block of rows); results do not depend
//! on the thread count.
//! Measured on one-class MNIST and the tables of `bench/anomaly` (BENCHMARKS.md).

use crate::error::{Error, Result};
use crate::kernels;
use crate::model::Autoencoder;
use crate::score;
use crate::tensor::{Matrix, MatrixRef};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// At most this many training rows are kept as the reference (evenly spaced over the training
/// rows when there are more): 10,000 codes of 32 values are 1.3 MB in the model file, and a
/// row's score reads each of them once.
pub const MAX_ROWS: usize = 10_000;

/// The neighbours a LOF looks at by default: 10 measured best of 10, 20 and 50 on one-class
/// MNIST (BENCHMARKS.md).
pub const DEFAULT_K: usize = 10;

/// The reachability floor as a fraction of the reference rows' median positive k-distance: 0.5
/// measured best of 0, 0.5, 1 and 2 over the tables and one-class MNIST of `bench/anomaly`
/// (BENCHMARKS.md; breast-cancer semi-supervised ROC-AUC 0.830 → 0.982).
pub const FLOOR: f64 = 0.5;

/// The neighbour part of the score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// The code's local outlier factor among the training codes (`mse+lof`).
    #[default]
    Lof,
    /// The code's distance to its k-th nearest training code (`mse+knn`).
    Distance,
}

impl Part {
    /// The part a model of `inputs` features and a code of `code` scores by: the distance
    /// where the code is at least half the input's width, the LOF otherwise. On the tables of
    /// `bench/anomaly` (code three quarters of the width) the distance gives contaminated data
    /// a mean ROC-AUC of 0.724 against the LOF's 0.707; on one-class MNIST (a code of 32 for
    /// 784 pixels: distances in code space stretched unevenly) the LOF gives 0.972 against
    /// 0.926–0.953 (BENCHMARKS.md).
    pub fn for_widths(inputs: usize, code: usize) -> Part {
        if 2 * code >= inputs { Part::Distance } else { Part::Lof }
    }

    /// The part a score metric adds to the error (`mse+lof`, `mse+knn`), `None` for a metric
    /// without a neighbourhood.
    pub fn of(metric: score::ScoreMetric) -> Option<Part> {
        match metric {
            score::ScoreMetric::MseLof => Some(Part::Lof),
            score::ScoreMetric::MseKnn => Some(Part::Distance),
            _ => None,
        }
    }

    /// The score metric that adds this part to the error.
    pub fn metric(self) -> score::ScoreMetric {
        match self {
            Part::Lof => score::ScoreMetric::MseLof,
            Part::Distance => score::ScoreMetric::MseKnn,
        }
    }
}

/// A location and a spread that put a score in units of its training spread.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Robust {
    /// The training scores' median.
    pub median: f64,
    /// Their interquartile range (at least 1e-12).
    pub iqr: f64,
}

impl Robust {
    /// The median and interquartile range of `s` (not empty, no NaN).
    fn of(s: &[f64]) -> Robust {
        let mut v = s.to_vec();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let pos = p * (v.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        };
        Robust {
            median: q(0.5),
            iqr: (q(0.75) - q(0.25)).max(1e-12),
        }
    }

    fn apply(self, s: f64) -> f64 {
        (s - self.median) / self.iqr
    }
}

/// What a model file stores of its code neighbourhood besides the tensors (metadata key
/// `neighbours`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeighbourSettings {
    /// Neighbours per LOF.
    pub k: usize,
    /// Reference rows kept.
    pub rows: usize,
    /// The training rows' mean squared errors, as located and spread.
    pub error: Robust,
    /// The reference rows' LOFs (each among the others), as located and spread.
    pub lof: Robust,
    /// The reachability floor ([`FLOOR`] × the median positive k-distance; 0 in files from
    /// before it), already folded into the stored k-distances.
    #[serde(default)]
    pub floor: f32,
    /// The reference rows' distances to their k-th nearest other reference row (not floored),
    /// as located and spread (`None` in files from before `mse+knn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<Robust>,
    /// The part the file scores by unless asked ([`Part::for_widths`] at fit; LOF in files
    /// from before the choice).
    #[serde(default)]
    pub part: Part,
}

/// The training rows' codes and their neighbourhoods, stored in the model file.
#[derive(Clone, Debug, PartialEq)]
pub struct CodeNeighbours {
    /// k, the reference size and the two parts' training spread.
    pub settings: NeighbourSettings,
    /// The reference rows' codes (rows × code width).
    pub codes: Matrix,
    /// Each reference row's distance to its k-th nearest other reference row, at least the
    /// floor (so a reachability distance `max(d, kdist[o])` is floored too).
    pub kdist: Vec<f32>,
    /// Each reference row's local reachability density.
    pub lrd: Vec<f32>,
}

/// Query rows per block of the neighbour search: one GEMM of the block's codes against every
/// reference code (a block's distances to 10,000 reference rows are 10 MB).
const QUERY_BLOCK: usize = 256;

/// The `k` nearest reference rows (`codes`) of every row of `queries`, indices and distances,
/// nearest first; with `own` the queries are the reference itself and each row skips itself.
///
/// Squared distances come from one GEMM per block of [`QUERY_BLOCK`] rows, `|q|² − 2 q·r + |r|²`
/// (clamped at 0), the form the ONNX export computes; blocks are fixed by the row count and
/// run in parallel, each sequentially, so the result does not depend on the thread count.
fn nearest(codes: &Matrix, queries: &Matrix, k: usize, own: bool) -> Vec<Vec<(f32, usize)>> {
    let (n, c) = (codes.rows(), codes.cols());
    let squared_norm = |v: &[f32]| -> f32 { v.iter().map(|a| a * a).sum() };
    let rr: Vec<f32> = (0..n).map(|j| squared_norm(codes.row(j))).collect();
    let rt = kernels::view(codes.as_slice(), n, c).transpose();
    let blocks: Vec<Vec<Vec<(f32, usize)>>> = queries
        .as_slice()
        .par_chunks(QUERY_BLOCK * c.max(1))
        .enumerate()
        .map(|(b, block)| {
            let m = block.len() / c.max(1);
            let mut dot = vec![0.0f32; m * n];
            kernels::matmul_seq(&mut dot, kernels::view(block, m, c), rt, false, kernels::Precision::F32);
            (0..m)
                .map(|i| {
                    let qq = squared_norm(&block[i * c..(i + 1) * c]);
                    smallest(&dot[i * n..(i + 1) * n], qq, &rr, k, own.then_some(b * QUERY_BLOCK + i))
                })
                .collect()
        })
        .collect();
    blocks.into_iter().flatten().collect()
}

/// The `k` nearest as (distance, index), nearest first (ties: the lower index first), from a
/// query's dot products `dot` with the reference rows, its squared norm `qq` and theirs `rr`,
/// skipping index `skip`. Squared distances go sixteen at a time (so that they vectorize), and
/// a group none of which beats the current k-th is passed over whole.
fn smallest(dot: &[f32], qq: f32, rr: &[f32], k: usize, skip: Option<usize>) -> Vec<(f32, usize)> {
    const LANES: usize = 16;
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    let offer = |d2: f32, j: usize, best: &mut Vec<(f32, usize)>| {
        if skip == Some(j) || (best.len() == k && d2 >= best[k - 1].0) {
            return;
        }
        let at = best.partition_point(|&(e, _)| e <= d2);
        best.insert(at, (d2, j));
        best.truncate(k);
    };
    for (g, (dg, rg)) in dot.chunks(LANES).zip(rr.chunks(LANES)).enumerate() {
        let mut d2 = [f32::INFINITY; LANES];
        for ((o, &d), &r) in d2.iter_mut().zip(dg).zip(rg) {
            *o = (qq - 2.0 * d + r).max(0.0);
        }
        let low = d2.iter().fold(f32::INFINITY, |a, &b| a.min(b));
        if best.len() == k && low >= best[k - 1].0 {
            continue;
        }
        for (l, &v) in d2[..dg.len()].iter().enumerate() {
            offer(v, g * LANES + l, &mut best);
        }
    }
    best.iter_mut().for_each(|p| p.0 = p.0.sqrt());
    best
}

impl CodeNeighbours {
    /// Fits the neighbourhood of `model`'s codes of the training rows `x` with `k` neighbours.
    ///
    /// # Errors
    /// [`Error::Setting`] for `k` of 0 or not below the number of reference rows;
    /// [`Error::Shape`] for a wrong width; [`Error::InvalidData`] if an error is not finite.
    pub fn fit<'a>(model: &Autoencoder, x: impl Into<MatrixRef<'a>>, k: usize) -> Result<CodeNeighbours> {
        let x = x.into();
        let n = x.rows();
        let rows = n.min(MAX_ROWS);
        if k == 0 || k >= rows {
            return Err(Error::setting(
                "neighbours",
                k,
                format!("needs 1 <= k < the training rows ({rows})"),
            ));
        }
        let (errors, all) = score::mse_and_codes(model, x)?;
        if let Some(i) = errors.iter().position(|e| !e.is_finite()) {
            return Err(Error::invalid(
                "training data",
                format!("row {i} has a non-finite reconstruction error; the code neighbourhood needs finite ones"),
            ));
        }
        let codes = if rows == n {
            all
        } else {
            let picked: Vec<f32> = (0..rows).flat_map(|i| all.row(i * n / rows).iter().copied()).collect();
            Matrix::from_vec(rows, all.cols(), picked)?
        };
        let Reference {
            floor,
            kdist,
            lrd,
            lofs,
            distances,
        } = Reference::of(&codes, k);
        Ok(CodeNeighbours {
            settings: NeighbourSettings {
                k,
                rows,
                error: Robust::of(&errors),
                lof: Robust::of(&lofs),
                floor,
                distance: Some(Robust::of(&distances)),
                part: Part::for_widths(model.input_dim(), codes.cols()),
            },
            codes,
            kdist,
            lrd,
        })
    }

    /// Each code's `part` (its LOF, or its distance to the k-th nearest reference code) among
    /// the reference codes, with that part's training spread.
    fn part(&self, codes: &Matrix, part: Part) -> Result<(Vec<f64>, Robust)> {
        self.check(codes)?;
        let spread = self.spread(part)?;
        let near = nearest(&self.codes, codes, self.settings.k, false);
        let values = near
            .par_iter()
            .map(|nb| match part {
                Part::Lof => lof_of(nb, &self.lrd, lrd_of(nb, &self.kdist)),
                Part::Distance => f64::from(nb[nb.len() - 1].0),
            })
            .collect();
        Ok((values, spread))
    }

    /// The training spread of `part`.
    fn spread(&self, part: Part) -> Result<Robust> {
        match part {
            Part::Lof => Ok(self.settings.lof),
            Part::Distance => self.settings.distance.ok_or_else(|| {
                Error::setting(
                    "metric",
                    "mse+knn",
                    "this model's code neighbourhood predates mse+knn (it keeps only the LOF's spread): score by mse+lof, or refit the neighbourhood",
                )
            }),
        }
    }

    /// Each row's score: its mean squared error and its code's `part`, each in units of its
    /// training spread, summed (higher = more anomalous).
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` does not have the model's input width; [`Error::Setting`] for
    /// the distance of a file from before it.
    pub fn scores<'a>(&self, model: &Autoencoder, x: impl Into<MatrixRef<'a>>, part: Part) -> Result<Vec<f64>> {
        self.spread(part)?;
        let (errors, codes) = score::mse_and_codes(model, x.into())?;
        let (values, spread) = self.part(&codes, part)?;
        let s = self.settings;
        Ok(errors
            .iter()
            .zip(&values)
            .map(|(&e, &v)| s.error.apply(e) + spread.apply(v))
            .collect())
    }

    /// Checks the codes have the reference's width (a model file's neighbourhood belongs to
    /// its model).
    fn check(&self, codes: &Matrix) -> Result<()> {
        if codes.cols() == self.codes.cols() {
            Ok(())
        } else {
            Err(Error::Shape {
                what: "code neighbourhood".into(),
                expected: format!("codes of width {}", self.codes.cols()),
                got: format!("codes of width {}", codes.cols()),
            })
        }
    }

    /// Checks stored parts agree with each other and with a model of code width `code_dim`.
    ///
    /// # Errors
    /// [`Error::Config`] naming what disagrees.
    pub fn validate(&self, code_dim: usize) -> Result<()> {
        let s = self.settings;
        let bad = if self.codes.cols() != code_dim {
            Some(format!("codes of width {} for a code of {code_dim}", self.codes.cols()))
        } else if self.codes.rows() != s.rows || self.kdist.len() != s.rows || self.lrd.len() != s.rows {
            Some(format!("{} rows stated, tensors of other lengths", s.rows))
        } else if s.k == 0 || s.k >= s.rows {
            Some(format!("k = {} for {} rows", s.k, s.rows))
        } else if !(s.floor >= 0.0 && s.floor.is_finite()) {
            Some(format!("a reachability floor of {}", s.floor))
        } else if !(s.error.iqr > 0.0 && s.lof.iqr > 0.0 && s.distance.is_none_or(|d| d.iqr > 0.0)) {
            Some("a spread that is not positive".into())
        } else if s.part == Part::Distance && s.distance.is_none() {
            Some("scores by distance without the distances' spread".into())
        } else {
            None
        };
        bad.map_or(Ok(()), |b| Err(Error::Config(format!("bad code neighbourhood: {b}"))))
    }
}

/// The reference rows' neighbourhoods, each among the others.
struct Reference {
    floor: f32,
    /// k-distances, at least `floor`.
    kdist: Vec<f32>,
    lrd: Vec<f32>,
    lofs: Vec<f64>,
    /// k-distances as measured (not floored).
    distances: Vec<f64>,
}

impl Reference {
    fn of(codes: &Matrix, k: usize) -> Reference {
        let near = nearest(codes, codes, k, true);
        let floor = reach_floor(near.iter().map(|nb| nb[k - 1].0));
        let kdist: Vec<f32> = near.iter().map(|nb| nb[k - 1].0.max(floor)).collect();
        let lrd: Vec<f32> = near.iter().map(|nb| lrd_of(nb, &kdist)).collect();
        let lofs = near.iter().zip(&lrd).map(|(nb, &l)| lof_of(nb, &lrd, l)).collect();
        let distances = near.iter().map(|nb| f64::from(nb[k - 1].0)).collect();
        Reference {
            floor,
            kdist,
            lrd,
            lofs,
            distances,
        }
    }
}

/// [`FLOOR`] times the median of the positive k-distances `kdist` (0 when none is positive).
fn reach_floor(kdist: impl Iterator<Item = f32>) -> f32 {
    let positive: Vec<f64> = kdist.filter(|&d| d > 0.0).map(f64::from).collect();
    if positive.is_empty() {
        0.0
    } else {
        (FLOOR * Robust::of(&positive).median) as f32
    }
}

/// The local reachability density of a row with neighbours `nb`: the inverse of its mean
/// reachability distance `max(d, kdist(o))` (1e-10 added, as scikit-learn does, for duplicates).
fn lrd_of(nb: &[(f32, usize)], kdist: &[f32]) -> f32 {
    let reach: f64 = nb.iter().map(|&(d, o)| f64::from(d.max(kdist[o]))).sum();
    (1.0 / (reach / nb.len() as f64 + 1e-10)) as f32
}

/// The LOF of a row of density `own` with neighbours `nb`: their mean density over its own.
fn lof_of(nb: &[(f32, usize)], lrd: &[f32], own: f32) -> f64 {
    let mean: f64 = nb.iter().map(|&(_, o)| f64::from(lrd[o])).sum::<f64>() / nb.len() as f64;
    mean / f64::from(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `k` nearest reference rows of one query.
    fn one(codes: &Matrix, q: &[f32], k: usize) -> Vec<(f32, usize)> {
        nearest(codes, &Matrix::from_vec(1, q.len(), q.to_vec()).unwrap(), k, false).remove(0)
    }

    /// Brute-force LOF on plain vectors, as scikit-learn defines it (novelty scoring).
    fn reference_lof(train: &[Vec<f32>], q: &[f32], k: usize) -> f64 {
        let dist = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt();
        let knn = |p: &[f32], skip: Option<usize>| {
            let mut d: Vec<(f32, usize)> = (0..train.len())
                .filter(|&j| Some(j) != skip)
                .map(|j| (dist(p, &train[j]), j))
                .collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0));
            d.truncate(k);
            d
        };
        let kd: Vec<f32> = (0..train.len()).map(|i| knn(&train[i], Some(i))[k - 1].0).collect();
        let lrd = |nb: &[(f32, usize)]| {
            1.0 / (nb.iter().map(|&(d, o)| f64::from(d.max(kd[o]))).sum::<f64>() / k as f64 + 1e-10)
        };
        let lrds: Vec<f64> = (0..train.len()).map(|i| lrd(&knn(&train[i], Some(i)))).collect();
        let nb = knn(q, None);
        nb.iter().map(|&(_, o)| lrds[o]).sum::<f64>() / k as f64 / lrd(&nb)
    }

    #[test]
    fn lof_matches_a_brute_force_reference() {
        let mut rng = crate::rng::Rng::new(5);
        let train: Vec<Vec<f32>> = (0..60).map(|_| (0..3).map(|_| rng.normal()).collect()).collect();
        let flat: Vec<f32> = train.concat();
        let codes = Matrix::from_vec(60, 3, flat).unwrap();
        let k = 7;
        let near = nearest(&codes, &codes, k, true);
        let kdist: Vec<f32> = near.iter().map(|nb| nb[k - 1].0).collect();
        let lrd: Vec<f32> = near.iter().map(|nb| lrd_of(nb, &kdist)).collect();
        for q in [[0.0f32, 0.0, 0.0], [3.0, -2.0, 1.0], [0.5, 0.1, -0.3]] {
            let nb = one(&codes, &q, k);
            let ours = lof_of(&nb, &lrd, lrd_of(&nb, &kdist));
            let want = reference_lof(&train, &q, k);
            assert!((ours - want).abs() < 1e-4 * want, "{q:?}: {ours} vs {want}");
        }
        // A far point is an outlier (LOF well above 1); a central one is not.
        let nb = one(&codes, &[6.0, 6.0, 6.0], k);
        let far = lof_of(&nb, &lrd, lrd_of(&nb, &kdist));
        assert!(far > 2.0, "{far}");
    }

    #[test]
    fn repeated_codes_do_not_make_their_neighbours_outliers() {
        // 40 copies of the origin (k-distance 0) among 60 spread points: a normal row next to
        // the copies would have a LOF of ~10^9 without the floor.
        let mut rng = crate::rng::Rng::new(3);
        let mut flat = vec![0.0f32; 40 * 2];
        flat.extend((0..120).map(|_| rng.normal()));
        let codes = Matrix::from_vec(100, 2, flat).unwrap();
        let k = 10;
        let r = Reference::of(&codes, k);
        let positive: Vec<f64> = nearest(&codes, &codes, k, true)
            .iter()
            .map(|nb| f64::from(nb[k - 1].0))
            .filter(|&d| d > 0.0)
            .collect();
        assert!((f64::from(r.floor) - FLOOR * Robust::of(&positive).median).abs() < 1e-6);
        assert!(r.kdist.iter().all(|&d| d >= r.floor) && r.floor > 0.0);
        let lof = |q: &[f32]| {
            let nb = one(&codes, q, k);
            lof_of(&nb, &r.lrd, lrd_of(&nb, &r.kdist))
        };
        let near = lof(&[0.05, 0.0]);
        assert!(near < 3.0, "a row beside the copies: LOF {near}");
        assert!(lof(&[8.0, 8.0]) > 5.0 * near, "a far row stays the outlier");
        assert!(r.lofs.iter().all(|l| l.is_finite()));
    }

    #[test]
    fn blocked_search_matches_brute_force_and_any_thread_count() {
        // 600 rows: three query blocks, so the self-skip must use the global row index.
        let mut rng = crate::rng::Rng::new(9);
        let (n, c, k) = (600, 5, 7);
        let codes = Matrix::from_vec(n, c, (0..n * c).map(|_| rng.normal()).collect()).unwrap();
        let near = nearest(&codes, &codes, k, true);
        for i in (0..n).step_by(37) {
            let mut want: Vec<(f32, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    let d: f32 = codes
                        .row(i)
                        .iter()
                        .zip(codes.row(j))
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum();
                    (d.sqrt(), j)
                })
                .collect();
            want.sort_by(|a, b| a.0.total_cmp(&b.0));
            let got: Vec<usize> = near[i].iter().map(|p| p.1).collect();
            let exp: Vec<usize> = want[..k].iter().map(|p| p.1).collect();
            assert_eq!(got, exp, "row {i}");
            for (g, w) in near[i].iter().zip(&want) {
                assert!((g.0 - w.0).abs() < 1e-3 * w.0.max(1e-3), "row {i}: {} vs {}", g.0, w.0);
            }
        }
        let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(one_thread.install(|| nearest(&codes, &codes, k, true)), near);
    }

    #[test]
    fn the_distance_part_is_the_kth_neighbour_distance() {
        let mut rng = crate::rng::Rng::new(7);
        let (n, c, k) = (80, 3, 5);
        let codes = Matrix::from_vec(n, c, (0..n * c).map(|_| rng.normal()).collect()).unwrap();
        let r = Reference::of(&codes, k);
        let dist = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt();
        // Each reference row's distance to its k-th nearest other row, measured (not floored).
        for i in (0..n).step_by(9) {
            let mut d: Vec<f32> = (0..n)
                .filter(|&j| j != i)
                .map(|j| dist(codes.row(i), codes.row(j)))
                .collect();
            d.sort_by(f32::total_cmp);
            assert!((r.distances[i] - f64::from(d[k - 1])).abs() < 1e-4, "row {i}");
        }
        let mut nb = CodeNeighbours {
            settings: NeighbourSettings {
                k,
                rows: n,
                error: Robust { median: 0.0, iqr: 1.0 },
                lof: Robust::of(&r.lofs),
                floor: r.floor,
                distance: Some(Robust::of(&r.distances)),
                part: Part::Distance,
            },
            codes: codes.clone(),
            kdist: r.kdist,
            lrd: r.lrd,
        };
        assert!(nb.validate(c).is_ok());
        let q = Matrix::from_vec(2, c, vec![0.0, 0.0, 0.0, 4.0, -3.0, 2.0]).unwrap();
        let (d, spread) = nb.part(&q, Part::Distance).unwrap();
        assert_eq!(spread, nb.settings.distance.unwrap());
        for (i, got) in d.iter().enumerate() {
            let mut all: Vec<f32> = (0..n).map(|j| dist(q.row(i), codes.row(j))).collect();
            all.sort_by(f32::total_cmp);
            assert!(
                (got - f64::from(all[k - 1])).abs() < 1e-4,
                "query {i}: {got} vs {}",
                all[k - 1]
            );
        }
        assert!(d[1] > 3.0 * d[0], "the far query is the farther: {d:?}");
        // A neighbourhood from before the distance keeps its LOF and refuses the distance.
        nb.settings.distance = None;
        assert!(nb.part(&q, Part::Distance).unwrap_err().to_string().contains("mse+knn"));
        assert!(nb.part(&q, Part::Lof).is_ok());
        assert!(nb.validate(c).is_err(), "scoring by a distance it cannot spread");
        nb.settings.part = Part::Lof;
        assert!(nb.validate(c).is_ok());
    }

    #[test]
    fn the_part_follows_how_much_the_code_compresses() {
        assert_eq!(Part::for_widths(784, 32), Part::Lof);
        assert_eq!(Part::for_widths(180, 32), Part::Lof);
        assert_eq!(Part::for_widths(65, 32), Part::Lof);
        assert_eq!(Part::for_widths(64, 32), Part::Distance);
        assert_eq!(Part::for_widths(9, 6), Part::Distance);
        assert_eq!(Part::for_widths(8, 2), Part::Lof);
        assert_eq!(Part::Distance.metric().name(), "mse+knn");
        assert_eq!(Part::Lof.metric().name(), "mse+lof");
        for part in [Part::Lof, Part::Distance] {
            assert_eq!(Part::of(part.metric()), Some(part));
        }
        assert_eq!(Part::of(score::ScoreMetric::Mse), None);
    }

    #[test]
    fn files_from_before_the_floor_read_as_floor_zero() {
        let old = r#"{"k":10,"rows":50,"error":{"median":1.0,"iqr":0.5},"lof":{"median":1.0,"iqr":0.2}}"#;
        let s: NeighbourSettings = serde_json::from_str(old).unwrap();
        assert_eq!((s.k, s.floor, s.distance, s.part), (10, 0.0, None, Part::Lof));
    }

    #[test]
    fn robust_spread_is_the_median_and_interquartile_range() {
        let r = Robust::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(r.median, 3.0);
        assert_eq!(r.iqr, 2.0);
        assert_eq!(Robust::of(&[1.0, 1.0]).iqr, 1e-12);
    }
}
