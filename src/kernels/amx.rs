//! bf16 GEMM on Intel AMX tiles (`tdpbf16ps`): bf16 operands, f32 accumulation.
//!
//! `C (m x n) (+)= A (m x k) * B (k x n)`, A and B read through strided views and rounded to
//! bf16 (round to nearest even) while packing. C is computed in 32 x 32 blocks of four 16 x 16
//! f32 tiles; K runs in steps of 32 in a fixed order, so results do not depend on threads.

use faer::MatRef;
use std::cell::RefCell;
use std::sync::OnceLock;

/// Rows and columns of one C block (2 x 2 tiles of 16 x 16).
const BLOCK: usize = 32;
/// bf16 values per tile row (64 bytes).
const KSTEP: usize = 32;

/// f32 → bf16, round to nearest even (NaN is not expected here).
#[inline(always)]
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// bf16 → f32 (exact).
#[inline(always)]
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Whether this CPU and OS run AMX-BF16 (asks Linux for the tile state once).
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    use std::arch::x86_64::__cpuid_count;
    // CPUID.(EAX=7,ECX=0):EDX bit 22 = AMX-BF16, bit 24 = AMX-TILE.
    let leaf = __cpuid_count(7, 0);
    if leaf.edx & (1 << 22) == 0 || leaf.edx & (1 << 24) == 0 {
        return false;
    }
    // arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): Linux must enable the tile state
    // for this process before the first tile instruction.
    const SYS_ARCH_PRCTL: usize = 158;
    const ARCH_REQ_XCOMP_PERM: usize = 0x1023;
    const XFEATURE_XTILEDATA: usize = 18;
    let ret: isize;
    // SAFETY: a plain Linux system call; it reads no memory of ours and only changes the
    // process's permitted extended state. rcx and r11 are clobbered by `syscall`.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL as isize => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

