//! int8 inference: symmetric quantization of weights (per output row) and of activations (per
//! input row), and the exact integer product `acc = xq · wqᵀ` in i32.
//!
//! Rows of both operands are padded with zeros to [`padded`] (a multiple of 64 bytes, one
//! AVX-512 vector), so no kernel has a tail. The product is computed in integers and is
//! therefore exact: every unit ([`Unit`]) gives the same bits, on any thread, in any block —
//! including VNNI's `vpdpbusd`, which multiplies *unsigned* by signed bytes: it reads the
//! activations shifted by 128 (`q ^ 0x80`) and subtracts `128 · Σ wq` per output afterwards,
//! with wrapping i32 arithmetic, exact because the true result fits in i32 ([`MAX_K`]).
//!
//! Quantization rounds half to even and clamps to ±127, in plain scalar code whose IEEE
//! arithmetic is the same at every SIMD level.

#![allow(
    clippy::needless_range_loop,
    reason = "the tiles index small constant-size arrays of registers by row and output"
)]

use super::elementwise::fast_exp;
use super::{Level, level};
use crate::activation::Activation;
use rayon::prelude::*;

/// Bytes a row is padded to a multiple of.
pub const ALIGN: usize = 64;

/// The widest row the exact i32 product takes: `127 · 127 · MAX_K < 2³¹`.
pub const MAX_K: usize = 131_072;

/// Multiply-adds in one call from which blocks of outputs run as parallel tasks.
const PAR_MIN_MACS: usize = 1 << 21;

/// Outputs per parallel task.
const COL_TASK: usize = PACK;

/// `k` rounded up to a multiple of [`ALIGN`].
pub fn padded(k: usize) -> usize {
    k.div_ceil(ALIGN) * ALIGN
}

/// What computes the integer products here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// AVX512-VNNI `vpdpbusd` on 64-byte vectors.
    Vnni512,
    /// AVX-512BW: bytes widened to i16, `vpmaddwd`.
    Bw512,
    /// AVX-VNNI `vpdpbusd` on 32-byte vectors.
    AvxVnni,
    /// AVX2: bytes widened to i16, `vpmaddwd`.
    Avx2,
    /// Plain Rust.
    Portable,
}

impl Unit {
    /// Every unit, fastest first.
    pub const ALL: [Unit; 5] = [Unit::Vnni512, Unit::Bw512, Unit::AvxVnni, Unit::Avx2, Unit::Portable];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Vnni512 => "avx512-vnni",
            Unit::Bw512 => "avx512bw",
            Unit::AvxVnni => "avx-vnni",
            Unit::Avx2 => "avx2",
            Unit::Portable => "portable",
        }
    }

    /// The SIMD level the unit belongs to (a lowered [`level`] lowers the unit too).
    fn level(self) -> Level {
        match self {
            Unit::Vnni512 | Unit::Bw512 => Level::Avx512,
            Unit::AvxVnni | Unit::Avx2 => Level::Avx2,
            Unit::Portable => Level::Portable,
        }
    }

    /// Whether this CPU runs the unit.
    pub fn supported(self) -> bool {
        if !self.level().supported() {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Unit::Vnni512 => has!("avx512vnni"),
                Unit::AvxVnni => has!("avxvnni"),
                _ => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        true
    }

    /// The fastest unit at the current [`level`].
    pub fn here() -> Unit {
        // Levels order fastest first: a unit may run when its level is not above `level()`.
        let l = level();
        Unit::ALL
            .into_iter()
            .find(|u| u.level() >= l && u.supported())
            .unwrap_or(Unit::Portable)
    }

    /// Every unit this CPU runs, fastest first (what the tests compare).
    pub fn all_here() -> Vec<Unit> {
        Unit::ALL.into_iter().filter(|u| u.supported()).collect()
    }
}

