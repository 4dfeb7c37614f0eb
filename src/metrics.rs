//! Reconstruction metrics, in the data's own units.

use crate::tensor::{Matrix, MatrixRef};
use serde::{Deserialize, Serialize};

/// How well `x̂` reconstructs `x`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReconstructionMetrics {
    /// Number of rows.
    pub n: usize,
    /// Mean squared error per element.
    pub mse: f64,
    /// Mean over rows of the sum of squared errors of the row (Hinton & Salakhutdinov 2006).
    pub sse_per_sample: f64,
    /// Peak signal-to-noise ratio in dB, for data in [0, 1].
    pub psnr: Option<f64>,
    /// Mean binary cross-entropy per element, for data in [0, 1].
    pub bce: Option<f64>,
    /// Fraction of variance unexplained: the squared error over the data's total variance
    /// about its column means (1 − R²; 0 is perfect, 1 is what the mean row gets). `None`
    /// when every column is constant.
    #[serde(default)]
    pub fvu: Option<f64>,
}

/// Computes [`ReconstructionMetrics`] (sums in f64).
///
/// # Panics
/// If the shapes differ.
#[track_caller]
pub fn reconstruction(x: &Matrix, x_hat: &Matrix) -> ReconstructionMetrics {
    let mut sums = ReconstructionSums::default();
    sums.add(x, x_hat);
    sums.finish()
}

/// [`reconstruction`] over rows that come in chunks: [`ReconstructionSums::add`] each chunk,
/// then [`ReconstructionSums::finish`]. The squared errors are summed value by value in row
/// order, so any chunking gives the same MSE.
#[derive(Clone, Debug)]
pub struct ReconstructionSums {
    n: usize,
    values: usize,
    sse: f64,
    bce: f64,
    unit: bool,
    /// Per column: the first row's value (a shift that keeps the sums small), then the sums
    /// of `x − shift` and its square.
    shift: Vec<f64>,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
}

impl Default for ReconstructionSums {
    fn default() -> Self {
        ReconstructionSums {
            n: 0,
            values: 0,
            sse: 0.0,
            bce: 0.0,
            unit: true,
            shift: Vec::new(),
            sum: Vec::new(),
            sum_sq: Vec::new(),
        }
    }
}

impl ReconstructionSums {
    /// Adds rows `x` and their reconstructions `x_hat`.
    ///
    /// # Panics
    /// If the shapes differ.
    #[track_caller]
    pub fn add<'a, 'b>(&mut self, x: impl Into<MatrixRef<'a>>, x_hat: impl Into<MatrixRef<'b>>) {
        let (x, x_hat) = (x.into(), x_hat.into());
        assert_eq!(
            (x.rows(), x.cols()),
            (x_hat.rows(), x_hat.cols()),
            "metrics: shapes differ"
        );
        for (&a, &b) in x.as_slice().iter().zip(x_hat.as_slice()) {
            self.sse += (a as f64 - b as f64).powi(2);
        }
        self.unit &= x.as_slice().iter().all(|v| (0.0..=1.0).contains(v));
        if self.unit {
            self.bce += crate::loss::Loss::Bce.sum(x_hat.as_slice(), x.as_slice());
        }
        if self.shift.is_empty() && x.rows() > 0 {
            self.shift = x.row(0).iter().map(|&v| f64::from(v)).collect();
            self.sum = vec![0.0; x.cols()];
            self.sum_sq = vec![0.0; x.cols()];
        }
        for r in 0..x.rows() {
            for (j, &v) in x.row(r).iter().enumerate() {
                let d = f64::from(v) - self.shift[j];
                self.sum[j] += d;
                self.sum_sq[j] += d * d;
            }
        }
        self.n += x.rows();
        self.values += x.as_slice().len();
    }

