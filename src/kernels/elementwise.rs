//! Elementwise kernels: fast `exp`/`ln`, the fused bias + activation epilogues, the activation
//! derivative, column sums and the norms and scalings of the optimizer step.

use super::{ELEMENT_BLOCK, multiversion};
use crate::activation::Activation;
use rayon::prelude::*;

/// Runs `$each!(f)` with `f` the activation `$act` as a closure of one value (the forward
/// epilogues' loops, compiled once per activation so each vectorizes); `$identity` for
/// [`Activation::Identity`].
macro_rules! by_activation {
    ($act:expr, $each:ident, $identity:expr) => {
        match $act {
            Activation::Identity => $identity,
            Activation::Relu => $each!(|v: f32| v.max(0.0)),
            Activation::LeakyRelu => $each!(|v| Activation::LeakyRelu.apply_with(v, fast_exp)),
            Activation::Elu => $each!(|v| Activation::Elu.apply_with(v, fast_exp)),
            Activation::Sigmoid => $each!(|v| Activation::Sigmoid.apply_with(v, fast_exp)),
            Activation::Tanh => $each!(|v| Activation::Tanh.apply_with(v, fast_exp)),
            Activation::Gelu => $each!(|v| Activation::Gelu.apply_with(v, fast_exp)),
        }
    };
}
pub(crate) use by_activation;

/// Fast `exp` for f32: branch-free (vectorizes), relative error below 2e-7 on [-87, 88];
/// inputs are clamped to that range.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.clamp(-87.336_54, 88.376_26);
    let t = x * LOG2E + ROUND;
    let n_int = t.to_bits() as i32 - ROUND.to_bits() as i32;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    // Minimax polynomial for exp(r) on [-ln2/2, ln2/2] (Cephes expf).
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n_int + 127) << 23) as u32)
}

/// Fast natural logarithm for positive normal f32, branch-free, relative error below 3e-7.
#[inline(always)]
pub fn fast_ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // [0.5, 1)
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    let e = (if small { e - 1 } else { e }) as f32;
    let m = if small { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    // Polynomial for log(1 + m) (Cephes logf).
    let mut y = 7.037_683_6e-2_f32;
    y = y * m - 1.151_461_1e-1;
    y = y * m + 1.167_699_9e-1;
    y = y * m - 1.242_014_1e-1;
    y = y * m + 1.424_932_3e-1;
    y = y * m - 1.666_805_8e-1;
    y = y * m + 2.000_071_4e-1;
    y = y * m - 2.499_999_4e-1;
    y = y * m + 0.333_333_34;
    let y = y * m * z - 2.121_944_4e-4 * e - 0.5 * z;
    m + y + 0.693_359_4 * e
}

multiversion! {
    /// `y = act(y + bias)` for each row of `y` (`bias.len()` columns); when `z` is given, the
    /// pre-activation `y + bias` is stored there too.
    pub fn bias_activation(y: &mut [f32], bias: &[f32], act: Activation, z: Option<&mut [f32]>) {
        let cols = bias.len();
        if let Some(z) = z {
            for (yr, zr) in y.chunks_exact_mut(cols).zip(z.chunks_exact_mut(cols)) {
                for ((v, zv), b) in yr.iter_mut().zip(zr.iter_mut()).zip(bias) {
                    let pre = *v + b;
                    *zv = pre;
                    *v = act.apply_with(pre, fast_exp);
                }
            }
            return;
        }
        macro_rules! each {
            ($f:expr) => {
                for yr in y.chunks_exact_mut(cols) {
                    for (v, b) in yr.iter_mut().zip(bias) {
                        *v = $f(*v + b);
                    }
                }
            };
        }
        by_activation!(act, each, each!(|v: f32| v))
    }
}

multiversion! {
    /// `y += bias`, `z = y` when given, then `y = act(y)`, over one channel plane (a
    /// convolution's epilogue).
    pub fn plane_bias_activation(y: &mut [f32], z: Option<&mut [f32]>, bias: f32, act: Activation) {
        if let Some(z) = z {
            for (yv, zv) in y.iter_mut().zip(z.iter_mut()) {
                *yv += bias;
                *zv = *yv;
            }
        } else {
            y.iter_mut().for_each(|v| *v += bias);
        }
        macro_rules! each {
            ($f:expr) => {
                y.iter_mut().for_each(|v| *v = $f(*v))
            };
        }
        by_activation!(act, each, {})
    }
}

