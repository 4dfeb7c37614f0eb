//! Property tests: save → load is bit-identical; NPY and CSV writers round-trip; encode shapes.

use hourglass::{Activation, Matrix, Mlp, ModelFile, Rng, format};
use proptest::prelude::*;

fn matrix(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut rng = Rng::new(seed);
    let data = (0..rows * cols)
        .map(|_| rng.normal() * 10f32.powi(rng.below(7) as i32 - 3))
        .collect();
    Matrix::from_vec(rows, cols, data).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn model_save_load_is_bit_identical(
        input in 1usize..20, code in 1usize..6, hidden in proptest::collection::vec(1usize..12, 0..3),
        act in 0usize..7, seed in any::<u64>(), threshold in proptest::option::of(0.0f64..10.0),
    ) {
        let mut cfg = Mlp::new(input, code).with_hidden(&hidden);
        cfg.activation = Activation::ALL[act];
        let model = cfg.init(seed).unwrap();
        let anomaly = threshold.map(|value| hourglass::score::Threshold {
            metric: hourglass::score::ScoreMetric::Mae,
            value,
            rule: hourglass::score::ThresholdRule::Fpr(0.01),
            calibration_rows: 7,
            flagged_fraction: 0.0,
            data_path: None,
        });
        let file = ModelFile { model, provenance: Default::default(), anomaly, tabular: None, windows: None, neighbours: None };
        let bytes = format::to_bytes(&file).unwrap();
        let back = format::from_bytes(std::path::Path::new("mem"), &bytes).unwrap();
        prop_assert_eq!(&back, &file);
        prop_assert_eq!(format::to_bytes(&back).unwrap(), bytes);
        let x = matrix(3, input, seed);
        let codes = back.model.encode(&x).unwrap();
        prop_assert_eq!(codes.shape(), (3, code));
        prop_assert_eq!(back.model.reconstruct(&x).unwrap().shape(), (3, input));
    }

    #[test]
    fn npy_and_csv_writers_round_trip(rows in 1usize..30, cols in 1usize..9, seed in any::<u64>()) {
        let m = matrix(rows, cols, seed);
        let dir = tempfile::tempdir().unwrap();
        let npy = dir.path().join("m.npy");
        hourglass::data::write(&npy, &m, &[], &[]).unwrap();
        prop_assert_eq!(&hourglass::data::npy::read(&npy, false).unwrap().matrix, &m);
        let csv = dir.path().join("m.csv");
        let names = hourglass::data::numbered("f", cols);
        hourglass::data::write(&csv, &m, &names, &[]).unwrap();
        let t = hourglass::data::csv::read(&csv, &Default::default()).unwrap();
        prop_assert_eq!(&t.matrix, &m);
        prop_assert_eq!(t.names, names);
    }
}
