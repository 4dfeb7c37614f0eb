//! The integer units on x86-64: AVX512-VNNI on the packed layout, AVX-512BW, AVX-VNNI and
//! AVX2 on rows (see [`Unit`](super::Unit)); callers check the features and the lengths.
use super::{EIGHT, PACK};
use std::arch::x86_64::{
    __m256i, __m512i, __mmask16, _mm_add_epi32, _mm_cvtsi128_si32, _mm_loadu_si128, _mm_shuffle_epi32, _mm256_abs_epi8,
    _mm256_add_epi32, _mm256_castsi256_si128, _mm256_cvtepi8_epi16, _mm256_dpbusd_avx_epi32, _mm256_extracti128_si256,
    _mm256_hadd_epi32, _mm256_loadu_si256, _mm256_madd_epi16, _mm256_maddubs_epi16, _mm256_permute2x128_si256,
    _mm256_set1_epi8, _mm256_set1_epi16, _mm256_setzero_si256, _mm256_sign_epi8, _mm256_storeu_si256, _mm256_xor_si256,
    _mm512_add_epi32, _mm512_cvtepi8_epi16, _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_madd_epi16,
    _mm512_mask_storeu_epi32, _mm512_maskz_loadu_epi32, _mm512_reduce_add_epi32, _mm512_set1_epi32,
    _mm512_setzero_si512, _mm512_shuffle_epi32, _mm512_shuffle_i32x4, _mm512_slli_epi32, _mm512_storeu_si512,
    _mm512_sub_epi32,
};
use std::arch::x86_64::{
    _mm256_andnot_ps, _mm256_cvtps_epi32, _mm256_loadu_ps, _mm256_max_ps, _mm256_min_ps, _mm256_mul_ps,
    _mm256_packs_epi16, _mm256_packs_epi32, _mm256_permutevar8x32_epi32, _mm256_set1_ps, _mm256_setr_epi32,
    _mm256_setzero_ps, _mm256_storeu_ps,
};

/// The lane sums of four vectors at once (wrapping; integer sums in any order).
#[inline(always)]
fn reduce4(a: [__m512i; 4]) -> [i32; 4] {
    // SAFETY: AVX-512F is enabled in every caller.
    unsafe {
        // Quarters 0+2 and 1+3 of a0 beside those of a1; the same for a2, a3.
        let s01 = _mm512_add_epi32(
            _mm512_shuffle_i32x4::<0b01_00_01_00>(a[0], a[1]),
            _mm512_shuffle_i32x4::<0b11_10_11_10>(a[0], a[1]),
        );
        let s23 = _mm512_add_epi32(
            _mm512_shuffle_i32x4::<0b01_00_01_00>(a[2], a[3]),
            _mm512_shuffle_i32x4::<0b11_10_11_10>(a[2], a[3]),
        );
        // Quarter q: vector q's four partial sums.
        let t = _mm512_add_epi32(
            _mm512_shuffle_i32x4::<0b10_00_10_00>(s01, s23),
            _mm512_shuffle_i32x4::<0b11_01_11_01>(s01, s23),
        );
        let t = _mm512_add_epi32(t, _mm512_shuffle_epi32::<0b11_10_11_10>(t));
        let t = _mm512_add_epi32(t, _mm512_shuffle_epi32::<0b01_01_01_01>(t));
        let mut lanes = [0i32; 16];
        _mm512_storeu_si512(lanes.as_mut_ptr().cast(), t);
        [lanes[0], lanes[4], lanes[8], lanes[12]]
    }
}

/// The sums of a tile's accumulators, four outputs at a time.
#[inline(always)]
fn reduce_tile<const R: usize, const C: usize>(a: &[[__m512i; C]; R]) -> [[i32; C]; R] {
    let mut out = [[0i32; C]; R];
    for r in 0..R {
        let mut c = 0;
        while c + 4 <= C {
            out[r][c..c + 4].copy_from_slice(&reduce4([a[r][c], a[r][c + 1], a[r][c + 2], a[r][c + 3]]));
            c += 4;
        }
        while c < C {
            // SAFETY: AVX-512F is enabled in every caller.
            out[r][c] = unsafe { _mm512_reduce_add_epi32(a[r][c]) };
            c += 1;
        }
    }
    out
}

/// Sum of the eight i32 lanes of `v` (wrapping).
#[inline(always)]
fn hsum256(v: __m256i) -> i32 {
    // SAFETY: AVX2 is enabled in every caller.
    unsafe {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        _mm_cvtsi128_si32(s)
    }
}

