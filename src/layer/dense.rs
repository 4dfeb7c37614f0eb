//! Fully connected layer: `y = act(x W^T + b)`.

use super::{Init, PrevActivation};
use crate::activation::Activation;
use crate::kernels::{self, Precision, view};
use crate::rng::Rng;

/// Dense layer with weight `W: (n_out, n_in)` (row-major, PyTorch's layout) and bias `b: (n_out)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    pub(crate) activation: Activation,
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
}

impl Dense {
    /// A layer with weights drawn by `init` from `rng` and zero bias.
    pub fn new(n_in: usize, n_out: usize, activation: Activation, init: Init, rng: &mut Rng) -> Self {
        let a = init.bound(activation, n_in, n_out);
        let weight = (0..n_in * n_out).map(|_| rng.uniform_range(-a, a)).collect();
        Dense {
            n_in,
            n_out,
            activation,
            weight,
            bias: vec![0.0; n_out],
        }
    }

    /// Builds a layer from existing parameters.
    ///
    /// # Panics
    /// If the lengths do not match `n_out * n_in` and `n_out`.
    #[track_caller]
    pub fn from_parts(n_in: usize, n_out: usize, activation: Activation, weight: Vec<f32>, bias: Vec<f32>) -> Self {
        assert_eq!(weight.len(), n_in * n_out, "Dense::from_parts: weight length");
        assert_eq!(bias.len(), n_out, "Dense::from_parts: bias length");
        Dense {
            n_in,
            n_out,
            activation,
            weight,
            bias,
        }
    }

    /// Input width.
    pub fn n_in(&self) -> usize {
        self.n_in
    }

    /// Output width.
    pub fn n_out(&self) -> usize {
        self.n_out
    }

    /// The activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Weight, (n_out, n_in) row-major.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }

