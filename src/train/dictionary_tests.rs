//! Sparse dictionary training: BatchTopK (the batch's budget in training, a calibrated
//! threshold at inference) and the AuxK loss (its gradient, that it revives dead units, and
//! that checkpoints keep its firing counts).

use super::dictionary::PreBias;
use super::tests::{assert_gradients, blobs, step, trained_on_1_and_3_threads};
use super::*;
use crate::activation::Activation;
use crate::model::{Autoencoder, Mlp};
use crate::regularize::{AuxK, Regularizer, Setting};
use crate::tensor::MatrixRef;

/// A one-layer dictionary: `d` inputs, `width` linear code units with `code` settings, a
/// linear output (MSE).
fn dictionary(d: usize, width: usize, code: &str, act: Activation) -> Mlp {
    let mut cfg = Mlp::new(d, width).with_activations(Activation::Identity, act, Activation::Identity);
    cfg.regularizer = Regularizer::merged(None, &Setting::parse_list(code).unwrap()).unwrap();
    cfg
}

/// The AuxK loss's gradient, through the decoder and into the dead units the mask dropped.
/// The residual `e = x − x̂` is held fixed (its gradient is not taken), so the reference is
/// the AuxK loss written out here with `e` from the unperturbed model: central differences of
/// it must match what AuxK adds to the step's gradients. A window of one row makes every unit
/// that did not fire in the batch dead; linear code units give each of them a value.
#[test]
fn auxk_gradient() {
    let (d, width, k_aux, alpha) = (6, 7, 3, 0.5f64);
    let cfg = dictionary(
        d,
        width,
        "topk=1,auxk=3,auxk-window=1,auxk-alpha=0.5",
        Activation::Identity,
    );
    let m = cfg.init(3).unwrap();
    let b = 4;
    let x: Vec<f32> = (0..b * d).map(|i| ((i * 7) % 11) as f32 / 11.0).collect();
    let (with, ws) = step(&m, &x);
    let mut plain = m.clone();
    plain.config.regularizers.get_mut(&0).unwrap().auxk = None;
    let (without, ws_plain) = step(&plain, &x);
    assert!(
        with > without + 1e-4,
        "the AuxK term adds to the loss: {with} vs {without}"
    );
    // The fixed residual and the dead units (those that won no row's top-1).
    let y = ws.acts(1, b, d).to_vec();
    let e: Vec<f64> = x.iter().zip(&y).map(|(a, b)| f64::from(a - b)).collect();
    let code = ws.acts(0, b, width);
    let dead: Vec<usize> = (0..width)
        .filter(|&j| (0..b).all(|r| code[r * width + j] == 0.0))
        .collect();
    assert!(dead.len() > k_aux, "{dead:?}");
    let aux_loss = |m: &Autoencoder| {
        let raw = crate::infer::forward(&m.layers, |_| None, MatrixRef::new(b, d, &x).unwrap(), 0..1);
        let w = m.layers[1].weight();
        let mut sum = 0.0f64;
        for r in 0..b {
            let z = raw.row(r);
            let mut picks = dead.clone();
            picks.sort_by(|&a, &c| z[c].total_cmp(&z[a]).then(a.cmp(&c)));
            for i in 0..d {
                let e_hat: f64 = picks[..k_aux]
                    .iter()
                    .map(|&j| f64::from(z[j]) * f64::from(w[i * width + j]))
                    .sum();
                sum += (e[r * d + i] - e_hat).powi(2);
            }
        }
        alpha * sum / (b * d) as f64
    };
    assert!(
        (aux_loss(&m) - (with - without)).abs() < 1e-5,
        "{} vs {}",
        aux_loss(&m),
        with - without
    );
    let h = 1e-3f32;
    for l in 0..2 {
        for i in 0..m.layers[l].weight().len() {
            let at = |delta: f32| {
                let mut p = m.clone();
                p.layers[l].params_mut().0[i] += delta;
                aux_loss(&p)
            };
            let numeric = (at(h) - at(-h)) / (2.0 * f64::from(h));
            let analytic = f64::from(ws.dw[l][i] - ws_plain.dw[l][i]);
            assert!(
                (numeric - analytic).abs() < 1e-2 * numeric.abs().max(analytic.abs()) + 1e-4,
                "layer {l} weight {i}: numeric {numeric} analytic {analytic}"
            );
        }
    }
    // The encoder rows of dead units move only through AuxK.
    assert!(
        dead.iter()
            .any(|&j| ws.dw[0][j * d..(j + 1) * d].iter().any(|g| *g != 0.0))
    );
    assert!(
        dead.iter()
            .all(|&j| ws_plain.dw[0][j * d..(j + 1) * d].iter().all(|g| *g == 0.0))
    );
}

