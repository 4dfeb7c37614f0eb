//! 2-D convolution over rows of (C, H, W) images: `y = act(W * x + b)` by im2col + GEMM.

use super::Init;
use super::conv::{Geometry, Patches, Shape, bias_activation, channel_sums, optional_chunks, sum_blocks};
use crate::activation::Activation;
use crate::error::Result;
use crate::kernels::{self, Precision, direct, view};
use crate::rng::Rng;
use rayon::prelude::*;

/// Images per parallel task; sums over the batch (dW) are formed per block and then added in
/// block order, so results do not depend on the thread count. 16 keeps a block's im2col
/// buffers in L2 for MNIST-sized layers.
pub const SAMPLE_BLOCK: usize = 16;

/// Convolution with weight `W: (c_out, c_in, kh, kw)` (PyTorch's layout) and bias `b: (c_out)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d {
    pub(crate) geometry: Geometry,
    pub(crate) c_out: usize,
    pub(crate) out_hw: (usize, usize),
    pub(crate) activation: Activation,
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    /// The im2col gather table of this geometry, made once (shared by clones).
    pub(crate) patches: std::sync::Arc<Patches>,
    /// The direct (channels-last) kernel's plan of this geometry, made once (shared by clones).
    pub(crate) direct: std::sync::Arc<direct::Plan>,
}

impl Conv2d {
    /// A layer of `c_out` filters over the images of `geometry`, weights drawn by `init`
    /// (fan-in `c_in * kh * kw`).
    ///
    /// # Errors
    /// [`crate::Error::Config`] when the kernel does not fit the padded input.
    pub fn new(geometry: Geometry, c_out: usize, activation: Activation, init: Init, rng: &mut Rng) -> Result<Self> {
        let out_hw = geometry.output_hw()?;
        let fan_in = geometry.patch();
        let fan_out = c_out * geometry.kernel.0 * geometry.kernel.1;
        let a = init.bound(activation, fan_in, fan_out);
        Ok(Conv2d {
            patches: std::sync::Arc::new(Patches::new(&geometry, out_hw)),
            direct: std::sync::Arc::new(
                direct::Plan::new(
                    geometry.input.0,
                    geometry.padded_hw(),
                    geometry.kernel,
                    geometry.stride,
                    out_hw,
                )
                .expect("output_hw() checked that the padded image fits u32 offsets and every window fits it"),
            ),
            geometry,
            c_out,
            out_hw,
            activation,
            weight: (0..c_out * fan_in).map(|_| rng.uniform_range(-a, a)).collect(),
            bias: vec![0.0; c_out],
        })
    }

    /// Input width of a row: `c_in * h * w`.
    pub fn n_in(&self) -> usize {
        let (c, h, w) = self.geometry.input;
        c * h * w
    }

    /// Output image shape.
    pub fn out_shape(&self) -> Shape {
        (self.c_out, self.out_hw.0, self.out_hw.1)
    }

    /// Output width of a row.
    pub fn n_out(&self) -> usize {
        self.c_out * self.out_hw.0 * self.out_hw.1
    }

    /// x: (batch, c_in*h*w) -> y: (batch, c_out*ho*wo); `z` receives the pre-activation.
    pub fn forward(&self, x: &[f32], y: &mut [f32], z: Option<&mut [f32]>, precision: Precision) {
        let (n_in, n_out) = (self.n_in(), self.n_out());
        let hw = self.out_hw.0 * self.out_hw.1;
        let patch = self.geometry.patch();
        let patches = &*self.patches;
        let patches_len = {
            let (c, h, w) = self.geometry.input;
            c * h * w + 1
        };
        let w = view(&self.weight, self.c_out, patch);
        let zs = optional_chunks(z, SAMPLE_BLOCK * n_out, x.len().div_ceil(SAMPLE_BLOCK * n_in));
        x.par_chunks(SAMPLE_BLOCK * n_in)
            .zip(y.par_chunks_mut(SAMPLE_BLOCK * n_out))
            .zip(zs)
            .for_each(|((xb, yb), mut zb)| {
                let mut cols = vec![0.0; patch * hw];
                let mut padded = vec![0.0; patches_len];
                for (i, (img, out)) in xb.chunks_exact(n_in).zip(yb.chunks_exact_mut(n_out)).enumerate() {
                    patches.im2col(img, &mut padded, &mut cols);
                    kernels::matmul_seq(out, w, view(&cols, patch, hw), false, precision);
                    let pre = zb.as_deref_mut().map(|z| &mut z[i * n_out..(i + 1) * n_out]);
                    bias_activation(out, pre, &self.bias, self.activation, hw);
                }
            });
    }

