//! Anomaly detection by reconstruction error: scores, thresholds, and how well scores rank
//! known anomalies (ROC-AUC, average precision, precision/recall/F1 at a threshold).
//!
//! A row's score is its reconstruction error in the model's units (after the stored scaler),
//! so a feature does not weigh more for being measured in larger units. Higher = more anomalous.

use crate::error::{Error, Result};
use crate::model::Autoencoder;
use crate::tensor::{Matrix, MatrixRef};
use serde::{Deserialize, Serialize};

/// How a row's reconstruction error is summarized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScoreMetric {
    /// Mean squared error over the features.
    #[default]
    Mse,
    /// Mean absolute error over the features.
    Mae,
    /// A variational autoencoder's negative log-likelihood of the row, in nats
    /// (importance-weighted, [`crate::vae::NLL_SAMPLES`] code draws seeded by the row's own
    /// values): the reconstruction probability's view of "unlikely", for models trained with a
    /// Gaussian code.
    Nll,
    /// The mean squared error plus the local outlier factor of the row's code among the
    /// training rows' codes, each in units of its training spread (median and interquartile
    /// range): for model files that hold a code neighbourhood ([`crate::neighbours`]).
    #[serde(rename = "mse+lof")]
    MseLof,
    /// The mean squared error plus the distance of the row's code to its k-th nearest
    /// training code, each in units of its training spread: the same neighbourhood, read by
    /// distance instead of density.
    #[serde(rename = "mse+knn")]
    MseKnn,
}

impl ScoreMetric {
    /// The metric's name.
    pub fn name(self) -> &'static str {
        match self {
            ScoreMetric::Mse => "mse",
            ScoreMetric::Mae => "mae",
            ScoreMetric::Nll => "nll",
            ScoreMetric::MseLof => "mse+lof",
            ScoreMetric::MseKnn => "mse+knn",
        }
    }

    /// Whether the score is read from a model file's code neighbourhood (`mse+lof`,
    /// `mse+knn`; [`crate::neighbours::Part::of`] says which part).
    pub fn uses_neighbours(self) -> bool {
        matches!(self, ScoreMetric::MseLof | ScoreMetric::MseKnn)
    }

    /// Whether the score is an error over features (with per-feature shares), not `nll`,
    /// `mse+lof` or `mse+knn`.
    pub fn is_error(self) -> bool {
        matches!(self, ScoreMetric::Mse | ScoreMetric::Mae)
    }

    /// The reconstruction error a score is built on, for per-feature shares: `mse` for
    /// `mse+lof` and `mse+knn`, the metric itself otherwise.
    pub fn error_part(self) -> ScoreMetric {
        if self.uses_neighbours() { ScoreMetric::Mse } else { self }
    }

    fn term(self, d: f32) -> f64 {
        match self {
            ScoreMetric::Mse => f64::from(d) * f64::from(d),
            ScoreMetric::Mae => f64::from(d.abs()),
            ScoreMetric::Nll | ScoreMetric::MseLof | ScoreMetric::MseKnn => {
                unreachable!("not an error over features: `scores` handles it first")
            }
        }
    }
}

impl std::str::FromStr for ScoreMetric {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "mse" => Ok(ScoreMetric::Mse),
            "mae" => Ok(ScoreMetric::Mae),
            "nll" => Ok(ScoreMetric::Nll),
            "mse+lof" => Ok(ScoreMetric::MseLof),
            "mse+knn" => Ok(ScoreMetric::MseKnn),
            _ => Err(format!(
                "unknown metric `{s}`; expected mse, mae, nll, mse+lof or mse+knn"
            )),
        }
    }
}

/// How a threshold is chosen from scores of (mostly) normal data.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "rule", content = "value")]
pub enum ThresholdRule {
    /// The data holds about this fraction of anomalies: flag the top fraction.
    Contamination(f64),
    /// The threshold is this quantile of the scores.
    Quantile(f64),
    /// The data is all normal: flag at most this fraction of it (the false-positive rate).
    Fpr(f64),
}

