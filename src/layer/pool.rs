//! Max pooling and nearest-neighbour upsampling over rows of (C, H, W) images: the pooling
//! encoder and the upsampling decoder style (the alternative to strided and transposed
//! convolutions).

use super::conv::Shape;
use crate::error::{Error, Result};

/// `k x k` max pooling with stride `k` (windows that do not fit at the edge are dropped, as
/// PyTorch's `MaxPool2d(k)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    /// Input image shape.
    pub input: Shape,
    /// Window size and stride.
    pub k: usize,
}

impl MaxPool2d {
    /// A pooling layer.
    ///
    /// # Errors
    /// [`Error::Config`] when the window is larger than the image.
    pub fn new(input: Shape, k: usize) -> Result<Self> {
        if k == 0 || k > input.1 || k > input.2 {
            return Err(Error::Config(format!(
                "a {k}x{k} pooling window does not fit a {}x{} image",
                input.1, input.2
            )));
        }
        Ok(MaxPool2d { input, k })
    }

    /// Output image shape.
    pub fn out_shape(&self) -> Shape {
        (self.input.0, self.input.1 / self.k, self.input.2 / self.k)
    }

    fn sizes(&self) -> (usize, usize) {
        let (c, h, w) = self.input;
        let (oc, oh, ow) = self.out_shape();
        (c * h * w, oc * oh * ow)
    }

    /// x: (batch, c*h*w) -> y: (batch, c*(h/k)*(w/k)); `arg` receives, per output value, the
    /// index within the row of the input it came from (the first maximum on ties).
    pub fn forward(&self, x: &[f32], y: &mut [f32], arg: &mut [u32]) {
        let (c, h, w) = self.input;
        let (_, oh, ow) = self.out_shape();
        let (n_in, n_out) = self.sizes();
        for ((img, out), a) in x
            .chunks_exact(n_in)
            .zip(y.chunks_exact_mut(n_out))
            .zip(arg.chunks_exact_mut(n_out))
        {
            for ch in 0..c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let first = (ch * h + oy * self.k) * w + ox * self.k;
                        let mut best = (img[first], first);
                        for ky in 0..self.k {
                            for kx in 0..self.k {
                                let i = first + ky * w + kx;
                                if img[i] > best.0 {
                                    best = (img[i], i);
                                }
                            }
                        }
                        let o = (ch * oh + oy) * ow + ox;
                        out[o] = best.0;
                        a[o] = best.1 as u32;
                    }
                }
            }
        }
    }

    /// dy: (batch, n_out) -> dx: (batch, n_in): each gradient goes to the input that won.
    pub fn backward(&self, dy: &[f32], arg: &[u32], dx: &mut [f32]) {
        let (n_in, n_out) = self.sizes();
        dx.fill(0.0);
        for ((g, a), d) in dy
            .chunks_exact(n_out)
            .zip(arg.chunks_exact(n_out))
            .zip(dx.chunks_exact_mut(n_in))
        {
            for (&gv, &i) in g.iter().zip(a) {
                d[i as usize] += gv;
            }
        }
    }
}

/// Nearest-neighbour upsampling by an integer factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upsample {
    /// Input image shape.
    pub input: Shape,
    /// Scale factor.
    pub factor: usize,
}

impl Upsample {
    /// Output image shape.
    pub fn out_shape(&self) -> Shape {
        (self.input.0, self.input.1 * self.factor, self.input.2 * self.factor)
    }

    /// x: (batch, c*h*w) -> y: (batch, c*(h f)*(w f)), each value copied to an `f x f` block.
    pub fn forward(&self, x: &[f32], y: &mut [f32]) {
        let (c, h, w) = self.input;
        let f = self.factor;
        let (oh, ow) = (h * f, w * f);
        for (img, out) in x.chunks_exact(c * h * w).zip(y.chunks_exact_mut(c * oh * ow)) {
            for ch in 0..c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        out[(ch * oh + oy) * ow + ox] = img[(ch * h + oy / f) * w + ox / f];
                    }
                }
            }
        }
    }

    /// dy -> dx: the sum of each block's gradients.
    pub fn backward(&self, dy: &[f32], dx: &mut [f32]) {
        let (c, h, w) = self.input;
        let f = self.factor;
        let (oh, ow) = (h * f, w * f);
        dx.fill(0.0);
        for (g, d) in dy.chunks_exact(c * oh * ow).zip(dx.chunks_exact_mut(c * h * w)) {
            for ch in 0..c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        d[(ch * h + oy / f) * w + ox / f] += g[(ch * oh + oy) * ow + ox];
                    }
                }
            }
        }
    }
}

/// A flat row of `width` values repeated at each of `steps` steps: the sequence
/// `(width, 1, steps)` a recurrent decoder reads its code from (Keras' `RepeatVector`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repeat {
    /// Values in a row.
    pub width: usize,
    /// Steps of the output sequence.
    pub steps: usize,
}