/// The AuxK loss needs a dictionary's shape, and says which part is missing.
#[test]
fn auxk_is_refused_where_it_has_no_residual() {
    let data = blobs(40, 6, 1);
    let config = TrainConfig {
        epochs: 1,
        ..Default::default()
    };
    let deep = dictionary(6, 8, "topk=2,auxk=2", Activation::Relu).with_hidden(&[5]);
    let e = fit(&mut deep.init(1).unwrap(), &data, None, &config, |_| {}).unwrap_err();
    assert!(e.to_string().contains("right below the output layer"), "{e}");
    let sigmoid_out = Mlp::new(6, 8).with_activations(Activation::Relu, Activation::Relu, Activation::Sigmoid);
    let mut cfg = sigmoid_out;
    cfg.regularizer = Regularizer {
        auxk: Some(AuxK::new(2)),
        ..Default::default()
    };
    let e = fit(&mut cfg.init(1).unwrap(), &data, None, &config, |_| {}).unwrap_err();
    assert!(e.to_string().contains("dense and linear"), "{e}");
}

/// A BatchTopK step keeps exactly k × batch values of the whole batch; rows differ.
#[test]
fn batch_topk_keeps_the_batchs_budget() {
    let m = dictionary(6, 10, "batchtopk=2", Activation::Identity).init(2).unwrap();
    let x: Vec<f32> = (0..8 * 6)
        .map(|i| ((i * 5) % 13) as f32 / 13.0 + (i / 6) as f32 * 0.3)
        .collect();
    let (_, ws) = step(&m, &x);
    let code = ws.acts(0, 8, 10);
    let per_row: Vec<usize> = code
        .chunks(10)
        .map(|r| r.iter().filter(|v| **v != 0.0).count())
        .collect();
    assert_eq!(per_row.iter().sum::<usize>(), 16, "{per_row:?}");
    assert!(per_row.iter().any(|&n| n != 2), "{per_row:?}");
    assert_gradients(&m, "batchtopk");
}

/// Training calibrates BatchTopK's threshold on the training sample: the sample's mean L0 at
/// inference is k; the model (AuxK included) is the same on 1 and 3 threads.
#[test]
fn batch_topk_calibrates_its_threshold() {
    let data = blobs(300, 16, 3);
    let cfg = dictionary(16, 48, "batchtopk=4,auxk=8,auxk-window=100", Activation::Relu);
    let config = TrainConfig {
        epochs: 3,
        batch_size: 32,
        ..Default::default()
    };
    let (m, _) = trained_on_1_and_3_threads(|| cfg.init(5).unwrap(), &data, &config);
    let t = m.config.regularizers[&0].topk.unwrap();
    let theta = t.threshold.expect("a calibrated threshold");
    assert!(theta > 0.0, "{theta}");
    let codes = m.encode(&data).unwrap();
    let active = codes.as_slice().iter().filter(|v| **v != 0.0).count();
    assert_eq!(
        active,
        4 * 300,
        "the sample (all 300 rows) has k active values per row on average"
    );
    assert!(codes.as_slice().iter().all(|v| *v == 0.0 || *v >= theta));
    assert!(
        m.config.regularizers[&0]
            .to_string()
            .contains("batch top-k 4 (encode: values >=")
    );
}

