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

use crate::kernels::sparse::{Sparse as Entries, row_dots, transpose};
use crate::layer::{Layer, PrevActivation};
use rayon::prelude::*;

/// Buffers of the sparse path, sized once.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sparse {
    /// The code layer.
    pub code: usize,
    /// The kept code values (or the code's non-zero gradients) by row, then by unit.
    rows: Entries,
    units: Entries,
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
            ..Sparse::default()
        })
    }

    /// The decoder's weight transposed by the last [`Sparse::decoder_forward`], (width, d).
    pub fn atoms(&self) -> &[f32] {
        &self.atoms
    }

    /// The decoder's forward on the masked code `h` (`b` rows of `width`): `y = h Wᵀ + bias`,
    /// over the kept values only.
    pub fn decoder_forward(&mut self, dec: &Layer, h: &[f32], y: &mut [f32], b: usize) {
        let Layer::Dense(dec) = dec else {
            unreachable!("the sparse path's decoder is dense")
        };
        let (width, d) = (dec.n_in, dec.n_out);
        transpose(&dec.weight, d, width, &mut self.atoms, false);
        self.rows.fill_nonzero(h, b, width);
        self.rows.weighted_row_sums(&self.atoms, d, y);
        let bias = &dec.bias;
        y[..b * d]
            .par_chunks_mut(d)
            .for_each(|out| out.iter_mut().zip(bias).for_each(|(o, b)| *o += b));
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
        self.rows.by_column(width, &mut self.units);
        self.units.weighted_row_sums(&dz[..b * d], d, &mut self.datoms);
        transpose(&self.datoms, width, d, dw, false);
        let (atoms, rows) = (&self.atoms, &self.rows);
        dx[..b * width].par_chunks_mut(width).enumerate().for_each(|(r, g)| {
            g.fill(0.0);
            row_dots(g, rows.group(r), atoms, &dz[r * d..(r + 1) * d]);
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
        self.rows.fill_nonzero(dz, b, width);
        self.rows.by_column(width, &mut self.units);
        self.units.weighted_row_sums(&x[..b * n_in], n_in, dw);
    }
}
