//! Dense layers and convolutions in int8 at inference
//! ([`InferPrecision::Int8`](crate::InferPrecision)): weights quantized once per output row
//! or filter (symmetric, ±127), each input row (a convolution's: each image) quantized on the
//! fly with its own scale, the product exact in i32 ([`kernels::int8`](crate::kernels::int8)), then an f32
//! epilogue: `y = acc · (s_row · s_out) + bias`, the activation.
//!
//! Every step is exact or plain IEEE arithmetic in a fixed order, so a row gets the same bits
//! alone as among others, on any thread, and on every integer unit.

use super::conv2d::SAMPLE_BLOCK;
use super::{Conv2d, Dense, Layer};
use crate::error::{Error, Result};
use crate::kernels::direct::transpose_images;
use crate::kernels::int8;
use rayon::prelude::*;
use std::cell::RefCell;

/// Checks a row of `k` inputs fits the exact i32 product.
fn check_width(what: &str, k: usize) -> Result<()> {
    if int8::padded(k) > int8::MAX_K {
        return Err(Error::Config(format!(
            "int8 inference takes {what} of at most {} inputs; this one has {k}",
            int8::MAX_K
        )));
    }
    Ok(())
}

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
        check_width("dense layers", d.n_in)?;
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
            int8::quantize_rows(x, k, q, sx);
            int8::dot_i8(acc, q, &self.weight);
            for ((yr, ar), &s) in y.chunks_exact_mut(n).zip(acc.chunks_exact(n)).zip(sx.iter()) {
                int8::dequantize(yr, ar, s, &self.scale, &d.bias, d.activation);
            }
        });
    }
}

thread_local! {
    /// Per-thread buffers of the int8 layers: quantized rows, their scales, the products.
    static SCRATCH: RefCell<(Vec<i8>, Vec<f32>, Vec<i32>)> = const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// A convolution's filters in int8, each a row of its taps in channels-last order
/// `(ky, kx, c)`: the order of the int8 patches gathered from channels-last images.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Conv {
    /// The bytes, `w ≈ scale · q` per filter.
    weight: int8::Weights,
    /// Per filter: the scale.
    scale: Vec<f32>,
    /// Per output pixel, per filter row `ky`: where its run of `kw · C` bytes starts in an
    /// image's canvas (the image inside its padding of zeros).
    taps: Vec<u32>,
    /// The canvas: bytes per row (`(W + 2 pw) · C`), where the image starts, its length (with
    /// room for [`int8::gather`]'s whole-vector copies).
    canvas: (usize, usize, usize),
}

impl Int8Conv {
    /// Quantizes `c`'s filters.
    ///
    /// # Errors
    /// [`Error::Config`] for a filter of more than [`int8::MAX_K`] taps.
    pub fn new(c: &Conv2d) -> Result<Int8Conv> {
        let patch = c.geometry.patch();
        check_width("convolutions with filters", patch)?;
        let (ch, h, w) = c.geometry.input;
        let ((kh, kw), (sh, sw), (ph, pw)) = (c.geometry.kernel, c.geometry.stride, c.geometry.padding);
        // (c_out, c, kh, kw) -> rows (ky, kx, c).
        let mut rows = vec![0.0; c.weight.len()];
        for (src, dst) in c.weight.chunks_exact(patch).zip(rows.chunks_exact_mut(patch)) {
            for (i, &v) in src.iter().enumerate() {
                let (channel, tap) = (i / (kh * kw), i % (kh * kw));
                dst[tap * ch + channel] = v;
            }
        }
        let (weight, scale) = int8::quantize_weights(&rows, c.c_out, patch);
        let (ho, wo) = c.out_hw;
        let pitch = (w + 2 * pw) * ch;
        let run = kw * ch;
        let len = (h + 2 * ph) * pitch + int8::copy_width(kh, run, weight.kp) - run;
        if len > u32::MAX as usize {
            return Err(Error::Config(format!(
                "int8 inference takes images of at most {} bytes; this one has {len}",
                u32::MAX
            )));
        }
        let mut taps = Vec::with_capacity(ho * wo * kh);
        for (oy, ox) in (0..ho).flat_map(|oy| (0..wo).map(move |ox| (oy, ox))) {
            for ky in 0..kh {
                taps.push(((oy * sh + ky) * pitch + ox * sw * ch) as u32);
            }
        }
        Ok(Int8Conv {
            weight,
            scale,
            taps,
            canvas: (pitch, ph * pitch + pw * ch, len),
        })
    }

