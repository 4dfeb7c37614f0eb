//! Gated recurrent units over sequences, with backpropagation through time.
//!
//! Rows are laid out as for [`super::lstm`]: a sequence of `steps` steps of `n_in` channels,
//! channel-major `(n_in, 1, steps)`; the output is every step's hidden state `(hidden, 1,
//! steps)`, or with `last` only the last step's. The gates of Cho et al. (2014) (Keras'
//! `reset_after=False`, ONNX's `linear_before_reset = 0`), in the order reset, update, new:
//!
//! ```text
//! r = σ(W_r [x_t ; h_{t-1}] + b_r),   z = σ(W_z [x_t ; h_{t-1}] + b_z)
//! n = tanh(W_n [x_t ; r ⊙ h_{t-1}] + b_n)
//! h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}                 (h_0 = 0)
//! ```
//!
//! Architecture files spell it `type = "gru"`, with the LSTM's keys.

use super::Init;
use crate::activation::Activation;
use crate::kernels::dot::dense_rows;
use crate::kernels::{bias_activation, outer_and_back};
use crate::rng::Rng;
use rayon::prelude::*;

/// A GRU layer: weight `W: (3H, n_in + H)` (input and recurrent weights side by side), bias
/// `b: (3H)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Gru {
    pub(crate) n_in: usize,
    pub(crate) hidden: usize,
    pub(crate) steps: usize,
    /// Output only the last step's hidden state.
    pub(crate) last: bool,
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
}

impl Gru {
    /// A layer of `hidden` units over sequences of `steps` steps of `n_in` channels, weights
    /// drawn by `init` (bound over `n_in + hidden` inputs), zero biases.
    pub fn new(n_in: usize, hidden: usize, steps: usize, last: bool, init: Init, rng: &mut Rng) -> Self {
        let cols = n_in + hidden;
        let a = init.bound(Activation::Tanh, cols, hidden);
        Gru {
            n_in,
            hidden,
            steps,
            last,
            weight: (0..3 * hidden * cols).map(|_| rng.uniform_range(-a, a)).collect(),
            bias: vec![0.0; 3 * hidden],
        }
    }

    /// Input width of a row: `n_in * steps`.
    pub fn n_in(&self) -> usize {
        self.n_in * self.steps
    }

    /// Output width of a row: `hidden * steps`, or `hidden` with `last`.
    pub fn n_out(&self) -> usize {
        if self.last {
            self.hidden
        } else {
            self.hidden * self.steps
        }
    }

    /// Values a row's forward pass keeps: per step `r`, `z`, `n` and the new `h`.
    pub fn cache_len(&self) -> usize {
        4 * self.hidden * self.steps
    }

    /// Fills `input` with `[x_t ; h_{t-1}]` from the row and its cache.
    fn input_at(&self, x: &[f32], cache: &[f32], t: usize, input: &mut [f32]) {
        let (h_n, t_n) = (self.hidden, self.steps);
        for (c, v) in input[..self.n_in].iter_mut().enumerate() {
            *v = x[c * t_n + t];
        }
        match t {
            0 => input[self.n_in..].fill(0.0),
            _ => input[self.n_in..].copy_from_slice(&cache[(t - 1) * 4 * h_n + 3 * h_n..t * 4 * h_n]),
        }
    }

