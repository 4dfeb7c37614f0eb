//! GEMM in fixed blocks of rows: each block is one sequential faer call (or AMX tiles for
//! bf16), blocks run in parallel, so results do not depend on the thread count.

use super::{Bf16Unit, Precision, ROW_BLOCK, amx};
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// Row-major view of `data` as a `rows x cols` matrix.
pub fn view(data: &[f32], rows: usize, cols: usize) -> MatRef<'_, f32> {
    MatRef::from_row_major_slice(data, rows, cols)
}

/// One block of rows: `c (rows x n) (+)= lhs[r0 .. r0 + rows] * rhs`, on AMX when `packed`.
///
/// In f32 the block is computed in fixed chunks of [`COL_BLOCK`] output columns, each one
/// sequential faer call; the chunks run in parallel when the block is big enough to pay for
/// the tasks (a small batch has one block of rows, and this is its parallelism). The chunks
/// depend only on `n`, so a result depends neither on the thread count nor on the batch.
fn gemm_block(
    c: &mut [f32],
    lhs: MatRef<'_, f32>,
    rhs: MatRef<'_, f32>,
    r0: usize,
    accumulate: bool,
    packed: Option<&(Bf16Unit, amx::PackedB)>,
) {
    let (k, n) = (lhs.ncols(), rhs.ncols());
    let rows = c.len() / n;
    if let Some((unit, b)) = packed {
        // A product of one block of rows (a small batch, or the dW of a narrow layer) big
        // enough to pay for tasks runs in bands of BF16_BAND rows in parallel: this is its
        // parallelism. Every value is summed within one band, so bands change no result.
        if lhs.nrows() <= ROW_BLOCK && rows > BF16_BAND && rows * k * n >= PAR_MIN_MACS {
            return c.par_chunks_mut(BF16_BAND * n).enumerate().for_each(|(i, band)| {
                let lhs = lhs.subrows(r0 + i * BF16_BAND, band.len() / n);
                unit.matmul(band, lhs, b, accumulate)
            });
        }
        return unit.matmul(c, lhs.subrows(r0, rows), b, accumulate);
    }
    if n == 1 {
        return one_col(c, lhs, rhs, r0, accumulate);
    }
    let parallel = n > COL_BLOCK + 1 && rows * k * n >= PAR_MIN_MACS;
    if rows == 1 {
        let chunks = col_chunks(c, n, |c: &mut [f32], w| c.split_at_mut(w));
        return run(chunks, parallel, |(i, c): (usize, &mut [f32])| {
            one_row(c, lhs, rhs.subcols(i * COL_BLOCK, c.len()), r0, accumulate)
        });
    }
    let lhs = lhs.subrows(r0, rows);
    let chunks = col_chunks(MatMut::from_row_major_slice_mut(c, rows, n), n, |c, w| {
        c.split_at_col_mut(w)
    });
    run(chunks, parallel, |(i, c): (usize, MatMut<'_, f32>)| {
        let rhs = rhs.subcols(i * COL_BLOCK, c.ncols());
        let accum = if accumulate { Accum::Add } else { Accum::Replace };
        faer::linalg::matmul::matmul(c, accum, lhs, rhs, 1.0f32, Par::Seq)
    })
}

/// The bf16 unit and `rhs` packed for it, when `precision` runs in bf16 on this machine.
fn bf16_operand(precision: Precision, rhs: MatRef<'_, f32>) -> Option<(Bf16Unit, amx::PackedB)> {
    precision.bf16_unit().map(|unit| (unit, amx::PackedB::new(rhs)))
}

/// `chunk((index, chunk))` on each chunk, as parallel tasks or in order.
fn run<C: Send>(chunks: Vec<C>, parallel: bool, chunk: impl Fn((usize, C)) + Sync + Send) {
    if parallel {
        chunks.into_par_iter().enumerate().for_each(chunk)
    } else {
        chunks.into_iter().enumerate().for_each(chunk)
    }
}

/// `c` (`n` columns wide) split into chunks of [`COL_BLOCK`] columns, where a last single
/// column joins the chunk before it: faer multiplies by one column with a matrix-vector
/// kernel that sums in another order than its matrix-matrix kernel.
fn col_chunks<C>(c: C, n: usize, split: impl Fn(C, usize) -> (C, C)) -> Vec<C> {
    let mut chunks = Vec::with_capacity(n.div_ceil(COL_BLOCK));
    let (mut rest, mut width) = (c, n);
    while width > COL_BLOCK + 1 {
        let (left, right) = split(rest, COL_BLOCK);
        chunks.push(left);
        (rest, width) = (right, width - COL_BLOCK);
    }
    chunks.push(rest);
    chunks
}

