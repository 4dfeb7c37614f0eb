//! hourglass side of `bench/gemm`: the GFLOP/s of every GEMM of a training step of the
//! benchmark networks (batch 256), f32 and (where a bf16 unit exists) bf16, and the f32
//! rate at 2048³ as this machine's peak. One JSON line per shape.
//!
//! Usage: cargo run --release --example bench_gemm -- THREADS

#![allow(clippy::print_stdout, clippy::print_stderr)]

use hourglass::kernels::{self, Precision, view};
use hourglass::with_threads;
use std::time::Instant;

/// Layer widths of `train_small` and `train_deep` (bench/mlp.rs).
const NETS: [(&str, &[usize]); 2] = [
    ("small", &[784, 256, 64, 256, 784]),
    ("deep", &[784, 1000, 500, 250, 30, 250, 500, 1000, 784]),
];
const BATCH: usize = 256;

/// Seconds per call of `f`, the best of five timings of enough calls to take ~0.2 s.
fn time(mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    f();
    let once = t.elapsed().as_secs_f64().max(1e-7);
    let reps = ((0.2 / once) as usize).clamp(1, 10_000);
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 31) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

fn main() {
    let threads: usize = std::env::args().nth(1).map_or(2, |t| t.parse().unwrap());
    let mut precisions = vec![Precision::F32];
    if Precision::Bf16.uses_bf16() {
        precisions.push(Precision::Bf16);
    }
    with_threads(Some(threads), || {
        let report = |net: &str, gemm: &str, (m, k, n): (usize, usize, usize), p: Precision, s: f64| {
            let gflops = 2.0 * (m * k * n) as f64 / s / 1e9;
            println!(
                "{{\"net\": \"{net}\", \"gemm\": \"{gemm}\", \"m\": {m}, \"k\": {k}, \"n\": {n}, \"precision\": \"{}\", \"kernels\": \"{}\", \"gflops\": {gflops:.2}}}",
                p.name(),
                p.kernels()
            );
        };
        for p in &precisions {
            let s = 2048;
            let (a, b) = (values(s * s, 1), values(s * s, 2));
            let mut c = vec![0.0; s * s];
            let t = time(|| kernels::matmul_rows(&mut c, view(&a, s, s), view(&b, s, s), false, *p, |_, _| {}));
            report("peak", "2048^3", (s, s, s), *p, t);
        }
        // One row's int8 products (the latency path): the small AE's layers, whose weight
        // bytes stream from L2 (or L1 when small), and a layer of 8 outputs that sits in L1 —
        // the kernel's rate without the memory behind it. Multiply-adds and weight bytes per s.
        for (k, n) in [(784, 8), (784, 256), (256, 64), (64, 256), (256, 784)] {
            let (w, _) = kernels::int8::quantize_weights(&values(n * k, 6), n, k);
            let (kp, x) = (kernels::int8::padded(k), values(k, 7));
            let (mut q, mut sx) = (vec![0i8; kp], [0.0f32]);
            kernels::int8::quantize_rows(&x, k, &mut q, &mut sx);
            let mut acc = vec![0i32; n];
            let t = time(|| kernels::int8::dot_i8(&mut acc, &q, &w));
            println!(
                "{{\"net\": \"int8-row\", \"gemm\": \"{k}->{n}\", \"unit\": \"{}\", \"weight_kb\": {:.1}, \"gmacs\": {:.2}, \"gbytes\": {:.2}}}",
                kernels::int8::Unit::here().name(),
                (n * kp) as f64 / 1024.0,
                (k * n) as f64 / t / 1e9,
                (n * kp) as f64 / t / 1e9
            );
        }
        for (net, widths) in NETS {
            for l in widths.windows(2) {
                let (k, n) = (l[0], l[1]);
                let (x, w, dz) = (values(BATCH * k, 3), values(n * k, 4), values(BATCH * n, 5));
                for p in &precisions {
                    // forward: y (B x n) = x (B x k) · Wᵀ
                    let mut y = vec![0.0; BATCH * n];
                    let wt = view(&w, n, k).transpose();
                    let t = time(|| kernels::matmul_rows(&mut y, view(&x, BATCH, k), wt, false, *p, |_, _| {}));
                    report(net, &format!("{k}->{n} forward"), (BATCH, k, n), *p, t);
                    // dW (n x k) = dzᵀ (n x B) · x (B x k)
                    let mut dw = vec![0.0; n * k];
                    let dzt = view(&dz, BATCH, n).transpose();
                    let t = time(|| kernels::matmul_rows(&mut dw, dzt, view(&x, BATCH, k), false, *p, |_, _| {}));
                    report(net, &format!("{k}->{n} dW"), (n, BATCH, k), *p, t);
                    // dX (B x k) = dz (B x n) · W (n x k)
                    let mut dx = vec![0.0; BATCH * k];
                    let t = time(|| kernels::matmul_rows(&mut dx, view(&dz, BATCH, n), view(&w, n, k), false, *p, |_, _| {}));
                    report(net, &format!("{k}->{n} dX"), (BATCH, n, k), *p, t);
                }
            }
        }
    })
    .unwrap();
}
