//! AuxK (Gao et al. 2024, "Scaling and evaluating sparse autoencoders"): an auxiliary loss
//! that revives the dead units of a sparse code.
//!
//! A unit is *dead* when it has not fired (a non-zero value after the top-k mask) on any of
//! the last `window` training rows. Each row's `k` largest dead units (by their value before
//! the mask) then reconstruct what the model leaves unexplained, `e = x − x̂`, through the
//! decoder's weights without its bias: `ê = W_dec z_aux`. The loss `α · Σ ‖e − ê‖² / (b · d)`
//! (the main MSE's units) moves the dead units' encoder and decoder weights toward the
//! residual, where they can win a top-k place again; `e` is held fixed (its gradient is not
//! taken), so the model's own reconstruction is not pulled toward the auxiliary one.
//!
//! It needs the sparse dictionary's shape: the code layer right below a dense, linear output
//! layer trained with MSE (the trainer checks this).

use crate::kernels::sparse::{Sparse, add_weighted_rows, row_dots, transpose};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The AuxK loss settings of a code layer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuxK {
    /// Dead units used per row (the paper: half the input width, a power of two).
    pub k: usize,
    /// The loss weight (the paper: 1/32).
    #[serde(default = "default_alpha")]
    pub alpha: f32,
    /// Training rows without firing after which a unit counts as dead; `None`: one epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
}

fn default_alpha() -> f32 {
    1.0 / 32.0
}

impl AuxK {
    /// `k` dead units per row, weight 1/32, a window of one epoch.
    pub fn new(k: usize) -> Self {
        AuxK {
            k,
            alpha: default_alpha(),
            window: None,
        }
    }

    /// Checks the settings for a code of `width` units.
    ///
    /// # Errors
    /// A message naming the bad value.
    pub fn validate(&self, width: usize) -> Result<(), String> {
        if !(1..=width).contains(&self.k) {
            return Err(format!("auxk needs 1 <= k <= width {width}, got {}", self.k));
        }
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return Err(format!("auxk-alpha must be >= 0, got {}", self.alpha));
        }
        if self.window == Some(0) {
            return Err("auxk-window must be at least 1 row".into());
        }
        Ok(())
    }
}

impl fmt::Display for AuxK {
    /// `auxk 16 (alpha 0.03125, dead after 1 epoch)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "auxk {} (alpha {}, dead after ", self.k, self.alpha)?;
        match self.window {
            Some(n) => write!(f, "{n} rows without firing)"),
            None => f.write_str("an epoch without firing)"),
        }
    }
}

/// No unit picked (a row with fewer dead units than k).
const NONE: u32 = u32::MAX;

/// The AuxK buffers of one code layer, sized once for the largest batch.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuxState {
    /// Training rows since each unit last fired.
    pub since: Vec<u64>,
    /// Rows without firing after which a unit is dead.
    pub window: u64,
    /// The dead units of the current step.
    dead: Vec<u32>,
    /// Whether each unit fired in the current batch.
    fired: Vec<bool>,
    /// Each row's picks, `k` per row: `(unit, value)`, [`NONE`] for none.
    picks: Vec<(u32, f32)>,
    /// The loss's gradient with respect to `ê`, (batch, d).
    resid: Vec<f32>,
    /// The loss's gradient with respect to the code, (batch, width): non-zero on the picks.
    pub grad: Vec<f32>,
    /// The decoder's weight transposed, (width, d): each unit's atom contiguous (made here
    /// only when the caller has none).
    atoms: Vec<f32>,
    /// The picks by row, then by unit.
    rows: Sparse,
    units: Sparse,
    /// The weight gradient by unit, (width, d).
    datoms: Vec<f32>,
    /// Whether this step had dead units (else the loss and its gradients are zero).
    pub active: bool,
}

impl AuxState {
    /// Buffers for batches of up to `rows` rows of `width` units and outputs of `d` values.
    pub fn new(aux: &AuxK, rows: usize, width: usize, d: usize) -> Self {
        AuxState {
            since: vec![0; width],
            window: aux.window.map_or(u64::MAX, |w| w as u64),
            dead: Vec::with_capacity(width),
            fired: vec![false; width],
            picks: vec![(NONE, 0.0); rows * aux.k],
            resid: vec![0.0; rows * d],
            grad: vec![0.0; rows * width],
            atoms: Vec::new(),
            rows: Sparse::default(),
            units: Sparse::default(),
            datoms: vec![0.0; width * d],
            active: false,
        }
    }

