//! Layers. One file per layer: config, forward, backward and tests together.
//!
//! Rows are samples throughout; an image (C, H, W) is one row of `C * H * W` values, so
//! convolutional layers fit the same `(batch, n_in) -> (batch, n_out)` interface.

pub mod conv;
pub mod conv2d;
pub mod conv_transpose2d;
pub mod dense;
pub mod gaussian;
pub mod gru;
pub mod int8;
pub mod lstm;
pub mod pool;
#[cfg(test)]
mod recurrent_tests;
pub mod softmax;

pub use conv::Shape;
pub use conv_transpose2d::ConvTranspose2d;
pub use conv2d::Conv2d;
pub use dense::Dense;
pub use gaussian::{Gaussian, Prior};
pub use gru::Gru;
pub use int8::{INT8_MIN_PATCH, Int8Conv, Int8Dense, Int8Layer, Int8Layers};
pub use lstm::Lstm;
pub use pool::{MaxPool2d, Repeat, Upsample};
pub use softmax::Softmax;

use crate::activation::Activation;
use crate::kernels::Precision;
pub use crate::regularize::CodeGrad;

/// The activation of the layer below, applied to `dx` inside the backward GEMM's epilogue.
#[derive(Clone, Copy, Debug)]
pub struct PrevActivation<'a> {
    /// Activation of the previous layer.
    pub act: Activation,
    /// Its output `y`, (batch, n_in).
    pub y: &'a [f32],
    /// Its pre-activation `z`, when the activation needs it.
    pub z: Option<&'a [f32]>,
    /// When the previous layer is a regularized code: penalties and mask, applied first.
    pub code: Option<CodeGrad<'a>>,
}

impl PrevActivation<'_> {
    /// Turns `g`, gradient rows with respect to the previous layer's output starting at element
    /// `start`, into the gradient with respect to its pre-activation: the code terms first, then
    /// the activation derivative.
    pub fn apply(&self, g: &mut [f32], start: usize) {
        let range = start..start + g.len();
        if let Some(code) = &self.code {
            code.apply(g, start);
        }
        crate::kernels::activation_backward(g, &self.y[range.clone()], self.z.map(|z| &z[range]), self.act);
    }
}

/// How initial weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// He for ReLU-like activations, Xavier otherwise.
    #[default]
    Auto,
    /// He (Kaiming) uniform: `U(-a, a)`, `a = sqrt(6 / fan_in)`.
    He,
    /// Xavier (Glorot) uniform: `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`.
    Xavier,
}

impl std::str::FromStr for Init {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Init::Auto),
            "he" => Ok(Init::He),
            "xavier" => Ok(Init::Xavier),
            _ => Err(format!("unknown init `{s}`; expected auto, he or xavier")),
        }
    }
}

impl Init {
    /// The bound `a` of the uniform draw `U(-a, a)` for a layer with this activation and fans.
    pub fn bound(self, activation: Activation, fan_in: usize, fan_out: usize) -> f32 {
        let he = match self {
            Init::Auto => activation.is_relu_like(),
            Init::He => true,
            Init::Xavier => false,
        };
        let a = if he {
            6.0 / fan_in as f64
        } else {
            6.0 / (fan_in + fan_out) as f64
        };
        a.sqrt() as f32
    }
}

/// One layer of a network: what [`crate::Autoencoder`] holds. Every layer maps rows of
/// `n_in` values to rows of `n_out` values; images are rows of (C, H, W) values.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// Fully connected.
    Dense(Dense),
    /// 2-D convolution.
    Conv2d(Conv2d),
    /// 2-D transposed convolution.
    ConvTranspose2d(ConvTranspose2d),
    /// Max pooling.
    MaxPool2d(MaxPool2d),
    /// Nearest-neighbour upsampling.
    Upsample(Upsample),
    /// The reparameterized Gaussian code of a variational autoencoder.
    Gaussian(Gaussian),
    /// Long short-term memory over a sequence (backpropagation through time).
    Lstm(Lstm),
    /// Gated recurrent units over a sequence.
    Gru(Gru),
    /// A flat row repeated at every step of a sequence (a recurrent decoder's input).
    Repeat(Repeat),
    /// Softmax over the channels at each position (a categorical output).
    Softmax(Softmax),
}

impl Layer {
    /// Input width of a row.
    pub fn n_in(&self) -> usize {
        match self {
            Layer::Dense(l) => l.n_in,
            Layer::Conv2d(l) => l.n_in(),
            Layer::ConvTranspose2d(l) => l.n_in(),
            Layer::MaxPool2d(l) => l.input.0 * l.input.1 * l.input.2,
            Layer::Upsample(l) => l.input.0 * l.input.1 * l.input.2,
            Layer::Gaussian(l) => l.n_in(),
            Layer::Lstm(l) => l.n_in(),
            Layer::Gru(l) => l.n_in(),
            Layer::Repeat(l) => l.width,
            Layer::Softmax(l) => l.len(),
        }
    }

