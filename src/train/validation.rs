//! What the loop measures after each epoch: the validation loss (and accuracy), the code's
//! sparsity, and the best epoch so far, which early stopping watches and restores.

use super::step::Head;
use super::trainee::{Held, Trainee};
use crate::layer::Layer;
use crate::tensor::{Matrix, MatrixRef, Rows};

/// The best validation loss so far and its epoch; with early stopping, its weights as well.
pub(super) struct Watch {
    patience: Option<usize>,
    best: Option<(f64, usize, Vec<Layer>)>,
}

impl Watch {
    pub(super) fn new(patience: Option<usize>) -> Self {
        Watch { patience, best: None }
    }

    /// Back to a checkpoint's best: its loss (as bits) and epoch, and the weights it kept.
    pub(super) fn restore(&mut self, best: Option<(u64, usize)>, layers: Option<Vec<Layer>>) {
        self.best = best.map(|(loss, epoch)| (f64::from_bits(loss), epoch, layers.unwrap_or_default()));
    }

    /// The best loss (as bits) and epoch, for a checkpoint.
    pub(super) fn state(&self) -> Option<(u64, usize)> {
        self.best.as_ref().map(|(loss, epoch, _)| (loss.to_bits(), *epoch))
    }

    /// The best epoch's weights, when they are kept (early stopping).
    pub(super) fn kept(&self) -> Option<&[Layer]> {
        self.best
            .as_ref()
            .map(|(_, _, layers)| &layers[..])
            .filter(|layers| !layers.is_empty())
    }

    /// Takes `epoch`'s validation loss (none without validation rows): true when it is the
    /// best so far, whose weights `layers` are then kept for early stopping.
    pub(super) fn observe(&mut self, epoch: usize, valid_loss: Option<f64>, layers: &[Layer]) -> bool {
        let Some(v) = valid_loss else { return false };
        let better = match &self.best {
            Some((b, _, _)) => v < *b,
            None => true,
        };
        if !better {
            return false;
        }
        let keep = if self.patience.is_some() {
            layers.to_vec()
        } else {
            Vec::new()
        };
        self.best = Some((v, epoch, keep));
        true
    }

    /// Whether early stopping ends the run after `epoch`: `patience` epochs without a better
    /// validation loss.
    pub(super) fn exhausted(&self, epoch: usize) -> bool {
        matches!((self.patience, &self.best), (Some(p), Some((_, best, _))) if epoch - best >= p)
    }

    /// The epoch whose weights the model ends with, of `epochs` run: with early stopping the
    /// best one, whose weights replace `layers`; else the last.
    pub(super) fn finish(self, layers: &mut Vec<Layer>, epochs: usize) -> usize {
        match (self.patience, self.best) {
            (Some(_), Some((_, epoch, kept))) => {
                *layers = kept;
                epoch
            }
            _ => epochs,
        }
    }
}

/// The rows code statistics are measured on: the validation rows, else the training sample.
pub(super) fn code_rows<'v>(valid: &'v Option<(Rows<'_>, Held<'_>)>, sample: &'v Matrix) -> MatrixRef<'v> {
    match valid {
        Some((v, _)) => v.view(),
        None => sample.view(),
    }
}

/// The code's sparsity on `rows` (clean) for the training log: L0, dead units, the firing
/// histogram, and with `fvu` the fraction of variance the reconstruction leaves unexplained.
/// `None` for a model without a code (a classifier).
pub(super) fn code_metrics(t: &Trainee<'_>, rows: MatrixRef<'_>, fvu: bool) -> Option<crate::metrics::CodeMetrics> {
    let (code, act) = t.code?;
    let rule = |l: usize| t.regs[l].as_ref();
    let codes = crate::infer::forward(t.layers, rule, rows, 0..code + 1);
    let mut m = crate::metrics::code(&codes, act);
    m.unit_mean_activation.clear(); // keep the per-epoch log small
    if fvu && matches!(t.head, Head::Reconstruction(_)) {
        let out = crate::infer::forward(t.layers, rule, codes.view(), code + 1..t.layers.len());
        let mut sums = crate::metrics::ReconstructionSums::default();
        sums.add(rows, &out);
        m.fvu = sums.finish().fvu;
    }
    Some(m)
}

/// The mean loss on validation rows (in the network's units) and, for classes, the accuracy.
/// A variational code adds its KL term (the reconstruction is the mean path's): the forward
/// pass stops at each Gaussian layer to read its input, then goes on from there.
pub(super) fn validate(t: &Trainee<'_>, v: MatrixRef<'_>, targets: &Held<'_>) -> (f64, Option<f64>) {
    let n = t.layers.len();
    let d_out = t.layers[n - 1].n_out();
    let run = |x: MatrixRef<'_>, range| crate::infer::forward(t.layers, |l| t.regs[l].as_ref(), x, range);
    let (mut kl, mut start, mut cur) = (0.0, 0, None::<Matrix>);
    for (i, l) in t.layers.iter().enumerate() {
        if let (Layer::Gaussian(g), true) = (l, i > start) {
            let stats = run(cur.as_ref().map_or(v, Matrix::view), start..i);
            kl += g.kl_term(stats.as_slice(), d_out);
            (start, cur) = (i, Some(stats));
        }
    }
    let out = run(cur.as_ref().map_or(v, Matrix::view), start..n);
    let (loss, acc) = validate_head(t, v, targets, out);
    (loss + kl, acc)
}

fn validate_head(t: &Trainee<'_>, v: MatrixRef<'_>, targets: &Held<'_>, out: Matrix) -> (f64, Option<f64>) {
    match (t.head, targets) {
        (Head::Reconstruction(loss), Held::Rows(goal)) => (
            loss.sum(out.as_slice(), goal.view().as_slice()) / (goal.rows() * goal.cols()).max(1) as f64,
            None,
        ),
        (Head::Reconstruction(loss), _) => (
            loss.sum(out.as_slice(), v.as_slice()) / (v.rows() * v.cols()).max(1) as f64,
            None,
        ),
        (Head::SoftmaxCrossEntropy, held) => {
            let Held::Classes(y) = held else {
                unreachable!("classifiers are validated on classes")
            };
            let c = out.cols();
            let mut p = out.into_vec();
            crate::layer::softmax::in_place(&mut p, c, 1);
            let (mut loss, mut hits) = (0f64, 0usize);
            for (row, &k) in p.chunks_exact(c).zip(y.iter()) {
                loss -= f64::from(row[k].max(1e-30)).ln();
                hits += usize::from(crate::tensor::argmax(row) == k);
            }
            let n = y.len().max(1) as f64;
            (loss / n, Some(hits as f64 / n))
        }
    }
}
