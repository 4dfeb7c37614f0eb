//! Plain reference twins of the fast kernels: obviously correct, slow, used by tests.

use crate::activation::Activation;

/// `c (m x n) = a (m x k) * b (k x n)`, all row-major, accumulated in f64.
pub fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            for p in 0..k {
                s += a[i * k + p] as f64 * b[p * n + j] as f64;
            }
            c[i * n + j] = s as f32;
        }
    }
    c
}

/// Transpose of a row-major `rows x cols` matrix.
pub fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = a[i * cols + j];
        }
    }
    t
}

/// `y = act(y + bias)` row by row, with the standard library's `exp`.
pub fn bias_activation(y: &mut [f32], bias: &[f32], act: Activation) {
    for row in y.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v = act.apply(*v + b);
        }
    }
}

/// `d *= act'(z, y)` elementwise.
pub fn activation_backward(d: &mut [f32], y: &[f32], z: &[f32], act: Activation) {
    for ((d, &y), &z) in d.iter_mut().zip(y).zip(z) {
        *d *= act.grad(z, y);
    }
}

/// Column sums of a row-major matrix with `cols` columns, in f64.
pub fn column_sums(a: &[f32], cols: usize) -> Vec<f32> {
    let mut s = vec![0.0f64; cols];
    for row in a.chunks_exact(cols) {
        for (s, &v) in s.iter_mut().zip(row) {
            *s += v as f64;
        }
    }
    s.into_iter().map(|v| v as f32).collect()
}

/// `c = bf16(a) * bf16(b)`: operands rounded to bf16 (nearest even), products summed in f64.
pub fn matmul_bf16(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let round = |v: &[f32]| -> Vec<f32> {
        v.iter()
            .map(|&x| super::amx::from_bf16(super::amx::to_bf16(x)))
            .collect()
    };
    matmul(&round(a), &round(b), m, k, n)
}

/// Direct 2-D convolution of one (C, H, W) image: weight `(c_out, c, k, k)`, zero padding `p`,
/// stride `s`; returns (c_out, Ho, Wo). Sums in f64.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    (c, h, wd): (usize, usize, usize),
    c_out: usize,
    k: usize,
    s: usize,
    p: usize,
) -> Vec<f32> {
    let ho = (h + 2 * p - k) / s + 1;
    let wo = (wd + 2 * p - k) / s + 1;
    let mut y = vec![0.0; c_out * ho * wo];
    for o in 0..c_out {
        for oy in 0..ho {
            for ox in 0..wo {
                let mut acc = f64::from(b[o]);
                for ci in 0..c {
                    for ky in 0..k {
                        for kx in 0..k {
                            let iy = (oy * s + ky) as isize - p as isize;
                            let ix = (ox * s + kx) as isize - p as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                acc += f64::from(w[((o * c + ci) * k + ky) * k + kx])
                                    * f64::from(x[(ci * h + iy as usize) * wd + ix as usize]);
                            }
                        }
                    }
                }
                y[(o * ho + oy) * wo + ox] = acc as f32;
            }
        }
    }
    y
}

/// Direct transposed convolution of one (C, H, W) image: weight `(c, c_out, k, k)` (PyTorch's
/// layout); each input pixel scatters its kernel onto the (c_out, Ho, Wo) output with
/// `Ho = (H - 1) s - 2p + k + output_padding`. Sums in f64.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    (c, h, wd): (usize, usize, usize),
    c_out: usize,
    k: usize,
    s: usize,
    p: usize,
    op: usize,
) -> Vec<f32> {
    let ho = (h - 1) * s + k + op - 2 * p;
    let wo = (wd - 1) * s + k + op - 2 * p;
    let mut acc = vec![0.0f64; c_out * ho * wo];
    for ci in 0..c {
        for iy in 0..h {
            for ix in 0..wd {
                let v = f64::from(x[(ci * h + iy) * wd + ix]);
                for o in 0..c_out {
                    for ky in 0..k {
                        for kx in 0..k {
                            let oy = (iy * s + ky) as isize - p as isize;
                            let ox = (ix * s + kx) as isize - p as isize;
                            if oy >= 0 && ox >= 0 && (oy as usize) < ho && (ox as usize) < wo {
                                acc[(o * ho + oy as usize) * wo + ox as usize] +=
                                    v * f64::from(w[((ci * c_out + o) * k + ky) * k + kx]);
                            }
                        }
                    }
                }
            }
        }
    }
    (0..c_out * ho * wo)
        .map(|i| (acc[i] + f64::from(b[i / (ho * wo)])) as f32)
        .collect()
}
