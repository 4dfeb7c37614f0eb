//! Feature scaling, fitted on training data and stored in the model.

use crate::tensor::Matrix;
use serde::{Deserialize, Serialize};

/// How features are scaled before they reach the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// Values are used as they are.
    #[default]
    None,
    /// Each feature mapped to [0, 1] by the training minimum and maximum.
    Minmax,
    /// Each feature standardized to zero mean and unit variance.
    Standard,
}

impl Scaling {
    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scaling::None => "none",
            Scaling::Minmax => "minmax",
            Scaling::Standard => "standard",
        }
    }
}

impl std::fmt::Display for Scaling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Scaling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Scaling::None),
            "minmax" => Ok(Scaling::Minmax),
            "standard" => Ok(Scaling::Standard),
            _ => Err(format!("unknown scaling `{s}`; expected none, minmax or standard")),
        }
    }
}

/// A fitted scaler: `scaled = (x - offset) / scale` per feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Scaler {
    /// The kind it was fitted as.
    pub kind: Scaling,
    /// Per-feature offset (empty for `None`).
    pub offset: Vec<f32>,
    /// Per-feature divisor (empty for `None`); constant features get 1.
    pub scale: Vec<f32>,
}

impl Scaler {
    /// Fits `kind` on the rows of `x` (statistics in f64).
    pub fn fit<'a>(kind: Scaling, x: impl Into<crate::tensor::MatrixRef<'a>>) -> Scaler {
        let x = x.into();
        let mut f = ScalerFit::new(kind, x.cols());
        for pass in 0..f.passes() {
            f.add(pass, x);
        }
        f.finish()
    }

    /// Checks a scaler (from a file) against an input width: one offset and one scale per
    /// feature (or none at all), offsets finite, scales finite and positive.
    ///
    /// # Errors
    /// [`crate::error::Error::Config`] saying what is wrong.
    pub fn check(&self, width: usize) -> crate::error::Result<()> {
        let bad = |m: String| Err(crate::error::Error::Config(format!("scaler: {m}")));
        if self.offset.is_empty() && self.scale.is_empty() {
            return Ok(());
        }
        if self.offset.len() != width || self.scale.len() != width {
            return bad(format!(
                "{} offsets and {} scales, the model reads {width} features",
                self.offset.len(),
                self.scale.len()
            ));
        }
        if let Some(j) = self.offset.iter().position(|o| !o.is_finite()) {
            return bad(format!("the offset of feature {j} is {}", self.offset[j]));
        }
        if let Some(j) = self.scale.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return bad(format!(
                "the scale of feature {j} is {}; scales must be positive and finite",
                self.scale[j]
            ));
        }
        Ok(())
    }

    /// Whether this scaler changes values at all.
    pub fn is_identity(&self) -> bool {
        self.offset.is_empty()
    }

    /// Scales `x` in place.
    pub fn transform(&self, x: &mut Matrix) {
        if self.is_identity() {
            return;
        }
        let inv: Vec<f32> = self.scale.iter().map(|s| 1.0 / s).collect();
        for row in x.as_mut_slice().chunks_exact_mut(self.offset.len()) {
            for ((v, o), s) in row.iter_mut().zip(&self.offset).zip(&inv) {
                *v = (*v - o) * s;
            }
        }
    }

    /// Undoes [`Scaler::transform`] in place.
    pub fn inverse(&self, x: &mut Matrix) {
        if self.is_identity() {
            return;
        }
        for row in x.as_mut_slice().chunks_exact_mut(self.offset.len()) {
            for ((v, o), s) in row.iter_mut().zip(&self.offset).zip(&self.scale) {
                *v = *v * s + o;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_fits() {
        let x = Matrix::from_rows(&[[1.0, 5.0, 3.0], [3.0, 5.0, -1.0], [2.0, 5.0, 1.0]]).unwrap();
        for kind in [Scaling::None, Scaling::Minmax, Scaling::Standard] {
            let s = Scaler::fit(kind, &x);
            let mut y = x.clone();
            s.transform(&mut y);
            if kind == Scaling::Minmax {
                assert_eq!(y.row(0), &[0.0, 0.0, 1.0]);
                assert_eq!(y.row(1), &[1.0, 0.0, 0.0]);
            }
            if kind == Scaling::Standard {
                let m: f32 = (0..3).map(|i| y.row(i)[0]).sum::<f32>() / 3.0;
                assert!(m.abs() < 1e-6);
            }
            s.inverse(&mut y);
            for (a, b) in y.as_slice().iter().zip(x.as_slice()) {
                assert!((a - b).abs() < 1e-5);
            }
        }
    }
}

/// A scaler fitted over rows that come in pieces, exactly as [`Scaler::fit`] over all of them
/// in the same order: [`ScalerFit::passes`] passes over the rows (none for `None`, one for
/// `Minmax`, two for `Standard`: the mean, then the spread around it), each piece given to
/// [`ScalerFit::add`] with its pass.
#[derive(Clone, Debug)]
pub struct ScalerFit {
    kind: Scaling,
    rows: usize,
    lo: Vec<f32>,
    hi: Vec<f32>,
    sum: Vec<f64>,
    mean: Vec<f64>,
    var: Vec<f64>,
}

impl ScalerFit {
    /// Nothing seen yet, for rows of `d` features.
    pub fn new(kind: Scaling, d: usize) -> Self {
        ScalerFit {
            kind,
            rows: 0,
            lo: vec![f32::INFINITY; d],
            hi: vec![f32::NEG_INFINITY; d],
            sum: vec![0.0; d],
            mean: Vec::new(),
            var: vec![0.0; d],
        }
    }

    /// Passes over the rows the fit needs.
    pub fn passes(&self) -> usize {
        match self.kind {
            Scaling::None => 0,
            Scaling::Minmax => 1,
            Scaling::Standard => 2,
        }
    }

    /// Adds rows `x` to pass `pass` (0-based; every row of pass 0 before any of pass 1).
    pub fn add<'a>(&mut self, pass: usize, x: impl Into<crate::tensor::MatrixRef<'a>>) {
        let x = x.into();
        match (self.kind, pass) {
            (Scaling::Minmax, 0) => {
                for i in 0..x.rows() {
                    for (j, &v) in x.row(i).iter().enumerate() {
                        self.lo[j] = self.lo[j].min(v);
                        self.hi[j] = self.hi[j].max(v);
                    }
                }
            }
            (Scaling::Standard, 0) => {
                for i in 0..x.rows() {
                    for (s, &v) in self.sum.iter_mut().zip(x.row(i)) {
                        *s += v as f64;
                    }
                }
            }
            (Scaling::Standard, _) => {
                if self.mean.is_empty() {
                    let n = self.rows.max(1) as f64;
                    self.mean = self.sum.iter().map(|s| s / n).collect();
                }
                for i in 0..x.rows() {
                    for ((s, &v), m) in self.var.iter_mut().zip(x.row(i)).zip(&self.mean) {
                        *s += (v as f64 - m).powi(2);
                    }
                }
                return;
            }
            _ => {}
        }
        self.rows += x.rows();
    }

    /// What pass `pass` has gathered so far, to [`ScalerFit::combine`] with other fits' over
    /// other rows (ranks of a data-parallel run).
    pub fn partial(&self, pass: usize) -> Vec<f64> {
        let rows = self.rows as f64;
        match (self.kind, pass) {
            (Scaling::Minmax, 0) => std::iter::once(rows)
                .chain(self.lo.iter().chain(&self.hi).map(|&v| f64::from(v)))
                .collect(),
            (Scaling::Standard, 0) => std::iter::once(rows).chain(self.sum.iter().copied()).collect(),
            (Scaling::Standard, _) => self.var.clone(),
            _ => Vec::new(),
        }
    }

    /// Replaces pass `pass`'s state by the combination of `parts` (every fit's
    /// [`ScalerFit::partial`] of that pass, this one's included), summed in their order: the
    /// fit then stands for all their rows (every rank that combines the same parts gets the
    /// same scaler; one part alone leaves the fit as it was).
    pub fn combine(&mut self, pass: usize, parts: &[&[f64]]) {
        let d = self.sum.len();
        match (self.kind, pass) {
            (Scaling::Minmax, 0) => {
                self.rows = parts.iter().map(|p| p[0] as usize).sum();
                self.lo.fill(f32::INFINITY);
                self.hi.fill(f32::NEG_INFINITY);
                for p in parts {
                    for j in 0..d {
                        self.lo[j] = self.lo[j].min(p[1 + j] as f32);
                        self.hi[j] = self.hi[j].max(p[1 + d + j] as f32);
                    }
                }
            }
            (Scaling::Standard, 0) => {
                self.rows = parts.iter().map(|p| p[0] as usize).sum();
                self.sum.fill(0.0);
                for p in parts {
                    for (s, v) in self.sum.iter_mut().zip(&p[1..]) {
                        *s += v;
                    }
                }
            }
            (Scaling::Standard, _) => {
                self.var.fill(0.0);
                for p in parts {
                    for (s, v) in self.var.iter_mut().zip(p.iter()) {
                        *s += v;
                    }
                }
            }
            _ => {}
        }
    }

    /// The fitted scaler.
    pub fn finish(mut self) -> Scaler {
        let n = self.rows.max(1) as f64;
        let (offset, scale) = match self.kind {
            Scaling::None => (Vec::new(), Vec::new()),
            Scaling::Minmax => {
                let scale = self
                    .lo
                    .iter()
                    .zip(&self.hi)
                    .map(|(&l, &h)| if h > l { h - l } else { 1.0 })
                    .collect();
                let lo = self
                    .lo
                    .into_iter()
                    .map(|l| if l.is_finite() { l } else { 0.0 })
                    .collect();
                (lo, scale)
            }
            Scaling::Standard => {
                if self.mean.is_empty() {
                    self.mean = self.sum.iter().map(|s| s / n).collect();
                }
                let scale = self
                    .var
                    .iter()
                    .map(|v| {
                        let sd = (v / n).sqrt();
                        if sd > 1e-12 { sd as f32 } else { 1.0 }
                    })
                    .collect();
                (self.mean.into_iter().map(|m| m as f32).collect(), scale)
            }
        };
        Scaler {
            kind: self.kind,
            offset,
            scale,
        }
    }
}
