//! Linear probe: multinomial logistic regression with an L2 penalty, trained to convergence by
//! L-BFGS on the full batch — the standard judge of learned features.
//!
//! Features are standardized with the training statistics. The objective is the mean
//! cross-entropy plus `l2 / 2 · ‖W‖²` (the bias is not penalized). Every product runs through
//! [`kernels::matmul_rows`], so the fit is the same for any
//! number of threads.

use crate::error::{Error, Result};
use crate::kernels::{self, Precision};
use crate::rng::Rng;
use crate::tensor::Matrix;
use rayon::prelude::*;
use serde::Serialize;

/// Settings of [`fit`].
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeConfig {
    /// L2 strength; `None` picks it from [`L2_GRID`] by accuracy on a held-out tenth of the
    /// training rows, then refits on all of them.
    pub l2: Option<f64>,
    /// Most L-BFGS iterations.
    pub max_iter: usize,
    /// Converged when the gradient's largest entry falls below this.
    pub tol: f64,
    /// Seed of the held-out split.
    pub seed: u64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            l2: None,
            max_iter: 1000,
            tol: 1e-5,
            seed: 0,
        }
    }
}

/// L2 strengths tried when none is given (largest first: ties go to the simpler model).
pub const L2_GRID: [f64; 4] = [1e-1, 1e-2, 1e-3, 1e-4];

/// Pairs of L-BFGS history kept (the usual 10).
const HISTORY: usize = 10;

/// A fitted probe.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    /// Number of classes.
    pub classes: usize,
    /// Feature means of the training rows.
    pub mean: Vec<f32>,
    /// Feature standard deviations (1 for constant features).
    pub std: Vec<f32>,
    /// Weights, `(features, classes)` row-major, on standardized features.
    pub weight: Vec<f32>,
    /// Biases, one per class.
    pub bias: Vec<f32>,
    /// The L2 strength used.
    pub l2: f64,
    /// L-BFGS iterations of the final fit.
    pub iterations: usize,
    /// Whether the gradient tolerance was reached.
    pub converged: bool,
    /// Final objective value.
    pub loss: f64,
    /// Held-out accuracy of each L2 strength tried, when chosen automatically.
    pub search: Vec<(f64, f64)>,
}

/// Fits a probe of `classes` classes to rows `x` with class indices `y`.
///
/// # Errors
/// [`Error::InvalidData`] for mismatched lengths, no rows, a class index out of range, or
/// non-finite features; [`Error::Config`] for a negative L2 strength.
pub fn fit(x: &Matrix, y: &[usize], classes: usize, cfg: &ProbeConfig) -> Result<Probe> {
    let bad = |m: String| Error::InvalidData {
        what: "probe training data".into(),
        message: m,
    };
    if x.rows() != y.len() || x.rows() == 0 {
        return Err(bad(format!("{} rows but {} labels", x.rows(), y.len())));
    }
    if let Some(&c) = y.iter().find(|&&c| c >= classes) {
        return Err(bad(format!("class index {c} with only {classes} classes")));
    }
    if let Some((r, c)) = x.find_non_finite() {
        return Err(bad(format!("non-finite value at row {r}, column {c}")));
    }
    if cfg.l2.is_some_and(|l| !(l >= 0.0 && l.is_finite())) {
        return Err(Error::setting(
            "l2",
            cfg.l2.unwrap_or_default(),
            "must be finite and >= 0",
        ));
    }
    let (mean, std) = standardization(x);
    let mut search = Vec::new();
    let l2 = match cfg.l2 {
        Some(l) => l,
        None => {
            let mut idx: Vec<usize> = (0..x.rows()).collect();
            Rng::new(cfg.seed).shuffle(&mut idx);
            let held = (x.rows() / 10).max(1).min(x.rows() - 1);
            let (va, tr) = idx.split_at(held);
            let (xt, yt) = (x.select_rows(tr), tr.iter().map(|&i| y[i]).collect::<Vec<_>>());
            let (xv, yv) = (x.select_rows(va), va.iter().map(|&i| y[i]).collect::<Vec<_>>());
            let mut best = (f64::NEG_INFINITY, L2_GRID[0]);
            for &l in &L2_GRID {
                let p = fit_one(&xt, &yt, classes, &mean, &std, l, cfg)?;
                let acc = accuracy(&p.predict(&xv), &yv);
                search.push((l, acc));
                if acc > best.0 {
                    best = (acc, l);
                }
            }
            best.1
        }
    };
    let mut p = fit_one(x, y, classes, &mean, &std, l2, cfg)?;
    p.search = search;
    Ok(p)
}

