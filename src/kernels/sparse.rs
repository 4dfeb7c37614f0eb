//! Sparse rows: a matrix's non-zero values by row (compressed sparse rows), regrouped by
//! column, and the products a sparse code needs — its atoms' sum per row and the weight
//! gradient per column. Every sum runs rows ascending, in parallel over rows or over columns
//! only, so the bits do not depend on the number of threads.

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
                for &(r, v) in self.group(g) {
                    let s = &src[r as usize * d..(r as usize + 1) * d];
                    o.iter_mut().zip(s).for_each(|(o, s)| *o += v * s);
                }
            });
    }
}

/// Writes the transpose of `m` (`rows × cols`, row-major) into `out` (`cols × rows`), or adds
/// it with `add`.
pub fn transpose(m: &[f32], rows: usize, cols: usize, out: &mut [f32], add: bool) {
    out[..rows * cols].par_chunks_mut(rows).enumerate().for_each(|(j, o)| {
        for (i, v) in o.iter_mut().enumerate() {
            let x = m[i * cols + j];
            *v = if add { *v + x } else { x };
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
}