    /// Output width of a row.
    pub fn n_out(&self) -> usize {
        match self {
            Layer::Dense(l) => l.n_out,
            Layer::Conv2d(l) => l.n_out(),
            Layer::ConvTranspose2d(l) => l.n_out(),
            Layer::MaxPool2d(l) => {
                let (c, h, w) = l.out_shape();
                c * h * w
            }
            Layer::Upsample(l) => {
                let (c, h, w) = l.out_shape();
                c * h * w
            }
            Layer::Gaussian(l) => l.width,
            Layer::Lstm(l) => l.n_out(),
            Layer::Gru(l) => l.n_out(),
            Layer::Repeat(l) => l.width * l.steps,
            Layer::Softmax(l) => l.len(),
        }
    }

    /// The activation (identity for pooling and upsampling, and for recurrent layers, whose
    /// nonlinearities are their gates').
    pub fn activation(&self) -> Activation {
        match self {
            Layer::Dense(l) => l.activation,
            Layer::Conv2d(l) => l.activation,
            Layer::ConvTranspose2d(l) => l.activation,
            Layer::MaxPool2d(_)
            | Layer::Upsample(_)
            | Layer::Gaussian(_)
            | Layer::Lstm(_)
            | Layer::Gru(_)
            | Layer::Repeat(_)
            | Layer::Softmax(_) => Activation::Identity,
        }
    }

