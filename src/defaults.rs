//! The anomaly detector's defaults, sized from the data: what `hourglass train` uses when
//! neither `--code` nor `--arch` is given, and what the Python `OutlierDetector` uses (the
//! same numbers; `python/tests/test_cli_parity.py` checks the two give the same model). Chosen
//! by measurement on the tables and one-class MNIST of `bench/anomaly` (BENCHMARKS.md).

use crate::data::scale::Scaling;
use crate::tensor::MatrixRef;

/// The training budget in rows seen: [`epochs`] gives about this many (one-class MNIST's
/// ~6,000 images of a digit reach their AUC in 10 epochs; BENCHMARKS.md).
pub const ROWS_SEEN: usize = 60_000;

/// The fewest and the most epochs [`epochs`] gives (a 200-row table needs the most).
pub const EPOCHS: (usize, usize) = (10, 50);

/// Rows held out for validation and early stopping (none below 20 rows).
pub const VALID_FRACTION: f32 = 0.1;

/// Epochs without a better validation loss before training stops (the best weights are kept).
pub const PATIENCE: usize = 10;

/// Neighbours of the code's local outlier factor in the `mse+lof` score.
pub const NEIGHBOURS: usize = crate::neighbours::DEFAULT_K;

/// The code's width for `n_features` inputs: three quarters of them, within [2, 32]. Wider than
/// the quarter it was until 2026-12-03: on the tables of `bench/anomaly` the code's
/// neighbourhood separates anomalies better when the code keeps most of a narrow table's
/// directions (semi-supervised mean ROC-AUC 0.822 → 0.853), and a wide input (images) still gets
/// 32 (BENCHMARKS.md).
pub fn code_width(n_features: usize) -> usize {
    (3 * n_features / 4).clamp(2, 32)
}

/// The one hidden layer's width: half the inputs, at least four times the code, at most 256.
pub fn hidden_width(n_features: usize, code: usize) -> usize {
    (n_features / 2).max(4 * code).min(256)
}

/// Passes over `rows` training rows (fewer with early stopping): about [`ROWS_SEEN`] rows in
/// all, within [`EPOCHS`].
pub fn epochs(rows: usize) -> usize {
    (ROWS_SEEN / rows.max(1)).clamp(EPOCHS.0, EPOCHS.1)
}

/// Rows per mini-batch for `rows` training rows: 1/32 of them within [16, 256], so that a
/// small table still gets hundreds of optimizer steps.
pub fn batch_size(rows: usize) -> usize {
    (rows / 32).clamp(16, 256)
}

/// The validation fraction for `rows` training rows: [`VALID_FRACTION`], or none when fewer
/// than 20 rows (or less than one row) would be held out.
pub fn valid_fraction(rows: usize) -> f32 {
    if rows < 20 || (rows as f32 * VALID_FRACTION).round() < 1.0 {
        0.0
    } else {
        VALID_FRACTION
    }
}

/// The feature scaling for training rows `x`: none when every value already lies in [0, 1]
/// (images, flags, probabilities: standardizing would blow up a rarely-lit pixel's tiny
/// spread), else standard. An encoded table (`table`: one-hot categories, imputed values) is
/// always standardized.
pub fn scaling(x: MatrixRef<'_>, table: bool) -> Scaling {
    let unit = x.as_slice().iter().all(|v| (0.0..=1.0).contains(v));
    if unit && !table && x.rows() > 0 {
        Scaling::None
    } else {
        Scaling::Standard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_data() {
        assert_eq!((code_width(2), code_width(4), code_width(9)), (2, 3, 6));
        assert_eq!((code_width(40), code_width(784)), (30, 32));
        assert_eq!(
            (hidden_width(9, 6), hidden_width(784, 32), hidden_width(60, 32)),
            (24, 256, 128)
        );
        assert_eq!((batch_size(200), batch_size(5000), batch_size(60_000)), (16, 156, 256));
        assert_eq!(
            (epochs(0), epochs(200), epochs(1200), epochs(2400), epochs(5923)),
            (50, 50, 50, 25, 10)
        );
        assert_eq!(epochs(60_000), 10);
        assert_eq!(
            (valid_fraction(19), valid_fraction(20), valid_fraction(1000)),
            (0.0, 0.1, 0.1)
        );
        let unit = [0.0f32, 0.5, 1.0, 0.25];
        let x = MatrixRef::new(2, 2, &unit).unwrap();
        assert_eq!(scaling(x, false), Scaling::None);
        assert_eq!(scaling(x, true), Scaling::Standard);
        let wide = [0.0f32, 1.5, 1.0, 0.25];
        assert_eq!(scaling(MatrixRef::new(2, 2, &wide).unwrap(), false), Scaling::Standard);
    }
}
