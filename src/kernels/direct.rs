//! Direct convolution on channels-last (H, W, C) images, for inference.
//!
//! im2col + GEMM gathers every input value `k * k` times and pays a GEMM call per image; for
//! the small layers of image autoencoders that costs more than the arithmetic. Here each output
//! pixel reads its window straight from a zero-padded channels-last copy of the image, and the
//! output channels are the vector lanes: one broadcast input value feeds `16 * NB` channels.
//! Every output value is a sum over the window in one fixed order, so results do not depend on
//! the thread count.

/// Output channels per vector.
pub const LANES: usize = 16;

/// Whether the direct kernel is the fast choice on this machine: it keeps up to 24 vectors of
/// 16 lanes in registers, which needs AVX-512 (elsewhere im2col + GEMM is faster).
pub fn available() -> bool {
    super::level() == super::Level::Avx512
}

/// Where a convolution reads its input: for output pixel `p` and tap `t` (kernel row, kernel
/// column, input channel) the value at `pixels[p] + taps[t]` of the padded channels-last image.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pixels: Vec<u32>,
    taps: Vec<u32>,
    padded_len: usize,
}

impl Plan {
    /// The plan of a `kernel` (height, width) convolution with `stride` (down, across) over a
    /// channels-last image of `channels` channels already padded to `padded_hw`, with `out_hw`
    /// output pixels. `None` when a read would fall outside the padded image (the caller's
    /// geometry is wrong).
    pub fn new(
        channels: usize,
        padded_hw: (usize, usize),
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        out_hw: (usize, usize),
    ) -> Option<Plan> {
        let (hp, wp) = padded_hw;
        let padded_len = hp * wp * channels;
        // Offsets are stored as u32 (half the table); an image too large for them has no plan.
        if u32::try_from(padded_len).is_err() {
            return None;
        }
        let pixels: Vec<u32> = (0..out_hw.0)
            .flat_map(|oy| (0..out_hw.1).map(move |ox| ((oy * sh * wp + ox * sw) * channels) as u32))
            .collect();
        let taps: Vec<u32> = (0..kh)
            .flat_map(|ky| {
                (0..kw).flat_map(move |kx| (0..channels).map(move |c| ((ky * wp + kx) * channels + c) as u32))
            })
            .collect();
        // The kernel reads `pixel + tap` in usize: checked here once, in the same arithmetic.
        let last = *pixels.iter().max()? as usize + *taps.iter().max()? as usize;
        (last < padded_len).then_some(Plan {
            pixels,
            taps,
            padded_len,
        })
    }

    /// Output pixels.
    pub fn pixels(&self) -> usize {
        self.pixels.len()
    }

    /// Taps (rows of the weight matrix).
    pub fn taps(&self) -> usize {
        self.taps.len()
    }

    /// `y (pixels x co_pad) = bias + x * w` for one padded channels-last image `x`, with `w`
    /// the `taps x co_pad` weights (`co_pad` a multiple of [`LANES`], zeros past the real
    /// channels) and `bias` of `co_pad` values; then `max(y, 0)` when `relu`.
    ///
    /// # Panics
    /// If a buffer has the wrong length or `co_pad` is not a positive multiple of [`LANES`].
    pub fn run(&self, x: &[f32], w: &[f32], bias: &[f32], relu: bool, y: &mut [f32]) {
        let co_pad = bias.len();
        assert!(
            co_pad > 0 && co_pad.is_multiple_of(LANES),
            "direct conv: channels {co_pad}"
        );
        assert_eq!(x.len(), self.padded_len, "direct conv: input length");
        assert_eq!(w.len(), self.taps.len() * co_pad, "direct conv: weight length");
        assert_eq!(y.len(), self.pixels.len() * co_pad, "direct conv: output length");
        conv_kernel(self, x, w, bias, relu, y);
    }
}

fn conv_kernel(plan: &Plan, x: &[f32], w: &[f32], bias: &[f32], relu: bool, y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: `available()` detected AVX-512F.
        return unsafe { avx512::conv(plan, x, w, bias, relu, y) };
    }
    portable(plan, x, w, bias, relu, y);
}

