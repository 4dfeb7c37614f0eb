//! What the loop trains ([`Trainee`]: layers, scaler, regularizers and loss head) and what
//! its loss compares the output with ([`Targets`], and [`Held`] once split and shuffled).

use super::step::{Head, Net};
use crate::activation::Activation;
use crate::data::scale::Scaler;
use crate::layer::Layer;
use crate::model::Autoencoder;
use crate::regularize::Regularizer;
use crate::tensor::{MatrixRef, Rows};
use std::borrow::Cow;

/// What the loss compares the network's output with.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Targets<'a> {
    /// The input rows themselves (an autoencoder).
    Input,
    /// Paired target rows.
    Rows(MatrixRef<'a>),
    /// Class indices (a classifier).
    Classes(&'a [usize]),
}

/// What the loop trains.
pub(crate) struct Trainee<'m> {
    /// The layers, trained in place.
    pub layers: &'m mut Vec<Layer>,
    /// The input scaler: fitted on the training rows when `fit_scaler`, else applied as it is.
    pub scaler: &'m mut Scaler,
    /// Whether training fits the scaler.
    pub fit_scaler: bool,
    /// The active regularizer of each layer.
    pub regs: Vec<Option<Regularizer>>,
    /// The loss head.
    pub head: Head,
    /// Tied `(encoder, decoder)` layer pairs.
    pub tied: Vec<(usize, usize)>,
    /// The code layer and its activation, for sparsity numbers on validation data.
    pub code: Option<(usize, Activation)>,
    /// The model's stored regularizers, where training writes what it learns of them
    /// (BatchTopK's threshold).
    pub learned: Option<&'m mut std::collections::BTreeMap<usize, Regularizer>>,
}

impl<'m> Trainee<'m> {
    /// An autoencoder with its reconstruction loss.
    pub fn autoencoder(model: &'m mut Autoencoder, fit_scaler: bool) -> Self {
        // Training changes the weights their int8 forms came from.
        model.int8 = None;
        let cfg = &model.config;
        Trainee {
            regs: (0..model.layers.len())
                .map(|l| cfg.regularizer_at(l).cloned())
                .collect(),
            head: Head::Reconstruction(cfg.loss),
            tied: cfg.tied_pairs(),
            code: Some((cfg.code_layer(), model.layers[cfg.code_layer()].activation())),
            layers: &mut model.layers,
            scaler: &mut model.scaler,
            fit_scaler,
            learned: Some(&mut model.config.regularizers),
        }
    }

    pub(super) fn net(&self) -> Net<'_> {
        Net {
            layers: self.layers,
            regs: &self.regs,
            head: self.head,
        }
    }
}

/// Owned or borrowed targets, split and shuffled with their rows.
pub(super) enum Held<'a> {
    Input,
    Rows(Rows<'a>),
    Classes(Cow<'a, [usize]>),
}

impl<'a> Held<'a> {
    pub(super) fn of(t: Targets<'a>) -> Self {
        match t {
            Targets::Input => Held::Input,
            Targets::Rows(m) => Held::Rows(Rows::Borrowed(m)),
            Targets::Classes(y) => Held::Classes(Cow::Borrowed(y)),
        }
    }

    pub(super) fn select(&self, rows: &[usize]) -> Self {
        match self {
            Held::Input => Held::Input,
            Held::Rows(m) => Held::Rows(Rows::Owned(m.view().select_rows(rows))),
            Held::Classes(y) => Held::Classes(rows.iter().map(|&i| y[i]).collect()),
        }
    }
}