/// `n` rows of width `d`, each the sum of 3 of `atoms` random directions with positive
/// weights: data a wide sparse dictionary explains.
fn sparse_mixtures(n: usize, d: usize, atoms: usize, seed: u64) -> crate::tensor::Matrix {
    let mut rng = crate::rng::Rng::new(seed);
    let dict: Vec<f32> = (0..atoms * d).map(|_| rng.normal()).collect();
    let mut x = crate::tensor::Matrix::zeros(n, d);
    for i in 0..n {
        for _ in 0..3 {
            let a = rng.below(atoms);
            let c = rng.uniform_range(0.5, 1.5);
            for (v, w) in x.row_mut(i).iter_mut().zip(&dict[a * d..(a + 1) * d]) {
                *v += c * w;
            }
        }
    }
    x
}

/// Dead units of a top-k dictionary trained with a high learning rate on data of more
/// features than units: the AuxK loss leaves fewer of them (0.16 against 0.24 of the units).
#[test]
fn auxk_revives_dead_units() {
    let data = sparse_mixtures(2000, 32, 1000, 7);
    let config = TrainConfig {
        epochs: 10,
        batch_size: 32,
        lr: 3e-2,
        ..Default::default()
    };
    let dead = |code: &str| {
        let mut m = dictionary(32, 128, code, Activation::Relu).init(11).unwrap();
        fit(&mut m, &data, None, &config, |_| {}).unwrap();
        crate::metrics::code(&m.encode(&data).unwrap(), Activation::Relu).dead_fraction
    };
    let (plain, aux) = (dead("topk=4"), dead("topk=4,auxk=16,auxk-window=1000"));
    assert!(plain > 0.2, "the setting must kill units without AuxK: {plain}");
    assert!(aux < 0.75 * plain, "AuxK leaves fewer dead units: {aux} vs {plain}");
}

/// A run stopped mid-epoch and resumed reaches the same weights and threshold as one that
/// never stopped: the checkpoint keeps the AuxK firing counts.
#[test]
fn a_checkpoint_keeps_the_auxk_firing_counts() {
    let data = blobs(200, 12, 9);
    let cfg = dictionary(12, 40, "batchtopk=2,auxk=4,auxk-window=64", Activation::Relu);
    let config = TrainConfig {
        epochs: 3,
        batch_size: 16,
        seed: 2,
        ..Default::default()
    };
    let mut whole: Autoencoder = cfg.init(1).unwrap();
    fit(&mut whole, &data, None, &config, |_| {}).unwrap();
    let mut saved = None;
    let mut epoch = 0;
    fit(&mut cfg.init(1).unwrap(), &data, None, &config, |e| match e {
        Event::EpochStart { epoch: n, .. } => {
            epoch = *n;
            Flow::Continue
        }
        Event::Batch { batch: 5, .. } if epoch == 2 => Flow::Stop,
        Event::Checkpoint(ck) => {
            saved = Some(ck.to_bytes().unwrap());
            Flow::Continue
        }
        _ => Flow::Continue,
    })
    .unwrap();
    let ck = Checkpoint::from_bytes(std::path::Path::new("ck"), &saved.unwrap()).unwrap();
    assert!(!ck.state.firing.is_empty());
    let mut resumed = cfg.init(1).unwrap();
    fit_from(&mut resumed, &data, None, &config, Some(&ck), |_| {}).unwrap();
    assert_eq!(resumed, whole);
}

