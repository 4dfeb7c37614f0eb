//! Long short-term memory over sequences, with backpropagation through time.
//!
//! A row is a sequence of `steps` steps of `n_in` channels, channel-major `(n_in, 1, steps)`
//! like a series' windows (`data::window`); the output is every step's hidden state,
//! channel-major `(hidden, 1, steps)`, or with `last` only the last step's `(hidden)` (an
//! encoder's summary of the sequence). Gates in PyTorch's order (input, forget, cell, output):
//!
//! ```text
//! a_t = W [x_t ; h_{t-1}] + b        (4H)
//! i, f, o = σ(a_i), σ(a_f), σ(a_o);  g = tanh(a_g)
//! c_t = f c_{t-1} + i g;             h_t = o tanh(c_t)        (h_0 = c_0 = 0)
//! ```
//!
//! Architecture files spell it `type = "lstm"` (`units`, `return_sequences`); in the network
//! stack its forward pass keeps [`Lstm::cache_len`] values per row in the training
//! workspace's cache for the backward pass.

use super::Init;
use crate::activation::Activation;
use crate::kernels::{bias_activation, outer_and_back};
use crate::rng::Rng;
use rayon::prelude::*;

/// Sequences per parallel task; weight gradients are summed per block, then over the blocks
/// in order, so results do not depend on the thread count (as in the convolutions).
pub const SEQUENCE_BLOCK: usize = 16;

/// An LSTM layer: weight `W: (4H, n_in + H)` (the input and recurrent weights side by side),
/// bias `b: (4H)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Lstm {
    pub(crate) n_in: usize,
    pub(crate) hidden: usize,
    pub(crate) steps: usize,
    /// Output only the last step's hidden state.
    pub(crate) last: bool,
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
}