    fn forward_one(&self, x: &[f32], y: &mut [f32], cache: &mut [f32]) {
        let (h_n, t_n, cols) = (self.hidden, self.steps, self.n_in + self.hidden);
        let (mut input, mut reset_input) = (vec![0.0f32; cols], vec![0.0f32; cols]);
        for t in 0..t_n {
            self.input_at(x, cache, t, &mut input);
            let mut step = vec![0.0f32; 4 * h_n];
            // Reset and update gates: one vectorized matrix-vector product in a fixed order.
            dense_rows(
                &mut step[..2 * h_n],
                &input,
                &self.weight[..2 * h_n * cols],
                cols,
                2 * h_n,
            );
            bias_activation(&mut step[..2 * h_n], &self.bias[..2 * h_n], Activation::Sigmoid, None);
            reset_input[..self.n_in].copy_from_slice(&input[..self.n_in]);
            for j in 0..h_n {
                reset_input[self.n_in + j] = step[j] * input[self.n_in + j];
            }
            let mut new = vec![0.0f32; h_n];
            dense_rows(&mut new, &reset_input, &self.weight[2 * h_n * cols..], cols, h_n);
            bias_activation(&mut new, &self.bias[2 * h_n..], Activation::Tanh, None);
            for j in 0..h_n {
                let n = new[j];
                let z = step[h_n + j];
                step[2 * h_n + j] = n;
                step[3 * h_n + j] = (1.0 - z) * n + z * input[self.n_in + j];
            }
            cache[t * 4 * h_n..(t + 1) * 4 * h_n].copy_from_slice(&step);
        }
        let h_at = |t: usize, j: usize| cache[t * 4 * h_n + 3 * h_n + j];
        if self.last {
            for (j, v) in y.iter_mut().enumerate() {
                *v = h_at(t_n - 1, j);
            }
        } else {
            for j in 0..h_n {
                for t in 0..t_n {
                    y[j * t_n + t] = h_at(t, j);
                }
            }
        }
    }

    /// x: (batch, n_in*steps) -> y: (batch, n_out); `cache`: (batch, cache_len).
    ///
    /// # Panics
    /// If a buffer has the wrong length.
    pub fn forward(&self, x: &[f32], y: &mut [f32], cache: &mut [f32]) {
        let (n_in, n_out, n_c) = (self.n_in(), self.n_out(), self.cache_len());
        let rows = x.len() / n_in.max(1);
        assert_eq!(x.len(), rows * n_in, "gru: input length");
        assert_eq!(y.len(), rows * n_out, "gru: output length");
        assert_eq!(cache.len(), rows * n_c, "gru: cache length");
        x.par_chunks(n_in)
            .zip(y.par_chunks_mut(n_out))
            .zip(cache.par_chunks_mut(n_c))
            .for_each(|((xr, yr), cr)| self.forward_one(xr, yr, cr));
    }

    fn backward_one(
        &self,
        x: &[f32],
        cache: &[f32],
        dy: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
        dx: Option<&mut [f32]>,
    ) {
        let (h_n, t_n, cols, n_in) = (self.hidden, self.steps, self.n_in + self.hidden, self.n_in);
        let mut dx = dx;
        let mut dh_next = vec![0.0f32; h_n];
        let (mut input, mut reset_input) = (vec![0.0f32; cols], vec![0.0f32; cols]);
        let (mut d_input, mut d_reset_input) = (vec![0.0f32; cols], vec![0.0f32; cols]);
        let (mut da_rz, mut da_n) = (vec![0.0f32; 2 * h_n], vec![0.0f32; h_n]);
        for t in (0..t_n).rev() {
            let step = &cache[t * 4 * h_n..(t + 1) * 4 * h_n];
            self.input_at(x, cache, t, &mut input);
            reset_input[..n_in].copy_from_slice(&input[..n_in]);
            for j in 0..h_n {
                reset_input[n_in + j] = step[j] * input[n_in + j];
            }
            let mut dh_prev = vec![0.0f32; h_n];
            for j in 0..h_n {
                let from_output = if self.last {
                    if t == t_n - 1 { dy[j] } else { 0.0 }
                } else {
                    dy[j * t_n + t]
                };
                let dh = from_output + dh_next[j];
                let (z, n, h_prev) = (step[h_n + j], step[2 * h_n + j], input[n_in + j]);
                da_rz[h_n + j] = dh * (h_prev - n) * z * (1.0 - z);
                da_n[j] = dh * (1.0 - z) * (1.0 - n * n);
                dh_prev[j] = dh * z;
            }
            // The new-gate row: its weights saw [x ; r ⊙ h].
            d_reset_input.fill(0.0);
            for (b, &d) in db[2 * h_n..].iter_mut().zip(&da_n) {
                *b += d;
            }
            let rows = 2 * h_n * cols..;
            outer_and_back(
                &mut dw[rows.clone()],
                &self.weight[rows],
                &da_n,
                &reset_input,
                &mut d_reset_input,
            );
            for j in 0..h_n {
                let (r, h_prev) = (step[j], input[n_in + j]);
                da_rz[j] = d_reset_input[n_in + j] * h_prev * r * (1.0 - r);
                dh_prev[j] += d_reset_input[n_in + j] * r;
            }
            // The reset and update rows: their weights saw [x ; h].
            d_input.fill(0.0);
            for (b, &d) in db.iter_mut().zip(&da_rz) {
                *b += d;
            }
            let rows = ..2 * h_n * cols;
            outer_and_back(&mut dw[rows], &self.weight[rows], &da_rz, &input, &mut d_input);
            if let Some(dx) = dx.as_deref_mut() {
                for c in 0..n_in {
                    dx[c * t_n + t] = d_input[c] + d_reset_input[c];
                }
            }
            for j in 0..h_n {
                dh_next[j] = dh_prev[j] + d_input[n_in + j];
            }
        }
    }

