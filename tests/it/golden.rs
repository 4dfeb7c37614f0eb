//! Committed model files of every kind and version must keep loading and giving the same
//! outputs forever: the scripts in tests/golden made them (version 1 with the last hourglass
//! that wrote it).

use hourglass::data::{self, ColumnSelection};
use hourglass::format::{self, AnyModel};
use hourglass::{Matrix, Scaling};
use std::path::{Path, PathBuf};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn read(name: &str) -> Matrix {
    data::load(&golden(name), &ColumnSelection::default()).unwrap().x
}

/// The probability columns of a `predict` output (after its `predicted` column).
fn probabilities(name: &str) -> Matrix {
    let sel = ColumnSelection {
        drop: vec!["predicted".into()],
        ..Default::default()
    };
    data::load(&golden(name), &sel).unwrap().x
}

fn assert_close(got: &Matrix, want: &Matrix) {
    assert_eq!(got.shape(), want.shape());
    for (g, w) in got.as_slice().iter().zip(want.as_slice()) {
        // The CSV holds shortest round-trip decimals; allow for other SIMD paths on other CPUs.
        assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
    }
}

/// Saved again (in the current version) and loaded, the model is the same.
fn round_trips(name: &str) {
    let model = format::load_any(&golden(name)).unwrap();
    let back = match &model {
        AnyModel::Autoencoder(f) => AnyModel::Autoencoder(Box::new(
            format::from_bytes(Path::new("mem"), &format::to_bytes(f).unwrap()).unwrap(),
        )),
        AnyModel::Classifier(c) => AnyModel::Classifier(Box::new(
            format::classifier_from_bytes(Path::new("mem"), &format::classifier_to_bytes(c).unwrap()).unwrap(),
        )),
    };
    assert_eq!(back, model, "{name}");
}

#[test]
fn golden_v1_model_loads_and_reproduces_its_outputs() {
    let file = format::load(&golden("model_v1.safetensors")).unwrap();
    let m = &file.model;
    assert_eq!(m.input_dim(), 8);
    assert_eq!(m.encoder_layers(), 2);
    assert_eq!(m.layers()[0].n_out(), 6);
    assert_eq!(m.code_dim(), 3);
    assert_eq!(m.scaler().kind, Scaling::Standard);
    assert_eq!(file.provenance.feature_names.as_deref().map(<[String]>::len), Some(8));
    let x = read("input.csv");
    assert_close(&m.reconstruct(&x).unwrap(), &read("expected_reconstruction.csv"));
    assert_close(&m.encode(&x).unwrap(), &read("expected_codes.csv"));
}

#[test]
fn golden_v1_convolutional_model_and_classifier_reproduce_their_outputs() {
    let conv = format::load(&golden("conv_v1.safetensors")).unwrap().model;
    assert_eq!(
        conv.layers().iter().map(|l| l.kind()).collect::<Vec<_>>(),
        ["conv", "dense", "dense", "conv_transpose"]
    );
    assert!(conv.config().code_regularizer().is_some_and(|r| r.topk.is_some()));
    let images = read("images.npy");
    assert_close(&conv.encode(&images).unwrap(), &read("expected_conv_codes.csv"));
    assert_close(
        &conv.reconstruct(&images).unwrap(),
        &read("expected_conv_reconstruction.csv"),
    );
    let clf = format::load_classifier(&golden("classifier_v1.safetensors")).unwrap();
    assert_eq!(clf.config.classes, ["a", "b"]);
    assert_close(
        &clf.predict_proba(&read("input.csv")).unwrap(),
        &probabilities("expected_classifier.csv"),
    );
}

#[test]
fn golden_v2_models_reproduce_their_outputs() {
    let m = format::load(&golden("model_v2.safetensors")).unwrap().model;
    assert_eq!(m.config().regularizers.len(), 2);
    let x = read("input.csv");
    assert_close(&m.encode(&x).unwrap(), &read("expected_v2_codes.csv"));
    assert_close(&m.reconstruct(&x).unwrap(), &read("expected_v2_reconstruction.csv"));
    let clf = format::load_classifier(&golden("conv_classifier_v2.safetensors")).unwrap();
    assert_eq!(clf.layers[0].kind(), "conv");
    assert_close(
        &clf.predict_proba(&read("images.npy")).unwrap(),
        &probabilities("expected_conv_classifier.csv"),
    );
}

#[test]
fn golden_models_survive_a_save_load_round_trip_bit_for_bit() {
    for name in [
        "model_v1.safetensors",
        "conv_v1.safetensors",
        "classifier_v1.safetensors",
        "model_v2.safetensors",
        "conv_classifier_v2.safetensors",
    ] {
        round_trips(name);
    }
}