impl ThresholdRule {
    /// The fraction of the calibration rows allowed above the threshold.
    pub fn flagged_fraction(self) -> f64 {
        match self {
            ThresholdRule::Contamination(p) | ThresholdRule::Fpr(p) => p,
            ThresholdRule::Quantile(q) => 1.0 - q,
        }
    }

    /// Checks the value is a fraction in `[0, 1)` (`(0, 1]` for a quantile).
    ///
    /// # Errors
    /// [`Error::Setting`] naming the rule.
    pub fn validate(self) -> Result<()> {
        let (name, v, ok, range) = match self {
            ThresholdRule::Contamination(p) => ("contamination", p, (0.0..1.0).contains(&p), "[0, 1)"),
            ThresholdRule::Fpr(p) => ("fpr", p, (0.0..1.0).contains(&p), "[0, 1)"),
            ThresholdRule::Quantile(q) => ("quantile", q, q > 0.0 && q <= 1.0, "(0, 1]"),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::setting(name, v, format!("not a fraction in {range}")))
        }
    }
}

/// A calibrated anomaly threshold, stored in the model file: rows scoring above it are anomalies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// The score metric the threshold applies to.
    pub metric: ScoreMetric,
    /// Scores strictly above this value are flagged.
    pub value: f64,
    /// How it was chosen.
    pub rule: ThresholdRule,
    /// Number of calibration rows.
    pub calibration_rows: usize,
    /// Fraction of the calibration rows above the threshold.
    pub flagged_fraction: f64,
    /// The calibration data file, when known.
    pub data_path: Option<String>,
}

/// Per-row anomaly scores (higher = more anomalous).
///
/// # Errors
/// [`Error::Shape`] if `x` does not have the model's input width.
pub fn scores<'a>(model: &Autoencoder, x: impl Into<MatrixRef<'a>>, metric: ScoreMetric) -> Result<Vec<f64>> {
    match metric {
        ScoreMetric::Nll => return crate::vae::nll_scores(model, x),
        ScoreMetric::MseLof | ScoreMetric::MseKnn => {
            return Err(Error::setting(
                "metric",
                metric.name(),
                "needs the code neighbourhood of a model file (fitted with `neighbours`): score through the file",
            ));
        }
        ScoreMetric::Mse | ScoreMetric::Mae => {}
    }
    let (xs, xh) = model.reconstruct_scaled(x)?;
    Ok(row_scores(xs.view(), &xh, metric))
}

/// Each row's mean squared error (as [`scores`] by mse) and its code, from one pass through
/// the encoder (what the `mse+lof` score needs of the model).
///
/// # Errors
/// As [`scores`].
pub(crate) fn mse_and_codes(model: &Autoencoder, x: MatrixRef<'_>) -> Result<(Vec<f64>, Matrix)> {
    model.check_reconstructs()?;
    let enc = model.encoder_layers();
    let (xs, codes) = model.scaled_through(x, 0..enc)?;
    let out = model.forward_scaled(codes.view(), enc..model.layers().len());
    Ok((row_scores(xs.view(), &out, ScoreMetric::Mse), codes))
}

/// Each step's score for a model of `windows`: every window of the series `series` (steps ×
/// channels) scored, and each step given the mean score of the windows that contain it.
///
/// # Errors
/// As [`scores`]; [`Error::Data`] (naming `path`) for a series shorter than a window.
pub fn step_scores<'a>(
    model: &Autoencoder,
    windows: &crate::data::window::Windows,
    path: &std::path::Path,
    series: impl Into<MatrixRef<'a>>,
    metric: ScoreMetric,
) -> Result<Vec<f64>> {
    let every = windows.every();
    let x = every.apply(path, &series.into().to_matrix())?;
    let mut acc = crate::data::window::StepScores::new(windows.length);
    let mut out = acc.push(&scores(model, &x, metric)?);
    out.extend(acc.finish());
    Ok(out)
}

