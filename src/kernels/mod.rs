//! The fast kernels: GEMM (faer), fused bias + activation, activation backward, column sums,
//! loss gradients and optimizer updates.
//!
//! This is the only module allowed `unsafe`: the elementwise kernels are compiled several times
//! with different CPU features and the best one is chosen at run time (the `multiversion!` macro).
//! Every fast kernel has a plain twin in [`reference`](mod@reference) and a test comparing the two.
//!
//! # Determinism
//! Work is split into blocks whose boundaries depend only on the problem size, never on the
//! number of threads, and no reduction is split across blocks. Results are therefore
//! bit-identical for any thread count.

pub mod direct;
pub mod reference;

use crate::activation::Activation;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use std::sync::OnceLock;

/// Rows of a GEMM output computed as one sequential faer call. Fixed (independent of the
/// thread count) so results do not depend on it. Measured on the 2-core Xeon (AVX-512) of
/// BENCHMARKS.md, one MNIST epoch at batch 256, samples/s for {32, 64, 128, 256}:
/// 784-256-64 AE 59.0k / 65.2k / 67.8k / 54.2k; 784-1000-500-250-30 AE 9.2k / 10.6k / 11.6k / 9.4k.
pub const ROW_BLOCK: usize = 128;

/// Arithmetic of the GEMMs in training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// f32 everywhere (the default).
    #[default]
    F32,
    /// GEMM operands rounded to bf16, products accumulated in f32 on AMX tiles; weights,
    /// activations, gradients and optimizer state stay f32. Falls back to f32 GEMMs on CPUs
    /// without AMX-BF16.
    Bf16,
}

impl Precision {
    /// Whether GEMMs really run in bf16 on this machine.
    pub fn uses_amx(self) -> bool {
        self == Precision::Bf16 && amx::available()
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(format!("unknown precision `{s}`; expected f32 or bf16")),
        }
    }
}

/// Elements per task of the elementwise optimizer kernels (keeps each task's data in L2).
pub const ELEMENT_BLOCK: usize = 1 << 14;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    Avx512,
    Avx2,
    Portable,
}

pub(crate) fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Level::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Level::Avx2;
            }
        }
        Level::Portable
    })
}

/// The instruction set the elementwise kernels run with on this machine.
pub fn simd_level() -> &'static str {
    match level() {
        Level::Avx512 => "avx512",
        Level::Avx2 => "avx2+fma",
        Level::Portable => "portable",
    }
}

/// Compiles a function body three times (AVX-512, AVX2+FMA, portable) and picks one at run time.
/// The body must be plain safe Rust; the compiler vectorizes it for each feature set.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn generic($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
                fn v4($($arg: $ty),*) $(-> $ret)? { generic($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn v3($($arg: $ty),*) $(-> $ret)? { generic($($arg),*) }
                match $crate::kernels::level() {
                    // SAFETY: `level()` returned Avx512 only after detecting every feature v4 enables.
                    $crate::kernels::Level::Avx512 => return unsafe { v4($($arg),*) },
                    // SAFETY: `level()` returned Avx2 only after detecting avx2 and fma.
                    $crate::kernels::Level::Avx2 => return unsafe { v3($($arg),*) },
                    $crate::kernels::Level::Portable => {}
                }
            }
            generic($($arg),*)
        }
    };
}

pub(crate) use multiversion;

pub mod amx;

/// Fast `exp` for f32: branch-free (vectorizes), relative error below 2e-7 on [-87, 88];
/// inputs are clamped to that range.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.clamp(-87.336_54, 88.376_26);
    let t = x * LOG2E + ROUND;
    let n_int = t.to_bits() as i32 - ROUND.to_bits() as i32;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    // Minimax polynomial for exp(r) on [-ln2/2, ln2/2] (Cephes expf).
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n_int + 127) << 23) as u32)
}

/// Fast natural logarithm for positive normal f32, branch-free, relative error below 3e-7.
#[inline(always)]
pub fn fast_ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // [0.5, 1)
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    let e = (if small { e - 1 } else { e }) as f32;
    let m = if small { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    // Polynomial for log(1 + m) (Cephes logf).
    let mut y = 7.037_683_6e-2_f32;
    y = y * m - 1.151_461_1e-1;
    y = y * m + 1.167_699_9e-1;
    y = y * m - 1.242_014_1e-1;
    y = y * m + 1.424_932_3e-1;
    y = y * m - 1.666_805_8e-1;
    y = y * m + 2.000_071_4e-1;
    y = y * m - 2.499_999_4e-1;
    y = y * m + 0.333_333_34;
    let y = y * m * z - 2.121_944_4e-4 * e - 0.5 * z;
    m + y + 0.693_359_4 * e
}

