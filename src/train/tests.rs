//! Training tests: finite-difference checks of the whole loss (regularizers included), and
//! what each regularizer does to a trained model.

use super::step::{Head, Net, Workspace, forward_backward};
use super::*;
use crate::activation::Activation;
use crate::kernels::Precision;
use crate::model::{Autoencoder, Mlp};
use crate::noise::Noise;
use crate::regularize::{self, KlSparsity, Regularizer, TopK};
use crate::rng::Rng;
use crate::tensor::Matrix;

/// The regularizers of a model's layers, as the training loop takes them.
fn regs(m: &Autoencoder) -> Vec<Option<Regularizer>> {
    (0..m.layers.len())
        .map(|l| m.config.regularizer_at(l).cloned())
        .collect()
}

/// Loss and gradients of one step on rows `x` of the model's width, the regularizers' draws
/// from a fixed seed.
pub(super) fn step(m: &Autoencoder, x: &[f32]) -> (f64, Workspace) {
    let b = x.len() / m.input_dim();
    let regs = regs(m);
    let net = Net {
        layers: &m.layers,
        regs: &regs,
        head: Head::Reconstruction(m.config.loss),
    };
    let mut ws = Workspace::new(net, b, false);
    ws.x[..x.len()].copy_from_slice(x);
    let mut r = Rng::new(77);
    let mut reg_step = regularize::Step { epoch: 0, rng: &mut r };
    let out = forward_backward(net, &mut ws, b, Precision::F32, &mut reg_step, 0);
    (out.loss, ws)
}

/// A fixed batch of 4 rows of 6 values in [0, 1].
fn batch() -> Vec<f32> {
    let mut rng = Rng::new(8);
    (0..4 * 6).map(|_| rng.uniform()).collect()
}

/// Loss and gradients of one step on `x` (rows of 6), dropout drawn from a fixed seed.
fn loss_and_grads(m: &Autoencoder, x: &[f32]) -> (f64, Workspace) {
    step(m, x)
}

/// Central differences (f64 steps on f32 weights) of the full training loss, code
/// penalties included, against the analytic gradients, for every weight and bias. The
/// dropout mask is held fixed by re-seeding its generator for every evaluation.
fn check(reg: Regularizer, code_act: Activation) {
    check_with(reg, code_act, Default::default());
}

/// [`check`] with regularizers on other hidden layers too.
fn check_with(reg: Regularizer, code_act: Activation, hidden: std::collections::BTreeMap<usize, Regularizer>) {
    let mut cfg = Mlp::new(6, 7)
        .with_hidden(&[5])
        .with_activations(Activation::Tanh, code_act, Activation::Sigmoid);
    cfg.regularizer = reg.clone();
    cfg.hidden_regularizers = hidden;
    assert_gradients(&cfg.init(3).unwrap(), &format!("{reg:?}"));
}

/// [`assert_whole_gradients`] on [`batch`], failures labelled `what`.
pub(super) fn assert_gradients(model: &Autoencoder, what: &str) {
    assert_whole_gradients(model, &batch(), what);
}

/// Tied weights: perturbing a shared weight moves both layers; the combined gradient must
/// match.
#[test]
fn tied_gradient() {
    let mut cfg =
        Mlp::new(6, 3)
            .with_hidden(&[5])
            .with_activations(Activation::Tanh, Activation::Identity, Activation::Sigmoid);
    cfg.tied = true;
    let model = cfg.init(3).unwrap();
    assert_eq!(model.layers[3].params().0[1], model.layers[0].params().0[6]); // W_dec[0][1] = W_enc[1][0] (5 x 6)
    let x = batch();
    let run = |m: &Autoencoder| loss_and_grads(m, &x);
    let (_, ws) = run(&model);
    for (e, d) in model.config.tied_pairs() {
        let (n_in, n_out) = (model.layers[e].n_in(), model.layers[e].n_out());
        for o in 0..n_out {
            for i in 0..n_in {
                let eval = |delta: f32| {
                    let mut m = model.clone();
                    m.layers[e].params_mut().0[o * n_in + i] += delta;
                    m.sync_tied();
                    run(&m).0
                };
                let numeric = (eval(1e-3) - eval(-1e-3)) / 2e-3;
                let analytic = (ws.dw[e][o * n_in + i] + ws.dw[d][i * n_out + o]) as f64;
                assert!(
                    (numeric - analytic).abs() < 2e-2 * numeric.abs().max(analytic.abs()) + 2e-4,
                    "pair ({e}, {d}) [{o}][{i}]: {numeric} vs {analytic}"
                );
            }
        }
    }
    // Training keeps the tie.
    let data = Matrix::from_vec(4, 6, x.clone()).unwrap();
    let mut m = model.clone();
    fit(
        &mut m,
        &data,
        None,
        &TrainConfig {
            epochs: 3,
            batch_size: 2,
            ..Default::default()
        },
        |_| {},
    )
    .unwrap();
    let mut synced = m.clone();
    synced.sync_tied();
    assert_eq!(synced, m);
    assert_ne!(m.layers[0].params().0, model.layers[0].params().0);
}

