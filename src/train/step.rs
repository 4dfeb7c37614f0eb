//! One training step: the forward and backward pass over any stack of layers, with the
//! layers' regularizers and a loss head on top, in buffers sized once.

use crate::kernels::{Precision, ROW_BLOCK};
use crate::layer::gaussian::Draws;
use crate::layer::{Layer, PrevActivation};
use crate::loss::Loss;
use crate::regularize::{self, Regularizer};
use crate::tensor::argmax;
use rayon::prelude::*;

/// The loss at the top of the stack.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Head {
    /// Compare the output with target rows (the input itself, or paired targets).
    Reconstruction(Loss),
    /// Softmax over the output (the logits), cross-entropy with class indices.
    SoftmaxCrossEntropy,
}

/// What a step trains: the layers, the regularizer of each (active ones only) and the head.
#[derive(Clone, Copy)]
pub(crate) struct Net<'a> {
    pub layers: &'a [Layer],
    pub regs: &'a [Option<Regularizer>],
    pub head: Head,
}

/// Buffers for one training step, sized once for the largest batch.
pub(crate) struct Workspace {
    /// Reconstruction: the rows the loss compares with (the clean input, or the targets).
    /// Classification: the network's input.
    pub x: Vec<f32>,
    /// The network's input when it differs from `x` (corrupted, or paired with targets);
    /// empty otherwise.
    pub x_in: Vec<f32>,
    /// Class indices of the batch (classification).
    pub labels: Vec<usize>,
    acts: Vec<Vec<f32>>,
    pre: Vec<Vec<f32>>,
    dz: Vec<Vec<f32>>,
    /// Weight gradients per layer.
    pub dw: Vec<Vec<f32>>,
    /// Bias gradients per layer.
    pub db: Vec<Vec<f32>>,
    loss_blocks: Vec<f64>,
    /// What a layer's forward pass keeps for its backward pass (max-pooling argmax).
    aux: Vec<Vec<u32>>,
    /// What a recurrent layer's forward pass keeps (its gates and states at every step).
    cache: Vec<Vec<f32>>,
    /// Training buffers of the regularized layers.
    regs: Vec<Option<regularize::State>>,
    /// The draws of the Gaussian (variational) code layers.
    draws: Vec<Option<Draws>>,
    /// The sparse path of a top-k dictionary, where the network has its shape.
    sparse: Option<super::sparse::Sparse>,
}

