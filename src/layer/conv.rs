//! Geometry shared by the convolution layers: square kernels, stride, zero padding, and the
//! im2col / col2im transforms that turn a convolution into one GEMM per image.
//!
//! An image is one row of `C * H * W` values, channel-major (C, H, W).

use crate::error::{Error, Result};

/// Shape of an image `(channels, height, width)`.
pub type Shape = (usize, usize, usize);

/// A convolution's geometry: input image, kernel, stride and padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Geometry {
    /// Input channels, height, width of the convolution's *image* side.
    pub input: Shape,
    /// Kernel size (square).
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

impl Geometry {
    /// Output height and width of the convolution, or an error naming the sizes that do not fit.
    ///
    /// # Errors
    /// [`Error::Config`] when the kernel is larger than the padded image or a size is 0.
    pub fn output_hw(&self) -> Result<(usize, usize)> {
        let (c, h, w) = self.input;
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        if k == 0 || s == 0 || c == 0 || h == 0 || w == 0 {
            return Err(Error::Config(format!(
                "kernel {k}, stride {s} and input {c}x{h}x{w} must all be positive"
            )));
        }
        let (hp, wp) = self.padded_hw();
        // The im2col and direct-kernel tables index the padded image with u32.
        if c.checked_mul(hp)
            .and_then(|v| v.checked_mul(wp))
            .is_none_or(|v| v >= u32::MAX as usize)
        {
            return Err(Error::Config(format!(
                "a {c}x{h}x{w} image with padding {p} is too large for a convolution (at most 2^32 values)"
            )));
        }
        if k > hp || k > wp {
            return Err(Error::Config(format!(
                "a {k}x{k} kernel does not fit a {h}x{w} input with padding {p}"
            )));
        }
        Ok(((hp - k) / s + 1, (wp - k) / s + 1))
    }

    /// The input's height and width with the zero padding on every side.
    pub fn padded_hw(&self) -> (usize, usize) {
        let (_, h, w) = self.input;
        // Saturating: an absurd padding fails the size check in `output_hw` instead of wrapping.
        let p2 = self.padding.saturating_mul(2);
        (h.saturating_add(p2), w.saturating_add(p2))
    }

    /// Rows of the im2col matrix: `C * k * k`.
    pub fn patch(&self) -> usize {
        self.input.0 * self.kernel * self.kernel
    }
}

/// im2col as a gather: entry `(r, j)` of the column matrix reads image value `index`, or the
/// zero appended after the image (value `C*H*W`) where the kernel covers padding. Made once
/// per layer call and shared by every image.
#[derive(Clone, Debug, PartialEq)]
pub struct Patches {
    table: crate::kernels::GatherTable,
    n_img: usize,
}

impl Patches {
    /// The pattern of `g` with output size `(ho, wo)`.
    pub fn new(g: &Geometry, (ho, wo): (usize, usize)) -> Self {
        let (c, h, w) = g.input;
        let (k, s, p) = (g.kernel, g.stride, g.padding);
        let n_img = c * h * w;
        let mut index = Vec::with_capacity(c * k * k * ho * wo);
        for ch in 0..c {
            for ky in 0..k {
                for kx in 0..k {
                    for oy in 0..ho {
                        for ox in 0..wo {
                            let (iy, ix) = ((oy * s + ky) as isize - p as isize, (ox * s + kx) as isize - p as isize);
                            let inside = (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix);
                            index.push(if inside {
                                ((ch * h + iy as usize) * w + ix as usize) as u32
                            } else {
                                n_img as u32
                            });
                        }
                    }
                }
            }
        }
        let table = crate::kernels::GatherTable::new(index, n_img + 1).expect("indices are inside the padded image");
        Patches { table, n_img }
    }

    /// im2col of `img` into `cols`, using `padded` (C*H*W + 1 values) as scratch.
    pub fn im2col(&self, img: &[f32], padded: &mut [f32], cols: &mut [f32]) {
        padded[..self.n_img].copy_from_slice(img);
        padded[self.n_img] = 0.0;
        self.table.gather(padded, cols);
    }

