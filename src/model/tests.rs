//! Model tests: inference against the training forward, layouts, the v1 conversion, noise in
//! the network's units.

use super::*;
use crate::kernels::{Precision, ROW_BLOCK};
use crate::model::toml::parse;
use crate::rng::Rng;

/// Every layer's training forward (im2col + GEMM for convolutions), channel-major, with
/// the code's top-k: what inference must reproduce.
fn forward_reference(m: &Autoencoder, x: &[f32], layers: std::ops::Range<usize>) -> Vec<f32> {
    let mut cur = x.to_vec();
    for i in layers {
        let l = &m.layers[i];
        let rows = cur.len() / l.n_in();
        let mut y = vec![0.0; rows * l.n_out()];
        let mut aux = vec![0u32; l.aux_len() * rows];
        let mut cache = vec![0f32; l.cache_len() * rows];
        l.forward(&cur, &mut y, None, (&mut aux, &mut cache), Precision::F32);
        if let Some(r) = m.config.regularizer_at(i) {
            r.encode(&mut y, l.n_out());
        }
        cur = y;
    }
    cur
}

/// Inference runs chains of convolutions channels-last with the direct kernel (on AVX-512
/// machines): entering and leaving chains around pooling, dense and transposed layers, RGBA
/// input, channel counts that are not multiples of 16, a conv code with top-k and a conv
/// output. It must give the training forward's values, for any thread count.
#[test]
fn inference_matches_the_training_forward() {
    const CONV_CODE: &str = r#"
            activation = "relu"
            [code]
            topk = { k = 120 }
            [[encoder]]
            type = "conv"
            filters = 20
            kernel = 3
            stride = 2
            padding = 1
            activation = "tanh"
            [[encoder]]
            type = "conv"
            filters = 33
            kernel = 2
            [[decoder]]
            type = "conv_transpose"
            filters = 16
            kernel = 3
            stride = 2
            padding = 1
            [[decoder]]
            type = "conv_transpose"
            filters = 8
            kernel = 3
            [[decoder]]
            type = "conv"
            filters = 16
            kernel = 3
            padding = 1
            activation = "elu"
            [[decoder]]
            type = "conv"
            filters = 4
            kernel = 3
            padding = 1
        "#;
    const POOLED: &str = r#"
            activation = "relu"
            [[encoder]]
            type = "conv"
            filters = 17
            kernel = 3
            padding = 1
            [[encoder]]
            type = "max_pool"
            size = 2
            [[encoder]]
            type = "conv"
            filters = 32
            kernel = 3
            padding = 1
            [[encoder]]
            type = "dense"
            units = 6
            [[decoder]]
            type = "dense"
            units = 128
            [[decoder]]
            type = "reshape"
            shape = [8, 4, 4]
            [[decoder]]
            type = "conv_transpose"
            filters = 4
            kernel = 2
            stride = 2
            [[decoder]]
            type = "conv"
            filters = 1
            kernel = 3
            padding = 1
        "#;
    const RECURRENT: &str = r#"
            output_activation = "identity"
            [[encoder]]
            type = "gru"
            units = 5
            return_sequences = true
            [[encoder]]
            type = "lstm"
            units = 4
            [[decoder]]
            type = "repeat"
            steps = 7
            [[decoder]]
            type = "lstm"
            units = 6
            return_sequences = true
            [[decoder]]
            type = "conv1d"
            filters = 2
            kernel = 3
            padding = 1
        "#;
    let cases = [(CONV_CODE, (4, 9, 9)), (POOLED, (1, 8, 8)), (RECURRENT, (2, 1, 7))];
    int8_inference_of_convolutions(&cases[..2]);
    for (text, input) in cases {
        let mut m = parse(text, Dims::Image(input)).unwrap().init(4).unwrap();
        let mut rng = Rng::new(8);
        for l in &mut m.layers {
            l.params_mut()
                .1
                .iter_mut()
                .for_each(|b| *b = rng.uniform_range(-0.2, 0.2));
        }
        // More rows than one inference block, the last block partial.
        let rows = ROW_BLOCK + 22;
        let x = uniform_matrix(&mut rng, rows, m.input_dim());
        let enc = m.config.encoder_layers();
        let checks = [
            (m.encode(&x).unwrap(), forward_reference(&m, x.as_slice(), 0..enc)),
            (
                m.reconstruct(&x).unwrap(),
                forward_reference(&m, x.as_slice(), 0..m.layers.len()),
            ),
        ];
        for (got, want) in &checks {
            assert_eq!(got.as_slice().len(), want.len());
            for (g, w) in got.as_slice().iter().zip(want) {
                assert!((g - w).abs() < 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
            }
        }
        let one = crate::with_threads(Some(1), || m.encode(&x).unwrap()).unwrap();
        let three = crate::with_threads(Some(3), || m.encode(&x).unwrap()).unwrap();
        assert_eq!(one.as_slice(), three.as_slice());
        assert_eq!(one.as_slice(), checks[0].0.as_slice());
        // The one pass that gives the mse+lof score its error and code gives the bits of the
        // two passes (encode, and the mse score).
        let (errors, codes) = crate::score::mse_and_codes(&m, x.view()).unwrap();
        assert_eq!(codes.as_slice(), checks[0].0.as_slice());
        assert_eq!(
            errors,
            crate::score::scores(&m, &x, crate::score::ScoreMetric::Mse).unwrap()
        );
    }
}

#[test]
fn multi_channel_rows_are_channel_major() {
    // 1x1 convolutions, identity activations: encoder scales channel c by 10^c, decoder
    // passes through. Rows are (C, H, W), as the NPY reader and pictures lay them out.
    let text = r#"
            activation = "identity"
            code_activation = "identity"
            output_activation = "identity"
            [[encoder]]
            type = "conv"
            filters = 3
            kernel = 1
            [[decoder]]
            type = "conv"
            filters = 3
            kernel = 1
        "#;
    let mut m = parse(text, Dims::Image((3, 2, 2))).unwrap().init(0).unwrap();
    for (l, scale) in [(0, [1.0, 10.0, 100.0]), (1, [1.0, 1.0, 1.0])] {
        let (w, b) = m.layers[l].params_mut();
        w.fill(0.0);
        b.fill(0.0);
        for c in 0..3 {
            w[c * 3 + c] = scale[c];
        }
    }
    let x: Vec<f32> = (0..12).map(|i| 0.5 + i as f32 / 12.0).collect();
    let y = m.reconstruct(&Matrix::from_vec(1, 12, x.clone()).unwrap()).unwrap();
    for (i, (a, b)) in y.as_slice().iter().zip(&x).enumerate() {
        let want = b * [1.0, 10.0, 100.0][i / 4];
        assert!((a - want).abs() < 1e-3, "{i}: {a} vs {want}");
    }
}

/// A row encoded or reconstructed alone gets the bits it gets inside a batch of several row
/// blocks (the scoring service's one row against the batch command): at every SIMD level this
/// machine runs that has the dot kernel (one thread each), and on two threads at the machine's
/// level. (The portable level's blocked GEMM does not promise it: faer sums a block of 128
/// rows in another order than a block of two.)
#[test]
fn a_row_alone_gets_the_bits_it_gets_in_a_batch() {
    use crate::kernels::testing::at_every_level;
    let config = crate::model::config::Mlp::new(37, 5).with_hidden(&[70, 19]).config();
    let model = config.init(9).unwrap();
    let mut rng = Rng::new(2);
    let rows = ROW_BLOCK + 3;
    let x = Matrix::from_vec(rows, 37, (0..rows * 37).map(|_| rng.uniform_range(-2.0, 2.0)).collect()).unwrap();
    let check = |what: &str| {
        let (codes, recon) = (model.encode(&x).unwrap(), model.reconstruct(&x).unwrap());
        for i in [0, 5, ROW_BLOCK, rows - 1] {
            let row = x.slice_rows(i, i + 1);
            assert_eq!(model.encode(&row).unwrap().row(0), codes.row(i), "{what}: row {i}");
            assert_eq!(model.reconstruct(&row).unwrap().row(0), recon.row(i), "{what}: row {i}");
        }
    };
    at_every_level(|level| {
        if crate::kernels::dot::available() {
            check(level.name())
        }
    });
    crate::with_threads(Some(2), || check("2 threads")).unwrap();
}

/// Recurrent layers read one-row sequences, and say so; a repeat layer makes one from a flat
/// row; the stored weight is `[x_t ; h_{t-1}]` side by side.
#[test]
fn recurrent_layers_plan_on_one_row_sequences() {
    let lstm_on = |input: Dims| {
        let text = r#"
            [[encoder]]
            type = "lstm"
            units = 3
            [[decoder]]
            type = "repeat"
            steps = 4
            [[decoder]]
            type = "gru"
            units = 2
            return_sequences = true
        "#;
        parse(text, input).and_then(|c| c.init(0).map_err(|e| e.to_string()))
    };
    let m = lstm_on(Dims::Image((2, 1, 4))).unwrap();
    let shapes: Vec<_> = m
        .layers
        .iter()
        .map(|l| (l.n_in(), l.n_out(), l.weight_shape()))
        .collect();
    assert_eq!(
        shapes,
        [(8, 3, Some(vec![12, 5])), (3, 12, None), (12, 8, Some(vec![6, 5]))]
    );
    for bad in [Dims::Flat(8), Dims::Image((2, 2, 2))] {
        let e = lstm_on(bad).unwrap_err();
        assert!(e.contains("encoder[0]") && e.contains("one-row sequences"), "{e}");
    }
}

/// int8 inference of the networks above: every dense layer and every convolution with
/// filters of at least [`INT8_MIN_PATCH`](crate::layer::INT8_MIN_PATCH) inputs in int8 (the
/// pooled network's one-channel first convolution stays f32 and feeds an int8 one; however
/// the chains of convolutions change layout), close to f32 (the pooled network: the other's
/// top-k code may pick other units), an image alone gets its batch bits, for any thread count.
fn int8_inference_of_convolutions(cases: &[(&str, (usize, usize, usize))]) {
    for (&(text, input), int8_layers) in cases.iter().zip([4, 4]) {
        let mut m = parse(text, Dims::Image(input)).unwrap().init(4).unwrap();
        let mut rng = Rng::new(8);
        let rows = ROW_BLOCK + 22;
        let x = uniform_matrix(&mut rng, rows, m.input_dim());
        let f32_recon = m.reconstruct(&x).unwrap();
        m.set_precision(crate::InferPrecision::Int8).unwrap();
        assert_eq!(m.int8_layers(), int8_layers);
        let recon = m.reconstruct(&x).unwrap();
        assert_ne!(recon, f32_recon);
        if text.contains("max_pool") {
            let worst = recon
                .as_slice()
                .iter()
                .zip(f32_recon.as_slice())
                .fold(0.0f32, |a, (p, q)| a.max((p - q).abs()));
            assert!(worst < 0.02, "int8 reconstruction differs by {worst}");
        }
        let alone = m.reconstruct(&x.slice_rows(ROW_BLOCK + 3, ROW_BLOCK + 4)).unwrap();
        assert_eq!(alone.row(0), recon.row(ROW_BLOCK + 3));
        let one = crate::with_threads(Some(1), || m.encode(&x).unwrap()).unwrap();
        let three = crate::with_threads(Some(3), || m.encode(&x).unwrap()).unwrap();
        assert_eq!(one, three);
    }
}

/// int8 inference through the model: close to f32, a row alone gets its batch bits, the
/// thread count changes nothing, and training (which changes the weights) returns to f32.
#[test]
fn int8_inference_is_close_exact_per_row_and_reset_by_training() {
    let mut m = Mlp::new(40, 6).with_hidden(&[24]).config().init(3).unwrap();
    let mut rng = Rng::new(8);
    let x = uniform_matrix(&mut rng, 300, 40);
    let f32_codes = m.encode(&x).unwrap();
    m.set_precision(crate::InferPrecision::Int8).unwrap();
    assert_eq!((m.precision(), m.int8_layers()), (crate::InferPrecision::Int8, 4));
    let codes = m.encode(&x).unwrap();
    let scale = f32_codes.as_slice().iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let worst = codes
        .as_slice()
        .iter()
        .zip(f32_codes.as_slice())
        .fold(0.0f32, |a, (p, q)| a.max((p - q).abs()));
    assert!(
        worst > 0.0 && worst < 0.03 * scale,
        "int8 codes differ by {worst} (scale {scale})"
    );
    let alone = m.encode(&x.slice_rows(ROW_BLOCK + 7, ROW_BLOCK + 8)).unwrap();
    assert_eq!(alone.row(0), codes.row(ROW_BLOCK + 7));
    let threaded = crate::with_threads(Some(3), || m.reconstruct(&x).unwrap()).unwrap();
    let single = crate::with_threads(Some(1), || m.reconstruct(&x).unwrap()).unwrap();
    assert_eq!(threaded, single);
    let cfg = crate::TrainConfig {
        epochs: 1,
        ..Default::default()
    };
    crate::fit(&mut m, &x, None, &cfg, |_| {}).unwrap();
    assert_eq!((m.precision(), m.int8_layers()), (crate::InferPrecision::F32, 0));
}

/// A `rows` x `cols` matrix of uniform draws in [0, 1).
fn uniform_matrix(rng: &mut Rng, rows: usize, cols: usize) -> Matrix {
    Matrix::from_vec(rows, cols, (0..rows * cols).map(|_| rng.uniform()).collect()).unwrap()
}