    /// Rows added so far.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// The metrics of every row added.
    pub fn finish(&self) -> ReconstructionMetrics {
        let mse = self.sse / self.values.max(1) as f64;
        let psnr = self.unit.then(|| {
            if mse > 0.0 {
                10.0 * (1.0 / mse).log10()
            } else {
                f64::INFINITY
            }
        });
        ReconstructionMetrics {
            n: self.n,
            mse,
            sse_per_sample: self.sse / self.n.max(1) as f64,
            psnr,
            bce: self.unit.then(|| self.bce / self.values.max(1) as f64),
            fvu: {
                let n = self.n.max(1) as f64;
                let total: f64 = self.sum.iter().zip(&self.sum_sq).map(|(s, q)| q - s * s / n).sum();
                (total > 0.0).then(|| self.sse / total)
            },
        }
    }
}

/// How well a categorical reconstruction (a softmax over the channels at each position, the
/// output of a `loss = "ce"` model) gives back its one-hot rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CategoricalMetrics {
    /// Positions scored: those whose input holds a category (some channel above 0).
    pub positions: usize,
    /// Mean cross-entropy per position, `−Σ t ln p` in nats (probabilities floored at 1e-7).
    pub cross_entropy: f64,
    /// Share of the positions whose most probable channel is the input's (its largest).
    pub accuracy: f64,
}

/// [`CategoricalMetrics`] over rows that come in chunks, for channel-major rows of
/// `channels × positions` values.
#[derive(Clone, Debug)]
pub struct CategoricalSums {
    channels: usize,
    positions: usize,
    scored: usize,
    hits: usize,
    cross_entropy: f64,
}

impl CategoricalSums {
    /// Sums for rows of `channels` channels at `positions` positions.
    pub fn new(channels: usize, positions: usize) -> Self {
        CategoricalSums {
            channels,
            positions,
            scored: 0,
            hits: 0,
            cross_entropy: 0.0,
        }
    }

    /// Adds rows `x` (one-hot, or distributions, over each position's channels) and their
    /// reconstructions `x_hat` (probabilities). A tie for the most probable channel goes to
    /// the first.
    ///
    /// # Panics
    /// If the shapes differ or a row is not `channels × positions` values.
    #[track_caller]
    pub fn add<'a, 'b>(&mut self, x: impl Into<MatrixRef<'a>>, x_hat: impl Into<MatrixRef<'b>>) {
        let (x, x_hat) = (x.into(), x_hat.into());
        let (c, p) = (self.channels, self.positions);
        assert!(x.cols() == c * p && x_hat.cols() == c * p && x.rows() == x_hat.rows());
        let first_max =
            |v: &[f32], t: usize| (0..c).fold(0, |best, j| if v[j * p + t] > v[best * p + t] { j } else { best });
        for r in 0..x.rows() {
            let (a, b) = (x.row(r), x_hat.row(r));
            for t in 0..p {
                let truth = first_max(a, t);
                if a[truth * p + t] <= 0.0 {
                    continue;
                }
                self.scored += 1;
                self.hits += usize::from(first_max(b, t) == truth);
                self.cross_entropy += (0..c)
                    .filter(|&j| a[j * p + t] != 0.0)
                    .map(|j| crate::loss::ce_term(b[j * p + t], a[j * p + t]))
                    .sum::<f64>();
            }
        }
    }

    /// The metrics of every position scored (`None` before any).
    pub fn finish(&self) -> Option<CategoricalMetrics> {
        (self.scored > 0).then(|| CategoricalMetrics {
            positions: self.scored,
            cross_entropy: self.cross_entropy / self.scored as f64,
            accuracy: self.hits as f64 / self.scored as f64,
        })
    }
}

/// Sparsity and health of a code.
///
/// A unit is *active* on a sample when its value is non-zero (|h| > 1e-6), or, for sigmoid
/// codes (which are never exactly zero), when it exceeds 0.5.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CodeMetrics {
    /// Mean number of active units per sample (L0).
    pub l0: f64,
    /// Fraction of units active on no sample ("dead").
    pub dead_fraction: f64,
    /// Mean code value over samples and units.
    pub mean_activation: f64,
    /// Mean value of each unit.
    pub unit_mean_activation: Vec<f64>,
    /// Fraction of samples each unit is active on (its firing frequency).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unit_firing: Vec<f64>,
    /// Units by firing frequency ([`firing_histogram`]'s buckets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub firing_histogram: Vec<usize>,
    /// Fraction of variance unexplained by the reconstruction of the same rows (training logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fvu: Option<f64>,
}