/// The same sums in the same order, one value at a time (machines without AVX-512, tests).
fn portable(plan: &Plan, x: &[f32], w: &[f32], bias: &[f32], relu: bool, y: &mut [f32]) {
    let co_pad = bias.len();
    for (&pix, yr) in plan.pixels.iter().zip(y.chunks_exact_mut(co_pad)) {
        yr.copy_from_slice(bias);
        for (&tap, wr) in plan.taps.iter().zip(w.chunks_exact(co_pad)) {
            let v = x[pix as usize + tap as usize];
            for (a, &wv) in yr.iter_mut().zip(wr) {
                *a = v.mul_add(wv, *a);
            }
        }
        if relu {
            yr.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod avx512 {
    use super::{LANES, Plan};
    use std::arch::x86_64::{
        __m512, __mmask16, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
        _mm512_max_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_shuffle_f32x4, _mm512_shuffle_ps, _mm512_storeu_ps,
        _mm512_unpackhi_ps, _mm512_unpacklo_ps,
    };

    /// Callers guarantee AVX-512F and the lengths that `Plan::run` asserts.
    #[target_feature(enable = "avx512f")]
    pub(super) fn conv(plan: &Plan, x: &[f32], w: &[f32], bias: &[f32], relu: bool, y: &mut [f32]) {
        let n = plan.pixels.len();
        let blocks = bias.len() / LANES;
        let mut b = 0;
        while b < blocks {
            if blocks - b >= 2 {
                // 7 or 8 pixels per step (2 x 16 accumulators at most), whichever wastes fewer.
                if n.div_ceil(7) * 7 < n.div_ceil(8) * 8 {
                    channel_block::<7, 2>(plan, x, w, bias, relu, b, y);
                } else {
                    channel_block::<8, 2>(plan, x, w, bias, relu, b, y);
                }
                b += 2;
            } else {
                channel_block::<12, 1>(plan, x, w, bias, relu, b, y);
                b += 1;
            }
        }
    }

    /// [`super::pad_rows`] after its checks.
    #[target_feature(enable = "avx512f")]
    pub(super) fn pad_rows(src: &[f32], width: usize, dst: &mut [f32], pitch: usize, origin: usize) {
        for (r, row) in src.chunks_exact(width).enumerate() {
            let at = origin + r * pitch;
            for c0 in (0..width).step_by(LANES) {
                let m: __mmask16 = if width - c0 >= LANES {
                    !0
                } else {
                    (1 << (width - c0)) - 1
                };
                // SAFETY: the mask reads columns c0.. < width of the row and writes as many
                // values from `at + c0`, which the caller checked fit in `dst`.
                unsafe {
                    let v = _mm512_maskz_loadu_ps(m, row.as_ptr().add(c0));
                    _mm512_mask_storeu_ps(dst.as_mut_ptr().add(at + c0), m, v);
                }
            }
        }
    }

    /// Leftover rows up to this many are transposed one value at a time.
    const THIN: usize = 4;

    /// `dst (cols x rows)` = the transpose of `src (rows x cols)`, by 16 x 16 tiles
    /// transposed in registers (partial tiles at the edges masked, up to [`THIN`] leftover
    /// rows by value).
    #[target_feature(enable = "avx512f")]
    pub(super) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
        assert!(
            src.len() == rows * cols && dst.len() == rows * cols,
            "transpose: lengths"
        );
        let mask = |n: usize| -> __mmask16 { if n >= LANES { !0 } else { (1 << n) - 1 } };
        // Rows past the last whole tile, when few: one value at a time (a tile for them
        // would shuffle mostly zeros).
        let whole = if rows % LANES <= THIN {
            rows - rows % LANES
        } else {
            rows
        };
        for r in whole..rows {
            for (c, &v) in src[r * cols..(r + 1) * cols].iter().enumerate() {
                dst[c * rows + r] = v;
            }
        }
        for c0 in (0..cols).step_by(LANES) {
            let load = mask(cols - c0);
            for r0 in (0..whole).step_by(LANES) {
                let n = (whole - r0).min(LANES);
                if n == LANES && cols - c0 >= LANES {
                    // A whole tile: constant loops, so it stays in registers.
                    // SAFETY: rows r0.. r0 + 16 <= rows, columns c0..c0 + 16 <= cols.
                    let tile: [__m512; LANES] =
                        std::array::from_fn(|i| unsafe { _mm512_loadu_ps(src.as_ptr().add((r0 + i) * cols + c0)) });
                    for (j, t) in transpose16(tile).into_iter().enumerate() {
                        // SAFETY: output row c0 + j < cols holds rows r0..r0 + 16 <= rows.
                        unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add((c0 + j) * rows + r0), t) };
                    }
                    continue;
                }
                let mut tile = [_mm512_setzero_ps(); LANES];
                for (i, t) in tile.iter_mut().enumerate().take(n) {
                    // SAFETY: row r0 + i < rows; the mask reads columns c0.. < cols.
                    *t = unsafe { _mm512_maskz_loadu_ps(load, src.as_ptr().add((r0 + i) * cols + c0)) };
                }
                let tile = transpose16(tile);
                for (j, t) in tile.iter().enumerate().take(cols - c0) {
                    // SAFETY: output row c0 + j < cols has `rows` values; the mask writes
                    // columns r0..r0 + n <= rows.
                    unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr().add((c0 + j) * rows + r0), mask(n), *t) };
                }
            }
        }
    }

    /// The transpose of 16 rows of 16 values: unpack pairs, shuffle quads, then exchange
    /// 128-bit lanes twice (64 shuffles).
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(in crate::kernels) fn transpose16(r: [__m512; LANES]) -> [__m512; LANES] {
        let mut t = [_mm512_setzero_ps(); LANES];
        for k in 0..8 {
            t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
            t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
        }
        // u[4g + j], 128-bit lane L: column 4L + j of rows 4g..4g + 4.
        let mut u = [_mm512_setzero_ps(); LANES];
        for g in 0..4 {
            u[4 * g] = _mm512_shuffle_ps::<0x44>(t[4 * g], t[4 * g + 2]);
            u[4 * g + 1] = _mm512_shuffle_ps::<0xEE>(t[4 * g], t[4 * g + 2]);
            u[4 * g + 2] = _mm512_shuffle_ps::<0x44>(t[4 * g + 1], t[4 * g + 3]);
            u[4 * g + 3] = _mm512_shuffle_ps::<0xEE>(t[4 * g + 1], t[4 * g + 3]);
        }
        let mut w = [_mm512_setzero_ps(); LANES];
        for j in 0..4 {
            let even_lo = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
            let odd_lo = _mm512_shuffle_f32x4::<0xDD>(u[j], u[4 + j]);
            let even_hi = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
            let odd_hi = _mm512_shuffle_f32x4::<0xDD>(u[8 + j], u[12 + j]);
            w[j] = _mm512_shuffle_f32x4::<0x88>(even_lo, even_hi);
            w[4 + j] = _mm512_shuffle_f32x4::<0x88>(odd_lo, odd_hi);
            w[8 + j] = _mm512_shuffle_f32x4::<0xDD>(even_lo, even_hi);
            w[12 + j] = _mm512_shuffle_f32x4::<0xDD>(odd_lo, odd_hi);
        }
        w
    }

    /// Output channels `b * LANES .. (b + NB) * LANES` of every pixel, `P` pixels at a time
    /// with `P x NB` vector accumulators held in registers.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn channel_block<const P: usize, const NB: usize>(
        plan: &Plan,
        x: &[f32],
        w: &[f32],
        bias: &[f32],
        relu: bool,
        b: usize,
        y: &mut [f32],
    ) {
        let n = plan.pixels.len();
        let co_pad = bias.len();
        let c0 = b * LANES;
        let mut p0 = 0;
        while p0 < n {
            // A last, partial block repeats its final pixel; only real pixels are stored.
            let mut offs = [0usize; P];
            for (i, o) in offs.iter_mut().enumerate() {
                *o = plan.pixels[(p0 + i).min(n - 1)] as usize;
            }
            let mut start = [_mm512_setzero_ps(); NB];
            for (j, v) in start.iter_mut().enumerate() {
                // SAFETY: c0 + (j + 1) * LANES <= co_pad = bias.len() (b < co_pad / LANES - j).
                *v = unsafe { _mm512_loadu_ps(bias[c0 + j * LANES..][..LANES].as_ptr()) };
            }
            let mut acc = [start; P];
            for (&tap, wr) in plan.taps.iter().zip(w.chunks_exact(co_pad)) {
                let wr = &wr[c0..c0 + NB * LANES];
                let mut wv = [_mm512_setzero_ps(); NB];
                for (j, v) in wv.iter_mut().enumerate() {
                    // SAFETY: `wr` holds NB * LANES values (sliced above).
                    *v = unsafe { _mm512_loadu_ps(wr.as_ptr().add(j * LANES)) };
                }
                let tap = tap as usize;
                for i in 0..P {
                    // SAFETY: Plan::new checked max(pixels) + max(taps) < padded_len, and
                    // Plan::run asserted x.len() == padded_len.
                    let v: __m512 = _mm512_set1_ps(unsafe { *x.get_unchecked(offs[i] + tap) });
                    for j in 0..NB {
                        acc[i][j] = _mm512_fmadd_ps(v, wv[j], acc[i][j]);
                    }
                }
            }
            for (i, a) in acc.iter().enumerate().take(n - p0) {
                let row = &mut y[(p0 + i) * co_pad + c0..][..NB * LANES];
                for (j, &v) in a.iter().enumerate() {
                    let v = if relu { _mm512_max_ps(v, _mm512_setzero_ps()) } else { v };
                    // SAFETY: `row` holds NB * LANES values (sliced above).
                    unsafe { _mm512_storeu_ps(row.as_mut_ptr().add(j * LANES), v) };
                }
            }
            p0 += P;
        }
    }
}

