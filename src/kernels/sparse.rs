//! Sparse rows: a matrix's non-zero values by row (compressed sparse rows), regrouped by
//! column, and the products a sparse code needs — its atoms' sum per row and the weight
//! gradient per column. Every sum runs rows ascending, in parallel over rows or over columns
//! only, so the bits do not depend on the number of threads.

use super::multiversion;
use rayon::prelude::*;

/// Values of a sparse matrix grouped by row (or, after [`Sparse::by_column`], by column):
/// group `g` holds `entries[starts[g]..starts[g + 1]]`, each `(index, value)`, the index the
/// column (row) within the group, ascending.
#[derive(Clone, Debug, Default)]
pub struct Sparse {
    /// Offsets into `entries`, one more than the groups.
    pub starts: Vec<usize>,
    /// `(index, value)` of every value.
    pub entries: Vec<(u32, f32)>,
}

impl Sparse {
    /// Empties it for rows pushed with [`Sparse::push_row`].
    pub fn clear(&mut self) {
        self.starts.clear();
        self.starts.push(0);
        self.entries.clear();
    }

    /// Appends a row of `(column, value)` pairs (columns ascending).
    pub fn push_row(&mut self, row: impl IntoIterator<Item = (u32, f32)>) {
        self.entries.extend(row);
        self.starts.push(self.entries.len());
    }

    /// The non-zero values of the first `rows` rows of `m` (rows of `cols` values).
    pub fn fill_nonzero(&mut self, m: &[f32], rows: usize, cols: usize) {
        self.clear();
        for row in m[..rows * cols].chunks_exact(cols) {
            self.push_row(
                row.iter()
                    .enumerate()
                    .filter(|(_, v)| **v != 0.0)
                    .map(|(j, &v)| (j as u32, v)),
            );
        }
    }

