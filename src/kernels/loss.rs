//! Output-layer loss kernels: the loss summed over a block and its gradient with respect to
//! the output pre-activation, in one pass.

use super::elementwise::{LANES, activation_backward, fast_exp, fast_ln, lanes_total};
use super::multiversion;
use crate::activation::Activation;

multiversion! {
    /// MSE output gradient: `dz = scale * 2 (y - t) * act'(z, y)`; returns `Σ (y - t)^2`.
    pub fn mse_output_grad(y: &[f32], t: &[f32], z: Option<&[f32]>, act: Activation, scale: f32, dz: &mut [f32]) -> f64 {
        let mut total = 0.0f64;
        for ((d, y), t) in dz.chunks_mut(1024).zip(y.chunks(1024)).zip(t.chunks(1024)) {
            let mut acc = [0.0f32; LANES];
            let n = d.len() / LANES * LANES;
            for ((d, y), t) in d[..n].chunks_exact_mut(LANES).zip(y.chunks_exact(LANES)).zip(t.chunks_exact(LANES)) {
                for l in 0..LANES {
                    let e = y[l] - t[l];
                    acc[l] += e * e;
                    d[l] = scale * 2.0 * e;
                }
            }
            for (l, ((d, &y), &t)) in d[n..].iter_mut().zip(&y[n..]).zip(&t[n..]).enumerate() {
                let e = y - t;
                acc[l] += e * e;
                *d = scale * 2.0 * e;
            }
            total += lanes_total(&acc);
        }
        activation_backward(dz, y, z, act);
        total
    }
}

multiversion! {
    /// BCE output gradient for a sigmoid output with pre-activation `z`:
    /// `dz = scale * (y - t)`; returns `Σ max(z,0) - z t + ln(1 + exp(-|z|))` (stable).
    pub fn bce_sigmoid_output_grad(y: &[f32], t: &[f32], z: &[f32], scale: f32, dz: &mut [f32]) -> f64 {
        let term = |z: f32, t: f32| z.max(0.0) - z * t + fast_ln(1.0 + fast_exp(-z.abs()));
        let mut total = 0.0f64;
        for (((dz, y), t), z) in dz.chunks_mut(1024).zip(y.chunks(1024)).zip(t.chunks(1024)).zip(z.chunks(1024)) {
            let mut acc = [0.0f32; LANES];
            let n = dz.len() / LANES * LANES;
            for (((d, y), t), z) in dz[..n]
                .chunks_exact_mut(LANES)
                .zip(y.chunks_exact(LANES))
                .zip(t.chunks_exact(LANES))
                .zip(z.chunks_exact(LANES))
            {
                for l in 0..LANES {
                    d[l] = scale * (y[l] - t[l]);
                    acc[l] += term(z[l], t[l]);
                }
            }
            for (l, (((d, &y), &t), &z)) in dz[n..].iter_mut().zip(&y[n..]).zip(&t[n..]).zip(&z[n..]).enumerate() {
                *d = scale * (y - t);
                acc[l] += term(z, t);
            }
            total += lanes_total(&acc);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::kernels::testing::{AWKWARD, at_every_level};
    use crate::rng::Rng;

    #[test]
    fn loss_kernels_match_reference() {
        at_every_level(|level| {
            let mut rng = Rng::new(9);
            // Long rows too: the lanes and the 1024-value chunks.
            for n in AWKWARD.into_iter().chain([777, 2049]) {
                let z: Vec<f32> = (0..n).map(|_| rng.uniform_range(-8.0, 8.0)).collect();
                let t: Vec<f32> = (0..n).map(|_| rng.uniform()).collect();
                let scale = 1.0 / n as f32;
                for act in Activation::ALL {
                    let y: Vec<f32> = z.iter().map(|&z| act.apply(z)).collect();
                    let (mut got_dz, mut want_dz) = (vec![0.0; n], vec![0.0; n]);
                    let got = mse_output_grad(&y, &t, Some(&z), act, scale, &mut got_dz);
                    let want = reference::mse_output_grad(&y, &t, &z, act, scale, &mut want_dz);
                    assert!(
                        (got - want).abs() < 1e-5 * want.max(1e-3),
                        "{level:?} {act} mse {got} vs {want}"
                    );
                    for (g, w) in got_dz.iter().zip(&want_dz) {
                        assert!(
                            (g - w).abs() < 1e-5 * (scale + w.abs()),
                            "{level:?} {act} dz {g} vs {w}"
                        );
                    }
                }
                let y: Vec<f32> = z.iter().map(|&z| Activation::Sigmoid.apply(z)).collect();
                let (mut got_dz, mut want_dz) = (vec![0.0; n], vec![0.0; n]);
                let got = bce_sigmoid_output_grad(&y, &t, &z, scale, &mut got_dz);
                let want = reference::bce_sigmoid_output_grad(&y, &t, &z, scale, &mut want_dz);
                assert!((got - want).abs() < 1e-5 * want, "{level:?} bce {got} vs {want}");
                assert_eq!(got_dz, want_dz, "{level:?} bce dz");
            }
        });
    }
}
