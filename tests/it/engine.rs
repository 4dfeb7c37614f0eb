//! End-to-end properties of the engine: the linear textbook case, thread-count invariance,
//! save/load round trips, early stopping and divergence.

use hourglass::{
    Activation, Event, Loss, Matrix, Mlp, OptimizerConfig, Rng, Scaling, Schedule, TrainConfig, fit, format,
    with_threads,
};

/// 100 inputs: 20 independent numbers and 80 fixed linear combinations of them.
fn rank20(rows: usize, seed: u64) -> Matrix {
    let mut mix_rng = Rng::new(1234); // the same 80 combinations for every sample set
    let mix: Vec<f32> = (0..80 * 20).map(|_| mix_rng.normal() / 20f32.sqrt()).collect();
    let mut rng = Rng::new(seed);
    let mut m = Matrix::zeros(rows, 100);
    for i in 0..rows {
        let base: Vec<f32> = (0..20).map(|_| rng.normal()).collect();
        let row = m.row_mut(i);
        row[..20].copy_from_slice(&base);
        for k in 0..80 {
            row[20 + k] = (0..20).map(|j| mix[k * 20 + j] * base[j]).sum();
        }
    }
    m
}

fn relative_error(model: &hourglass::Autoencoder, x: &Matrix) -> f64 {
    let r = model.reconstruct(x).unwrap();
    let num: f64 = r
        .as_slice()
        .iter()
        .zip(x.as_slice())
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum();
    let den: f64 = x.as_slice().iter().map(|&b| (b as f64).powi(2)).sum();
    num / den
}

fn linear(code: usize) -> Mlp {
    Mlp::new(100, code).with_activations(Activation::Identity, Activation::Identity, Activation::Identity)
}

#[test]
fn linear_autoencoder_recovers_rank_20_data_with_20_units_but_not_10() {
    let train = rank20(2000, 1);
    let test = rank20(500, 2);
    let cfg = TrainConfig {
        epochs: 40,
        batch_size: 100,
        lr: 3e-3,
        schedule: Schedule::Cosine { min_factor: 0.0 },
        seed: 3,
        ..TrainConfig::default()
    };
    let mut m20 = linear(20).init(3).unwrap();
    fit(&mut m20, &train, None, &cfg, |_| {}).unwrap();
    let e20 = relative_error(&m20, &test);
    let mut m10 = linear(10).init(3).unwrap();
    fit(&mut m10, &train, None, &cfg, |_| {}).unwrap();
    let e10 = relative_error(&m10, &test);
    assert!(e20 < 1e-4, "20-unit code: relative error {e20}");
    assert!(e10 > 0.1, "10-unit code: relative error {e10} (should be large)");
}

fn small_run(threads: usize, precision: hourglass::Precision) -> (Vec<f32>, Vec<f64>) {
    let x = rank20(300, 5);
    let cfg = Mlp::new(100, 8).with_hidden(&[37, 19]).with_activations(
        Activation::Gelu,
        Activation::Tanh,
        Activation::Identity,
    );
    let train = TrainConfig {
        epochs: 3,
        batch_size: 130, // more than one row block, with a partial last batch
        valid_fraction: 0.2,
        patience: Some(5),
        scaling: Scaling::Standard,
        clip_norm: Some(1.0),
        seed: 9,
        precision,
        noise: vec![
            hourglass::Noise::Mask { p: 0.2 },
            hourglass::Noise::Gaussian { sigma: 0.1 },
        ],
        ..TrainConfig::default()
    };
    with_threads(Some(threads), || {
        let mut m = cfg.init(4).unwrap();
        let mut losses = Vec::new();
        fit(&mut m, &x, None, &train, |e| {
            if let Event::Batch { loss, .. } = e {
                losses.push(*loss)
            }
        })
        .unwrap();
        let weights = m
            .layers()
            .iter()
            .flat_map(|l| l.weight().iter().chain(l.bias()).copied())
            .collect();
        (weights, losses)
    })
    .unwrap()
}

#[test]
fn same_seed_gives_bit_identical_model_for_any_thread_count() {
    for precision in [hourglass::Precision::F32, hourglass::Precision::Bf16] {
        let (w1, l1) = small_run(1, precision);
        let (w2, l2) = small_run(2, precision);
        let (w3, _) = small_run(3, precision);
        assert!(!w1.is_empty());
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&l1), bits(&l2), "{precision:?}: losses differ");
        assert!(
            w1.iter().zip(&w2).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{precision:?}: 1 vs 2 threads differ"
        );
        assert!(
            w1.iter().zip(&w3).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{precision:?}: 1 vs 3 threads differ"
        );
    }
}

#[test]
fn save_load_is_bit_identical_and_outputs_agree() {
    let x = rank20(50, 8);
    let mut m = Mlp::new(100, 5).with_hidden(&[16]).init(1).unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        scaling: Scaling::Minmax,
        ..TrainConfig::default()
    };
    fit(&mut m, &x, None, &cfg, |_| {}).unwrap();
    let file = hourglass::ModelFile {
        model: m.clone(),
        provenance: Default::default(),
        anomaly: None,
        tabular: None,
        windows: None,
        neighbours: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    format::save(&p, &file).unwrap();
    let back = format::load(&p).unwrap();
    assert_eq!(back.model, m);
    assert_eq!(back.model.reconstruct(&x).unwrap(), m.reconstruct(&x).unwrap());
}