thread_local! {
    /// Per-thread packing buffers, grown as needed and reused (no allocation once warm).
    static SCRATCH: RefCell<(Vec<u16>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// B packed for tiles: pairs of k interleaved per column (the VNNI layout), stored as one
/// `u32` per pair (low half k = 2p, high half k = 2p + 1): `kp/2` rows of `np` pairs; k padded to
/// a multiple of 32 and n to `padded_width(n)` (a multiple of 32) with zeros.
pub struct PackedB {
    /// The values start at `buf[start]`, the first 64-byte boundary in `buf` (a 64-byte vector
    /// load then never spans two cache lines).
    buf: Vec<u32>,
    start: usize,
    pub(super) kp: usize,
    pub(super) np: usize,
    pub(super) n: usize,
}

super::multiversion! {
    /// `out[j] = bf16(lo[j]) | bf16(hi[j]) << 16`.
    fn pack_pairs(lo: &[f32], hi: &[f32], out: &mut [u32]) {
        for ((o, &a), &b) in out.iter_mut().zip(lo).zip(hi) {
            *o = to_bf16(a) as u32 | (to_bf16(b) as u32) << 16;
        }
    }
}

super::multiversion! {
    /// `out[j] = bf16(src[j])`.
    fn to_bf16_slice(src: &[f32], out: &mut [u16]) {
        for (o, &v) in out.iter_mut().zip(src) {
            *o = to_bf16(v);
        }
    }
}

super::multiversion! {
    /// One block of [`TRANSPOSE_BLOCK`] pair rows of a packed `b = wᵀ` (`w`'s rows at stride
    /// `cs`): per column j, `2 * TRANSPOSE_BLOCK` contiguous values of `w`'s row j become one
    /// u32 in each of the block's rows. A tile of `TRANSPOSE_BLOCK` columns is gathered, then
    /// written as whole 64-byte rows (the destination rows are often exactly 4 KiB apart:
    /// column writes would keep evicting each other from one cache set).
    /// Columns before `from` are left as they are (packed already, see [`x86::pack_transposed_tiles`]).
    #[allow(clippy::too_many_arguments)]
    fn pack_transposed_block(src: &[f32], cs: usize, k: usize, n: usize, np: usize, bp: usize, from: usize, rows: &mut [u32]) {
        let k0 = 2 * bp * TRANSPOSE_BLOCK;
        if k0 >= k {
            return;
        }
        let k1 = (k0 + 2 * TRANSPOSE_BLOCK).min(k);
        let mut tile = [[0u32; TRANSPOSE_BLOCK]; TRANSPOSE_BLOCK];
        for j0 in (from..n).step_by(TRANSPOSE_BLOCK) {
            let cols = TRANSPOSE_BLOCK.min(n - j0);
            for jj in 0..cols {
                let seg = &src[(j0 + jj) * cs + k0..(j0 + jj) * cs + k1];
                let mut pairs = [0u32; TRANSPOSE_BLOCK];
                if let Ok(full) = <&[f32; 2 * TRANSPOSE_BLOCK]>::try_from(seg) {
                    // The common case, branch-free (it vectorizes).
                    for (p, two) in pairs.iter_mut().zip(full.chunks_exact(2)) {
                        *p = to_bf16(two[0]) as u32 | (to_bf16(two[1]) as u32) << 16;
                    }
                } else {
                    for (dp, p) in pairs.iter_mut().enumerate() {
                        let lo = seg.get(2 * dp).map_or(0, |&v| to_bf16(v) as u32);
                        let hi = seg.get(2 * dp + 1).map_or(0, |&v| to_bf16(v) as u32);
                        *p = lo | hi << 16;
                    }
                }
                for (t, &p) in tile.iter_mut().zip(&pairs) {
                    t[jj] = p;
                }
            }
            for (row, t) in rows.chunks_exact_mut(np).zip(&tile) {
                row[j0..j0 + cols].copy_from_slice(&t[..cols]);
            }
        }
    }
}

/// Packed pairs per task of a row-major `b`'s packing, at least (rows of `np` pairs are grouped
/// up to it): 4,096 pairs, 16 KiB, several microseconds of work against a task's ~1 µs.
const PACK_TASK: usize = 4096;

/// Side of the square blocks of the pair transpose (16 x 16 u32 = one 1 KiB block each way).
const TRANSPOSE_BLOCK: usize = 16;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::TRANSPOSE_BLOCK;
    use crate::kernels::direct::avx512::transpose16;
    use std::arch::x86_64::{
        __m512i, _mm256_storeu_si256, _mm512_add_epi32, _mm512_and_si512, _mm512_castps_si512, _mm512_castsi512_ps,
        _mm512_cvtepi32_epi16, _mm512_loadu_ps, _mm512_loadu_si512, _mm512_permutex2var_epi16, _mm512_set1_epi32,
        _mm512_setr_epi32, _mm512_srli_epi32, _mm512_storeu_si512,
    };

    /// 16 f32 bit patterns rounded to nearest even at bit 16, as [`to_bf16`](super::to_bf16)
    /// does (`b + 0x7FFF + ((b >> 16) & 1)`): the bf16 values are the high halves.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn round(b: __m512i) -> __m512i {
        let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(b), _mm512_set1_epi32(1));
        _mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)))
    }

    /// The whole 16 x 16 tiles of [`pack_transposed_block`](super::pack_transposed_block)'s
    /// block `bp` (all 32 values of `k` inside `k`, 16 columns inside `n`): each column's 32
    /// values are rounded to bf16 as [`to_bf16`](super::to_bf16) does (in integers, so the two
    /// paths agree bit for bit), their high halves gathered into 16 pairs by one word
    /// permute, and the 16 columns transposed in registers. Returns the first column it left
    /// for the value-by-value loop.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn pack_transposed_tiles(
        src: &[f32],
        cs: usize,
        k: usize,
        n: usize,
        np: usize,
        bp: usize,
        rows: &mut [u32],
    ) -> usize {
        const T: usize = TRANSPOSE_BLOCK;
        let k0 = 2 * bp * T;
        if k0 + 2 * T > k {
            return 0;
        }
        let whole = n - n % T;
        assert!(rows.len() >= T * np && whole <= np && (whole == 0 || (whole - 1) * cs + k0 + 2 * T <= src.len()));
        // Word 2i + 1 of (lo, hi), the high half of value i: the bf16 of w[k0 + i].
        let odd = _mm512_setr_epi32(
            0x0003_0001,
            0x0007_0005,
            0x000B_0009,
            0x000F_000D,
            0x0013_0011,
            0x0017_0015,
            0x001B_0019,
            0x001F_001D,
            0x0023_0021,
            0x0027_0025,
            0x002B_0029,
            0x002F_002D,
            0x0033_0031,
            0x0037_0035,
            0x003B_0039,
            0x003F_003D,
        );
        for j0 in (0..whole).step_by(T) {
            let cols = std::array::from_fn(|jj| {
                // SAFETY: column j0 + jj < n holds values k0..k0 + 32 <= k at `(j0 + jj) * cs`
                // (asserted above).
                let (lo, hi) = unsafe {
                    let p = src.as_ptr().add((j0 + jj) * cs + k0);
                    (_mm512_loadu_si512(p.cast()), _mm512_loadu_si512(p.add(16).cast()))
                };
                _mm512_castsi512_ps(_mm512_permutex2var_epi16(round(lo), odd, round(hi)))
            });
            for (t, v) in transpose16(cols).into_iter().enumerate() {
                // SAFETY: row t < 16 of the block has `np` pairs; columns j0..j0 + 16 <= np.
                unsafe { _mm512_storeu_si512(rows.as_mut_ptr().add(t * np + j0).cast(), _mm512_castps_si512(v)) };
            }
        }
        whole
    }

    /// The whole 16 x 16 tiles of `pa = bf16(a)` for `a = src`'s transpose (`a`'s columns are
    /// `src`'s contiguous rows, `cs` apart): 16 columns loaded, transposed in registers,
    /// rounded as [`to_bf16`](super::to_bf16) does and narrowed to 16 bf16 values per row.
    /// Returns the rows and columns it packed (multiples of 16; the rest is left as it was).
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn pack_a_tiles(
        src: &[f32],
        cs: usize,
        m: usize,
        k: usize,
        pa: &mut [u16],
        kp: usize,
    ) -> (usize, usize) {
        const T: usize = TRANSPOSE_BLOCK;
        let (mw, kw) = (m - m % T, k - k % T);
        assert!(kw <= kp && pa.len() >= m * kp && (kw == 0 || (kw - 1) * cs + m <= src.len()));
        for k0 in (0..kw).step_by(T) {
            for i0 in (0..mw).step_by(T) {
                // SAFETY: column k0 + j < k holds rows i0..i0 + 16 <= m at `(k0 + j) * cs`.
                let cols = std::array::from_fn(|j| unsafe { _mm512_loadu_ps(src.as_ptr().add((k0 + j) * cs + i0)) });
                for (ii, v) in transpose16(cols).into_iter().enumerate() {
                    let h = _mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(round(_mm512_castps_si512(v))));
                    // SAFETY: row i0 + ii < m of `pa` has `kp >= k0 + 16` values.
                    unsafe { _mm256_storeu_si256(pa.as_mut_ptr().add((i0 + ii) * kp + k0).cast(), h) };
                }
            }
        }
        (mw, kw)
    }
}

