//! Supervised use of a (pretrained) encoder: a [`Classifier`] is an encoder — any stack of
//! layers, dense or convolutional — with a dense head and a softmax, trained end to end by
//! [`finetune`] on the one training loop (a cross-entropy head and a freeze schedule).
//!
//! Classifier files are written and read by [`crate::format`] (`kind` = `classifier`).

use crate::activation::Activation;
use crate::data::scale::Scaler;
use crate::error::{Error, Result};
use crate::layer::{Dense, Init, Layer};
use crate::model::Autoencoder;
use crate::model::arch::{Dims, LayerSpec, Planned, build, plan_stack, shape_of};
use crate::regularize::Regularizer;
use crate::rng::Rng;
use crate::tensor::{Matrix, MatrixRef, Rows, argmax};
use crate::train::fit::run;
use crate::train::step::Head;
use crate::train::trainee::{Targets, Trainee};
use crate::train::{Event, TrainConfig, TrainReport};
use serde::{Deserialize, Serialize};

/// Architecture of a classifier: an encoder, then a dense head with one output per class and
/// a softmax.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// Input shape: `[n]` for flat rows or `[channels, height, width]` for images.
    pub input: Vec<usize>,
    /// The encoder's layers, input side first (activations resolved).
    pub encoder: Vec<LayerSpec>,
    /// Class names; the head has one output per class.
    pub classes: Vec<String>,
    /// Dropout on the output of every encoder layer in training (0: off; nothing at inference).
    #[serde(default)]
    pub dropout: f32,
}

impl ClassifierConfig {
    /// The head: dense, one output per class, identity (the softmax is applied on top).
    fn head(&self) -> LayerSpec {
        LayerSpec::Dense {
            units: self.classes.len(),
            activation: Some(Activation::Identity),
            name: Some("head".into()),
        }
    }

    /// Every layer with its shapes, the head last.
    ///
    /// # Errors
    /// [`Error::Layer`] for a layer that does not fit; [`Error::Config`] for a bad input shape.
    pub fn plan(&self) -> Result<Vec<Planned>> {
        let head = [self.head()];
        plan_stack(
            shape_of(&self.input, "input")?,
            &[(true, &self.encoder), (false, &head)],
        )
    }

    /// Width of the input rows.
    pub fn input_dim(&self) -> usize {
        shape_of(&self.input, "input").map_or(0, Dims::len)
    }