/// Row-major view of `data` as a `rows x cols` matrix.
pub fn view(data: &[f32], rows: usize, cols: usize) -> MatRef<'_, f32> {
    MatRef::from_row_major_slice(data, rows, cols)
}

/// One block of rows: `c (rows x n) (+)= lhs[r0 .. r0 + rows] * rhs`, on AMX when `packed`.
fn gemm_block(
    c: &mut [f32],
    lhs: MatRef<'_, f32>,
    rhs: MatRef<'_, f32>,
    r0: usize,
    accumulate: bool,
    packed: Option<&amx::PackedB>,
) {
    let n = rhs.ncols();
    let rows = c.len() / n;
    match packed {
        Some(b) => amx::matmul(c, lhs.subrows(r0, rows), b, accumulate),
        None => faer::linalg::matmul::matmul(
            MatMut::from_row_major_slice_mut(c, rows, n),
            if accumulate { Accum::Add } else { Accum::Replace },
            lhs.subrows(r0, rows),
            rhs,
            1.0f32,
            Par::Seq,
        ),
    }
}

#[track_caller]
fn check_gemm(dst: usize, lhs: MatRef<'_, f32>, rhs: MatRef<'_, f32>) {
    assert_eq!(dst, lhs.nrows() * rhs.ncols(), "matmul: dst has the wrong length");
    assert_eq!(lhs.ncols(), rhs.nrows(), "matmul: inner dimensions differ");
}

/// `dst (m x n) = lhs (m x k) * rhs (k x n)` (or `+=` when `accumulate`), then
/// `epilogue(first_row, block)` on each finished block of [`ROW_BLOCK`] rows while it is in cache.
///
/// Blocks run in parallel on the current rayon pool; each is one sequential GEMM (faer in f32,
/// or AMX tiles for [`Precision::Bf16`]), so the result does not depend on the number of threads.
#[track_caller]
pub fn matmul_rows<F>(
    dst: &mut [f32],
    lhs: MatRef<'_, f32>,
    rhs: MatRef<'_, f32>,
    accumulate: bool,
    precision: Precision,
    epilogue: F,
) where
    F: Fn(usize, &mut [f32]) + Sync,
{
    check_gemm(dst.len(), lhs, rhs);
    let n = rhs.ncols();
    if dst.is_empty() {
        return;
    }
    let packed = precision.uses_amx().then(|| amx::PackedB::new(rhs));
    let block = |(bi, c): (usize, &mut [f32])| {
        gemm_block(c, lhs, rhs, bi * ROW_BLOCK, accumulate, packed.as_ref());
        epilogue(bi * ROW_BLOCK, c);
    };
    if lhs.nrows() <= ROW_BLOCK {
        block((0, dst));
    } else {
        dst.par_chunks_mut(ROW_BLOCK * n).enumerate().for_each(block);
    }
}

/// [`matmul_rows`] with a second output buffer `aux` of `aux.1` columns, handed to the epilogue
/// in blocks of the same rows.
#[track_caller]
pub fn matmul_rows_with<F>(
    dst: &mut [f32],
    aux: (&mut [f32], usize),
    lhs: MatRef<'_, f32>,
    rhs: MatRef<'_, f32>,
    accumulate: bool,
    precision: Precision,
    epilogue: F,
) where
    F: Fn(usize, &mut [f32], &mut [f32]) + Sync,
{
    check_gemm(dst.len(), lhs, rhs);
    let (aux, aux_cols) = aux;
    assert_eq!(
        aux.len(),
        lhs.nrows() * aux_cols,
        "matmul_rows_with: aux has the wrong length"
    );
    let n = rhs.ncols();
    if dst.is_empty() {
        return;
    }
    let packed = precision.uses_amx().then(|| amx::PackedB::new(rhs));
    let block = |(bi, (c, a)): (usize, (&mut [f32], &mut [f32]))| {
        gemm_block(c, lhs, rhs, bi * ROW_BLOCK, accumulate, packed.as_ref());
        epilogue(bi * ROW_BLOCK, c, a);
    };
    if lhs.nrows() <= ROW_BLOCK {
        block((0, (dst, aux)));
    } else {
        dst.par_chunks_mut(ROW_BLOCK * n)
            .zip(aux.par_chunks_mut(ROW_BLOCK * aux_cols))
            .enumerate()
            .for_each(block);
    }
}