/// The tied initialization: each decoder column starts as its unit's encoder row at unit
/// norm; a decoder that does not map the code back to the encoder's inputs is refused.
#[test]
fn tied_init_starts_the_decoder_from_the_encoder() {
    let mut m = dictionary(5, 9, "topk=2", Activation::Relu).init(4).unwrap();
    super::dictionary::tied_init(&mut m.layers, 1).unwrap();
    let (enc, dec) = (m.layers[0].weight(), m.layers[1].weight());
    for j in 0..9 {
        let row = &enc[j * 5..(j + 1) * 5];
        let norm = row.iter().map(|w| w * w).sum::<f32>().sqrt();
        for i in 0..5 {
            assert!((dec[i * 9 + j] - row[i] / norm).abs() < 1e-6);
        }
    }
    // Centred at the rows' mean: the decoder's bias is the mean, the code is zero there.
    let rows = blobs(30, 5, 3);
    super::dictionary::center_dictionary(&mut m.layers, 1, rows.view());
    let mean: Vec<f32> = (0..5)
        .map(|j| (0..30).map(|r| rows.row(r)[j]).sum::<f32>() / 30.0)
        .collect();
    let b = m.layers[1].params().1;
    assert!(b.iter().zip(&mean).all(|(b, m)| (b - m).abs() < 1e-5));
    let (w, bias) = m.layers[0].params();
    for (row, b) in w.chunks_exact(5).zip(bias) {
        let z: f32 = row.iter().zip(&mean).map(|(w, m)| w * m).sum::<f32>() + b;
        assert!(z.abs() < 1e-5, "{z}");
    }
    let mut cfg = Mlp::new(5, 4).with_hidden(&[3]);
    cfg.decoder_hidden = Some(vec![6]);
    let mut deep = cfg.init(1).unwrap();
    let e = super::dictionary::tied_init(&mut deep.layers, 2).unwrap_err();
    assert!(e.contains("back to the encoder's 3 inputs"), "{e}");
    let config = TrainConfig {
        epochs: 1,
        tied_init: true,
        ..Default::default()
    };
    let data = blobs(50, 5, 1);
    fit(&mut m, &data, None, &config, |_| {}).unwrap();
}

/// The sparse path of a top-k dictionary (decoder and code weight gradient over the kept values
/// only) gives the dense path's loss and gradients, for TopK and BatchTopK, with AuxK; and the
/// finite-difference check holds on it.
#[test]
fn the_sparse_path_matches_the_dense_one() {
    use super::step::{Head, Net, Workspace, forward_backward};
    for code in ["topk=3,l1=0.01", "batchtopk=3", "batchtopk=3,auxk=4,auxk-window=1"] {
        let m = dictionary(6, 16, code, Activation::Relu).init(7).unwrap();
        let regs: Vec<_> = (0..2).map(|l| m.config.regularizer_at(l).cloned()).collect();
        let net = Net {
            layers: &m.layers,
            regs: &regs,
            head: Head::Reconstruction(m.config.loss),
        };
        let b = 5;
        let x: Vec<f32> = (0..b * 6).map(|i| ((i * 7) % 11) as f32 / 5.0 - 0.8).collect();
        let run = |ws: Workspace| {
            let mut ws = ws;
            ws.x[..x.len()].copy_from_slice(&x);
            let mut rng = crate::rng::Rng::new(3);
            let mut step = crate::regularize::Step {
                epoch: 0,
                rng: &mut rng,
            };
            let out = forward_backward(net, &mut ws, b, crate::kernels::Precision::F32, &mut step, 0);
            (out.loss, ws)
        };
        let sparse = Workspace::new(net, b, false);
        assert!(sparse.is_sparse(), "{code}");
        let (ls, s) = run(sparse);
        let (ld, d) = run(Workspace::new(net, b, false).dense_only());
        assert!((ls - ld).abs() < 1e-6 * ld.abs().max(1.0), "{code}: {ls} vs {ld}");
        for l in 0..2 {
            for (a, c) in s.dw[l].iter().chain(&s.db[l]).zip(d.dw[l].iter().chain(&d.db[l])) {
                assert!((a - c).abs() < 1e-5 * (1.0 + c.abs()), "{code} layer {l}: {a} vs {c}");
            }
        }
        assert!(s.dw[0].iter().any(|g| *g != 0.0) && s.dw[1].iter().any(|g| *g != 0.0));
        if !code.contains("auxk") {
            // (AuxK holds its residual fixed: `auxk_gradient` checks it against its own reference.)
            assert_gradients(&m, code);
        }
    }
    // A dense code (k > width / 4) keeps the dense path.
    let m = dictionary(6, 8, "topk=3", Activation::Relu).init(7).unwrap();
    let regs: Vec<_> = (0..2).map(|l| m.config.regularizer_at(l).cloned()).collect();
    let net = Net {
        layers: &m.layers,
        regs: &regs,
        head: Head::Reconstruction(m.config.loss),
    };
    assert!(!Workspace::new(net, 4, false).is_sparse());
}