/// Decades of firing frequency the histogram tells apart: bucket 0 holds the units that never
/// fire, bucket `i` (1 ..= `FIRING_DECADES`) those firing on a fraction in
/// `[10^(i − 1 − FIRING_DECADES), 10^(i − FIRING_DECADES))` of the samples (the last also
/// holds 1); frequencies below the first decade go to bucket 1.
pub const FIRING_DECADES: usize = 7;

/// The lower and upper frequency of histogram bucket `i` ([`FIRING_DECADES`]); `(0, 0)` for the
/// units that never fire.
pub fn firing_bucket_range(i: usize) -> (f64, f64) {
    if i == 0 {
        return (0.0, 0.0);
    }
    let lo = if i == 1 {
        0.0
    } else {
        10f64.powi(i as i32 - 1 - FIRING_DECADES as i32)
    };
    (lo, 10f64.powi(i as i32 - FIRING_DECADES as i32))
}

/// Counts units by their firing frequency `freq` (fractions of samples) in the buckets of
/// [`FIRING_DECADES`].
pub fn firing_histogram(freq: &[f64]) -> Vec<usize> {
    let mut h = vec![0; FIRING_DECADES + 1];
    for &f in freq {
        let i = if f <= 0.0 {
            0
        } else {
            let decade = f.log10().floor() as i64 + FIRING_DECADES as i64 + 1;
            decade.clamp(1, FIRING_DECADES as i64) as usize
        };
        h[i] += 1;
    }
    h
}

/// Whether a code unit of activation `act` is active at value `v` (see [`CodeMetrics`]).
pub fn active(v: f32, act: crate::activation::Activation) -> bool {
    if act == crate::activation::Activation::Sigmoid {
        v > 0.5
    } else {
        v.abs() > 1e-6
    }
}

/// Computes [`CodeMetrics`] of `codes` produced by a code layer with activation `act`.
pub fn code(codes: &Matrix, act: crate::activation::Activation) -> CodeMetrics {
    let mut sums = CodeSums::new(codes.cols(), act);
    sums.add(codes);
    sums.finish()
}

/// [`code`] over codes that come in chunks (the same figures for any chunking).
#[derive(Clone, Debug)]
pub struct CodeSums {
    act: crate::activation::Activation,
    n: usize,
    fires: Vec<u64>,
    sums: Vec<f64>,
    count: usize,
}

impl CodeSums {
    /// Nothing seen yet, for codes of `k` units of activation `act`.
    pub fn new(k: usize, act: crate::activation::Activation) -> Self {
        CodeSums {
            act,
            n: 0,
            fires: vec![0; k],
            sums: vec![0.0; k],
            count: 0,
        }
    }

    /// Adds codes, one row per sample.
    pub fn add(&mut self, codes: &Matrix) {
        for i in 0..codes.rows() {
            for (j, &v) in codes.row(i).iter().enumerate() {
                self.sums[j] += v as f64;
                if active(v, self.act) {
                    self.count += 1;
                    self.fires[j] += 1;
                }
            }
        }
        self.n += codes.rows();
    }

    /// The metrics of every code added.
    pub fn finish(&self) -> CodeMetrics {
        let k = self.sums.len();
        let n1 = self.n.max(1) as f64;
        let unit_mean_activation: Vec<f64> = self.sums.iter().map(|s| s / n1).collect();
        let unit_firing: Vec<f64> = self.fires.iter().map(|&f| f as f64 / n1).collect();
        CodeMetrics {
            l0: self.count as f64 / n1,
            dead_fraction: self.fires.iter().filter(|f| **f == 0).count() as f64 / k.max(1) as f64,
            mean_activation: unit_mean_activation.iter().sum::<f64>() / k.max(1) as f64,
            unit_mean_activation,
            firing_histogram: firing_histogram(&unit_firing),
            unit_firing,
            fvu: None,
        }
    }
}