/// The packed width of `n` columns: a multiple of [`BLOCK`], and an odd one from 256 on. The
/// kernels read a column block's pair rows one after another, `np` values apart; an even
/// multiple of 32 puts them at a multiple of 256 bytes (4 KiB when n is 1000 or 1024), so they
/// fall into a few sets of the L1 cache and evict each other (measured: the AVX512-BF16
/// kernel ran at 60 % of its peak on such widths).
fn padded_width(n: usize) -> usize {
    let blocks = n.div_ceil(BLOCK);
    if blocks >= 8 && blocks.is_multiple_of(2) {
        (blocks + 1) * BLOCK
    } else {
        blocks * BLOCK
    }
}

impl PackedB {
    /// Packs `b (k x n)`. Row-major `b` packs pairs of rows; a transposed view (`b = Wᵀ` with `W`
    /// row-major) packs adjacent values of each row of `W`, then transposes the pairs in blocks.
    /// Both run in parallel over independent output rows.
    pub fn new(b: MatRef<'_, f32>) -> Self {
        use rayon::prelude::*;
        let (k, n) = (b.nrows(), b.ncols());
        let kp = k.div_ceil(KSTEP) * KSTEP;
        let np = padded_width(n);
        let len = kp / 2 * np;
        let mut buf = reused_buffer(len + 15);
        let start = buf.as_ptr().align_offset(64).min(15);
        let data = &mut buf[start..start + len];
        if b.col_stride() == 1 && k > 0 {
            let rs = b.row_stride() as usize;
            let len = (k - 1) * rs + n;
            // SAFETY: a view with unit column stride and row stride `rs` covers `len` elements
            // from its first one; faer guarantees the view is valid for all its rows.
            let src = unsafe { std::slice::from_raw_parts(b.as_ptr(), len) };
            // Tasks of several pair rows each when rows are narrow (a task per 32-wide row
            // would cost more than its packing).
            let per_task = (PACK_TASK / np).max(1);
            data.par_chunks_mut(np * per_task)
                .enumerate()
                .for_each(|(t, rows_out)| {
                    for (i, row) in rows_out.chunks_exact_mut(np).enumerate() {
                        let p = t * per_task + i;
                        let rows = |r: usize| &src[r * rs..r * rs + n];
                        if 2 * p + 1 < k {
                            pack_pairs(rows(2 * p), rows(2 * p + 1), &mut row[..n]);
                        } else if 2 * p < k {
                            row[..n]
                                .iter_mut()
                                .zip(rows(2 * p))
                                .for_each(|(o, &v)| *o = to_bf16(v) as u32);
                        }
                    }
                });
        } else if b.row_stride() == 1 && k > 0 {
            // b[kk][j] = w[j][kk] with w's rows at stride cs: pack each row of w into pairs.
            let cs = b.col_stride() as usize;
            let len = (n - 1) * cs + k;
            // SAFETY: as above, with the roles of rows and columns exchanged.
            let src = unsafe { std::slice::from_raw_parts(b.as_ptr(), len) };
            // Blocks of TRANSPOSE_BLOCK pair rows: per column j, 2 * TRANSPOSE_BLOCK contiguous
            // values of w's row j become one u32 in each of the block's rows.
            data.par_chunks_mut(np * TRANSPOSE_BLOCK)
                .enumerate()
                .for_each(|(bp, rows)| {
                    #[cfg(target_arch = "x86_64")]
                    if super::level() == super::Level::Avx512 {
                        // SAFETY: the level is Avx512 only where AVX-512F and BW were detected.
                        let tiles = unsafe { x86::pack_transposed_tiles(src, cs, k, n, np, bp, rows) };
                        return pack_transposed_block(src, cs, k, n, np, bp, tiles, rows);
                    }
                    pack_transposed_block(src, cs, k, n, np, bp, 0, rows)
                });
        } else {
            data.par_chunks_mut(np).enumerate().for_each(|(p, row)| {
                for (j, o) in row[..n].iter_mut().enumerate() {
                    let lo = if 2 * p < k { to_bf16(b[(2 * p, j)]) as u32 } else { 0 };
                    let hi = if 2 * p + 1 < k {
                        to_bf16(b[(2 * p + 1, j)]) as u32
                    } else {
                        0
                    };
                    *o = lo | hi << 16;
                }
            });
        }
        // The padding (columns past `n`, pair rows past `k`): the packing above writes every
        // other value, and a reused buffer holds an earlier product's.
        let pairs = k.div_ceil(2);
        data[..pairs * np].chunks_exact_mut(np).for_each(|row| row[n..].fill(0));
        data[pairs * np..].fill(0);
        PackedB { buf, start, kp, np, n }
    }

