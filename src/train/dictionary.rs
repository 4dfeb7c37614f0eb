//! What the training loop does for sparse dictionaries, beside the loop itself: the checks of
//! the dictionary's shape (AuxK, unit-norm atoms), BatchTopK's threshold calibration, the tied
//! initialization and centring, and the atoms' normalization and gradient projection.

use super::step::Head;
use crate::activation::Activation;
use crate::dist::Team;
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::loss::Loss;
use crate::regularize::{self, Regularizer};
use crate::tensor::MatrixRef;

/// The AuxK loss needs the sparse dictionary's shape: its code layer right below a dense,
/// linear output layer trained with MSE.
pub(super) fn check_auxk(layers: &[Layer], regs: &[Option<Regularizer>], head: Head) -> Result<()> {
    let n = layers.len();
    for (l, r) in regs.iter().enumerate() {
        let Some(aux) = r.as_ref().and_then(|r| r.auxk) else {
            continue;
        };
        let bad = |why: String| Err(Error::setting("auxk", aux.k, why));
        if l + 2 != n {
            return bad(format!(
                "the AuxK loss reconstructs the residual through the layer above its code: layer {l} must be right below the output layer {}",
                n - 1
            ));
        }
        let out = &layers[n - 1];
        if !matches!(out, Layer::Dense(_)) || out.activation() != Activation::Identity {
            return bad(format!(
                "the output layer must be dense and linear (a dictionary), not {} {}",
                out.kind(),
                out.activation()
            ));
        }
        if head != Head::Reconstruction(Loss::Mse) {
            return bad("the AuxK loss is a squared error: it needs the mse loss".into());
        }
    }
    Ok(())
}

/// BatchTopK: sets each batch top-k layer's inference threshold from the codes of the
/// training sample, before the mask (rank 0's threshold, on every rank).
pub(super) fn calibrate(
    layers: &[Layer],
    regs: &mut [Option<Regularizer>],
    sample: MatrixRef<'_>,
    team: &mut Team<'_>,
) -> Result<()> {
    for l in 0..regs.len() {
        let Some(k) = regs[l].as_ref().and_then(|r| r.topk).filter(|k| k.batch).map(|k| k.k) else {
            continue;
        };
        let rules = &*regs;
        let raw = crate::infer::forward(layers, |i| rules[i].as_ref().filter(|_| i != l), sample, 0..l + 1);
        let mut theta = [regularize::batch_threshold(raw.as_slice(), k * raw.rows()).unwrap_or(0.0)];
        if team.ranks() > 1 {
            team.comm.broadcast_f32(&mut theta)?;
        }
        if let Some(top) = regs[l].as_mut().and_then(|r| r.topk.as_mut()) {
            top.threshold = Some(theta[0]);
        }
    }
    Ok(())
}

/// The first decoder layer, whose columns are the code units' dictionary atoms: a dense layer
/// right above the `code` layer, not among the `tied` `(encoder, decoder)` pairs.
pub(super) fn dictionary_layer(
    layers: &[Layer],
    code: Option<usize>,
    tied: &[(usize, usize)],
    setting: &'static str,
) -> Result<usize> {
    let bad = |why: &str| Err(Error::setting(setting, true, why));
    let Some(code) = code else {
        return bad("it sets the columns of an autoencoder's decoder");
    };
    let l = code + 1;
    if !matches!(layers.get(l), Some(Layer::Dense(_))) {
        return bad("the layer above the code must be dense (its columns are the atoms)");
    }
    if tied.iter().any(|&(_, d)| d == l) {
        return bad("a tied decoder is the encoder's transpose; untie it to normalize its columns");
    }
    Ok(l)
}