/// Runs `f(first_row, rows_of_a, rows_of_b)` on blocks of [`ROW_BLOCK`] rows in parallel.
pub fn par_row_blocks<F>(a: &mut [f32], a_cols: usize, b: &mut [f32], b_cols: usize, f: F)
where
    F: Fn(usize, &mut [f32], &mut [f32]) + Sync,
{
    let rows = a.len() / a_cols.max(1);
    if rows <= ROW_BLOCK {
        f(0, a, b);
        return;
    }
    a.par_chunks_mut(ROW_BLOCK * a_cols)
        .zip(b.par_chunks_mut(ROW_BLOCK * b_cols))
        .enumerate()
        .for_each(|(i, (a, b))| f(i * ROW_BLOCK, a, b));
}

/// A vector of `n` values written by `fill(i, block)` over its blocks of `block` values (the
/// last may be shorter), in parallel. Each block is zeroed by the task that fills it, just
/// before, instead of all `n` values up front on one thread.
pub fn par_fill_blocks<F: Fn(usize, &mut [f32]) + Sync>(n: usize, block: usize, fill: F) -> Vec<f32> {
    if n <= block {
        // One block: no task (a single-row call keeps its latency).
        let mut out = vec![0.0; n];
        fill(0, &mut out);
        return out;
    }
    let mut out: Vec<f32> = Vec::with_capacity(n);
    out.spare_capacity_mut()[..n]
        .par_chunks_mut(block)
        .enumerate()
        .for_each(|(i, b)| {
            b.iter_mut().for_each(|v| {
                v.write(0.0);
            });
            // SAFETY: every element of `b` was written just above, and MaybeUninit<f32> has the
            // layout of f32.
            let b = unsafe { &mut *(std::ptr::from_mut(b) as *mut [f32]) };
            fill(i, b);
        });
    // SAFETY: the loop above initialized all `n` values (the capacity is at least `n`); had a
    // task panicked, the panic would have propagated before this line.
    unsafe { out.set_len(n) };
    out
}

multiversion! {
    /// `y = act(y + bias)` for each row of `y` (`bias.len()` columns); when `z` is given, the
    /// pre-activation `y + bias` is stored there too.
    pub fn bias_activation(y: &mut [f32], bias: &[f32], act: Activation, z: Option<&mut [f32]>) {
        let cols = bias.len();
        if let Some(z) = z {
            for (yr, zr) in y.chunks_exact_mut(cols).zip(z.chunks_exact_mut(cols)) {
                for ((v, zv), b) in yr.iter_mut().zip(zr.iter_mut()).zip(bias) {
                    let pre = *v + b;
                    *zv = pre;
                    *v = act.apply_with(pre, fast_exp);
                }
            }
            return;
        }
        macro_rules! each {
            ($f:expr) => {
                for yr in y.chunks_exact_mut(cols) {
                    for (v, b) in yr.iter_mut().zip(bias) {
                        *v = $f(*v + b);
                    }
                }
            };
        }
        match act {
            Activation::Identity => each!(|v: f32| v),
            Activation::Relu => each!(|v: f32| v.max(0.0)),
            Activation::LeakyRelu => each!(|v| Activation::LeakyRelu.apply_with(v, fast_exp)),
            Activation::Elu => each!(|v| Activation::Elu.apply_with(v, fast_exp)),
            Activation::Sigmoid => each!(|v| Activation::Sigmoid.apply_with(v, fast_exp)),
            Activation::Tanh => each!(|v| Activation::Tanh.apply_with(v, fast_exp)),
            Activation::Gelu => each!(|v| Activation::Gelu.apply_with(v, fast_exp)),
        }
    }
}

