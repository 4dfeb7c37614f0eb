//! Input corruption for denoising autoencoders. Training only: the loss compares the
//! reconstruction of the corrupted input with the clean input.

use crate::error::{Error, Hint};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// One kind of corruption. Several compose, applied in order.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Noise {
    /// Add `sigma * N(0, 1)` to every value.
    Gaussian {
        /// Standard deviation.
        sigma: f32,
    },
    /// Set each value to 0 with probability `p` (masking / pixel dropout).
    Mask {
        /// Drop probability.
        p: f32,
    },
    /// Set each value with probability `p` to 0 or 1 (pepper or salt, equally likely).
    SaltPepper {
        /// Corruption probability.
        p: f32,
    },
    /// Blank `count` rectangles of `height x width` pixels at random positions (inpainting);
    /// needs the image shape.
    Block {
        /// Rectangle height in pixels.
        height: usize,
        /// Rectangle width in pixels.
        width: usize,
        /// Rectangles per image.
        count: usize,
    },
    /// Clamp every value to [0, 1] (after Gaussian noise on images: `gaussian:0.5` then `clip`).
    Clip,
}

/// Dynamic binarization: each value `p` becomes 1 with probability `p`, else 0 (values
/// outside [0, 1] act as clamped).
pub fn binarize(x: &mut [f32], rng: &mut Rng) {
    for v in x {
        *v = if rng.uniform() < *v { 1.0 } else { 0.0 };
    }
}

impl Noise {
    /// The accepted forms, as help texts list them.
    pub const FORMS: &'static str =
        "gaussian:SIGMA, mask:P, saltpepper:P, block:HxW[:COUNT] (needs the image shape), clip";

    /// Parses `gaussian:SIGMA`, `mask:P`, `saltpepper:P`, `block:HxW[:COUNT]` or `clip`.
    ///
    /// # Errors
    /// A message with the accepted forms.
    pub fn parse(s: &str) -> Result<Noise, String> {
        let err =
            || format!("bad noise `{s}`; expected gaussian:SIGMA, mask:P, saltpepper:P, block:HxW[:COUNT] or clip");
        let mut parts = s.split(':');
        let kind = parts.next().unwrap_or("");
        let args: Vec<&str> = parts.collect();
        let prob = |v: &str| -> Result<f32, String> {
            let p: f32 = v.parse().map_err(|_| err())?;
            if (0.0..=1.0).contains(&p) {
                Ok(p)
            } else {
                Err(format!("noise `{s}`: probability must be in [0, 1]"))
            }
        };
        match (kind, args.as_slice()) {
            ("gaussian", [v]) => {
                let sigma: f32 = v.parse().map_err(|_| err())?;
                if sigma >= 0.0 && sigma.is_finite() {
                    Ok(Noise::Gaussian { sigma })
                } else {
                    Err(err())
                }
            }
            ("mask", [v]) => Ok(Noise::Mask { p: prob(v)? }),
            ("clip", []) => Ok(Noise::Clip),
            ("saltpepper", [v]) => Ok(Noise::SaltPepper { p: prob(v)? }),
            ("block", [hw]) | ("block", [hw, _]) => {
                let (h, w) = hw.split_once(['x', '×']).ok_or_else(err)?;
                let count = args.get(1).map_or(Ok(1), |c| c.parse().map_err(|_| err()))?;
                let (height, width): (usize, usize) = (h.parse().map_err(|_| err())?, w.parse().map_err(|_| err())?);
                if height == 0 || width == 0 || count == 0 {
                    return Err(err());
                }
                Ok(Noise::Block { height, width, count })
            }
            _ => Err(err()),
        }
    }

    /// Checks that the noise fits rows of `cols` values with the given image shape.
    ///
    /// # Errors
    /// [`Error::Config`] naming the problem, with a hint when the image shape is missing.
    pub fn check(&self, cols: usize, image: Option<(usize, usize, usize)>) -> crate::error::Result<()> {
        if let Noise::Block { height, width, count } = *self {
            let Some((h, w, c)) = image else {
                return Err(
                    Error::Config("block noise needs the image shape (IDX/NPY images carry it)".into())
                        .with_hint(Hint::ImageShape),
                );
            };
            match crate::bounds::checked_product(&[h, w, c]) {
                Some(n) if n == cols => {}
                Some(n) => {
                    return Err(Error::Config(format!(
                        "image shape {h}x{w}x{c} has {n} values, the rows have {cols}"
                    )));
                }
                None => {
                    return Err(Error::Config(format!(
                        "image shape {h}x{w}x{c} overflows; the rows have {cols} values"
                    )));
                }
            }
            if height > h || width > w {
                return Err(Error::Config(format!(
                    "a {height}x{width} block does not fit a {h}x{w} image"
                )));
            }
            // Each block costs its area in every row: more blocks than pixels is unbounded work
            // that hides nothing more.
            if count > h * w {
                return Err(Error::Config(format!(
                    "{count} blocks on a {h}x{w} image: at most {}, one per pixel",
                    h * w
                )));
            }
        }
        Ok(())
    }