    /// The bytes of the quantized filters.
    pub fn weight_bytes(&self) -> usize {
        self.weight.rows.len()
    }

    /// Channels-last images `x` (rows of (H, W, C)) -> `y` through `c` (the layer these
    /// filters came from: its geometry, bias and activation), as
    /// [`Conv2d::infer_channels_last`] in f32: channels-last (rows of (Ho, Wo, c_out)), or
    /// channel-major (rows of (c_out, Ho, Wo)) when `channel_major` — each image transposed
    /// while its outputs are still in cache. Each image is quantized with its own scale, so an
    /// image gets the same bits alone as among others. No allocation once the thread's
    /// scratch has grown.
    pub fn infer_channels_last(&self, c: &Conv2d, x: &[f32], y: &mut [f32], channel_major: bool) {
        let (n_in, n_out) = (c.n_in(), c.n_out());
        let (ch, _, w) = c.geometry.input;
        let (kh, kw) = c.geometry.kernel;
        let (kp, c_out, (pitch, origin, len)) = (self.weight.kp, c.c_out, self.canvas);
        let hw = n_out / c_out;
        x.par_chunks(SAMPLE_BLOCK * n_in)
            .zip(y.par_chunks_mut(SAMPLE_BLOCK * n_out))
            .for_each(|(xb, yb)| {
                let images = xb.len() / n_in;
                CONV_SCRATCH.with(|s| {
                    let (img, cols, scales, acc, image) = &mut *s.borrow_mut();
                    img.resize(images * len, 0);
                    scales.resize(images, 0.0);
                    // Every byte of a patch row up to its taps is written below; the tail is
                    // whatever the scratch held, which the zero weights there cancel.
                    cols.resize(images * hw * kp, 0);
                    acc.resize(images * hw * c_out, 0);
                    for ((xi, qi), s) in xb
                        .chunks_exact(n_in)
                        .zip(img.chunks_exact_mut(len))
                        .zip(scales.iter_mut())
                    {
                        *s = int8::quantize_image(xi, w * ch, pitch, origin, qi);
                    }
                    int8::gather(cols, img, len, &self.taps, kp, (kh, kw * ch));
                    int8::dot_i8(acc, cols, &self.weight);
                    for ((yi, ai), &s) in yb
                        .chunks_exact_mut(n_out)
                        .zip(acc.chunks_exact(n_out))
                        .zip(scales.iter())
                    {
                        if channel_major {
                            image.resize(n_out, 0.0);
                            int8::dequantize(image, ai, s, &self.scale, &c.bias, c.activation);
                            transpose_images(image, n_out, c_out, yi, false);
                        } else {
                            int8::dequantize(yi, ai, s, &self.scale, &c.bias, c.activation);
                        }
                    }
                });
            });
    }
}

/// Buffers of an int8 convolution: quantized images (canvases), patches, scales, products,
/// one image's outputs before their transpose.
type ConvScratch = (Vec<i8>, Vec<i8>, Vec<f32>, Vec<i32>, Vec<f32>);

thread_local! {
    /// Per-thread [`ConvScratch`].
    static CONV_SCRATCH: RefCell<ConvScratch> = const { RefCell::new((Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new())) };
}

/// A layer's int8 form.
#[derive(Clone, Debug, PartialEq)]
pub enum Int8Layer {
    /// A dense layer's.
    Dense(Int8Dense),
    /// A convolution's (run channels-last).
    Conv(Int8Conv),
}

