//! Transposed 2-D convolution (the decoder's upsampling layer): the adjoint of [`Conv2d`]'s
//! input map, `y = act(Wᵀ ⋆ x + b)`, by GEMM + col2im.
//!
//! [`Conv2d`]: super::Conv2d

use super::Init;
use super::conv::{Geometry, Patches, Shape, bias_activation, channel_sums, optional_chunks, sum_blocks};
use super::conv2d::SAMPLE_BLOCK;
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::kernels::{self, Precision, view};
use crate::rng::Rng;
use rayon::prelude::*;

/// Transposed convolution with weight `W: (c_in, c_out, kh, kw)` (PyTorch's layout) and bias
/// `b: (c_out)`. Output size `(H - 1) sh - 2 ph + kh + output_padding.0` (and the same across).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose2d {
    /// Input image shape.
    pub(crate) input: Shape,
    /// The geometry of the equivalent convolution, seen from the *output* image.
    pub(crate) geometry: Geometry,
    /// Extra output rows (below) and columns (right), each below its stride.
    pub(crate) output_padding: (usize, usize),
    pub(crate) activation: Activation,
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    /// The im2col gather table of the output-side geometry, made once (shared by clones).
    pub(crate) patches: std::sync::Arc<Patches>,
}

impl ConvTranspose2d {
    /// A layer on `input` images with weights drawn by `init`; every size is `(height,
    /// width)`.
    ///
    /// # Errors
    /// [`Error::Config`] for an output padding not below the stride, or sizes that do not fit.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input: Shape,
        c_out: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        output_padding: (usize, usize),
        activation: Activation,
        init: Init,
        rng: &mut Rng,
    ) -> Result<Self> {
        let geometry = Self::geometry(input, c_out, kernel, stride, padding, output_padding)?;
        let (c_in, h, w) = input;
        let fan_in = c_in * kernel.0 * kernel.1;
        let fan_out = c_out * kernel.0 * kernel.1;
        let a = init.bound(activation, fan_in, fan_out);
        Ok(ConvTranspose2d {
            patches: std::sync::Arc::new(Patches::new(&geometry, (h, w))),
            input,
            geometry,
            output_padding,
            activation,
            weight: (0..c_in * fan_out).map(|_| rng.uniform_range(-a, a)).collect(),
            bias: vec![0.0; c_out],
        })
    }

    /// The geometry of the convolution this layer transposes, seen from its output image
    /// (whose shape is `geometry.input`), or the error naming the sizes that do not fit.
    ///
    /// # Errors
    /// [`Error::Config`] for an output padding not below the stride, or sizes that do not fit.
    pub fn geometry(
        input: Shape,
        c_out: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        output_padding: (usize, usize),
    ) -> Result<Geometry> {
        let (_, h, w) = input;
        for (op, s) in [(output_padding.0, stride.0), (output_padding.1, stride.1)] {
            if op >= s.max(1) {
                return Err(Error::Config(format!(
                    "output padding {op} must be smaller than the stride {s}"
                )));
            }
        }
        let size = |n: usize, k: usize, s: usize, p: usize, op: usize| {
            ((n.max(1) - 1).checked_mul(s)?.checked_add(k)?.checked_add(op)?).checked_sub(p.checked_mul(2)?)
        };
        let ho = size(h, kernel.0, stride.0, padding.0, output_padding.0);
        let wo = size(w, kernel.1, stride.1, padding.1, output_padding.1);
        let geometry = Geometry {
            input: (c_out, ho.unwrap_or(0), wo.unwrap_or(0)),
            kernel,
            stride,
            padding,
        };
        let (Some(ho), Some(wo)) = (ho, wo) else {
            return Err(Error::Config(format!(
                "padding {}x{} is too large for a {} kernel on a {h}x{w} input",
                padding.0,
                padding.1,
                geometry.kernel_text()
            )));
        };
        if ho == 0 || wo == 0 || geometry.output_hw()? != (h, w) {
            return Err(Error::Config(format!(
                "a transposed convolution cannot map {h}x{w} to {ho}x{wo}"
            )));
        }
        Ok(geometry)
    }

    /// Input width of a row.
    pub fn n_in(&self) -> usize {
        self.input.0 * self.input.1 * self.input.2
    }

    /// Output image shape.
    pub fn out_shape(&self) -> Shape {
        self.geometry.input
    }

    /// Output width of a row.
    pub fn n_out(&self) -> usize {
        let (c, h, w) = self.geometry.input;
        c * h * w
    }

    /// x: (batch, c_in*h*w) -> y: (batch, c_out*ho*wo); `z` receives the pre-activation.
    pub fn forward(&self, x: &[f32], y: &mut [f32], z: Option<&mut [f32]>, precision: Precision) {
        let (n_in, n_out) = (self.n_in(), self.n_out());
        let c_in = self.input.0;
        let hw = self.input.1 * self.input.2;
        let patch = self.geometry.patch();
        let patches = &*self.patches;
        let patches_len = {
            let (c, h, w) = self.geometry.input;
            c * h * w + 1
        };
        let out_hw = self.geometry.input.1 * self.geometry.input.2;
        let wt = view(&self.weight, c_in, patch).transpose();
        let zs = optional_chunks(z, SAMPLE_BLOCK * n_out, x.len().div_ceil(SAMPLE_BLOCK * n_in));
        x.par_chunks(SAMPLE_BLOCK * n_in)
            .zip(y.par_chunks_mut(SAMPLE_BLOCK * n_out))
            .zip(zs)
            .for_each(|((xb, yb), mut zb)| {
                let mut cols = vec![0.0; patch * hw];
                let mut padded = vec![0.0; patches_len];
                for (i, (img, out)) in xb.chunks_exact(n_in).zip(yb.chunks_exact_mut(n_out)).enumerate() {
                    // cols (c_out*k*k, h*w) = Wᵀ (c_out*k*k, c_in) * x (c_in, h*w), scattered.
                    kernels::matmul_seq(&mut cols, wt, view(img, c_in, hw), false, precision);
                    out.fill(0.0);
                    patches.col2im(&cols, &mut padded, out);
                    let pre = zb.as_deref_mut().map(|z| &mut z[i * n_out..(i + 1) * n_out]);
                    bias_activation(out, pre, &self.bias, self.activation, out_hw);
                }
            });
    }

    /// Backward pass. x: the layer's input; dz: (batch, n_out) gradient with respect to the
    /// pre-activation. Writes dw: (c_in, c_out*k*k), db: (c_out), and dx when given.
    pub fn backward(
        &self,
        x: &[f32],
        dz: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
        dx: Option<&mut [f32]>,
        precision: Precision,
    ) {
        let (n_in, n_out) = (self.n_in(), self.n_out());
        let c_in = self.input.0;
        let hw = self.input.1 * self.input.2;
        let patch = self.geometry.patch();
        let patches = &*self.patches;
        let patches_len = {
            let (c, h, w) = self.geometry.input;
            c * h * w + 1
        };
        let out_hw = self.geometry.input.1 * self.geometry.input.2;
        let partial: Vec<Vec<f32>> = x
            .par_chunks(SAMPLE_BLOCK * n_in)
            .zip(dz.par_chunks(SAMPLE_BLOCK * n_out))
            .map(|(xb, gb)| {
                let mut acc = vec![0.0; c_in * patch];
                let mut cols = vec![0.0; patch * hw];
                let mut padded = vec![0.0; patches_len];
                for (img, g) in xb.chunks_exact(n_in).zip(gb.chunks_exact(n_out)) {
                    patches.im2col(g, &mut padded, &mut cols);
                    // acc (c_in x patch) += x (c_in x hw) * cols^T (hw x patch)
                    kernels::matmul_seq(
                        &mut acc,
                        view(img, c_in, hw),
                        view(&cols, patch, hw).transpose(),
                        true,
                        precision,
                    );
                }
                acc
            })
            .collect();
        sum_blocks(&partial, dw);
        channel_sums(dz, n_out, out_hw, db);
        if let Some(dx) = dx {
            let w = view(&self.weight, c_in, patch);
            dx.par_chunks_mut(SAMPLE_BLOCK * n_in)
                .zip(dz.par_chunks(SAMPLE_BLOCK * n_out))
                .for_each(|(dxb, gb)| {
                    let mut cols = vec![0.0; patch * hw];
                    let mut padded = vec![0.0; patches_len];
                    for (d, g) in dxb.chunks_exact_mut(n_in).zip(gb.chunks_exact(n_out)) {
                        patches.im2col(g, &mut padded, &mut cols);
                        kernels::matmul_seq(d, w, view(&cols, patch, hw), false, precision);
                    }
                });
        }
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use crate::kernels::reference;

    type Pair = (usize, usize);

    /// (input, c_out, kernel, stride, padding, output padding): square kernels on images, 1-D
    /// kernels along one-row series windows, and a rectangle.
    const CASES: &[(Shape, usize, Pair, Pair, Pair, Pair)] = &[
        ((2, 4, 4), 3, (3, 3), (2, 2), (1, 1), (1, 1)),
        ((1, 3, 5), 2, (3, 3), (1, 1), (1, 1), (0, 0)),
        ((3, 2, 3), 1, (2, 2), (2, 2), (0, 0), (0, 0)),
        ((2, 5, 5), 2, (3, 3), (2, 2), (1, 1), (0, 0)),
        ((1, 7, 7), 1, (4, 4), (2, 2), (1, 1), (1, 1)),
        ((3, 1, 6), 2, (1, 5), (1, 2), (0, 2), (0, 1)),
        ((2, 3, 4), 2, (2, 3), (2, 1), (0, 1), (1, 0)),
    ];

    fn layer(c: (Shape, usize, Pair, Pair, Pair, Pair), act: Activation) -> ConvTranspose2d {
        let (input, c_out, k, s, p, op) = c;
        let mut rng = Rng::new(4);
        let mut l = ConvTranspose2d::new(input, c_out, k, s, p, op, act, Init::Xavier, &mut rng).unwrap();
        l.bias.iter_mut().for_each(|b| *b = rng.uniform_range(-0.3, 0.3));
        l
    }

    #[test]
    fn forward_matches_the_direct_reference() {
        for &case in CASES {
            let (input, c_out, k, s, p, op) = case;
            let l = layer(case, Activation::Identity);
            let mut rng = Rng::new(8);
            let batch = 3;
            let x: Vec<f32> = (0..batch * l.n_in()).map(|_| rng.normal()).collect();
            let mut y = vec![0.0; batch * l.n_out()];
            l.forward(&x, &mut y, None, Precision::F32);
            for b in 0..batch {
                let want = reference::conv_transpose2d(
                    &x[b * l.n_in()..(b + 1) * l.n_in()],
                    &l.weight,
                    &l.bias,
                    input,
                    c_out,
                    k,
                    s,
                    p,
                    op,
                );
                assert_eq!(want.len(), l.n_out(), "{case:?}");
                let got = &y[b * l.n_out()..(b + 1) * l.n_out()];
                assert!(want.iter().zip(got).all(|(a, b)| (a - b).abs() < 1e-4), "{case:?}");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for &case in CASES {
            let l = layer(case, Activation::Sigmoid);
            let batch = 2;
            let mut rng = Rng::new(6);
            let x: Vec<f32> = (0..batch * l.n_in()).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
            let r: Vec<f32> = (0..batch * l.n_out()).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
            let loss = |l: &ConvTranspose2d, x: &[f32]| -> f64 {
                let mut y = vec![0.0; batch * l.n_out()];
                l.forward(x, &mut y, None, Precision::F32);
                y.iter().zip(&r).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum()
            };
            let (mut y, mut z) = (vec![0.0; r.len()], vec![0.0; r.len()]);
            l.forward(&x, &mut y, Some(&mut z), Precision::F32);
            let mut dz = r.clone();
            kernels::activation_backward(&mut dz, &y, Some(&z), l.activation);
            let (mut dw, mut db, mut dx) = (vec![0.0; l.weight.len()], vec![0.0; l.bias.len()], vec![0.0; x.len()]);
            l.backward(&x, &dz, &mut dw, &mut db, Some(&mut dx), Precision::F32);
            let h = 1e-3f32;
            let close = |num: f64, ana: f32, what: &str| {
                assert!(
                    (num - f64::from(ana)).abs() < 1e-2 * (1.0 + num.abs()),
                    "{case:?} {what}: {num} vs {ana}"
                );
            };
            for i in 0..dw.len() {
                let (mut a, mut b) = (l.clone(), l.clone());
                a.weight[i] += h;
                b.weight[i] -= h;
                close((loss(&a, &x) - loss(&b, &x)) / (2.0 * f64::from(h)), dw[i], "dw");
            }
            for i in 0..db.len() {
                let (mut a, mut b) = (l.clone(), l.clone());
                a.bias[i] += h;
                b.bias[i] -= h;
                close((loss(&a, &x) - loss(&b, &x)) / (2.0 * f64::from(h)), db[i], "db");
            }
            for i in 0..x.len() {
                let (mut a, mut b) = (x.clone(), x.clone());
                a[i] += h;
                b[i] -= h;
                close((loss(&l, &a) - loss(&l, &b)) / (2.0 * f64::from(h)), dx[i], "dx");
            }
        }
    }

    #[test]
    fn mnist_decoder_shapes_and_bad_padding() {
        let mut rng = Rng::new(1);
        // 32x7x7 -> 16x14x14 -> 1x28x28, as in the benchmark model.
        let sq = |n: usize| (n, n);
        let a = ConvTranspose2d::new(
            (32, 7, 7),
            16,
            sq(3),
            sq(2),
            sq(1),
            sq(1),
            Activation::Relu,
            Init::Auto,
            &mut rng,
        )
        .unwrap();
        assert_eq!(a.out_shape(), (16, 14, 14));
        let b = ConvTranspose2d::new(
            (16, 14, 14),
            1,
            sq(3),
            sq(2),
            sq(1),
            sq(1),
            Activation::Sigmoid,
            Init::Auto,
            &mut rng,
        )
        .unwrap();
        assert_eq!(b.out_shape(), (1, 28, 28));
        assert!(
            ConvTranspose2d::new(
                (1, 4, 4),
                1,
                sq(3),
                sq(2),
                sq(1),
                sq(2),
                Activation::Relu,
                Init::Auto,
                &mut rng
            )
            .is_err()
        );
        // A series window of 16 steps back from 8 (stride 2 along the width only).
        let c = ConvTranspose2d::new(
            (4, 1, 8),
            2,
            (1, 5),
            (1, 2),
            (0, 2),
            (0, 1),
            Activation::Identity,
            Init::Auto,
            &mut rng,
        )
        .unwrap();
        assert_eq!(c.out_shape(), (2, 1, 16));
    }
}