#[test]
fn hidden_layer_regularizer_gradients() {
    // Layers: 0 (6 -> 5, tanh, hidden), 1 (code), 2 (decoder hidden 7 -> 5, tanh), 3 (output).
    let topk = Some(TopK {
        k: 3,
        encode_k: None,
        start_k: None,
        anneal_epochs: 0,
        ..TopK::new(3)
    });
    let mut hidden = std::collections::BTreeMap::new();
    hidden.insert(
        0,
        Regularizer {
            l1: 0.2,
            dropout: 0.25,
            topk,
            ..Default::default()
        },
    );
    hidden.insert(
        2,
        Regularizer {
            l1: 0.1,
            ..Default::default()
        },
    );
    // (Code-layer L1 has its own check; here one sample's code unit sits within the finite
    // difference step of |h|'s kink at 0, so the code layer stays unregularized.)
    check_with(Regularizer::default(), Activation::Tanh, hidden);
    // The output layer and out-of-range layers are refused with the list of hidden layers.
    let mut cfg = Mlp::new(6, 7).with_hidden(&[5]);
    cfg.hidden_regularizers.insert(
        3,
        Regularizer {
            l1: 0.1,
            ..Default::default()
        },
    );
    let err = cfg.init(1).unwrap_err().to_string();
    assert!(err.contains("the layers that take one are [0, 1, 2]"), "{err}");
}

#[test]
fn l1_gradient() {
    check(
        Regularizer {
            l1: 0.3,
            ..Default::default()
        },
        Activation::Relu,
    );
}

#[test]
fn kl_gradient() {
    let kl = Some(KlSparsity { rho: 0.1, beta: 0.7 });
    check(
        Regularizer {
            kl,
            ..Default::default()
        },
        Activation::Sigmoid,
    );
}

#[test]
fn topk_gradient() {
    let topk = Some(TopK {
        k: 3,
        encode_k: None,
        start_k: None,
        anneal_epochs: 0,
        ..TopK::new(3)
    });
    check(
        Regularizer {
            topk,
            ..Default::default()
        },
        Activation::Identity,
    );
}

#[test]
fn binary_code_by_noise_gradient() {
    // The noise is drawn from a re-seeded generator, so the loss is a smooth function.
    let binary = Some(crate::regularize::BinaryCode::Noise { sigma: 2.0 });
    check(
        Regularizer {
            binary,
            l1: 0.05,
            ..Default::default()
        },
        Activation::Sigmoid,
    );
}

#[test]
fn straight_through_code_is_binary_forward_and_passes_gradients_back() {
    let mut cfg =
        Mlp::new(6, 7)
            .with_hidden(&[5])
            .with_activations(Activation::Tanh, Activation::Sigmoid, Activation::Sigmoid);
    cfg.regularizer.binary = Some(crate::regularize::BinaryCode::StraightThrough);
    let model = cfg.init(3).unwrap();
    let x = batch();
    let (_, ws) = loss_and_grads(&model, &x);
    let code = ws.acts(1, 4, 7);
    assert!(code.iter().all(|&v| v == 0.0 || v == 1.0), "{code:?}");
    assert!(code.contains(&0.0) && code.contains(&1.0));
    // The threshold is flat almost everywhere; straight-through still gives the encoder a
    // gradient, and the decoder's is exact: check the decoder by finite differences.
    assert!(ws.dw[0].iter().any(|&g| g != 0.0));
    let h = 1e-3f32;
    for l in 2..model.layers.len() {
        for i in 0..model.layers[l].params().0.len() {
            let eval = |delta: f32| {
                let mut m = model.clone();
                m.layers[l].params_mut().0[i] += delta;
                loss_and_grads(&m, &x).0
            };
            let numeric = (eval(h) - eval(-h)) / (2.0 * h as f64);
            let analytic = ws.dw[l][i] as f64;
            assert!(
                (numeric - analytic).abs() < 2e-2 * numeric.abs() + 2e-4,
                "{numeric} vs {analytic}"
            );
        }
    }
    // Encoding thresholds at 0.5.
    let codes = model.encode(&Matrix::from_vec(4, 6, x.clone()).unwrap()).unwrap();
    assert!(codes.as_slice().iter().all(|&v| v == 0.0 || v == 1.0));
}

#[test]
fn binary_code_needs_a_sigmoid() {
    let mut cfg = Mlp::new(6, 3);
    cfg.regularizer.binary = Some(crate::regularize::BinaryCode::StraightThrough);
    assert!(
        cfg.init(1)
            .unwrap_err()
            .to_string()
            .contains("a binary code needs sigmoid units")
    );
}

#[test]
fn dropout_and_everything_together_gradient() {
    let topk = Some(TopK {
        k: 4,
        encode_k: None,
        start_k: None,
        anneal_epochs: 0,
        ..TopK::new(4)
    });
    let reg = Regularizer {
        l1: 0.1,
        dropout: 0.3,
        topk,
        ..Default::default()
    };
    check(reg, Activation::Sigmoid);
    check(
        Regularizer {
            dropout: 0.5,
            ..Default::default()
        },
        Activation::Tanh,
    );
}

