//! Supervised use of a (pretrained) encoder: greedy layer-wise pretraining of a stacked
//! autoencoder, and a classifier — the encoder plus a softmax head — fine-tuned end to end.
//!
//! Classifier files are `.safetensors` with metadata `format` = `hourglass`, `kind` =
//! `classifier`, `classifier` (the [`ClassifierConfig`] as JSON), `scaler`; tensors
//! `layer.{i}.weight` `(n_out, n_in)` and `layer.{i}.bias`.

use crate::activation::Activation;
use crate::data::scale::Scaler;
use crate::error::{Error, Result};
use crate::fsutil::{io_at, write_atomic};
use crate::kernels::{Precision, ROW_BLOCK};
use crate::layer::{Dense, Init, PrevActivation};
use crate::model::{Autoencoder, AutoencoderConfig};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::rng::Rng;
use crate::tensor::{Matrix, argmax};
use crate::train::{TrainConfig, fit};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Architecture of a classifier: hidden layers, then a linear head with a softmax.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// Input width.
    pub input_dim: usize,
    /// Hidden widths (the encoder), input side first.
    pub hidden: Vec<usize>,
    /// Activation of each hidden layer.
    pub activations: Vec<Activation>,
    /// Class names; the head has one output per class.
    pub classes: Vec<String>,
}

/// An encoder with a softmax head.
#[derive(Clone, Debug, PartialEq)]
pub struct Classifier {
    /// The architecture.
    pub config: ClassifierConfig,
    /// Hidden layers, then the head (identity activation; softmax is applied on top).
    pub layers: Vec<Dense>,
    /// Input scaling (the encoder's).
    pub scaler: Scaler,
}

impl Classifier {
    /// The encoder of `ae` (every layer up to the code) with a new head for `classes`.
    ///
    /// # Errors
    /// [`Error::Config`] for fewer than two classes.
    pub fn from_encoder(ae: &Autoencoder, classes: Vec<String>, seed: u64) -> Result<Self> {
        if classes.len() < 2 {
            return Err(Error::Config(format!(
                "a classifier needs two or more classes, got {}",
                classes.len()
            )));
        }
        let enc: Vec<Dense> = ae.layers()[..ae.config().encoder_layers()]
            .iter()
            .map(|l| l.as_dense().cloned())
            .collect::<Option<_>>()
            .ok_or_else(|| {
                Error::Config("fine-tuning needs an encoder of dense layers (this one has convolutions)".into())
            })?;
        let code = ae.code_dim();
        let mut rng = Rng::new(seed);
        let head = Dense::new(code, classes.len(), Activation::Identity, Init::Xavier, &mut rng);
        let config = ClassifierConfig {
            input_dim: ae.input_dim(),
            hidden: enc.iter().map(|l| l.n_out).collect(),
            activations: enc.iter().map(|l| l.activation).collect(),
            classes,
        };
        let mut layers = enc;
        layers.push(head);
        Ok(Classifier {
            config,
            layers,
            scaler: ae.scaler().clone(),
        })
    }

    /// The same architecture with weights drawn from `seed` (the from-scratch baseline).
    pub fn reinit(&self, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let layers = self
            .layers
            .iter()
            .map(|l| Dense::new(l.n_in, l.n_out, l.activation, Init::Auto, &mut rng))
            .collect();
        Classifier {
            config: self.config.clone(),
            layers,
            scaler: self.scaler.clone(),
        }
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.layers.iter().map(Dense::num_params).sum()
    }

    /// Class probabilities of the rows of `x` (data in the user's units).
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong input width.
    pub fn predict_proba(&self, x: &Matrix) -> Result<Matrix> {
        if x.cols() != self.config.input_dim {
            return Err(Error::Shape {
                what: "classifier input".into(),
                expected: format!("{} columns", self.config.input_dim),
                got: format!("{} columns", x.cols()),
            });
        }
        let mut xs = x.clone();
        self.scaler.transform(&mut xs);
        let c = self.config.classes.len();
        let mut out = Matrix::zeros(x.rows(), c);
        let d = x.cols();
        let run = |(xb, ob): (&[f32], &mut [f32])| {
            let rows = xb.len() / d;
            let mut cur = xb.to_vec();
            for l in &self.layers {
                let mut next = vec![0.0; rows * l.n_out];
                l.forward(&cur, &mut next, None);
                cur = next;
            }
            softmax_rows(&mut cur, c);
            ob.copy_from_slice(&cur);
        };
        xs.as_slice()
            .par_chunks(ROW_BLOCK * d)
            .zip(out.as_mut_slice().par_chunks_mut(ROW_BLOCK * c))
            .for_each(run);
        Ok(out)
    }