    /// Counts the firing of the batch's masked code `h` (`b` rows of `width`).
    pub fn observe(&mut self, h: &[f32], b: usize, width: usize) {
        self.fired.clear();
        self.fired.resize(width, false);
        let fired = &mut self.fired;
        for row in h.chunks_exact(width).take(b) {
            for (f, &v) in fired.iter_mut().zip(row) {
                *f |= v != 0.0;
            }
        }
        for (s, &f) in self.since.iter_mut().zip(fired.iter()) {
            *s = if f { 0 } else { s.saturating_add(b as u64) };
        }
    }

    /// The loss of a batch of `b` rows: `raw` the code before its mask (b × width), `x` the
    /// targets and `y` the output (b × d), `w` the decoder's weight (d × width, row-major) and
    /// `atoms` its transpose when the caller already made it this step (the sparse path does).
    /// Fills the gradients [`AuxState::grad`] and [`AuxState::add_weight_grad`] use.
    #[allow(clippy::too_many_arguments)]
    pub fn loss(
        &mut self,
        aux: &AuxK,
        raw: &[f32],
        x: &[f32],
        y: &[f32],
        (w, atoms): (&[f32], Option<&[f32]>),
        b: usize,
        width: usize,
    ) -> f64 {
        let d = x.len() / b.max(1);
        self.dead.clear();
        self.dead
            .extend((0..width as u32).filter(|&j| self.since[j as usize] >= self.window));
        self.active = !self.dead.is_empty() && aux.alpha > 0.0;
        if !self.active {
            return 0.0;
        }
        // Each unit's atom, contiguous.
        let atoms = match atoms {
            Some(a) => a,
            None => {
                self.atoms.resize(width * d, 0.0);
                transpose(w, d, width, &mut self.atoms, false);
                &self.atoms
            }
        };
        let (k, dead) = (aux.k, &self.dead);
        let scale = 2.0 * aux.alpha / (b * d) as f32;
        let grad = &mut self.grad[..b * width];
        let sums: Vec<f64> = self.picks[..b * k]
            .par_chunks_mut(k)
            .zip(self.resid[..b * d].par_chunks_mut(d))
            .zip(grad.par_chunks_mut(width))
            .enumerate()
            .map_init(Vec::new, |order, (r, ((picks, resid), g))| {
                let z = &raw[r * width..(r + 1) * width];
                // The k largest dead units of the row (ties: the lower index).
                // (Values gathered next to their units: the selection compares them in place.)
                order.clear();
                order.extend(dead.iter().map(|&j| (j, z[j as usize])));
                let kk = k.min(order.len());
                if kk < order.len() {
                    order.select_nth_unstable_by(kk, |a: &(u32, f32), c| c.1.total_cmp(&a.1).then(a.0.cmp(&c.0)));
                }
                order.truncate(kk);
                order.sort_unstable_by_key(|p| p.0);
                picks.fill((NONE, 0.0));
                picks[..kk].copy_from_slice(order);
                // e − ê, the loss, then dL/dê = −2α (e − ê) / (b d).
                let (xr, yr) = (&x[r * d..(r + 1) * d], &y[r * d..(r + 1) * d]);
                resid
                    .iter_mut()
                    .zip(xr.iter().zip(yr))
                    .for_each(|(e, (a, b))| *e = a - b);
                let picked = &picks[..picks.iter().take_while(|p| p.0 != NONE).count()];
                add_weighted_rows(resid, picked, atoms, -1.0);
                let sse: f64 = resid.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
                resid.iter_mut().for_each(|v| *v *= -scale);
                // dL/dz_j = Σ_i dL/dê_i W[i, j], on the picks only.
                g.fill(0.0);
                row_dots(g, picked, atoms, resid);
                sse
            })
            .collect();
        f64::from(aux.alpha) * sums.iter().sum::<f64>() / (b * d) as f64
    }

    /// Adds the loss's gradient with respect to the decoder's weight (d × width) to `dw`:
    /// `dW[i, j] += Σ_rows dL/dê_i z_j` over each row's picks, rows in order.
    pub fn add_weight_grad(&mut self, dw: &mut [f32], b: usize, k: usize, width: usize) {
        if !self.active {
            return;
        }
        let d = dw.len() / width;
        self.rows.clear();
        for p in self.picks[..b * k].chunks_exact(k) {
            self.rows.push_row(p.iter().take_while(|p| p.0 != NONE).copied());
        }
        self.rows.by_column(width, &mut self.units);
        self.units.weighted_row_sums(&self.resid[..b * d], d, &mut self.datoms);
        transpose(&self.datoms, width, d, dw, true);
    }
}