/// Rounds `v` (already divided by its scale) to the nearest integer in ±127, half to even
/// (a NaN to -127). Adding 1.5 · 2²³ rounds to an integer in the current (nearest-even) mode
/// and leaves it in the low mantissa bits: plain float and integer operations, which
/// vectorize, where a float-to-integer cast is scalarized for its saturation.
#[inline(always)]
#[allow(
    clippy::manual_clamp,
    reason = "max then min maps a NaN to -127, where clamp keeps it"
)]
fn to_i8(v: f32) -> i8 {
    const MAGIC: f32 = 12_582_912.0;
    let c = v.max(-127.0).min(127.0);
    (c + MAGIC).to_bits().wrapping_sub(MAGIC.to_bits()) as i8
}

/// The symmetric scale of `row`: its largest magnitude over 127 (1 for a row of zeros, so
/// that every value quantizes to 0). The maximum in 64 lanes — four independent vector
/// chains, which vectorize and overlap (a maximum does not depend on the order).
#[inline(always)]
fn scale_of(row: &[f32]) -> f32 {
    // `if a > l` rather than `f32::max`: a plain vector maximum, without the NaN handling
    // (a NaN is skipped either way).
    let bigger = |l: f32, v: &f32| if v.abs() > l { v.abs() } else { l };
    let mut lanes = [0.0f32; 64];
    let mut chunks = row.chunks_exact(64);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l = bigger(*l, v);
        }
    }
    let mut rest = chunks.remainder().chunks_exact(16);
    for c in &mut rest {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l = bigger(*l, v);
        }
    }
    // A tree over the lanes (halves, vector by vector), not a chain of 64 scalar maxima.
    let mut width = lanes.len();
    while width > 1 {
        width /= 2;
        let (low, high) = lanes.split_at_mut(width);
        for (l, h) in low.iter_mut().zip(&high[..width]) {
            *l = bigger(*l, h);
        }
    }
    let m = rest.remainder().iter().fold(lanes[0], bigger);
    if m > 0.0 && m.is_finite() { m / 127.0 } else { 1.0 }
}

/// Quantizes the rows of `x` (`k` values each) into `q` (rows of [`padded`]`(k)` bytes, the
/// padding zero) and their scales into `scales`: `x ≈ scale · q`.
///
/// # Panics
/// If the lengths disagree.
pub fn quantize_rows(x: &[f32], k: usize, q: &mut [i8], scales: &mut [f32]) {
    let kp = padded(k);
    assert!(k > 0 && x.len().is_multiple_of(k), "quantize_rows: input length");
    let rows = x.len() / k;
    assert_eq!(q.len(), rows * kp, "quantize_rows: output length");
    assert_eq!(scales.len(), rows, "quantize_rows: scales length");
    quantize(x, k, q, scales);
}

/// `dst = to_i8(src · inv)`, value by value: the quantization of [`quantize_rows`] and
/// [`quantize_image`].
#[inline(always)]
fn round_into(dst: &mut [i8], src: &[f32], inv: f32) {
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = to_i8(v * inv);
    }
}

/// [`quantize_rows`] after its checks: with AVX2 where the level has it, else in portable
/// code; the same IEEE operations either way (a maximum, a product, a clamp, a rounding half
/// to even), so the same bytes and scales.
fn quantize(x: &[f32], k: usize, q: &mut [i8], scales: &mut [f32]) {
    let kp = padded(k);
    #[cfg(target_arch = "x86_64")]
    if level() != Level::Portable {
        for ((row, qr), s) in x.chunks_exact(k).zip(q.chunks_exact_mut(kp)).zip(scales.iter_mut()) {
            // SAFETY: every level but the portable one has AVX2 (`Level::supported`).
            *s = unsafe { x86::quantize_row(row, &mut qr[..k]) };
            qr[k..].fill(0);
        }
        return;
    }
    for ((row, qr), s) in x.chunks_exact(k).zip(q.chunks_exact_mut(kp)).zip(scales.iter_mut()) {
        *s = scale_of(row);
        round_into(&mut qr[..k], row, 1.0 / *s);
        qr[k..].fill(0);
    }
}