/// AVX512-VNNI on the packed layout; callers guarantee the features and `dot_i8_on`'s
/// lengths, and `k <= kp` a multiple of 4. Tiles of up to 6 rows x 64 outputs: 24
/// accumulators, each `vpdpbusd` adding four inputs (a broadcast of the row's four bytes,
/// shifted to unsigned) to 16 outputs. A block's last tile holds only the vectors of 16
/// that reach an output below `n`, so 16 filters cost one vector, not four.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) fn vnni512(acc: &mut [i32], x: &[i8], packed: &[i8], sums: &[i32], (kp, k): (usize, usize), n: usize) {
    let rows = x.len() / kp;
    let mut j0 = 0;
    while j0 < n {
        let block = &packed[j0 * kp..(j0 + PACK) * kp];
        match (n - j0).div_ceil(16) {
            1 => strip::<1>(acc, x, block, sums, (kp, k), n, j0, rows),
            2 => strip::<2>(acc, x, block, sums, (kp, k), n, j0, rows),
            3 => strip::<3>(acc, x, block, sums, (kp, k), n, j0, rows),
            _ => strip::<4>(acc, x, block, sums, (kp, k), n, j0, rows),
        }
        j0 += PACK;
    }

    /// Every row against a block's first `V` vectors of outputs.
    #[inline(always)]
    #[expect(clippy::too_many_arguments, reason = "the tile's operands and its place")]
    fn strip<const V: usize>(
        acc: &mut [i32],
        x: &[i8],
        block: &[i8],
        sums: &[i32],
        (kp, k): (usize, usize),
        n: usize,
        j0: usize,
        rows: usize,
    ) {
        let mut i = 0;
        while i < rows {
            let r = (rows - i).min(6);
            let xr = &x[i * kp..(i + r) * kp];
            let ar = &mut acc[i * n..(i + r) * n];
            match r {
                1 => tile::<1, V>(ar, xr, block, sums, (kp, k), n, j0),
                2 => tile::<2, V>(ar, xr, block, sums, (kp, k), n, j0),
                3 => tile::<3, V>(ar, xr, block, sums, (kp, k), n, j0),
                4 => tile::<4, V>(ar, xr, block, sums, (kp, k), n, j0),
                5 => tile::<5, V>(ar, xr, block, sums, (kp, k), n, j0),
                _ => tile::<6, V>(ar, xr, block, sums, (kp, k), n, j0),
            }
            i += r;
        }
    }

    #[inline(always)]
    fn tile<const R: usize, const V: usize>(
        acc: &mut [i32],
        x: &[i8],
        block: &[i8],
        sums: &[i32],
        (kp, k): (usize, usize),
        n: usize,
        j0: usize,
    ) {
        assert!(
            x.len() >= R * kp && block.len() >= PACK * kp && acc.len() >= R * n && k <= kp && V <= 4,
            "int8 tile"
        );
        let (xp, wp) = (x.as_ptr(), block.as_ptr());
        // SAFETY: the features are enabled in the caller. Reads: 4 bytes at `r * kp + 4 q`
        // (`4 q + 4 <= k <= kp`) and 64 at `256 q + 64 c` (`256 q + 256 <= 64 kp`), inside
        // the asserted lengths; the stores and sum loads are masked to outputs below `n`.
        unsafe {
            let mut a = [[_mm512_setzero_si512(); V]; R];
            for q in 0..k / 4 {
                let w: [__m512i; V] = std::array::from_fn(|c| _mm512_loadu_si512(wp.add(q * 256 + c * 64).cast()));
                for r in 0..R {
                    // The four bytes shifted to unsigned in a scalar register, then
                    // broadcast (no vector op beside the products).
                    let four = std::ptr::read_unaligned(xp.add(r * kp + q * 4).cast::<u32>()) ^ 0x8080_8080;
                    let xb = _mm512_set1_epi32(four as i32);
                    for c in 0..V {
                        a[r][c] = _mm512_dpbusd_epi32(a[r][c], xb, w[c]);
                    }
                }
            }
            for c in 0..V {
                let j = j0 + c * 16;
                if j >= n {
                    break;
                }
                let m: __mmask16 = if n - j >= 16 { 0xffff } else { (1u16 << (n - j)) - 1 };
                let shift = _mm512_slli_epi32::<7>(_mm512_maskz_loadu_epi32(m, sums.as_ptr().add(j).cast()));
                for r in 0..R {
                    let v = _mm512_sub_epi32(a[r][c], shift);
                    _mm512_mask_storeu_epi32(acc.as_mut_ptr().add(r * n + j).cast(), m, v);
                }
            }
        }
    }
}