    /// The most probable class index of each row.
    ///
    /// # Errors
    /// As [`Classifier::predict_proba`].
    pub fn predict(&self, x: &Matrix) -> Result<Vec<usize>> {
        let p = self.predict_proba(x)?;
        Ok((0..p.rows()).map(|i| argmax(p.row(i))).collect())
    }

    /// Saves atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = |v: &dyn crate::format::erased::Json| v.to_json();
        let mut meta = serde_json::Map::new();
        meta.insert("format".into(), crate::format::FORMAT_NAME.into());
        meta.insert(
            "format_version".into(),
            crate::format::FORMAT_VERSION.to_string().into(),
        );
        meta.insert("kind".into(), "classifier".into());
        meta.insert("classifier".into(), json(&self.config)?.into());
        meta.insert("scaler".into(), json(&self.scaler)?.into());
        meta.insert("crate_version".into(), env!("CARGO_PKG_VERSION").into());
        let mut tensors: Vec<(String, Vec<usize>, &[f32])> = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            tensors.push((format!("layer.{i}.weight"), vec![l.n_out, l.n_in], &l.weight));
            tensors.push((format!("layer.{i}.bias"), vec![l.n_out], &l.bias));
        }
        let bytes = crate::format::write_safetensors(meta, &mut tensors)?;
        write_atomic(path, |w| w.write_all(&bytes).map_err(io_at(path)))
    }

    /// Loads a classifier file.
    ///
    /// # Errors
    /// [`Error::UnknownFormat`] for a file that is not an hourglass classifier (an autoencoder
    /// file is named as such); [`Error::MissingTensor`]/[`Error::BadTensor`] for bad tensors.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(io_at(path))?;
        let (meta, st) = crate::format::read_safetensors(path, &bytes)?;
        let unknown = |reason: String| Error::UnknownFormat {
            path: path.into(),
            reason,
        };
        if meta.get("kind").map(String::as_str) != Some("classifier") {
            return Err(unknown(
                "an autoencoder, not a classifier (make one with `hourglass finetune`)".into(),
            ));
        }
        let get = |k: &str| meta.get(k).ok_or_else(|| unknown(format!("missing `{k}` metadata")));
        let config: ClassifierConfig =
            serde_json::from_str(get("classifier")?).map_err(|e| unknown(format!("bad `classifier` metadata: {e}")))?;
        let scaler: Scaler =
            serde_json::from_str(get("scaler")?).map_err(|e| unknown(format!("bad `scaler` metadata: {e}")))?;
        if config.activations.len() != config.hidden.len() || config.classes.len() < 2 {
            return Err(unknown("inconsistent `classifier` metadata".into()));
        }
        let mut widths = vec![config.input_dim];
        widths.extend(&config.hidden);
        widths.push(config.classes.len());
        let mut layers = Vec::new();
        for i in 0..widths.len() - 1 {
            let act = config.activations.get(i).copied().unwrap_or(Activation::Identity);
            let w = crate::format::tensor_f32(path, &st, &format!("layer.{i}.weight"), &[widths[i + 1], widths[i]])?;
            let b = crate::format::tensor_f32(path, &st, &format!("layer.{i}.bias"), &[widths[i + 1]])?;
            layers.push(Dense::from_parts(widths[i], widths[i + 1], act, w, b));
        }
        Ok(Classifier { config, layers, scaler })
    }
}

fn softmax_rows(a: &mut [f32], c: usize) {
    for row in a.chunks_exact_mut(c) {
        let mx = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - mx).exp();
            sum += *v;
        }
        row.iter_mut().for_each(|v| *v /= sum);
    }
}

/// Settings of [`finetune`].
#[derive(Clone, Debug, PartialEq)]
pub struct FinetuneConfig {
    /// Passes over the labelled rows.
    pub epochs: usize,
    /// Rows per mini-batch.
    pub batch_size: usize,
    /// Learning rate (Adam).
    pub lr: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
    /// Epochs at the start during which only the head is trained (the encoder is frozen).
    pub freeze_epochs: usize,
    /// Dropout on the input of every layer after the first (0: off).
    pub dropout: f32,
    /// Seed of the shuffles and dropout.
    pub seed: u64,
    /// Arithmetic of the GEMMs.
    pub precision: Precision,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            epochs: 20,
            batch_size: 64,
            lr: 1e-3,
            weight_decay: 0.0,
            freeze_epochs: 0,
            dropout: 0.0,
            seed: 0,
            precision: Precision::F32,
        }
    }
}