fn standardization(x: &Matrix) -> (Vec<f32>, Vec<f32>) {
    let (n, d) = x.shape();
    let mut mean = vec![0f64; d];
    for i in 0..n {
        for (m, &v) in mean.iter_mut().zip(x.row(i)) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0f64; d];
    for i in 0..n {
        for ((s, &v), m) in var.iter_mut().zip(x.row(i)).zip(&mean) {
            *s += (f64::from(v) - m).powi(2);
        }
    }
    let std = var
        .iter()
        .map(|&s| {
            let sd = (s / n as f64).sqrt();
            if sd > 1e-12 { sd as f32 } else { 1.0 }
        })
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}

/// Standardized copy of `x` and its transpose.
fn prepare(x: &Matrix, mean: &[f32], std: &[f32]) -> (Matrix, Matrix) {
    let (n, d) = x.shape();
    let xs = standardize(x, mean, std);
    let mut xt = Matrix::zeros(d, n);
    for i in 0..n {
        for (j, &v) in xs.row(i).iter().enumerate() {
            xt.row_mut(j)[i] = v;
        }
    }
    (xs, xt)
}

struct Problem<'a> {
    xs: &'a Matrix,
    xt: &'a Matrix,
    y: &'a [usize],
    classes: usize,
    l2: f64,
    logits: Vec<f32>,
    dw: Vec<f32>,
}

