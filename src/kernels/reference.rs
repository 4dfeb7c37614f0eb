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