impl Workspace {
    /// Buffers for `net` and batches of up to `batch` rows; `separate_input` when the network
    /// sees other rows than the loss compares with (noise, paired targets).
    pub fn new(net: Net<'_>, batch: usize, separate_input: bool) -> Self {
        let layers = net.layers;
        // IWAE: each row of data becomes `k` consecutive rows of the batch.
        let k = iwae_samples(net);
        let batch = batch * k;
        let (d_in, d_out) = (layers[0].n_in(), layers[layers.len() - 1].n_out());
        let last = layers.len() - 1;
        let keep_pre = |i: usize, l: &Layer| {
            l.activation().needs_preactivation()
                || (i == last
                    && matches!(net.head, Head::Reconstruction(loss) if loss.needs_output_preactivation(l.activation())))
        };
        let classes = net.head == Head::SoftmaxCrossEntropy;
        let sparse =
            super::sparse::Sparse::for_net(layers, net.regs).filter(|_| !classes && !keep_pre(last, &layers[last]));
        Workspace {
            sparse,
            x: vec![0.0; batch * if classes { d_in } else { d_out }],
            x_in: if separate_input {
                vec![0.0; batch * d_in]
            } else {
                Vec::new()
            },
            labels: if classes { vec![0; batch] } else { Vec::new() },
            acts: layers.iter().map(|l| vec![0.0; batch * l.n_out()]).collect(),
            pre: layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    if keep_pre(i, l) {
                        vec![0.0; batch * l.n_out()]
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
            dz: layers.iter().map(|l| vec![0.0; batch * l.n_out()]).collect(),
            dw: layers.iter().map(|l| vec![0.0; l.params().0.len()]).collect(),
            db: layers.iter().map(|l| vec![0.0; l.params().1.len()]).collect(),
            aux: layers.iter().map(|l| vec![0; batch * l.aux_len()]).collect(),
            cache: layers.iter().map(|l| vec![0.0; batch * l.cache_len()]).collect(),
            loss_blocks: vec![0.0; batch.div_ceil(ROW_BLOCK)],
            regs: layers
                .iter()
                .zip(net.regs)
                .map(|(l, r)| r.as_ref().map(|r| regularize::State::new(r, batch, l.n_out(), d_out)))
                .collect(),
            draws: layers
                .iter()
                .map(|l| {
                    matches!(l, Layer::Gaussian(_)).then(|| Draws {
                        eps: vec![0.0; batch * l.n_out()],
                        iwae: k,
                        ..Draws::default()
                    })
                })
                .collect(),
        }
    }

    /// The AuxK windows: a unit is dead after `rows` training rows without firing, where the
    /// regularizer does not set its own window.
    pub fn set_dead_window(&mut self, rows: usize) {
        for a in self.regs.iter_mut().flatten().filter_map(|s| s.aux.as_mut()) {
            if a.window == u64::MAX {
                a.window = rows as u64;
            }
        }
    }

    /// The AuxK firing counts (rows since each unit fired), every AuxK layer in order: what a
    /// checkpoint keeps.
    pub fn firing(&self) -> Vec<u64> {
        self.regs
            .iter()
            .flatten()
            .filter_map(|s| s.aux.as_ref())
            .flat_map(|a| a.since.iter().copied())
            .collect()
    }

    /// Restores [`Workspace::firing`]; false when `counts` does not fit.
    pub fn set_firing(&mut self, counts: &[u64]) -> bool {
        let mut rest = counts;
        for a in self.regs.iter_mut().flatten().filter_map(|s| s.aux.as_mut()) {
            if rest.len() < a.since.len() {
                return false;
            }
            let (mine, more) = rest.split_at(a.since.len());
            a.since.copy_from_slice(mine);
            rest = more;
        }
        rest.is_empty()
    }

    /// Turns the sparse path off (the dense path, for comparison).
    #[cfg(test)]
    pub fn dense_only(mut self) -> Self {
        self.sparse = None;
        self
    }

    /// Whether the step takes the sparse path.
    #[cfg(test)]
    pub fn is_sparse(&self) -> bool {
        self.sparse.is_some()
    }

    /// The activations of layer `l` for the last batch of `b` rows.
    #[cfg(test)]
    pub fn acts(&self, l: usize, b: usize, width: usize) -> &[f32] {
        &self.acts[l][..b * width]
    }
}

/// What one step measured.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepResult {
    /// Mean loss per row (the head's loss plus the regularizers' penalties).
    pub loss: f64,
    /// Rows classified right (classification).
    pub hits: usize,
}

/// The importance samples a row of data is trained with: a reconstruction's Gaussian code's
/// IWAE samples, else 1.
fn iwae_samples(net: Net<'_>) -> usize {
    let samples = net.layers.iter().find_map(|l| match l {
        Layer::Gaussian(g) => Some(g.prior.samples),
        _ => None,
    });
    match net.head {
        Head::Reconstruction(_) => samples.unwrap_or(1).max(1),
        Head::SoftmaxCrossEntropy => 1,
    }
}

/// IWAE: rows `0..b` of each buffer become `k` consecutive copies each (in place, last row
/// first, so no row is overwritten before it is copied).
fn replicate_rows(buffers: [&mut Vec<f32>; 2], b: usize, k: usize) {
    for v in buffers.into_iter().filter(|v| !v.is_empty()) {
        let d = v.len() / (b * k).max(1);
        for r in (0..b).rev() {
            for c in (0..k).rev() {
                v.copy_within(r * d..(r + 1) * d, (r * k + c) * d);
            }
        }
    }
}