    /// The packed pairs: `kp / 2` rows of `np`.
    pub(super) fn data(&self) -> &[u32] {
        &self.buf[self.start..self.start + self.kp / 2 * self.np]
    }
}

/// Buffers of dropped [`PackedB`]s, for the next packings (a training step packs a few per
/// layer; a fresh zeroed allocation for each cost ~3 % of a bf16 step in `memset`).
static POOL: std::sync::Mutex<Vec<Vec<u32>>> = std::sync::Mutex::new(Vec::new());

/// Buffers kept in [`POOL`] at most.
const POOL_SIZE: usize = 8;

/// Values kept in [`POOL`] at most, all buffers together (32 MiB): a very wide layer's
/// packings are allocated afresh rather than held after training.
const POOL_VALUES: usize = 8 << 20;

/// A buffer of `len` values, their contents unspecified: the smallest pooled one that holds
/// `len` without growing, else a new one.
fn reused_buffer(len: usize) -> Vec<u32> {
    let found = POOL.lock().ok().and_then(|mut pool| {
        let best = (0..pool.len())
            .filter(|&i| pool[i].capacity() >= len)
            .min_by_key(|&i| pool[i].capacity())?;
        Some(pool.swap_remove(best))
    });
    let mut v = found.unwrap_or_default();
    v.resize(len, 0);
    v
}

