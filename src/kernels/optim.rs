//! Optimizer updates over a slice of parameters (AdamW, SGD with momentum).

use super::multiversion;

multiversion! {
    /// One AdamW step on a parameter slice: `lr_t` already includes the bias correction of the
    /// first moment; `bc2` is `1 - beta2^t`; `decay` is `lr * weight_decay` (decoupled).
    #[allow(clippy::too_many_arguments)]
    pub fn adam_update(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], lr_t: f32, beta1: f32, beta2: f32, eps: f32, bc2_sqrt: f32, decay: f32) {
        for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = beta1 * *m + (1.0 - beta1) * g;
            *v = beta2 * *v + (1.0 - beta2) * g * g;
            let denom = v.sqrt() / bc2_sqrt + eps;
            *w -= decay * *w + lr_t * *m / denom;
        }
    }
}

multiversion! {
    /// One SGD step with momentum (PyTorch semantics: `b = mu b + g`; Nesterov uses `g + mu b`);
    /// `weight_decay` adds `wd * w` to the gradient.
    #[allow(clippy::too_many_arguments)]
    pub fn sgd_update(w: &mut [f32], g: &[f32], buf: &mut [f32], lr: f32, momentum: f32, nesterov: bool, weight_decay: f32) {
        for ((w, &g), b) in w.iter_mut().zip(g).zip(buf.iter_mut()) {
            let g = g + weight_decay * *w;
            *b = momentum * *b + g;
            let step = if nesterov { g + momentum * *b } else { *b };
            *w -= lr * step;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::kernels::testing::{AWKWARD, at_every_level, random};
    use crate::rng::Rng;

    /// Several steps from the same state: the fast update against the f64 twin.
    #[test]
    fn updates_match_reference() {
        at_every_level(|level| {
            let mut rng = Rng::new(13);
            for n in AWKWARD.into_iter().chain([1000]) {
                let w0 = random(n, &mut rng);
                let (mut w, mut m, mut v) = (w0.clone(), vec![0.0; n], vec![0.0; n]);
                let (mut rw, mut rm, mut rv) = (w0.clone(), vec![0.0; n], vec![0.0; n]);
                for t in 1..=5 {
                    let g = random(n, &mut rng);
                    let lr_t = 1e-2 / (1.0 - 0.9f32.powi(t));
                    let bc2 = (1.0 - 0.999f32.powi(t)).sqrt();
                    adam_update(&mut w, &g, &mut m, &mut v, lr_t, 0.9, 0.999, 1e-8, bc2, 1e-4);
                    reference::adam_update(&mut rw, &g, &mut rm, &mut rv, lr_t, 0.9, 0.999, 1e-8, bc2, 1e-4);
                }
                for (a, b) in w.iter().zip(&rw) {
                    assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{level:?} adam {a} vs {b}");
                }
                for nesterov in [false, true] {
                    let (mut w, mut buf) = (w0.clone(), vec![0.0; n]);
                    let (mut rw, mut rbuf) = (w0.clone(), vec![0.0; n]);
                    for _ in 0..5 {
                        let g = random(n, &mut rng);
                        sgd_update(&mut w, &g, &mut buf, 0.05, 0.9, nesterov, 1e-3);
                        reference::sgd_update(&mut rw, &g, &mut rbuf, 0.05, 0.9, nesterov, 1e-3);
                    }
                    assert_eq!(w, rw, "{level:?} sgd (nesterov {nesterov})");
                }
            }
        });
    }
}