/// AVX-512BW; callers guarantee the features and `dot_i8_on`'s lengths.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) fn bw512(acc: &mut [i32], x: &[i8], w: &[i8], sums: &[i32], kp: (usize, usize), n: usize) {
    drive!(acc, x, w, sums, kp, n, tile, 4, 8);

    #[inline(always)]
    fn tile<const R: usize, const C: usize>(
        x: &[i8],
        w: &[i8],
        _sums: &[i32],
        (kp, k): (usize, usize),
    ) -> [[i32; C]; R] {
        assert!(x.len() >= R * kp && w.len() >= C * kp && k <= kp, "int8 tile");
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        // SAFETY: the features are enabled in the caller; every load is 32 bytes at
        // `r * kp + 32 t` or `c * kp + 32 t` with `32 (t + 1) <= k <= kp`.
        unsafe {
            let mut a = [[_mm512_setzero_si512(); C]; R];
            for t in 0..k / 32 {
                let xs: [__m512i; R] =
                    std::array::from_fn(|r| _mm512_cvtepi8_epi16(_mm256_loadu_si256(xp.add(r * kp + t * 32).cast())));
                for c in 0..C {
                    let wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256(wp.add(c * kp + t * 32).cast()));
                    for r in 0..R {
                        a[r][c] = _mm512_add_epi32(a[r][c], _mm512_madd_epi16(xs[r], wv));
                    }
                }
            }
            super::x86::reduce_tile(&a)
        }
    }
}

/// AVX-VNNI; callers guarantee the features and `dot_i8_on`'s lengths.
#[target_feature(enable = "avx2,avxvnni")]
pub(super) fn avxvnni(acc: &mut [i32], x: &[i8], w: &[i8], sums: &[i32], kp: (usize, usize), n: usize) {
    drive!(acc, x, w, sums, kp, n, tile, 3, 6);

    #[inline(always)]
    fn tile<const R: usize, const C: usize>(
        x: &[i8],
        w: &[i8],
        sums: &[i32],
        (kp, k): (usize, usize),
    ) -> [[i32; C]; R] {
        assert!(
            x.len() >= R * kp && w.len() >= C * kp && sums.len() >= C && k <= kp,
            "int8 tile"
        );
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        // SAFETY: the features are enabled in the caller; 32-byte loads inside the rows.
        unsafe {
            let flip = _mm256_set1_epi8(-128);
            let mut a = [[_mm256_setzero_si256(); C]; R];
            for t in 0..k / 32 {
                let xs: [__m256i; R] =
                    std::array::from_fn(|r| _mm256_xor_si256(_mm256_loadu_si256(xp.add(r * kp + t * 32).cast()), flip));
                for c in 0..C {
                    let wv = _mm256_loadu_si256(wp.add(c * kp + t * 32).cast());
                    for r in 0..R {
                        a[r][c] = _mm256_dpbusd_avx_epi32(a[r][c], xs[r], wv);
                    }
                }
            }
            let mut out = [[0i32; C]; R];
            for r in 0..R {
                for c in 0..C {
                    out[r][c] = super::x86::hsum256(a[r][c]).wrapping_sub(sums[c].wrapping_mul(128));
                }
            }
            out
        }
    }
}

/// The lane sums of eight vectors, in order (wrapping).
#[inline(always)]
fn hsum8(a: &[__m256i]) -> [i32; 8] {
    // SAFETY: AVX2 is enabled in every caller; `a` holds eight vectors (indexing checks it).
    unsafe {
        let s01 = _mm256_hadd_epi32(a[0], a[1]);
        let s23 = _mm256_hadd_epi32(a[2], a[3]);
        let s45 = _mm256_hadd_epi32(a[4], a[5]);
        let s67 = _mm256_hadd_epi32(a[6], a[7]);
        // Half h of t0: outputs 0..4's sums over lanes 4h..4h+4; of t1: outputs 4..8's.
        let t0 = _mm256_hadd_epi32(s01, s23);
        let t1 = _mm256_hadd_epi32(s45, s67);
        let v = _mm256_add_epi32(
            _mm256_permute2x128_si256::<0x20>(t0, t1),
            _mm256_permute2x128_si256::<0x31>(t0, t1),
        );
        let mut out = [0i32; 8];
        _mm256_storeu_si256(out.as_mut_ptr().cast(), v);
        out
    }
}

