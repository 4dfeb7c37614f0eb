//! hourglass side of `bench/run`: one measurement per process, printed as one JSON line.
//!
//! Usage: cargo run --release --example bench_mlp -- TASK MNIST_TRAIN_IDX THREADS
//! TASK: train_small | train_deep | train_conv | encode_small | encode_conv | latency_small |
//! latency_score. PRECISION=bf16 trains with bf16 GEMMs; PRECISION=int8 runs the inference
//! tasks in int8. REPEAT=N times the latency tasks' 1,000 rows N times over (for a profiler).
//!
//! Or: cargo run --release --example bench_mlp -- export_small|export_conv OUT.onnx — the
//! models the encode tasks time (weights from seed 1), exported as ONNX graphs that give the
//! code: what bench/ort_mlp.py runs in onnxruntime.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use hourglass::{Activation, AutoencoderConfig, Event, Loss, Matrix, Mlp, TrainConfig, fit, with_threads};
use std::time::Instant;

fn config(deep: bool) -> AutoencoderConfig {
    let hidden: &[usize] = if deep { &[1000, 500, 250] } else { &[256] };
    Mlp::new(784, if deep { 30 } else { 64 })
        .with_hidden(hidden)
        .with_activations(Activation::Relu, Activation::Identity, Activation::Sigmoid)
        .with_loss(Loss::Mse)
        .config()
}

/// The issue-4 benchmark network (examples/conv-mnist.toml), with MSE as the PyTorch side.
fn conv_config() -> AutoencoderConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/conv-mnist.toml");
    let mut c = hourglass::model::toml::read(path.as_ref(), hourglass::model::Dims::Flat(784)).unwrap();
    c.loss = Loss::Mse;
    c
}

/// The inference arithmetic asked for by PRECISION (int8, else f32), set on `model`.
fn inference(model: &mut hourglass::Autoencoder) {
    if std::env::var("PRECISION").as_deref() == Ok("int8") {
        model.set_precision(hourglass::InferPrecision::Int8).unwrap();
    }
}

/// Median microseconds of `f` on each of the first 1,000 rows alone (after 100 warm-up rows);
/// the p99, the tail a scoring service sees, goes to stderr (the JSON line carries the median).
fn per_row_latency<T>(task: &str, x: &Matrix, f: impl Fn(&Matrix) -> T) -> f64 {
    let rows: Vec<Matrix> = (0..1000).map(|i| x.slice_rows(i, i + 1)).collect();
    for r in &rows[..100] {
        f(r);
    }
    let repeat: usize = std::env::var("REPEAT").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut times: Vec<f64> = std::iter::repeat_n(&rows, repeat)
        .flatten()
        .map(|r| {
            let t = Instant::now();
            std::hint::black_box(f(r));
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    eprintln!("{task} p99 {:.1} µs", times[times.len() * 99 / 100] * 1e6);
    times[times.len() / 2] * 1e6
}

fn train(x: &Matrix, config: AutoencoderConfig) -> f64 {
    let mut model = config.init(1).unwrap();
    // Warm-up on 10 batches (thread pool, page faults), as the PyTorch side does.
    let warm = x.slice_rows(0, 2560);
    // PRECISION=bf16 selects the AMX path (bench/run reports it as its own row).
    let precision = std::env::var("PRECISION").map_or(hourglass::Precision::F32, |p| p.parse().unwrap());
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 256,
        lr: 1e-3,
        seed: 1,
        precision,
        ..TrainConfig::default()
    };
    fit(&mut model, &warm, None, &cfg, |_| {}).unwrap();
    let mut rate = 0.0;
    fit(&mut model, x, None, &cfg, |e| {
        if let Event::EpochEnd(s) = e {
            rate = s.samples_per_sec
        }
    })
    .unwrap();
    rate
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(kind) = args[1].strip_prefix("export_") {
        let c = if kind == "conv" { conv_config() } else { config(false) };
        let file = hourglass::format::ModelFile::new(c.init(1).unwrap());
        let e = hourglass::onnx::autoencoder(&file, Some(&[hourglass::onnx::Output::Code])).unwrap();
        e.save(args[2].as_ref()).unwrap();
        return;
    }
    let (task, path, threads) = (&args[1], &args[2], args[3].parse::<usize>().unwrap());
    let x = hourglass::data::load(path.as_ref(), &Default::default()).unwrap().x;
    let value = with_threads(Some(threads), || match task.as_str() {
        "train_small" => train(&x, config(false)),
        "train_deep" => train(&x, config(true)),
        "train_conv" => train(&x, conv_config()),
        "encode_small" | "encode_conv" => {
            let c = if task == "encode_conv" {
                conv_config()
            } else {
                config(false)
            };
            let mut model = c.init(1).unwrap();
            inference(&mut model);
            let chunks: Vec<Matrix> = (0..x.rows() / 1024)
                .map(|i| x.slice_rows(i * 1024, (i + 1) * 1024))
                .collect();
            model.encode(&chunks[0]).unwrap();
            let t = Instant::now();
            let mut n = 0;
            // REPEAT=N passes (for profiling; bench/run uses one, as the PyTorch side does).
            let repeat = std::env::var("REPEAT").map_or(1, |r| r.parse().unwrap());
            for _ in 0..repeat {
                for c in &chunks {
                    n += model.encode(c).unwrap().rows();
                }
            }
            n as f64 / t.elapsed().as_secs_f64()
        }
        "latency_score" => {
            // One row's anomaly score (scaler, encode, decode, mean squared error) of the small
            // AE with a standard scaler: what a scoring service pays per request.
            let mut model = config(false).init(1).unwrap();
            model
                .set_scaler(hourglass::Scaler::fit(hourglass::Scaling::Standard, &x))
                .unwrap();
            inference(&mut model);
            per_row_latency(task, &x, |r| {
                hourglass::score::scores(&model, r, hourglass::score::ScoreMetric::Mse).unwrap()
            })
        }
        "latency_small" => {
            let mut model = config(false).init(1).unwrap();
            inference(&mut model);
            per_row_latency(task, &x, |r| model.encode(r).unwrap())
        }
        other => panic!("unknown task {other}"),
    })
    .unwrap();
    println!("{{\"task\": \"{task}\", \"value\": {value}}}");
}