impl Repeat {
    /// x: (batch, width) -> y: (batch, width*steps), channel-major: `y[j, t] = x[j]`.
    pub fn forward(&self, x: &[f32], y: &mut [f32]) {
        let (n, t) = (self.width, self.steps);
        for (row, out) in x.chunks_exact(n).zip(y.chunks_exact_mut(n * t)) {
            for (v, o) in row.iter().zip(out.chunks_exact_mut(t)) {
                o.fill(*v);
            }
        }
    }

    /// dy -> dx: each value's gradient summed over the steps, in step order.
    pub fn backward(&self, dy: &[f32], dx: &mut [f32]) {
        let (n, t) = (self.width, self.steps);
        for (g, d) in dy.chunks_exact(n * t).zip(dx.chunks_exact_mut(n)) {
            for (v, gs) in d.iter_mut().zip(g.chunks_exact(t)) {
                *v = gs.iter().sum();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Finite differences of L = Σ r ⊙ y (inputs distinct, so the max is differentiable).
    #[test]
    fn pooling_and_upsampling_gradients() {
        let mut rng = Rng::new(1);
        for &(input, k) in &[((2, 5, 7), 2), ((1, 6, 6), 3), ((3, 4, 4), 2)] {
            let p = MaxPool2d::new(input, k).unwrap();
            let (n_in, n_out) = p.sizes();
            let x: Vec<f32> = (0..2 * n_in).map(|_| rng.normal()).collect();
            let r: Vec<f32> = (0..2 * n_out).map(|_| rng.normal()).collect();
            let loss = |x: &[f32]| {
                let (mut y, mut a) = (vec![0.0; r.len()], vec![0; r.len()]);
                p.forward(x, &mut y, &mut a);
                y.iter()
                    .zip(&r)
                    .map(|(u, v)| f64::from(*u) * f64::from(*v))
                    .sum::<f64>()
            };
            let (mut y, mut a) = (vec![0.0; r.len()], vec![0; r.len()]);
            p.forward(&x, &mut y, &mut a);
            let mut dx = vec![0.0; x.len()];
            p.backward(&r, &a, &mut dx);
            for i in 0..x.len() {
                let (mut u, mut v) = (x.clone(), x.clone());
                u[i] += 1e-3;
                v[i] -= 1e-3;
                let num = (loss(&u) - loss(&v)) / 2e-3;
                assert!(
                    (num - f64::from(dx[i])).abs() < 1e-2,
                    "pool {input:?} {i}: {num} vs {}",
                    dx[i]
                );
            }
            let up = Upsample { input, factor: k };
            let (c, h, w) = up.out_shape();
            let r: Vec<f32> = (0..2 * c * h * w).map(|_| rng.normal()).collect();
            let mut dx = vec![0.0; x.len()];
            up.backward(&r, &mut dx);
            let loss = |x: &[f32]| {
                let mut y = vec![0.0; r.len()];
                up.forward(x, &mut y);
                y.iter()
                    .zip(&r)
                    .map(|(u, v)| f64::from(*u) * f64::from(*v))
                    .sum::<f64>()
            };
            for i in 0..x.len() {
                let (mut u, mut v) = (x.clone(), x.clone());
                u[i] += 1e-3;
                v[i] -= 1e-3;
                let num = (loss(&u) - loss(&v)) / 2e-3;
                assert!((num - f64::from(dx[i])).abs() < 1e-2, "upsample {input:?} {i}");
            }
        }
        assert!(MaxPool2d::new((1, 2, 2), 3).is_err());
    }

    /// Repeat is linear: its backward pass is its adjoint, `<dy, R x> = <R' dy, x>`, and
    /// each step of the output is the input.
    #[test]
    fn repeat_is_its_backward_pass_adjoint() {
        let mut rng = Rng::new(4);
        let r = Repeat { width: 3, steps: 5 };
        let x: Vec<f32> = (0..2 * 3).map(|_| rng.normal()).collect();
        let dy: Vec<f32> = (0..2 * 15).map(|_| rng.normal()).collect();
        let mut y = vec![0.0; 30];
        r.forward(&x, &mut y);
        assert_eq!(y[5..10], [x[1]; 5]);
        assert_eq!(y[15..20], [x[3]; 5]);
        let mut dx = vec![9.0; 6];
        r.backward(&dy, &mut dx);
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| f64::from(*p) * f64::from(*q)).sum::<f64>();
        assert!((dot(&dy, &y) - dot(&dx, &x)).abs() < 1e-5);
        assert!((f64::from(dx[4]) - dy[20..25].iter().map(|v| f64::from(*v)).sum::<f64>()).abs() < 1e-6);
    }
}