impl Problem<'_> {
    /// Objective and gradient at `theta` = (W row-major (d, c), then b).
    fn eval(&mut self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (n, d) = self.xs.shape();
        let c = self.classes;
        let w: Vec<f32> = theta[..d * c].iter().map(|&v| v as f32).collect();
        let b = &theta[d * c..];
        kernels::matmul_rows(
            &mut self.logits,
            kernels::view(self.xs.as_slice(), n, d),
            kernels::view(&w, d, c),
            false,
            Precision::F32,
            |_, _| {},
        );
        // Softmax in place, turned into the logit gradient (p - onehot) / n.
        // Rows in fixed blocks in parallel; block losses are added in order.
        let y = self.y;
        let block_loss: Vec<f64> = self
            .logits
            .par_chunks_mut(kernels::ROW_BLOCK * c)
            .enumerate()
            .map(|(bi, rows)| {
                let mut loss = 0f64;
                let mut e = vec![0f64; c];
                for (r, row) in rows.chunks_exact_mut(c).enumerate() {
                    let yi = y[bi * kernels::ROW_BLOCK + r];
                    let mut mx = f64::NEG_INFINITY;
                    for ((ek, &v), &bb) in e.iter_mut().zip(row.iter()).zip(b) {
                        *ek = f64::from(v) + bb;
                        mx = mx.max(*ek);
                    }
                    loss -= e[yi] - mx;
                    let mut sum = 0f64;
                    e.iter_mut().for_each(|v| {
                        *v = (*v - mx).exp();
                        sum += *v;
                    });
                    loss += sum.ln();
                    for (k, (out, &ek)) in row.iter_mut().zip(&e).enumerate() {
                        let p = ek / sum - if k == yi { 1.0 } else { 0.0 };
                        *out = (p / n as f64) as f32;
                    }
                }
                loss
            })
            .collect();
        let loss: f64 = block_loss.iter().sum();
        kernels::matmul_rows(
            &mut self.dw,
            kernels::view(self.xt.as_slice(), d, n),
            kernels::view(&self.logits, n, c),
            false,
            Precision::F32,
            |_, _| {},
        );
        let mut reg = 0f64;
        for (k, (g, &t)) in grad[..d * c].iter_mut().zip(&theta[..d * c]).enumerate() {
            *g = f64::from(self.dw[k]) + self.l2 * t;
            reg += t * t;
        }
        for (k, g) in grad[d * c..].iter_mut().enumerate() {
            *g = self.logits.iter().skip(k).step_by(c).map(|&v| f64::from(v)).sum();
        }
        loss / n as f64 + 0.5 * self.l2 * reg
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn fit_one(
    x: &Matrix,
    y: &[usize],
    classes: usize,
    mean: &[f32],
    std: &[f32],
    l2: f64,
    cfg: &ProbeConfig,
) -> Result<Probe> {
    let (n, d) = x.shape();
    let (xs, xt) = prepare(x, mean, std);
    let dim = d * classes + classes;
    let mut prob = Problem {
        xs: &xs,
        xt: &xt,
        y,
        classes,
        l2,
        logits: vec![0.0; n * classes],
        dw: vec![0.0; d * classes],
    };
    let mut theta = vec![0f64; dim];
    let mut g = vec![0f64; dim];
    let mut f = prob.eval(&theta, &mut g);
    let (mut s_hist, mut y_hist): (Vec<Vec<f64>>, Vec<Vec<f64>>) = (Vec::new(), Vec::new());
    let mut iterations = 0;
    let mut converged = false;
    let mut g_new = vec![0f64; dim];
    let mut trial = vec![0f64; dim];
    while iterations < cfg.max_iter {
        if g.iter().fold(0f64, |m, v| m.max(v.abs())) < cfg.tol {
            converged = true;
            break;
        }
        // Two-loop recursion: direction = -H g.
        let mut q = g.clone();
        let mut alpha = vec![0f64; s_hist.len()];
        for i in (0..s_hist.len()).rev() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            alpha[i] = rho * dot(&s_hist[i], &q);
            q.iter_mut().zip(&y_hist[i]).for_each(|(a, b)| *a -= alpha[i] * b);
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(s), Some(yv)) => dot(s, yv) / dot(yv, yv),
            _ => 1.0 / g.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for i in 0..s_hist.len() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            let beta = rho * dot(&y_hist[i], &q);
            q.iter_mut()
                .zip(&s_hist[i])
                .for_each(|(a, b)| *a += (alpha[i] - beta) * b);
        }
        let dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let slope = dot(&g, &dir);
        if !(slope < 0.0) {
            // Not a descent direction (numerical noise): restart from steepest descent, once;
            // steepest descent itself not descending (a NaN slope) ends the search. A restart
            // counts as an iteration, so the loop always ends.
            iterations += 1;
            if s_hist.is_empty() {
                break;
            }
            s_hist.clear();
            y_hist.clear();
            continue;
        }
        // Backtracking line search (Armijo).
        let mut step = 1.0;
        let mut f_new;
        loop {
            trial
                .iter_mut()
                .zip(&theta)
                .zip(&dir)
                .for_each(|((t, &a), &b)| *t = a + step * b);
            f_new = prob.eval(&trial, &mut g_new);
            if f_new <= f + 1e-4 * step * slope || step < 1e-10 {
                break;
            }
            step *= 0.5;
        }
        iterations += 1;
        let s: Vec<f64> = trial.iter().zip(&theta).map(|(a, b)| a - b).collect();
        let yv: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let progress = f - f_new;
        std::mem::swap(&mut theta, &mut trial);
        std::mem::swap(&mut g, &mut g_new);
        f = f_new;
        if dot(&s, &yv) > 1e-12 {
            if s_hist.len() == HISTORY {
                s_hist.remove(0);
                y_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(yv);
        }
        if progress.abs() <= 1e-12 * f.abs().max(1.0) {
            // No more progress at f32 precision of the products.
            converged = true;
            break;
        }
    }
    Ok(Probe {
        classes,
        mean: mean.to_vec(),
        std: std.to_vec(),
        weight: theta[..d * classes].iter().map(|&v| v as f32).collect(),
        bias: theta[d * classes..].iter().map(|&v| v as f32).collect(),
        l2,
        iterations,
        converged,
        loss: f,
        search: Vec::new(),
    })
}

