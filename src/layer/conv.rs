//! Geometry shared by the convolution layers: kernels, strides and zero padding (square for
//! images, one row high for series), and the
//! im2col / col2im transforms that turn a convolution into one GEMM per image.
//!
//! An image is one row of `C * H * W` values, channel-major (C, H, W).

use crate::error::{Error, Result};

/// Shape of an image `(channels, height, width)`.
pub type Shape = (usize, usize, usize);

/// A convolution's geometry: input image, kernel, stride and padding, each `(height, width)`
/// (square for images; one row high for a series' windows: kernel `(1, k)`, padding `(0, p)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Geometry {
    /// Input channels, height, width of the convolution's *image* side.
    pub input: Shape,
    /// Kernel height and width.
    pub kernel: (usize, usize),
    /// Stride down and across.
    pub stride: (usize, usize),
    /// Zero padding above and below, left and right.
    pub padding: (usize, usize),
}

impl Geometry {
    /// A square `k x k` kernel with the same stride and padding in both directions.
    pub fn square(input: Shape, k: usize, s: usize, p: usize) -> Self {
        Geometry {
            input,
            kernel: (k, k),
            stride: (s, s),
            padding: (p, p),
        }
    }

    /// A kernel of `k` steps along the width of one-row images (a 1-D convolution): stride
    /// `s` and padding `p` along the width only.
    pub fn row(input: Shape, k: usize, s: usize, p: usize) -> Self {
        Geometry {
            input,
            kernel: (1, k),
            stride: (1, s),
            padding: (0, p),
        }
    }

    /// Output height and width of the convolution, or an error naming the sizes that do not fit.
    ///
    /// # Errors
    /// [`Error::Config`] when the kernel is larger than the padded image or a size is 0.
    pub fn output_hw(&self) -> Result<(usize, usize)> {
        let (c, h, w) = self.input;
        let ((kh, kw), (sh, sw)) = (self.kernel, self.stride);
        if kh == 0 || kw == 0 || sh == 0 || sw == 0 || c == 0 || h == 0 || w == 0 {
            return Err(Error::Config(format!(
                "kernel {}, stride {} and input {c}x{h}x{w} must all be positive",
                self.kernel_text(),
                pair_text(self.stride)
            )));
        }
        let (hp, wp) = self.padded_hw();
        // The im2col and direct-kernel tables index the padded image with u32.
        if c.checked_mul(hp)
            .and_then(|v| v.checked_mul(wp))
            .is_none_or(|v| v >= u32::MAX as usize)
        {
            return Err(Error::Config(format!(
                "a {c}x{h}x{w} image with padding {} is too large for a convolution (at most 2^32 values)",
                pair_text(self.padding)
            )));
        }
        if kh > hp || kw > wp {
            return Err(Error::Config(format!(
                "a {} kernel does not fit a {h}x{w} input with padding {}",
                self.kernel_text(),
                pair_text(self.padding)
            )));
        }
        Ok(((hp - kh) / sh + 1, (wp - kw) / sw + 1))
    }

    /// The kernel as `KHxKW`.
    pub fn kernel_text(&self) -> String {
        format!("{}x{}", self.kernel.0, self.kernel.1)
    }

    /// The input's height and width with the zero padding on each side.
    pub fn padded_hw(&self) -> (usize, usize) {
        let (_, h, w) = self.input;
        // Saturating: an absurd padding fails the size check in `output_hw` instead of wrapping.
        (
            h.saturating_add(self.padding.0.saturating_mul(2)),
            w.saturating_add(self.padding.1.saturating_mul(2)),
        )
    }

    /// Rows of the im2col matrix: `C * kh * kw`.
    pub fn patch(&self) -> usize {
        self.input.0 * self.kernel.0 * self.kernel.1
    }
}

/// A pair as one number when both are equal, else `AxB`.
fn pair_text((a, b): (usize, usize)) -> String {
    if a == b { a.to_string() } else { format!("{a}x{b}") }
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
        let ((kh, kw), (sh, sw), (ph, pw)) = (g.kernel, g.stride, g.padding);
        let n_img = c * h * w;
        let mut index = Vec::with_capacity(c * kh * kw * ho * wo);
        for ch in 0..c {
            for ky in 0..kh {
                for kx in 0..kw {
                    for oy in 0..ho {
                        for ox in 0..wo {
                            let (iy, ix) = (
                                (oy * sh + ky) as isize - ph as isize,
                                (ox * sw + kx) as isize - pw as isize,
                            );
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
        for g in [
            Geometry::square((1, 5, 5), 3, 1, 1),
            Geometry::square((2, 7, 6), 3, 2, 1),
            Geometry::square((3, 4, 9), 2, 2, 0),
            Geometry::square((1, 3, 3), 3, 1, 2),
            Geometry::row((2, 1, 11), 3, 2, 1),
            Geometry {
                input: (2, 5, 7),
                kernel: (2, 3),
                stride: (1, 2),
                padding: (1, 0),
            },
        ] {
            let (c, h, w) = g.input;
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
        let g = Geometry::square((64, 1 << 13, 1 << 13), 3, 1, 1);
        assert!(
            g.output_hw()
                .unwrap_err()
                .to_string()
                .contains("too large for a convolution")
        );
    }

    #[test]
    fn sizes_that_do_not_fit_are_named() {
        let g = Geometry::square((1, 2, 2), 5, 1, 1);
        assert!(
            g.output_hw()
                .unwrap_err()
                .to_string()
                .contains("5x5 kernel does not fit a 2x2 input")
        );
        let g = Geometry::row((3, 1, 4), 7, 1, 1);
        let e = g.output_hw().unwrap_err().to_string();
        assert!(
            e.contains("a 1x7 kernel does not fit a 1x4 input with padding 0x1"),
            "{e}"
        );
    }
}
