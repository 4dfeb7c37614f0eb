//! Dense layers at inference: `y = x Wᵀ` with every output a dot product over the stored
//! weight rows (PyTorch's `(n_out, n_in)` layout, read as it is: nothing packed or cached).
//!
//! Every output value is summed in one fixed order that depends only on `n_in`: sixteen lane
//! sums (lane `l` takes the terms `t ≡ l mod 16`, in increasing `t`, each a fused multiply-add,
//! the last partial group padded with zeros), then the lanes added in a fixed tree
//! (`l + l+8`, `+4`, `+2`, `+1`). So a row gets the same bits alone as among others, in any
//! block, on any thread, and at every SIMD level (a fused multiply-add is exactly rounded,
//! whatever computes it). A single row runs with no task and no allocation: this is the
//! scoring service's latency path.

#![allow(
    clippy::needless_range_loop,
    reason = "the tiles index small constant-size arrays of registers by row and output"
)]

use super::{Level, level};
use rayon::prelude::*;

/// Whether this kernel is the fast choice here: with AVX2 + FMA or AVX-512. Elsewhere its
/// portable twin would pay a software fused multiply-add per term (x86 without FMA) or run
/// unvectorized, so callers use the blocked GEMM instead (which does not promise a lone row
/// its batch's bits).
pub fn available() -> bool {
    matches!(level(), Level::Avx512 | Level::Avx2)
}

/// Lanes of the fixed summation order.
pub const LANES: usize = 16;

/// Multiply-adds in one call from which blocks of outputs run as parallel tasks (below it a
/// task's wake-up costs more than it saves: a 784 x 256 single row, 200k, stays on its
/// thread).
const PAR_MIN_MACS: usize = 1 << 19;

/// Outputs per parallel task.
const COL_TASK: usize = 64;

/// `y (rows x n) = x (rows x k) · wᵀ`, `w` being `(n, k)` row-major, in the fixed order of the
/// module docs. Outputs run in parallel blocks when the product is large enough; any split
/// gives the same bits.
///
/// # Panics
/// If the lengths disagree.
#[track_caller]
pub fn dense_rows(y: &mut [f32], x: &[f32], w: &[f32], k: usize, n: usize) {
    assert!(k > 0 && n > 0, "dense_rows: empty layer");
    assert_eq!(x.len() % k, 0, "dense_rows: input length");
    let rows = x.len() / k;
    assert_eq!(y.len(), rows * n, "dense_rows: output length");
    assert_eq!(w.len(), n * k, "dense_rows: weight length");
    if rows == 0 {
        return;
    }
    if rows * k * n >= PAR_MIN_MACS && n > COL_TASK {
        // Blocks of outputs in parallel, each into its own buffer, then copied into place (a
        // copy of `rows x n` values next to `rows x k x n` multiply-adds).
        let blocks: Vec<Vec<f32>> = (0..n.div_ceil(COL_TASK))
            .into_par_iter()
            .map(|t| {
                let (j0, j1) = (t * COL_TASK, ((t + 1) * COL_TASK).min(n));
                let mut local = vec![0.0f32; rows * (j1 - j0)];
                columns(&mut local, x, &w[j0 * k..j1 * k], k, j1 - j0);
                local
            })
            .collect();
        for (t, local) in blocks.iter().enumerate() {
            let width = local.len() / rows;
            for (yr, lr) in y.chunks_exact_mut(n).zip(local.chunks_exact(width)) {
                yr[t * COL_TASK..][..width].copy_from_slice(lr);
            }
        }
        return;
    }
    columns(y, x, w, k, n);
}

/// `y (rows x n) = x · wᵀ` on this thread, at the machine's SIMD level.
fn columns(y: &mut [f32], x: &[f32], w: &[f32], k: usize, n: usize) {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level()` is Avx512 only where AVX-512F was detected.
        Level::Avx512 => unsafe { avx512::columns(y, x, w, k, n) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level()` is Avx2 only where AVX2 and FMA were detected.
        Level::Avx2 => unsafe { avx2::columns(y, x, w, k, n) },
        _ => portable(y, x, w, k, n),
    }
}

