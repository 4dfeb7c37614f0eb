//! The integer units on x86-64: AVX512-VNNI on the packed layout, AVX-512BW, AVX-VNNI and
//! AVX2 on rows (see [`Unit`](super::Unit)); callers check the features and the lengths.
use super::PACK;
use std::arch::x86_64::{
    __m256i, __m512i, __mmask16, _mm_add_epi32, _mm_cvtsi128_si32, _mm_loadu_si128, _mm_shuffle_epi32,
    _mm256_add_epi32, _mm256_castsi256_si128, _mm256_cvtepi8_epi16, _mm256_dpbusd_avx_epi32, _mm256_extracti128_si256,
    _mm256_loadu_si256, _mm256_madd_epi16, _mm256_set1_epi8, _mm256_setzero_si256, _mm256_xor_si256, _mm512_add_epi32,
    _mm512_cvtepi8_epi16, _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_madd_epi16, _mm512_mask_storeu_epi32,
    _mm512_maskz_loadu_epi32, _mm512_reduce_add_epi32, _mm512_set1_epi32, _mm512_setzero_si512, _mm512_shuffle_epi32,
    _mm512_shuffle_i32x4, _mm512_slli_epi32, _mm512_storeu_si512, _mm512_sub_epi32,
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

/// AVX2; callers guarantee the features and `dot_i8_on`'s lengths.
#[target_feature(enable = "avx2")]
pub(super) fn avx2(acc: &mut [i32], x: &[i8], w: &[i8], sums: &[i32], kp: (usize, usize), n: usize) {
    drive!(acc, x, w, sums, kp, n, tile, 3, 6);

    #[inline(always)]
    fn tile<const R: usize, const C: usize>(
        x: &[i8],
        w: &[i8],
        _sums: &[i32],
        (kp, k): (usize, usize),
    ) -> [[i32; C]; R] {
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
