//! The one array type: a row-major `f32` matrix whose rows are samples, owned ([`Matrix`]) or
//! borrowed ([`MatrixRef`]).
//!
//! Images are rows too: an image of shape (C, H, W) is one row of `C * H * W` values.

use crate::error::{Error, Result};

/// Owned row-major `f32` matrix: `rows` samples of `cols` features.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Matrix {
    /// A matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// Wraps `data` (row-major) as a `rows x cols` matrix.
    ///
    /// # Errors
    /// [`Error::Shape`] when `data.len() != rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::Shape {
                what: "Matrix::from_vec".into(),
                expected: format!("{rows} x {cols} = {} values", rows.saturating_mul(cols)),
                got: format!("{} values", data.len()),
            });
        }
        Ok(Matrix { rows, cols, data })
    }

    /// Builds a matrix from equally long rows.
    ///
    /// # Errors
    /// [`Error::Shape`] when the rows differ in length.
    pub fn from_rows<R: AsRef<[f32]>>(rows: &[R]) -> Result<Self> {
        let cols = rows.first().map_or(0, |r| r.as_ref().len());
        let mut data = Vec::with_capacity(rows.len() * cols);
        for (i, r) in rows.iter().enumerate() {
            let r = r.as_ref();
            if r.len() != cols {
                return Err(Error::Shape {
                    what: format!("row {i}"),
                    expected: format!("{cols} values"),
                    got: format!("{} values", r.len()),
                });
            }
            data.extend_from_slice(r);
        }
        Ok(Matrix {
            rows: rows.len(),
            cols,
            data,
        })
    }

    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// All values, row-major, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The values, row-major.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Row `i`.
    #[track_caller]
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i`, mutable.
    #[track_caller]
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Rows `start..end` as a new matrix.
    #[track_caller]
    pub fn slice_rows(&self, start: usize, end: usize) -> Matrix {
        Matrix {
            rows: end - start,
            cols: self.cols,
            data: self.data[start * self.cols..end * self.cols].to_vec(),
        }
    }

    /// The rows listed in `idx`, in that order.
    #[track_caller]
    pub fn select_rows(&self, idx: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            rows: idx.len(),
            cols: self.cols,
            data,
        }
    }

    /// Location of the first NaN or infinite value, as `(row, col)`.
    pub fn find_non_finite(&self) -> Option<(usize, usize)> {
        let i = self.data.iter().position(|v| !v.is_finite())?;
        Some((i / self.cols.max(1), i % self.cols.max(1)))
    }
}

impl Matrix {
    /// A borrowed view of the whole matrix.
    pub fn view(&self) -> MatrixRef<'_> {
        MatrixRef {
            rows: self.rows,
            cols: self.cols,
            data: &self.data,
        }
    }
}

/// A borrowed row-major `f32` matrix: a [`Matrix`], or a buffer that belongs to someone else
/// (a NumPy array's), read without a copy. Functions that only read rows take
/// `impl Into<MatrixRef>`, so `&Matrix` works as well.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatrixRef<'a> {
    rows: usize,
    cols: usize,
    data: &'a [f32],
}

impl<'a> MatrixRef<'a> {
    /// Views `data` (row-major) as a `rows x cols` matrix.
    ///
    /// # Errors
    /// [`Error::Shape`] when `data.len() != rows * cols`.
    pub fn new(rows: usize, cols: usize, data: &'a [f32]) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::Shape {
                what: "MatrixRef::new".into(),
                expected: format!("{rows} x {cols} = {} values", rows.saturating_mul(cols)),
                got: format!("{} values", data.len()),
            });
        }
        Ok(MatrixRef { rows, cols, data })
    }

    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }

    /// Row `i`.
    #[track_caller]
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// An owned copy.
    pub fn to_matrix(&self) -> Matrix {
        Matrix {
            rows: self.rows,
            cols: self.cols,
            data: self.data.to_vec(),
        }
    }

    /// The rows listed in `idx`, in that order.
    #[track_caller]
    pub fn select_rows(&self, idx: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            rows: idx.len(),
            cols: self.cols,
            data,
        }
    }

    /// Location of the first NaN or infinite value, as `(row, col)`.
    pub fn find_non_finite(&self) -> Option<(usize, usize)> {
        let i = self.data.iter().position(|v| !v.is_finite())?;
        Some((i / self.cols.max(1), i % self.cols.max(1)))
    }
}

impl<'a> From<&'a Matrix> for MatrixRef<'a> {
    fn from(m: &'a Matrix) -> Self {
        m.view()
    }
}

/// Rows borrowed as they came, or owned once they had to change (scaled, split).
#[derive(Clone, Debug)]
pub enum Rows<'a> {
    /// Read as given.
    Borrowed(MatrixRef<'a>),
    /// A changed copy.
    Owned(Matrix),
}

impl<'a> Rows<'a> {
    /// A view of the rows.
    pub fn view(&self) -> MatrixRef<'_> {
        match self {
            Rows::Borrowed(m) => *m,
            Rows::Owned(m) => m.view(),
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.view().rows()
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.view().cols()
    }

    /// The rows to change, copied on the first call.
    pub fn to_mut(&mut self) -> &mut Matrix {
        if let Rows::Borrowed(m) = self {
            *self = Rows::Owned(m.to_matrix());
        }
        match self {
            Rows::Owned(m) => m,
            Rows::Borrowed(_) => unreachable!("made owned above"),
        }
    }

    /// The rows, owned.
    pub fn into_owned(self) -> Matrix {
        match self {
            Rows::Borrowed(m) => m.to_matrix(),
            Rows::Owned(m) => m,
        }
    }
}

/// Index of the largest value of `row` (the first one on ties; 0 for an empty row).
pub fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |b, j| if row[j] > row[b] { j } else { b })
}