    /// The groups (rows) held.
    pub fn groups(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// Group `g`'s entries.
    pub fn group(&self, g: usize) -> &[(u32, f32)] {
        &self.entries[self.starts[g]..self.starts[g + 1]]
    }

    /// The same values grouped by column (`cols` groups), rows ascending within each: a
    /// counting sort into `out`.
    pub fn by_column(&self, cols: usize, out: &mut Sparse) {
        out.starts.clear();
        out.starts.resize(cols + 1, 0);
        for &(j, _) in &self.entries {
            out.starts[j as usize + 1] += 1;
        }
        for j in 0..cols {
            out.starts[j + 1] += out.starts[j];
        }
        let mut next = out.starts[..cols].to_vec();
        out.entries.clear();
        out.entries.resize(self.entries.len(), (0, 0.0));
        for r in 0..self.groups() {
            for &(j, v) in self.group(r) {
                out.entries[next[j as usize]] = (r as u32, v);
                next[j as usize] += 1;
            }
        }
    }

    /// `out[g, :] = Σ_{(r, v) in group g} v · src[r, :]` for every group, rows of `d` values
    /// (group g's output row is zero when it has no entries).
    pub fn weighted_row_sums(&self, src: &[f32], d: usize, out: &mut [f32]) {
        out[..self.groups() * d]
            .par_chunks_mut(d)
            .enumerate()
            .for_each(|(g, o)| {
                o.fill(0.0);
                add_weighted_rows(o, self.group(g), src, 1.0);
            });
    }
}

multiversion! {
    /// `o += Σ_{(r, v) in entries} (sign · v) · src[r, :]`, rows of `o.len()` values, entries in
    /// order (`sign` ±1, exact).
    pub fn add_weighted_rows(o: &mut [f32], entries: &[(u32, f32)], src: &[f32], sign: f32) {
        let d = o.len();
        for &(r, v) in entries {
            let v = sign * v;
            let s = &src[r as usize * d..(r as usize + 1) * d];
            o.iter_mut().zip(s).for_each(|(o, s)| *o += v * s);
        }
    }
}

multiversion! {
    /// `g[j] = e · src[j, :]` for each `(j, _)` of `entries` (rows of `e.len()` values), each dot
    /// product in 16 interleaved partial sums added in a fixed order: the same bits at every
    /// SIMD level.
    pub fn row_dots(g: &mut [f32], entries: &[(u32, f32)], src: &[f32], e: &[f32]) {
        let d = e.len();
        for &(j, _) in entries {
            let s = &src[j as usize * d..(j as usize + 1) * d];
            let mut acc = [0f32; 16];
            let (ec, sc) = (e.chunks_exact(16), s.chunks_exact(16));
            let (er, sr) = (ec.remainder(), sc.remainder());
            for (a, b) in ec.zip(sc) {
                for i in 0..16 {
                    acc[i] += a[i] * b[i];
                }
            }
            for (i, (a, b)) in er.iter().zip(sr).enumerate() {
                acc[i] += a * b;
            }
            for half in [8, 4, 2, 1] {
                for i in 0..half {
                    acc[i] += acc[i + half];
                }
            }
            g[j as usize] = acc[0];
        }
    }
}

/// Writes the transpose of `m` (`rows × cols`, row-major) into `out` (`cols × rows`), or adds
/// it with `add`. Blocks of 16 output rows read 16 contiguous values of each input row.
pub fn transpose(m: &[f32], rows: usize, cols: usize, out: &mut [f32], add: bool) {
    const T: usize = 16;
    if rows == 0 {
        return;
    }
    out[..rows * cols]
        .par_chunks_mut(rows * T)
        .enumerate()
        .for_each(|(jb, o)| {
            let (j0, tj) = (jb * T, o.len() / rows);
            for i in 0..rows {
                for (t, &x) in m[i * cols + j0..i * cols + j0 + tj].iter().enumerate() {
                    let v = &mut o[t * rows + i];
                    *v = if add { *v + x } else { x };
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_regrouped_by_column_and_summed() {
        // 3 rows x 4 columns.
        let m = [0.0, 2.0, 0.0, 1.0, 3.0, 0.0, 0.0, 4.0, 0.0, 5.0, 0.0, 0.0];
        let mut rows = Sparse::default();
        rows.fill_nonzero(&m, 3, 4);
        assert_eq!(rows.group(1), &[(0, 3.0), (3, 4.0)]);
        let mut cols = Sparse::default();
        rows.by_column(4, &mut cols);
        assert_eq!(cols.groups(), 4);
        assert_eq!(cols.group(1), &[(0, 2.0), (2, 5.0)]);
        assert_eq!(cols.group(2), &[]);
        assert_eq!(cols.group(3), &[(0, 1.0), (1, 4.0)]);
        // out[j, :] = Σ_r m[r, j] src[r, :] (= mᵀ src).
        let src = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0];
        let mut out = vec![9.0; 8];
        cols.weighted_row_sums(&src, 2, &mut out);
        assert_eq!(out, vec![6.0, 60.0, 17.0, 170.0, 0.0, 0.0, 9.0, 90.0]);
        let mut t = vec![1.0; 12];
        transpose(&m, 3, 4, &mut t, true);
        assert_eq!(&t[..3], &[1.0, 4.0, 1.0]);
        transpose(&m, 3, 4, &mut t, false);
        assert_eq!(&t[3..6], &[2.0, 0.0, 5.0]);
    }

    /// The tiled transpose on sizes that are not multiples of its tile, and the row kernels at
    /// every SIMD level this machine runs: the same bits everywhere, close to f64 sums.
    #[test]
    fn transpose_and_row_kernels_on_awkward_sizes() {
        let mut rng = crate::rng::Rng::new(4);
        let (rows, cols) = (7, 37);
        let m: Vec<f32> = (0..rows * cols).map(|_| rng.normal()).collect();
        let mut t = vec![0.0; rows * cols];
        transpose(&m, rows, cols, &mut t, false);
        for i in 0..rows {
            for j in 0..cols {
                assert_eq!(t[j * rows + i], m[i * cols + j]);
            }
        }
        let d = 37;
        let src: Vec<f32> = (0..9 * d).map(|_| rng.normal()).collect();
        let e: Vec<f32> = (0..d).map(|_| rng.normal()).collect();
        let entries = [(1u32, 0.5f32), (4, -2.0), (8, 1.25)];
        let first: std::sync::Mutex<Option<(Vec<f32>, Vec<f32>)>> = std::sync::Mutex::new(None);
        crate::kernels::testing::at_every_level(|_| {
            let mut o = e.clone();
            add_weighted_rows(&mut o, &entries, &src, -1.0);
            let mut g = vec![0.0; 9];
            row_dots(&mut g, &entries, &src, &e);
            for (i, &v) in o.iter().enumerate() {
                let want = f64::from(e[i])
                    - entries
                        .iter()
                        .map(|&(r, w)| f64::from(w) * f64::from(src[r as usize * d + i]))
                        .sum::<f64>();
                assert!((f64::from(v) - want).abs() < 1e-5, "{v} vs {want}");
            }
            for &(j, _) in &entries {
                let want: f64 = (0..d)
                    .map(|i| f64::from(e[i]) * f64::from(src[j as usize * d + i]))
                    .sum();
                assert!(
                    (f64::from(g[j as usize]) - want).abs() < 1e-4,
                    "{} vs {want}",
                    g[j as usize]
                );
            }
            let mut first = first.lock().unwrap();
            match &*first {
                None => *first = Some((o, g)),
                Some((o0, g0)) => assert!(o0 == &o && g0 == &g),
            }
        });
    }
}
