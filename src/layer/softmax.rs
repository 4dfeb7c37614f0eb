//! Softmax over the channels at each position: the output layer of a categorical
//! reconstruction (a one-hot token at each step of a sequence, a category per pixel), trained
//! with the cross-entropy loss ([`Loss::Ce`](crate::loss::Loss::Ce)).

/// Softmax over the `channels` of each of `positions` positions of channel-major rows
/// `(channels, positions)`: `y[j, t] = exp(x[j, t]) / Σ_i exp(x[i, t])` (Keras'
/// `Softmax(axis=channels)`). A flat row is one position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Softmax {
    /// Channels, the axis the probabilities sum to 1 over.
    pub channels: usize,
    /// Positions (steps, pixels) of a row.
    pub positions: usize,
}

impl Softmax {
    /// Values in a row (in and out).
    pub fn len(&self) -> usize {
        self.channels * self.positions
    }

    /// Whether a row holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// x: (batch, channels·positions) -> y, the same shape (`in_place` on a copy).
    pub fn forward(&self, x: &[f32], y: &mut [f32]) {
        y.copy_from_slice(x);
        in_place(y, self.channels, self.positions);
    }

    /// dy -> dx through the softmax's Jacobian, `dx[j] = y[j] (dy[j] − Σ_i y[i] dy[i])` at each
    /// position, with `y` recomputed from the layer's input `x`.
    pub fn backward(&self, x: &[f32], dy: &[f32], dx: &mut [f32]) {
        let (c, p) = (self.channels, self.positions);
        // dx holds y first, then the gradient.
        self.forward(x, dx);
        let mut dot = vec![0f32; p];
        for (g, d) in dy.chunks_exact(c * p).zip(dx.chunks_exact_mut(c * p)) {
            dot.fill(0.0);
            for (gc, yc) in g.chunks_exact(p).zip(d.chunks_exact(p)) {
                for ((s, &gv), &yv) in dot.iter_mut().zip(gc).zip(yc) {
                    *s += yv * gv;
                }
            }
            for (gc, yc) in g.chunks_exact(p).zip(d.chunks_exact_mut(p)) {
                for ((yv, &gv), &s) in yc.iter_mut().zip(gc).zip(&dot) {
                    *yv *= gv - s;
                }
            }
        }
    }
}

/// Softmax over the `channels` of each of `positions` positions of the channel-major rows of
/// `a`, in place: the maximum over the channels is subtracted first (no overflow), then each
/// position's exponentials are summed in channel order and divided by their sum. With one
/// position this is the row softmax of the classifier's head.
pub(crate) fn in_place(a: &mut [f32], channels: usize, positions: usize) {
    let (c, p) = (channels, positions);
    let mut top = vec![0f32; p];
    let mut sum = vec![0f32; p];
    for row in a.chunks_exact_mut(c * p) {
        top.fill(f32::NEG_INFINITY);
        for xc in row.chunks_exact(p) {
            top.iter_mut().zip(xc).for_each(|(m, &v)| *m = m.max(v));
        }
        sum.fill(0.0);
        for xc in row.chunks_exact_mut(p) {
            for ((v, &m), s) in xc.iter_mut().zip(&top).zip(sum.iter_mut()) {
                *v = (*v - m).exp();
                *s += *v;
            }
        }
        for xc in row.chunks_exact_mut(p) {
            xc.iter_mut().zip(&sum).for_each(|(v, &s)| *v /= s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn each_position_sums_to_one_over_its_channels() {
        let s = Softmax {
            channels: 3,
            positions: 4,
        };
        // Large logits: no overflow.
        let x: Vec<f32> = (0..24).map(|i| (i as f32 * 37.0) % 200.0 - 100.0).collect();
        let mut y = vec![0.0; 24];
        s.forward(&x, &mut y);
        for row in y.chunks_exact(12) {
            for t in 0..4 {
                let total: f32 = (0..3).map(|j| row[j * 4 + t]).sum();
                assert!((total - 1.0).abs() < 1e-6, "position {t}: {total}");
            }
        }
        assert!(y.iter().all(|v| v.is_finite() && *v >= 0.0));
        // The channel order at one position is the logits' order.
        let (a, b) = (x[1], x[5]);
        assert_eq!(a < b, y[1] < y[5]);
    }

    /// Finite differences of L = Σ r ⊙ softmax(x).
    #[test]
    fn backward_is_the_jacobian() {
        let mut rng = Rng::new(3);
        let s = Softmax {
            channels: 5,
            positions: 3,
        };
        let x: Vec<f32> = (0..2 * 15).map(|_| rng.normal()).collect();
        let r: Vec<f32> = (0..2 * 15).map(|_| rng.normal()).collect();
        let loss = |x: &[f32]| {
            let mut y = vec![0.0; x.len()];
            s.forward(x, &mut y);
            y.iter()
                .zip(&r)
                .map(|(u, v)| f64::from(*u) * f64::from(*v))
                .sum::<f64>()
        };
        let mut dx = vec![0.0; x.len()];
        s.backward(&x, &r, &mut dx);
        for i in 0..x.len() {
            let (mut u, mut v) = (x.clone(), x.clone());
            u[i] += 1e-2;
            v[i] -= 1e-2;
            let num = (loss(&u) - loss(&v)) / 2e-2;
            assert!((num - f64::from(dx[i])).abs() < 2e-3, "{i}: {num} vs {}", dx[i]);
        }
    }
}