pub(super) fn blobs(n: usize, d: usize, seed: u64) -> Matrix {
    let mut rng = Rng::new(seed);
    let mut x = Matrix::zeros(n, d);
    for i in 0..n {
        let c = rng.below(8);
        for (j, v) in x.row_mut(i).iter_mut().enumerate() {
            *v = (((j + c) % 8) as f32 / 8.0 + 0.1 * rng.uniform()).min(1.0);
        }
    }
    x
}

#[test]
fn topk_codes_have_exactly_k_active_units_and_k_anneals() {
    let x = blobs(600, 16, 1);
    let mut cfg = Mlp::new(16, 40);
    cfg.regularizer.topk = Some(TopK {
        k: 5,
        encode_k: Some(10),
        start_k: Some(20),
        anneal_epochs: 4,
        ..TopK::new(5)
    });
    let mut m = cfg.init(1).unwrap();
    let t = cfg.regularizer.topk.unwrap();
    assert_eq!((t.k_at(0), t.k_at(2), t.k_at(4), t.k_at(9)), (20, 13, 5, 5));
    fit(
        &mut m,
        &x,
        None,
        &TrainConfig {
            epochs: 6,
            batch_size: 50,
            ..Default::default()
        },
        |_| {},
    )
    .unwrap();
    let codes = m.encode(&x).unwrap();
    for i in 0..codes.rows() {
        assert!(codes.row(i).iter().filter(|v| **v != 0.0).count() <= 10);
    }
}

#[test]
fn kl_sparsity_pulls_mean_activation_to_rho() {
    let x = blobs(2000, 16, 2);
    let mut cfg = Mlp::new(16, 32).with_activations(Activation::Relu, Activation::Sigmoid, Activation::Sigmoid);
    cfg.regularizer.kl = Some(KlSparsity { rho: 0.05, beta: 1.0 });
    let mut m = cfg.init(1).unwrap();
    let train = TrainConfig {
        epochs: 40,
        batch_size: 100,
        lr: 3e-3,
        ..Default::default()
    };
    fit(&mut m, &x, None, &train, |_| {}).unwrap();
    let codes = m.encode(&x).unwrap();
    let mean = codes.as_slice().iter().map(|&v| v as f64).sum::<f64>() / codes.as_slice().len() as f64;
    assert!((mean - 0.05).abs() < 0.2 * 0.05, "mean code activation {mean}");
}

#[test]
fn kl_needs_a_sigmoid_code() {
    let mut cfg = Mlp::new(16, 32);
    cfg.regularizer.kl = Some(KlSparsity { rho: 0.05, beta: 1.0 });
    assert!(
        cfg.init(1)
            .unwrap_err()
            .to_string()
            .contains("KL sparsity needs sigmoid units")
    );
}

#[test]
fn max_norm_caps_incoming_weights() {
    let x = blobs(300, 16, 3);
    let mut m = Mlp::new(16, 8).with_hidden(&[12]).init(1).unwrap();
    let train = TrainConfig {
        epochs: 3,
        lr: 0.05,
        max_norm: Some(0.5),
        ..Default::default()
    };
    fit(&mut m, &x, None, &train, |_| {}).unwrap();
    for l in m.layers() {
        for row in l.params().0.chunks_exact(l.n_in()) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!(norm <= 0.5 + 1e-5, "{norm}");
        }
    }
}

mod conv {
    use super::*;
    use crate::model::Dims;
    use crate::model::toml::parse;

    /// Conv → pool → dense code (L1 + top-k) → dense → reshape → upsample → conv: the whole
    /// network's gradient, by central differences on every parameter.
    const NET: &str = r#"
        activation = "tanh"
        code_activation = "tanh"
        [code]
        l1 = 0.01
        topk = { k = 3 }
        [[encoder]]
        type = "conv"
        filters = 2
        kernel = 3
        padding = 1
        [[encoder]]
        type = "max_pool"
        size = 2
        [[encoder]]
        type = "dense"
        units = 4
        [[decoder]]
        type = "dense"
        units = 18
        [[decoder]]
        type = "reshape"
        shape = [2, 3, 3]
        [[decoder]]
        type = "upsample"
        factor = 2
        [[decoder]]
        type = "conv_transpose"
        filters = 2
        kernel = 3
        padding = 1
    "#;

    #[test]
    fn whole_conv_network_gradient_matches_finite_differences() {
        let cfg = parse(NET, Dims::Image((2, 6, 6))).unwrap();
        let mut model = cfg.init(5).unwrap();
        let mut rng = Rng::new(1);
        for l in &mut model.layers {
            l.params_mut()
                .1
                .iter_mut()
                .for_each(|b| *b = rng.uniform_range(-0.2, 0.2));
        }
        let x: Vec<f32> = (0..3 * 72).map(|_| rng.uniform()).collect();
        super::assert_whole_gradients(&model, &x, "conv network");
    }

    #[test]
    fn conv_training_is_thread_invariant_and_learns() {
        let cfg = parse(NET, Dims::Image((2, 6, 6))).unwrap();
        let mut rng = Rng::new(3);
        let data = Matrix::from_vec(70, 72, (0..70 * 72).map(|_| rng.uniform()).collect()).unwrap();
        let config = TrainConfig {
            epochs: 3,
            batch_size: 32,
            noise: vec![Noise::Mask { p: 0.2 }],
            ..Default::default()
        };
        let (_, la) = super::trained_on_1_and_3_threads(|| cfg.init(2).unwrap(), &data, &config);
        assert!(la[2] < la[0], "the loss goes down: {la:?}");
    }
}