/// Runs `$tile::<R, C>` over `y`: rows four at a time (`$c4` outputs per tile), then the
/// last one to three rows (`$c1` outputs per tile for a single row, the case that streams the
/// weights once per row), the last few outputs one at a time. The tile sizes keep the
/// accumulators in registers: 32 vectors with AVX-512, 16 with AVX2 (two per lane group).
macro_rules! drive {
    ($y:ident, $x:ident, $w:ident, $k:ident, $n:ident, $tile:ident, $r4:literal x $c4:literal, $c1:literal) => {{
        let rows = $x.len() / $k;
        let mut i = 0;
        while i < rows {
            let r = (rows - i).min($r4);
            let xr = &$x[i * $k..(i + r) * $k];
            let yr = &mut $y[i * $n..(i + r) * $n];
            match r {
                1 => strip::<1, $c1>(yr, xr, $w, $k, $n),
                2 => strip::<2, $c4>(yr, xr, $w, $k, $n),
                3 => strip::<3, $c4>(yr, xr, $w, $k, $n),
                _ => strip::<$r4, $c4>(yr, xr, $w, $k, $n),
            }
            i += r;
        }

        #[inline(always)]
        fn strip<const R: usize, const C: usize>(y: &mut [f32], x: &[f32], w: &[f32], k: usize, n: usize) {
            let mut j = 0;
            while j + C <= n {
                let out: [[f32; C]; R] = $tile::<R, C>(x, &w[j * k..(j + C) * k], k);
                for (r, o) in out.iter().enumerate() {
                    y[r * n + j..][..C].copy_from_slice(o);
                }
                j += C;
            }
            while j < n {
                let out: [[f32; 1]; R] = $tile::<R, 1>(x, &w[j * k..(j + 1) * k], k);
                for (r, o) in out.iter().enumerate() {
                    y[r * n + j] = o[0];
                }
                j += 1;
            }
        }
    }};
}