super::multiversion! {
    /// The f32 epilogue of an int8 product: `y = act(acc · (row · scale) + bias)` for each
    /// row of `scale.len()` outputs (`row`: the input's scale, `scale`: each output's), the
    /// activation as [`bias_activation`](super::bias_activation) applies it.
    pub fn dequantize(y: &mut [f32], acc: &[i32], row: f32, scale: &[f32], bias: &[f32], act: Activation) {
        let n = scale.len();
        assert!(y.len() == acc.len() && bias.len() == n && y.len().is_multiple_of(n), "dequantize: lengths");
        macro_rules! each {
            ($f:expr) => {
                for (yr, ar) in y.chunks_exact_mut(n).zip(acc.chunks_exact(n)) {
                    for (((v, &a), &s), &b) in yr.iter_mut().zip(ar).zip(scale).zip(bias) {
                        *v = $f(a as f32 * (row * s) + b);
                    }
                }
            };
        }
        super::elementwise::by_activation!(act, each, each!(|v: f32| v))
    }
}

super::multiversion! {
    /// Quantizes one image `x` (`x.len() / width` rows of `width` values) with its own scale
    /// into `canvas`, row `r` at `origin + r · pitch`, every other byte zero: the image inside
    /// a border of zeros (a convolution's padding). The bytes and the scale are those of
    /// [`quantize_rows`]; returns the scale.
    pub fn quantize_image(x: &[f32], width: usize, pitch: usize, origin: usize, canvas: &mut [i8]) -> f32 {
        let s = scale_of(x);
        // Each byte written once: the zeros before a row (the border), then the row.
        let mut at = 0;
        for (r, row) in x.chunks_exact(width).enumerate() {
            let start = origin + r * pitch;
            canvas[at..start].fill(0);
            round_into(&mut canvas[start..][..width], row, 1.0 / s);
            at = start + width;
        }
        canvas[at..].fill(0);
        s
    }
}

/// Images' patches: for each image (a canvas of `slot` bytes in `canvases`), for each output
/// pixel (a row of `kp` bytes of `cols`), its `runs` runs of `len` bytes (a filter row's taps,
/// all channels) copied from where `taps` points in the canvas. A run is copied as a whole
/// vector of `width >= len` bytes when that fits (the excess lands where the next run, or the
/// row's unused tail, goes, so it is overwritten or read against zero weights); a canvas then
/// holds `width - len` bytes past the last run.
///
/// # Panics
/// If a run reaches past its canvas or a row, or the lengths disagree.
pub fn gather(cols: &mut [i8], canvases: &[i8], slot: usize, taps: &[u32], kp: usize, (runs, len): (usize, usize)) {
    let pixels = taps.len() / runs.max(1);
    assert!(
        runs * len <= kp && taps.len() == runs * pixels && cols.len() == canvases.len() / slot * pixels * kp,
        "gather: lengths"
    );
    let width = copy_width(runs, len, kp);
    assert!(
        taps.iter().all(|&at| at as usize + width <= slot),
        "gather: a run past the canvas"
    );
    for (canvas, ci) in canvases.chunks_exact(slot).zip(cols.chunks_exact_mut(pixels * kp)) {
        one(ci, canvas, taps, kp, (runs, len), width);
    }
}

/// [`gather`] of one image, the checks done.
fn one(cols: &mut [i8], canvas: &[i8], taps: &[u32], kp: usize, (runs, len): (usize, usize), width: usize) {
    fn copy<const W: usize>(cols: &mut [i8], canvas: &[i8], taps: &[u32], kp: usize, (runs, len): (usize, usize)) {
        for (row, t) in cols.chunks_exact_mut(kp).zip(taps.chunks_exact(runs)) {
            for (i, &at) in t.iter().enumerate() {
                // SAFETY: asserted in `gather`: `at + W <= canvas.len()`, and (`copy_width`)
                // `i len + W <= (runs - 1) len + W <= kp`.
                unsafe {
                    let src = canvas.as_ptr().add(at as usize).cast::<[i8; W]>().read_unaligned();
                    row.as_mut_ptr().add(i * len).cast::<[i8; W]>().write_unaligned(src);
                }
            }
        }
    }
    match width {
        1 => copy::<1>(cols, canvas, taps, kp, (runs, len)),
        2 => copy::<2>(cols, canvas, taps, kp, (runs, len)),
        4 => copy::<4>(cols, canvas, taps, kp, (runs, len)),
        8 => copy::<8>(cols, canvas, taps, kp, (runs, len)),
        16 => copy::<16>(cols, canvas, taps, kp, (runs, len)),
        32 => copy::<32>(cols, canvas, taps, kp, (runs, len)),
        64 => copy::<64>(cols, canvas, taps, kp, (runs, len)),
        _ => {
            for (row, t) in cols.chunks_exact_mut(kp).zip(taps.chunks_exact(runs)) {
                for (dst, &at) in row.chunks_exact_mut(len).zip(t) {
                    dst.copy_from_slice(&canvas[at as usize..][..len]);
                }
            }
        }
    }
}