/// One epoch's numbers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FinetuneEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's batches.
    pub loss: f64,
    /// Training accuracy during the epoch.
    pub accuracy: f64,
    /// Whether the encoder was frozen.
    pub frozen: bool,
}

/// Trains `model` on rows `x` with class indices `y` (softmax cross-entropy, Adam), calling
/// `on_epoch` after each epoch. Bit-identical for any thread count, like [`fit`].
///
/// # Errors
/// [`Error::InvalidData`] for mismatched lengths, class indices out of range or non-finite
/// data; [`Error::Config`] for bad settings; [`Error::Diverged`] for a non-finite loss.
pub fn finetune(
    model: &mut Classifier,
    x: &Matrix,
    y: &[usize],
    cfg: &FinetuneConfig,
    mut on_epoch: impl FnMut(&FinetuneEpoch),
) -> Result<Vec<FinetuneEpoch>> {
    let c = model.config.classes.len();
    if x.rows() != y.len() || x.rows() == 0 {
        return Err(Error::invalid(
            "labelled data",
            format!("{} rows but {} labels", x.rows(), y.len()),
        ));
    }
    if x.cols() != model.config.input_dim {
        return Err(Error::Shape {
            what: "classifier input".into(),
            expected: format!("{} columns", model.config.input_dim),
            got: format!("{} columns", x.cols()),
        });
    }
    if let Some(&k) = y.iter().find(|&&k| k >= c) {
        return Err(Error::invalid("labels", format!("class index {k} with {c} classes")));
    }
    if let Some((r, col)) = x.find_non_finite() {
        return Err(Error::invalid(
            "labelled data",
            format!("non-finite value at row {}, column {}", r + 1, col + 1),
        ));
    }
    if cfg.epochs == 0 || cfg.batch_size == 0 || !(cfg.lr > 0.0) || !(0.0..1.0).contains(&cfg.dropout) {
        return Err(Error::Config(
            "finetune needs epochs, batch size and lr > 0 and dropout in [0, 1)".into(),
        ));
    }
    let mut xs = x.clone();
    model.scaler.transform(&mut xs);
    let n = xs.rows();
    let d = xs.cols();
    let b_max = cfg.batch_size.min(n);
    let nl = model.layers.len();
    let sizes: Vec<usize> = model
        .layers
        .iter()
        .flat_map(|l| [l.weight.len(), l.bias.len()])
        .collect();
    let mut opt = Optimizer::new(OptimizerConfig::adam(cfg.weight_decay), &sizes);
    let mut head_opt = Optimizer::new(OptimizerConfig::adam(cfg.weight_decay), &sizes[2 * (nl - 1)..]);
    // Buffers sized once.
    let mut xb = vec![0f32; b_max * d];
    let mut acts: Vec<Vec<f32>> = model.layers.iter().map(|l| vec![0f32; b_max * l.n_out]).collect();
    let mut pre: Vec<Vec<f32>> = model
        .layers
        .iter()
        .map(|l| {
            if l.activation.needs_preactivation() {
                vec![0f32; b_max * l.n_out]
            } else {
                Vec::new()
            }
        })
        .collect();
    let dropout_buf = |l: &Dense| {
        if cfg.dropout > 0.0 {
            vec![1f32; b_max * l.n_out]
        } else {
            Vec::new()
        }
    };
    let mut masks: Vec<Vec<f32>> = model.layers.iter().map(dropout_buf).collect();
    // Hidden outputs before the dropout mask (the activation derivative needs them).
    let mut raw: Vec<Vec<f32>> = model.layers.iter().map(dropout_buf).collect();
    let mut dz: Vec<Vec<f32>> = model.layers.iter().map(|l| vec![0f32; b_max * l.n_out]).collect();
    let mut dw: Vec<Vec<f32>> = model.layers.iter().map(|l| vec![0f32; l.weight.len()]).collect();
    let mut db: Vec<Vec<f32>> = model.layers.iter().map(|l| vec![0f32; l.bias.len()]).collect();
    let mut order: Vec<usize> = (0..n).collect();
    let mut shuffle = Rng::stream(cfg.seed, 0x5348);
    let mut drop_rng = Rng::stream(cfg.seed, 0x4452);
    let mut history = Vec::new();
    for epoch in 0..cfg.epochs {
        shuffle.shuffle(&mut order);
        let frozen = epoch < cfg.freeze_epochs;
        let last_good = model.layers.clone();
        let (mut loss_sum, mut hits, mut batches) = (0f64, 0usize, 0usize);
        for chunk in order.chunks(b_max) {
            let b = chunk.len();
            for (r, &i) in chunk.iter().enumerate() {
                xb[r * d..(r + 1) * d].copy_from_slice(xs.row(i));
            }
            // Forward; dropout multiplies the output of each hidden layer.
            for l in 0..nl {
                let layer = &model.layers[l];
                let (below, here) = acts.split_at_mut(l);
                let input = if l == 0 {
                    &xb[..b * d]
                } else {
                    &below[l - 1][..b * layer.n_in]
                };
                let out = &mut here[0][..b * layer.n_out];
                let z = if pre[l].is_empty() {
                    None
                } else {
                    Some(&mut pre[l][..b * layer.n_out])
                };
                layer.forward_with(input, out, z, cfg.precision);
                if cfg.dropout > 0.0 && l + 1 < nl {
                    let keep = 1.0 / (1.0 - cfg.dropout);
                    raw[l][..b * layer.n_out].copy_from_slice(out);
                    for (m, v) in masks[l][..b * layer.n_out].iter_mut().zip(out.iter_mut()) {
                        *m = if drop_rng.uniform() < cfg.dropout { 0.0 } else { keep };
                        *v *= *m;
                    }
                }
            }
            // Softmax cross-entropy: dz = (p - onehot) / b.
            let logits = &acts[nl - 1][..b * c];
            let g = &mut dz[nl - 1][..b * c];
            g.copy_from_slice(logits);
            softmax_rows(g, c);
            let mut loss = 0f64;
            for (r, &i) in chunk.iter().enumerate() {
                let row = &mut g[r * c..(r + 1) * c];
                loss -= f64::from(row[y[i]].max(1e-30)).ln();
                if argmax(row) == y[i] {
                    hits += 1;
                }
                row[y[i]] -= 1.0;
                row.iter_mut().for_each(|v| *v /= b as f32);
            }
            if !loss.is_finite() {
                model.layers = last_good;
                return Err(Error::Diverged {
                    epoch: epoch + 1,
                    batch: batches + 1,
                    value: loss as f32,
                    last_good_epoch: epoch,
                });
            }
            loss_sum += loss / b as f64;
            batches += 1;
            // Backward (only the head while frozen).
            let lowest = if frozen { nl - 1 } else { 0 };
            for l in (lowest..nl).rev() {
                let layer = &model.layers[l];
                let (dz_below, dz_here) = dz.split_at_mut(l);
                let input = if l == 0 {
                    &xb[..b * d]
                } else {
                    &acts[l - 1][..b * layer.n_in]
                };
                let dx = if l > lowest {
                    let prev = &model.layers[l - 1];
                    let m = b * prev.n_out;
                    // With dropout the activation derivative needs the unmasked output; the
                    // mask folds into the gradient below.
                    let y = if cfg.dropout > 0.0 {
                        &raw[l - 1][..m]
                    } else {
                        &acts[l - 1][..m]
                    };
                    Some((
                        &mut dz_below[l - 1][..m],
                        PrevActivation {
                            act: prev.activation,
                            y,
                            z: if pre[l - 1].is_empty() {
                                None
                            } else {
                                Some(&pre[l - 1][..m])
                            },
                            code: None,
                        },
                    ))
                } else {
                    None
                };
                layer.backward(
                    input,
                    &dz_here[0][..b * layer.n_out],
                    &mut dw[l],
                    &mut db[l],
                    dx,
                    cfg.precision,
                );
                if l > lowest && cfg.dropout > 0.0 {
                    let m = b * model.layers[l - 1].n_out;
                    for (g, &mk) in dz[l - 1][..m].iter_mut().zip(&masks[l - 1][..m]) {
                        *g *= mk;
                    }
                }
            }
            if frozen {
                head_opt.begin_step();
                let head = &mut model.layers[nl - 1];
                head_opt.update(0, &mut head.weight, &dw[nl - 1], cfg.lr, true);
                head_opt.update(1, &mut head.bias, &db[nl - 1], cfg.lr, false);
            } else {
                opt.begin_step();
                for (l, layer) in model.layers.iter_mut().enumerate() {
                    opt.update(2 * l, &mut layer.weight, &dw[l], cfg.lr, true);
                    opt.update(2 * l + 1, &mut layer.bias, &db[l], cfg.lr, false);
                }
            }
        }
        let e = FinetuneEpoch {
            epoch: epoch + 1,
            loss: loss_sum / batches as f64,
            accuracy: hits as f64 / n as f64,
            frozen,
        };
        on_epoch(&e);
        history.push(e);
    }
    Ok(history)
}

