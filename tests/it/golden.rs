//! The committed v1 model must keep loading and giving the same outputs forever.

use hourglass::data::{self, ColumnSelection};
use hourglass::format;
use std::path::{Path, PathBuf};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn read_csv(name: &str) -> hourglass::Matrix {
    data::load(&golden(name), &ColumnSelection::default()).unwrap().x
}

fn assert_close(got: &hourglass::Matrix, want: &hourglass::Matrix) {
    assert_eq!(got.shape(), want.shape());
    for (g, w) in got.as_slice().iter().zip(want.as_slice()) {
        // The CSV holds shortest round-trip decimals; allow for other SIMD paths on other CPUs.
        assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
    }
}

#[test]
fn golden_v1_model_loads_and_reproduces_its_outputs() {
    let file = format::load(&golden("model_v1.safetensors")).unwrap();
    let m = &file.model;
    assert_eq!(m.input_dim(), 8);
    assert_eq!(m.encoder_layers(), 2);
    assert_eq!(m.layers()[0].n_out(), 6);
    assert_eq!(m.code_dim(), 3);
    assert_eq!(m.scaler().kind, hourglass::Scaling::Standard);
    assert_eq!(file.provenance.feature_names.as_deref().map(<[String]>::len), Some(8));
    let x = read_csv("input.csv");
    assert_close(&m.reconstruct(&x).unwrap(), &read_csv("expected_reconstruction.csv"));
    assert_close(&m.encode(&x).unwrap(), &read_csv("expected_codes.csv"));
}

#[test]
fn golden_v1_model_survives_a_save_load_round_trip_bit_for_bit() {
    let file = format::load(&golden("model_v1.safetensors")).unwrap();
    let bytes = format::to_bytes(&file).unwrap();
    let back = format::from_bytes(Path::new("memory"), &bytes).unwrap();
    assert_eq!(back, file);
}