    /// Corrupts one row in place. `image` is `(height, width, channels)`; rows of images are
    /// channel-major `(C, H, W)`.
    pub fn apply(&self, row: &mut [f32], image: Option<(usize, usize, usize)>, rng: &mut Rng) {
        match *self {
            Noise::Gaussian { sigma } => row.iter_mut().for_each(|v| *v += sigma * rng.normal()),
            Noise::Mask { p } => row.iter_mut().for_each(|v| {
                if rng.uniform() < p {
                    *v = 0.0
                }
            }),
            Noise::SaltPepper { p } => row.iter_mut().for_each(|v| {
                if rng.uniform() < p {
                    *v = if rng.next_u64() & 1 == 0 { 0.0 } else { 1.0 }
                }
            }),
            Noise::Clip => row.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0)),
            Noise::Block { height, width, count } => {
                let (h, w, c) = image.expect("checked: block noise has an image shape");
                for _ in 0..count {
                    let y0 = rng.below(h - height + 1);
                    let x0 = rng.below(w - width + 1);
                    for ch in 0..c {
                        for y in y0..y0 + height {
                            let at = (ch * h + y) * w + x0;
                            row[at..at + width].fill(0.0);
                        }
                    }
                }
            }
        }
    }
}

/// Applies every noise, in order, to each row of `x` (`cols` values per row).
pub fn corrupt(noise: &[Noise], x: &mut [f32], cols: usize, image: Option<(usize, usize, usize)>, rng: &mut Rng) {
    for row in x.chunks_exact_mut(cols) {
        for n in noise {
            n.apply(row, image, rng);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ones(n: usize) -> Vec<f32> {
        vec![1.0; n]
    }

    #[test]
    fn mask_drops_p_of_the_values() {
        let mut x = ones(200_000);
        corrupt(&[Noise::Mask { p: 0.25 }], &mut x, 784, None, &mut Rng::new(1));
        let dropped = x.iter().filter(|&&v| v == 0.0).count() as f64 / x.len() as f64;
        assert!((dropped - 0.25).abs() < 0.01, "{dropped}");
    }

    #[test]
    fn salt_and_pepper_has_its_rate_and_halves() {
        let mut x = vec![0.5; 200_000];
        corrupt(&[Noise::SaltPepper { p: 0.1 }], &mut x, 100, None, &mut Rng::new(2));
        let salt = x.iter().filter(|&&v| v == 1.0).count() as f64 / x.len() as f64;
        let pepper = x.iter().filter(|&&v| v == 0.0).count() as f64 / x.len() as f64;
        assert!(
            (salt + pepper - 0.1).abs() < 0.01 && (salt - pepper).abs() < 0.01,
            "{salt} {pepper}"
        );
    }

    #[test]
    fn gaussian_has_its_standard_deviation() {
        let mut x = vec![0.0; 200_000];
        corrupt(&[Noise::Gaussian { sigma: 0.5 }], &mut x, 50, None, &mut Rng::new(3));
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
        let sd = (x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
        assert!(mean.abs() < 0.01 && (sd - 0.5).abs() < 0.01, "{mean} {sd}");
    }

    #[test]
    fn blocks_blank_rectangles_inside_the_image() {
        let (h, w, c) = (28, 28, 1);
        let mut hits = vec![0usize; h * w];
        let mut rng = Rng::new(4);
        for _ in 0..2000 {
            let mut x = ones(h * w * c);
            Noise::Block {
                height: 10,
                width: 10,
                count: 1,
            }
            .apply(&mut x, Some((h, w, c)), &mut rng);
            assert_eq!(x.iter().filter(|&&v| v == 0.0).count(), 100);
            // The zeros form one 10x10 square.
            let first = x.iter().position(|&v| v == 0.0).unwrap();
            let (y0, x0) = (first / w, first % w);
            for y in y0..y0 + 10 {
                assert!(x[y * w + x0..y * w + x0 + 10].iter().all(|&v| v == 0.0));
            }
            x.iter()
                .enumerate()
                .filter(|(_, v)| **v == 0.0)
                .for_each(|(i, _)| hits[i] += 1);
        }
        // Every position can be covered; corners are covered rarely, the centre often.
        assert!(hits[0] > 0 && hits[h * w - 1] > 0 && hits[14 * w + 14] > hits[0]);
        // RGB, channel-major: the same 2x2 square is blanked in each channel plane.
        let mut x = ones(4 * 4 * 3);
        Noise::Block {
            height: 2,
            width: 2,
            count: 1,
        }
        .apply(&mut x, Some((4, 4, 3)), &mut Rng::new(5));
        assert_eq!(x.iter().filter(|&&v| v == 0.0).count(), 12);
        for ch in 1..3 {
            assert_eq!(x[..16], x[ch * 16..(ch + 1) * 16], "channel {ch}");
        }
    }

    #[test]
    fn parse_and_check() {
        assert_eq!(Noise::parse("mask:0.25"), Ok(Noise::Mask { p: 0.25 }));
        assert_eq!(
            Noise::parse("block:10x10"),
            Ok(Noise::Block {
                height: 10,
                width: 10,
                count: 1
            })
        );
        assert_eq!(
            Noise::parse("block:3×5:2"),
            Ok(Noise::Block {
                height: 3,
                width: 5,
                count: 2
            })
        );
        assert_eq!(Noise::parse("gaussian:0.5"), Ok(Noise::Gaussian { sigma: 0.5 }));
        assert!(Noise::parse("mask:1.5").is_err());
        assert!(Noise::parse("blur:2").is_err());
        let b = Noise::parse("block:10x10").unwrap();
        assert!(b.check(784, None).is_err());
        assert!(b.check(784, Some((28, 28, 1))).is_ok());
        assert!(b.check(784, Some((28, 27, 1))).is_err());
        assert!(
            Noise::parse("block:30x3")
                .unwrap()
                .check(784, Some((28, 28, 1)))
                .is_err()
        );
    }
}