/// Scores of rows `x` against reconstructions `x_hat` in the same units (an error metric).
fn row_scores<'a>(x: impl Into<MatrixRef<'a>>, x_hat: &Matrix, metric: ScoreMetric) -> Vec<f64> {
    let x = x.into();
    let d = x.cols().max(1) as f64;
    (0..x.rows())
        .map(|i| {
            let (a, b) = (x.row(i), x_hat.row(i));
            // Each metric's term as a constant, so that it inlines into the lanes (a `metric`
            // read inside the loop measured slower).
            let sum = match metric {
                ScoreMetric::Mae => error_sum(a, b, |e| ScoreMetric::Mae.term(e)),
                _ => error_sum(a, b, |e| ScoreMetric::Mse.term(e)),
            };
            sum / d
        })
        .collect()
}

/// `Σ term(a − b)` in eight f64 lanes summed in a fixed order (so that a row's sum is not one
/// chain of dependent adds: a 784-value row costs a quarter of the time), the same for any
/// machine and thread count.
fn error_sum(a: &[f32], b: &[f32], term: impl Fn(f32) -> f64) -> f64 {
    const LANES: usize = 8;
    let mut acc = [0.0f64; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| term(x - y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += term(x[l] - y[l]);
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Why each row scores as it does.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// The scores, as [`scores`].
    pub scores: Vec<f64>,
    /// The reconstruction in the data's own units: what the model expected each value to be.
    pub expected: Matrix,
    /// Each feature's share of its row's score (rows sum to 1; 0 where the score is 0).
    pub share: Matrix,
}

/// Scores with each feature's share of the error and the expected (reconstructed) values.
///
/// # Errors
/// [`Error::Shape`] if `x` does not have the model's input width.
pub fn explain<'a>(model: &Autoencoder, x: impl Into<MatrixRef<'a>>, metric: ScoreMetric) -> Result<Explanation> {
    if !metric.is_error() {
        return Err(Error::setting(
            "metric",
            metric.name(),
            "per-feature shares need an error over features (mse or mae)",
        ));
    }
    let x = x.into();
    let (xs, mut xh) = model.reconstruct_scaled(x)?;
    let xs = xs.view();
    let scores = row_scores(xs, &xh, metric);
    let mut share = Matrix::zeros(x.rows(), x.cols());
    let d = x.cols() as f64;
    for (i, &s) in scores.iter().enumerate() {
        let total = s * d;
        for (j, (a, b)) in xs.row(i).iter().zip(xh.row(i)).enumerate() {
            share.row_mut(i)[j] = if total > 0.0 {
                (metric.term(a - b) / total) as f32
            } else {
                0.0
            };
        }
    }
    model.scaler().inverse(&mut xh);
    Ok(Explanation {
        scores,
        expected: xh,
        share,
    })
}

/// Which rows are anomalies by their labels: those with a label in `anomaly_labels` (default
/// `1`), or, when `normal_labels` is given, every row whose label is not one of those.
pub fn anomalies(labels: &[String], anomaly_labels: &[String], normal_labels: &[String]) -> Vec<bool> {
    if !normal_labels.is_empty() {
        return labels.iter().map(|v| !normal_labels.contains(v)).collect();
    }
    let default = ["1".to_string()];
    let positive = if anomaly_labels.is_empty() {
        &default[..]
    } else {
        anomaly_labels
    };
    labels.iter().map(|v| positive.contains(v)).collect()
}

/// Calibrates an anomaly threshold on rows `x` (normal, or mostly normal): scores them by
/// `metric` and picks the threshold by `rule`. `data_path` is recorded with it.
///
/// # Errors
/// As [`scores`] and [`threshold`].
pub fn calibrate<'a>(
    model: &Autoencoder,
    x: impl Into<MatrixRef<'a>>,
    metric: ScoreMetric,
    rule: ThresholdRule,
    data_path: Option<String>,
) -> Result<Threshold> {
    calibrate_scores(&scores(model, x, metric)?, metric, rule, data_path)
}

/// [`calibrate`] on scores already computed by `metric` (e.g. a series' [`step_scores`]).
///
/// # Errors
/// As [`threshold`].
pub fn calibrate_scores(
    scores: &[f64],
    metric: ScoreMetric,
    rule: ThresholdRule,
    data_path: Option<String>,
) -> Result<Threshold> {
    let value = threshold(scores, rule)?;
    let flagged = scores.iter().filter(|&&s| s > value).count();
    Ok(Threshold {
        metric,
        value,
        rule,
        calibration_rows: scores.len(),
        flagged_fraction: flagged as f64 / scores.len() as f64,
        data_path,
    })
}