/// AVX2, one row on [`Weights::eights`](super::Weights::eights) (`eights` from the first
/// output's block to the end); callers guarantee the features and `dot_i8_on`'s lengths, and
/// `k <= kp` a multiple of 32. The products as [`avx2`]'s single row, eight outputs a block,
/// every block one sequential stream of bytes.
#[target_feature(enable = "avx2")]
pub(super) fn avx2_row(acc: &mut [i32], x: &[i8], eights: &[i8], (kp, k): (usize, usize), n: usize) {
    assert!(
        x.len() >= kp && k <= kp && acc.len() >= n && eights.len() >= n.div_ceil(EIGHT) * EIGHT * kp,
        "int8 row"
    );
    let (xp, ep) = (x.as_ptr(), eights.as_ptr());
    let mut j = 0;
    while j < n {
        // SAFETY: AVX2 is enabled; 32-byte loads at `32 t < k <= kp` of `x` and at
        // `j kp + 256 t + 32 c` (`c < 8`, `256 (t + 1) <= 8 kp`) of the block, inside the
        // asserted lengths.
        let out = unsafe {
            let bp = ep.add(j * kp);
            let ones = _mm256_set1_epi16(1);
            let mut a = [_mm256_setzero_si256(); EIGHT];
            for t in 0..k / 32 {
                let xv = _mm256_loadu_si256(xp.add(t * 32).cast());
                let ax = _mm256_abs_epi8(xv);
                for c in 0..EIGHT {
                    let wv = _mm256_sign_epi8(_mm256_loadu_si256(bp.add(t * 256 + c * 32).cast()), xv);
                    a[c] = _mm256_add_epi32(a[c], _mm256_madd_epi16(_mm256_maddubs_epi16(ax, wv), ones));
                }
            }
            hsum8(&a)
        };
        let m = (n - j).min(EIGHT);
        acc[j..j + m].copy_from_slice(&out[..m]);
        j += EIGHT;
    }
}

/// AVX2; callers guarantee the features and `dot_i8_on`'s lengths. Tiles of several rows
/// widen the bytes to i16 for `vpmaddwd`; a single row (the latency path, where the widening
/// was the bottleneck) takes 32 bytes per `vpmaddubsw` instead: `|x|` (unsigned) times `w`
/// with `x`'s sign (`vpsignb`), whose pair sums `≤ 2 · 127²` cannot saturate i16 since every
/// byte is within ±127, then `vpmaddwd` by ones into i32 — the same exact integers.
#[target_feature(enable = "avx2")]
pub(super) fn avx2(acc: &mut [i32], x: &[i8], w: &[i8], sums: &[i32], kp: (usize, usize), n: usize) {
    drive!(acc, x, w, sums, kp, n, tile, 3, 8);

    /// One row against `C` outputs, 32 bytes a step (see [`avx2`]).
    #[inline(always)]
    fn row<const C: usize>(x: &[i8], w: &[i8], (kp, k): (usize, usize)) -> [i32; C] {
        // `kp` is a multiple of 64, so `k` rounded up to 32 stays inside the padded rows.
        let k32 = k.div_ceil(32) * 32;
        assert!(x.len() >= kp && w.len() >= C * kp && k32 <= kp, "int8 row tile");
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        // SAFETY: AVX2 is enabled in the caller; 32-byte loads at `32 t` and `c kp + 32 t`
        // with `32 (t + 1) <= k32 <= kp`, inside the asserted lengths.
        unsafe {
            let ones = _mm256_set1_epi16(1);
            let mut a = [_mm256_setzero_si256(); C];
            for t in 0..k32 / 32 {
                let xv = _mm256_loadu_si256(xp.add(t * 32).cast());
                let ax = _mm256_abs_epi8(xv);
                for c in 0..C {
                    let wv = _mm256_sign_epi8(_mm256_loadu_si256(wp.add(c * kp + t * 32).cast()), xv);
                    a[c] = _mm256_add_epi32(a[c], _mm256_madd_epi16(_mm256_maddubs_epi16(ax, wv), ones));
                }
            }
            let mut out = [0i32; C];
            let mut c = 0;
            while c + 8 <= C {
                out[c..c + 8].copy_from_slice(&super::x86::hsum8(&a[c..c + 8]));
                c += 8;
            }
            while c < C {
                out[c] = super::x86::hsum256(a[c]);
                c += 1;
            }
            out
        }
    }

    #[inline(always)]
    fn tile<const R: usize, const C: usize>(
        x: &[i8],
        w: &[i8],
        _sums: &[i32],
        (kp, k): (usize, usize),
    ) -> [[i32; C]; R] {
        if R == 1 {
            let mut out = [[0i32; C]; R];
            out[0] = row::<C>(x, w, (kp, k));
            return out;
        }
        assert!(x.len() >= R * kp && w.len() >= C * kp && k <= kp, "int8 tile");
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        // SAFETY: AVX2 is enabled in the caller; 16-byte loads inside the rows.
        unsafe {
            let mut a = [[_mm256_setzero_si256(); C]; R];
            for t in 0..k / 16 {
                let xs: [__m256i; R] =
                    std::array::from_fn(|r| _mm256_cvtepi8_epi16(_mm_loadu_si128(xp.add(r * kp + t * 16).cast())));
                for c in 0..C {
                    let wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(wp.add(c * kp + t * 16).cast()));
                    for r in 0..R {
                        a[r][c] = _mm256_add_epi32(a[r][c], _mm256_madd_epi16(xs[r], wv));
                    }
                }
            }
            let mut out = [[0i32; C]; R];
            for r in 0..R {
                for c in 0..C {
                    out[r][c] = super::x86::hsum256(a[r][c]);
                }
            }
            out
        }
    }
}

