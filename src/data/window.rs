//! Sliding windows over a time series: a table of `T` steps (rows) by `C` channels (columns)
//! becomes rows of `C * W` values, one per window of `W` consecutive steps, channel-major
//! `(C, 1, W)` so that a window reads as a one-row image of `C` channels. A model trained on
//! windows stores its [`Windows`] and reads every window (stride 1) at inference;
//! [`StepScores`] turns per-window scores back into one score per step, the mean over the
//! windows that contain it.

use crate::error::{Error, Result};
use crate::tensor::Matrix;
use std::collections::VecDeque;

/// How a series is cut into windows; stored in the model file (metadata key `windows`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Windows {
    /// Steps per window.
    pub length: usize,
    /// Steps between the starts of consecutive training windows (inference reads every
    /// window).
    pub stride: usize,
}

impl Windows {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Setting`] for a length below 2 or a stride of 0.
    pub fn validate(&self) -> Result<()> {
        if self.length < 2 {
            return Err(Error::setting("window", self.length, "a window holds at least 2 steps"));
        }
        if self.stride == 0 {
            return Err(Error::setting("stride", self.stride, "the stride is at least 1 step"));
        }
        Ok(())
    }

    /// The same windows at stride 1: every window, as a trained model reads a series.
    pub fn every(&self) -> Windows {
        Windows { stride: 1, ..*self }
    }

    /// The number of windows over `steps` steps (0 when the series is shorter than a window).
    pub fn count(&self, steps: usize) -> usize {
        if steps < self.length {
            0
        } else {
            (steps - self.length) / self.stride + 1
        }
    }

    /// The windows of the series `x` (steps × channels), `self.stride` apart, as rows of
    /// `C * W` values, channel-major; `path` names the series in errors.
    ///
    /// # Errors
    /// [`Error::Data`] when the series is shorter than one window.
    pub fn apply(&self, path: &std::path::Path, x: &Matrix) -> Result<Matrix> {
        self.validate()?;
        let n = self.count(x.rows());
        if n == 0 {
            return Err(self.too_short(path, x.rows()));
        }
        let c = x.cols();
        let width = crate::bounds::checked_product(&[c, self.length])
            .ok_or_else(|| Error::data(path, "windows too wide for this machine"))?;
        let mut out = Matrix::zeros(n, width);
        for i in 0..n {
            write_window(x, i * self.stride, self.length, out.row_mut(i));
        }
        Ok(out)
    }

    /// The error for a series of `steps` steps, shorter than a window.
    pub fn too_short(&self, path: &std::path::Path, steps: usize) -> Error {
        Error::data(
            path,
            format!("has {steps} rows (time steps); a window needs at least {}", self.length),
        )
    }

    /// The names of a window's values from the channels' names: `NAME@i` for step `i` of the
    /// window, channel-major.
    pub fn names(&self, channels: &[String]) -> Vec<String> {
        channels
            .iter()
            .flat_map(|c| (0..self.length).map(move |i| format!("{c}@{i}")))
            .collect()
    }

    /// The channels' names back from the names of a window's values (see [`Windows::names`]);
    /// `None` when they are not such names.
    pub fn channel_names(&self, names: &[String]) -> Option<Vec<String>> {
        if self.length == 0 || names.is_empty() || !names.len().is_multiple_of(self.length) {
            return None;
        }
        names
            .chunks_exact(self.length)
            .map(|c| c[0].strip_suffix("@0").map(str::to_string))
            .collect()
    }

    /// Each window's label: the label of its last step.
    pub fn labels(&self, steps: &[String]) -> Vec<String> {
        (0..self.count(steps.len()))
            .map(|i| steps[i * self.stride + self.length - 1].clone())
            .collect()
    }

    /// The image shape `(height, width, channels)` a window has: one row of `length` steps.
    pub fn image_shape(&self, channels: usize) -> (usize, usize, usize) {
        (1, self.length, channels)
    }

    /// The number of channels of a model with `width` inputs reading these windows.
    ///
    /// # Errors
    /// [`Error::Config`] when `width` is not a multiple of the length.
    pub fn channels(&self, width: usize) -> Result<usize> {
        if self.length == 0 || !width.is_multiple_of(self.length) {
            return Err(Error::Config(format!(
                "a model of {width} inputs cannot read windows of {} steps",
                self.length
            )));
        }
        Ok(width / self.length)
    }
}

/// Writes the window of `len` steps of `x` starting at `start` into `out`, channel-major.
fn write_window(x: &Matrix, start: usize, len: usize, out: &mut [f32]) {
    for (c, o) in out.chunks_exact_mut(len).enumerate() {
        for (t, v) in o.iter_mut().enumerate() {
            *v = x.row(start + t)[c];
        }
    }
}

/// Every window (stride 1) of a series read a chunk of steps at a time: each chunk gives the
/// windows that end in it, using the last `length - 1` steps of the chunks before.
#[derive(Clone, Debug)]
pub struct Windower {
    length: usize,
    tail: Matrix,
}

impl Windower {
    /// Windows of `length` steps over `channels` channels.
    pub fn new(length: usize, channels: usize) -> Self {
        Windower {
            length,
            tail: Matrix::zeros(0, channels),
        }
    }

    /// Steps per window.
    pub fn length(&self) -> usize {
        self.length
    }

    /// The windows that end among the steps of `x` (steps × channels), in order.
    ///
    /// # Panics
    /// When `x` has another number of channels.
    #[track_caller]
    pub fn push(&mut self, x: &Matrix) -> Matrix {
        assert_eq!(x.cols(), self.tail.cols(), "a chunk of another number of channels");
        let c = x.cols();
        let mut joined = Vec::with_capacity((self.tail.rows() + x.rows()) * c);
        joined.extend_from_slice(self.tail.as_slice());
        joined.extend_from_slice(x.as_slice());
        let steps = joined.len() / c.max(1);
        let all = Matrix::from_vec(steps, c, joined).expect("rows of the channels' width");
        let n = (steps + 1).saturating_sub(self.length);
        let mut out = Matrix::zeros(n, c * self.length);
        for i in 0..n {
            write_window(&all, i, self.length, out.row_mut(i));
        }
        let keep = steps.min(self.length - 1);
        self.tail = all.slice_rows(steps - keep, steps);
        out
    }
}

/// Per-step scores from per-window scores (every window, in order): a step's score is the
/// mean of the scores of the windows that contain it. A step's score is final once the window
/// that starts at it has come; the last `length - 1` steps are final at [`StepScores::finish`].
#[derive(Clone, Debug)]
pub struct StepScores {
    length: usize,
    /// The sums and counts of the steps from the next one to hand out on.
    pending: VecDeque<(f64, u32)>,
    windows: usize,
}

impl StepScores {
    /// For windows of `length` steps.
    pub fn new(length: usize) -> Self {
        StepScores {
            length,
            pending: VecDeque::new(),
            windows: 0,
        }
    }

    /// Takes the scores of the next windows; returns the steps' scores made final by them.
    pub fn push(&mut self, window_scores: &[f64]) -> Vec<f64> {
        let mut done = Vec::with_capacity(window_scores.len());
        for &s in window_scores {
            while self.pending.len() < self.length {
                self.pending.push_back((0.0, 0));
            }
            for p in self.pending.iter_mut().take(self.length) {
                p.0 += s;
                p.1 += 1;
            }
            let (sum, n) = self.pending.pop_front().expect("a window covers its first step");
            done.push(sum / f64::from(n));
            self.windows += 1;
        }
        done
    }

    /// The scores of the last steps, covered by no later window.
    pub fn finish(self) -> Vec<f64> {
        self.pending.into_iter().map(|(s, n)| s / f64::from(n.max(1))).collect()
    }

    /// Windows taken so far.
    pub fn windows(&self) -> usize {
        self.windows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use std::path::Path;

    fn series(steps: usize, channels: usize, seed: u64) -> Matrix {
        let mut rng = Rng::new(seed);
        let v = (0..steps * channels).map(|_| rng.normal()).collect();
        Matrix::from_vec(steps, channels, v).unwrap()
    }

    #[test]
    fn windows_are_channel_major_and_strided() {
        // Step t of channel c holds 10 t + c.
        let x = Matrix::from_vec(
            7,
            2,
            (0..7).flat_map(|t| [10.0 * t as f32, 10.0 * t as f32 + 1.0]).collect(),
        )
        .unwrap();
        let w = Windows { length: 3, stride: 2 };
        let m = w.apply(Path::new("s.csv"), &x).unwrap();
        assert_eq!(m.shape(), (3, 6));
        assert_eq!(m.row(0), &[0.0, 10.0, 20.0, 1.0, 11.0, 21.0]);
        assert_eq!(m.row(2), &[40.0, 50.0, 60.0, 41.0, 51.0, 61.0]);
        assert_eq!(w.count(7), 3);
        assert_eq!(w.count(8), 3);
        assert_eq!(w.count(2), 0);
        let names = w.names(&["a".into(), "b".into()]);
        assert_eq!(names, ["a@0", "a@1", "a@2", "b@0", "b@1", "b@2"]);
        assert_eq!(w.channel_names(&names).unwrap(), ["a", "b"]);
        assert_eq!(w.channel_names(&names[..4]), None);
        let labels: Vec<String> = (0..7).map(|t| t.to_string()).collect();
        assert_eq!(w.labels(&labels), ["2", "4", "6"]);
    }

    #[test]
    fn a_short_series_and_bad_settings_are_named() {
        let w = Windows { length: 5, stride: 1 };
        let e = w.apply(Path::new("s.csv"), &series(4, 1, 1)).unwrap_err().to_string();
        assert!(
            e.contains("s.csv") && e.contains("4 rows") && e.contains("at least 5"),
            "{e}"
        );
        assert!(Windows { length: 1, stride: 1 }.validate().is_err());
        assert!(Windows { length: 4, stride: 0 }.validate().is_err());
        assert!(w.channels(12).is_err());
        assert_eq!(w.channels(15).unwrap(), 3);
    }

    /// Windows made a chunk at a time are the windows of the whole series, for chunks shorter
    /// and longer than a window.
    #[test]
    fn streamed_windows_match_the_whole_series() {
        let x = series(53, 3, 2);
        let whole = Windows { length: 6, stride: 1 }.apply(Path::new("s"), &x).unwrap();
        for chunk in [1, 4, 6, 7, 53] {
            let mut w = Windower::new(6, 3);
            let mut got = Vec::new();
            let mut start = 0;
            while start < x.rows() {
                let end = (start + chunk).min(x.rows());
                got.extend_from_slice(w.push(&x.slice_rows(start, end)).as_slice());
                start = end;
            }
            assert_eq!(got, whole.as_slice(), "chunks of {chunk}");
        }
    }

    /// Step scores are the means over the containing windows, against a direct count, however
    /// the window scores arrive.
    #[test]
    fn step_scores_average_the_windows_that_contain_each_step() {
        let (steps, len) = (23, 5);
        let n = steps - len + 1;
        let mut rng = Rng::new(3);
        let win: Vec<f64> = (0..n).map(|_| f64::from(rng.uniform())).collect();
        let want: Vec<f64> = (0..steps)
            .map(|t| {
                let s: Vec<f64> = (0..n).filter(|&i| i <= t && t < i + len).map(|i| win[i]).collect();
                s.iter().sum::<f64>() / s.len() as f64
            })
            .collect();
        for chunk in [1, 3, n] {
            let mut acc = StepScores::new(len);
            let mut got = Vec::new();
            for c in win.chunks(chunk) {
                got.extend(acc.push(c));
            }
            assert_eq!(acc.windows(), n);
            got.extend(acc.finish());
            assert_eq!(got.len(), steps);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-12, "{g} vs {w}");
            }
        }
    }
}
