//! bf16 GEMM with AVX512-BF16 (`vdpbf16ps`, e.g. AMD Zen 4): the bf16 path where AMX is
//! absent and `vdpbf16ps` is faster than f32 FMAs ([`pays`]), with the same packed operands
//! as [`amx`](super::amx).
//!
//! `C (m x n) (+)= A (m x k) * B (k x n)`, both operands rounded to bf16 (nearest even) while
//! packing, products accumulated in f32. Each `vdpbf16ps` adds, in every lane (output column),
//! the two products of one pair of `k` to that output's sum; C is computed in blocks of
//! 8 rows x 32 columns held in 16 registers, `k` in pairs in increasing order, so every
//! value is summed in one order whatever the threads.

use super::amx::{PackedB, with_packed_a};
use faer::MatRef;
use std::sync::OnceLock;

/// Rows of a C block (two vectors of 16 columns each: 2 * MR accumulators).
const MR: usize = 8;
/// Columns of a C block.
const NR: usize = 32;

/// Whether this CPU runs AVX512-BF16 with AVX-512F (detected once).
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512bf16") && std::arch::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Whether `vdpbf16ps` outpaces f32 multiply-adds on this CPU, so that bf16 GEMMs pay for
/// their rounding: on AMD (Zen 4 and later, whose 512-bit FMAs take two 256-bit passes, one
/// `vdpbf16ps` does twice an FMA's products per cycle; measured 1.6–1.9x the f32 GEMM), not
/// on Intel, whose tables list `vdpbf16ps` on one port and 512-bit FMAs on two (measured 0.3–0.7x
/// the f32 GEMM and 0.5–0.8x f32 training on a Xeon with AVX512-BF16 but no AMX,
/// BENCHMARKS.md). Detected once from the CPU's vendor.
pub fn pays() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| available() && vendor() != *b"GenuineIntel")
}

/// The CPU vendor's twelve bytes (CPUID leaf 0).
fn vendor() -> [u8; 12] {
    #[cfg(target_arch = "x86_64")]
    {
        let r = std::arch::x86_64::__cpuid(0);
        let mut v = [0u8; 12];
        v[..4].copy_from_slice(&r.ebx.to_le_bytes());
        v[4..8].copy_from_slice(&r.edx.to_le_bytes());
        v[8..].copy_from_slice(&r.ecx.to_le_bytes());
        v
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        [0; 12]
    }
}