/// Central differences (f64 steps on f32 weights) of the step's whole loss on `x` against its
/// analytic gradients, for every weight and bias of `model` (whatever its layers); failures
/// labelled `what`.
fn assert_whole_gradients(model: &Autoencoder, x: &[f32], what: &str) {
    let (_, ws) = step(model, x);
    let h = 1e-3f32;
    let mut checked = 0;
    for l in 0..model.layers.len() {
        let n_w = model.layers[l].weight().len();
        for i in 0..n_w + model.layers[l].bias().len() {
            let eval = |delta: f32| {
                let mut m = model.clone();
                let (w, b) = m.layers[l].params_mut();
                if i < n_w {
                    w[i] += delta
                } else {
                    b[i - n_w] += delta
                }
                step(&m, x).0
            };
            let numeric = (eval(h) - eval(-h)) / (2.0 * f64::from(h));
            let analytic = f64::from(if i < n_w { ws.dw[l][i] } else { ws.db[l][i - n_w] });
            assert!(
                (numeric - analytic).abs() < 2e-2 * numeric.abs().max(analytic.abs()) + 2e-4,
                "{what} layer {l} ({}) param {i}: numeric {numeric} analytic {analytic}",
                model.layers[l].kind()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, model.num_params());
}

/// Recurrent autoencoders: an LSTM reads each window into a code, a repeat layer hands it to
/// every step of a GRU decoder, a 1-D convolution of width 1 maps its states back to the
/// channels (and the same with the two recurrent kinds swapped).
mod recurrent {
    use super::*;
    use crate::model::Dims;
    use crate::model::toml::parse;

    fn net(encoder: &str, decoder: &str) -> String {
        format!(
            r#"
            output_activation = "identity"
            [[encoder]]
            type = "{encoder}"
            units = 3
            [[encoder]]
            type = "dense"
            units = 2
            activation = "tanh"
            [[decoder]]
            type = "repeat"
            steps = 5
            [[decoder]]
            type = "{decoder}"
            units = 3
            return_sequences = true
            [[decoder]]
            type = "conv1d"
            filters = 2
            kernel = 1
            "#
        )
    }

    #[test]
    fn whole_recurrent_network_gradient_matches_finite_differences() {
        for (enc, dec) in [("lstm", "gru"), ("gru", "lstm")] {
            let cfg = parse(&net(enc, dec), Dims::Image((2, 1, 5))).unwrap();
            let model = cfg.init(7).unwrap();
            let kinds: Vec<_> = model.layers.iter().map(|l| l.kind()).collect();
            assert_eq!(kinds, [enc, "dense", "repeat", dec, "conv"]);
            let mut rng = Rng::new(2);
            let x: Vec<f32> = (0..3 * 10).map(|_| rng.normal()).collect();
            super::assert_whole_gradients(&model, &x, enc);
        }
    }

    #[test]
    fn recurrent_training_is_thread_invariant_and_learns() {
        let cfg = parse(&net("lstm", "gru"), Dims::Image((2, 1, 5))).unwrap();
        // Two channels of a slow sine, cut into windows of 5 steps.
        let rows: Vec<f32> = (0..90)
            .flat_map(|i| {
                let at = move |t: usize| ((i + t) as f32 * 0.3).sin();
                (0..5).map(at).chain((0..5).map(move |t| 0.5 * at(t + 2)))
            })
            .collect();
        let data = Matrix::from_vec(90, 10, rows).unwrap();
        let config = TrainConfig {
            epochs: 20,
            batch_size: 20,
            lr: 1e-2,
            ..Default::default()
        };
        let (_, la) = super::trained_on_1_and_3_threads(|| cfg.init(4).unwrap(), &data, &config);
        assert!(la[19] < 0.5 * la[0], "the loss goes down: {la:?}");
    }
}

/// Trains the model `init` makes on `data` with 1 and with 3 threads, asserts the two runs
/// give the same model and losses bit for bit, and returns the model and its epochs' losses.
pub(super) fn trained_on_1_and_3_threads(
    init: impl Fn() -> Autoencoder + Sync,
    data: &Matrix,
    config: &TrainConfig,
) -> (Autoencoder, Vec<f64>) {
    let run = |t| {
        crate::with_threads(Some(t), || {
            let mut m = init();
            let r = fit(&mut m, data, None, config, |_| {}).unwrap();
            (m, r.history.iter().map(|h| h.train_loss).collect::<Vec<_>>())
        })
        .unwrap()
    };
    let (a, la) = run(1);
    let (b, lb) = run(3);
    assert_eq!(a, b);
    assert_eq!(la, lb);
    (a, la)
}

/// Mean absolute correlation between different code units over the rows of `codes`.
fn mean_abs_correlation(codes: &Matrix) -> f64 {
    let (n, w) = codes.shape();
    let col = |j: usize| (0..n).map(move |i| f64::from(codes.row(i)[j]));
    let mean: Vec<f64> = (0..w).map(|j| col(j).sum::<f64>() / n as f64).collect();
    let sd: Vec<f64> = (0..w)
        .map(|j| {
            (col(j).map(|v| (v - mean[j]).powi(2)).sum::<f64>() / n as f64)
                .sqrt()
                .max(1e-12)
        })
        .collect();
    let mut total = 0.0;
    for a in 0..w {
        for b in 0..w {
            if a != b {
                let c: f64 = (0..n)
                    .map(|i| (f64::from(codes.row(i)[a]) - mean[a]) * (f64::from(codes.row(i)[b]) - mean[b]))
                    .sum::<f64>()
                    / n as f64;
                total += (c / (sd[a] * sd[b])).abs();
            }
        }
    }
    total / (w * (w - 1)) as f64
}

/// Decorrelation does what it says: the code units of a model trained with it are less
/// correlated than without (measured here: mean |correlation| 0.29 -> 0.05 at decov 0.1, the
/// training loss 0.0010 -> 0.0022: a trade).
#[test]
fn decorrelation_decorrelates_the_code() {
    let x = blobs(1500, 16, 5);
    let train = |decov: f32| {
        let mut mlp = Mlp::new(16, 6).with_hidden(&[24]);
        mlp.regularizer.decov = decov;
        let mut m = mlp.init(2).unwrap();
        let cfg = TrainConfig {
            epochs: 30,
            batch_size: 100,
            lr: 3e-3,
            ..TrainConfig::default()
        };
        let r = fit(&mut m, &x, None, &cfg, |_| {}).unwrap();
        let codes = m.encode(&x).unwrap();
        (mean_abs_correlation(&codes), r.history.last().unwrap().train_loss)
    };
    let (plain, plain_loss) = train(0.0);
    let (decorrelated, loss) = train(0.1);
    assert!(decorrelated < 0.5 * plain, "{plain} -> {decorrelated}");
    assert!(
        loss < 10.0 * plain_loss,
        "the code still reconstructs: {plain_loss} -> {loss}"
    );
}

/// Trains with a checkpoint requested after batch `at` of epoch `epoch` (saved through its
/// bytes), then continues a fresh model from it: the weights equal an uninterrupted run's.
#[test]
fn a_checkpoint_continues_to_the_same_weights() {
    let x = blobs(300, 16, 4);
    let mut cfg = Mlp::new(16, 6).with_hidden(&[12]);
    cfg.tied = true;
    cfg.regularizer.dropout = 0.1;
    let config = TrainConfig {
        epochs: 5,
        batch_size: 32,
        valid_fraction: 0.2,
        patience: Some(10),
        noise: vec![Noise::Gaussian { sigma: 0.1 }],
        schedule: crate::optim::Schedule::Cosine { min_factor: 0.1 },
        seed: 3,
        ..Default::default()
    };
    let mut whole = cfg.init(1).unwrap();
    let report = fit(&mut whole, &x, None, &config, |_| {}).unwrap();
    // Mid-epoch (epoch 3, after batch 4), after the last (short) batch of an epoch (240
    // training rows: 8 batches, the last of 16 rows), and at an epoch's end (epoch 2).
    for (stop_epoch, stop_batch) in [(3, 4), (3, 8), (2, 0)] {
        let mut saved = None;
        let mut epoch = 0;
        let mut first = cfg.init(1).unwrap();
        fit(&mut first, &x, None, &config, |e| match e {
            Event::EpochStart { epoch: n, .. } => {
                epoch = *n;
                Flow::Continue
            }
            Event::Batch { batch, .. } if epoch == stop_epoch && *batch == stop_batch => Flow::Stop,
            Event::EpochEnd(s) if stop_batch == 0 && s.epoch == stop_epoch => Flow::Stop,
            Event::Checkpoint(ck) => {
                saved = Some(ck.to_bytes().unwrap());
                Flow::Continue
            }
            _ => Flow::Continue,
        })
        .unwrap();
        let ck = Checkpoint::from_bytes(std::path::Path::new("ck"), &saved.expect("a checkpoint on stop")).unwrap();
        let expected = if stop_batch == 0 {
            (stop_epoch + 1, 0)
        } else {
            (stop_epoch, stop_batch)
        };
        assert_eq!((ck.epoch(), ck.next_batch()), expected);
        let mut resumed = cfg.init(1).unwrap();
        let again = fit_from(&mut resumed, &x, None, &config, Some(&ck), |_| {}).unwrap();
        assert_eq!(resumed.layers, whole.layers, "stopped at {stop_epoch}/{stop_batch}");
        assert_eq!(again.without_timing().history, report.clone().without_timing().history);
    }
    // Other settings or data are refused.
    let mut saved = None;
    fit(&mut cfg.init(1).unwrap(), &x, None, &config, |e| match e {
        Event::Batch { .. } => Flow::Stop,
        Event::Checkpoint(ck) => {
            saved = Some((*ck).clone());
            Flow::Continue
        }
        _ => Flow::Continue,
    })
    .unwrap();
    let ck = saved.unwrap();
    let other = TrainConfig {
        seed: 4,
        ..config.clone()
    };
    let e = fit_from(&mut cfg.init(1).unwrap(), &x, None, &other, Some(&ck), |_| {}).unwrap_err();
    assert!(e.to_string().contains("seed"), "{e}");
    let e = fit_from(
        &mut cfg.init(1).unwrap(),
        &blobs(300, 16, 5),
        None,
        &config,
        Some(&ck),
        |_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("other data"), "{e}");
    let wider = Mlp::new(16, 7).with_hidden(&[12]).init(1).unwrap();
    let e = fit_from(&mut { wider }, &x, None, &config, Some(&ck), |_| {}).unwrap_err();
    assert!(e.to_string().contains("architecture"), "{e}");
}

/// Runs `fit_shard` on `shards` as ranks in threads; returns each rank's model and report.
fn ranks_in_threads(
    model: &Autoencoder,
    shards: &[Matrix],
    cfg: &TrainConfig,
    sync: crate::dist::Sync,
) -> Vec<crate::Result<(Autoencoder, TrainReport)>> {
    let comms = crate::dist::Local::group(shards.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = comms
            .into_iter()
            .zip(shards)
            .map(|(mut comm, shard)| {
                let mut m = model.clone();
                s.spawn(move || {
                    let mut team = crate::dist::Team { comm: &mut comm, sync };
                    let r = fit_shard(&mut m, shard, cfg, &mut team, |_: &Event<'_>| ());
                    if r.is_ok() {
                        comm.finish();
                    }
                    r.map(|rep| (m, rep))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn weights(m: &Autoencoder) -> Vec<u32> {
    m.layers
        .iter()
        .flat_map(|l| {
            let (w, b) = l.params();
            w.iter().chain(b).map(|v| v.to_bits()).collect::<Vec<_>>()
        })
        .collect()
}

/// One rank of a data-parallel run is plain training, bit for bit.
#[test]
fn one_rank_trains_as_fit_does() {
    let x = blobs(150, 6, 4);
    let cfg = TrainConfig {
        epochs: 3,
        batch_size: 32,
        valid_fraction: 0.2,
        scaling: crate::Scaling::Standard,
        noise: vec![Noise::Gaussian { sigma: 0.1 }],
        seed: 5,
        ..Default::default()
    };
    let model = Mlp::new(6, 2).with_hidden(&[5]).init(1).unwrap();
    let mut plain = model.clone();
    let want = fit(&mut plain, &x, None, &cfg, |_: &Event<'_>| ()).unwrap();
    let got = ranks_in_threads(&model, std::slice::from_ref(&x), &cfg, Default::default());
    let (m, rep) = got.into_iter().next().unwrap().unwrap();
    assert_eq!(weights(&m), weights(&plain));
    assert_eq!(m.scaler, plain.scaler);
    assert_eq!(
        rep.history.last().unwrap().valid_loss,
        want.history.last().unwrap().valid_loss
    );
}

/// Two ranks: one SGD step on full shards equals the step computed by hand from each
/// shard's gradient (its rows in its rank's shuffled order), weighted by its rows and summed
/// rank 0 first, bit for bit; both ranks hold that model; a second run gives it again.
#[test]
fn two_ranks_sum_their_gradients_in_rank_order() {
    let x = blobs(60, 6, 9);
    let shards = [
        x.select_rows(&(0..60).step_by(2).collect::<Vec<_>>()),
        x.select_rows(&(0..60).filter(|i| i % 2 == 1).take(27).collect::<Vec<_>>()),
    ];
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 64,
        lr: 0.1,
        optimizer: crate::OptimizerConfig::Sgd {
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        },
        seed: 3,
        ..Default::default()
    };
    let model = Mlp::new(6, 2).with_hidden(&[5]).init(2).unwrap();
    let got = ranks_in_threads(&model, &shards, &cfg, Default::default());
    let got: Vec<_> = got.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(weights(&got[0].0), weights(&got[1].0));
    assert_eq!(got[0].1.train_rows, 57);
    // By hand: each rank's gradient of the mean loss over its rows, in its shuffled order.
    let grads: Vec<Workspace> = shards
        .iter()
        .enumerate()
        .map(|(r, s)| {
            let mut order: Vec<usize> = (0..s.rows()).collect();
            Rng::stream(crate::dist::rank_seed(cfg.seed, r), 0x5348).shuffle(&mut order);
            step(&model, s.select_rows(&order).as_slice()).1
        })
        .collect();
    let w = [(30.0f64 / 57.0) as f32, (27.0f64 / 57.0) as f32];
    let mut want = model.clone();
    for (l, layer) in want.layers.iter_mut().enumerate() {
        let (wt, b) = layer.params_mut();
        for (p, gs) in [
            (wt, [&grads[0].dw[l], &grads[1].dw[l]]),
            (b, [&grads[0].db[l], &grads[1].db[l]]),
        ] {
            for (i, v) in p.iter_mut().enumerate() {
                let mut g = 0.0f32;
                g += w[0] * gs[0][i];
                g += w[1] * gs[1][i];
                *v -= 0.1 * g;
            }
        }
    }
    assert_eq!(weights(&got[0].0), weights(&want));
    let again = ranks_in_threads(&model, &shards, &cfg, Default::default());
    assert_eq!(weights(&again[1].as_ref().unwrap().0), weights(&want));
}

/// Weight averaging keeps the ranks on one model; a rank that fails stops the others with
/// an error instead of leaving them waiting.
#[test]
fn averaging_ranks_agree_and_a_failing_rank_stops_the_others() {
    let x = blobs(200, 6, 1);
    let shards = [
        x.select_rows(&(0..100).collect::<Vec<_>>()),
        x.select_rows(&(100..200).collect::<Vec<_>>()),
    ];
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 40,
        seed: 1,
        ..Default::default()
    };
    let model = Mlp::new(6, 2).with_hidden(&[5]).init(2).unwrap();
    let got = ranks_in_threads(&model, &shards, &cfg, crate::dist::Sync::Average { every: 3 });
    let got: Vec<_> = got.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(weights(&got[0].0), weights(&got[1].0));
    assert_ne!(weights(&got[0].0), weights(&model));
    assert!(got[0].1.history[1].train_loss < got[0].1.history[0].train_loss);
    // Rank 1's rows have another width: it fails, and rank 0 stops with a clear error.
    let bad = [shards[0].clone(), Matrix::from_vec(2, 3, vec![0.0; 6]).unwrap()];
    let got = ranks_in_threads(&model, &bad, &cfg, Default::default());
    assert!(got[1].as_ref().unwrap_err().to_string().contains("columns"));
    let e = got[0].as_ref().unwrap_err().to_string();
    assert!(e.contains("rank 1 of 2 stopped"), "{e}");
}

/// A VAE of `d` inputs, one tanh hidden layer of `hidden`, a Gaussian code of `code` units
/// with the KL term `prior`, and a Bernoulli decoder (sigmoid output, BCE).
fn bernoulli_vae(d: usize, hidden: usize, code: usize, prior: crate::layer::Prior) -> Mlp {
    let mut cfg = Mlp::new(d, code)
        .with_hidden(&[hidden])
        .with_activations(Activation::Tanh, Activation::Identity, Activation::Sigmoid)
        .with_loss(crate::loss::Loss::Bce);
    cfg.vae = Some(prior);
    cfg
}

/// A variational autoencoder's whole objective (BCE reconstruction of the sampled code plus
/// the KL term, β and a capacity target) against central differences, the code's draws
/// fixed by the step's seed.
#[test]
fn vae_gradient() {
    use crate::layer::Prior;
    for prior in [
        Prior::default(),
        Prior {
            beta: 3.0,
            capacity: 0.5,
            warmup: 0,
            samples: 1,
        },
    ] {
        let cfg = bernoulli_vae(6, 5, 2, prior);
        let model = cfg.init(4).unwrap();
        assert!(matches!(model.layers[2], crate::layer::Layer::Gaussian(_)));
        assert_gradients(&model, &format!("{prior:?}"));
    }
}

/// The IWAE objective (3 draws a row, fixed by the step's seed): its gradient, through the
/// importance weights, against central differences of its loss.
#[test]
fn iwae_gradient() {
    let cfg = bernoulli_vae(
        6,
        5,
        2,
        crate::layer::Prior {
            samples: 3,
            warmup: 2,
            ..Default::default()
        },
    );
    let model = cfg.init(4).unwrap();
    assert_gradients(&model, "iwae k = 3");
}

/// IWAE training gives the same model on 1 and 3 threads, and its loss falls.
#[test]
fn iwae_training_is_thread_invariant() {
    let data = blobs(200, 10, 6);
    let cfg = bernoulli_vae(
        10,
        12,
        3,
        crate::layer::Prior {
            samples: 5,
            ..Default::default()
        },
    );
    let config = TrainConfig {
        epochs: 4,
        batch_size: 32,
        lr: 3e-3,
        binarize: true,
        ..Default::default()
    };
    let (_, losses) = trained_on_1_and_3_threads(|| cfg.init(1).unwrap(), &data, &config);
    assert!(losses[3] < losses[0], "{losses:?}");
}

/// The IWAE loss is the importance-weighted bound: averaged over draws, it lies between the
/// negative ELBO and the negative log-likelihood (estimated with 2,000 samples), in nats a row,
/// and it tightens as k grows.
#[test]
fn the_iwae_loss_lies_between_the_elbo_and_the_likelihood() {
    use crate::layer::Layer;
    let data = blobs(64, 6, 3);
    let cfg = bernoulli_vae(6, 8, 2, crate::layer::Prior::default());
    let mut m = cfg.init(2).unwrap();
    let config = TrainConfig {
        epochs: 30,
        batch_size: 16,
        lr: 3e-3,
        ..Default::default()
    };
    fit(&mut m, &data, None, &config, |_| {}).unwrap();
    let per_row = |k: usize| {
        let mut m = m.clone();
        for l in m.layers.iter_mut() {
            if let Layer::Gaussian(g) = l {
                g.prior.samples = k;
            }
        }
        let regs = regs(&m);
        let net = Net {
            layers: &m.layers,
            regs: &regs,
            head: Head::Reconstruction(m.config.loss),
        };
        let mut sum = 0.0;
        for seed in 0..40 {
            let mut ws = Workspace::new(net, 64, false);
            ws.x[..64 * 6].copy_from_slice(data.as_slice());
            let mut r = Rng::new(seed);
            let mut reg_step = regularize::Step { epoch: 0, rng: &mut r };
            sum += forward_backward(net, &mut ws, 64, Precision::F32, &mut reg_step, 0).loss * 6.0;
        }
        sum / 40.0
    };
    let (elbo, k2, k8) = (per_row(1), per_row(2), per_row(8));
    let mut s = crate::vae::VaeSums::default();
    s.add(&m, &data, 2000, &mut Rng::new(9)).unwrap();
    let nll = -s.finish(2000).log_likelihood;
    assert!(elbo > k2 && k2 > k8, "−ELBO {elbo}, IWAE-2 {k2}, IWAE-8 {k8}");
    assert!(k8 > nll - 0.02, "IWAE-8 {k8} against −log p(x) {nll}");
}

/// A VAE trained with dynamic binarization and KL warm-up: the same model on 1 and 3
/// threads, a falling loss, and a lower bound that rises.
#[test]
fn vae_training_is_thread_invariant_and_learns() {
    let data = blobs(300, 12, 5);
    let cfg = bernoulli_vae(
        12,
        16,
        3,
        crate::layer::Prior {
            beta: 1.0,
            capacity: 0.0,
            warmup: 2,
            samples: 1,
        },
    );
    let untrained = cfg.init(1).unwrap();
    let elbo = |m: &Autoencoder| {
        let mut s = crate::vae::VaeSums::default();
        s.add(m, &data, 8, &mut Rng::new(2)).unwrap();
        s.finish(8)
    };
    let config = TrainConfig {
        epochs: 6,
        batch_size: 32,
        lr: 3e-3,
        binarize: true,
        ..Default::default()
    };
    let (a, la) = trained_on_1_and_3_threads(|| cfg.init(1).unwrap(), &data, &config);
    assert!(la[5] < la[0], "the loss goes down: {la:?}");
    let (before, after) = (elbo(&untrained), elbo(&a));
    assert!(after.elbo > before.elbo + 0.5, "ELBO {} -> {}", before.elbo, after.elbo);
    assert!(after.log_likelihood >= after.elbo - 0.05, "{after:?}");
    assert!(after.kl > 0.0);
}

/// Binarization draws input and target together, so it refuses paired targets and values
/// outside [0, 1].
#[test]
fn binarization_needs_an_autoencoder_of_values_in_0_1() {
    let mut m = Mlp::new(3, 2).init(0).unwrap();
    let x = Matrix::from_vec(2, 3, vec![0.1, 0.5, 1.5, 0.0, 1.0, 0.2]).unwrap();
    let config = TrainConfig {
        binarize: true,
        ..Default::default()
    };
    let e = fit(&mut m, &x, None, &config, |_| {}).unwrap_err().to_string();
    assert!(e.contains("row 1, column 3 is 1.5"), "{e}");
}

/// A VAE's validation loss is the negative ELBO's deterministic part: the mean path's
/// reconstruction plus the KL term, per value.
#[test]
fn a_vaes_validation_loss_adds_its_kl_term() {
    let data = blobs(120, 8, 6);
    let valid = blobs(40, 8, 7);
    let cfg = bernoulli_vae(
        8,
        6,
        2,
        crate::layer::Prior {
            beta: 2.0,
            capacity: 0.0,
            warmup: 0,
            samples: 1,
        },
    );
    let mut m = cfg.init(3).unwrap();
    let config = TrainConfig {
        epochs: 2,
        batch_size: 16,
        ..Default::default()
    };
    let r = fit(&mut m, &data, Some(valid.view()), &config, |_| {}).unwrap();
    let got = r.history[1].valid_loss.unwrap();
    let recon = crate::loss::Loss::Bce.sum(m.reconstruct(&valid).unwrap().as_slice(), valid.as_slice()) / (40.0 * 8.0);
    let stats = m.forward_scaled(valid.view(), 0..2);
    let crate::layer::Layer::Gaussian(g) = &m.layers[2] else {
        panic!("the code is Gaussian")
    };
    let kl = g.kl_term(stats.as_slice(), 8);
    assert!(kl > 0.0);
    assert!((got - (recon + kl)).abs() < 1e-6, "{got} vs {recon} + {kl}");
}

/// Unit-norm dictionary atoms: after training, every column of the first decoder layer has
/// norm 1; a tied decoder is refused by name.
#[test]
fn unit_norm_decoder_columns() {
    let data = blobs(100, 8, 2);
    let mut m = Mlp::new(8, 12).with_hidden(&[6]).init(1).unwrap();
    let config = TrainConfig {
        epochs: 2,
        batch_size: 16,
        unit_norm_decoder: true,
        ..Default::default()
    };
    fit(&mut m, &data, None, &config, |_| {}).unwrap();
    let (w, n_in) = (m.layers[2].weight(), m.layers[2].n_in());
    for j in 0..n_in {
        let norm: f64 = w
            .chunks_exact(n_in)
            .map(|r| f64::from(r[j]).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "column {j}: {norm}");
    }
    let mut cfg = Mlp::new(8, 4).with_hidden(&[6]);
    cfg.tied = true;
    let mut tied = cfg.init(1).unwrap();
    let e = fit(&mut tied, &data, None, &config, |_| {}).unwrap_err().to_string();
    assert!(e.contains("a tied decoder"), "{e}");
}