impl Probe {
    /// Class probabilities, `(rows, classes)`.
    ///
    /// # Panics
    /// If `x` does not have the training width.
    #[track_caller]
    pub fn predict_proba(&self, x: &Matrix) -> Matrix {
        assert_eq!(x.cols(), self.mean.len(), "probe: wrong feature count");
        let xs = standardize(x, &self.mean, &self.std);
        let c = self.classes;
        let mut out = Matrix::zeros(x.rows(), c);
        kernels::matmul_rows(
            out.as_mut_slice(),
            kernels::view(xs.as_slice(), x.rows(), x.cols()),
            kernels::view(&self.weight, self.mean.len(), c),
            false,
            Precision::F32,
            |_, _| {},
        );
        for i in 0..x.rows() {
            let row = out.row_mut(i);
            row.iter_mut().zip(&self.bias).for_each(|(v, b)| *v += b);
            let mx = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let sum: f32 = row.iter().map(|&v| (v - mx).exp()).sum();
            row.iter_mut().for_each(|v| *v = (*v - mx).exp() / sum);
        }
        out
    }

    /// The most probable class of each row.
    pub fn predict(&self, x: &Matrix) -> Vec<usize> {
        let p = self.predict_proba(x);
        (0..p.rows()).map(|i| crate::tensor::argmax(p.row(i))).collect()
    }
}

fn standardize(x: &Matrix, mean: &[f32], std: &[f32]) -> Matrix {
    let mut xs = x.clone();
    for i in 0..x.rows() {
        for ((v, m), s) in xs.row_mut(i).iter_mut().zip(mean).zip(std) {
            *v = (*v - m) / s;
        }
    }
    xs
}

/// A fitted probe on test rows whose labels are names: predictions, probabilities and accuracy.
#[derive(Clone, Debug)]
pub struct Tested {
    /// Class probabilities of each test row.
    pub proba: Matrix,
    /// The predicted class name of each test row.
    pub predicted: Vec<String>,
    /// Fraction of test rows predicted right (a label never seen in training is an error).
    pub accuracy: f64,
    /// Test rows whose label was not among the training classes.
    pub unseen: usize,
}

impl Probe {
    /// Predicts test rows `x` and compares with their labels; `names` are the training
    /// classes in index order (from [`encode_labels`]).
    pub fn test(&self, x: &Matrix, labels: &[String], names: &[String]) -> Tested {
        let proba = self.predict_proba(x);
        let predicted: Vec<String> = (0..proba.rows())
            .map(|i| names[crate::tensor::argmax(proba.row(i))].clone())
            .collect();
        let hits = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
        Tested {
            accuracy: hits as f64 / labels.len().max(1) as f64,
            unseen: labels.iter().filter(|l| !names.contains(l)).count(),
            proba,
            predicted,
        }
    }
}

/// Fraction of `pred` equal to `truth`.
pub fn accuracy(pred: &[usize], truth: &[usize]) -> f64 {
    let hit = pred.iter().zip(truth).filter(|(a, b)| a == b).count();
    hit as f64 / truth.len().max(1) as f64
}