/// Output columns per sequential GEMM call within a block of rows (see [`gemm_block`]).
pub const COL_BLOCK: usize = 64;

/// Rows per parallel band of a bf16 block of rows (see [`gemm_block`]): a multiple of the bf16
/// kernels' row blocks (8 for AVX512-BF16, 32 for AMX).
const BF16_BAND: usize = 32;

/// Multiply-adds in a block of rows from which its column chunks run as parallel tasks.
const PAR_MIN_MACS: usize = 1 << 18;

thread_local! {
    /// Two copies of one row of the left operand and of the output (see [`one_row`]).
    static ONE_ROW: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// A block of one row. faer multiplies a single row by a matrix-vector kernel that sums in
/// another order than its matrix-matrix kernel, so a row's result would depend on whether it
/// fell alone at the end of a batch; two copies of the row go through the matrix-matrix
/// kernel instead, and every row gets the same result in any block (the buffers are
/// per-thread and grow once).
fn one_row(c: &mut [f32], lhs: MatRef<'_, f32>, rhs: MatRef<'_, f32>, r0: usize, accumulate: bool) {
    let (k, n) = (lhs.ncols(), rhs.ncols());
    ONE_ROW.with(|bufs| {
        let (a, out) = &mut *bufs.borrow_mut();
        a.resize(2 * k, 0.0);
        out.resize(2 * n, 0.0);
        for j in 0..k {
            let v = lhs[(r0, j)];
            a[j] = v;
            a[k + j] = v;
        }
        if accumulate {
            out[..n].copy_from_slice(c);
            out[n..].copy_from_slice(c);
        }
        faer::linalg::matmul::matmul(
            MatMut::from_row_major_slice_mut(&mut out[..2 * n], 2, n),
            if accumulate { Accum::Add } else { Accum::Replace },
            view(&a[..2 * k], 2, k),
            rhs,
            1.0f32,
            Par::Seq,
        );
        c.copy_from_slice(&out[..n]);
    });
}

thread_local! {
    /// Two copies of the right operand's one column, and the output's (see [`one_col`]).
    static ONE_COL: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// A product with one output column. Like a lone row (see [`one_row`]), a lone column would
/// go through faer's matrix-vector kernel, whose sums depend on the number of rows; two
/// copies of the column go through the matrix-matrix kernel instead.
fn one_col(c: &mut [f32], lhs: MatRef<'_, f32>, rhs: MatRef<'_, f32>, r0: usize, accumulate: bool) {
    let (k, rows) = (lhs.ncols(), c.len());
    ONE_COL.with(|bufs| {
        let (b, out) = &mut *bufs.borrow_mut();
        b.resize(2 * k, 0.0);
        out.resize(2 * rows, 0.0);
        for j in 0..k {
            b[2 * j] = rhs[(j, 0)];
            b[2 * j + 1] = rhs[(j, 0)];
        }
        for (o, &v) in out.chunks_exact_mut(2).zip(c.iter()) {
            o.fill(v);
        }
        gemm_block(&mut out[..], lhs, view(&b[..], k, 2), r0, accumulate, None);
        for (v, o) in c.iter_mut().zip(out.chunks_exact(2)) {
            *v = o[0];
        }
    });
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
    let packed = bf16_operand(precision, rhs);
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

/// `dst (m x n) = lhs (m x k) * rhs (k x n)` (or `+=` when `accumulate`) as one sequential
/// GEMM, for callers that already run in parallel over fixed units (the convolutions, one
/// image at a time): no blocks, no tasks, and the result depends only on the shapes.
#[track_caller]
pub fn matmul_seq(dst: &mut [f32], lhs: MatRef<'_, f32>, rhs: MatRef<'_, f32>, accumulate: bool, precision: Precision) {
    check_gemm(dst.len(), lhs, rhs);
    if dst.is_empty() {
        return;
    }
    if let Some((unit, b)) = bf16_operand(precision, rhs) {
        return unit.matmul(dst, lhs, &b, accumulate);
    }
    let (m, n) = (lhs.nrows(), rhs.ncols());
    faer::linalg::matmul::matmul(
        MatMut::from_row_major_slice_mut(dst, m, n),
        if accumulate { Accum::Add } else { Accum::Replace },
        lhs,
        rhs,
        1.0f32,
        Par::Seq,
    );
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
    let packed = bf16_operand(precision, rhs);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::kernels::testing::{AWKWARD, random};
    use crate::rng::Rng;

    /// A row gets the same result alone (a block of one row) as inside a block of others, in
    /// plain and accumulating GEMMs, for plain and transposed operands.
    #[test]
    fn a_row_alone_gets_the_result_it_gets_among_others() {
        let mut rng = Rng::new(19);
        for &(k, n) in &[
            (1, 1),
            (7, 3),
            (64, 17),
            (300, 65),
            (300, 1),
            (300, 2),
            (300, 129),
            (2000, 200),
        ] {
            let a = random(9 * k, &mut rng);
            let b = random(k * n, &mut rng);
            let at = reference::transpose(&a, 9, k);
            for accumulate in [false, true] {
                for transposed in [false, true] {
                    let lhs = if transposed {
                        view(&at, k, 9).transpose()
                    } else {
                        view(&a, 9, k)
                    };
                    let mut all = vec![0.25; 9 * n];
                    matmul_rows(&mut all, lhs, view(&b, k, n), accumulate, Precision::F32, |_, _| {});
                    for r in 0..9 {
                        let mut one = vec![0.25; n];
                        matmul_rows(
                            &mut one,
                            lhs.subrows(r, 1),
                            view(&b, k, n),
                            accumulate,
                            Precision::F32,
                            |_, _| {},
                        );
                        assert_eq!(one, all[r * n..(r + 1) * n], "k {k} n {n} row {r}");
                    }
                }
            }
        }
    }

    /// Blocks big enough that their column chunks run as parallel tasks: the same bits on 1,
    /// 2 and 3 threads, for one row and for a small batch, and the right product.
    #[test]
    fn parallel_column_chunks_do_not_depend_on_the_thread_count() {
        let mut rng = Rng::new(23);
        for &(m, k, n) in &[(1, 2000, 200), (32, 300, 200), (5, 1000, 129)] {
            assert!(m * k * n >= PAR_MIN_MACS && n > COL_BLOCK);
            let (a, b) = (random(m * k, &mut rng), random(k * n, &mut rng));
            let run = |threads| {
                crate::with_threads(Some(threads), || {
                    let mut c = vec![0.5; m * n];
                    matmul_rows(&mut c, view(&a, m, k), view(&b, k, n), true, Precision::F32, |_, _| {});
                    c
                })
                .unwrap()
            };
            let one = run(1);
            assert_eq!(run(2), one, "{m}x{k}x{n}");
            assert_eq!(run(3), one, "{m}x{k}x{n}");
            let want = reference::matmul(&a, &b, m, k, n);
            for (g, w) in one.iter().zip(&want) {
                assert!(
                    (g - (w + 0.5)).abs() < 1e-5 * (k as f32).sqrt() + 1e-6,
                    "{m}x{k}x{n}: {g} vs {w}"
                );
            }
        }
    }

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

    #[test]
    fn matmul_matches_reference_on_awkward_sizes() {
        let mut rng = Rng::new(11);
        for &m in &AWKWARD {
            for &k in &[1, 7, 17, 64, 65] {
                for &n in &[1, 3, 16, 63, 64, 65, 129] {
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

    /// A bf16 product of one block of rows, large enough to run in parallel bands, gets the
    /// bits of the same product computed in one piece (and matches the reference).
    #[test]
    fn bf16_bands_change_no_result() {
        let Some(unit) = Precision::Bf16.bf16_unit() else {
            return;
        };
        let mut rng = Rng::new(4);
        let (m, k, n) = (100, 300, 90);
        assert!(m <= ROW_BLOCK && m > BF16_BAND && m * k * n >= PAR_MIN_MACS);
        let (a, b) = (random(m * k, &mut rng), random(k * n, &mut rng));
        let mut banded = vec![0.0; m * n];
        matmul_rows(
            &mut banded,
            view(&a, m, k),
            view(&b, k, n),
            false,
            Precision::Bf16,
            |_, _| {},
        );
        let mut whole = vec![0.0; m * n];
        unit.matmul(&mut whole, view(&a, m, k), &amx::PackedB::new(view(&b, k, n)), false);
        assert_eq!(banded, whole);
        for (g, w) in banded.iter().zip(reference::matmul_bf16(&a, &b, m, k, n)) {
            assert!((g - w).abs() < 1e-5 * (k as f32).sqrt() + 1e-6);
        }
    }

    #[test]
    fn bf16_matmul_matches_bf16_reference_on_awkward_sizes() {
        if !Precision::Bf16.uses_bf16() {
            // Without a bf16 unit, bf16 falls back to f32 GEMMs (covered above).
            assert!(Bf16Unit::here().is_none() || crate::kernels::level() != crate::kernels::Level::Avx512);
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
}