impl Drop for PackedB {
    fn drop(&mut self) {
        if let Ok(mut pool) = POOL.lock()
            && pool.len() < POOL_SIZE
            && pool.iter().map(Vec::capacity).sum::<usize>() + self.buf.capacity() <= POOL_VALUES
        {
            pool.push(std::mem::take(&mut self.buf));
        }
    }
}

/// `f(pa, cbuf)` with `a (m x k)` packed into this thread's scratch `pa` (row-major bf16, `kp`
/// per row, rows padded with zeros to a multiple of `row_multiple`) and its f32 scratch `cbuf`.
pub(super) fn with_packed_a<R>(
    a: MatRef<'_, f32>,
    kp: usize,
    row_multiple: usize,
    f: impl FnOnce(&[u16], &mut Vec<f32>) -> R,
) -> R {
    SCRATCH.with(|s| {
        let (pa, cbuf) = &mut *s.borrow_mut();
        let (m, k) = (a.nrows(), a.ncols());
        // Only the padding is zeroed: packing writes every other value (zeroing the whole
        // buffer first cost 2 % of a bf16 training step).
        pa.resize(m.div_ceil(row_multiple) * row_multiple * kp, 0);
        pack_a(a, pa, kp);
        if k < kp {
            pa[..m * kp].chunks_exact_mut(kp).for_each(|row| row[k..].fill(0));
        }
        pa[m * kp..].fill(0);
        f(pa, cbuf)
    })
}