/// One forward + backward pass on the first `b` rows of the workspace. Gradients of layers
/// below `lowest` are not computed (they are frozen). With the IWAE objective, each of the `b`
/// rows is copied `k` times first and the loss is the importance-weighted bound's.
pub(crate) fn forward_backward(
    net: Net<'_>,
    ws: &mut Workspace,
    b: usize,
    precision: Precision,
    step: &mut regularize::Step<'_>,
    lowest: usize,
) -> StepResult {
    let layers = net.layers;
    let d = layers[0].n_in();
    let n_layers = layers.len();
    let last = n_layers - 1;
    let d_out = layers[last].n_out();
    let k = iwae_samples(net);
    let b = if k > 1 {
        replicate_rows([&mut ws.x, &mut ws.x_in], b, k);
        b * k
    } else {
        b
    };
    let mut penalty = 0.0;
    for (l, layer) in layers.iter().enumerate() {
        // The network sees the corrupted batch when there is noise; the loss compares with ws.x.
        let x_in = if ws.x_in.is_empty() {
            &ws.x[..b * d]
        } else {
            &ws.x_in[..b * d]
        };
        let (before, after) = ws.acts.split_at_mut(l);
        let input = if l == 0 {
            x_in
        } else {
            &before[l - 1][..b * layer.n_in()]
        };
        let out = &mut after[0][..b * layer.n_out()];
        let pre = if ws.pre[l].is_empty() {
            None
        } else {
            Some(&mut ws.pre[l][..b * layer.n_out()])
        };
        let aux = &mut ws.aux[l][..b * layer.aux_len()];
        let cache = &mut ws.cache[l][..b * layer.cache_len()];
        match (layer, &mut ws.draws[l], &mut ws.sparse) {
            (Layer::Gaussian(g), Some(draws), _) => {
                let scale = 1.0 / (b * layers[last].n_out()) as f64;
                penalty += g.train_forward(input, out, draws, step.rng, step.epoch, scale);
            }
            (_, _, Some(sparse)) if l == last => sparse.decoder_forward(layer, input, out, b),
            _ => layer.forward(input, out, pre, (aux, cache), precision),
        }
        if let (Some(reg), Some(state)) = (&net.regs[l], &mut ws.regs[l]) {
            penalty += state.forward(reg, out, b, layer.n_out(), step);
        }
    }
    let (mut head_loss, hits) = match net.head {
        Head::Reconstruction(loss) => (reconstruction_head(layers, ws, b, loss), 0),
        Head::SoftmaxCrossEntropy => softmax_cross_entropy_head(ws, b, d_out),
    };
    if let (Head::Reconstruction(loss), true) = (net.head, k > 1) {
        head_loss = iwae_head(layers, ws, b, loss, step.epoch);
    }
    // AuxK: the dead units of a code right below the output reconstruct its residual.
    let aux_layer = net
        .regs
        .iter()
        .position(|r| r.as_ref().is_some_and(|r| r.auxk.is_some()));
    if let Some(c) = aux_layer.filter(|&c| c + 1 == last)
        && let (Some(reg), Some(state), Layer::Dense(dec)) = (&net.regs[c], &mut ws.regs[c], &layers[last])
    {
        let width = layers[c].n_out();
        let (h, y) = (&ws.acts[c][..b * width], &ws.acts[last][..b * d_out]);
        // The sparse path transposed the decoder's weight this step already.
        let atoms = ws.sparse.as_ref().map(super::sparse::Sparse::atoms);
        penalty += state.aux_loss(reg, h, &ws.x[..b * d_out], y, (&dec.weight, atoms), b, width);
    }
    let x_in = if ws.x_in.is_empty() {
        &ws.x[..b * d]
    } else {
        &ws.x_in[..b * d]
    };
    // Backward, top layer first.
    for l in (lowest..n_layers).rev() {
        let layer = &layers[l];
        let (dz_below, dz_here) = ws.dz.split_at_mut(l);
        let dz = &dz_here[0][..b * layer.n_out()];
        let input = if l == 0 {
            x_in
        } else {
            &ws.acts[l - 1][..b * layer.n_in()]
        };
        let dx = if l == lowest {
            None
        } else {
            let prev = &layers[l - 1];
            let n = b * prev.n_out();
            let z = if ws.pre[l - 1].is_empty() {
                None
            } else {
                Some(&ws.pre[l - 1][..n])
            };
            let h = &ws.acts[l - 1][..n];
            let (code, y) = match (&net.regs[l - 1], &ws.regs[l - 1]) {
                // The activation derivative needs the output before the mask.
                (Some(reg), Some(state)) => (Some(state.grad(reg, h, b)), state.unmasked(reg, h)),
                _ => (None, h),
            };
            Some((
                &mut dz_below[l - 1][..n],
                PrevActivation {
                    act: prev.activation(),
                    y,
                    z,
                    code,
                },
            ))
        };
        let kept = (&ws.aux[l][..b * layer.aux_len()], &ws.cache[l][..b * layer.cache_len()]);
        let sparse = ws
            .sparse
            .as_mut()
            .filter(|s| l == last || (l == s.code && dx.is_none()));
        match (layer, &ws.draws[l], dx, sparse) {
            (Layer::Gaussian(g), Some(draws), Some((dx, prev)), _) => g.train_backward(input, dz, draws, dx, &prev),
            (_, _, Some((dx, prev)), Some(s)) => s.decoder_backward(dz, &mut ws.dw[l], &mut ws.db[l], dx, &prev, b),
            (_, _, None, Some(s)) if l != last => s.code_weight_grad(dz, input, &mut ws.dw[l], &mut ws.db[l], b),
            (_, _, dx, _) => layer.backward(input, dz, &mut ws.dw[l], &mut ws.db[l], dx, kept, precision),
        }
    }
    if let Some(c) = aux_layer
        && let (Some(reg), Some(state)) = (&net.regs[c], &mut ws.regs[c])
        && let (Some(aux), Some(st)) = (reg.auxk, &mut state.aux)
    {
        st.add_weight_grad(&mut ws.dw[last], b, aux.k, layers[c].n_out());
    }
    StepResult {
        loss: head_loss + penalty,
        hits,
    }
}

