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
        let (_, h, w) = self.input;
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        if k == 0 || s == 0 || h == 0 || w == 0 {
            return Err(Error::Config(format!(
                "kernel {k}, stride {s} and input {h}x{w} must all be positive"
            )));
        }
        if k > h + 2 * p || k > w + 2 * p {
            return Err(Error::Config(format!(
                "a {k}x{k} kernel does not fit a {h}x{w} input with padding {p}"
            )));
        }
        Ok(((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1))
    }

    /// Rows of the im2col matrix: `C * k * k`.
    pub fn patch(&self) -> usize {
        self.input.0 * self.kernel * self.kernel
    }
}

/// im2col of one image: `cols (C*k*k, Ho*Wo)` row-major, zero where the kernel covers padding.
pub fn im2col(g: &Geometry, (ho, wo): (usize, usize), img: &[f32], cols: &mut [f32]) {
    let (c, h, w) = g.input;
    let (k, s, p) = (g.kernel, g.stride, g.padding);
    let hw = ho * wo;
    debug_assert_eq!(cols.len(), c * k * k * hw);
    for ch in 0..c {
        for ky in 0..k {
            for kx in 0..k {
                let row = &mut cols[((ch * k + ky) * k + kx) * hw..][..hw];
                for oy in 0..ho {
                    let iy = (oy * s + ky) as isize - p as isize;
                    let out = &mut row[oy * wo..(oy + 1) * wo];
                    if iy < 0 || iy >= h as isize {
                        out.fill(0.0);
                        continue;
                    }
                    let src = &img[(ch * h + iy as usize) * w..][..w];
                    for (ox, o) in out.iter_mut().enumerate() {
                        let ix = (ox * s + kx) as isize - p as isize;
                        *o = if ix < 0 || ix >= w as isize {
                            0.0
                        } else {
                            src[ix as usize]
                        };
                    }
                }
            }
        }
    }
}

/// col2im of one image: adds `cols (C*k*k, Ho*Wo)` back onto `img` (the adjoint of [`im2col`]).
pub fn col2im(g: &Geometry, (ho, wo): (usize, usize), cols: &[f32], img: &mut [f32]) {
    let (c, h, w) = g.input;
    let (k, s, p) = (g.kernel, g.stride, g.padding);
    let hw = ho * wo;
    for ch in 0..c {
        for ky in 0..k {
            for kx in 0..k {
                let row = &cols[((ch * k + ky) * k + kx) * hw..][..hw];
                for oy in 0..ho {
                    let iy = (oy * s + ky) as isize - p as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let dst = &mut img[(ch * h + iy as usize) * w..][..w];
                    for ox in 0..wo {
                        let ix = (ox * s + kx) as isize - p as isize;
                        if ix >= 0 && ix < w as isize {
                            dst[ix as usize] += row[oy * wo + ox];
                        }
                    }
                }
            }
        }
    }
}

/// Adds the per-channel bias to each channel plane of the pre-activation `z` (one image,
/// planes of `plane` values) and writes `y = act(z)`.
pub fn bias_activation(z: &mut [f32], y: &mut [f32], bias: &[f32], act: crate::Activation, plane: usize) {
    for (c, (zr, yr)) in z.chunks_exact_mut(plane).zip(y.chunks_exact_mut(plane)).enumerate() {
        for (zv, yv) in zr.iter_mut().zip(yr.iter_mut()) {
            *zv += bias[c];
            *yv = act.apply(*zv);
        }
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
            let mut cols = vec![0.0; cv.len()];
            im2col(&g, o, &x, &mut cols);
            let mut back = vec![0.0; x.len()];
            col2im(&g, o, &cv, &mut back);
            let a: f64 = cols.iter().zip(&cv).map(|(u, v)| f64::from(*u) * f64::from(*v)).sum();
            let b: f64 = x.iter().zip(&back).map(|(u, v)| f64::from(*u) * f64::from(*v)).sum();
            assert!((a - b).abs() < 1e-3 * (1.0 + a.abs()), "{a} vs {b}");
        }
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