#[test]
fn early_stopping_restores_the_best_epoch() {
    let x = rank20(400, 4);
    let mut m = Mlp::new(100, 30).with_hidden(&[200]).init(2).unwrap();
    // A learning rate high enough that validation loss stops improving early.
    let cfg = TrainConfig {
        epochs: 40,
        lr: 0.05,
        valid_fraction: 0.25,
        patience: Some(2),
        seed: 1,
        ..TrainConfig::default()
    };
    let report = fit(&mut m, &x, None, &cfg, |_| {}).unwrap();
    let best = report
        .history
        .iter()
        .filter_map(|h| h.valid_loss)
        .fold(f64::INFINITY, f64::min);
    let best_epoch = report.history.iter().position(|h| h.valid_loss == Some(best)).unwrap() + 1;
    assert_eq!(report.best_epoch, best_epoch);
    assert!(report.stopped_early, "this run stops early: {:?}", report.history.len());
    assert_eq!(report.history.len(), best_epoch + 2);
    // The model holds the best epoch's weights: the same run cut at that epoch (same seed, same
    // split, same shuffles) ends with the same weights, bit for bit.
    let mut at_best = Mlp::new(100, 30).with_hidden(&[200]).init(2).unwrap();
    let cut = TrainConfig {
        epochs: best_epoch,
        patience: None,
        ..cfg
    };
    fit(&mut at_best, &x, None, &cut, |_| {}).unwrap();
    assert_eq!(m.layers(), at_best.layers());
    assert!(best_epoch < report.history.len());
}

#[test]
fn divergence_is_reported_with_epoch_and_batch() {
    let x = rank20(200, 4);
    let mut m = linear(20).init(2).unwrap();
    let before = m.clone();
    let cfg = TrainConfig {
        epochs: 5,
        lr: 1e3,
        batch_size: 50,
        optimizer: OptimizerConfig::sgd(0.9, false, 0.0),
        ..TrainConfig::default()
    };
    let err = fit(&mut m, &x, None, &cfg, |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, hourglass::Error::Diverged { .. }), "{msg}");
    assert!(msg.contains("epoch") && msg.contains("batch"), "{msg}");
    // Diverging in epoch 1 keeps the initial weights.
    if let hourglass::Error::Diverged { epoch: 1, .. } = err {
        assert_eq!(m, before);
    }
}

#[test]
fn bce_refuses_data_outside_unit_range() {
    let x = rank20(20, 4);
    let mut m = Mlp::new(100, 5).with_loss(Loss::Bce).init(1).unwrap();
    let err = fit(&mut m, &x, None, &TrainConfig::default(), |_| {}).unwrap_err();
    assert!(err.to_string().contains("[0, 1]"), "{err}");
}

#[test]
fn denoising_training_beats_plain_training_on_masked_inputs() {
    use hourglass::Noise;
    let train = rank20(3000, 11);
    let test = rank20(500, 12);
    let mut masked = test.clone();
    hourglass::noise::corrupt(
        &[Noise::Mask { p: 0.3 }],
        masked.as_mut_slice(),
        100,
        None,
        &mut Rng::new(5),
    );
    let error_on_masked = |noise: Vec<Noise>| {
        let mut m = Mlp::new(100, 20).with_hidden(&[64]).with_activations(
            Activation::Relu,
            Activation::Identity,
            Activation::Identity,
        );
        m.init = hourglass::Init::Auto;
        let mut m = m.init(1).unwrap();
        let cfg = TrainConfig {
            epochs: 30,
            batch_size: 64,
            lr: 3e-3,
            noise,
            seed: 2,
            ..TrainConfig::default()
        };
        fit(&mut m, &train, None, &cfg, |_| {}).unwrap();
        let r = m.reconstruct(&masked).unwrap();
        hourglass::metrics::reconstruction(&test, &r).mse
    };
    let plain = error_on_masked(Vec::new());
    let denoising = error_on_masked(vec![Noise::Mask { p: 0.3 }]);
    assert!(denoising < 0.5 * plain, "denoising {denoising} vs plain {plain}");
}

/// A caller can stop training cleanly: stopped in the middle of epoch 3, the model holds the
/// weights of epoch 2, bit for bit those of a run of 2 epochs.
#[test]
fn stopping_mid_epoch_keeps_the_last_complete_epoch() {
    let x = rank20(300, 6);
    let cfg = TrainConfig {
        epochs: 5,
        batch_size: 50,
        seed: 4,
        ..TrainConfig::default()
    };
    let mut m = Mlp::new(100, 8).with_hidden(&[16]).init(1).unwrap();
    let mut epoch = 0;
    let report = fit(&mut m, &x, None, &cfg, |e| match e {
        Event::EpochStart { epoch: n, .. } => {
            epoch = *n;
            hourglass::Flow::Continue
        }
        Event::Batch { batch: 2, .. } if epoch == 3 => hourglass::Flow::Stop,
        _ => hourglass::Flow::Continue,
    })
    .unwrap();
    assert!(report.interrupted);
    assert_eq!(report.history.len(), 2);
    let mut two = Mlp::new(100, 8).with_hidden(&[16]).init(1).unwrap();
    fit(&mut two, &x, None, &TrainConfig { epochs: 2, ..cfg }, |_| {}).unwrap();
    assert_eq!(m.layers(), two.layers());
}