/// The tied initialization of a dictionary: decoder layer `l`'s column j becomes row j of the
/// code layer `l − 1` (its encoder weights), scaled to unit norm (a zero row stays zero).
pub(crate) fn tied_init(layers: &mut [Layer], l: usize) -> std::result::Result<(), String> {
    let (lo, hi) = layers.split_at_mut(l);
    let (Layer::Dense(enc), Layer::Dense(dec)) = (&lo[l - 1], &mut hi[0]) else {
        return Err("the code layer and the layer above it must be dense".into());
    };
    let (d, width) = (enc.n_in, dec.n_in);
    if dec.weight.len() != d * width {
        return Err(format!(
            "the decoder's first layer must map the code's {width} units back to the encoder's {d} inputs"
        ));
    }
    for (j, row) in enc.weight.chunks_exact(d).enumerate() {
        let norm = row.iter().map(|&w| f64::from(w) * f64::from(w)).sum::<f64>().sqrt();
        let s = if norm > 0.0 { (1.0 / norm) as f32 } else { 0.0 };
        for (i, &w) in row.iter().enumerate() {
            dec.weight[i * width + j] = w * s;
        }
    }
    Ok(())
}

/// Starts a dictionary (code layer `l − 1`, decoder layer `l`) at the mean row `m` of `rows`:
/// the decoder's bias becomes `m` and the code layer's bias `−W m`, so that the code starts
/// from the centred rows, `W (x − m)`, as sparse dictionary trainers' pre-encoder bias does. A
/// one-layer dictionary (the decoder's output is the code layer's input) only.
pub(crate) fn center_dictionary(layers: &mut [Layer], l: usize, rows: MatrixRef<'_>) {
    let (lo, hi) = layers.split_at_mut(l);
    let (Layer::Dense(enc), Layer::Dense(dec)) = (&mut lo[l - 1], &mut hi[0]) else {
        return;
    };
    if l != 1 || dec.n_out != enc.n_in || rows.cols() != enc.n_in || rows.rows() == 0 {
        return;
    }
    let mut mean = vec![0f64; enc.n_in];
    for r in 0..rows.rows() {
        for (m, &v) in mean.iter_mut().zip(rows.row(r)) {
            *m += f64::from(v);
        }
    }
    let mean: Vec<f32> = mean.iter().map(|m| (m / rows.rows() as f64) as f32).collect();
    dec.bias.copy_from_slice(&mean);
    for (b, row) in enc.bias.iter_mut().zip(enc.weight.chunks_exact(enc.n_in)) {
        *b = -row
            .iter()
            .zip(&mean)
            .map(|(w, m)| f64::from(*w) * f64::from(*m))
            .sum::<f64>() as f32;
    }
}

/// Removes from each column of a unit-norm dictionary's weight gradient `dw` its component
/// along the atom itself (`g ← g − (g·w) w`): a step then turns the atom instead of changing its
/// length, which the renormalization would undo. Sums in f64, rows in order: deterministic.
pub(crate) fn remove_parallel_gradient(layer: &Layer, dw: &mut [f32]) {
    let Layer::Dense(d) = layer else { return };
    let n_in = d.n_in;
    let mut dots = vec![0f64; n_in];
    for (g, w) in dw.chunks_exact(n_in).zip(d.weight.chunks_exact(n_in)) {
        for ((s, &g), &w) in dots.iter_mut().zip(g).zip(w) {
            *s += f64::from(g) * f64::from(w);
        }
    }
    let dots: Vec<f32> = dots.iter().map(|&s| s as f32).collect();
    for (g, w) in dw.chunks_exact_mut(n_in).zip(d.weight.chunks_exact(n_in)) {
        for ((g, &w), &s) in g.iter_mut().zip(w).zip(&dots) {
            *g -= s * w;
        }
    }
}

/// Rescales each column of a dense layer's weight (`(n_out, n_in)`, row-major) to unit L2
/// norm (a zero column stays zero). Sums in f64, rows in order: deterministic.
pub(crate) fn unit_norm_columns(layer: &mut Layer) {
    let Layer::Dense(d) = layer else { return };
    let n_in = d.n_in;
    let mut norms = vec![0f64; n_in];
    for row in d.weight.chunks_exact(n_in) {
        for (n, &w) in norms.iter_mut().zip(row) {
            *n += f64::from(w) * f64::from(w);
        }
    }
    let scale: Vec<f32> = norms
        .iter()
        .map(|&n| if n > 0.0 { (1.0 / n.sqrt()) as f32 } else { 1.0 })
        .collect();
    for row in d.weight.chunks_exact_mut(n_in) {
        for (w, s) in row.iter_mut().zip(&scale) {
            *w *= s;
        }
    }
}