multiversion! {
    /// `y += bias`, `z = y` when given, then `y = act(y)`, over one channel plane (a
    /// convolution's epilogue).
    pub fn plane_bias_activation(y: &mut [f32], z: Option<&mut [f32]>, bias: f32, act: Activation) {
        if let Some(z) = z {
            for (yv, zv) in y.iter_mut().zip(z.iter_mut()) {
                *yv += bias;
                *zv = *yv;
            }
        } else {
            y.iter_mut().for_each(|v| *v += bias);
        }
        macro_rules! each {
            ($f:expr) => {
                y.iter_mut().for_each(|v| *v = $f(*v))
            };
        }
        match act {
            Activation::Identity => {}
            Activation::Relu => each!(|v: f32| v.max(0.0)),
            Activation::LeakyRelu => each!(|v| Activation::LeakyRelu.apply_with(v, fast_exp)),
            Activation::Elu => each!(|v| Activation::Elu.apply_with(v, fast_exp)),
            Activation::Sigmoid => each!(|v| Activation::Sigmoid.apply_with(v, fast_exp)),
            Activation::Tanh => each!(|v| Activation::Tanh.apply_with(v, fast_exp)),
            Activation::Gelu => each!(|v| Activation::Gelu.apply_with(v, fast_exp)),
        }
    }
}

multiversion! {
    /// `d *= act'(z, y)` elementwise; `z` is needed only when `act.needs_preactivation()`.
    pub fn activation_backward(d: &mut [f32], y: &[f32], z: Option<&[f32]>, act: Activation) {
        macro_rules! each {
            ($a:expr) => {
                for (d, &y) in d.iter_mut().zip(y) {
                    *d *= $a.grad_with(0.0, y, fast_exp);
                }
            };
        }
        match act {
            Activation::Identity => {}
            Activation::Relu => {
                for (d, &y) in d.iter_mut().zip(y) {
                    *d = if y > 0.0 { *d } else { 0.0 };
                }
            }
            Activation::LeakyRelu => each!(Activation::LeakyRelu),
            Activation::Elu => each!(Activation::Elu),
            Activation::Sigmoid => each!(Activation::Sigmoid),
            Activation::Tanh => each!(Activation::Tanh),
            Activation::Gelu => {
                let z = z.expect("gelu backward needs the pre-activation");
                for ((d, &y), &z) in d.iter_mut().zip(y).zip(z) {
                    *d *= Activation::Gelu.grad_with(z, y, fast_exp);
                }
            }
        }
    }
}

multiversion! {
    /// `sums[j] = Σ_i a[i, j]` over the rows of `a`, summed in row order (deterministic).
    pub fn column_sums(a: &[f32], sums: &mut [f32]) {
        sums.fill(0.0);
        let cols = sums.len();
        for row in a.chunks_exact(cols) {
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += v;
            }
        }
    }
}

/// Lanes of the vectorized sums: 16 f32 partial sums (one AVX-512 register), combined in a
/// fixed order, so the result depends only on the data.
const LANES: usize = 16;

#[inline(always)]
fn lanes_total(acc: &[f32; LANES]) -> f64 {
    acc.iter().map(|&v| v as f64).sum()
}

multiversion! {
    /// MSE output gradient: `dz = scale * 2 (y - t) * act'(z, y)`; returns `Σ (y - t)^2`.
    pub fn mse_output_grad(y: &[f32], t: &[f32], z: Option<&[f32]>, act: Activation, scale: f32, dz: &mut [f32]) -> f64 {
        let mut total = 0.0f64;
        for ((d, y), t) in dz.chunks_mut(1024).zip(y.chunks(1024)).zip(t.chunks(1024)) {
            let mut acc = [0.0f32; LANES];
            let n = d.len() / LANES * LANES;
            for ((d, y), t) in d[..n].chunks_exact_mut(LANES).zip(y.chunks_exact(LANES)).zip(t.chunks_exact(LANES)) {
                for l in 0..LANES {
                    let e = y[l] - t[l];
                    acc[l] += e * e;
                    d[l] = scale * 2.0 * e;
                }
            }
            for (l, ((d, &y), &t)) in d[n..].iter_mut().zip(&y[n..]).zip(&t[n..]).enumerate() {
                let e = y - t;
                acc[l] += e * e;
                *d = scale * 2.0 * e;
            }
            total += lanes_total(&acc);
        }
        activation_backward(dz, y, z, act);
        total
    }
}

