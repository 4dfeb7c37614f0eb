//! The sparse path of a top-k dictionary: when a top-k code keeps few of its units (k ≤ width
//! / 4) and the layer above it is the dense, linear output layer, the decoder's forward and
//! backward and the code layer's weight gradient touch only the kept values.
//!
//! Dense GEMMs cost `width × d` a row for each of the decoder's forward, its weight gradient
//! and its input gradient, and `width × n_in` for the code layer's weight gradient; here they
//! cost `k × d` (or `k × n_in`). What the mask zeroes contributes nothing to either path, so
//! the results agree with the dense path's up to the order of the sums. Every sum runs in a
//! fixed order (rows ascending, units ascending), parallel over rows or over units only: the
//! same bits for any number of threads.

use crate::layer::{Layer, PrevActivation};
use rayon::prelude::*;

/// Buffers of the sparse path, sized once.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sparse {
    /// The code layer.
    pub code: usize,
    /// The kept code values by row: offsets into `by_row`, (batch + 1).
    row_starts: Vec<usize>,
    /// `(unit, value)` of each kept value, rows in order, units ascending within a row.
    by_row: Vec<(u32, f32)>,
    /// Non-zero values by unit: offsets into `by_unit`, (width + 1).
    unit_starts: Vec<usize>,
    /// `(row, value)` grouped by unit, rows ascending.
    by_unit: Vec<(u32, f32)>,
    /// The decoder's weight transposed, (width, d): each unit's atom contiguous.
    atoms: Vec<f32>,
    /// A weight gradient by unit, (width, d).
    datoms: Vec<f32>,
}

impl Sparse {
    /// The sparse path for `layers` when its shape allows it: the code layer `code` (regularized
    /// by `reg`) right below a dense, linear output layer, a top-k code of `k ≤ width / 4`
    /// without dropout or a straight-through binary code.
    pub fn for_net(layers: &[Layer], regs: &[Option<crate::regularize::Regularizer>]) -> Option<Sparse> {
        let last = layers.len().checked_sub(1)?;
        let code = last.checked_sub(1)?;
        let reg = regs[code].as_ref()?;
        let k = reg.topk?.k_max();
        let width = layers[code].n_out();
        let Layer::Dense(dec) = &layers[last] else {
            return None;
        };
        let plain = reg.dropout == 0.0 && reg.binary.is_none();
        let linear = dec.activation == crate::activation::Activation::Identity;
        (plain && linear && k.saturating_mul(4) <= width && matches!(layers[code], Layer::Dense(_))).then(|| Sparse {
            code,
            atoms: vec![0.0; width * dec.n_out],
            datoms: vec![0.0; width * dec.n_out],
            unit_starts: vec![0; width + 1],
            ..Sparse::default()
        })
    }

    /// The decoder's forward on the masked code `h` (`b` rows of `width`): `y = h Wᵀ + bias`,
    /// over the kept values only.
    pub fn decoder_forward(&mut self, dec: &Layer, h: &[f32], y: &mut [f32], b: usize) {
        let Layer::Dense(dec) = dec else {
            unreachable!("the sparse path's decoder is dense")
        };
        let (width, d) = (dec.n_in, dec.n_out);
        // Each unit's atom, contiguous.
        let w = &dec.weight;
        self.atoms
            .par_chunks_mut(d)
            .enumerate()
            .for_each(|(j, a)| a.iter_mut().enumerate().for_each(|(i, v)| *v = w[i * width + j]));
        self.row_starts.clear();
        self.row_starts.push(0);
        self.by_row.clear();
        for row in h[..b * width].chunks_exact(width) {
            self.by_row.extend(
                row.iter()
                    .enumerate()
                    .filter(|(_, v)| **v != 0.0)
                    .map(|(j, &v)| (j as u32, v)),
            );
            self.row_starts.push(self.by_row.len());
        }
        let (atoms, by_row, starts, bias) = (&self.atoms, &self.by_row, &self.row_starts, &dec.bias);
        y[..b * d].par_chunks_mut(d).enumerate().for_each(|(r, out)| {
            out.copy_from_slice(bias);
            for &(j, v) in &by_row[starts[r]..starts[r + 1]] {
                let atom = &atoms[j as usize * d..(j as usize + 1) * d];
                out.iter_mut().zip(atom).for_each(|(o, a)| *o += v * a);
            }
        });
    }

