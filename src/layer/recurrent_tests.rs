//! What both recurrent layers must pass, checked once through the `Layer` interface the
//! network stack uses: backpropagation through time against central differences, and results
//! that do not depend on the thread count. (Each kind's forward recurrence is checked in its
//! own file.)

use super::{Gru, Init, Layer, Lstm, PrevActivation};
use crate::activation::Activation;
use crate::kernels::Precision;
use crate::rng::Rng;

/// Each kind with its own seeds: `(name, make, layer seed, data seed of the gradient check,
/// data seed of the thread check)`.
type Make = fn(usize, usize, usize, bool, &mut Rng) -> Layer;
const KINDS: [(&str, Make, u64, u64, u64); 2] = [
    (
        "lstm",
        |n_in, hidden, steps, last, rng| Layer::Lstm(Lstm::new(n_in, hidden, steps, last, Init::Xavier, rng)),
        11,
        7,
        3,
    ),
    (
        "gru",
        |n_in, hidden, steps, last, rng| Layer::Gru(Gru::new(n_in, hidden, steps, last, Init::Xavier, rng)),
        13,
        8,
        5,
    ),
];

/// A layer of the kind with biases moved off their start values.
fn layer(make: Make, seed: u64, n_in: usize, hidden: usize, steps: usize, last: bool) -> Layer {
    let mut rng = Rng::new(seed);
    let mut l = make(n_in, hidden, steps, last, &mut rng);
    l.params_mut()
        .1
        .iter_mut()
        .for_each(|b| *b += rng.uniform_range(-0.3, 0.3));
    l
}

/// The output and the cache of `x`'s rows.
fn forward(l: &Layer, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / l.n_in();
    let (mut y, mut cache) = (vec![0.0; rows * l.n_out()], vec![0.0; rows * l.cache_len()]);
    l.forward(x, &mut y, None, (&mut [], &mut cache), Precision::F32);
    (y, cache)
}

/// `(dw, db, dx)` for the output gradient `dy` (the layer below taken as linear).
fn backward(l: &Layer, x: &[f32], cache: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (w, b) = l.params();
    let (mut dw, mut db, mut dx) = (vec![0.0; w.len()], vec![0.0; b.len()], vec![0.0; x.len()]);
    let below = PrevActivation {
        act: Activation::Identity,
        y: x,
        z: None,
        code: None,
    };
    l.backward(
        x,
        dy,
        &mut dw,
        &mut db,
        Some((&mut dx, below)),
        (&[], cache),
        Precision::F32,
    );
    (dw, db, dx)
}

/// Backpropagation through time against central differences of `<y, r>`, for every weight,
/// bias and input, in both output modes.
#[test]
fn gradients_match_finite_differences() {
    for (kind, make, seed, data_seed, _) in KINDS {
        for last in [false, true] {
            let l = layer(make, seed, 2, 3, 4, last);
            let batch = 2;
            let mut rng = Rng::new(data_seed);
            let x: Vec<f32> = (0..batch * l.n_in()).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
            let r: Vec<f32> = (0..batch * l.n_out()).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
            let loss = |l: &Layer, x: &[f32]| -> f64 {
                let (y, _) = forward(l, x);
                y.iter().zip(&r).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum()
            };
            let (_, cache) = forward(&l, &x);
            let (dw, db, dx) = backward(&l, &x, &cache, &r);
            let h = 1e-3f32;
            let close = |num: f64, ana: f32, what: &str| {
                assert!(
                    (num - f64::from(ana)).abs() < 1e-2 * (1.0 + num.abs()),
                    "{kind} last={last} {what}: {num} vs {ana}"
                );
            };
            let n_w = dw.len();
            for i in 0..n_w + db.len() {
                let moved = |delta: f32| {
                    let mut m = l.clone();
                    let (w, b) = m.params_mut();
                    if i < n_w {
                        w[i] += delta
                    } else {
                        b[i - n_w] += delta
                    }
                    loss(&m, &x)
                };
                let (ana, what) = if i < n_w { (dw[i], "dw") } else { (db[i - n_w], "db") };
                close((moved(h) - moved(-h)) / (2.0 * f64::from(h)), ana, what);
            }
            for i in 0..x.len() {
                let (mut a, mut b) = (x.clone(), x.clone());
                a[i] += h;
                b[i] -= h;
                close((loss(&l, &a) - loss(&l, &b)) / (2.0 * f64::from(h)), dx[i], "dx");
            }
        }
    }
}

#[test]
fn results_do_not_depend_on_thread_count() {
    for (kind, make, seed, _, data_seed) in KINDS {
        let l = layer(make, seed, 3, 4, 6, false);
        let batch = 37; // several sequence blocks, the last one partial
        let mut rng = Rng::new(data_seed);
        let x: Vec<f32> = (0..batch * l.n_in()).map(|_| rng.normal()).collect();
        let g: Vec<f32> = (0..batch * l.n_out()).map(|_| rng.normal()).collect();
        let run = |t| {
            crate::with_threads(Some(t), || {
                let (y, cache) = forward(&l, &x);
                (y, backward(&l, &x, &cache, &g))
            })
            .unwrap()
        };
        assert_eq!(run(1), run(3), "{kind}");
    }
}
