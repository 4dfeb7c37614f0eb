//! Pictures of what was learned: filter grids and original / corrupted / reconstructed rows.
//! Deterministic PNGs, written atomically.

pub use crate::data::images::{Picture, write_png};
use crate::error::{Error, Result};
use crate::model::Autoencoder;
use crate::noise::Noise;
use crate::rng::Rng;
use crate::tensor::Matrix;

/// Pixels between tiles.
const GAP: usize = 1;
/// Gray level of the gaps and the background.
const BACKGROUND: u8 = 64;

/// Lays out `tiles` (each a channel-major `(C, H, W)` image with values in [0, 1]) in a grid of
/// `cols` columns, each pixel drawn `zoom x zoom`.
pub fn grid(tiles: &[Vec<f32>], (h, w, c): (usize, usize, usize), cols: usize, zoom: usize) -> Picture {
    let cols = cols.max(1);
    let rows = tiles.len().div_ceil(cols).max(1);
    let (th, tw) = (h * zoom, w * zoom);
    let width = cols * tw + (cols + 1) * GAP;
    let height = rows * th + (rows + 1) * GAP;
    let channels = if c == 3 { 3 } else { 1 };
    let mut pixels = vec![BACKGROUND; width * height * channels];
    for (t, tile) in tiles.iter().enumerate() {
        let (ty, tx) = (t / cols, t % cols);
        let (oy, ox) = (GAP + ty * (th + GAP), GAP + tx * (tw + GAP));
        for y in 0..th {
            for x in 0..tw {
                for ch in 0..channels {
                    let v = tile[(ch * h + y / zoom) * w + x / zoom];
                    pixels[((oy + y) * width + ox + x) * channels + ch] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
    }
    Picture {
        width,
        height,
        channels,
        pixels,
    }
}

/// Maps `v` linearly onto [0, 1] by its own minimum and maximum (a constant maps to 0.5).
pub fn normalize(v: &[f32]) -> Vec<f32> {
    let (lo, hi) = v
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
    if hi > lo {
        v.iter().map(|x| (x - lo) / (hi - lo)).collect()
    } else {
        vec![0.5; v.len()]
    }
}

fn check_image(len: usize, image: (usize, usize, usize), what: &str) -> Result<()> {
    let (h, w, c) = image;
    if crate::bounds::checked_product(&[h, w, c]) != Some(len) || !(c == 1 || c == 3) {
        return Err(Error::Config(format!(
            "{what} have {len} values; image shape {h}x{w}x{c} does not fit (C must be 1 or 3)"
        ))
        .with_hint(crate::error::Hint::ImageShape));
    }
    Ok(())
}

/// The filters of a model as image patches, each normalized to its own range: the rows of the
/// first encoder weight matrix (what each code or hidden unit looks for), or with `decoder`
/// the columns of the last decoder weight matrix (what each unit draws). At most `n` filters.
///
/// # Errors
/// [`Error::Config`] when the layer's width does not match the image shape.
pub fn filters(model: &Autoencoder, decoder: bool, image: (usize, usize, usize), n: usize) -> Result<Picture> {
    use crate::layer::Layer;
    let layers = model.layers();
    let l = if decoder { &layers[layers.len() - 1] } else { &layers[0] };
    // A convolution's filters are its kernels, (channels, kh, kw) each, drawn channels-last.
    let kernels =
        |w: &[f32], count: usize, c: usize, (kh, kw): (usize, usize)| -> (Vec<Vec<f32>>, (usize, usize, usize)) {
            let tiles = w
                .chunks_exact(c * kh * kw)
                .take(count.min(n))
                .map(|f| {
                    let mut t = vec![0.0; c * kh * kw];
                    for ch in 0..c {
                        for p in 0..kh * kw {
                            t[p * c + ch] = f[ch * kh * kw + p];
                        }
                    }
                    normalize(&t)
                })
                .collect();
            (tiles, (kh, kw, c))
        };
    let (tiles, shape, zoom) = match l {
        Layer::Conv2d(conv) if !decoder => {
            let (c, k) = (conv.geometry.input.0, conv.geometry.kernel);
            let (t, s) = kernels(&conv.weight, conv.c_out, c, k);
            (t, s, (24 / k.0.max(k.1)).max(1))
        }
        Layer::ConvTranspose2d(conv) if decoder => {
            let (c, k) = (conv.geometry.input.0, conv.geometry.kernel);
            let (t, s) = kernels(&conv.weight, conv.input.0, c, k);
            (t, s, (24 / k.0.max(k.1)).max(1))
        }
        Layer::Dense(l) if decoder => {
            check_image(l.n_out(), image, "decoder columns")?;
            let t = (0..l.n_in().min(n))
                .map(|j| normalize(&(0..l.n_out()).map(|i| l.weight()[i * l.n_in() + j]).collect::<Vec<_>>()))
                .collect();
            (t, image, 1)
        }
        Layer::Dense(l) => {
            check_image(l.n_in(), image, "encoder rows")?;
            (
                l.weight().chunks_exact(l.n_in()).take(n).map(normalize).collect(),
                image,
                1,
            )
        }
        other => {
            return Err(Error::Config(format!(
                "the {} layer has no filters to draw",
                other.kind()
            )));
        }
    };
    if !(shape.2 == 1 || shape.2 == 3) {
        return Err(Error::Config(format!(
            "filters with {} channels cannot be drawn as gray or RGB pictures",
            shape.2
        )));
    }
    let cols = (tiles.len() as f64).sqrt().ceil() as usize;
    Ok(grid(&tiles, shape, cols, zoom))
}

/// Rows of originals, corrupted inputs (when `noise` is given: drawn from `seed`, in the
/// network's units as [`Autoencoder::reconstruct_corrupted`] does) and
/// reconstructions of the first `n` rows of `x`, drawn side by side. Values in [0, 1] are drawn
/// as they are; other data is mapped by the originals' overall range.
///
/// # Errors
/// [`Error::Config`] when the rows do not match the image shape or a noise does not fit.
pub fn show(
    model: &Autoencoder,
    x: &Matrix,
    noise: &[Noise],
    image: (usize, usize, usize),
    n: usize,
    seed: u64,
) -> Result<Picture> {
    check_image(x.cols(), image, "rows")?;
    model.check_reconstructs()?;
    let n = n.min(x.rows());
    let originals = x.slice_rows(0, n);
    // Corrupted in the network's units, as in training, and drawn in the data's.
    let (corrupted, recon) = model.reconstruct_corrupted(&originals, noise, Some(image), &mut Rng::new(seed))?;
    let (lo, hi) = originals
        .as_slice()
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let unit = lo >= 0.0 && hi <= 1.0;
    let scale = |m: &Matrix| -> Vec<Vec<f32>> {
        (0..m.rows())
            .map(|i| {
                m.row(i)
                    .iter()
                    .map(|&v| if unit || hi <= lo { v } else { (v - lo) / (hi - lo) })
                    .collect()
            })
            .collect()
    };
    let mut tiles = scale(&originals);
    if !noise.is_empty() {
        tiles.extend(scale(&corrupted));
    }
    tiles.extend(scale(&recon));
    Ok(grid(&tiles, image, n, 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_places_tiles_with_gaps() {
        let tiles = vec![vec![0.0, 1.0, 1.0, 0.0], vec![1.0; 4], vec![0.5; 4]];
        let p = grid(&tiles, (2, 2, 1), 2, 1);
        assert_eq!((p.width, p.height), (2 * 2 + 3, 2 * 2 + 3));
        assert_eq!(p.pixels[0], BACKGROUND);
        let at = |y: usize, x: usize| p.pixels[y * p.width + x];
        assert_eq!((at(1, 1), at(1, 2), at(2, 1), at(2, 2)), (0, 255, 255, 0));
        assert_eq!(at(1, 4), 255);
        assert_eq!(at(4, 1), 128);
        assert_eq!(at(4, 4), BACKGROUND); // empty slot
        assert_eq!(normalize(&[2.0, 4.0, 3.0]), vec![0.0, 1.0, 0.5]);
    }
}
