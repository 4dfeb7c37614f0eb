//! Dense layers in int8 at inference ([`InferPrecision::Int8`](crate::InferPrecision)):
//! weights quantized once per output row (symmetric, ±127), each input row quantized on the
//! fly with its own scale, the product exact in i32 ([`kernels::int8`]), then an f32
//! epilogue: `y = acc · (s_row · s_out) + bias`, the activation.
//!
//! Every step is exact or plain IEEE arithmetic in a fixed order, so a row gets the same bits
//! alone as among others, on any thread, and on every integer unit.

use super::{Dense, Layer};
use crate::error::{Error, Result};
use crate::kernels::{self, int8};
use std::cell::RefCell;

/// A dense layer's weights in int8.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Dense {
    n_in: usize,
    n_out: usize,
    /// The bytes, `w ≈ scale · q` per output row.
    weight: int8::Weights,
    /// Per output row: the scale.
    scale: Vec<f32>,
}

impl Int8Dense {
    /// Quantizes `d`'s weights.
    ///
    /// # Errors
    /// [`Error::Config`] for a layer wider than [`int8::MAX_K`] inputs (its exact product
    /// could overflow i32).
    pub fn new(d: &Dense) -> Result<Int8Dense> {
        if int8::padded(d.n_in) > int8::MAX_K {
            return Err(Error::Config(format!(
                "int8 inference takes dense layers of at most {} inputs; this one has {}",
                int8::MAX_K,
                d.n_in
            )));
        }
        let (weight, scale) = int8::quantize_weights(&d.weight, d.n_out, d.n_in);
        Ok(Int8Dense {
            n_in: d.n_in,
            n_out: d.n_out,
            weight,
            scale,
        })
    }

    /// The bytes of the quantized weights.
    pub fn weight_bytes(&self) -> usize {
        self.weight.rows.len()
    }

    /// x: (rows, n_in) -> y: (rows, n_out) through `d` (the layer these weights came from: its
    /// bias and activation). No allocation once the thread's scratch has grown.
    pub fn infer(&self, d: &Dense, x: &[f32], y: &mut [f32]) {
        debug_assert_eq!(
            (d.n_in, d.n_out),
            (self.n_in, self.n_out),
            "int8 layer of another shape"
        );
        let (k, n, kp) = (self.n_in, self.n_out, int8::padded(self.n_in));
        let rows = x.len() / k;
        SCRATCH.with(|s| {
            let (q, sx, acc) = &mut *s.borrow_mut();
            q.resize(rows * kp, 0);
            sx.resize(rows, 0.0);
            acc.resize(rows * n, 0);
            int8::quantize_rows(x, k, &mut q[..rows * kp], &mut sx[..rows]);
            int8::dot_i8(&mut acc[..rows * n], &q[..rows * kp], &self.weight);
            for ((yr, ar), &s) in y.chunks_exact_mut(n).zip(acc.chunks_exact(n)).zip(sx.iter()) {
                for ((v, &a), &sw) in yr.iter_mut().zip(ar).zip(&self.scale) {
                    *v = a as f32 * (s * sw);
                }
            }
        });
        kernels::bias_activation(y, &d.bias, d.activation, None);
    }
}

thread_local! {
    /// Per-thread buffers of the int8 layers: quantized rows, their scales, the products.
    static SCRATCH: RefCell<(Vec<i8>, Vec<f32>, Vec<i32>)> = const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// The int8 forms of a stack's layers: one per dense layer, `None` for the layers that run in
/// f32 (convolutions, recurrent and other layers).
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Layers {
    layers: Vec<Option<Int8Dense>>,
}

impl Int8Layers {
    /// Quantizes every dense layer of `layers`.
    ///
    /// # Errors
    /// As [`Int8Dense::new`].
    pub fn new(layers: &[Layer]) -> Result<Int8Layers> {
        let layers = layers
            .iter()
            .map(|l| l.as_dense().map(Int8Dense::new).transpose())
            .collect::<Result<_>>()?;
        Ok(Int8Layers { layers })
    }

    /// The int8 form of layer `i`, when it has one.
    pub fn get(&self, i: usize) -> Option<&Int8Dense> {
        self.layers.get(i).and_then(Option::as_ref)
    }

    /// How many layers run in int8.
    pub fn count(&self) -> usize {
        self.layers.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::kernels::testing::random;
    use crate::layer::Init;
    use crate::rng::Rng;

    /// Against the f32 layer: within the quantization error's bound, row by row; a row alone
    /// gets the same bits as among others.
    #[test]
    fn int8_dense_is_within_the_quantization_bound_of_f32() {
        let mut rng = Rng::new(4);
        for &(k, n) in &[(1, 1), (7, 3), (65, 9), (300, 70)] {
            let d = Dense::new(k, n, Activation::Identity, Init::default(), &mut rng);
            let q = Int8Dense::new(&d).unwrap();
            let m = 6;
            let x = random(m * k, &mut rng);
            let mut y = vec![0.0; m * n];
            q.infer(&d, &x, &mut y);
            let mut want = vec![0.0; m * n];
            d.infer(&x, &mut want);
            for i in 0..m {
                let xr = &x[i * k..(i + 1) * k];
                let sx = xr.iter().fold(0.0f32, |a, v| a.max(v.abs())) / 127.0;
                for j in 0..n {
                    let wr = &d.weight[j * k..(j + 1) * k];
                    let sw = wr.iter().fold(0.0f32, |a, v| a.max(v.abs())) / 127.0;
                    // |x̃ w̃ - x w| <= Σ |x| sw/2 + |w| sx/2 + sx sw / 4, per term.
                    let bound: f32 = xr
                        .iter()
                        .zip(wr)
                        .map(|(a, b)| a.abs() * sw / 2.0 + b.abs() * sx / 2.0 + sx * sw / 4.0)
                        .sum();
                    let (got, exp) = (y[i * n + j], want[i * n + j]);
                    assert!(
                        (got - exp).abs() <= bound * 1.001 + 1e-6,
                        "k={k} n={n}: {got} vs {exp} (bound {bound})"
                    );
                }
                let mut alone = vec![0.0; n];
                q.infer(&d, xr, &mut alone);
                assert_eq!(alone[..], y[i * n..(i + 1) * n], "row {i} alone");
            }
        }
    }

    /// Every integer unit gives the same outputs (the product is exact).
    #[test]
    fn int8_dense_gives_the_same_bits_at_every_level() {
        let mut rng = Rng::new(9);
        let d = Dense::new(130, 40, Activation::Relu, Init::default(), &mut rng);
        let q = Int8Dense::new(&d).unwrap();
        let x = random(5 * 130, &mut rng);
        let outs: Vec<(crate::kernels::Level, Vec<f32>)> = crate::kernels::levels()
            .into_iter()
            .map(|level| {
                let y = crate::kernels::with_level(level, || {
                    let mut y = vec![0.0; 5 * 40];
                    q.infer(&d, &x, &mut y);
                    y
                });
                (level, y)
            })
            .collect();
        for (level, y) in &outs[1..] {
            assert_eq!(y, &outs[0].1, "{level:?}");
        }
    }
}
