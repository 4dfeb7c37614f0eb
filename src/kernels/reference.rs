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

/// `y (m x n) = x (m x k) · wᵀ` with `w` `(n, k)` row-major, in [`dot`](super::dot)'s fixed
/// order: term `t` goes to lane `t mod 16` by a fused multiply-add, then the lanes are added
/// `l + l+8`, `+4`, `+2`, `+1`.
pub fn dense_dot(x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut y = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut lane = [0.0f32; 16];
            for t in 0..k.div_ceil(16) * 16 {
                let (a, b) = if t < k {
                    (x[i * k + t], w[j * k + t])
                } else {
                    (0.0, 0.0)
                };
                lane[t % 16] = a.mul_add(b, lane[t % 16]);
            }
            for half in [8, 4, 2, 1] {
                for l in 0..half {
                    lane[l] += lane[l + half];
                }
            }
            y[i * n + j] = lane[0];
        }
    }
    y
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

/// Direct 2-D convolution of one (C, H, W) image: weight `(c_out, c, kh, kw)`, zero padding
/// `(ph, pw)`, stride `(sh, sw)`; returns (c_out, Ho, Wo). Sums in f64.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    (c, h, wd): (usize, usize, usize),
    c_out: usize,
    (kh, kw): (usize, usize),
    (sh, sw): (usize, usize),
    (ph, pw): (usize, usize),
) -> Vec<f32> {
    let ho = (h + 2 * ph - kh) / sh + 1;
    let wo = (wd + 2 * pw - kw) / sw + 1;
    let mut y = vec![0.0; c_out * ho * wo];
    for o in 0..c_out {
        for oy in 0..ho {
            for ox in 0..wo {
                let mut acc = f64::from(b[o]);
                for ci in 0..c {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * sh + ky) as isize - ph as isize;
                            let ix = (ox * sw + kx) as isize - pw as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                acc += f64::from(w[((o * c + ci) * kh + ky) * kw + kx])
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

/// Direct transposed convolution of one (C, H, W) image: weight `(c, c_out, kh, kw)`
/// (PyTorch's layout); each input pixel scatters its kernel onto the (c_out, Ho, Wo) output
/// with `Ho = (H - 1) sh - 2 ph + kh + oph` (and the same across). Sums in f64.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    (c, h, wd): (usize, usize, usize),
    c_out: usize,
    (kh, kw): (usize, usize),
    (sh, sw): (usize, usize),
    (ph, pw): (usize, usize),
    (oph, opw): (usize, usize),
) -> Vec<f32> {
    let ho = (h - 1) * sh + kh + oph - 2 * ph;
    let wo = (wd - 1) * sw + kw + opw - 2 * pw;
    let mut acc = vec![0.0f64; c_out * ho * wo];
    for ci in 0..c {
        for iy in 0..h {
            for ix in 0..wd {
                let v = f64::from(x[(ci * h + iy) * wd + ix]);
                for o in 0..c_out {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let oy = (iy * sh + ky) as isize - ph as isize;
                            let ox = (ix * sw + kx) as isize - pw as isize;
                            if oy >= 0 && ox >= 0 && (oy as usize) < ho && (ox as usize) < wo {
                                acc[(o * ho + oy as usize) * wo + ox as usize] +=
                                    v * f64::from(w[((ci * c_out + o) * kh + ky) * kw + kx]);
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

/// `y = act(y + bias)` over one channel plane (one bias value), the pre-activation in `z`.
pub fn plane_bias_activation(y: &mut [f32], z: &mut [f32], bias: f32, act: Activation) {
    for (v, zv) in y.iter_mut().zip(z.iter_mut()) {
        *zv = *v + bias;
        *v = act.apply(*zv);
    }
}

/// `Σ v²` in f64, one value at a time.
pub fn sum_squares(a: &[f32]) -> f64 {
    a.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}

/// `a *= s`.
pub fn scale_in_place(a: &mut [f32], s: f32) {
    a.iter_mut().for_each(|v| *v *= s);
}

/// `dw[r] += da[r] input` and `d_input += da[r] w[r]` for each row `r` of `w`, in order.
pub fn outer_and_back(dw: &mut [f32], w: &[f32], da: &[f32], input: &[f32], d_input: &mut [f32]) {
    let cols = input.len();
    for (r, &d) in da.iter().enumerate() {
        for k in 0..cols {
            dw[r * cols + k] += d * input[k];
            d_input[k] += d * w[r * cols + k];
        }
    }
}

/// Each row of `cols` values whose L2 norm exceeds `max` is scaled to norm `max`.
pub fn max_norm_rows(w: &mut [f32], cols: usize, max: f32) {
    for row in w.chunks_exact_mut(cols) {
        let norm = sum_squares(row).sqrt();
        if norm > f64::from(max) {
            scale_in_place(row, (f64::from(max) / norm) as f32);
        }
    }
}

/// MSE output gradient `dz = scale · 2 (y − t) · act'(z, y)` and `Σ (y − t)²` (in f64).
pub fn mse_output_grad(y: &[f32], t: &[f32], z: &[f32], act: Activation, scale: f32, dz: &mut [f32]) -> f64 {
    let mut total = 0.0;
    for (i, d) in dz.iter_mut().enumerate() {
        let e = y[i] - t[i];
        total += f64::from(e) * f64::from(e);
        *d = scale * 2.0 * e * act.grad(z[i], y[i]);
    }
    total
}

/// BCE of a sigmoid output from its pre-activation `z`, in f64 with the standard library:
/// `dz = scale · (y − t)` and `Σ −t ln σ(z) − (1 − t) ln(1 − σ(z))`.
pub fn bce_sigmoid_output_grad(y: &[f32], t: &[f32], z: &[f32], scale: f32, dz: &mut [f32]) -> f64 {
    let mut total = 0.0;
    for (i, d) in dz.iter_mut().enumerate() {
        *d = scale * (y[i] - t[i]);
        let (z, t) = (f64::from(z[i]), f64::from(t[i]));
        // ln σ(z) = −ln(1 + e^{−z}), ln(1 − σ(z)) = −z − ln(1 + e^{−z}).
        let softplus = (-z).exp().ln_1p();
        total += t * softplus + (1.0 - t) * (z + softplus);
    }
    total
}

/// One AdamW step, one value at a time, in f64 (`lr_t` includes the first moment's bias
/// correction, `bc2_sqrt` is `sqrt(1 − beta2^t)`, `decay` is `lr · weight_decay`).
#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lr_t: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    bc2_sqrt: f32,
    decay: f32,
) {
    for i in 0..w.len() {
        let (gi, b1, b2) = (f64::from(g[i]), f64::from(beta1), f64::from(beta2));
        let mi = b1 * f64::from(m[i]) + (1.0 - b1) * gi;
        let vi = b2 * f64::from(v[i]) + (1.0 - b2) * gi * gi;
        let denom = vi.sqrt() / f64::from(bc2_sqrt) + f64::from(eps);
        let wi = f64::from(w[i]);
        w[i] = (wi - f64::from(decay) * wi - f64::from(lr_t) * mi / denom) as f32;
        m[i] = mi as f32;
        v[i] = vi as f32;
    }
}

/// One SGD step with momentum (PyTorch semantics), one value at a time.
pub fn sgd_update(w: &mut [f32], g: &[f32], buf: &mut [f32], lr: f32, momentum: f32, nesterov: bool, wd: f32) {
    for i in 0..w.len() {
        let g = g[i] + wd * w[i];
        buf[i] = momentum * buf[i] + g;
        let step = if nesterov { g + momentum * buf[i] } else { buf[i] };
        w[i] -= lr * step;
    }
}

/// `dst[i] = src[index[i]]`, bounds-checked.
pub fn gather(index: &[u32], src: &[f32]) -> Vec<f32> {
    index.iter().map(|&i| src[i as usize]).collect()
}

/// `dst[index[i]] += src[i]`, bounds-checked, in index order.
pub fn scatter_add(index: &[u32], src: &[f32], dst: &mut [f32]) {
    for (&i, &v) in index.iter().zip(src) {
        dst[i as usize] += v;
    }
}

/// `acc (m x n) = x (m x kp) · wᵀ` in i32, `w` being `(n, kp)` row-major: the exact integer
/// products [`int8`](super::int8) computes.
pub fn dot_i8(x: &[i8], w: &[i8], m: usize, kp: usize, n: usize) -> Vec<i32> {
    let mut acc = vec![0i64; m * n];
    for i in 0..m {
        for j in 0..n {
            for t in 0..kp {
                acc[i * n + j] += i64::from(x[i * kp + t]) * i64::from(w[j * kp + t]);
            }
        }
    }
    acc.into_iter()
        .map(|v| i32::try_from(v).expect("the product fits in i32"))
        .collect()
}