/// The fewest inputs a filter reads for its convolution to run in int8 in a stack. Below it (a
/// 3x3 filter on one to three channels) the integer product saves less than quantizing the
/// input and dequantizing the output cost, so the layer stays f32: measured on the MNIST conv
/// encoder (bench/ `encode_conv`, 2-core Xeon with AVX512-VNNI), about 200k samples/s with its
/// one-channel first layer in int8, 280k with it in f32 and the second in int8.
pub const INT8_MIN_PATCH: usize = 32;

/// The int8 forms of a stack's layers: one per dense layer and per convolution whose filters
/// read at least [`INT8_MIN_PATCH`] inputs, `None` for the layers that run in f32 (the
/// narrower convolutions, transposed convolutions, recurrent and other layers).
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Layers {
    layers: Vec<Option<Int8Layer>>,
}

impl Int8Layers {
    /// Quantizes every dense layer of `layers` and every convolution whose filters read at
    /// least [`INT8_MIN_PATCH`] inputs.
    ///
    /// # Errors
    /// As [`Int8Dense::new`] and [`Int8Conv::new`].
    pub fn new(layers: &[Layer]) -> Result<Int8Layers> {
        let layers = layers
            .iter()
            .map(|l| match l {
                Layer::Dense(d) => Int8Dense::new(d).map(|q| Some(Int8Layer::Dense(q))),
                Layer::Conv2d(c) if c.geometry.patch() >= INT8_MIN_PATCH => {
                    Int8Conv::new(c).map(|q| Some(Int8Layer::Conv(q)))
                }
                _ => Ok(None),
            })
            .collect::<Result<_>>()?;
        Ok(Int8Layers { layers })
    }