multiversion! {
    /// `d *= act'(z, y)` elementwise; `z` is needed only when `act.needs_preactivation()`.
    pub fn activation_backward(d: &mut [f32], y: &[f32], z: Option<&[f32]>, act: Activation) {
        macro_rules! each {
            ($a:expr) => {
                for (d, &y) in d.iter_mut().zip(y) {
                    *d *= $a.grad_with(0.0, y, fast_exp);
                }
            };
        }
        match act {
            Activation::Identity => {}
            Activation::Relu => {
                for (d, &y) in d.iter_mut().zip(y) {
                    *d = if y > 0.0 { *d } else { 0.0 };
                }
            }
            Activation::LeakyRelu => each!(Activation::LeakyRelu),
            Activation::Elu => each!(Activation::Elu),
            Activation::Sigmoid => each!(Activation::Sigmoid),
            Activation::Tanh => each!(Activation::Tanh),
            Activation::Gelu => {
                let z = z.expect("gelu backward needs the pre-activation");
                for ((d, &y), &z) in d.iter_mut().zip(y).zip(z) {
                    *d *= Activation::Gelu.grad_with(z, y, fast_exp);
                }
            }
        }
    }
}

multiversion! {
    /// `sums[j] = Σ_i a[i, j]` over the rows of `a`, summed in row order (deterministic).
    pub fn column_sums(a: &[f32], sums: &mut [f32]) {
        sums.fill(0.0);
        let cols = sums.len();
        for row in a.chunks_exact(cols) {
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += v;
            }
        }
    }
}

/// Lanes of the vectorized sums: 16 f32 partial sums (one AVX-512 register), combined in a
/// fixed order, so the result depends only on the data.
pub(super) const LANES: usize = 16;

#[inline(always)]
pub(super) fn lanes_total(acc: &[f32; LANES]) -> f64 {
    acc.iter().map(|&v| v as f64).sum()
}

multiversion! {
    /// `Σ v^2` in f64 (16 lanes, fixed order: deterministic).
    pub fn sum_squares(a: &[f32]) -> f64 {
        let mut total = 0.0f64;
        for c in a.chunks(1024) {
            let mut acc = [0.0f32; LANES];
            let n = c.len() / LANES * LANES;
            for v in c[..n].chunks_exact(LANES) {
                for l in 0..LANES {
                    acc[l] += v[l] * v[l];
                }
            }
            for (l, &v) in c[n..].iter().enumerate() {
                acc[l] += v * v;
            }
            total += lanes_total(&acc);
        }
        total
    }
}

/// Rescales each row of `w` (`cols` values: one unit's incoming weights) whose L2 norm
/// exceeds `max` to norm `max`. Rows are independent: parallel and deterministic.
pub fn max_norm_rows(w: &mut [f32], cols: usize, max: f32) {
    w.par_chunks_mut(cols * (ELEMENT_BLOCK / cols).max(1)).for_each(|rows| {
        for row in rows.chunks_exact_mut(cols) {
            let norm = sum_squares(row).sqrt();
            if norm > max as f64 {
                scale_in_place(row, (max as f64 / norm) as f32);
            }
        }
    });
}

multiversion! {
    /// `a *= s`.
    pub fn scale_in_place(a: &mut [f32], s: f32) {
        for v in a {
            *v *= s;
        }
    }
}