/// Packs rows of `a (m x k)` into `pa` (row-major bf16, `kp` per row).
fn pack_a(a: MatRef<'_, f32>, pa: &mut [u16], kp: usize) {
    let (m, k) = (a.nrows(), a.ncols());
    if a.col_stride() == 1 {
        for i in 0..m {
            let row = a.row(i);
            // SAFETY: a row of a view with unit column stride is `k` contiguous elements.
            let src = unsafe { std::slice::from_raw_parts(row.as_ptr(), k) };
            to_bf16_slice(src, &mut pa[i * kp..i * kp + k]);
        }
    } else if a.row_stride() == 1 {
        // a = dZᵀ: the source rows (contiguous) are a's columns; transposed in square tiles so
        // that the writes stay within a few cache lines (a plain scatter touches a new line
        // per value: it cost as much as the narrow layers' products themselves). Whole 16 x 16
        // tiles go through registers where the level allows, the edges value by value.
        const T: usize = 16;
        #[cfg(target_arch = "x86_64")]
        let (mw, kw) = if super::level() == super::Level::Avx512 && a.nrows() > 0 && a.ncols() > 0 {
            let cs = a.col_stride() as usize;
            // SAFETY: a view with unit row stride and column stride `cs` covers these elements
            // from its first one (faer guarantees the view is valid for all its columns).
            let src = unsafe { std::slice::from_raw_parts(a.as_ptr(), (k - 1) * cs + m) };
            // SAFETY: the level is Avx512 only where AVX-512F and BW were detected.
            unsafe { x86::pack_a_tiles(src, cs, m, k, pa, kp) }
        } else {
            (0, 0)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let (mw, kw) = (0, 0);
        for k0 in (0..k).step_by(T) {
            let width = T.min(k - k0);
            let cols: [&[f32]; T] = std::array::from_fn(|j| match j < width {
                // SAFETY: a column of a view with unit row stride is `m` contiguous elements.
                true => unsafe { std::slice::from_raw_parts(a.col(k0 + j).as_ptr(), m) },
                false => &[],
            });
            // Rows below `mw` of the columns below `kw` were packed by whole tiles.
            let first = if k0 < kw { mw } else { 0 };
            for i in first..m {
                let row = &mut pa[i * kp + k0..i * kp + k0 + width];
                for (o, col) in row.iter_mut().zip(&cols) {
                    *o = to_bf16(col[i]);
                }
            }
        }
    } else {
        for i in 0..m {
            for kk in 0..k {
                pa[i * kp + kk] = to_bf16(a[(i, kk)]);
            }
        }
    }
}

#[repr(C, align(64))]
struct TileConfig([u8; 64]);

fn tile_config() -> TileConfig {
    let mut c = [0u8; 64];
    c[0] = 1; // palette 1
    // colsb (bytes per row) at 16 + 2*i, rows at 48 + i; all 8 tiles 16 rows x 64 bytes.
    for i in 0..8 {
        c[16 + 2 * i..18 + 2 * i].copy_from_slice(&64u16.to_le_bytes());
        c[48 + i] = 16;
    }
    TileConfig(c)
}

/// `dst (m x n) (+)= a (m x k) * b` with `b` packed, on AMX. `dst` is row-major.
///
/// # Panics
/// If AMX is not [`available`] or the shapes disagree.
#[track_caller]
pub fn matmul(dst: &mut [f32], a: MatRef<'_, f32>, b: &PackedB, accumulate: bool) {
    assert!(available(), "AMX is not available");
    let (m, k) = (a.nrows(), a.ncols());
    let n = b.n;
    assert_eq!(dst.len(), m * n);
    assert!(k <= b.kp && b.kp < k + KSTEP, "inner dimensions differ");
    if m == 0 || n == 0 {
        return;
    }
    let kp = b.kp;
    let mp = m.div_ceil(BLOCK) * BLOCK;
    with_packed_a(a, kp, BLOCK, |pa, cbuf| {
        cbuf.clear();
        cbuf.resize(BLOCK * BLOCK, 0.0);
        let cfg = tile_config();
        // SAFETY: `available()` confirmed AMX-TILE/BF16 and the OS permission. Every A/B tile
        // load reads 16 rows of 64 bytes inside `pa` (mp x kp bf16) or `b.data()` (kp/2 x np u32),
        // because m0 + 32 <= mp, k0 + 32 <= kp and n0 + 32 <= np. C tiles are loaded from and
        // stored to `dst` only for full blocks (m0 + 32 <= m and n0 + 32 <= n, row stride n), so
        // 32 rows of 32 f32 from (m0, n0) lie inside `dst` (m x n); otherwise they use `cbuf`
        // (32 x 32 f32). Tile state is released before returning.
        unsafe {
            std::arch::asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack));
            let a_stride = kp * 2;
            let b_stride = b.np * 4; // bytes per pair row
            for m0 in (0..mp).step_by(BLOCK) {
                for n0 in (0..n).step_by(BLOCK) {
                    // Full blocks live in `dst` directly (row stride n); edge blocks in `cbuf`.
                    let full = m0 + BLOCK <= m && n0 + BLOCK <= n;
                    let (c, sc) = if full {
                        (dst.as_mut_ptr().add(m0 * n + n0), n * 4)
                    } else {
                        (cbuf.as_mut_ptr(), BLOCK * 4)
                    };
                    let row16 = if full { 16 * n } else { 16 * BLOCK };
                    let (c01, c10, c11) = (c.add(16), c.add(row16), c.add(row16 + 16));
                    if full && accumulate {
                        std::arch::asm!(
                            "tileloadd tmm0, [{c00} + {sc}*1]",
                            "tileloadd tmm1, [{c01} + {sc}*1]",
                            "tileloadd tmm2, [{c10} + {sc}*1]",
                            "tileloadd tmm3, [{c11} + {sc}*1]",
                            c00 = in(reg) c, c01 = in(reg) c01, c10 = in(reg) c10, c11 = in(reg) c11,
                            sc = in(reg) sc, options(nostack, readonly),
                        );
                    } else {
                        std::arch::asm!(
                            "tilezero tmm0",
                            "tilezero tmm1",
                            "tilezero tmm2",
                            "tilezero tmm3",
                            options(nostack)
                        );
                    }
                    for k0 in (0..kp).step_by(KSTEP) {
                        let a0 = pa.as_ptr().add(m0 * kp + k0);
                        let a1 = a0.add(16 * kp);
                        let b0 = b.data().as_ptr().add((k0 / 2) * b.np + n0);
                        let b1 = b0.add(16);
                        std::arch::asm!(
                            "tileloadd tmm4, [{a0} + {sa}*1]",
                            "tileloadd tmm5, [{a1} + {sa}*1]",
                            "tileloadd tmm6, [{b0} + {sb}*1]",
                            "tileloadd tmm7, [{b1} + {sb}*1]",
                            "tdpbf16ps tmm0, tmm4, tmm6",
                            "tdpbf16ps tmm1, tmm4, tmm7",
                            "tdpbf16ps tmm2, tmm5, tmm6",
                            "tdpbf16ps tmm3, tmm5, tmm7",
                            a0 = in(reg) a0, a1 = in(reg) a1, b0 = in(reg) b0, b1 = in(reg) b1,
                            sa = in(reg) a_stride, sb = in(reg) b_stride,
                            options(nostack, readonly),
                        );
                    }
                    std::arch::asm!(
                        "tilestored [{c00} + {sc}*1], tmm0",
                        "tilestored [{c01} + {sc}*1], tmm1",
                        "tilestored [{c10} + {sc}*1], tmm2",
                        "tilestored [{c11} + {sc}*1], tmm3",
                        c00 = in(reg) c, c01 = in(reg) c01, c10 = in(reg) c10, c11 = in(reg) c11,
                        sc = in(reg) sc, options(nostack),
                    );
                    if full {
                        continue;
                    }
                    let rows = BLOCK.min(m - m0);
                    let cols = BLOCK.min(n - n0);
                    for r in 0..rows {
                        let d = &mut dst[(m0 + r) * n + n0..(m0 + r) * n + n0 + cols];
                        let src = &cbuf[r * BLOCK..r * BLOCK + cols];
                        if accumulate {
                            d.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                        } else {
                            d.copy_from_slice(src);
                        }
                    }
                }
            }
            std::arch::asm!("tilerelease", options(nostack));
        }
    });
}