    /// Inference on channels-last rows (H, W, C) into channels-last rows, by the direct kernel
    /// (any machine; fast with AVX-512).
    pub fn infer_channels_last(&self, x: &[f32], y: &mut [f32]) {
        let (n_in, n_out) = (self.n_in(), self.n_out());
        let (c, _, w) = self.geometry.input;
        let ((kh, kw), (ph, pw)) = (self.geometry.kernel, self.geometry.padding);
        let (hp, wp) = self.geometry.padded_hw();
        let plan = &*self.direct;
        let co_pad = self.c_out.next_multiple_of(direct::LANES);
        // (c_out, c, kh, kw) -> rows (ky, kx, c) of co_pad output channels.
        let mut wt = vec![0.0; plan.taps() * co_pad];
        for (o, wo) in self.weight.chunks_exact(self.geometry.patch()).enumerate() {
            for (i, &v) in wo.iter().enumerate() {
                let (ch, t) = (i / (kh * kw), i % (kh * kw));
                wt[(t * c + ch) * co_pad + o] = v;
            }
        }
        let mut bias = self.bias.clone();
        bias.resize(co_pad, 0.0);
        let relu = self.activation == Activation::Relu;
        x.par_chunks(SAMPLE_BLOCK * n_in)
            .zip(y.par_chunks_mut(SAMPLE_BLOCK * n_out))
            .for_each(|(xb, yb)| {
                // The border stays zero; each image overwrites the interior, row by row.
                let mut padded = vec![0.0; hp * wp * c];
                let mut wide = vec![
                    0.0;
                    if co_pad == self.c_out {
                        0
                    } else {
                        plan.pixels() * co_pad
                    }
                ];
                for (img, dst) in xb.chunks_exact(n_in).zip(yb.chunks_exact_mut(n_out)) {
                    direct::pad_rows(img, w * c, &mut padded, wp * c, (ph * wp + pw) * c);
                    if wide.is_empty() {
                        plan.run(&padded, &wt, &bias, relu, dst);
                    } else {
                        plan.run(&padded, &wt, &bias, relu, &mut wide);
                        for (d, v) in dst.chunks_exact_mut(self.c_out).zip(wide.chunks_exact(co_pad)) {
                            d.copy_from_slice(&v[..self.c_out]);
                        }
                    }
                }
                if !relu {
                    kernels::plane_bias_activation(yb, None, 0.0, self.activation);
                }
            });
    }