    /// Bias, (n_out).
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.weight.len() + self.bias.len()
    }

    /// x: (batch, n_in) -> y: (batch, n_out); `z` receives the pre-activation when given.
    ///
    /// The GEMM and the fused bias + activation pass run per block of rows while it is in cache.
    pub fn forward(&self, x: &[f32], y: &mut [f32], z: Option<&mut [f32]>) {
        self.forward_with(x, y, z, Precision::F32)
    }

    /// [`Dense::forward`] with the GEMM in the given precision.
    pub fn forward_with(&self, x: &[f32], y: &mut [f32], z: Option<&mut [f32]>, precision: Precision) {
        let batch = x.len() / self.n_in;
        debug_assert_eq!(y.len(), batch * self.n_out);
        let w_t = view(&self.weight, self.n_out, self.n_in).transpose();
        let (bias, act, n_out) = (&self.bias[..], self.activation, self.n_out);
        match z {
            None => kernels::matmul_rows(y, view(x, batch, self.n_in), w_t, false, precision, |_, blk| {
                kernels::bias_activation(blk, bias, act, None)
            }),
            Some(z) => kernels::matmul_rows_with(
                y,
                (z, n_out),
                view(x, batch, self.n_in),
                w_t,
                false,
                precision,
                |_, blk, zb| kernels::bias_activation(blk, bias, act, Some(zb)),
            ),
        }
    }

    /// x: (batch, n_in) -> y: (batch, n_out) for inference: each output a dot product over a
    /// weight row in one fixed order ([`kernels::dot`]), so a row gets the same bits alone as
    /// in any batch, and a single row runs with no task and no allocation. Needs
    /// [`kernels::dot::available`] to be fast (callers check).
    pub fn infer(&self, x: &[f32], y: &mut [f32]) {
        kernels::dot::dense_rows(y, x, &self.weight, self.n_in, self.n_out);
        kernels::bias_activation(y, &self.bias, self.activation, None);
    }

    /// Backward pass.
    ///
    /// x: (batch, n_in) the layer's input; dz: (batch, n_out) the gradient with respect to the
    /// pre-activation. Writes dw: (n_out, n_in) and db: (n_out); when `dx` is given, writes the
    /// gradient with respect to the *previous layer's pre-activation*,
    /// `dx = (dz W) * prev.act'(prev.z, prev.y)`, fused into the GEMM's epilogue.
    pub fn backward(
        &self,
        x: &[f32],
        dz: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
        dx: Option<(&mut [f32], PrevActivation<'_>)>,
        precision: Precision,
    ) {
        let batch = x.len() / self.n_in;
        let (n_in, n_out) = (self.n_in, self.n_out);
        let mut weights = || {
            kernels::matmul_rows(
                dw,
                view(dz, batch, n_out).transpose(),
                view(x, batch, n_in),
                false,
                precision,
                |_, _| {},
            );
            kernels::column_sums(dz, db);
        };
        match dx {
            None => weights(),
            Some((dx, prev)) => {
                let inputs = || {
                    kernels::matmul_rows(
                        dx,
                        view(dz, batch, n_out),
                        view(&self.weight, n_out, n_in),
                        false,
                        precision,
                        |r0, blk| prev.apply(blk, r0 * n_in),
                    )
                };
                rayon::join(weights, inputs);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loss L = Σ r ⊙ y for a fixed random r; checks dW, db and dx (through a previous
    /// activation) against central differences in f64.
    #[test]
    fn gradients_match_finite_differences() {
        for act in Activation::ALL {
            for &(batch, n_in, n_out) in &[(1, 3, 2), (5, 7, 4), (3, 17, 9)] {
                let mut rng = Rng::new(42);
                let layer = Dense::new(n_in, n_out, act, Init::Xavier, &mut rng);
                let mut layer = layer;
                for b in layer.bias.iter_mut() {
                    *b = rng.uniform_range(-0.5, 0.5);
                }
                let prev_act = Activation::Tanh;
                let x_pre: Vec<f32> = (0..batch * n_in).map(|_| rng.uniform_range(-1.5, 1.5)).collect();
                let r: Vec<f32> = (0..batch * n_out).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
                let loss = |l: &Dense, xp: &[f32]| -> f64 {
                    let x: Vec<f32> = xp.iter().map(|&v| prev_act.apply(v)).collect();
                    let mut y = vec![0.0; batch * n_out];
                    l.forward(&x, &mut y, None);
                    y.iter().zip(&r).map(|(&a, &b)| a as f64 * b as f64).sum()
                };
                // Analytic.
                let x: Vec<f32> = x_pre.iter().map(|&v| prev_act.apply(v)).collect();
                let mut y = vec![0.0; batch * n_out];
                let mut z = vec![0.0; batch * n_out];
                layer.forward(&x, &mut y, Some(&mut z));
                let mut dz = r.clone();
                kernels::activation_backward(&mut dz, &y, Some(&z), act);
                let (mut dw, mut db, mut dx) = (vec![0.0; n_in * n_out], vec![0.0; n_out], vec![0.0; batch * n_in]);
                let prev = PrevActivation {
                    act: prev_act,
                    y: &x,
                    z: Some(&x_pre),
                    code: None,
                };
                layer.backward(&x, &dz, &mut dw, &mut db, Some((&mut dx, prev)), Precision::F32);
                let h = 1e-3f32;
                let check = |name: &str, i: usize, analytic: f32, plus: f64, minus: f64| {
                    let numeric = (plus - minus) / (2.0 * h as f64);
                    assert!(
                        (numeric - analytic as f64).abs() < 2e-2 * (1.0 + numeric.abs()),
                        "{act} {batch}x{n_in}->{n_out} {name}[{i}]: numeric {numeric} analytic {analytic}"
                    );
                };
                for (i, &g) in dw.iter().enumerate() {
                    let (mut p, mut m) = (layer.clone(), layer.clone());
                    p.weight[i] += h;
                    m.weight[i] -= h;
                    check("dw", i, g, loss(&p, &x_pre), loss(&m, &x_pre));
                }
                for (i, &g) in db.iter().enumerate() {
                    let (mut p, mut m) = (layer.clone(), layer.clone());
                    p.bias[i] += h;
                    m.bias[i] -= h;
                    check("db", i, g, loss(&p, &x_pre), loss(&m, &x_pre));
                }
                for i in 0..dx.len() {
                    let (mut p, mut m) = (x_pre.clone(), x_pre.clone());
                    p[i] += h;
                    m[i] -= h;
                    check("dx", i, dx[i], loss(&layer, &p), loss(&layer, &m));
                }
            }
        }
    }
}