    /// Backward pass: `x` the layer's input, `cache` its forward cache, `dy` (batch, n_out)
    /// the gradient with respect to the output. Writes `dw` (3H, n_in + H), `db` (3H), and
    /// `dx` when given.
    ///
    /// # Panics
    /// If a buffer has the wrong length.
    pub fn backward(
        &self,
        x: &[f32],
        cache: &[f32],
        dy: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
        dx: Option<&mut [f32]>,
    ) {
        let (n_in, n_out, n_c) = (self.n_in(), self.n_out(), self.cache_len());
        assert_eq!(dw.len(), self.weight.len(), "gru: dw length");
        assert_eq!(db.len(), self.bias.len(), "gru: db length");
        super::lstm::backward_blocks((n_in, n_out, n_c), (x, cache, dy), dw, db, dx, |xr, cr, gr, w, b, d| {
            self.backward_one(xr, cr, gr, w, b, d)
        });
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;

    fn layer(n_in: usize, hidden: usize, steps: usize, last: bool) -> Gru {
        let mut rng = Rng::new(13);
        let mut l = Gru::new(n_in, hidden, steps, last, Init::Xavier, &mut rng);
        l.bias.iter_mut().for_each(|b| *b += rng.uniform_range(-0.3, 0.3));
        l
    }

    /// The forward pass against the gate equations written out in f64.
    #[test]
    fn forward_matches_the_recurrence() {
        let l = layer(2, 3, 5, false);
        let mut rng = Rng::new(4);
        let x: Vec<f32> = (0..l.n_in()).map(|_| rng.normal()).collect();
        let mut y = vec![0.0; l.n_out()];
        let mut cache = vec![0.0; l.cache_len()];
        l.forward(&x, &mut y, &mut cache);
        let (h_n, cols) = (3, 5);
        let mut h = vec![0.0f64; h_n];
        let s = |v: f64| 1.0 / (1.0 + (-v).exp());
        let row = |r: usize, v: &[f64]| {
            f64::from(l.bias[r]) + (0..cols).map(|k| f64::from(l.weight[r * cols + k]) * v[k]).sum::<f64>()
        };
        for t in 0..5 {
            let xh: Vec<f64> = (0..2)
                .map(|c| f64::from(x[c * 5 + t]))
                .chain(h.iter().copied())
                .collect();
            let r: Vec<f64> = (0..h_n).map(|j| s(row(j, &xh))).collect();
            let z: Vec<f64> = (0..h_n).map(|j| s(row(h_n + j, &xh))).collect();
            let xrh: Vec<f64> = (0..2).map(|c| xh[c]).chain((0..h_n).map(|j| r[j] * h[j])).collect();
            for j in 0..h_n {
                let n = row(2 * h_n + j, &xrh).tanh();
                h[j] = (1.0 - z[j]) * n + z[j] * h[j];
            }
            for j in 0..h_n {
                assert!((f64::from(y[j * 5 + t]) - h[j]).abs() < 1e-5, "step {t} unit {j}");
            }
        }
    }
}