#[cfg(test)]
mod tests {
    /// On a Linux x86-64 CPU that reports AMX-BF16 and AMX-TILE, the kernel must really be used.
    #[test]
    fn amx_is_used_where_the_cpu_has_it() {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            let leaf = std::arch::x86_64::__cpuid_count(7, 0);
            let cpu_has = leaf.edx & (1 << 22) != 0 && leaf.edx & (1 << 24) != 0;
            assert_eq!(super::available(), cpu_has);
        }
    }

    /// A transposed view packs, at every SIMD level this machine has, to the very pairs its
    /// row-major copy packs to (whole register tiles, partial tiles, ties and signs included).
    #[test]
    fn transposed_views_pack_like_their_row_major_copies() {
        use super::PackedB;
        use crate::kernels::testing::random;
        use crate::kernels::{levels, reference, view, with_level};
        let mut rng = crate::rng::Rng::new(5);
        for &(k, n) in &[(1, 1), (31, 17), (32, 16), (64, 48), (65, 33), (100, 63), (130, 200)] {
            let mut w = random(n * k, &mut rng);
            // Values exactly halfway between two bf16 values, both parities, both signs.
            for (i, v) in w.iter_mut().enumerate().step_by(7) {
                *v = f32::from_bits(0x3F80_8000 + ((i as u32 % 2) << 16)) * if i % 3 == 0 { -1.0 } else { 1.0 };
            }
            let b = reference::transpose(&w, n, k);
            let want = PackedB::new(view(&b, k, n));
            for level in levels() {
                let got = with_level(level, || PackedB::new(view(&w, n, k).transpose()));
                assert_eq!((got.kp, got.np, got.n), (want.kp, want.np, want.n));
                assert!(got.data() == want.data(), "{k}x{n} at {level:?}");
            }
        }
    }

    /// A transposed left operand (`a = dZᵀ`) packs, at every level, to the very values its
    /// row-major copy packs to, padding included.
    #[test]
    fn transposed_left_operands_pack_like_their_row_major_copies() {
        use super::with_packed_a;
        use crate::kernels::testing::random;
        use crate::kernels::{levels, reference, view, with_level};
        let mut rng = crate::rng::Rng::new(6);
        for &(m, k) in &[(1, 1), (15, 17), (16, 16), (33, 48), (64, 100), (130, 31)] {
            let mut a = random(m * k, &mut rng);
            for (i, v) in a.iter_mut().enumerate().step_by(5) {
                *v = f32::from_bits(0xBF80_8000 + ((i as u32 % 2) << 16));
            }
            let kp = k.div_ceil(32) * 32;
            let want = with_packed_a(view(&a, m, k), kp, 8, |pa, _| pa.to_vec());
            let at = reference::transpose(&a, m, k);
            for level in levels() {
                let got = with_level(level, || {
                    with_packed_a(view(&at, k, m).transpose(), kp, 8, |pa, _| pa.to_vec())
                });
                assert!(got == want, "{m}x{k} at {level:?}");
            }
        }
    }

    /// A packing into a reused buffer (an earlier product's values in it) leaves its padding
    /// zero: pair rows past `k` and columns past `n`, row-major and transposed.
    #[test]
    fn reused_packing_buffers_are_padded_with_zeros() {
        use super::PackedB;
        use crate::kernels::testing::random;
        use crate::kernels::view;
        let mut rng = crate::rng::Rng::new(7);
        for round in 0..2 {
            let big = random(300 * 300, &mut rng).iter().map(|v| v + 1.0).collect::<Vec<_>>();
            drop(PackedB::new(view(&big, 300, 300)));
            let (k, n) = (33, 17);
            let b = random(k * n, &mut rng);
            let packed = match round {
                0 => PackedB::new(view(&b, k, n)),
                _ => PackedB::new(view(&b, n, k).transpose()),
            };
            let pairs = k.div_ceil(2);
            for (p, row) in packed.data().chunks_exact(packed.np).enumerate() {
                let padding = if p < pairs { &row[n..] } else { row };
                assert!(padding.iter().all(|&v| v == 0), "round {round}, pair row {p}");
                if p + 1 == pairs {
                    assert!(row[..n].iter().all(|&v| v >> 16 == 0), "k is odd: no high halves");
                }
            }
        }
    }

    #[test]
    fn bf16_rounding_is_nearest_even() {
        use super::{from_bf16, to_bf16};
        assert_eq!(from_bf16(to_bf16(1.0)), 1.0);
        // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0).
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 4.0 / 256.0);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
    }
}