/// With unit-norm atoms, the weight gradient of each atom loses its component along the atom.
#[test]
fn the_atoms_gradient_is_orthogonal_to_the_atom() {
    let mut m = dictionary(4, 6, "topk=2", Activation::Relu).init(2).unwrap();
    super::dictionary::unit_norm_columns(&mut m.layers[1]);
    let mut g: Vec<f32> = (0..24).map(|i| (i as f32 * 0.37).sin()).collect();
    super::dictionary::remove_parallel_gradient(&m.layers[1], &mut g);
    let w = m.layers[1].weight();
    for j in 0..6 {
        let dot: f32 = (0..4).map(|i| g[i * 6 + j] * w[i * 6 + j]).sum();
        assert!(dot.abs() < 1e-6, "atom {j}: {dot}");
    }
}

/// The pre-encoder bias: the step's gradients, corrected, are those of the loss written with
/// the code `W (x − b) + c` (central differences with `c` held and the folded bias recomputed).
#[test]
fn the_pre_bias_gradients_are_those_of_the_centred_code() {
    let m = dictionary(6, 9, "topk=3", Activation::Relu).init(5).unwrap();
    let mut m = m;
    // A decoder bias far from zero, so that its path through the encoder matters.
    for (i, b) in m.layers[1].params_mut().1.iter_mut().enumerate() {
        *b = 0.3 + 0.1 * i as f32;
    }
    let x: Vec<f32> = (0..4 * 6).map(|i| ((i * 5) % 13) as f32 / 13.0).collect();
    let (_, mut ws) = step(&m, &x);
    let (dc, db) = ws.db.split_at_mut(1);
    PreBias::correct(&m.layers, &mut ws.dw[0], &dc[0], &mut db[0]);
    // c = folded + W b, held while W or b moves.
    let wb = |m: &Autoencoder| -> Vec<f64> {
        let (w, b) = (m.layers[0].weight(), m.layers[1].params().1);
        w.chunks_exact(6)
            .map(|r| r.iter().zip(b).map(|(&w, &b)| f64::from(w) * f64::from(b)).sum())
            .collect()
    };
    let c: Vec<f64> = m.layers[0]
        .params()
        .1
        .iter()
        .zip(wb(&m))
        .map(|(&f, p)| f64::from(f) + p)
        .collect();
    let loss = |mut p: Autoencoder| {
        let now = wb(&p);
        for ((f, c), p) in p.layers[0].params_mut().1.iter_mut().zip(&c).zip(&now) {
            *f = (c - p) as f32;
        }
        step(&p, &x).0
    };
    let h = 1e-3f32;
    let mut checked = 0;
    for (l, i) in (0..54).map(|i| (0, i)).chain((0..6).map(|i| (1, 54 + i))) {
        let eval = |delta: f32| {
            let mut p = m.clone();
            if l == 0 {
                p.layers[0].params_mut().0[i] += delta;
            } else {
                p.layers[1].params_mut().1[i - 54] += delta;
            }
            loss(p)
        };
        let numeric = (eval(h) - eval(-h)) / (2.0 * f64::from(h));
        let analytic = f64::from(if l == 0 { ws.dw[0][i] } else { ws.db[1][i - 54] });
        assert!(
            (numeric - analytic).abs() < 2e-2 * numeric.abs().max(analytic.abs()) + 2e-4,
            "{} {i}: numeric {numeric} analytic {analytic}",
            if l == 0 { "code weight" } else { "decoder bias" }
        );
        checked += usize::from(analytic.abs() > 1e-3);
    }
    assert!(checked > 20, "{checked} gradients away from zero");
}