    /// Checks the classes, the dropout and the layers.
    ///
    /// # Errors
    /// [`Error::Config`] for fewer than two classes, [`Error::Setting`] for the dropout, as
    /// [`ClassifierConfig::plan`] for the layers.
    pub fn validate(&self) -> Result<()> {
        if self.classes.len() < 2 {
            return Err(Error::Config(format!(
                "a classifier needs two or more classes, got {}",
                self.classes.len()
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::setting("dropout", self.dropout, "must be in [0, 1)"));
        }
        self.plan().map(|_| ())
    }

    /// Converts the `classifier` metadata of a version-1 file (dense layers: `input_dim`,
    /// `hidden`, `activations`, `classes`).
    ///
    /// # Errors
    /// The JSON error, or a message for inconsistent lengths.
    pub fn from_v1(json: &str) -> std::result::Result<Self, String> {
        #[derive(Deserialize)]
        struct V1 {
            input_dim: usize,
            hidden: Vec<usize>,
            activations: Vec<Activation>,
            classes: Vec<String>,
        }
        let v1: V1 = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if v1.activations.len() != v1.hidden.len() {
            return Err("inconsistent `classifier` metadata".into());
        }
        Ok(ClassifierConfig {
            input: vec![v1.input_dim],
            encoder: v1
                .hidden
                .iter()
                .zip(&v1.activations)
                .map(|(&units, &a)| LayerSpec::Dense {
                    units,
                    activation: Some(a),
                    name: None,
                })
                .collect(),
            classes: v1.classes,
            dropout: 0.0,
        })
    }
}

/// An encoder with a softmax head.
#[derive(Clone, Debug, PartialEq)]
pub struct Classifier {
    /// The architecture.
    pub config: ClassifierConfig,
    /// The encoder's layers, then the head.
    pub layers: Vec<Layer>,
    /// Input scaling (the encoder's).
    pub scaler: Scaler,
    /// What fine-tuning reported (per-epoch history; no wall time), saved in the file so the
    /// model carries its curves; `None` before fine-tuning.
    pub report: Option<TrainReport>,
}

impl Classifier {
    /// The encoder of `ae` (every layer up to the code) with a new head for `classes`, its
    /// weights drawn from `seed`.
    ///
    /// # Errors
    /// [`Error::Config`] for fewer than two classes.
    pub fn from_encoder(ae: &Autoencoder, classes: Vec<String>, seed: u64) -> Result<Self> {
        let cfg = ae.config();
        let config = ClassifierConfig {
            input: cfg.arch.input.clone(),
            encoder: cfg.arch.encoder.clone(),
            classes,
            dropout: 0.0,
        };
        config.validate()?;
        let mut layers = ae.layers()[..ae.encoder_layers()].to_vec();
        let mut rng = Rng::new(seed);
        let head = Dense::new(
            ae.code_dim(),
            config.classes.len(),
            Activation::Identity,
            Init::Xavier,
            &mut rng,
        );
        layers.push(Layer::Dense(head));
        Ok(Classifier {
            config,
            layers,
            scaler: ae.scaler().clone(),
            report: None,
        })
    }

    /// Assembles a classifier from its parts (used by the file loader).
    ///
    /// # Errors
    /// [`Error::Config`] when the layers do not match the config or the scaler the input.
    pub fn from_layers(config: ClassifierConfig, layers: Vec<Layer>, scaler: Scaler) -> Result<Self> {
        config.validate()?;
        let plan: Vec<Planned> = config.plan()?.into_iter().filter(|p| p.computes).collect();
        let ok = plan.len() == layers.len()
            && plan.iter().zip(&layers).all(|(p, l)| {
                p.kind == l.kind()
                    && p.weight_shape() == l.weight_shape()
                    && p.input.len() == l.n_in()
                    && p.activation == l.activation()
            });
        if !ok {
            return Err(Error::Config(
                "layers do not match the classifier's architecture".into(),
            ));
        }
        let d = config.input_dim();
        scaler.check(d)?;
        Ok(Classifier {
            config,
            layers,
            scaler,
            report: None,
        })
    }

    /// The same architecture with weights drawn from `seed` (the from-scratch baseline).
    ///
    /// # Errors
    /// As [`ClassifierConfig::plan`] (never, for a classifier that was built).
    pub fn reinit(&self, seed: u64) -> Result<Self> {
        let layers = build(&self.config.plan()?, Init::Auto, &mut Rng::new(seed))?;
        Ok(Classifier {
            config: self.config.clone(),
            layers,
            scaler: self.scaler.clone(),
            report: None,
        })
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.layers.iter().map(Layer::num_params).sum()
    }

    /// Width of the input rows.
    pub fn input_dim(&self) -> usize {
        self.layers[0].n_in()
    }

    /// Class probabilities of the rows of `x` (data in the user's units).
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong input width.
    pub fn predict_proba<'a>(&self, x: impl Into<MatrixRef<'a>>) -> Result<Matrix> {
        let x = x.into();
        if x.cols() != self.input_dim() {
            return Err(Error::Shape {
                what: "classifier input".into(),
                expected: format!("{} columns", self.input_dim()),
                got: format!("{} columns", x.cols()),
            });
        }
        let mut xs = Rows::Borrowed(x);
        if !self.scaler.is_identity() {
            self.scaler.transform(xs.to_mut());
        }
        let mut p = crate::infer::forward(&self.layers, |_| None, xs.view(), 0..self.layers.len());
        let c = p.cols();
        crate::layer::softmax::in_place(p.as_mut_slice(), c, 1);
        Ok(p)
    }

    /// The most probable class index of each row.
    ///
    /// # Errors
    /// As [`Classifier::predict_proba`].
    pub fn predict<'a>(&self, x: impl Into<MatrixRef<'a>>) -> Result<Vec<usize>> {
        let p = self.predict_proba(x)?;
        Ok((0..p.rows()).map(|i| argmax(p.row(i))).collect())
    }
}

