//! What a step does with its gradients: folds tied weights' and the pre-encoder bias's
//! gradients in, clips their norm, and has the optimizer step the layers that train, then
//! puts the weights' constraints back (max-norm rows, unit-norm atoms, tied copies).

use super::dictionary::{PreBias, remove_parallel_gradient, unit_norm_columns};
use super::step::Workspace;
use super::trainee::Trainee;
use crate::kernels;
use crate::layer::Layer;
use crate::optim::Optimizer;

/// The gradients of the layers from `lowest` up, made the optimizer's: a tied decoder's
/// gradient, transposed, joins its encoder's; the pre-encoder bias takes its share; the
/// global norm is clipped to `clip_norm`.
pub(super) fn prepare(t: &Trainee<'_>, ws: &mut Workspace, pre_bias: bool, clip_norm: Option<f32>, lowest: usize) {
    for &(e, dl) in &t.tied {
        let (n_in, n_out) = (t.layers[e].n_in(), t.layers[e].n_out());
        let (lo, hi) = ws.dw.split_at_mut(dl);
        let (g, gt) = (&mut lo[e], &hi[0]);
        for o in 0..n_out {
            for i in 0..n_in {
                g[o * n_in + i] += gt[i * n_out + o];
            }
        }
        hi[0].fill(0.0);
    }
    if pre_bias {
        let (dc, db) = ws.db.split_at_mut(1);
        PreBias::correct(t.layers, &mut ws.dw[0], &dc[0], &mut db[0]);
    }
    if let Some(max) = clip_norm {
        let norm = ws.dw[lowest..]
            .iter()
            .chain(&ws.db[lowest..])
            .map(|g| kernels::sum_squares(g))
            .sum::<f64>()
            .sqrt();
        if norm > max as f64 {
            let s = (max as f64 / norm) as f32;
            ws.dw[lowest..]
                .iter_mut()
                .chain(ws.db[lowest..].iter_mut())
                .for_each(|g| kernels::scale_in_place(g, s));
        }
    }
}

/// The weights' constraints that every update keeps.
pub(super) struct Constraints<'a> {
    /// Rows of each layer's weights capped at this norm.
    pub max_norm: Option<f32>,
    /// The dictionary layer whose columns (atoms) stay at unit norm.
    pub atoms: Option<usize>,
    /// The learned pre-encoder bias, folded back into the layers after each update.
    pub pre_bias: Option<&'a mut PreBias>,
}

/// One optimizer step at learning rate `lr` on the layers from `lowest` up (a tied decoder's
/// weights follow its encoder's), then `keep`'s constraints.
pub(super) fn apply(
    t: &mut Trainee<'_>,
    ws: &mut Workspace,
    opt: &mut Optimizer,
    lr: f32,
    lowest: usize,
    keep: Constraints<'_>,
) {
    if let Some(l) = keep.atoms {
        remove_parallel_gradient(&t.layers[l], &mut ws.dw[l]);
    }
    opt.begin_step();
    let mut tensors = Vec::with_capacity(2 * t.layers.len());
    for (l, layer) in t.layers.iter_mut().enumerate().skip(lowest) {
        let (weight, bias) = layer.params_mut();
        let k = 2 * (l - lowest);
        if !t.tied.iter().any(|&(_, dl)| dl == l) {
            tensors.push((k, weight, &ws.dw[l][..], true));
        }
        tensors.push((k + 1, bias, &ws.db[l][..], false));
    }
    opt.update_all(tensors, lr);
    if let Some(c) = keep.max_norm {
        for layer in t.layers.iter_mut().skip(lowest) {
            if let Some(n_in) = layer.unit_rows() {
                kernels::max_norm_rows(layer.params_mut().0, n_in, c);
            }
        }
    }
    if let Some(l) = keep.atoms {
        unit_norm_columns(&mut t.layers[l]);
    }
    crate::model::sync_tied(t.layers, &t.tied);
    if let Some(p) = keep.pre_bias {
        p.refold(t.layers);
    }
}

/// The optimizer for the layers from `lowest` up (one made anew when the freeze schedule's
/// phase changes).
pub(super) fn optimizer_for(kind: crate::optim::OptimizerConfig, layers: &[Layer], lowest: usize) -> Optimizer {
    let sizes: Vec<usize> = layers[lowest..]
        .iter()
        .flat_map(|l| [l.params().0.len(), l.params().1.len()])
        .collect();
    Optimizer::new(kind, &sizes)
}