/// The threshold that `rule` picks from calibration scores: the smallest order statistic with
/// at most the rule's fraction of the scores strictly above it.
///
/// # Errors
/// [`Error::Config`] for a rule out of range; [`Error::InvalidData`] for no scores or a NaN.
pub fn threshold(scores: &[f64], rule: ThresholdRule) -> Result<f64> {
    rule.validate()?;
    if scores.is_empty() {
        return Err(Error::InvalidData {
            what: "calibration data".into(),
            message: "no rows".into(),
        });
    }
    if scores.iter().any(|s| s.is_nan()) {
        return Err(Error::InvalidData {
            what: "calibration scores".into(),
            message: "a score is NaN (non-finite input?)".into(),
        });
    }
    let mut s = scores.to_vec();
    s.sort_by(f64::total_cmp);
    Ok(s[threshold_rank(s.len(), rule)])
}

/// The 0-based rank (in ascending order) of the order statistic that `rule` picks from `n`
/// calibration scores (see [`threshold`]).
pub fn threshold_rank(n: usize, rule: ThresholdRule) -> usize {
    let allowed = (rule.flagged_fraction() * n as f64 + 1e-9).floor() as usize;
    // Index n - 1 - allowed has `allowed` rows after it; those equal to it are not strictly
    // above, so ties can only lower the flagged count.
    n - 1 - allowed.min(n - 1)
}

/// Ranking quality of scores against known labels (`true` = anomaly).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Detection {
    /// Number of rows.
    pub n: usize,
    /// Number of anomalies among them.
    pub anomalies: usize,
    /// Area under the ROC curve (ties count one half).
    pub roc_auc: f64,
    /// Area under the precision-recall curve as average precision (ties grouped).
    pub pr_auc: f64,
    /// At the threshold, when one is given.
    pub at_threshold: Option<AtThreshold>,
}

/// Counts and rates of the rows flagged by a threshold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AtThreshold {
    /// The threshold.
    pub threshold: f64,
    /// Anomalies flagged.
    pub true_positives: usize,
    /// Normal rows flagged.
    pub false_positives: usize,
    /// Anomalies not flagged.
    pub false_negatives: usize,
    /// Flagged rows that are anomalies.
    pub precision: f64,
    /// Anomalies that are flagged.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
}

