//! Hamming search throughput: `cargo run --release --example bench_hamming [ITEMS] [BITS]`.
//! Random codes (seeded); 1,000 queries, top-10 each, all cores; prints code comparisons per
//! second and checks one query against a brute-force sort.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use hourglass::Matrix;
use hourglass::hash::{Codes, search};
use rayon::prelude::*;

fn codes(n: usize, bits: usize, seed: u64) -> Codes {
    let mut rng = hourglass::Rng::new(seed);
    let x = Matrix::from_vec(n, bits, (0..n * bits).map(|_| rng.uniform()).collect()).expect("shape");
    Codes::pack(&x, 0.5)
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(1_000_000);
    let bits = args.get(1).copied().unwrap_or(32);
    let db = codes(n, bits, 1);
    let q = codes(1000, bits, 2);
    let t0 = std::time::Instant::now();
    let hits: Vec<_> = (0..q.rows())
        .into_par_iter()
        .map(|i| search(&db, q.row(i), 10, None))
        .collect();
    let secs = t0.elapsed().as_secs_f64();
    let mut brute: Vec<(u32, usize)> = (0..n)
        .map(|j| (hourglass::hash::hamming(db.row(j), q.row(0)), j))
        .collect();
    brute.sort();
    assert!(hits[0].iter().zip(&brute).all(|(h, b)| (h.distance, h.item) == *b));
    println!(
        "{n} items x {} queries, {bits} bits, top-10: {secs:.3} s, {:.0} million code comparisons/s ({} threads)",
        q.rows(),
        (n * q.rows()) as f64 / secs / 1e6,
        rayon::current_num_threads()
    );
}
