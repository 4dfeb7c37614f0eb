//! GEMM in fixed blocks of rows: each block is one sequential faer call (or AMX tiles for
//! bf16), blocks run in parallel, so results do not depend on the thread count.

use super::{Precision, ROW_BLOCK, amx};
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

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
        None if rows == 1 => one_row(c, lhs, rhs, r0, accumulate),
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
        for &(k, n) in &[(1, 1), (7, 3), (64, 17), (300, 65)] {
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
}