multiversion! {
    /// BCE output gradient for a sigmoid output with pre-activation `z`:
    /// `dz = scale * (y - t)`; returns `Σ max(z,0) - z t + ln(1 + exp(-|z|))` (stable).
    pub fn bce_sigmoid_output_grad(y: &[f32], t: &[f32], z: &[f32], scale: f32, dz: &mut [f32]) -> f64 {
        let term = |z: f32, t: f32| z.max(0.0) - z * t + fast_ln(1.0 + fast_exp(-z.abs()));
        let mut total = 0.0f64;
        for (((dz, y), t), z) in dz.chunks_mut(1024).zip(y.chunks(1024)).zip(t.chunks(1024)).zip(z.chunks(1024)) {
            let mut acc = [0.0f32; LANES];
            let n = dz.len() / LANES * LANES;
            for (((d, y), t), z) in dz[..n]
                .chunks_exact_mut(LANES)
                .zip(y.chunks_exact(LANES))
                .zip(t.chunks_exact(LANES))
                .zip(z.chunks_exact(LANES))
            {
                for l in 0..LANES {
                    d[l] = scale * (y[l] - t[l]);
                    acc[l] += term(z[l], t[l]);
                }
            }
            for (l, (((d, &y), &t), &z)) in dz[n..].iter_mut().zip(&y[n..]).zip(&t[n..]).zip(&z[n..]).enumerate() {
                *d = scale * (y - t);
                acc[l] += term(z, t);
            }
            total += lanes_total(&acc);
        }
        total
    }
}

multiversion! {
    /// One AdamW step on a parameter slice: `lr_t` already includes the bias correction of the
    /// first moment; `bc2` is `1 - beta2^t`; `decay` is `lr * weight_decay` (decoupled).
    #[allow(clippy::too_many_arguments)]
    pub fn adam_update(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], lr_t: f32, beta1: f32, beta2: f32, eps: f32, bc2_sqrt: f32, decay: f32) {
        for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = beta1 * *m + (1.0 - beta1) * g;
            *v = beta2 * *v + (1.0 - beta2) * g * g;
            let denom = v.sqrt() / bc2_sqrt + eps;
            *w -= decay * *w + lr_t * *m / denom;
        }
    }
}

multiversion! {
    /// One SGD step with momentum (PyTorch semantics: `b = mu b + g`; Nesterov uses `g + mu b`);
    /// `weight_decay` adds `wd * w` to the gradient.
    #[allow(clippy::too_many_arguments)]
    pub fn sgd_update(w: &mut [f32], g: &[f32], buf: &mut [f32], lr: f32, momentum: f32, nesterov: bool, weight_decay: f32) {
        for ((w, &g), b) in w.iter_mut().zip(g).zip(buf.iter_mut()) {
            let g = g + weight_decay * *w;
            *b = momentum * *b + g;
            let step = if nesterov { g + momentum * *b } else { *b };
            *w -= lr * step;
        }
    }
}

multiversion! {
    /// `Σ v^2` in f64 (16 lanes, fixed order: deterministic).
    pub fn sum_squares(a: &[f32]) -> f64 {
        let mut total = 0.0f64;
        for c in a.chunks(1024) {
            let mut acc = [0.0f32; LANES];
            let n = c.len() / LANES * LANES;
            for v in c[..n].chunks_exact(LANES) {
                for l in 0..LANES {
                    acc[l] += v[l] * v[l];
                }
            }
            for (l, &v) in c[n..].iter().enumerate() {
                acc[l] += v * v;
            }
            total += lanes_total(&acc);
        }
        total
    }
}

/// Rescales each row of `w` (`cols` values: one unit's incoming weights) whose L2 norm
/// exceeds `max` to norm `max`. Rows are independent: parallel and deterministic.
pub fn max_norm_rows(w: &mut [f32], cols: usize, max: f32) {
    w.par_chunks_mut(cols * (ELEMENT_BLOCK / cols).max(1)).for_each(|rows| {
        for row in rows.chunks_exact_mut(cols) {
            let norm = sum_squares(row).sqrt();
            if norm > max as f64 {
                scale_in_place(row, (max as f64 / norm) as f32);
            }
        }
    });
}