/// Converts every image (`image` values, `c` channels) of `src` into `dst`: channel-major to
/// channels-last when `to_last`, else back.
pub fn transpose_images(src: &[f32], image: usize, c: usize, dst: &mut [f32], to_last: bool) {
    assert_eq!(src.len(), dst.len(), "transpose: lengths");
    for (s, d) in src.chunks_exact(image).zip(dst.chunks_exact_mut(image)) {
        #[cfg(target_arch = "x86_64")]
        if c >= LANES && available() {
            let (rows, cols) = if to_last { (c, image / c) } else { (image / c, c) };
            // SAFETY: `available()` detected AVX-512F; `s` and `d` hold rows * cols values.
            unsafe { avx512::transpose(s, rows, cols, d) };
            continue;
        }
        if c == 1 {
            d.copy_from_slice(s);
        } else if to_last {
            to_channels_last(s, c, d);
        } else {
            to_channels_first(s, c, d);
        }
    }
}

/// Copies the rows of `width` values of `src` into `dst`, row `r` at `origin + r · pitch`: an
/// image into the interior of its padded canvas. With AVX-512, by masked vector moves (a
/// library call per short row cost 6 % of the MNIST conv encoder's inference).
///
/// # Panics
/// If a row lands past `dst`.
pub fn pad_rows(src: &[f32], width: usize, dst: &mut [f32], pitch: usize, origin: usize) {
    let rows = src.len() / width.max(1);
    assert!(
        width > 0 && src.len() == rows * width && (rows == 0 || origin + (rows - 1) * pitch + width <= dst.len()),
        "pad_rows: lengths"
    );
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX-512F detected; the lengths asserted above.
        unsafe { avx512::pad_rows(src, width, dst, pitch, origin) };
        return;
    }
    for (r, row) in src.chunks_exact(width).enumerate() {
        dst[origin + r * pitch..][..width].copy_from_slice(row);
    }
}