/// The bytes [`gather`] copies per run of `len`: the smallest power of two up to 64 that
/// holds it, when the last of a row's `runs` runs still fits in `kp` that way; else `len`.
pub fn copy_width(runs: usize, len: usize, kp: usize) -> usize {
    match len.next_power_of_two() {
        w if w <= 64 && (runs - 1) * len + w <= kp => w,
        _ => len,
    }
}

/// Outputs per block of the packed layout: four vectors of sixteen.
pub const PACK: usize = 64;

/// Outputs per block of [`Weights::eights`].
pub const EIGHT: usize = 8;

/// Weights quantized per output row, in the two layouts the units read.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    /// Outputs.
    pub n: usize,
    /// Bytes per row ([`padded`] inputs).
    pub kp: usize,
    /// `n` rows of `kp` bytes.
    pub rows: Vec<i8>,
    /// For VNNI: blocks of [`PACK`] outputs (the last padded with zero rows), each `kp / 4`
    /// groups of 256 bytes: four vectors of 16 outputs x 4 consecutive inputs, so one
    /// `vpdpbusd` adds four inputs' products to 16 outputs and no lanes are ever reduced.
    pub packed: Vec<i8>,
    /// For AVX2's single row (where AVX2 runs): blocks of [`EIGHT`] outputs (the last padded
    /// with zero rows), each `kp / 32` groups of 256 bytes: the 32 consecutive bytes of each
    /// of the eight rows, so a row's product reads one sequential stream. Empty elsewhere.
    pub eights: Vec<i8>,
    /// Each row's sum of bytes (for the unsigned products).
    pub sums: Vec<i32>,
    /// Inputs up to the last column with a nonzero weight: the products stop there, since
    /// the rest add exact zeros (a 3x3 filter on one channel reads 9 of its 64 bytes).
    pub live: usize,
}

impl Weights {
    /// Weights from their rows of bytes (`n` rows of `kp`, `kp` a multiple of [`ALIGN`],
    /// every byte within ±127 as quantization makes them).
    ///
    /// # Panics
    /// If the length disagrees or a byte is -128 (the AVX2 unit's products rely on ±127).
    pub fn from_rows(rows: Vec<i8>, kp: usize, n: usize) -> Weights {
        assert_eq!(rows.len(), n * kp, "Weights: length");
        assert!(
            !rows.contains(&i8::MIN),
            "Weights: a byte of -128 (quantized bytes are within ±127)"
        );
        let sums = rows
            .chunks_exact(kp)
            .map(|r| r.iter().map(|&v| i32::from(v)).sum())
            .collect();
        let live = rows
            .chunks_exact(kp)
            .map(|r| r.iter().rposition(|&v| v != 0).map_or(0, |i| i + 1))
            .max()
            .unwrap_or(0);
        let mut packed = vec![0i8; n.div_ceil(PACK) * PACK * kp];
        for (j, row) in rows.chunks_exact(kp).enumerate() {
            let (block, jj) = (j / PACK, j % PACK);
            let (vector, lane) = (jj / 16, jj % 16);
            for (q, four) in row.chunks_exact(4).enumerate() {
                let at = block * PACK * kp + q * 256 + vector * 64 + lane * 4;
                packed[at..at + 4].copy_from_slice(four);
            }
        }
        let eights = if Unit::Avx2.supported() {
            let mut e = vec![0i8; n.div_ceil(EIGHT) * EIGHT * kp];
            for (j, row) in rows.chunks_exact(kp).enumerate() {
                let (block, c) = (j / EIGHT, j % EIGHT);
                for (t, bytes) in row.chunks_exact(32).enumerate() {
                    let at = block * EIGHT * kp + t * 256 + c * 32;
                    e[at..at + 32].copy_from_slice(bytes);
                }
            }
            e
        } else {
            Vec::new()
        };
        Weights {
            n,
            kp,
            rows,
            packed,
            eights,
            sums,
            live,
        }
    }
}