/// The same sums in the same order, one value at a time (the tests' third level; callers
/// check [`available`]).
fn portable(y: &mut [f32], x: &[f32], w: &[f32], k: usize, n: usize) {
    drive!(y, x, w, k, n, tile, 4 x 4, 8);

    fn tile<const R: usize, const C: usize>(x: &[f32], w: &[f32], k: usize) -> [[f32; C]; R] {
        let mut acc = [[[0.0f32; LANES]; C]; R];
        for t in 0..k.div_ceil(LANES) * LANES {
            for r in 0..R {
                for c in 0..C {
                    let (a, b) = if t < k {
                        (x[r * k + t], w[c * k + t])
                    } else {
                        (0.0, 0.0)
                    };
                    acc[r][c][t % LANES] = a.mul_add(b, acc[r][c][t % LANES]);
                }
            }
        }
        std::array::from_fn(|r| {
            std::array::from_fn(|c| {
                let mut p = acc[r][c];
                for half in [8, 4, 2, 1] {
                    for l in 0..half {
                        p[l] += p[l + half];
                    }
                }
                p[0]
            })
        })
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::LANES;
    use std::arch::x86_64::{
        __m512, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps, _mm256_add_ps,
        _mm256_castps256_ps128, _mm256_extractf128_ps, _mm512_add_ps, _mm512_castps512_ps256, _mm512_extractf32x8_ps,
        _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_maskz_loadu_ps, _mm512_setzero_ps, _mm512_shuffle_f32x4,
        _mm512_shuffle_ps, _mm512_storeu_ps,
    };

    /// Callers guarantee AVX-512F and the lengths `dense_rows` asserts.
    #[target_feature(enable = "avx512f,avx512dq,avx,sse3")]
    pub(super) fn columns(y: &mut [f32], x: &[f32], w: &[f32], k: usize, n: usize) {
        drive!(y, x, w, k, n, tile, 4 x 4, 8);
    }

    /// Four vectors of lane sums reduced in the fixed tree, the four at once: each step adds
    /// the same lanes as the one-vector tree (`l + l+8`, `+4`, `+2`, `+1`), with the vectors
    /// packed side by side so one add serves two or four of them.
    #[inline(always)]
    fn reduce4(a: [__m512; 4]) -> [f32; 4] {
        // SAFETY: AVX-512F is enabled in every caller.
        unsafe {
            // Lanes 0..8 of a0 beside lanes 0..8 of a1, plus their lanes 8..16: `l + l+8`.
            let s01 = _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b01_00_01_00>(a[0], a[1]),
                _mm512_shuffle_f32x4::<0b11_10_11_10>(a[0], a[1]),
            );
            let s23 = _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b01_00_01_00>(a[2], a[3]),
                _mm512_shuffle_f32x4::<0b11_10_11_10>(a[2], a[3]),
            );
            // Quarter q = vector q's lanes 0..4 plus its lanes 4..8: `l + l+4`.
            let t = _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b10_00_10_00>(s01, s23),
                _mm512_shuffle_f32x4::<0b11_01_11_01>(s01, s23),
            );
            // Within each quarter: `l + l+2`, then `l + l+1`.
            let t = _mm512_add_ps(t, _mm512_shuffle_ps::<0b11_10_11_10>(t, t));
            let t = _mm512_add_ps(t, _mm512_shuffle_ps::<0b01_01_01_01>(t, t));
            let mut lanes = [0.0f32; LANES];
            _mm512_storeu_ps(lanes.as_mut_ptr(), t);
            [lanes[0], lanes[4], lanes[8], lanes[12]]
        }
    }

    /// `R` rows of `x` against `C` rows of `w`, each `k` long.
    #[inline(always)]
    fn tile<const R: usize, const C: usize>(x: &[f32], w: &[f32], k: usize) -> [[f32; C]; R] {
        assert!(x.len() >= R * k && w.len() >= C * k, "dot tile");
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        // SAFETY: AVX-512F is enabled in every caller (`columns`); every read below is at
        // `r * k + t` or `c * k + t` with `t < k` (full vectors end at `full * 16 <= k`, the
        // masked tail reads only lanes below `k - full * 16`), inside the asserted lengths.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); C]; R];
            let full = k / LANES;
            for t in 0..full {
                let xs: [__m512; R] = std::array::from_fn(|r| _mm512_loadu_ps(xp.add(r * k + t * LANES)));
                for c in 0..C {
                    let wv = _mm512_loadu_ps(wp.add(c * k + t * LANES));
                    for r in 0..R {
                        acc[r][c] = _mm512_fmadd_ps(xs[r], wv, acc[r][c]);
                    }
                }
            }
            let rem = k - full * LANES;
            if rem > 0 {
                let m = ((1u32 << rem) - 1) as u16;
                let xs: [__m512; R] = std::array::from_fn(|r| _mm512_maskz_loadu_ps(m, xp.add(r * k + full * LANES)));
                for c in 0..C {
                    let wv = _mm512_maskz_loadu_ps(m, wp.add(c * k + full * LANES));
                    for r in 0..R {
                        acc[r][c] = _mm512_fmadd_ps(xs[r], wv, acc[r][c]);
                    }
                }
            }
            // Plain loops, not closures: a closure would not inherit the target features, and
            // the intrinsics in it would become calls.
            let mut out = [[0.0f32; C]; R];
            for r in 0..R {
                let mut c = 0;
                while c + 4 <= C {
                    let s = reduce4([acc[r][c], acc[r][c + 1], acc[r][c + 2], acc[r][c + 3]]);
                    out[r][c..c + 4].copy_from_slice(&s);
                    c += 4;
                }
                while c < C {
                    let v = acc[r][c];
                    let s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps::<1>(v));
                    let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
                    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
                    out[r][c] = _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps::<0b01>(s2, s2)));
                    c += 1;
                }
            }
            out
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::LANES;
    use std::arch::x86_64::{
        __m256, __m256i, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps, _mm256_add_ps,
        _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_maskload_ps,
        _mm256_setr_epi32, _mm256_setzero_ps,
    };

    /// Callers guarantee AVX2 + FMA and the lengths `dense_rows` asserts.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn columns(y: &mut [f32], x: &[f32], w: &[f32], k: usize, n: usize) {
        drive!(y, x, w, k, n, tile, 2 x 3, 6);
    }

    /// A mask of the first `rem` (0..=8) lanes of a vector of 8.
    #[inline(always)]
    fn first(rem: usize) -> __m256i {
        let on = |l: usize| if l < rem { -1 } else { 0 };
        // SAFETY: AVX is enabled in every caller.
        unsafe { _mm256_setr_epi32(on(0), on(1), on(2), on(3), on(4), on(5), on(6), on(7)) }
    }

    /// `R` rows of `x` against `C` rows of `w`, each `k` long; lanes 0..8 and 8..16 of the
    /// fixed order in two vectors.
    #[inline(always)]
    fn tile<const R: usize, const C: usize>(x: &[f32], w: &[f32], k: usize) -> [[f32; C]; R] {
        assert!(x.len() >= R * k && w.len() >= C * k, "dot tile");
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        // SAFETY: AVX2 and FMA are enabled in every caller (`columns`); reads as in the
        // AVX-512 tile, the tail through masked loads of lanes below `k`.
        unsafe {
            let mut lo = [[_mm256_setzero_ps(); C]; R];
            let mut hi = [[_mm256_setzero_ps(); C]; R];
            let full = k / LANES;
            for t in 0..full {
                let at = t * LANES;
                let xl: [__m256; R] = std::array::from_fn(|r| _mm256_loadu_ps(xp.add(r * k + at)));
                let xh: [__m256; R] = std::array::from_fn(|r| _mm256_loadu_ps(xp.add(r * k + at + 8)));
                for c in 0..C {
                    let wl = _mm256_loadu_ps(wp.add(c * k + at));
                    let wh = _mm256_loadu_ps(wp.add(c * k + at + 8));
                    for r in 0..R {
                        lo[r][c] = _mm256_fmadd_ps(xl[r], wl, lo[r][c]);
                        hi[r][c] = _mm256_fmadd_ps(xh[r], wh, hi[r][c]);
                    }
                }
            }
            let rem = k - full * LANES;
            if rem > 0 {
                let at = full * LANES;
                let (ml, mh) = (first(rem.min(8)), first(rem.saturating_sub(8)));
                let xl: [__m256; R] = std::array::from_fn(|r| _mm256_maskload_ps(xp.add(r * k + at), ml));
                // Lanes 8..16 hold terms only when more than 8 remain (no read otherwise).
                let upper = |p: *const f32| {
                    if rem > 8 {
                        _mm256_maskload_ps(p.add(8), mh)
                    } else {
                        _mm256_setzero_ps()
                    }
                };
                let xh: [__m256; R] = std::array::from_fn(|r| upper(xp.add(r * k + at)));
                for c in 0..C {
                    let wl = _mm256_maskload_ps(wp.add(c * k + at), ml);
                    let wh = upper(wp.add(c * k + at));
                    for r in 0..R {
                        lo[r][c] = _mm256_fmadd_ps(xl[r], wl, lo[r][c]);
                        hi[r][c] = _mm256_fmadd_ps(xh[r], wh, hi[r][c]);
                    }
                }
            }
            // Plain loops, not closures (see the AVX-512 tile).
            let mut out = [[0.0f32; C]; R];
            for r in 0..R {
                for c in 0..C {
                    let s8 = _mm256_add_ps(lo[r][c], hi[r][c]);
                    let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
                    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
                    out[r][c] = _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps::<0b01>(s2, s2)));
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::kernels::testing::{AWKWARD, at_every_level, random};
    use crate::rng::Rng;

    /// Bit for bit the reference's order, at every level, on awkward sizes, and a row alone
    /// equals the same row among others.
    #[test]
    fn dense_rows_sums_in_the_reference_order_at_every_level() {
        at_every_level(|level| {
            let mut rng = Rng::new(3);
            for &k in &AWKWARD {
                for &n in &[1, 3, 8, 9, 17, 65] {
                    for &m in &[1, 2, 3, 4, 5, 9] {
                        let x = random(m * k, &mut rng);
                        let w = random(n * k, &mut rng);
                        let mut y = vec![f32::NAN; m * n];
                        dense_rows(&mut y, &x, &w, k, n);
                        let want = reference::dense_dot(&x, &w, m, k, n);
                        assert_eq!(y, want, "{level:?} m={m} k={k} n={n}");
                        let mut alone = vec![0.0; n];
                        dense_rows(&mut alone, &x[(m - 1) * k..], &w, k, n);
                        assert_eq!(alone[..], y[(m - 1) * n..], "{level:?} last row alone");
                    }
                }
            }
        });
    }

    /// Large enough for parallel blocks of outputs: the same bits as the reference.
    #[test]
    fn dense_rows_in_parallel_blocks_gets_the_same_bits() {
        let mut rng = Rng::new(5);
        let (m, k, n) = (8, 300, 257);
        assert!(m * k * n >= PAR_MIN_MACS);
        let x = random(m * k, &mut rng);
        let w = random(n * k, &mut rng);
        let mut y = vec![0.0; m * n];
        dense_rows(&mut y, &x, &w, k, n);
        assert_eq!(y, reference::dense_dot(&x, &w, m, k, n));
    }
}