    /// The decoder's backward from `dz` (`b` rows of `d`): its weight gradient `dw` (d × width)
    /// and bias gradient `db`, and the gradient with respect to the code layer's pre-activation
    /// in `dx` (`b` rows of `width`), through `prev` (the code's mask and terms, then its
    /// activation derivative).
    pub fn decoder_backward(
        &mut self,
        dz: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
        dx: &mut [f32],
        prev: &PrevActivation<'_>,
        b: usize,
    ) {
        let d = db.len();
        let width = dw.len() / d.max(1);
        crate::kernels::column_sums(&dz[..b * d], db);
        self.group_by_unit(width, b);
        let (by_unit, starts) = (&self.by_unit, &self.unit_starts);
        self.datoms.par_chunks_mut(d).enumerate().for_each(|(j, g)| {
            g.fill(0.0);
            for &(r, v) in &by_unit[starts[j]..starts[j + 1]] {
                let e = &dz[r as usize * d..(r as usize + 1) * d];
                g.iter_mut().zip(e).for_each(|(g, e)| *g += v * e);
            }
        });
        let datoms = &self.datoms;
        dw.par_chunks_mut(width).enumerate().for_each(|(i, row)| {
            for (j, v) in row.iter_mut().enumerate() {
                *v = datoms[j * d + i];
            }
        });
        let (atoms, by_row, rstarts) = (&self.atoms, &self.by_row, &self.row_starts);
        dx[..b * width].par_chunks_mut(width).enumerate().for_each(|(r, g)| {
            g.fill(0.0);
            let e = &dz[r * d..(r + 1) * d];
            for &(j, _) in &by_row[rstarts[r]..rstarts[r + 1]] {
                let atom = &atoms[j as usize * d..(j as usize + 1) * d];
                g[j as usize] = e.iter().zip(atom).map(|(a, b)| a * b).sum();
            }
            prev.apply(g, r * width);
        });
    }

    /// The code layer's weight gradient `dw` (width × n_in) and bias gradient `db` from its
    /// pre-activation gradient `dz` (`b` rows of `width`, zero outside the kept values and the
    /// AuxK picks) and its input `x` (`b` rows of `n_in`).
    pub fn code_weight_grad(&mut self, dz: &[f32], x: &[f32], dw: &mut [f32], db: &mut [f32], b: usize) {
        let width = db.len();
        let n_in = dw.len() / width.max(1);
        crate::kernels::column_sums(&dz[..b * width], db);
        // The non-zero gradients by row, then by unit.
        self.row_starts.clear();
        self.row_starts.push(0);
        self.by_row.clear();
        for row in dz[..b * width].chunks_exact(width) {
            self.by_row.extend(
                row.iter()
                    .enumerate()
                    .filter(|(_, v)| **v != 0.0)
                    .map(|(j, &v)| (j as u32, v)),
            );
            self.row_starts.push(self.by_row.len());
        }
        self.group_by_unit(width, b);
        let (by_unit, starts) = (&self.by_unit, &self.unit_starts);
        dw.par_chunks_mut(n_in).enumerate().for_each(|(j, g)| {
            g.fill(0.0);
            for &(r, v) in &by_unit[starts[j]..starts[j + 1]] {
                let xr = &x[r as usize * n_in..(r as usize + 1) * n_in];
                g.iter_mut().zip(xr).for_each(|(g, x)| *g += v * x);
            }
        });
    }

    /// Regroups the by-row entries by unit, rows ascending (a counting sort).
    fn group_by_unit(&mut self, width: usize, b: usize) {
        self.unit_starts.clear();
        self.unit_starts.resize(width + 1, 0);
        for &(j, _) in &self.by_row {
            self.unit_starts[j as usize + 1] += 1;
        }
        for j in 0..width {
            self.unit_starts[j + 1] += self.unit_starts[j];
        }
        let mut next = self.unit_starts.clone();
        self.by_unit.clear();
        self.by_unit.resize(self.by_row.len(), (0, 0.0));
        for r in 0..b {
            for &(j, v) in &self.by_row[self.row_starts[r]..self.row_starts[r + 1]] {
                self.by_unit[next[j as usize]] = (r as u32, v);
                next[j as usize] += 1;
            }
        }
    }
}