/// Weights `w` (`n` rows of `k`) quantized per output row: the bytes, and the scales.
pub fn quantize_weights(w: &[f32], n: usize, k: usize) -> (Weights, Vec<f32>) {
    assert_eq!(w.len(), n * k, "quantize_weights: length");
    let mut q = vec![0i8; n * padded(k)];
    let mut scales = vec![0.0f32; n];
    quantize_rows(w, k, &mut q, &mut scales);
    (Weights::from_rows(q, padded(k), n), scales)
}

/// `acc (rows x n) = x (rows x kp) · wᵀ` exactly (`x`'s bytes within ±127, as
/// [`quantize_rows`] makes them), at the fastest unit here; blocks of
/// outputs run in parallel when the product is large (any split gives the same integers).
///
/// # Panics
/// If the lengths disagree, or `kp` exceeds [`MAX_K`].
#[track_caller]
pub fn dot_i8(acc: &mut [i32], x: &[i8], w: &Weights) {
    dot_i8_on(Unit::here(), acc, x, w);
}

/// [`dot_i8`] on `unit` (the tests' way to try each).
///
/// # Panics
/// As [`dot_i8`], and if this CPU does not run `unit`.
#[track_caller]
pub fn dot_i8_on(unit: Unit, acc: &mut [i32], x: &[i8], w: &Weights) {
    let (kp, n) = (w.kp, w.n);
    assert!(unit.supported(), "this CPU does not run {}", unit.name());
    assert!(
        kp > 0 && kp.is_multiple_of(ALIGN) && kp <= MAX_K,
        "dot_i8: row length {kp}"
    );
    assert_eq!(x.len() % kp, 0, "dot_i8: input length");
    let rows = x.len() / kp;
    assert_eq!(acc.len(), rows * n, "dot_i8: output length");
    assert_eq!(w.packed.len(), n.div_ceil(PACK) * PACK * kp, "dot_i8: packed length");
    if rows == 0 || n == 0 {
        return;
    }
    // Outputs `j0..j1` (`j0` a multiple of PACK) into `out`, rows of `j1 - j0`.
    let part = |out: &mut [i32], j0: usize, j1: usize| {
        let cols = Cols {
            rows: &w.rows[j0 * kp..j1 * kp],
            packed: &w.packed[j0 * kp..],
            eights: w.eights.get(j0 * kp..).unwrap_or_default(),
            sums: &w.sums[j0..j1],
            kp,
            live: w.live,
            n: j1 - j0,
        };
        columns(unit, out, x, &cols);
    };
    if rows * kp * n >= PAR_MIN_MACS && n > COL_TASK {
        let blocks: Vec<Vec<i32>> = (0..n.div_ceil(COL_TASK))
            .into_par_iter()
            .map(|t| {
                let (j0, j1) = (t * COL_TASK, ((t + 1) * COL_TASK).min(n));
                let mut local = vec![0i32; rows * (j1 - j0)];
                part(&mut local, j0, j1);
                local
            })
            .collect();
        for (t, local) in blocks.iter().enumerate() {
            let width = local.len() / rows;
            for (ar, lr) in acc.chunks_exact_mut(n).zip(local.chunks_exact(width)) {
                ar[t * COL_TASK..][..width].copy_from_slice(lr);
            }
        }
        return;
    }
    part(acc, 0, n);
}