/// Greedy layer-wise pretraining: an autoencoder with one hidden layer of `widths[0]` units is
/// trained on `x`, the next on its codes, and so on; the stack is returned as one deep
/// autoencoder (encoders in order, decoders mirrored) ready for fine-tuning. Each layer uses
/// `train` (noise included: the stacked denoising autoencoder) and the activation `act`;
/// the first layer reconstructs with `output`, the higher ones with `act`.
///
/// # Errors
/// As [`fit`], and [`Error::Config`] for no widths.
pub fn pretrain(
    x: &Matrix,
    widths: &[usize],
    act: Activation,
    output: Activation,
    loss: crate::loss::Loss,
    train: &TrainConfig,
    mut on_layer: impl FnMut(usize, &crate::train::TrainReport),
) -> Result<Autoencoder> {
    if widths.is_empty() {
        return Err(Error::Config("pretrain needs at least one hidden width".into()));
    }
    let mut input = std::borrow::Cow::Borrowed(x);
    let (mut enc, mut dec) = (Vec::new(), Vec::new());
    let mut scaler = Scaler::default();
    for (i, &w) in widths.iter().enumerate() {
        let out_act = if i == 0 { output } else { act };
        let mut cfg = AutoencoderConfig::new(input.cols(), w).with_activations(act, act, out_act);
        // Higher layers reconstruct activations: BCE only where they lie in [0, 1].
        cfg.loss = if i == 0 || act == Activation::Sigmoid {
            loss
        } else {
            crate::loss::Loss::Mse
        };
        if cfg.loss == crate::loss::Loss::Bce && out_act != Activation::Sigmoid {
            cfg.loss = crate::loss::Loss::Mse;
        }
        let mut ae = cfg.init(train.seed.wrapping_add(i as u64))?;
        let mut t = train.clone();
        if i > 0 {
            // Scaling belongs to the input data only; image noise shapes to the first layer.
            t.scaling = crate::data::scale::Scaling::None;
            t.image_shape = None;
            t.noise.retain(|n| !matches!(n, crate::noise::Noise::Block { .. }));
        }
        let report = fit(&mut ae, &input, None, &t, |_| {})?;
        on_layer(i, &report);
        if i == 0 {
            scaler = ae.scaler().clone();
        }
        let codes = ae.encode(&input)?;
        let dense = ae.dense_layers().expect("pretraining builds dense layers");
        enc.push(dense[0].clone());
        dec.push(dense[1].clone());
        input = std::borrow::Cow::Owned(codes);
    }
    let code = *widths.last().unwrap();
    let mut cfg = AutoencoderConfig::new(x.cols(), code)
        .with_hidden(&widths[..widths.len() - 1])
        .with_activations(act, act, output);
    cfg.loss = loss;
    let mut layers = enc;
    layers.extend(dec.into_iter().rev());
    Autoencoder::from_parts(cfg, layers, scaler)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three noisy clusters in 10 dimensions, values in [0, 1].
    fn clusters(n: usize, seed: u64) -> (Matrix, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let mut data = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = i % 3;
            y.push(c);
            data.extend((0..10).map(|j| if j % 3 == c { 0.8 } else { 0.2 } + 0.1 * rng.normal()));
        }
        (Matrix::from_vec(n, 10, data).unwrap(), y)
    }

    fn classes() -> Vec<String> {
        ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finetune_gradients_match_finite_differences() {
        // A one-batch epoch with lr -> 0 leaves weights put; compare dW from a single step by
        // running the loss at perturbed weights.
        let ae = AutoencoderConfig::new(10, 4)
            .with_hidden(&[6])
            .with_activations(Activation::Tanh, Activation::Sigmoid, Activation::Sigmoid)
            .init(1)
            .unwrap();
        let model = Classifier::from_encoder(&ae, classes(), 2).unwrap();
        let (x, y) = clusters(6, 3);
        let loss = |m: &Classifier| {
            let p = m.predict_proba(&x).unwrap();
            -(0..6).map(|i| f64::from(p.row(i)[y[i]]).ln()).sum::<f64>() / 6.0
        };
        // One SGD-like probe: Adam's first step moves every weight by about -lr * sign(g).
        let lr = 1e-4;
        let cfg = FinetuneConfig {
            epochs: 1,
            batch_size: 6,
            lr,
            ..FinetuneConfig::default()
        };
        let mut stepped = model.clone();
        finetune(&mut stepped, &x, &y, &cfg, |_| {}).unwrap();
        for l in 0..model.layers.len() {
            for i in 0..model.layers[l].weight.len() {
                let h = 1e-3f32;
                let mut a = model.clone();
                a.layers[l].weight[i] += h;
                let mut b = model.clone();
                b.layers[l].weight[i] -= h;
                let g = (loss(&a) - loss(&b)) / (2.0 * f64::from(h));
                let moved = f64::from(stepped.layers[l].weight[i] - model.layers[l].weight[i]);
                if g.abs() > 1e-3 {
                    assert!(moved * g < 0.0, "layer {l} weight {i}: gradient {g}, moved {moved}");
                    assert!((moved.abs() - lr as f64).abs() < 0.2 * lr as f64, "{moved}");
                }
            }
        }
    }

    #[test]
    fn pretrain_stacks_and_finetune_learns_thread_invariantly() {
        let (x, y) = clusters(120, 4);
        let t = TrainConfig {
            epochs: 20,
            batch_size: 16,
            lr: 0.01,
            seed: 5,
            ..TrainConfig::default()
        };
        let mut layers_seen = Vec::new();
        let ae = pretrain(
            &x,
            &[8, 4],
            Activation::Sigmoid,
            Activation::Sigmoid,
            crate::loss::Loss::Mse,
            &t,
            |i, _| layers_seen.push(i),
        )
        .unwrap();
        assert_eq!(layers_seen, [0, 1]);
        assert_eq!(ae.config().hidden, [8]);
        assert_eq!(ae.code_dim(), 4);
        assert_eq!(ae.layers().len(), 4);
        let run = |threads| {
            crate::with_threads(Some(threads), || {
                let mut m = Classifier::from_encoder(&ae, classes(), 1).unwrap();
                let cfg = FinetuneConfig {
                    epochs: 30,
                    batch_size: 16,
                    lr: 0.01,
                    freeze_epochs: 3,
                    dropout: 0.1,
                    ..FinetuneConfig::default()
                };
                let h = finetune(&mut m, &x, &y, &cfg, |_| {}).unwrap();
                (m, h)
            })
            .unwrap()
        };
        let (m1, h1) = run(1);
        let (m2, _) = run(2);
        assert_eq!(m1, m2);
        assert!(h1[0].frozen && !h1[3].frozen);
        let (xt, yt) = clusters(60, 9);
        let pred = m1.predict(&xt).unwrap();
        let acc = pred.iter().zip(&yt).filter(|(a, b)| a == b).count() as f64 / 60.0;
        assert!(acc > 0.95, "{acc}");
        // Frozen epochs leave the encoder as pretrained.
        let mut frozen = Classifier::from_encoder(&ae, classes(), 1).unwrap();
        let cfg = FinetuneConfig {
            epochs: 2,
            freeze_epochs: 2,
            ..FinetuneConfig::default()
        };
        finetune(&mut frozen, &x, &y, &cfg, |_| {}).unwrap();
        assert_eq!(Some(&frozen.layers[0]), ae.layers()[0].as_dense());
        assert_ne!(
            frozen.layers[2].weight,
            Classifier::from_encoder(&ae, classes(), 1).unwrap().layers[2].weight
        );
    }

    #[test]
    fn save_load_round_trip_and_autoencoder_files_are_named() {
        let ae = AutoencoderConfig::new(5, 3).init(1).unwrap();
        let m = Classifier::from_encoder(&ae, classes(), 2).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.safetensors");
        m.save(&p).unwrap();
        assert_eq!(Classifier::load(&p).unwrap(), m);
        let q = dir.path().join("ae.safetensors");
        crate::format::save(
            &q,
            &crate::ModelFile {
                model: ae,
                provenance: Default::default(),
                anomaly: None,
                tabular: None,
            },
        )
        .unwrap();
        assert!(
            Classifier::load(&q)
                .unwrap_err()
                .to_string()
                .contains("an autoencoder, not a classifier")
        );
        assert!(
            crate::format::load(&p)
                .unwrap_err()
                .to_string()
                .contains("a classifier")
        );
    }
}