multiversion! {
    /// A recurrent step's backward products: for each row `r` of `w` (`input.len()` values),
    /// `dw[r] += da[r] · input` (the weight gradient's outer product) and `d_input += da[r] ·
    /// w[r]` (the gradient sent to the step's input), rows in order: the same bits at every
    /// level.
    pub fn outer_and_back(dw: &mut [f32], w: &[f32], da: &[f32], input: &[f32], d_input: &mut [f32]) {
        let cols = input.len();
        for ((g, wr), &d) in dw.chunks_exact_mut(cols).zip(w.chunks_exact(cols)).zip(da) {
            for ((gk, ik), (dk, wk)) in g.iter_mut().zip(input).zip(d_input.iter_mut().zip(wr)) {
                *gk += d * ik;
                *dk += d * wk;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::kernels::testing::{AWKWARD, at_every_level, random};
    use crate::rng::Rng;

    #[test]
    fn fast_exp_and_ln_are_accurate() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let rel = ((fast_exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 4e-7, "fast_exp worst relative error {worst}");
        let mut worst = 0.0f64;
        let mut x = 1e-30f32;
        while x < 1e30 {
            let exact = (x as f64).ln();
            let err = (fast_ln(x) as f64 - exact).abs() / exact.abs().max(1.0);
            worst = worst.max(err);
            x *= 1.0371;
        }
        assert!(worst < 4e-7, "fast_ln worst error {worst}");
        assert!(fast_exp(-1000.0) >= 0.0 && fast_exp(1000.0).is_finite());
    }

    #[test]
    fn elementwise_kernels_match_reference() {
        at_every_level(|level| {
            let mut rng = Rng::new(5);
            for &rows in &AWKWARD {
                for &cols in &[1, 9, 17, 64] {
                    let x: Vec<f32> = (0..rows * cols).map(|_| rng.uniform_range(-6.0, 6.0)).collect();
                    let bias = random(cols, &mut rng);
                    for act in Activation::ALL {
                        let mut want = x.clone();
                        reference::bias_activation(&mut want, &bias, act);
                        let mut got = x.clone();
                        let mut z = vec![0.0; x.len()];
                        bias_activation(&mut got, &bias, act, Some(&mut z));
                        let mut got2 = x.clone();
                        bias_activation(&mut got2, &bias, act, None);
                        for ((g, g2), w) in got.iter().zip(&got2).zip(&want) {
                            assert!((g - w).abs() < 2e-6 * (1.0 + w.abs()), "{level:?} {act}: {g} vs {w}");
                            assert_eq!(g.to_bits(), g2.to_bits(), "{act}: with/without z differ");
                        }
                        let d0 = random(x.len(), &mut rng);
                        let mut want_d = d0.clone();
                        reference::activation_backward(&mut want_d, &want, &z, act);
                        let mut got_d = d0.clone();
                        activation_backward(&mut got_d, &got, Some(&z), act);
                        for (g, w) in got_d.iter().zip(&want_d) {
                            assert!((g - w).abs() < 1e-5 * (1.0 + w.abs()), "{act} backward: {g} vs {w}");
                        }
                    }
                    let mut sums = vec![0.0; cols];
                    column_sums(&x, &mut sums);
                    for (g, w) in sums.iter().zip(reference::column_sums(&x, cols)) {
                        assert!((g - w).abs() < 1e-4 * (rows as f32));
                    }
                }
            }
        });
    }

    #[test]
    fn plane_epilogue_norms_and_scaling_match_reference() {
        at_every_level(|level| {
            let mut rng = Rng::new(6);
            for &n in &AWKWARD {
                let x: Vec<f32> = (0..n).map(|_| rng.uniform_range(-6.0, 6.0)).collect();
                let bias = rng.uniform_range(-1.0, 1.0);
                for act in Activation::ALL {
                    let (mut want, mut want_z) = (x.clone(), vec![0.0; n]);
                    reference::plane_bias_activation(&mut want, &mut want_z, bias, act);
                    let (mut got, mut got_z) = (x.clone(), vec![0.0; n]);
                    plane_bias_activation(&mut got, Some(&mut got_z), bias, act);
                    let mut got2 = x.clone();
                    plane_bias_activation(&mut got2, None, bias, act);
                    assert_eq!(got_z, want_z, "{level:?} {act}: pre-activation");
                    for ((g, g2), w) in got.iter().zip(&got2).zip(&want) {
                        assert!((g - w).abs() < 2e-6 * (1.0 + w.abs()), "{level:?} {act}: {g} vs {w}");
                        assert_eq!(g.to_bits(), g2.to_bits(), "{level:?} {act}: with/without z differ");
                    }
                }
                // Long enough to use every lane and the 1024-value chunks.
                let v = random(n * 37, &mut rng);
                let (got, want) = (sum_squares(&v), reference::sum_squares(&v));
                assert!(
                    (got - want).abs() < 1e-6 * want,
                    "{level:?} sum_squares {got} vs {want}"
                );
                let s = rng.uniform_range(-2.0, 2.0);
                let (mut got, mut want) = (v.clone(), v.clone());
                scale_in_place(&mut got, s);
                reference::scale_in_place(&mut want, s);
                assert_eq!(got, want, "{level:?} scale_in_place");
                // A recurrent step's products: `n` rows of 37 columns.
                let (w, da, input) = (random(n * 37, &mut rng), random(n, &mut rng), random(37, &mut rng));
                let (mut dw, mut di) = (v[..n * 37].to_vec(), random(37, &mut rng));
                let (mut dw_ref, mut di_ref) = (dw.clone(), di.clone());
                outer_and_back(&mut dw, &w, &da, &input, &mut di);
                reference::outer_and_back(&mut dw_ref, &w, &da, &input, &mut di_ref);
                assert_eq!((dw, di), (dw_ref, di_ref), "{level:?} outer_and_back");
                let cols = 37;
                let max = 0.5 * (cols as f32 / 3.0).sqrt(); // below the rows' typical norm: most are capped
                let (mut got, mut want) = (v.clone(), v.clone());
                max_norm_rows(&mut got, cols, max);
                reference::max_norm_rows(&mut want, cols, max);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() < 1e-6 * (1.0 + w.abs()),
                        "{level:?} max_norm_rows {g} vs {w}"
                    );
                }
                assert!(
                    got.chunks_exact(cols)
                        .any(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt() > max * 0.99)
                );
            }
        });
    }
}