/// ROC-AUC, average precision and (with a threshold) precision/recall/F1.
///
/// # Errors
/// [`Error::InvalidData`] when lengths differ or only one class is present.
pub fn detection(scores: &[f64], anomaly: &[bool], threshold: Option<f64>) -> Result<Detection> {
    let bad = |m: String| Error::InvalidData {
        what: "labels".into(),
        message: m,
    };
    if scores.len() != anomaly.len() {
        return Err(bad(format!("{} labels for {} scores", anomaly.len(), scores.len())));
    }
    let pos = anomaly.iter().filter(|&&a| a).count();
    let neg = anomaly.len() - pos;
    if pos == 0 || neg == 0 {
        return Err(bad(format!(
            "AUC needs both classes; found {pos} anomalies and {neg} normal rows"
        )));
    }
    // Descending by score; groups of equal scores are handled as one step.
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut auc, mut ap) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        let (mut gp, mut gn) = (0usize, 0usize);
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            if anomaly[order[j]] {
                gp += 1
            } else {
                gn += 1
            }
            j += 1;
        }
        // Each normal row in the group is beaten by all anomalies before it and half the tied ones.
        auc += gn as f64 * (tp as f64 + 0.5 * gp as f64);
        tp += gp;
        fp += gn;
        if gp > 0 {
            ap += (gp as f64 / pos as f64) * (tp as f64 / (tp + fp) as f64);
        }
        i = j;
    }
    // auc counted pairs (normal, anomaly) with the anomaly ranked higher.
    let roc_auc = auc / (pos as f64 * neg as f64);
    let at_threshold = threshold.map(|t| {
        let tp = (0..scores.len()).filter(|&i| anomaly[i] && scores[i] > t).count();
        let fp = (0..scores.len()).filter(|&i| !anomaly[i] && scores[i] > t).count();
        let fneg = pos - tp;
        let precision = if tp + fp > 0 { tp as f64 / (tp + fp) as f64 } else { 0.0 };
        let recall = tp as f64 / pos as f64;
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        AtThreshold {
            threshold: t,
            true_positives: tp,
            false_positives: fp,
            false_negatives: fneg,
            precision,
            recall,
            f1,
        }
    });
    Ok(Detection {
        n: scores.len(),
        anomalies: pos,
        roc_auc,
        pr_auc: ap,
        at_threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_hand_computed_cases() {
        // Perfect ranking, reversed ranking, and one swapped pair out of 2 x 2.
        let y = [true, true, false, false];
        assert_eq!(detection(&[4.0, 3.0, 2.0, 1.0], &y, None).unwrap().roc_auc, 1.0);
        assert_eq!(detection(&[1.0, 2.0, 3.0, 4.0], &y, None).unwrap().roc_auc, 0.0);
        assert_eq!(detection(&[4.0, 2.0, 3.0, 1.0], &y, None).unwrap().roc_auc, 0.75);
        // All tied: 0.5.
        assert_eq!(detection(&[1.0; 4], &y, None).unwrap().roc_auc, 0.5);
        // Average precision: ranking (+, -, +): (1/2)(1/1) + (1/2)(2/3) = 5/6.
        let d = detection(&[3.0, 2.0, 1.0], &[true, false, true], None).unwrap();
        assert!((d.pr_auc - 5.0 / 6.0).abs() < 1e-12);
        assert!((d.roc_auc - 0.5).abs() < 1e-12);
    }

    #[test]
    fn precision_recall_at_threshold() {
        let d = detection(
            &[5.0, 4.0, 3.0, 2.0, 1.0],
            &[true, false, true, false, false],
            Some(2.5),
        )
        .unwrap();
        let t = d.at_threshold.unwrap();
        assert_eq!((t.true_positives, t.false_positives, t.false_negatives), (2, 1, 0));
        assert!((t.precision - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(t.recall, 1.0);
        assert!((t.f1 - 0.8).abs() < 1e-12);
    }

    #[test]
    fn one_class_labels_are_an_error() {
        assert!(detection(&[1.0, 2.0], &[false, false], None).is_err());
        assert!(detection(&[1.0, 2.0], &[true], None).is_err());
    }

    #[test]
    fn threshold_flags_the_requested_fraction() {
        let s: Vec<f64> = (1..=1000).map(f64::from).collect();
        let t = threshold(&s, ThresholdRule::Contamination(0.01)).unwrap();
        assert_eq!(s.iter().filter(|&&v| v > t).count(), 10);
        assert_eq!(t, 990.0);
        let q = threshold(&s, ThresholdRule::Quantile(0.95)).unwrap();
        assert_eq!(s.iter().filter(|&&v| v > q).count(), 50);
        // Ties never let more than the fraction through.
        let tied = [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0];
        let t = threshold(&tied, ThresholdRule::Fpr(0.3)).unwrap();
        assert!(tied.iter().filter(|&&v| v > t).count() <= 3);
        assert!(threshold(&s, ThresholdRule::Fpr(1.5)).is_err());
    }

    #[test]
    fn threshold_matches_the_quantile_of_a_known_distribution() {
        // Exponential(1) scores by inversion: the 1 - p quantile is -ln p.
        let mut rng = crate::Rng::new(7);
        let s: Vec<f64> = (0..200_000).map(|_| -(1.0 - rng.uniform_f64()).ln()).collect();
        for p in [0.1, 0.01] {
            let t = threshold(&s, ThresholdRule::Fpr(p)).unwrap();
            assert!((t - (-p.ln())).abs() < 0.05 * -p.ln(), "p {p}: threshold {t}");
            let flagged = s.iter().filter(|&&v| v > t).count() as f64 / s.len() as f64;
            assert!((flagged - p).abs() < 1e-4, "p {p}: flagged {flagged}");
        }
    }
}