    /// Short name of the kind, as architecture files spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Dense(_) => "dense",
            Layer::Conv2d(_) => "conv",
            Layer::ConvTranspose2d(_) => "conv_transpose",
            Layer::MaxPool2d(_) => "max_pool",
            Layer::Upsample(_) => "upsample",
            Layer::Gaussian(_) => "gaussian",
            Layer::Lstm(_) => "lstm",
            Layer::Gru(_) => "gru",
            Layer::Repeat(_) => "repeat",
            Layer::Softmax(_) => "softmax",
        }
    }

    /// The dense layer, if this is one.
    pub fn as_dense(&self) -> Option<&Dense> {
        match self {
            Layer::Dense(l) => Some(l),
            _ => None,
        }
    }

    /// Weight and bias (empty for layers without parameters).
    pub fn params(&self) -> (&[f32], &[f32]) {
        match self {
            Layer::Dense(l) => (&l.weight, &l.bias),
            Layer::Conv2d(l) => (&l.weight, &l.bias),
            Layer::ConvTranspose2d(l) => (&l.weight, &l.bias),
            Layer::Lstm(l) => (&l.weight, &l.bias),
            Layer::Gru(l) => (&l.weight, &l.bias),
            Layer::MaxPool2d(_) | Layer::Upsample(_) | Layer::Gaussian(_) | Layer::Repeat(_) | Layer::Softmax(_) => {
                (&[], &[])
            }
        }
    }

    /// The weight (empty for layers without parameters), in [`Layer::weight_shape`].
    pub fn weight(&self) -> &[f32] {
        self.params().0
    }

    /// The bias (empty for layers without parameters).
    pub fn bias(&self) -> &[f32] {
        self.params().1
    }

    /// Weight and bias, mutable (empty for layers without parameters).
    pub fn params_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        match self {
            Layer::Dense(l) => (&mut l.weight, &mut l.bias),
            Layer::Conv2d(l) => (&mut l.weight, &mut l.bias),
            Layer::ConvTranspose2d(l) => (&mut l.weight, &mut l.bias),
            Layer::Lstm(l) => (&mut l.weight, &mut l.bias),
            Layer::Gru(l) => (&mut l.weight, &mut l.bias),
            Layer::MaxPool2d(_) | Layer::Upsample(_) | Layer::Gaussian(_) | Layer::Repeat(_) | Layer::Softmax(_) => {
                (&mut [], &mut [])
            }
        }
    }

    /// Shape of the weight tensor as stored in model files (PyTorch's layouts), `None` for
    /// layers without parameters.
    pub fn weight_shape(&self) -> Option<Vec<usize>> {
        match self {
            Layer::Dense(l) => Some(vec![l.n_out, l.n_in]),
            Layer::Conv2d(l) => {
                let (kh, kw) = l.geometry.kernel;
                Some(vec![l.c_out, l.geometry.input.0, kh, kw])
            }
            Layer::ConvTranspose2d(l) => {
                let (kh, kw) = l.geometry.kernel;
                Some(vec![l.input.0, l.geometry.input.0, kh, kw])
            }
            Layer::Lstm(l) => Some(vec![4 * l.hidden, l.n_in + l.hidden]),
            Layer::Gru(l) => Some(vec![3 * l.hidden, l.n_in + l.hidden]),
            Layer::MaxPool2d(_) | Layer::Upsample(_) | Layer::Gaussian(_) | Layer::Repeat(_) | Layer::Softmax(_) => {
                None
            }
        }
    }

    /// `(rows, cols)` of the weight seen as a matrix whose rows are the units' incoming
    /// weights (what a max-norm constraint caps); `None` where that has no meaning.
    pub fn unit_rows(&self) -> Option<usize> {
        match self {
            Layer::Dense(l) => Some(l.n_in),
            Layer::Conv2d(l) => Some(l.geometry.patch()),
            _ => None,
        }
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        let (w, b) = self.params();
        w.len() + b.len()
    }

    /// Per-row length of the auxiliary state the forward pass keeps for backward (the argmax
    /// of max pooling).
    pub fn aux_len(&self) -> usize {
        match self {
            Layer::MaxPool2d(_) => self.n_out(),
            _ => 0,
        }
    }

    /// Per-row length of the values a recurrent layer's forward pass keeps for its backward
    /// pass (its gates, cells and hidden states at every step); 0 for other layers.
    pub fn cache_len(&self) -> usize {
        match self {
            Layer::Lstm(l) => l.cache_len(),
            Layer::Gru(l) => l.cache_len(),
            _ => 0,
        }
    }

    /// x: (batch, n_in) -> y: (batch, n_out); `z` receives the pre-activation when given,
    /// `aux` (batch * [`Layer::aux_len`]) and `cache` (batch * [`Layer::cache_len`]) what
    /// backward needs.
    pub fn forward(
        &self,
        x: &[f32],
        y: &mut [f32],
        z: Option<&mut [f32]>,
        (aux, cache): (&mut [u32], &mut [f32]),
        precision: Precision,
    ) {
        match self {
            Layer::Dense(l) => l.forward_with(x, y, z, precision),
            Layer::Conv2d(l) => l.forward(x, y, z, precision),
            Layer::ConvTranspose2d(l) => l.forward(x, y, z, precision),
            Layer::MaxPool2d(l) => l.forward(x, y, aux),
            Layer::Upsample(l) => l.forward(x, y),
            Layer::Gaussian(l) => l.forward(x, y),
            Layer::Lstm(l) => l.forward(x, y, cache),
            Layer::Gru(l) => l.forward(x, y, cache),
            Layer::Repeat(l) => l.forward(x, y),
            Layer::Softmax(l) => l.forward(x, y),
        }
    }

    /// The convolution to run on channels-last images in inference chains, where the direct
    /// kernel is the fast choice on this machine.
    pub fn channels_last(&self) -> Option<&Conv2d> {
        match self {
            Layer::Conv2d(l) if crate::kernels::direct::available() => Some(l),
            _ => None,
        }
    }

    /// x -> y without keeping anything for backward (inference).
    pub fn infer(&self, x: &[f32], y: &mut [f32], precision: Precision) {
        if let (Layer::Dense(l), Precision::F32) = (self, precision)
            && crate::kernels::dot::available()
        {
            return l.infer(x, y);
        }
        let rows = x.len() / self.n_in().max(1);
        let mut aux = vec![0u32; self.aux_len() * rows];
        let mut cache = vec![0f32; self.cache_len() * rows];
        self.forward(x, y, None, (&mut aux, &mut cache), precision);
    }

    /// Backward pass. `dz`: gradient with respect to this layer's pre-activation. Writes the
    /// parameter gradients and, when asked, the gradient with respect to the previous layer's
    /// pre-activation (its code terms and activation derivative applied, as [`Dense::backward`]
    /// does in its GEMM epilogue). `aux` and `cache` are what the forward pass kept.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        x: &[f32],
        dz: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
        dx: Option<(&mut [f32], PrevActivation<'_>)>,
        (aux, cache): (&[u32], &[f32]),
        precision: Precision,
    ) {
        if let Layer::Dense(l) = self {
            return l.backward(x, dz, dw, db, dx, precision);
        }
        let (mut dx, prev) = match dx {
            Some((d, p)) => (Some(d), Some(p)),
            None => (None, None),
        };
        match self {
            Layer::Dense(_) => unreachable!("handled above"),
            Layer::Conv2d(l) => l.backward(x, dz, dw, db, dx.as_deref_mut(), precision),
            Layer::ConvTranspose2d(l) => l.backward(x, dz, dw, db, dx.as_deref_mut(), precision),
            Layer::MaxPool2d(l) => {
                if let Some(dx) = dx.as_deref_mut() {
                    l.backward(dz, aux, dx);
                }
            }
            Layer::Upsample(l) => {
                if let Some(dx) = dx.as_deref_mut() {
                    l.backward(dz, dx);
                }
            }
            Layer::Gaussian(l) => {
                if let Some(dx) = dx.as_deref_mut() {
                    l.backward_mean(dz, dx);
                }
            }
            Layer::Lstm(l) => l.backward(x, cache, dz, dw, db, dx.as_deref_mut()),
            Layer::Gru(l) => l.backward(x, cache, dz, dw, db, dx.as_deref_mut()),
            Layer::Repeat(l) => {
                if let Some(dx) = dx.as_deref_mut() {
                    l.backward(dz, dx);
                }
            }
            Layer::Softmax(l) => {
                if let Some(dx) = dx.as_deref_mut() {
                    l.backward(x, dz, dx);
                }
            }
        }
        if let (Some(dx), Some(prev)) = (dx, prev) {
            apply_prev(dx, &prev);
        }
    }
}

/// Applies the previous layer's code terms and activation derivative to a plain input
/// gradient, in fixed blocks of rows (the same result for any thread count).
fn apply_prev(dx: &mut [f32], prev: &PrevActivation<'_>) {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 14;
    dx.par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(i, blk)| prev.apply(blk, i * BLOCK));
}