    /// The int8 form of layer `i`, when it has one.
    pub fn get(&self, i: usize) -> Option<&Int8Layer> {
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

#[cfg(test)]
mod conv_tests {
    use super::*;
    use crate::activation::Activation;
    use crate::kernels::testing::random;
    use crate::layer::Init;
    use crate::layer::conv::Geometry;
    use crate::rng::Rng;

    /// Awkward geometries: one channel (a patch of 9 bytes in a row of 64), a filter count
    /// past one packed block of 64, padding on one side only, a rectangle, and runs of a
    /// filter row the patch gatherer copies exactly (72 bytes: wider than a vector; 9 bytes in
    /// a row too full for whole-vector copies).
    fn layers(rng: &mut Rng, activation: Activation) -> Vec<Conv2d> {
        let gs = [
            (Geometry::square((24, 5, 5), 3, 1, 1), 8),
            (
                Geometry {
                    input: (3, 9, 8),
                    kernel: (7, 3),
                    stride: (1, 2),
                    padding: (1, 1),
                },
                6,
            ),
            (Geometry::square((1, 5, 6), 3, 2, 1), 3),
            (Geometry::square((3, 7, 7), 3, 1, 0), 70),
            (Geometry::square((16, 8, 8), 3, 2, 1), 32),
            (
                Geometry {
                    input: (2, 6, 9),
                    kernel: (2, 4),
                    stride: (1, 3),
                    padding: (0, 2),
                },
                5,
            ),
        ];
        gs.into_iter()
            .map(|(g, c_out)| {
                let mut c = Conv2d::new(g, c_out, activation, Init::default(), rng).unwrap();
                c.bias = random(c_out, rng);
                c
            })
            .collect()
    }

    /// The exact reference: each image's bytes and scale, each filter's bytes (read in the
    /// layer's own `(c, ky, kx)` order) and scale, the sum in i64, the same f32 epilogue.
    fn reference(q: &Int8Conv, c: &Conv2d, x: &[f32]) -> Vec<f32> {
        let (ch, h, w) = c.geometry.input;
        let ((kh, kw), (sh, sw), (ph, pw)) = (c.geometry.kernel, c.geometry.stride, c.geometry.padding);
        let ((ho, wo), n_in) = (c.out_hw, c.n_in());
        let mut out = Vec::new();
        for img in x.chunks_exact(n_in) {
            let mut qi = vec![0i8; int8::padded(n_in)];
            let mut s = [0.0f32];
            int8::quantize_rows(img, n_in, &mut qi, &mut s);
            for p in 0..ho * wo {
                for o in 0..c.c_out {
                    let mut acc = 0i64;
                    for (channel, ky, kx) in
                        (0..ch).flat_map(|a| (0..kh).flat_map(move |b| (0..kw).map(move |d| (a, b, d))))
                    {
                        let (iy, ix) = (
                            (p / wo * sh + ky) as isize - ph as isize,
                            (p % wo * sw + kx) as isize - pw as isize,
                        );
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            continue;
                        }
                        let xv = qi[(iy as usize * w + ix as usize) * ch + channel];
                        let wv = q.weight.rows[o * q.weight.kp + (ky * kw + kx) * ch + channel];
                        acc += i64::from(xv) * i64::from(wv);
                    }
                    let v = i32::try_from(acc).unwrap() as f32 * (s[0] * q.scale[o]) + c.bias[o];
                    out.push(c.activation.apply(v));
                }
            }
        }
        out
    }

    /// Equal to the exact reference (so the patches are gathered right), within a few percent
    /// of the f32 convolution, the same bits for an image alone and at every integer unit.
    #[test]
    fn int8_conv_is_the_exact_integer_convolution() {
        let mut rng = Rng::new(21);
        for c in layers(&mut rng, Activation::Identity) {
            let q = Int8Conv::new(&c).unwrap();
            let images = SAMPLE_BLOCK + 3;
            let x = random(images * c.n_in(), &mut rng);
            let mut y = vec![0.0; images * c.n_out()];
            q.infer_channels_last(&c, &x, &mut y, false);
            assert_eq!(y, reference(&q, &c, &x), "{:?}", c.geometry);
            let mut f = vec![0.0; y.len()];
            c.infer_channels_last(&x, &mut f);
            let scale = f.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let worst = y.iter().zip(&f).fold(0.0f32, |a, (p, r)| a.max((p - r).abs()));
            assert!(
                worst > 0.0 && worst < 0.03 * scale,
                "{:?}: {worst} of {scale}",
                c.geometry
            );
            let last = images - 1;
            let mut alone = vec![0.0; c.n_out()];
            q.infer_channels_last(&c, &x[last * c.n_in()..], &mut alone, false);
            assert_eq!(alone[..], y[last * c.n_out()..], "{:?}: an image alone", c.geometry);
            crate::kernels::testing::at_every_level(|level| {
                let mut at = vec![0.0; y.len()];
                q.infer_channels_last(&c, &x, &mut at, false);
                assert_eq!(at, y, "{level:?}");
            });
            // Channel-major output: each image's channels-last output, transposed.
            let mut major = vec![0.0; y.len()];
            q.infer_channels_last(&c, &x, &mut major, true);
            let mut want = vec![0.0; y.len()];
            transpose_images(&y, c.n_out(), c.c_out, &mut want, false);
            assert_eq!(major, want, "{:?}: channel-major", c.geometry);
        }
    }

    /// The activation is applied after the bias, as in f32.
    #[test]
    fn int8_conv_applies_the_activation() {
        let mut rng = Rng::new(5);
        for c in layers(&mut rng, Activation::Relu) {
            let q = Int8Conv::new(&c).unwrap();
            let x = random(3 * c.n_in(), &mut rng);
            let mut y = vec![0.0; 3 * c.n_out()];
            q.infer_channels_last(&c, &x, &mut y, false);
            let want = reference(&q, &c, &x);
            assert!(y.contains(&0.0) && y.iter().any(|&v| v > 0.0));
            assert_eq!(y, want, "{:?}", c.geometry);
        }
    }
}