multiversion! {
    /// `a *= s`.
    pub fn scale_in_place(a: &mut [f32], s: f32) {
        for v in a {
            *v *= s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_filled_in_place_from_zero() {
        for (n, block) in [(10, 3), (5, 8), (0, 4), (4096, 128)] {
            let v = par_fill_blocks(n, block, |i, b| {
                assert!(b.iter().all(|&v| v == 0.0) && b.len() <= block);
                b.iter_mut().enumerate().for_each(|(j, v)| *v = (i * block + j) as f32);
            });
            assert_eq!(v, (0..n).map(|j| j as f32).collect::<Vec<_>>());
        }
    }
    use crate::rng::Rng;

    const AWKWARD: [usize; 11] = [1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65];

    fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect()
    }

    #[test]
    fn fast_exp_and_ln_are_accurate() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let rel = ((fast_exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 4e-7, "fast_exp worst relative error {worst}");
        let mut worst = 0.0f64;
        let mut x = 1e-30f32;
        while x < 1e30 {
            let exact = (x as f64).ln();
            let err = (fast_ln(x) as f64 - exact).abs() / exact.abs().max(1.0);
            worst = worst.max(err);
            x *= 1.0371;
        }
        assert!(worst < 4e-7, "fast_ln worst error {worst}");
        assert!(fast_exp(-1000.0) >= 0.0 && fast_exp(1000.0).is_finite());
    }

    #[test]
    fn matmul_matches_reference_on_awkward_sizes() {
        let mut rng = Rng::new(11);
        for &m in &AWKWARD {
            for &k in &[1, 7, 17, 64, 65] {
                for &n in &[1, 3, 16, 63] {
                    let a = random(m * k, &mut rng);
                    let b = random(k * n, &mut rng);
                    let want = reference::matmul(&a, &b, m, k, n);
                    let mut got = vec![0.0; m * n];
                    matmul_rows(
                        &mut got,
                        view(&a, m, k),
                        view(&b, k, n),
                        false,
                        Precision::F32,
                        |_, _| {},
                    );
                    for (g, w) in got.iter().zip(&want) {
                        assert!(
                            (g - w).abs() < 1e-5 * (k as f32).sqrt() + 1e-6,
                            "{m}x{k}x{n}: {g} vs {w}"
                        );
                    }
                    // Transposed operands (as used by backward) and accumulation.
                    let at = reference::transpose(&a, m, k);
                    let mut acc = vec![1.0; m * n];
                    matmul_rows(
                        &mut acc,
                        view(&at, k, m).transpose(),
                        view(&b, k, n),
                        true,
                        Precision::F32,
                        |_, _| {},
                    );
                    for (g, w) in acc.iter().zip(&want) {
                        assert!((g - (w + 1.0)).abs() < 1e-5 * (k as f32).sqrt() + 1e-6);
                    }
                }
            }
        }
    }

    #[test]
    fn bf16_matmul_matches_bf16_reference_on_awkward_sizes() {
        if !amx::available() {
            // Without AMX, bf16 falls back to f32 GEMMs (covered above); nothing else to check.
            assert!(!Precision::Bf16.uses_amx());
            return;
        }
        let mut rng = Rng::new(12);
        for &m in &AWKWARD {
            for &k in &[1, 7, 31, 32, 33, 65, 100] {
                for &n in &[1, 3, 16, 17, 33, 63] {
                    let a = random(m * k, &mut rng);
                    let b = random(k * n, &mut rng);
                    let want = reference::matmul_bf16(&a, &b, m, k, n);
                    let mut got = vec![0.5; m * n];
                    matmul_rows(
                        &mut got,
                        view(&a, m, k),
                        view(&b, k, n),
                        true,
                        Precision::Bf16,
                        |_, _| {},
                    );
                    for (g, w) in got.iter().zip(&want) {
                        assert!(
                            (g - 0.5 - w).abs() < 1e-5 * (k as f32).sqrt() + 1e-6,
                            "{m}x{k}x{n}: {g} vs {w}"
                        );
                    }
                    // Transposed views, as in the backward pass.
                    let at = reference::transpose(&a, m, k);
                    let bt = reference::transpose(&b, k, n);
                    let mut got = vec![0.0; m * n];
                    let (av, bv) = (view(&at, k, m).transpose(), view(&bt, n, k).transpose());
                    matmul_rows(&mut got, av, bv, false, Precision::Bf16, |_, _| {});
                    for (g, w) in got.iter().zip(&want) {
                        assert!(
                            (g - w).abs() < 1e-5 * (k as f32).sqrt() + 1e-6,
                            "{m}x{k}x{n} (T): {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn elementwise_kernels_match_reference() {
        let mut rng = Rng::new(5);
        for &rows in &AWKWARD {
            for &cols in &[1, 9, 17, 64] {
                let x: Vec<f32> = (0..rows * cols).map(|_| rng.uniform_range(-6.0, 6.0)).collect();
                let bias = random(cols, &mut rng);
                for act in Activation::ALL {
                    let mut want = x.clone();
                    reference::bias_activation(&mut want, &bias, act);
                    let mut got = x.clone();
                    let mut z = vec![0.0; x.len()];
                    bias_activation(&mut got, &bias, act, Some(&mut z));
                    let mut got2 = x.clone();
                    bias_activation(&mut got2, &bias, act, None);
                    for ((g, g2), w) in got.iter().zip(&got2).zip(&want) {
                        assert!((g - w).abs() < 2e-6 * (1.0 + w.abs()), "{act}: {g} vs {w}");
                        assert_eq!(g.to_bits(), g2.to_bits(), "{act}: with/without z differ");
                    }
                    let d0 = random(x.len(), &mut rng);
                    let mut want_d = d0.clone();
                    reference::activation_backward(&mut want_d, &want, &z, act);
                    let mut got_d = d0.clone();
                    activation_backward(&mut got_d, &got, Some(&z), act);
                    for (g, w) in got_d.iter().zip(&want_d) {
                        assert!((g - w).abs() < 1e-5 * (1.0 + w.abs()), "{act} backward: {g} vs {w}");
                    }
                }
                let mut sums = vec![0.0; cols];
                column_sums(&x, &mut sums);
                for (g, w) in sums.iter().zip(reference::column_sums(&x, cols)) {
                    assert!((g - w).abs() < 1e-4 * (rows as f32));
                }
            }
        }
    }

    #[test]
    fn bce_loss_matches_plain_formula() {
        let mut rng = Rng::new(9);
        let z: Vec<f32> = (0..777).map(|_| rng.uniform_range(-8.0, 8.0)).collect();
        let t: Vec<f32> = (0..777).map(|_| rng.uniform()).collect();
        let y: Vec<f32> = z.iter().map(|&z| Activation::Sigmoid.apply(z)).collect();
        let mut dz = vec![0.0; 777];
        let got = bce_sigmoid_output_grad(&y, &t, &z, 1.0, &mut dz);
        let want: f64 = y
            .iter()
            .zip(&t)
            .map(|(&y, &t)| -(t as f64 * (y as f64).ln() + (1.0 - t as f64) * (1.0 - y as f64).ln()))
            .sum();
        assert!((got - want).abs() < 1e-4 * want, "{got} vs {want}");
    }
}

/// A gather pattern: `dst[i] = src[index[i]]` for sources of exactly `src_len` values. The
/// indices are checked once, when the table is made, so the gather itself runs unchecked
/// (it is the inner loop of im2col).
#[derive(Clone, Debug, PartialEq)]
pub struct GatherTable {
    index: Vec<u32>,
    src_len: usize,
}

impl GatherTable {
    /// A table; `None` if an index is not below `src_len`.
    pub fn new(index: Vec<u32>, src_len: usize) -> Option<Self> {
        index
            .iter()
            .all(|&i| (i as usize) < src_len)
            .then_some(GatherTable { index, src_len })
    }

    /// Length of the destination.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// `dst[i] = src[index[i]]`.
    ///
    /// # Panics
    /// If `src` or `dst` has the wrong length.
    pub fn gather(&self, src: &[f32], dst: &mut [f32]) {
        assert_eq!(src.len(), self.src_len, "gather: source length");
        assert_eq!(dst.len(), self.index.len(), "gather: destination length");
        gather_kernel(&self.index, src, dst);
    }

    /// `dst[index[i]] += src[i]` (the adjoint of [`GatherTable::gather`]), in index order.
    ///
    /// # Panics
    /// If `src` or `dst` has the wrong length.
    pub fn scatter_add(&self, src: &[f32], dst: &mut [f32]) {
        assert_eq!(dst.len(), self.src_len, "scatter: destination length");
        assert_eq!(src.len(), self.index.len(), "scatter: source length");
        for (&i, &v) in self.index.iter().zip(src) {
            // SAFETY: every index is below `src_len` (checked in `new`) = `dst.len()` (asserted).
            unsafe { *dst.get_unchecked_mut(i as usize) += v };
        }
    }
}

multiversion! {
    /// The gather loop; callers guarantee every index is in bounds of `src`.
    fn gather_kernel(index: &[u32], src: &[f32], dst: &mut [f32]) {
        for (d, &i) in dst.iter_mut().zip(index) {
            // SAFETY: GatherTable::new checked every index against the source length that
            // GatherTable::gather asserts.
            *d = unsafe { *src.get_unchecked(i as usize) };
        }
    }
}