/// Class names in a stable order (numerically when all are numbers) and each label's index.
pub fn encode_labels(labels: &[String]) -> (Vec<String>, Vec<usize>) {
    let mut names: Vec<String> = labels.to_vec();
    names.sort();
    names.dedup();
    if names.iter().all(|s| s.parse::<f64>().is_ok()) {
        names.sort_by(|a, b| a.parse::<f64>().unwrap().total_cmp(&b.parse::<f64>().unwrap()));
    }
    let index: std::collections::HashMap<&str, usize> =
        names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let idx = labels.iter().map(|l| index[l.as_str()]).collect();
    (names, idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three Gaussian blobs in 4 dimensions.
    fn blobs(n: usize, seed: u64, spread: f32) -> (Matrix, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let centres = [[2.0, 0.0, 0.0, 1.0], [0.0, 2.0, 0.0, -1.0], [0.0, 0.0, 2.0, 0.0]];
        let mut data = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = i % 3;
            y.push(c);
            data.extend(centres[c].iter().map(|&m| m + spread * rng.normal()));
        }
        (Matrix::from_vec(n, 4, data).unwrap(), y)
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (x, y) = blobs(30, 1, 1.0);
        let (mean, std) = standardization(&x);
        let (xs, xt) = prepare(&x, &mean, &std);
        let mut p = Problem {
            xs: &xs,
            xt: &xt,
            y: &y,
            classes: 3,
            l2: 0.1,
            logits: vec![0.0; 90],
            dw: vec![0.0; 12],
        };
        let mut rng = Rng::new(2);
        let theta: Vec<f64> = (0..15).map(|_| f64::from(rng.normal()) * 0.5).collect();
        let mut g = vec![0.0; 15];
        p.eval(&theta, &mut g);
        let mut scratch = vec![0.0; 15];
        for k in 0..15 {
            let h = 1e-3;
            let (mut a, mut b) = (theta.clone(), theta.clone());
            a[k] += h;
            b[k] -= h;
            let num = (p.eval(&a, &mut scratch) - p.eval(&b, &mut scratch)) / (2.0 * h);
            assert!(
                (num - g[k]).abs() < 1e-3 * (1.0 + num.abs()),
                "param {k}: {num} vs {}",
                g[k]
            );
        }
    }

    #[test]
    fn converges_to_the_optimum_and_separates_blobs() {
        let (x, y) = blobs(300, 3, 0.5);
        let cfg = ProbeConfig {
            l2: Some(1e-2),
            ..ProbeConfig::default()
        };
        let p = fit(&x, &y, 3, &cfg).unwrap();
        assert!(p.converged, "{} iterations", p.iterations);
        assert!(accuracy(&p.predict(&x), &y) > 0.97);
        // At the optimum of a strictly convex objective, the gradient vanishes: recompute it.
        let (xs, xt) = prepare(&x, &p.mean, &p.std);
        let mut prob = Problem {
            xs: &xs,
            xt: &xt,
            y: &y,
            classes: 3,
            l2: 1e-2,
            logits: vec![0.0; 900],
            dw: vec![0.0; 12],
        };
        let theta: Vec<f64> = p.weight.iter().chain(&p.bias).map(|&v| f64::from(v)).collect();
        let mut g = vec![0.0; 15];
        prob.eval(&theta, &mut g);
        assert!(g.iter().all(|v| v.abs() < 1e-4), "{g:?}");
        // Probabilities are rows of a distribution.
        let pr = p.predict_proba(&x);
        assert!((pr.row(5).iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn automatic_l2_tries_the_grid_and_is_thread_invariant() {
        let (x, y) = blobs(200, 4, 1.5);
        let run = |t| crate::with_threads(Some(t), || fit(&x, &y, 3, &ProbeConfig::default()).unwrap()).unwrap();
        let (a, b) = (run(1), run(2));
        assert_eq!(a.search.len(), L2_GRID.len());
        assert_eq!(a.weight, b.weight);
        assert_eq!(a.l2, b.l2);
    }

    #[test]
    fn labels_are_indexed_in_numeric_order() {
        let l: Vec<String> = ["10", "2", "2", "1"].iter().map(|s| s.to_string()).collect();
        let (names, idx) = encode_labels(&l);
        assert_eq!(names, ["1", "2", "10"]);
        assert_eq!(idx, [2, 1, 1, 0]);
    }
}