/// A learned pre-encoder bias, as sparse dictionary trainers (sparsify, SAELens) train one: the
/// code is `W (x − b) + c` where `b` is the decoder's output bias, so `b` is trained by both the
/// reconstruction and the encoder. The model keeps only what inference needs, the folded code
/// bias `c − W b` in the code layer; the step corrects the gradients of that parameterization to
/// those of `(W, c, b)`, and after the optimizer's step it refolds the bias with the new `W b`
/// (the optimizer's state is that of `(W, c, b)`, as the gradients are). A one-layer dense
/// dictionary only (layer 0 the code, layer 1 its decoder back to the input).
pub(crate) struct PreBias {
    /// `W b` as the code layer's bias holds it folded in.
    folded: Vec<f64>,
}

impl PreBias {
    /// Checks the dictionary's shape and reads the `W b` folded into the code layer's bias.
    pub(crate) fn new(layers: &[Layer], code: Option<usize>, head: Head) -> Result<Self> {
        let bad = |why: &str| Err(Error::setting("pre_bias", true, why));
        if code != Some(0) || layers.len() != 2 || !matches!(head, Head::Reconstruction(_)) {
            return bad(
                "a pre-encoder bias needs a one-layer dictionary: an autoencoder whose only encoder layer is the code",
            );
        }
        let (Layer::Dense(enc), Layer::Dense(dec)) = (&layers[0], &layers[1]) else {
            return bad("the code layer and its decoder must be dense");
        };
        if dec.n_out != enc.n_in {
            return bad("the decoder must map the code back to the input");
        }
        Ok(PreBias {
            folded: Self::product(layers),
        })
    }

    /// `W b`: the code layer's weight times the decoder's bias, in f64, inputs in order.
    fn product(layers: &[Layer]) -> Vec<f64> {
        let (w, b) = (layers[0].weight(), layers[1].params().1);
        w.chunks_exact(b.len())
            .map(|row| row.iter().zip(b).map(|(&w, &b)| f64::from(w) * f64::from(b)).sum())
            .collect()
    }

    /// Turns the step's gradients of the folded parameterization into those of `(W, c, b)`:
    /// `dW −= dc bᵀ` (the encoder sees `x − b`) and `db −= Wᵀ dc` (the bias's path through the
    /// encoder); `dc` is unchanged. `dw0`, `dc` are the code layer's, `db` the decoder's bias's.
    pub(crate) fn correct(layers: &[Layer], dw0: &mut [f32], dc: &[f32], db: &mut [f32]) {
        let (w, b) = (layers[0].weight(), layers[1].params().1);
        let d = b.len();
        let mut through = vec![0f64; d];
        for ((g, row), &c) in dw0.chunks_exact_mut(d).zip(w.chunks_exact(d)).zip(dc) {
            for (((g, &w), &b), t) in g.iter_mut().zip(row).zip(b).zip(through.iter_mut()) {
                *g -= c * b;
                *t += f64::from(w) * f64::from(c);
            }
        }
        for (g, t) in db.iter_mut().zip(&through) {
            *g -= *t as f32;
        }
    }

    /// After the optimizer's step: refolds the code layer's bias, `c − W b`, with the new `W b`.
    pub(crate) fn refold(&mut self, layers: &mut [Layer]) {
        let now = Self::product(layers);
        for ((c, old), new) in layers[0].params_mut().1.iter_mut().zip(&self.folded).zip(&now) {
            *c = (f64::from(*c) + old - new) as f32;
        }
        self.folded = now;
    }

    /// Rereads `W b` after the weights were replaced (averaged across ranks).
    pub(crate) fn reread(&mut self, layers: &[Layer]) {
        self.folded = Self::product(layers);
    }
}