/// `dst (plane x c)` = the transpose of `src (c x plane)`: channel-major to channels-last.
pub fn to_channels_last(src: &[f32], c: usize, dst: &mut [f32]) {
    let plane = src.len() / c;
    for (ch, row) in src.chunks_exact(plane).enumerate() {
        for (p, &v) in row.iter().enumerate() {
            dst[p * c + ch] = v;
        }
    }
}

/// `dst (c x plane)` = the transpose of `src (plane x c)`: channels-last to channel-major.
pub fn to_channels_first(src: &[f32], c: usize, dst: &mut [f32]) {
    let plane = src.len() / c;
    for (ch, row) in dst.chunks_exact_mut(plane).enumerate() {
        for (p, v) in row.iter_mut().enumerate() {
            *v = src[p * c + ch];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::at_every_level;
    use crate::rng::Rng;

    /// The plan reads the same window as a direct loop over a padded channel-major image, with
    /// the AVX-512 kernel and with the portable one.
    #[test]
    fn direct_convolution_matches_a_loop() {
        at_every_level(|_| direct_convolution_at_this_level());
    }

    fn direct_convolution_at_this_level() {
        for &(c, h, w, (kh, kw), (sh, sw), co) in &[
            (1, 6, 6, (3, 3), (1, 1), 16),
            (3, 7, 5, (3, 3), (2, 2), 48),
            (2, 5, 5, (2, 2), (2, 2), 32),
            (4, 4, 4, (1, 1), (1, 1), 48),
            (2, 15, 15, (3, 3), (2, 2), 32),
            // One-row images (a series' windows) under 1-D kernels, and a rectangle.
            (3, 1, 19, (1, 5), (1, 2), 16),
            (2, 6, 7, (2, 3), (2, 1), 32),
        ] {
            let out = ((h - kh) / sh + 1, (w - kw) / sw + 1);
            let plan = Plan::new(c, (h, w), (kh, kw), (sh, sw), out).unwrap();
            let mut rng = Rng::new(5);
            let x: Vec<f32> = (0..h * w * c).map(|_| rng.normal()).collect();
            let wt: Vec<f32> = (0..kh * kw * c * co).map(|_| rng.normal()).collect();
            let bias: Vec<f32> = (0..co).map(|_| rng.normal()).collect();
            let relu = co == 32;
            let mut y = vec![f32::NAN; out.0 * out.1 * co];
            plan.run(&x, &wt, &bias, relu, &mut y);
            for oy in 0..out.0 {
                for ox in 0..out.1 {
                    for o in 0..co {
                        let mut sum = f64::from(bias[o]);
                        for ky in 0..kh {
                            for kx in 0..kw {
                                for ch in 0..c {
                                    let t = (ky * kw + kx) * c + ch;
                                    let xv = x[((oy * sh + ky) * w + ox * sw + kx) * c + ch];
                                    sum += f64::from(xv) * f64::from(wt[t * co + o]);
                                }
                            }
                        }
                        if relu {
                            sum = sum.max(0.0);
                        }
                        let got = y[(oy * out.1 + ox) * co + o];
                        assert!(
                            (f64::from(got) - sum).abs() < 1e-4 * (1.0 + sum.abs()),
                            "{got} vs {sum}"
                        );
                    }
                }
            }
        }
        assert!(
            Plan::new(1, (4, 4), (3, 3), (1, 1), (3, 3)).is_none(),
            "a window past the image is refused"
        );
    }

    /// The tiled transposes (channel counts that are multiples of 16, partial tiles) give
    /// the plain loops' result.
    #[test]
    fn image_transposes_match_the_loops() {
        at_every_level(|_| image_transposes_at_this_level());
    }

    fn image_transposes_at_this_level() {
        for &(c, plane) in &[
            (16, 49),
            (32, 196),
            (48, 5),
            (16, 16),
            (3, 10),
            (20, 33),
            (17, 1),
            (32, 20),
            (21, 7),
        ] {
            let x: Vec<f32> = (0..2 * c * plane).map(|v| v as f32).collect();
            let mut last = vec![0.0; x.len()];
            transpose_images(&x, c * plane, c, &mut last, true);
            let mut want = vec![0.0; c * plane];
            to_channels_last(&x[c * plane..], c, &mut want);
            assert_eq!(&last[c * plane..], &want[..], "c {c} plane {plane}");
            let mut back = vec![0.0; x.len()];
            transpose_images(&last, c * plane, c, &mut back, false);
            assert_eq!(back, x, "c {c} plane {plane}");
        }
    }

    /// Rows land where the plain copies put them, the rest untouched, at every level.
    #[test]
    fn pad_rows_copies_each_row_into_place() {
        at_every_level(|_| {
            for &(width, rows, pitch, origin) in &[(28, 28, 30, 31), (1, 3, 2, 0), (16, 2, 16, 0), (37, 4, 40, 3)] {
                let src: Vec<f32> = (0..width * rows).map(|v| v as f32 + 1.0).collect();
                let len = origin + (rows - 1) * pitch + width + 5;
                let mut got = vec![-1.0; len];
                pad_rows(&src, width, &mut got, pitch, origin);
                let mut want = vec![-1.0; len];
                for (r, row) in src.chunks_exact(width).enumerate() {
                    want[origin + r * pitch..][..width].copy_from_slice(row);
                }
                assert_eq!(got, want, "width {width} rows {rows}");
            }
        });
    }

    #[test]
    fn layout_transposes_invert_each_other() {
        let x: Vec<f32> = (0..3 * 10).map(|v| v as f32).collect();
        let mut last = vec![0.0; 30];
        to_channels_last(&x, 3, &mut last);
        assert_eq!(&last[..4], &[0.0, 10.0, 20.0, 1.0]);
        let mut back = vec![0.0; 30];
        to_channels_first(&last, 3, &mut back);
        assert_eq!(back, x);
    }
}
