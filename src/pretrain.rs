//! Unsupervised pretraining: greedy layer-wise stacking of autoencoders (the stacked
//! denoising autoencoder), each layer trained by [`fit`] on the codes of the one below.

use crate::activation::Activation;
use crate::data::scale::{Scaler, Scaling};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::{Autoencoder, Mlp};
use crate::noise::Noise;
use crate::tensor::{Matrix, Rows};
use crate::train::{TrainConfig, TrainReport, fit};

/// Greedy layer-wise pretraining: an autoencoder with one hidden layer of `widths[0]` units is
/// trained on `x`, the next on its codes, and so on; the stack is returned as one deep
/// autoencoder (encoders in order, decoders mirrored) ready for fine-tuning. Each layer uses
/// `train` (noise included: the stacked denoising autoencoder) and the activation `act`;
/// the first layer reconstructs with `output`, the higher ones with `act`.
///
/// # Errors
/// As [`fit`], and [`Error::Setting`] for no widths.
pub fn pretrain(
    x: &Matrix,
    widths: &[usize],
    act: Activation,
    output: Activation,
    loss: Loss,
    train: &TrainConfig,
    mut on_layer: impl FnMut(usize, &TrainReport),
) -> Result<Autoencoder> {
    if widths.is_empty() {
        return Err(Error::setting(
            "hidden",
            "(none)",
            "pretraining needs at least one hidden width",
        ));
    }
    let mut input = Rows::Borrowed(x.view());
    let (mut enc, mut dec) = (Vec::new(), Vec::new());
    let mut scaler = Scaler::default();
    for (i, &w) in widths.iter().enumerate() {
        let out_act = if i == 0 { output } else { act };
        let mut mlp = Mlp::new(input.cols(), w).with_activations(act, act, out_act);
        // Higher layers reconstruct activations: BCE only where they lie in [0, 1].
        mlp.loss = if i == 0 || act == Activation::Sigmoid {
            loss
        } else {
            Loss::Mse
        };
        if mlp.loss == Loss::Bce && out_act != Activation::Sigmoid {
            mlp.loss = Loss::Mse;
        }
        let mut ae = mlp.init(train.seed.wrapping_add(i as u64))?;
        let mut t = train.clone();
        if i > 0 {
            // Scaling belongs to the input data only; image noise shapes to the first layer.
            t.scaling = Scaling::None;
            t.image_shape = None;
            t.noise.retain(|n| !matches!(n, Noise::Block { .. }));
        }
        let report = fit(&mut ae, input.view(), None, &t, |_| {})?;
        on_layer(i, &report);
        if i == 0 {
            scaler = ae.scaler().clone();
        }
        let codes = ae.encode(input.view())?;
        let dense = ae.dense_layers().expect("pretraining builds dense layers");
        enc.push(dense[0].clone());
        dec.push(dense[1].clone());
        input = Rows::Owned(codes);
    }
    let code = *widths.last().expect("checked: not empty");
    let mut mlp = Mlp::new(x.cols(), code)
        .with_hidden(&widths[..widths.len() - 1])
        .with_activations(act, act, output);
    mlp.loss = loss;
    let mut layers = enc;
    layers.extend(dec.into_iter().rev());
    Autoencoder::from_parts(mlp.config(), layers, scaler)
}