impl Lstm {
    /// A layer of `hidden` units over sequences of `steps` steps of `n_in` channels, weights
    /// drawn by `init` (Xavier-style bound over `n_in + hidden` inputs), forget-gate bias 1
    /// (the usual start: remember by default), other biases 0.
    pub fn new(n_in: usize, hidden: usize, steps: usize, last: bool, init: Init, rng: &mut Rng) -> Self {
        let cols = n_in + hidden;
        let a = init.bound(Activation::Tanh, cols, hidden);
        let weight = (0..4 * hidden * cols).map(|_| rng.uniform_range(-a, a)).collect();
        let mut bias = vec![0.0; 4 * hidden];
        bias[hidden..2 * hidden].fill(1.0);
        Lstm {
            n_in,
            hidden,
            steps,
            last,
            weight,
            bias,
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

    /// Values a row's forward pass keeps for the backward pass: per step the four gates (after
    /// their nonlinearities), the cell, the hidden state and the cell's `tanh`.
    pub fn cache_len(&self) -> usize {
        7 * self.hidden * self.steps
    }

    /// One sequence: `x` (n_in, steps) channel-major -> `y`; `cache` receives, per step, the
    /// gates `[i f g o]`, then `c`, `h` and `tanh(c)` (each `hidden` values).
    fn forward_one(&self, x: &[f32], y: &mut [f32], cache: &mut [f32]) {
        let (h_n, t_n, cols) = (self.hidden, self.steps, self.n_in + self.hidden);
        let mut input = vec![0.0f32; cols];
        let zeros = vec![0.0f32; h_n];
        for t in 0..t_n {
            for (c, v) in input[..self.n_in].iter_mut().enumerate() {
                *v = x[c * t_n + t];
            }
            if t > 0 {
                let prev = &cache[(t - 1) * 7 * h_n + 5 * h_n..(t - 1) * 7 * h_n + 6 * h_n];
                input[self.n_in..].copy_from_slice(prev);
            }
            // The gates' pre-activations: one vectorized matrix-vector product in a fixed
            // order (the same bits on any thread), then the bias and the nonlinearities.
            let (done, rest) = cache.split_at_mut(t * 7 * h_n);
            let step = &mut rest[..7 * h_n];
            crate::kernels::dot::dense_rows(&mut step[..4 * h_n], &input, &self.weight, cols, 4 * h_n);
            // The gates' nonlinearities, vectorized at the machine's SIMD level.
            let (ifg_o, cells) = step.split_at_mut(4 * h_n);
            let (if_, g_o) = ifg_o.split_at_mut(2 * h_n);
            let (g, o) = g_o.split_at_mut(h_n);
            bias_activation(if_, &self.bias[..2 * h_n], Activation::Sigmoid, None);
            bias_activation(g, &self.bias[2 * h_n..3 * h_n], Activation::Tanh, None);
            bias_activation(o, &self.bias[3 * h_n..], Activation::Sigmoid, None);
            let (c, h_tc) = cells.split_at_mut(h_n);
            let (h, tc) = h_tc.split_at_mut(h_n);
            let c_prev = (t > 0).then(|| &done[(t - 1) * 7 * h_n + 4 * h_n..(t - 1) * 7 * h_n + 5 * h_n]);
            for j in 0..h_n {
                c[j] = if_[h_n + j] * c_prev.map_or(0.0, |p| p[j]) + if_[j] * g[j];
            }
            tc.copy_from_slice(c);
            bias_activation(tc, &zeros, Activation::Tanh, None);
            for ((hv, ov), t) in h.iter_mut().zip(o.iter()).zip(tc.iter()) {
                *hv = ov * t;
            }
        }
        let h_at = |t: usize, j: usize| cache[t * 7 * h_n + 5 * h_n + j];
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

    /// x: (batch, n_in*steps) -> y: (batch, n_out); `cache`: (batch, cache_len) for the
    /// backward pass.
    ///
    /// # Panics
    /// If a buffer has the wrong length.
    pub fn forward(&self, x: &[f32], y: &mut [f32], cache: &mut [f32]) {
        let (n_in, n_out, n_c) = (self.n_in(), self.n_out(), self.cache_len());
        let rows = x.len() / n_in.max(1);
        assert_eq!(x.len(), rows * n_in, "lstm: input length");
        assert_eq!(y.len(), rows * n_out, "lstm: output length");
        assert_eq!(cache.len(), rows * n_c, "lstm: cache length");
        x.par_chunks(n_in)
            .zip(y.par_chunks_mut(n_out))
            .zip(cache.par_chunks_mut(n_c))
            .for_each(|((xr, yr), cr)| self.forward_one(xr, yr, cr));
    }

    /// One sequence's backward pass through time: adds its weight and bias gradients to `dw`
    /// and `db`, and writes `dx` when given.
    fn backward_one(
        &self,
        x: &[f32],
        cache: &[f32],
        dy: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
        dx: Option<&mut [f32]>,
    ) {
        let (h_n, t_n, cols) = (self.hidden, self.steps, self.n_in + self.hidden);
        let mut dx = dx;
        let (mut dh_next, mut dc_next) = (vec![0.0f32; h_n], vec![0.0f32; h_n]);
        let mut da = vec![0.0f32; 4 * h_n];
        let mut input = vec![0.0f32; cols];
        let mut d_input = vec![0.0f32; cols];
        for t in (0..t_n).rev() {
            let step = &cache[t * 7 * h_n..(t + 1) * 7 * h_n];
            let c_prev = (t > 0).then(|| &cache[(t - 1) * 7 * h_n + 4 * h_n..(t - 1) * 7 * h_n + 5 * h_n]);
            for j in 0..h_n {
                let from_output = if self.last {
                    if t == t_n - 1 { dy[j] } else { 0.0 }
                } else {
                    dy[j * t_n + t]
                };
                let dh = from_output + dh_next[j];
                let (i, f, g, o) = (step[j], step[h_n + j], step[2 * h_n + j], step[3 * h_n + j]);
                let tc = step[6 * h_n + j];
                let dc = dh * o * (1.0 - tc * tc) + dc_next[j];
                da[j] = dc * g * i * (1.0 - i);
                da[h_n + j] = dc * c_prev.map_or(0.0, |p| p[j]) * f * (1.0 - f);
                da[2 * h_n + j] = dc * i * (1.0 - g * g);
                da[3 * h_n + j] = dh * tc * o * (1.0 - o);
                dc_next[j] = dc * f;
            }
            for (c, v) in input[..self.n_in].iter_mut().enumerate() {
                *v = x[c * t_n + t];
            }
            match t {
                0 => input[self.n_in..].fill(0.0),
                _ => {
                    input[self.n_in..].copy_from_slice(&cache[(t - 1) * 7 * h_n + 5 * h_n..(t - 1) * 7 * h_n + 6 * h_n])
                }
            }
            d_input.fill(0.0);
            for (b, &dr) in db.iter_mut().zip(&da) {
                *b += dr;
            }
            outer_and_back(dw, &self.weight, &da, &input, &mut d_input);
            if let Some(dx) = dx.as_deref_mut() {
                for c in 0..self.n_in {
                    dx[c * t_n + t] = d_input[c];
                }
            }
            dh_next.copy_from_slice(&d_input[self.n_in..]);
        }
    }

    /// Backward pass: `x` the layer's input, `cache` its forward cache, `dy` (batch, n_out)
    /// the gradient with respect to the output. Writes `dw` (4H, n_in + H), `db` (4H), and
    /// `dx` (batch, n_in*steps) when given.
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
        assert_eq!(dw.len(), self.weight.len(), "lstm: dw length");
        assert_eq!(db.len(), self.bias.len(), "lstm: db length");
        backward_blocks((n_in, n_out, n_c), (x, cache, dy), dw, db, dx, |xr, cr, gr, w, b, d| {
            self.backward_one(xr, cr, gr, w, b, d)
        });
    }
}

/// A recurrent layer's backward pass over a batch: `one` adds one sequence's weight and bias
/// gradients and writes its `dx`; sequences run in blocks of [`SEQUENCE_BLOCK`] in parallel,
/// each block's gradients summed in block order ([`super::conv::sum_blocks`]), so the result
/// does not depend on the thread count. `widths` are a row's input, output and cache lengths.
#[allow(clippy::type_complexity)]
pub(crate) fn backward_blocks(
    (n_in, n_out, n_c): (usize, usize, usize),
    (x, cache, dy): (&[f32], &[f32], &[f32]),
    dw: &mut [f32],
    db: &mut [f32],
    dx: Option<&mut [f32]>,
    one: impl Fn(&[f32], &[f32], &[f32], &mut [f32], &mut [f32], Option<&mut [f32]>) + Sync,
) {
    let block = SEQUENCE_BLOCK;
    let dxs = super::conv::optional_chunks(dx, block * n_in, x.len().div_ceil(block * n_in));
    let (n_w, n_b) = (dw.len(), db.len());
    let (partial_w, partial_b): (Vec<Vec<f32>>, Vec<Vec<f32>>) = x
        .par_chunks(block * n_in)
        .zip(cache.par_chunks(block * n_c))
        .zip(dy.par_chunks(block * n_out))
        .zip(dxs)
        .map(|(((xb, cb), gb), mut dxb)| {
            let (mut w, mut b) = (vec![0.0; n_w], vec![0.0; n_b]);
            let rows = xb
                .chunks_exact(n_in)
                .zip(cb.chunks_exact(n_c))
                .zip(gb.chunks_exact(n_out));
            for (r, ((xr, cr), gr)) in rows.enumerate() {
                let d = dxb.as_deref_mut().map(|d| &mut d[r * n_in..(r + 1) * n_in]);
                one(xr, cr, gr, &mut w, &mut b, d);
            }
            (w, b)
        })
        .unzip();
    super::conv::sum_blocks(&partial_w, dw);
    super::conv::sum_blocks(&partial_b, db);
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;

    fn layer(n_in: usize, hidden: usize, steps: usize, last: bool) -> Lstm {
        let mut rng = Rng::new(11);
        let mut l = Lstm::new(n_in, hidden, steps, last, Init::Xavier, &mut rng);
        l.bias.iter_mut().for_each(|b| *b += rng.uniform_range(-0.3, 0.3));
        l
    }

    /// The forward pass against the recurrence written out in f64, step by step.
    #[test]
    fn forward_matches_the_recurrence() {
        let l = layer(2, 3, 5, false);
        let mut rng = Rng::new(2);
        let x: Vec<f32> = (0..l.n_in()).map(|_| rng.normal()).collect();
        let mut y = vec![0.0; l.n_out()];
        let mut cache = vec![0.0; l.cache_len()];
        l.forward(&x, &mut y, &mut cache);
        let (h_n, cols) = (3, 5);
        let (mut h, mut c) = (vec![0.0f64; h_n], vec![0.0f64; h_n]);
        let s = |v: f64| 1.0 / (1.0 + (-v).exp());
        for t in 0..5 {
            let input: Vec<f64> = (0..2)
                .map(|ch| f64::from(x[ch * 5 + t]))
                .chain(h.iter().copied())
                .collect();
            let a: Vec<f64> = (0..4 * h_n)
                .map(|r| {
                    f64::from(l.bias[r])
                        + (0..cols)
                            .map(|k| f64::from(l.weight[r * cols + k]) * input[k])
                            .sum::<f64>()
                })
                .collect();
            for j in 0..h_n {
                c[j] = s(a[h_n + j]) * c[j] + s(a[j]) * a[2 * h_n + j].tanh();
                h[j] = s(a[3 * h_n + j]) * c[j].tanh();
                assert!((f64::from(y[j * 5 + t]) - h[j]).abs() < 1e-5, "step {t} unit {j}");
            }
        }
    }
}