/// One row of [`quantize_rows`](super::quantize_rows) with AVX2: its bytes into `q`
/// (`row.len()` of them) and its scale returned — the same bytes and scale as the portable
/// code. The largest magnitude: lanes that skip a NaN as `scale_of` does (`max(|v|, m)` keeps
/// `m` when `v` is NaN) and are combined in any order (a maximum does not depend on it).
/// The bytes: `v · inv` clamped to ±127 (`max` first, so a NaN becomes -127 as in `to_i8`),
/// rounded half to even by `vcvtps2dq` (the default rounding mode), packed with saturation
/// that never acts (every value is in ±127).
#[target_feature(enable = "avx2")]
pub(super) fn quantize_row(row: &[f32], q: &mut [i8]) -> f32 {
    assert_eq!(row.len(), q.len(), "quantize_row: lengths");
    let k = row.len();
    let whole = k / 32 * 32;
    let p = row.as_ptr();
    // SAFETY: AVX2 is enabled; 8-float loads at `32 t + 8 v + 8 <= whole <= k` and 32-byte
    // stores at `32 t + 32 <= whole`, inside the asserted lengths.
    unsafe {
        let sign = _mm256_set1_ps(-0.0);
        let mut m = [_mm256_setzero_ps(); 4];
        for t in 0..whole / 32 {
            for (v, mv) in m.iter_mut().enumerate() {
                let a = _mm256_andnot_ps(sign, _mm256_loadu_ps(p.add(32 * t + 8 * v)));
                *mv = _mm256_max_ps(a, *mv);
            }
        }
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(
            lanes.as_mut_ptr(),
            _mm256_max_ps(_mm256_max_ps(m[0], m[1]), _mm256_max_ps(m[2], m[3])),
        );
        let bigger = |l: f32, v: &f32| if v.abs() > l { v.abs() } else { l };
        let big = row[whole..].iter().fold(lanes.iter().fold(0.0, bigger), bigger);
        let s = if big > 0.0 && big.is_finite() { big / 127.0 } else { 1.0 };
        let inv = 1.0 / s;
        let (iv, lo, hi) = (_mm256_set1_ps(inv), _mm256_set1_ps(-127.0), _mm256_set1_ps(127.0));
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for t in 0..whole / 32 {
            let d: [__m256i; 4] = std::array::from_fn(|v| {
                let c = _mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(p.add(32 * t + 8 * v)), iv), lo);
                _mm256_cvtps_epi32(_mm256_min_ps(c, hi))
            });
            let b = _mm256_packs_epi16(_mm256_packs_epi32(d[0], d[1]), _mm256_packs_epi32(d[2], d[3]));
            _mm256_storeu_si256(q.as_mut_ptr().add(32 * t).cast(), _mm256_permutevar8x32_epi32(b, order));
        }
        for (d, &v) in q[whole..].iter_mut().zip(&row[whole..]) {
            *d = super::to_i8(v * inv);
        }
        s
    }
}