/// A run of outputs of [`Weights`]: its rows, its packed blocks (from the first, to the end),
/// its sums.
struct Cols<'a> {
    rows: &'a [i8],
    packed: &'a [i8],
    eights: &'a [i8],
    sums: &'a [i32],
    kp: usize,
    live: usize,
    n: usize,
}

/// The product on this thread, on `unit`.
fn columns(unit: Unit, acc: &mut [i32], x: &[i8], c: &Cols<'_>) {
    let (w, sums, kp, n) = (c.rows, c.sums, c.kp, c.n);
    // The bytes each unit reads of a row: the live inputs rounded up to its step.
    let reach = |step: usize| c.live.div_ceil(step) * step;
    match unit {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `dot_i8_on` asserted the unit is supported: AVX-512 (F, BW) and VNNI.
        Unit::Vnni512 => unsafe { x86::vnni512(acc, x, c.packed, sums, (kp, reach(4)), n) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, AVX-512 (F, BW).
        Unit::Bw512 => unsafe { x86::bw512(acc, x, w, sums, (kp, reach(32)), n) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, AVX2 and AVX-VNNI.
        Unit::AvxVnni => unsafe { x86::avxvnni(acc, x, w, sums, (kp, reach(32)), n) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, AVX2.
        Unit::Avx2 if x.len() == kp => unsafe { x86::avx2_row(acc, x, c.eights, (kp, reach(32)), n) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, AVX2.
        Unit::Avx2 => unsafe { x86::avx2(acc, x, w, sums, (kp, reach(16)), n) },
        _ => portable(acc, x, w, (kp, c.live), n),
    }
}

/// Runs `$tile::<R, C>(x, w, sums, (kp, k))` over `acc`: rows four at a time (`$c4` outputs per
/// tile), a single row with `$c1` outputs per tile, the last outputs one at a time.
macro_rules! drive {
    ($acc:ident, $x:ident, $w:ident, $sums:ident, $kp:ident, $n:ident, $tile:ident, $c4:literal, $c1:literal) => {{
        let rows = $x.len() / $kp.0;
        let mut i = 0;
        while i < rows {
            let r = (rows - i).min(4);
            let xr = &$x[i * $kp.0..(i + r) * $kp.0];
            let ar = &mut $acc[i * $n..(i + r) * $n];
            match r {
                1 => strip::<1, $c1>(ar, xr, $w, $sums, $kp, $n),
                2 => strip::<2, $c4>(ar, xr, $w, $sums, $kp, $n),
                3 => strip::<3, $c4>(ar, xr, $w, $sums, $kp, $n),
                _ => strip::<4, $c4>(ar, xr, $w, $sums, $kp, $n),
            }
            i += r;
        }

        #[inline(always)]
        fn strip<const R: usize, const C: usize>(
            acc: &mut [i32],
            x: &[i8],
            w: &[i8],
            sums: &[i32],
            (kp, k): (usize, usize),
            n: usize,
        ) {
            let mut j = 0;
            while j + C <= n {
                let out: [[i32; C]; R] = $tile::<R, C>(x, &w[j * kp..(j + C) * kp], &sums[j..j + C], (kp, k));
                for (r, o) in out.iter().enumerate() {
                    acc[r * n + j..][..C].copy_from_slice(o);
                }
                j += C;
            }
            while j < n {
                let out: [[i32; 1]; R] = $tile::<R, 1>(x, &w[j * kp..(j + 1) * kp], &sums[j..j + 1], (kp, k));
                for (r, o) in out.iter().enumerate() {
                    acc[r * n + j] = o[0];
                }
                j += 1;
            }
        }
    }};
}

/// Plain integer dot products over the first `k` bytes of rows of `kp`.
fn portable(acc: &mut [i32], x: &[i8], w: &[i8], (kp, k): (usize, usize), n: usize) {
    for (ar, xr) in acc.chunks_exact_mut(n).zip(x.chunks_exact(kp)) {
        for (a, wr) in ar.iter_mut().zip(w.chunks_exact(kp)) {
            *a = xr[..k]
                .iter()
                .zip(&wr[..k])
                .map(|(&p, &q)| i32::from(p) * i32::from(q))
                .sum();
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::kernels::testing::{AWKWARD, random};
    use crate::rng::Rng;

    /// Extreme bytes too: ±127 everywhere, so the products reach their bound.
    fn bytes(n: usize, rng: &mut Rng) -> Vec<i8> {
        (0..n)
            .map(|_| match rng.below(8) {
                0 => 127,
                1 => -127,
                _ => (rng.uniform_range(-127.0, 127.0)).round() as i8,
            })
            .collect()
    }

    /// Every unit this CPU runs gives the reference's exact integers, on awkward sizes and
    /// row counts (each tile shape and remainder), alone and among other rows.
    #[test]
    fn every_unit_computes_the_exact_integer_products() {
        let mut rng = Rng::new(11);
        let units = Unit::all_here();
        assert_eq!(units.last(), Some(&Unit::Portable));
        for &k in &[1, 63, 64, 65, 200, 784] {
            let kp = padded(k);
            for &n in &[1, 3, 7, 8, 9, 17, 64, 65, 130] {
                for &m in &[1, 2, 3, 4, 5, 6, 7, 13] {
                    let x = bytes(m * kp, &mut rng);
                    let mut w = bytes(n * kp, &mut rng);
                    // Zero weights past column k (the products stop there); the inputs
                    // past it are left arbitrary, as they add exact zeros.
                    for r in w.chunks_exact_mut(kp) {
                        r[k..].fill(0);
                    }
                    let want = reference::dot_i8(&x, &w, m, kp, n);
                    let w = Weights::from_rows(w, kp, n);
                    for &u in &units {
                        let mut acc = vec![i32::MIN; m * n];
                        dot_i8_on(u, &mut acc, &x, &w);
                        assert_eq!(acc, want, "{u:?} m={m} k={k} n={n}");
                        let mut alone = vec![0; n];
                        dot_i8_on(u, &mut alone, &x[(m - 1) * kp..], &w);
                        assert_eq!(alone[..], want[(m - 1) * n..], "{u:?} last row alone");
                    }
                }
            }
        }
    }

    /// At the bound of the widest row, every value ±127 of the same sign: the exact result
    /// `127² · MAX_K` fits, though VNNI's shifted partial sums wrap on the way.
    #[test]
    fn the_widest_row_at_full_scale_stays_exact() {
        let kp = MAX_K;
        // Every sign pair: AVX2's one-row path multiplies `|x|` by `w` with `x`'s sign.
        for (xs, ws) in [(127i8, 127i8), (-127, -127), (-127, 127), (127, -127)] {
            let x = vec![xs; kp];
            let w = Weights::from_rows(vec![ws; kp], kp, 1);
            let want = i64::from(xs) * i64::from(ws) * kp as i64;
            for u in Unit::all_here() {
                let mut acc = [0];
                dot_i8_on(u, &mut acc, &x, &w);
                assert_eq!(i64::from(acc[0]), want, "{u:?} x={xs} w={ws}");
            }
        }
    }

    /// Large enough for parallel blocks of outputs: the reference's integers.
    #[test]
    fn parallel_blocks_give_the_same_integers() {
        let mut rng = Rng::new(5);
        let (m, kp, n) = (16, 320, 513);
        assert!(m * kp * n >= PAR_MIN_MACS);
        let x = bytes(m * kp, &mut rng);
        let w = bytes(n * kp, &mut rng);
        let want = reference::dot_i8(&x, &w, m, kp, n);
        let w = Weights::from_rows(w, kp, n);
        for u in Unit::all_here() {
            let mut acc = vec![0; m * n];
            dot_i8_on(u, &mut acc, &x, &w);
            assert_eq!(acc, want, "{u:?}");
        }
    }

    /// An image on its canvas: the bytes and scale of `quantize_rows`, zeros around it; and
    /// the whole-vector copy width only where the row's last run still fits.
    #[test]
    fn images_quantize_inside_a_border_of_zeros() {
        let mut rng = Rng::new(3);
        let (h, width, pitch, origin) = (5, 6, 10, 12);
        let x = random(h * width, &mut rng);
        let mut rows = vec![0i8; padded(h * width)];
        let mut s = [0.0];
        quantize_rows(&x, h * width, &mut rows, &mut s);
        let mut canvas = vec![7i8; origin + h * pitch + 3];
        assert_eq!(quantize_image(&x, width, pitch, origin, &mut canvas), s[0]);
        for (i, &v) in canvas.iter().enumerate() {
            let (r, c) = ((i.wrapping_sub(origin)) / pitch, (i.wrapping_sub(origin)) % pitch);
            let want = if i >= origin && r < h && c < width {
                rows[r * width + c]
            } else {
                0
            };
            assert_eq!(v, want, "byte {i}");
        }
        assert_eq!(copy_width(3, 3, 64), 4);
        assert_eq!(copy_width(3, 48, 192), 64);
        assert_eq!(copy_width(7, 9, 64), 9);
        assert_eq!(copy_width(3, 72, 256), 72);
    }

    /// Every level quantizes to the same bytes and scales as the portable code, on awkward
    /// lengths and on values that are not plain: NaN, infinities, ties, ±0, huge, tiny.
    #[test]
    fn every_level_quantizes_to_the_same_bytes() {
        let mut rng = Rng::new(17);
        for &k in AWKWARD.iter().chain(&[31, 32, 33, 100, 784]) {
            for case in 0..4 {
                let mut x = random(2 * k, &mut rng);
                match case {
                    1 => {
                        // Ties at half steps once scaled (the largest is 127 exactly).
                        x[0] = 127.0;
                        for (i, v) in x.iter_mut().enumerate().skip(1) {
                            *v = (i % 254) as f32 - 126.5;
                        }
                    }
                    2 => {
                        x[k / 2] = f32::NAN;
                        x[(k + 1) / 3] = -0.0;
                        x[2 * k - 1] = f32::INFINITY;
                        x[k] = 1e-30;
                    }
                    3 => x.iter_mut().for_each(|v| *v *= 3e37),
                    _ => {}
                }
                let kp = padded(k);
                let quantized = || {
                    let (mut q, mut s) = (vec![5i8; 2 * kp], vec![0.0f32; 2]);
                    quantize_rows(&x, k, &mut q, &mut s);
                    (q, s.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                };
                let want = super::super::with_level(Level::Portable, quantized);
                crate::kernels::testing::at_every_level(|l| {
                    assert_eq!(quantized(), want, "k={k} case {case} at {l:?}");
                });
            }
        }
    }

    /// Quantization: within half a step of the value, ±127 at the row's largest magnitude,
    /// zeros in the padding, and a row of zeros with scale 1.
    #[test]
    fn rows_quantize_within_half_a_step() {
        let mut rng = Rng::new(2);
        for &k in &AWKWARD {
            let mut x = random(3 * k, &mut rng);
            x[2 * k..].fill(0.0);
            let kp = padded(k);
            let mut q = vec![1i8; 3 * kp];
            let mut s = vec![0.0; 3];
            quantize_rows(&x, k, &mut q, &mut s);
            for r in 0..3 {
                let (row, qr) = (&x[r * k..(r + 1) * k], &q[r * kp..(r + 1) * kp]);
                assert!(qr[k..].iter().all(|&v| v == 0), "padding");
                if r == 2 {
                    assert_eq!(s[r], 1.0);
                    assert!(qr.iter().all(|&v| v == 0));
                    continue;
                }
                assert!(
                    qr.iter().any(|&v| v.unsigned_abs() == 127),
                    "k={k}: the largest maps to ±127"
                );
                for (&v, &b) in row.iter().zip(qr) {
                    assert!(
                        (v - s[r] * f32::from(b)).abs() <= 0.5 * s[r] * (1.0 + 1e-6),
                        "k={k}: {v} vs {b}"
                    );
                }
            }
        }
    }
}