/// The rows on which chosen code units are most active, over codes that come in chunks: for
/// each unit, its `n` largest values and their rows (0-based over every row added), largest
/// first, ties by the lower row. The same answer for any chunking.
#[derive(Clone, Debug)]
pub struct TopRows {
    units: Vec<usize>,
    n: usize,
    rows: usize,
    best: Vec<Vec<(f32, usize)>>,
}

impl TopRows {
    /// Nothing seen yet; `n` rows for each of `units`.
    pub fn new(units: &[usize], n: usize) -> Self {
        TopRows {
            units: units.to_vec(),
            n,
            rows: 0,
            best: vec![Vec::with_capacity(n + 1); units.len()],
        }
    }

    /// Adds the next rows' codes.
    ///
    /// # Errors
    /// [`crate::error::Error::Setting`] naming a unit the codes do not have.
    pub fn add(&mut self, codes: &Matrix) -> crate::error::Result<()> {
        if let Some(&u) = self.units.iter().find(|&&u| u >= codes.cols()) {
            return Err(crate::error::Error::setting(
                "units",
                u,
                format!("the code has units 0 ..= {}", codes.cols().saturating_sub(1)),
            ));
        }
        for r in 0..codes.rows() {
            let row = codes.row(r);
            for (best, &u) in self.best.iter_mut().zip(&self.units) {
                let cand = (row[u], self.rows + r);
                // Larger first; on ties the earlier row (added first) stays ahead.
                let at = best.partition_point(|&(v, _)| v >= cand.0);
                if at < self.n {
                    best.insert(at, cand);
                    best.truncate(self.n);
                }
            }
        }
        self.rows += codes.rows();
        Ok(())
    }

    /// For each unit (in the order given): its rows and values, largest first.
    pub fn finish(&self) -> Vec<(usize, Vec<(usize, f32)>)> {
        self.units
            .iter()
            .zip(&self.best)
            .map(|(&u, b)| (u, b.iter().map(|&(v, r)| (r, v)).collect()))
            .collect()
    }
}

/// How a classifier's predictions compare with true labels.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Confusion {
    /// Rows scored.
    pub n: usize,
    /// Fraction predicted right (labels the classifier does not know count as errors).
    pub accuracy: f64,
    /// `matrix[true][predicted]` counts over the known classes.
    pub matrix: Vec<Vec<usize>>,
    /// Rows whose label is not one of the classes.
    pub unknown_labels: usize,
}