/// `dst (m x n) (+)= a (m x k) * b` with `b` packed, on AVX512-BF16. `dst` is row-major.
///
/// # Panics
/// If AVX512-BF16 is not [`available`] or the shapes disagree.
#[track_caller]
pub fn matmul(dst: &mut [f32], a: MatRef<'_, f32>, b: &PackedB, accumulate: bool) {
    assert!(available(), "AVX512-BF16 is not available");
    let (m, k) = (a.nrows(), a.ncols());
    let n = b.n;
    assert_eq!(dst.len(), m * n);
    assert!(k <= b.kp && b.kp.is_multiple_of(2), "inner dimensions differ");
    assert!(
        b.np.is_multiple_of(NR) && b.data().len() == b.kp / 2 * b.np,
        "packed B layout"
    );
    if m == 0 || n == 0 {
        return;
    }
    let kp = b.kp;
    with_packed_a(a, kp, MR, |pa, _| {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available()` detected AVX512-BF16 and AVX-512F; `pa` holds `ceil(m / MR) * MR x kp` values
        // and `b.data()` `kp/2 x np` (both asserted or sized above).
        unsafe {
            x86::blocks(dst, pa, b, m, n, kp, accumulate)
        }
    });
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MR, NR, PackedB};
    use std::arch::x86_64::{
        __m512, __m512bh, __m512i, _mm512_add_ps, _mm512_dpbf16_ps, _mm512_loadu_si512, _mm512_mask_storeu_ps,
        _mm512_maskz_loadu_ps, _mm512_set1_epi32, _mm512_setzero_ps, _mm512_storeu_ps,
    };

    /// Every `MR x NR` block of C. Callers guarantee AVX512-BF16, `pa` of `ceil(m / MR) * MR`
    /// rows of `kp` bf16 values (zeros past `k` and past `m`) and `b` packed for the same `kp`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) fn blocks(dst: &mut [f32], pa: &[u16], b: &PackedB, m: usize, n: usize, kp: usize, accumulate: bool) {
        let pairs = kp / 2;
        let mp = m.div_ceil(MR) * MR;
        assert!(pa.len() >= mp * kp && b.data().len() >= pairs * b.np && dst.len() == m * n);
        // Columns outer: one strip of B (`pairs x 32` values) is reused by every block of rows.
        for n0 in (0..n).step_by(NR) {
            for m0 in (0..mp).step_by(MR) {
                // SAFETY: AVX512-BF16 is enabled here. Reads: A pairs at `(m0 + r) * kp + 2p`
                // for r < MR, p < pairs, inside `pa` (mp x kp); B vectors at `p * np + n0 (+16)`,
                // 16 values each, inside `b.data()` because n0 + 32 <= np. Writes go through
                // `store`, which masks to the rows below `m` and columns below `n`.
                unsafe {
                    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
                    let a0 = pa.as_ptr().add(m0 * kp) as *const u32;
                    let b0 = b.data().as_ptr().add(n0);
                    for p in 0..pairs {
                        let bp = b0.add(p * b.np);
                        let v0: __m512bh = std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(bp.cast()));
                        let v1: __m512bh =
                            std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(bp.add(16).cast()));
                        for (r, acc) in acc.iter_mut().enumerate() {
                            let pair = a0.add(r * kp / 2 + p).read_unaligned();
                            let av: __m512bh = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(pair as i32));
                            acc[0] = _mm512_dpbf16_ps(acc[0], av, v0);
                            acc[1] = _mm512_dpbf16_ps(acc[1], av, v1);
                        }
                    }
                    for (r, acc) in acc.iter().enumerate().take(m.saturating_sub(m0).min(MR)) {
                        let row = &mut dst[(m0 + r) * n..(m0 + r + 1) * n];
                        store(row, n0, acc[0], accumulate);
                        if n0 + 16 < n {
                            store(row, n0 + 16, acc[1], accumulate);
                        }
                    }
                }
            }
        }
    }

    /// `row[j0..j0 + 16] (+)= v`, masked to the row's end.
    #[inline(always)]
    fn store(row: &mut [f32], j0: usize, v: __m512, accumulate: bool) {
        let width = (row.len() - j0).min(16);
        let mask = if width == 16 { u16::MAX } else { (1u16 << width) - 1 };
        // SAFETY: AVX-512F is enabled in the caller; the masked lanes lie inside `row`
        // (`j0 + width <= row.len()`).
        unsafe {
            let p = row.as_mut_ptr().add(j0);
            let v = if accumulate {
                _mm512_add_ps(_mm512_maskz_loadu_ps(mask, p), v)
            } else {
                v
            };
            if width == 16 {
                _mm512_storeu_ps(p, v)
            } else {
                _mm512_mask_storeu_ps(p, mask, v)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::kernels::testing::{AWKWARD, random};
    use crate::kernels::view;
    use crate::rng::Rng;

    /// The vendor reads as a name (the three registers in CPUID's order), and AVX512-BF16
    /// runs the bf16 GEMMs only where the instruction exists and the CPU is not Intel's.
    #[test]
    fn the_vendor_decides_where_dpbf16_pays() {
        let v = vendor();
        #[cfg(target_arch = "x86_64")]
        assert!(v.iter().all(u8::is_ascii_alphanumeric), "{v:?}");
        assert!(!pays() || available());
        if v == *b"GenuineIntel" {
            assert!(!pays());
        }
        if v == *b"AuthenticAMD" {
            assert_eq!(pays(), available());
        }
    }

    /// Wherever the CPU has AVX512-BF16 (AMX machines too, where the GEMMs pick AMX), this
    /// kernel matches the bf16 reference on awkward sizes, plain and accumulating, with the
    /// transposed operands of the backward pass.
    #[test]
    fn dpbf16_matches_the_bf16_reference_on_awkward_sizes() {
        if !available() {
            return;
        }
        let mut rng = Rng::new(21);
        for &m in &AWKWARD {
            for &k in &[1, 2, 7, 31, 32, 33, 65, 100] {
                for &n in &[1, 3, 16, 17, 33, 63] {
                    let a = random(m * k, &mut rng);
                    let b = random(k * n, &mut rng);
                    let want = reference::matmul_bf16(&a, &b, m, k, n);
                    let tol = 1e-5 * (k as f32).sqrt() + 1e-6;
                    let mut got = vec![0.25; m * n];
                    matmul(&mut got, view(&a, m, k), &PackedB::new(view(&b, k, n)), true);
                    for (g, w) in got.iter().zip(&want) {
                        assert!((g - 0.25 - w).abs() < tol, "{m}x{k}x{n}: {g} vs {w}");
                    }
                    let (at, bt) = (reference::transpose(&a, m, k), reference::transpose(&b, k, n));
                    let mut got = vec![f32::NAN; m * n];
                    let packed = PackedB::new(view(&bt, n, k).transpose());
                    matmul(&mut got, view(&at, k, m).transpose(), &packed, false);
                    for (g, w) in got.iter().zip(&want) {
                        assert!((g - w).abs() < tol, "{m}x{k}x{n} (T): {g} vs {w}");
                    }
                }
            }
        }
    }
}
