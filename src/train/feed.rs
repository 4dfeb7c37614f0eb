//! What the training loop is given and where its batches come from: the checks of the rows
//! and targets [`fit`](super::fit) receives, and the feeds that fill each batch (rows in
//! memory in a shuffled order, or a [`RowStream`] from disk).

use super::step::{Head, Workspace};
use super::trainee::{Held, Targets};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::rng::Rng;
use crate::tensor::{MatrixRef, Rows};

pub(super) fn check_data(input_dim: usize, x: MatrixRef<'_>, what: &str) -> Result<()> {
    if x.rows() == 0 {
        return Err(Error::invalid(what, "no rows"));
    }
    if x.cols() != input_dim {
        return Err(Error::Shape {
            what: what.into(),
            expected: format!("{input_dim} columns (the model's input width)"),
            got: format!("{} columns", x.cols()),
        });
    }
    if let Some((r, c)) = x.find_non_finite() {
        return Err(Error::invalid(
            what,
            format!("non-finite value at row {}, column {}", r + 1, c + 1),
        ));
    }
    Ok(())
}

/// Checks that `targets` pair with the rows of `x` for a network of `out` outputs.
pub(super) fn check_targets(x: MatrixRef<'_>, targets: Targets<'_>, out: usize, what: &str) -> Result<()> {
    match targets {
        Targets::Input => Ok(()),
        Targets::Rows(t) => {
            if t.rows() != x.rows() || t.cols() != out {
                return Err(Error::Shape {
                    what: format!("{what} targets"),
                    expected: format!("{} rows (as the inputs) x {out} columns (the model's output)", x.rows()),
                    got: format!("{} rows x {} columns", t.rows(), t.cols()),
                });
            }
            if let Some((r, c)) = t.find_non_finite() {
                return Err(Error::invalid(
                    format!("{what} targets"),
                    format!("non-finite value at row {}, column {}", r + 1, c + 1),
                ));
            }
            Ok(())
        }
        Targets::Classes(y) => {
            if y.len() != x.rows() {
                return Err(Error::invalid(
                    format!("{what} labels"),
                    format!("{} rows but {} labels", x.rows(), y.len()),
                ));
            }
            if let Some(&k) = y.iter().find(|&&k| k >= out) {
                return Err(Error::invalid(
                    format!("{what} labels"),
                    format!("class index {k} with {out} classes"),
                ));
            }
            Ok(())
        }
    }
}

/// The loss of a reconstruction `head` whose targets are values in [0, 1] (bce, ce).
pub(super) fn unit_loss(head: &Head) -> Option<Loss> {
    match head {
        Head::Reconstruction(loss @ (Loss::Bce | Loss::Ce)) => Some(*loss),
        _ => None,
    }
}

/// Checks that the values a `loss` of [`unit_loss`] compares with lie in [0, 1].
///
/// # Errors
/// [`Error::InvalidData`] with the first value outside, and what to do.
pub(super) fn check_unit_targets(loss: Loss, values: &[f32]) -> Result<()> {
    match values.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        None => Ok(()),
        Some(bad) => Err(Error::invalid(
            "training data",
            format!(
                "loss {} needs values in [0, 1] after scaling, found {bad}; hint: {}",
                loss.name(),
                if loss == Loss::Ce {
                    "its targets are probabilities (one-hot categories), not scaled: --scale none"
                } else {
                    "scale to [0, 1] (minmax) or use the mse loss"
                }
            ),
        )),
    }
}

/// Training rows that are not held in memory: scaled rows a chunk at a time, in an order
/// drawn anew every epoch (see [`fit_stream`](super::fit_stream)).
pub trait RowStream {
    /// The training rows (each epoch hands out every one of them once).
    fn rows(&self) -> usize;
    /// Starts an epoch; its order of rows is drawn from `rng`.
    ///
    /// # Errors
    /// Whatever reading the rows reports.
    fn begin_epoch(&mut self, rng: &mut Rng) -> Result<()>;
    /// Fills `out` with the next rows of the epoch (up to `out.len()` / the row width),
    /// scaled as the model reads them; returns how many.
    ///
    /// # Errors
    /// Whatever reading the rows reports.
    fn next_rows(&mut self, out: &mut [f32]) -> Result<usize>;
}

/// Where the loop's batches come from: rows in memory (shuffled by a permutation), or a
/// [`RowStream`] (with the loss whose targets must lie in [0, 1], checked batch by batch as
/// the rows come: [`unit_loss`]).
pub(super) enum Feed<'a, 's> {
    Memory {
        train: Rows<'a>,
        targets: Held<'a>,
        order: Vec<usize>,
    },
    Stream(&'s mut dyn RowStream, Option<Loss>),
}

impl Feed<'_, '_> {
    pub(super) fn begin_epoch(&mut self, rng: &mut Rng) -> Result<()> {
        match self {
            Feed::Memory { order, .. } => {
                rng.shuffle(order);
                Ok(())
            }
            Feed::Stream(s, _) => s.begin_epoch(rng),
        }
    }

    /// The row order, for checkpoints (none for a stream).
    pub(super) fn order(&self) -> &[usize] {
        match self {
            Feed::Memory { order, .. } => order,
            Feed::Stream(..) => &[],
        }
    }

    /// Copies batch `bi` (of `batch` rows) into the workspace; returns its rows.
    pub(super) fn fill(&mut self, bi: usize, batch: usize, ws: &mut Workspace, d: usize, noisy: bool) -> Result<usize> {
        match self {
            Feed::Memory { train, targets, order } => {
                let rows = &order[bi * batch..((bi + 1) * batch).min(order.len())];
                let b = rows.len();
                // ws.x is what the loss compares with (the target) or, for classes, the input;
                // ws.x_in what the network sees when it differs.
                let goal = match &*targets {
                    Held::Rows(m) => m.view(),
                    _ => train.view(),
                };
                for (dst, &r) in ws.x.chunks_exact_mut(goal.cols()).zip(rows) {
                    dst.copy_from_slice(goal.row(r));
                }
                match &*targets {
                    Held::Rows(_) => {
                        for (dst, &r) in ws.x_in.chunks_exact_mut(d).zip(rows) {
                            dst.copy_from_slice(train.view().row(r));
                        }
                    }
                    Held::Classes(y) => {
                        for (dst, &r) in ws.labels.iter_mut().zip(rows) {
                            *dst = y[r];
                        }
                    }
                    Held::Input if noisy => ws.x_in[..b * d].copy_from_slice(&ws.x[..b * d]),
                    Held::Input => {}
                }
                Ok(b)
            }
            Feed::Stream(s, unit) => {
                let b = s.next_rows(&mut ws.x[..batch * d])?;
                if b == 0 {
                    return Err(Error::invalid(
                        "training data",
                        "the rows ran out before the epoch's end",
                    ));
                }
                if let Some(loss) = *unit {
                    check_unit_targets(loss, &ws.x[..b * d])?;
                }
                if noisy {
                    ws.x_in[..b * d].copy_from_slice(&ws.x[..b * d]);
                }
                Ok(b)
            }
        }
    }
}