/// IWAE: after the reconstruction head, the importance-weighted bound of the `b / k` rows of
/// data (each `k` consecutive rows): each row's output gradient is reweighted by its share of
/// its group's weight, and the Gaussian code gets its rows' coefficients. Returns the loss per
/// value of data (`−log p̂(x)` summed over the rows of data, over their count and width).
fn iwae_head(layers: &[Layer], ws: &mut Workspace, b: usize, loss: crate::loss::Loss, epoch: usize) -> f64 {
    let last = layers.len() - 1;
    let d_out = layers[last].n_out();
    let Some(g) = layers.iter().position(|l| matches!(l, Layer::Gaussian(_))) else {
        return 0.0;
    };
    let Layer::Gaussian(gauss) = &layers[g] else {
        unreachable!()
    };
    let Some(draws) = ws.draws[g].as_mut() else { return 0.0 };
    let k = draws.iwae;
    let (y, x) = (&ws.acts[last][..b * d_out], &ws.x[..b * d_out]);
    let log_lik: Vec<f64> = y
        .par_chunks(d_out)
        .zip(x.par_chunks(d_out))
        .map(|(y, x)| loss.log_likelihood(y, x))
        .collect();
    let scale = 1.0 / (b * d_out) as f64;
    let (total, factors) = gauss.iwae_weights(&log_lik, draws, epoch, scale);
    ws.dz[last][..b * d_out]
        .par_chunks_mut(d_out)
        .zip(factors.par_iter())
        .for_each(|(row, &f)| row.iter_mut().for_each(|v| *v *= f));
    total * k as f64 * scale
}

/// The reconstruction loss of the batch and its gradient with respect to the output
/// pre-activation, per block of rows; returns the mean loss per value.
fn reconstruction_head(layers: &[Layer], ws: &mut Workspace, b: usize, loss: Loss) -> f64 {
    let last = layers.len() - 1;
    let out_layer = &layers[last];
    let d_out = out_layer.n_out();
    let scale = 1.0 / (b * d_out) as f32;
    let (y, t) = (&ws.acts[last][..b * d_out], &ws.x[..b * d_out]);
    let z = if ws.pre[last].is_empty() {
        None
    } else {
        Some(&ws.pre[last][..b * d_out])
    };
    let n_blocks = b.div_ceil(ROW_BLOCK);
    ws.dz[last][..b * d_out]
        .par_chunks_mut(ROW_BLOCK * d_out)
        .zip(ws.loss_blocks[..n_blocks].par_iter_mut())
        .enumerate()
        .for_each(|(i, (dz, sum))| {
            let r = i * ROW_BLOCK * d_out..i * ROW_BLOCK * d_out + dz.len();
            *sum = loss.output_grad(
                out_layer.activation(),
                &y[r.clone()],
                &t[r.clone()],
                z.map(|z| &z[r]),
                scale,
                dz,
            );
        });
    let total: f64 = ws.loss_blocks[..n_blocks].iter().sum();
    total / (b * d_out) as f64
}

/// Softmax cross-entropy of the batch's logits (`c` classes) with its labels; the gradient
/// `(p - onehot) / b` goes to the output layer. Returns the mean loss per row and the hits.
fn softmax_cross_entropy_head(ws: &mut Workspace, b: usize, c: usize) -> (f64, usize) {
    let last = ws.acts.len() - 1;
    let g = &mut ws.dz[last][..b * c];
    g.copy_from_slice(&ws.acts[last][..b * c]);
    crate::layer::softmax::in_place(g, c, 1);
    let (mut loss, mut hits) = (0f64, 0usize);
    for (row, &y) in g.chunks_exact_mut(c).zip(&ws.labels[..b]) {
        loss -= f64::from(row[y].max(1e-30)).ln();
        if argmax(row) == y {
            hits += 1;
        }
        row[y] -= 1.0;
        row.iter_mut().for_each(|v| *v /= b as f32);
    }
    (loss / b as f64, hits)
}
