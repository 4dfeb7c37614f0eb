//! Inference: one forward pass for any stack of layers, shared by the autoencoder (encode,
//! decode, reconstruct, scores) and the classifier.
//!
//! Rows go through in blocks of [`ROW_BLOCK`] (of [`SAMPLE_BLOCK`] images when the stack has
//! convolutions, so that a block's feature maps stay in cache), each block through all the
//! layers on one thread (no synchronization between layers). Chains of convolutions run
//! channels-last with the direct kernel where it is the fast choice (AVX-512), changing layout
//! only where a chain meets another kind of layer, an encode-time rule or the end. A layer's encode-time rule
//! ([`Regularizer::encode`]: top-k, binary threshold) is applied to its output.

use crate::kernels::direct::transpose_images;
use crate::kernels::{self, Precision, ROW_BLOCK};
use crate::layer::conv2d::SAMPLE_BLOCK;
use crate::layer::{Int8Layer, Int8Layers, Layer};
use crate::regularize::Regularizer;
use crate::tensor::{Matrix, MatrixRef};
use std::ops::Range;

/// The arithmetic of inference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InferPrecision {
    /// f32 everywhere (the default).
    #[default]
    F32,
    /// Dense layers and convolutions in int8: weights quantized per output row (filter) once,
    /// each input row (image) quantized with its own scale, exact i32 products (VNNI where the
    /// CPU has it), f32 bias and activation. Other layers run in f32.
    Int8,
}

impl InferPrecision {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            InferPrecision::F32 => "f32",
            InferPrecision::Int8 => "int8",
        }
    }

    /// What runs this precision's products here, for reports.
    pub fn kernels(self) -> String {
        match self {
            InferPrecision::F32 => kernels::level().name().to_string(),
            InferPrecision::Int8 => format!("int8 on {}", kernels::int8::Unit::here().name()),
        }
    }
}

impl std::str::FromStr for InferPrecision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f32" => Ok(InferPrecision::F32),
            "int8" => Ok(InferPrecision::Int8),
            _ => Err(format!("unknown inference precision `{s}`; expected f32 or int8")),
        }
    }
}

/// Runs `layers[range]` on rows `x` (already in the network's units); `rule(i)` is the
/// encode-time rule of layer `i` (absolute index), if any.
///
/// # Panics
/// If `range` is empty or `x` does not have the first layer's input width (callers check).
pub(crate) fn forward<'r>(
    layers: &[Layer],
    rule: impl Fn(usize) -> Option<&'r Regularizer> + Sync,
    x: MatrixRef<'_>,
    range: Range<usize>,
) -> Matrix {
    forward_with(layers, None, rule, x, range)
}

/// [`forward`], with the layers that have an int8 form in `int8` run through it.
///
/// # Panics
/// As [`forward`].
pub(crate) fn forward_with<'r>(
    layers: &[Layer],
    int8: Option<&Int8Layers>,
    rule: impl Fn(usize) -> Option<&'r Regularizer> + Sync,
    x: MatrixRef<'_>,
    range: Range<usize>,
) -> Matrix {
    assert!(!range.is_empty(), "infer::forward: no layers");
    let out_dim = layers[range.end - 1].n_out();
    let in_dim = x.cols();
    assert_eq!(in_dim, layers[range.start].n_in(), "infer::forward: input width");
    let run = |xb: &[f32], ob: &mut [f32]| {
        let rows = xb.len() / in_dim;
        let n = range.len();
        // The first layer reads the input block, the last writes the output block; two
        // buffers in between, swapped (no copies, no fresh large allocations per layer).
        // Taken from the thread's scratch and put back after (a nested task on the same
        // thread finds it empty and allocates its own).
        let [mut cur, mut next, mut tmp_in, mut tmp_out] = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        // Consecutive convolutions pass channels-last images (`last` = their channels) and
        // convert back to channel-major only before another kind of layer, a rule or the end.
        let mut last: Option<usize> = None;
        for (i, l) in layers[range.clone()].iter().enumerate() {
            // Every layer writes all of its output: the buffers grow but are never cleared.
            let dst: &mut [f32] = if i + 1 == n {
                &mut *ob
            } else {
                grow(&mut next, rows * l.n_out())
            };
            let src: &[f32] = if i == 0 { xb } else { &cur[..rows * l.n_in()] };
            let reg = rule(range.start + i).filter(|r| r.acts_at_encode());
            let ends = i + 1 == n || reg.is_some();
            let q8 = int8.and_then(|q| q.get(range.start + i));
            // A convolution runs channels-last where the direct kernel is fast, and always in
            // int8 (its patches are gathered from channels-last images).
            let conv = match (l, q8) {
                (Layer::Conv2d(c), Some(Int8Layer::Conv(_))) => Some(c),
                _ => l.channels_last(),
            };
            if let Some(conv) = conv {
                let (c_in, c_out) = (conv.geometry.input.0, conv.c_out);
                let input: &[f32] = if last.is_none() && c_in > 1 {
                    let t = grow(&mut tmp_in, src.len());
                    transpose_images(src, l.n_in(), c_in, t, true);
                    t
                } else {
                    src
                };
                match q8 {
                    // The int8 convolution transposes each image's outputs itself.
                    Some(Int8Layer::Conv(q)) => q.infer_channels_last(conv, input, dst, ends && c_out > 1),
                    _ if ends && c_out > 1 => {
                        let t = grow(&mut tmp_out, dst.len());
                        conv.infer_channels_last(input, t);
                        transpose_images(t, l.n_out(), c_out, dst, false);
                    }
                    _ => conv.infer_channels_last(input, dst),
                }
                last = (c_out > 1 && !ends).then_some(c_out);
            } else {
                let input: &[f32] = match last.take() {
                    Some(c) => {
                        let t = grow(&mut tmp_in, src.len());
                        transpose_images(src, l.n_in(), c, t, false);
                        t
                    }
                    None => src,
                };
                match (q8, l.as_dense()) {
                    (Some(Int8Layer::Dense(q)), Some(d)) => q.infer(d, input, dst),
                    _ => l.infer(input, dst, Precision::F32),
                }
            }
            if let Some(r) = reg {
                r.encode(dst, l.n_out());
            }
            std::mem::swap(&mut cur, &mut next);
        }
        SCRATCH.with(|s| *s.borrow_mut() = [cur, next, tmp_in, tmp_out]);
    };
    // Images in smaller blocks: a block's activations between two convolutions then stay in
    // the core's cache (128 MNIST images' first feature maps alone take 1.6 MB).
    let block = if layers[range.clone()]
        .iter()
        .any(|l| matches!(l, Layer::Conv2d(_) | Layer::ConvTranspose2d(_)))
    {
        SAMPLE_BLOCK
    } else {
        ROW_BLOCK
    };
    // Each block's output is zeroed by the task that writes it (in cache, in parallel).
    let data = kernels::par_fill_blocks(x.rows() * out_dim, block * out_dim, |i, ob| {
        run(&x.as_slice()[i * block * in_dim..][..ob.len() / out_dim * in_dim], ob)
    });
    Matrix::from_vec(x.rows(), out_dim, data).expect("rows * out_dim values")
}

thread_local! {
    /// Per-thread activation buffers of inference, reused between calls (fresh multi-megabyte
    /// buffers would page-fault on every call).
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 4]> = const { std::cell::RefCell::new([const { Vec::new() }; 4]) };
}

/// The first `len` values of `buf`, grown (never shrunk or cleared) to hold them.
fn grow(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}