/// The confusion matrix of predicted class indices `pred` against true `labels`, for classes
/// named `classes`.
///
/// # Panics
/// If `labels` and `pred` differ in length or a prediction is not a class index.
#[track_caller]
pub fn confusion(labels: &[String], pred: &[usize], classes: &[String]) -> Confusion {
    assert_eq!(labels.len(), pred.len(), "confusion: one prediction per label");
    let c = classes.len();
    let mut matrix = vec![vec![0usize; c]; c];
    let (mut hits, mut unknown) = (0, 0);
    for (l, &p) in labels.iter().zip(pred) {
        match classes.iter().position(|n| n == l) {
            Some(t) => {
                matrix[t][p] += 1;
                hits += usize::from(t == p);
            }
            None => unknown += 1,
        }
    }
    Confusion {
        n: labels.len(),
        accuracy: hits as f64 / labels.len().max(1) as f64,
        matrix,
        unknown_labels: unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rows of 3 channels at 2 positions: position 0 of the second row is empty (not
    /// scored); the others' most probable channels are right, wrong, right.
    #[test]
    fn categorical_accuracy_and_cross_entropy_per_position() {
        // Channel-major: [c0@0, c0@1, c1@0, c1@1, c2@0, c2@1].
        let x = Matrix::from_vec(2, 6, vec![1., 0., 0., 1., 0., 0., 0., 0., 0., 0., 0., 1.]).unwrap();
        let p = Matrix::from_vec(2, 6, vec![0.7, 0.5, 0.2, 0.2, 0.1, 0.3, 0.3, 0.1, 0.3, 0.1, 0.4, 0.8]).unwrap();
        let mut sums = CategoricalSums::new(3, 2);
        sums.add(&x, &p);
        let m = sums.finish().unwrap();
        assert_eq!(m.positions, 3);
        assert!((m.accuracy - 2.0 / 3.0).abs() < 1e-12);
        let want = -(0.7f64.ln() + 0.2f64.ln() + 0.8f64.ln()) / 3.0;
        assert!((m.cross_entropy - want).abs() < 1e-6, "{} vs {want}", m.cross_entropy);
        assert!(CategoricalSums::new(3, 2).finish().is_none());
    }

    /// FVU is 0 for a perfect reconstruction, 1 for the column means, and the same over any
    /// chunking.
    #[test]
    fn fraction_of_variance_unexplained() {
        let x = Matrix::from_vec(4, 2, vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 6.0, 40.0]).unwrap();
        assert_eq!(reconstruction(&x, &x).fvu, Some(0.0));
        let means = Matrix::from_vec(4, 2, [3.0, 25.0].repeat(4)).unwrap();
        assert!((reconstruction(&x, &means).fvu.unwrap() - 1.0).abs() < 1e-12);
        let half = Matrix::from_vec(4, 2, x.as_slice().iter().map(|v| v * 0.5).collect()).unwrap();
        let whole = reconstruction(&x, &half).fvu.unwrap();
        let mut sums = ReconstructionSums::default();
        sums.add(&x.slice_rows(0, 1), &half.slice_rows(0, 1));
        sums.add(&x.slice_rows(1, 4), &half.slice_rows(1, 4));
        assert!((sums.finish().fvu.unwrap() - whole).abs() < 1e-12);
        let flat = Matrix::from_vec(2, 1, vec![5.0, 5.0]).unwrap();
        assert_eq!(reconstruction(&flat, &flat).fvu, None);
    }
    use crate::Activation;

    #[test]
    fn code_metrics_hand_computed() {
        // 3 samples x 4 units; unit 3 never active.
        let c = Matrix::from_rows(&[[0.0, 2.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 3.0, 4.0, 0.0]]).unwrap();
        let m = code(&c, Activation::Relu);
        assert_eq!(m.l0, 5.0 / 3.0);
        assert_eq!(m.dead_fraction, 0.25);
        assert_eq!(m.unit_firing, vec![1.0 / 3.0, 1.0, 1.0 / 3.0, 0.0]);
        assert_eq!(m.firing_histogram, vec![1, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(m.unit_mean_activation, vec![1.0 / 3.0, 2.0, 4.0 / 3.0, 0.0]);
        assert!((m.mean_activation - 11.0 / 12.0).abs() < 1e-12);
        // Sigmoid codes count units above 0.5.
        let s = Matrix::from_rows(&[[0.2, 0.7], [0.6, 0.1]]).unwrap();
        let m = code(&s, Activation::Sigmoid);
        assert_eq!((m.l0, m.dead_fraction), (1.0, 0.0));
    }

    /// The top rows of a unit over chunks equal those over the whole, ties by the lower row.
    #[test]
    fn top_rows_over_chunks() {
        let c = Matrix::from_rows(&[[0.5, 1.0], [2.0, 0.0], [0.5, 3.0], [2.0, 1.0], [0.1, 0.2]]).unwrap();
        let mut whole = TopRows::new(&[0, 1], 3);
        whole.add(&c).unwrap();
        let expected = vec![
            (0, vec![(1, 2.0), (3, 2.0), (0, 0.5)]),
            (1, vec![(2, 3.0), (0, 1.0), (3, 1.0)]),
        ];
        assert_eq!(whole.finish(), expected);
        let mut chunks = TopRows::new(&[0, 1], 3);
        for i in 0..c.rows() {
            chunks.add(&c.select_rows(&[i])).unwrap();
        }
        assert_eq!(chunks.finish(), expected);
        let e = TopRows::new(&[2], 1).add(&c).unwrap_err().to_string();
        assert!(e.contains("0 ..= 1"), "{e}");
    }

    /// Each frequency lands in the decade its bucket's range names.
    #[test]
    fn firing_histogram_buckets_by_decade() {
        let freq = [0.0, 1e-9, 2e-6, 0.05, 0.1, 0.99, 1.0];
        let h = firing_histogram(&freq);
        assert_eq!(h, vec![1, 1, 1, 0, 0, 0, 1, 3]);
        for f in freq.into_iter().filter(|f| *f > 1e-7) {
            let i = firing_histogram(&[f]).iter().position(|&c| c == 1).unwrap();
            let (lo, hi) = firing_bucket_range(i);
            assert!(
                lo <= f && (f < hi || (f == 1.0 && hi == 1.0)),
                "{f} in bucket {i} [{lo}, {hi})"
            );
        }
    }

    #[test]
    fn reconstruction_metrics_hand_computed() {
        let x = Matrix::from_rows(&[[0.0, 1.0], [0.5, 0.5]]).unwrap();
        let y = Matrix::from_rows(&[[0.1, 0.9], [0.5, 0.7]]).unwrap();
        let m = reconstruction(&x, &y);
        // squared errors: 0.01, 0.01, 0, 0.04 -> SSE per sample (0.02 + 0.04) / 2
        assert!((m.sse_per_sample - 0.03).abs() < 1e-7);
        assert!((m.mse - 0.015).abs() < 1e-7);
        assert!((m.psnr.unwrap() - 10.0 * (1.0f64 / 0.015).log10()).abs() < 1e-5);
    }
}

/// Segmentation quality of outputs against 0/1 targets (masks), thresholded at 0.5.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Segmentation {
    /// Fraction of pixels classified right.
    pub pixel_accuracy: f64,
    /// Intersection over union of the foreground (target 1), pooled over all images.
    pub iou: f64,
    /// Mean of the foreground and background IoUs.
    pub mean_iou: f64,
}

/// [`Segmentation`] of `out` against `target`; `None` unless every target value is 0 or 1.
pub fn segmentation(target: &Matrix, out: &Matrix) -> Option<Segmentation> {
    let t = target.as_slice();
    if t.is_empty() || !t.iter().all(|&v| v == 0.0 || v == 1.0) {
        return None;
    }
    let (mut tp, mut fp, mut fn_, mut tn) = (0u64, 0u64, 0u64, 0u64);
    for (&y, &o) in t.iter().zip(out.as_slice()) {
        match (y == 1.0, o > 0.5) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            (false, false) => tn += 1,
        }
    }
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    let iou = ratio(tp, tp + fp + fn_);
    let iou_bg = ratio(tn, tn + fp + fn_);
    Some(Segmentation {
        pixel_accuracy: (tp + tn) as f64 / t.len() as f64,
        iou,
        mean_iou: (iou + iou_bg) / 2.0,
    })
}

#[cfg(test)]
mod segmentation_tests {
    use super::*;

    #[test]
    fn iou_and_accuracy_by_hand() {
        // Targets 1 1 0 0 0, outputs over 0.5 at 1 0 1 0 0: tp 1, fn 1, fp 1, tn 2.
        let t = Matrix::from_vec(1, 5, vec![1.0, 1.0, 0.0, 0.0, 0.0]).unwrap();
        let o = Matrix::from_vec(1, 5, vec![0.9, 0.2, 0.7, 0.1, 0.5]).unwrap();
        let s = segmentation(&t, &o).unwrap();
        assert_eq!(s.pixel_accuracy, 3.0 / 5.0);
        assert_eq!(s.iou, 1.0 / 3.0);
        assert_eq!(s.mean_iou, (1.0 / 3.0 + 2.0 / 4.0) / 2.0);
        let soft = Matrix::from_vec(1, 5, vec![0.5; 5]).unwrap();
        assert!(segmentation(&soft, &o).is_none(), "targets that are not 0/1");
    }

    #[test]
    fn confusion_counts_true_against_predicted() {
        let classes: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let labels: Vec<String> = ["a", "a", "b", "z"].iter().map(|s| s.to_string()).collect();
        let c = confusion(&labels, &[0, 1, 1, 0], &classes);
        assert_eq!(c.matrix, vec![vec![1, 1], vec![0, 1]]);
        assert_eq!((c.n, c.unknown_labels), (4, 1));
        assert_eq!(c.accuracy, 0.5);
    }
}