    /// Backward pass. x: the layer's input; dz: (batch, n_out) gradient with respect to the
    /// pre-activation. Writes dw: (c_out, c_in*k*k), db: (c_out), and dx (the gradient with
    /// respect to the input) when given.
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
        let hw = self.out_hw.0 * self.out_hw.1;
        let patch = self.geometry.patch();
        let patches = &*self.patches;
        let patches_len = {
            let (c, h, w) = self.geometry.input;
            c * h * w + 1
        };
        // Weight gradient: per block of samples, then the blocks in order.
        let partial: Vec<Vec<f32>> = x
            .par_chunks(SAMPLE_BLOCK * n_in)
            .zip(dz.par_chunks(SAMPLE_BLOCK * n_out))
            .map(|(xb, gb)| {
                let mut acc = vec![0.0; self.c_out * patch];
                let mut cols = vec![0.0; patch * hw];
                let mut padded = vec![0.0; patches_len];
                for (img, g) in xb.chunks_exact(n_in).zip(gb.chunks_exact(n_out)) {
                    patches.im2col(img, &mut padded, &mut cols);
                    // acc (c_out x patch) += g (c_out x hw) * cols^T (hw x patch)
                    kernels::matmul_seq(
                        &mut acc,
                        view(g, self.c_out, hw),
                        view(&cols, patch, hw).transpose(),
                        true,
                        precision,
                    );
                }
                acc
            })
            .collect();
        sum_blocks(&partial, dw);
        channel_sums(dz, n_out, hw, db);
        if let Some(dx) = dx {
            let wt = view(&self.weight, self.c_out, patch).transpose();
            dx.par_chunks_mut(SAMPLE_BLOCK * n_in)
                .zip(dz.par_chunks(SAMPLE_BLOCK * n_out))
                .for_each(|(db_, gb)| {
                    let mut cols = vec![0.0; patch * hw];
                    let mut padded = vec![0.0; patches_len];
                    for (d, g) in db_.chunks_exact_mut(n_in).zip(gb.chunks_exact(n_out)) {
                        kernels::matmul_seq(&mut cols, wt, view(g, self.c_out, hw), false, precision);
                        d.fill(0.0);
                        patches.col2im(&cols, &mut padded, d);
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

    fn layer(g: Geometry, c_out: usize, act: Activation) -> Conv2d {
        let mut rng = Rng::new(3);
        let mut l = Conv2d::new(g, c_out, act, Init::Xavier, &mut rng).unwrap();
        l.bias.iter_mut().for_each(|b| *b = rng.uniform_range(-0.3, 0.3));
        l
    }

    /// Square kernels on images, and 1-D kernels along one-row series windows.
    fn cases() -> Vec<(Geometry, usize)> {
        vec![
            (Geometry::square((1, 5, 5), 3, 1, 1), 2),
            (Geometry::square((2, 7, 6), 3, 2, 1), 3),
            (Geometry::square((3, 4, 9), 2, 2, 0), 2),
            (Geometry::square((1, 9, 9), 3, 2, 1), 4),
            (Geometry::square((2, 3, 3), 3, 1, 2), 1),
            (Geometry::row((2, 1, 17), 5, 2, 2), 3),
            (Geometry::row((3, 1, 8), 3, 1, 0), 2),
            (
                Geometry {
                    input: (2, 5, 6),
                    kernel: (2, 3),
                    stride: (2, 1),
                    padding: (1, 0),
                },
                2,
            ),
        ]
    }

    #[test]
    fn forward_matches_the_direct_reference() {
        for (g, c_out) in cases() {
            let (input, k, s, p) = (g.input, g.kernel, g.stride, g.padding);
            let l = layer(g, c_out, Activation::Identity);
            let batch = 3;
            let mut rng = Rng::new(9);
            let x: Vec<f32> = (0..batch * l.n_in()).map(|_| rng.normal()).collect();
            let mut y = vec![0.0; batch * l.n_out()];
            l.forward(&x, &mut y, None, Precision::F32);
            // Inference: the direct channels-last kernel between layout changes.
            let mut last = vec![0.0; x.len()];
            direct::transpose_images(&x, l.n_in(), input.0, &mut last, true);
            let mut direct_out = vec![0.0; y.len()];
            l.infer_channels_last(&last, &mut direct_out);
            let mut direct_first = vec![0.0; y.len()];
            direct::transpose_images(&direct_out, l.n_out(), c_out, &mut direct_first, false);
            assert!(
                y.iter().zip(&direct_first).all(|(a, b)| (a - b).abs() < 1e-4),
                "{input:?} k{k:?} s{s:?} p{p:?}"
            );
            for b in 0..batch {
                let want = reference::conv2d(
                    &x[b * l.n_in()..(b + 1) * l.n_in()],
                    &l.weight,
                    &l.bias,
                    input,
                    c_out,
                    k,
                    s,
                    p,
                );
                let got = &y[b * l.n_out()..(b + 1) * l.n_out()];
                assert!(
                    want.iter().zip(got).all(|(a, b)| (a - b).abs() < 1e-4),
                    "{input:?} k{k:?} s{s:?} p{p:?}"
                );
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (g, c_out) in cases() {
            let (input, k, s, p) = (g.input, g.kernel, g.stride, g.padding);
            let l = layer(g, c_out, Activation::Tanh);
            let batch = 2;
            let mut rng = Rng::new(5);
            let x: Vec<f32> = (0..batch * l.n_in()).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
            let r: Vec<f32> = (0..batch * l.n_out()).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
            let loss = |l: &Conv2d, x: &[f32]| -> f64 {
                let mut y = vec![0.0; batch * l.n_out()];
                l.forward(x, &mut y, None, Precision::F32);
                y.iter().zip(&r).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum()
            };
            let (mut y, mut z) = (vec![0.0; r.len()], vec![0.0; r.len()]);
            l.forward(&x, &mut y, Some(&mut z), Precision::F32);
            let mut dz = r.clone();
            kernels::activation_backward(&mut dz, &y, Some(&z), l.activation);
            let (mut dw, mut db, mut dx) = (vec![0.0; l.weight.len()], vec![0.0; c_out], vec![0.0; x.len()]);
            l.backward(&x, &dz, &mut dw, &mut db, Some(&mut dx), Precision::F32);
            let h = 1e-3f32;
            let close = |num: f64, ana: f32, what: &str| {
                assert!(
                    (num - f64::from(ana)).abs() < 1e-2 * (1.0 + num.abs()),
                    "{input:?} k{k:?} s{s:?} p{p:?} {what}: {num} vs {ana}"
                );
            };
            for i in 0..dw.len() {
                let (mut a, mut b) = (l.clone(), l.clone());
                a.weight[i] += h;
                b.weight[i] -= h;
                close((loss(&a, &x) - loss(&b, &x)) / (2.0 * f64::from(h)), dw[i], "dw");
            }
            for i in 0..c_out {
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
    fn results_do_not_depend_on_thread_count() {
        let l = layer(Geometry::square((2, 9, 9), 3, 2, 1), 4, Activation::Relu);
        let batch = 37; // several sample blocks, the last one partial
        let mut rng = Rng::new(2);
        let x: Vec<f32> = (0..batch * l.n_in()).map(|_| rng.normal()).collect();
        let g: Vec<f32> = (0..batch * l.n_out()).map(|_| rng.normal()).collect();
        let run = |t| {
            crate::with_threads(Some(t), || {
                let mut y = vec![0.0; g.len()];
                l.forward(&x, &mut y, None, Precision::F32);
                let (mut dw, mut db, mut dx) = (vec![0.0; l.weight.len()], vec![0.0; 4], vec![0.0; x.len()]);
                l.backward(&x, &g, &mut dw, &mut db, Some(&mut dx), Precision::F32);
                (y, dw, db, dx)
            })
            .unwrap()
        };
        assert_eq!(run(1), run(3));
    }
}