/// Trains `model` on rows `x` with class indices `y` (softmax cross-entropy), on the one
/// training loop: `config` as for autoencoders (epochs, batch size, learning rate and schedule,
/// optimizer, validation, early stopping), `config.freeze_epochs` epochs of the head alone
/// first, the classifier's dropout on every encoder layer. `valid` holds validation rows and
/// their classes (or use `config.valid_fraction`). The scaler is the encoder's (the config's
/// scaling must be none). Bit-identical for any thread count, like [`crate::fit`].
///
/// # Errors
/// [`Error::InvalidData`] for mismatched lengths, class indices out of range or non-finite
/// data; [`Error::Setting`]/[`Error::Config`] for bad settings; [`Error::Diverged`] for a
/// non-finite loss.
pub fn finetune<'a, R: Into<crate::train::Flow>>(
    model: &mut Classifier,
    x: impl Into<MatrixRef<'a>>,
    y: &[usize],
    valid: Option<(MatrixRef<'_>, &[usize])>,
    config: &TrainConfig,
    on_event: impl FnMut(&Event<'_>) -> R,
) -> Result<TrainReport> {
    finetune_from(model, x, y, valid, config, None, on_event)
}

/// [`finetune`], continuing from a checkpoint as [`crate::train::fit_from`].
///
/// # Errors
/// As [`finetune`] and [`crate::train::fit_from`].
pub fn finetune_from<'a, R: Into<crate::train::Flow>>(
    model: &mut Classifier,
    x: impl Into<MatrixRef<'a>>,
    y: &[usize],
    valid: Option<(MatrixRef<'_>, &[usize])>,
    config: &TrainConfig,
    resume: Option<&crate::train::Checkpoint>,
    on_event: impl FnMut(&Event<'_>) -> R,
) -> Result<TrainReport> {
    model.config.validate()?;
    let n = model.layers.len();
    let dropout = model.config.dropout;
    let regs = (0..n)
        .map(|l| {
            (l + 1 < n && dropout > 0.0).then(|| Regularizer {
                dropout,
                ..Regularizer::default()
            })
        })
        .collect();
    let trainee = Trainee {
        layers: &mut model.layers,
        scaler: &mut model.scaler,
        fit_scaler: false,
        regs,
        head: Head::SoftmaxCrossEntropy,
        tied: Vec::new(),
        code: None,
        learned: None,
    };
    let valid = valid.map(|(v, t)| (v, Targets::Classes(t)));
    let report = run(trainee, x.into(), Targets::Classes(y), valid, config, resume, on_event)?;
    model.report = Some(report.clone().without_timing());
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Mlp;
    use crate::pretrain::pretrain;

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
        let ae = Mlp::new(10, 4)
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
        let cfg = TrainConfig {
            epochs: 1,
            batch_size: 6,
            lr,
            ..TrainConfig::default()
        };
        let mut stepped = model.clone();
        finetune(&mut stepped, &x, &y, None, &cfg, |_| {}).unwrap();
        for l in 0..model.layers.len() {
            for i in 0..model.layers[l].weight().len() {
                let h = 1e-3f32;
                let mut a = model.clone();
                a.layers[l].params_mut().0[i] += h;
                let mut b = model.clone();
                b.layers[l].params_mut().0[i] -= h;
                let g = (loss(&a) - loss(&b)) / (2.0 * f64::from(h));
                let moved = f64::from(stepped.layers[l].weight()[i] - model.layers[l].weight()[i]);
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
        assert_eq!(ae.encoder_layers(), 2);
        assert_eq!(ae.layers()[0].n_out(), 8);
        assert_eq!(ae.code_dim(), 4);
        assert_eq!(ae.layers().len(), 4);
        let run = |threads| {
            crate::with_threads(Some(threads), || {
                let mut m = Classifier::from_encoder(&ae, classes(), 1).unwrap();
                m.config.dropout = 0.1;
                let cfg = TrainConfig {
                    epochs: 30,
                    batch_size: 16,
                    lr: 0.01,
                    freeze_epochs: 3,
                    ..TrainConfig::default()
                };
                let h = finetune(&mut m, &x, &y, None, &cfg, |_| {}).unwrap();
                (m, h)
            })
            .unwrap()
        };
        let (m1, h1) = run(1);
        let (m2, _) = run(2);
        assert_eq!(m1, m2);
        let accuracy: Vec<f64> = h1.history.iter().map(|e| e.train_accuracy.unwrap()).collect();
        assert!(accuracy[29] > accuracy[0], "{accuracy:?}");
        let (xt, yt) = clusters(60, 9);
        let pred = m1.predict(&xt).unwrap();
        let acc = pred.iter().zip(&yt).filter(|(a, b)| a == b).count() as f64 / 60.0;
        assert!(acc > 0.95, "{acc}");
        // Frozen epochs leave the encoder as pretrained.
        let mut frozen = Classifier::from_encoder(&ae, classes(), 1).unwrap();
        let cfg = TrainConfig {
            epochs: 2,
            batch_size: 64,
            freeze_epochs: 2,
            ..TrainConfig::default()
        };
        finetune(&mut frozen, &x, &y, None, &cfg, |_| {}).unwrap();
        assert_eq!(frozen.layers[..2], ae.layers()[..2]);
        assert_ne!(
            frozen.layers[2].weight(),
            Classifier::from_encoder(&ae, classes(), 1).unwrap().layers[2].weight()
        );
    }

    /// A convolutional encoder fine-tunes too: conv, pool and dense layers under a head.
    #[test]
    fn convolutional_encoders_fine_tune() {
        let text = r#"
            activation = "relu"
            [[encoder]]
            type = "conv"
            filters = 4
            kernel = 3
            padding = 1
            [[encoder]]
            type = "max_pool"
            size = 2
            [[encoder]]
            type = "dense"
            units = 6
            [[decoder]]
            type = "dense"
            units = 64
            [[decoder]]
            type = "reshape"
            shape = [1, 8, 8]
        "#;
        let ae = crate::model::toml::parse(text, Dims::Image((1, 8, 8)))
            .unwrap()
            .init(3)
            .unwrap();
        // Two classes: a bright left half or a bright right half.
        let mut rng = Rng::new(4);
        let (mut data, mut y) = (Vec::new(), Vec::new());
        for i in 0..80 {
            let c = i % 2;
            y.push(c);
            data.extend((0..64).map(|p| if (p % 8 < 4) == (c == 0) { 0.9 } else { 0.1 } + 0.05 * rng.normal()));
        }
        let x = Matrix::from_vec(80, 64, data).unwrap();
        let mut m = Classifier::from_encoder(&ae, vec!["left".into(), "right".into()], 1).unwrap();
        assert_eq!(m.layers.len(), 4);
        let cfg = TrainConfig {
            epochs: 15,
            batch_size: 16,
            lr: 0.01,
            ..TrainConfig::default()
        };
        let report = finetune(&mut m, &x, &y, Some((x.view(), &y)), &cfg, |_| {}).unwrap();
        let last = report.history.last().unwrap();
        assert!(last.valid_accuracy.unwrap() > 0.95, "{last:?}");
        let pred = m.predict(&x).unwrap();
        assert_eq!(pred, y);
    }

    #[test]
    fn save_load_round_trip_and_autoencoder_files_are_named() {
        let ae = Mlp::new(5, 3).init(1).unwrap();
        let m = Classifier::from_encoder(&ae, classes(), 2).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.safetensors");
        crate::format::save_classifier(&p, &m).unwrap();
        assert_eq!(crate::format::load_classifier(&p).unwrap(), m);
        let q = dir.path().join("ae.safetensors");
        crate::format::save(
            &q,
            &crate::ModelFile {
                model: ae,
                provenance: Default::default(),
                anomaly: None,
                tabular: None,
                windows: None,
                neighbours: None,
            },
        )
        .unwrap();
        assert!(
            crate::format::load_classifier(&q)
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