/// One plain SGD step with the pre-encoder bias moves `(W, c, b)` by their gradients and
/// leaves the code layer's bias folded, `c − W b`, with the new weights.
#[test]
fn a_pre_bias_step_refolds_the_code_bias() {
    let m = dictionary(6, 9, "topk=3", Activation::Relu).init(5).unwrap();
    let mut m = m;
    for (i, b) in m.layers[1].params_mut().1.iter_mut().enumerate() {
        *b = 0.2 - 0.05 * i as f32;
    }
    let x = blobs(8, 6, 2);
    let (_, mut ws) = step(&m, x.as_slice());
    let (dc, db) = ws.db.split_at_mut(1);
    PreBias::correct(&m.layers, &mut ws.dw[0], &dc[0], &mut db[0]);
    let lr = 0.1f32;
    let config = TrainConfig {
        epochs: 1,
        batch_size: 8,
        lr,
        optimizer: crate::optim::OptimizerConfig::sgd(0.0, false, 0.0),
        pre_bias: true,
        ..Default::default()
    };
    let mut trained = m.clone();
    fit(&mut trained, &x, None, &config, |_| {}).unwrap();
    let moved = |p: &[f32], g: &[f32]| -> Vec<f32> { p.iter().zip(g).map(|(p, g)| p - lr * g).collect() };
    let w = moved(m.layers[0].weight(), &ws.dw[0]);
    let b = moved(m.layers[1].params().1, &ws.db[1]);
    let close = |a: &[f32], e: &[f32], what: &str| {
        for (i, (a, e)) in a.iter().zip(e).enumerate() {
            assert!((a - e).abs() < 1e-5 * (1.0 + e.abs()), "{what} {i}: {a} vs {e}");
        }
    };
    close(trained.layers[0].weight(), &w, "code weight");
    close(trained.layers[1].params().1, &b, "decoder bias");
    close(
        trained.layers[1].weight(),
        &moved(m.layers[1].weight(), &ws.dw[1]),
        "decoder weight",
    );
    let dot = |w: &[f32], b: &[f32]| -> Vec<f32> {
        w.chunks_exact(6)
            .map(|r| r.iter().zip(b).map(|(w, b)| w * b).sum())
            .collect()
    };
    let (old, new) = (dot(m.layers[0].weight(), m.layers[1].params().1), dot(&w, &b));
    let folded: Vec<f32> = (0..9)
        .map(|j| m.layers[0].params().1[j] + old[j] - lr * ws.db[0][j] - new[j])
        .collect();
    close(trained.layers[0].params().1, &folded, "folded code bias");
}

/// The pre-encoder bias trains the same on 1 and 3 threads, with the other dictionary
/// settings, and is refused where there is no one-layer dictionary.
#[test]
fn the_pre_bias_is_thread_invariant_and_refused_on_deep_models() {
    let data = blobs(300, 12, 4);
    let cfg = dictionary(12, 64, "batchtopk=4,auxk=8,auxk-window=50", Activation::Relu);
    let config = TrainConfig {
        epochs: 2,
        batch_size: 32,
        pre_bias: true,
        tied_init: true,
        unit_norm_decoder: true,
        ..Default::default()
    };
    let (with, _) = trained_on_1_and_3_threads(|| cfg.init(2).unwrap(), &data, &config);
    let mut plain = cfg.init(2).unwrap();
    fit(
        &mut plain,
        &data,
        None,
        &TrainConfig {
            pre_bias: false,
            ..config.clone()
        },
        |_| {},
    )
    .unwrap();
    assert_ne!(with, plain);
    let mut deep = Mlp::new(12, 4).with_hidden(&[8]).init(1).unwrap();
    let err = fit(&mut deep, &data, None, &config, |_| {}).unwrap_err().to_string();
    assert!(
        err.contains("pre_bias") && err.contains("one-layer dictionary"),
        "{err}"
    );
}
