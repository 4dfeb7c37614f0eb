//! The page: self-contained, escaped, with the sections its inputs call for.

use super::*;
use crate::model::Mlp;

fn file() -> (ModelFile, Matrix) {
    let x = Matrix::from_vec(40, 4, (0..160).map(|v| ((v * 7) % 11) as f32 / 10.0).collect()).unwrap();
    let mut m = Mlp::new(4, 2).with_hidden(&[3]).config().init(1).unwrap();
    let cfg = crate::train::TrainConfig {
        epochs: 3,
        valid_fraction: 0.25,
        ..Default::default()
    };
    let report = crate::fit(&mut m, &x, None, &cfg, |_| {}).unwrap();
    let mut f = ModelFile::new(m);
    f.provenance.report = Some(report.without_timing());
    f.provenance.train = Some(cfg);
    f.provenance.feature_names = Some(vec!["a<b".into(), "b".into(), "c".into(), "d".into()]);
    (f, x)
}

fn self_contained(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    for bad in ["http:", "https:", "<script", "<link", "@import", "url("] {
        assert!(!html.contains(bad), "the page refers to something outside it: {bad}");
    }
}

#[test]
fn a_model_alone_has_its_card_and_curves() {
    let (f, _) = file();
    let html = autoencoder(&f, "m.safetensors", None, None).unwrap();
    self_contained(&html);
    assert!(html.contains("Model card") && html.contains("Training") && !html.contains("Reconstruction error"));
    assert!(html.contains("Loss per epoch") && html.contains("validation"));
    assert!(html.contains("Code sparsity"), "the validation rows' L0 per epoch");
    assert!(html.contains("4-3-2-3-4"));
}

#[test]
fn data_and_labels_add_their_sections() {
    let (f, x) = file();
    let labels = (0..40).map(|i| i % 5 == 0).collect();
    let d = Data {
        name: "t.csv".into(),
        x: &x,
        image: None,
        labels: Some(Labels::Anomaly(labels)),
    };
    let html = autoencoder(&f, "m", Some(&d), None).unwrap();
    self_contained(&html);
    for s in [
        "Reconstruction error per row",
        "ROC curve (AUC",
        "What carries the error",
        "Firing frequency",
        "a&lt;b",
    ] {
        assert!(html.contains(s), "missing {s}");
    }
    assert!(!html.contains("a<b"), "feature names are escaped");
    let wrong = Matrix::zeros(2, 3);
    let d = Data {
        name: "w".into(),
        x: &wrong,
        image: None,
        labels: None,
    };
    assert!(autoencoder(&f, "m", Some(&d), None).is_err());
}

#[test]
fn base64_is_rfc_4648() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}
