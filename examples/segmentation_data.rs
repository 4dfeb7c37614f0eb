//! A generated segmentation task for paired-target training (issue 4): bright shapes (discs,
//! rectangles, triangles) on textured noise, 32x32 gray images, and their 0/1 masks.
//!
//! Usage: cargo run --release --example segmentation_data -- PREFIX N_TRAIN N_TEST SEED
//! writes PREFIX-{train,test}-{images,masks}.npy and prints the IoU of the best single
//! threshold on pixel values (the baseline a learned model has to beat).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use hourglass::{Matrix, Rng};

const SIDE: usize = 32;

fn sample(rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
    let n = SIDE * SIDE;
    // Texture: a few random plane waves plus pixel noise, in about [0, 0.75].
    let waves: Vec<(f32, f32, f32, f32)> = (0..3)
        .map(|_| {
            (
                rng.uniform_range(-0.6, 0.6),
                rng.uniform_range(-0.6, 0.6),
                rng.uniform_range(0.0, std::f32::consts::TAU),
                rng.uniform_range(0.05, 0.15),
            )
        })
        .collect();
    let mut img = vec![0f32; n];
    for y in 0..SIDE {
        for x in 0..SIDE {
            let t: f32 = waves
                .iter()
                .map(|&(fx, fy, ph, a)| a * (fx * x as f32 + fy * y as f32 + ph).sin())
                .sum();
            img[y * SIDE + x] = 0.35 + t + rng.uniform_range(-0.2, 0.2);
        }
    }
    let mut mask = vec![0f32; n];
    for _ in 0..1 + rng.below(3) {
        let (cx, cy) = (rng.uniform_range(6.0, 26.0), rng.uniform_range(6.0, 26.0));
        let r = rng.uniform_range(3.0, 7.0);
        let kind = rng.below(3);
        let level = rng.uniform_range(0.55, 0.85);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                let inside = match kind {
                    0 => dx * dx + dy * dy < r * r,
                    1 => dx.abs() < r && dy.abs() < 0.6 * r,
                    _ => dy < r * 0.8 && dy > -r && dx.abs() < (dy + r) * 0.6,
                };
                if inside {
                    mask[y * SIDE + x] = 1.0;
                    img[y * SIDE + x] = level + rng.uniform_range(-0.15, 0.15);
                }
            }
        }
    }
    img.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    (img, mask)
}

fn write(path: &str, rows: Vec<Vec<f32>>) {
    let n = rows.len();
    let m = Matrix::from_vec(n, SIDE * SIDE, rows.concat()).expect("rows of 32x32");
    hourglass::data::npy::write(path.as_ref(), &m).expect("writable output");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: segmentation_data PREFIX N_TRAIN N_TEST SEED");
        std::process::exit(2);
    }
    let prefix = &args[1];
    let counts = [&args[2], &args[3]].map(|a| a.parse::<usize>().expect("a count"));
    let mut rng = Rng::new(args[4].parse().expect("a seed"));
    let mut test_pairs = Vec::new();
    for (part, n) in ["train", "test"].into_iter().zip(counts) {
        let (images, masks): (Vec<_>, Vec<_>) = (0..n).map(|_| sample(&mut rng)).unzip();
        if part == "test" {
            test_pairs = images.iter().cloned().zip(masks.iter().cloned()).collect();
        }
        write(&format!("{prefix}-{part}-images.npy"), images);
        write(&format!("{prefix}-{part}-masks.npy"), masks);
    }
    // Baseline: the best single threshold on pixel values, pooled IoU on the test images.
    let best = (1..100)
        .map(|i| {
            let th = i as f32 / 100.0;
            let (mut inter, mut union) = (0u64, 0u64);
            for (img, mask) in &test_pairs {
                for (&v, &m) in img.iter().zip(mask) {
                    let (p, t) = (v > th, m == 1.0);
                    inter += u64::from(p && t);
                    union += u64::from(p || t);
                }
            }
            (inter as f64 / union.max(1) as f64, th)
        })
        .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a });
    println!(
        "best single threshold on pixel values: {:.2}, test IoU {:.4}",
        best.1, best.0
    );
}