    /// col2im: adds `cols` onto `img`, using `padded` (C*H*W + 1 values) as scratch.
    pub fn col2im(&self, cols: &[f32], padded: &mut [f32], img: &mut [f32]) {
        padded[..self.n_img].copy_from_slice(img);
        padded[self.n_img] = 0.0;
        self.table.scatter_add(cols, padded);
        img.copy_from_slice(&padded[..self.n_img]);
    }
}

/// The convolution epilogue on one image: `y` holds the convolution (channel planes of
/// `plane` values); adds the per-channel bias, stores that pre-activation in `z` when given,
/// and applies the activation to `y` in place.
pub fn bias_activation(
    y: &mut [f32],
    mut z: Option<&mut [f32]>,
    bias: &[f32],
    act: crate::activation::Activation,
    plane: usize,
) {
    for (c, yr) in y.chunks_exact_mut(plane).enumerate() {
        let zr = z.as_deref_mut().map(|z| &mut z[c * plane..(c + 1) * plane]);
        crate::kernels::plane_bias_activation(yr, zr, bias[c], act);
    }
}

/// Per-block slots of an optional buffer: the chunks of `buf` when given, else `None`s, so
/// a parallel loop can zip them with the blocks of its other buffers.
pub fn optional_chunks(buf: Option<&mut [f32]>, chunk: usize, blocks: usize) -> Vec<Option<&mut [f32]>> {
    match buf {
        Some(b) => b.chunks_mut(chunk).map(Some).collect(),
        None => (0..blocks).map(|_| None).collect(),
    }
}

/// Adds per-block partial weight gradients in block order (the thread-invariant sum).
pub fn sum_blocks(partial: &[Vec<f32>], dw: &mut [f32]) {
    dw.fill(0.0);
    for p in partial {
        dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
}

/// Bias gradient: the sum of `dz` over the batch and each channel plane, in a fixed order.
pub fn channel_sums(dz: &[f32], n_out: usize, plane: usize, db: &mut [f32]) {
    db.fill(0.0);
    for g in dz.chunks_exact(n_out) {
        for (c, r) in g.chunks_exact(plane).enumerate() {
            db[c] += r.iter().sum::<f32>();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)>.
    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        for &(c, h, w, k, s, p) in &[
            (1, 5, 5, 3, 1, 1),
            (2, 7, 6, 3, 2, 1),
            (3, 4, 9, 2, 2, 0),
            (1, 3, 3, 3, 1, 2),
        ] {
            let g = Geometry {
                input: (c, h, w),
                kernel: k,
                stride: s,
                padding: p,
            };
            let o = g.output_hw().unwrap();
            let mut rng = Rng::new(1);
            let x: Vec<f32> = (0..c * h * w).map(|_| rng.normal()).collect();
            let cv: Vec<f32> = (0..g.patch() * o.0 * o.1).map(|_| rng.normal()).collect();
            let patches = Patches::new(&g, o);
            let mut padded = vec![0.0; x.len() + 1];
            let mut cols = vec![0.0; cv.len()];
            patches.im2col(&x, &mut padded, &mut cols);
            let mut back = vec![0.0; x.len()];
            patches.col2im(&cv, &mut padded, &mut back);
            let a: f64 = cols.iter().zip(&cv).map(|(u, v)| f64::from(*u) * f64::from(*v)).sum();
            let b: f64 = x.iter().zip(&back).map(|(u, v)| f64::from(*u) * f64::from(*v)).sum();
            assert!((a - b).abs() < 1e-3 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn images_too_large_for_the_tables_are_refused() {
        let g = Geometry {
            input: (64, 1 << 13, 1 << 13),
            kernel: 3,
            stride: 1,
            padding: 1,
        };
        assert!(
            g.output_hw()
                .unwrap_err()
                .to_string()
                .contains("too large for a convolution")
        );
    }

    #[test]
    fn sizes_that_do_not_fit_are_named() {
        let g = Geometry {
            input: (1, 2, 2),
            kernel: 5,
            stride: 1,
            padding: 1,
        };
        assert!(
            g.output_hw()
                .unwrap_err()
                .to_string()
                .contains("5x5 kernel does not fit a 2x2 input")
        );
    }
}
