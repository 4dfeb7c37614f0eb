//! Inpainting: fill hidden regions of images from a (denoising) autoencoder's reconstruction,
//! keeping the known pixels, and measure the fill against the images' own values there.

use crate::error::{Error, Result};
use crate::model::Autoencoder;
use crate::rng::Rng;
use crate::tensor::Matrix;

/// Where the hidden pixels are.
#[derive(Clone, Debug, PartialEq)]
pub enum Region {
    /// One rectangle in every image: left column, top row, width, height.
    Rect {
        /// Left column.
        x: usize,
        /// Top row.
        y: usize,
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
    /// A mask of the image's size (row-major, true = hidden), the same in every image.
    Mask(Vec<bool>),
    /// A `width x height` rectangle at a random position in each image, drawn from `seed`.
    RandomRect {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
        /// Seed of the positions.
        seed: u64,
    },
}

impl Region {
    /// Parses `WxH` (the random rectangle's size).
    ///
    /// # Errors
    /// A message naming the expected form.
    pub fn parse_size(s: &str) -> std::result::Result<(usize, usize), String> {
        s.split_once('x')
            .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)))
            .filter(|&(w, h): &(usize, usize)| w > 0 && h > 0)
            .ok_or_else(|| format!("bad size `{s}`; expected WxH, e.g. 10x10"))
    }

    /// Parses `X,Y,W,H` (left column, top row, width, height).
    ///
    /// # Errors
    /// A message naming the expected form.
    pub fn parse_rect(s: &str) -> std::result::Result<(usize, usize, usize, usize), String> {
        let v: Vec<usize> = s
            .split(',')
            .map(|p| p.trim().parse())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| format!("bad rectangle `{s}`; expected X,Y,W,H (left column, top row, width, height)"))?;
        match v[..] {
            [x, y, w, h] => Ok((x, y, w, h)),
            _ => Err(format!(
                "bad rectangle `{s}`; expected four numbers X,Y,W,H (left column, top row, width, height)"
            )),
        }
    }

    /// The hidden values of each of `rows` images of shape `(h, w, c)`, channel-major like the
    /// rows (a pixel is hidden in every channel).
    ///
    /// # Errors
    /// [`Error::Setting`] for a region that does not lie inside the image, [`Error::Config`] for
    /// a mask of another size or hiding nothing.
    pub fn hidden(&self, rows: usize, (h, w, c): (usize, usize, usize)) -> Result<Vec<Vec<bool>>> {
        let plane = |hidden: &dyn Fn(usize, usize) -> bool| -> Vec<bool> {
            (0..c).flat_map(|_| (0..h * w).map(|p| hidden(p / w, p % w))).collect()
        };
        let rect = |x0: usize, y0: usize, rw: usize, rh: usize| {
            plane(&move |y, x| (y0..y0 + rh).contains(&y) && (x0..x0 + rw).contains(&x))
        };
        match *self {
            Region::Rect { x, y, width, height } => {
                let inside =
                    |start: usize, len: usize, size: usize| start.checked_add(len).is_some_and(|end| end <= size);
                if width == 0 || height == 0 || !inside(x, width, w) || !inside(y, height, h) {
                    return Err(Error::setting(
                        "rect",
                        format!("{x},{y},{width},{height}"),
                        format!("does not lie inside the {w}x{h} image (width x height)"),
                    ));
                }
                Ok(vec![rect(x, y, width, height); rows])
            }
            Region::Mask(ref m) => {
                if m.len() != h * w {
                    return Err(Error::Config(format!(
                        "the mask has {} pixels, the images {w}x{h} (width x height)",
                        m.len()
                    )));
                }
                if !m.contains(&true) {
                    return Err(Error::Config("the mask hides no pixel".into()));
                }
                Ok(vec![plane(&|y, x| m[y * w + x]); rows])
            }
            Region::RandomRect { width, height, seed } => {
                if width == 0 || height == 0 || width > w || height > h {
                    return Err(Error::setting(
                        "random_rect",
                        format!("{width}x{height}"),
                        format!("expected WxH inside the {w}x{h} image"),
                    ));
                }
                let mut rng = Rng::new(seed);
                Ok((0..rows)
                    .map(|_| {
                        let y0 = rng.below(h - height + 1);
                        let x0 = rng.below(w - width + 1);
                        rect(x0, y0, width, height)
                    })
                    .collect())
            }
        }
    }
}

/// Images with their hidden regions filled, and how the fill compares with the images' own
/// values there.
#[derive(Clone, Debug, PartialEq)]
pub struct Inpainted {
    /// The images: known values kept, hidden ones from the reconstruction.
    pub images: Matrix,
    /// Hidden values (pixels x channels) over all images.
    pub values: usize,
    /// Mean squared error of the filled values against the input's values there.
    pub region_mse: f64,
    /// PSNR of the same, in dB, for images in [0, 1] (none otherwise or for a perfect fill).
    pub region_psnr: Option<f64>,
}

/// Blanks the hidden values of `x` (to 0, as block noise does in training), reconstructs, and
/// fills the hidden values from the reconstruction.
///
/// # Errors
/// [`Error::Shape`] for rows of the wrong width or a mask per row of another length;
/// [`Error::Config`] for a model without a reconstruction.
pub fn inpaint(model: &Autoencoder, x: &Matrix, hidden: &[Vec<bool>]) -> Result<Inpainted> {
    model.check_reconstructs()?;
    if hidden.len() != x.rows() || hidden.iter().any(|m| m.len() != x.cols()) {
        return Err(Error::Shape {
            what: "inpainting masks".into(),
            expected: format!("{} masks of {} values", x.rows(), x.cols()),
            got: format!("{} masks", hidden.len()),
        });
    }
    let mut blanked = x.clone();
    for (i, m) in hidden.iter().enumerate() {
        for (v, &h) in blanked.row_mut(i).iter_mut().zip(m) {
            if h {
                *v = 0.0;
            }
        }
    }
    let recon = model.reconstruct(&blanked)?;
    let mut out = x.clone();
    let (mut sse, mut n) = (0f64, 0usize);
    for (i, m) in hidden.iter().enumerate() {
        let (o, r) = (out.row_mut(i), recon.row(i));
        for j in 0..m.len() {
            if m[j] {
                sse += f64::from(r[j] - o[j]).powi(2);
                n += 1;
                o[j] = r[j];
            }
        }
    }
    let mse = sse / n.max(1) as f64;
    let in_unit = x.as_slice().iter().all(|v| (0.0..=1.0).contains(v));
    Ok(Inpainted {
        images: out,
        values: n,
        region_mse: mse,
        region_psnr: (in_unit && mse > 0.0).then(|| -10.0 * mse.log10()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_hide_the_right_pixels_in_every_channel() {
        let r = Region::Rect {
            x: 1,
            y: 0,
            width: 2,
            height: 1,
        };
        let m = r.hidden(2, (2, 3, 2)).unwrap();
        assert_eq!(m.len(), 2);
        let plane = [false, true, true, false, false, false];
        assert_eq!(m[0], [plane, plane].concat());
        assert!(
            Region::Rect {
                x: 2,
                y: 0,
                width: 2,
                height: 1
            }
            .hidden(1, (2, 3, 1))
            .is_err()
        );
        let rand = Region::RandomRect {
            width: 2,
            height: 2,
            seed: 3,
        }
        .hidden(20, (5, 5, 1))
        .unwrap();
        assert!(rand.iter().all(|m| m.iter().filter(|&&h| h).count() == 4));
        assert!(rand.iter().any(|m| *m != rand[0]), "positions differ between images");
        assert!(Region::Mask(vec![false; 4]).hidden(1, (2, 2, 1)).is_err());
        assert_eq!(Region::parse_size("10x3"), Ok((10, 3)));
        assert!(Region::parse_size("10").is_err());
    }

    /// Known values are kept exactly; hidden ones come from the reconstruction.
    #[test]
    fn inpainting_keeps_known_values() {
        let model = crate::Mlp::new(4, 2).init(1).unwrap();
        let x = Matrix::from_vec(2, 4, vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]).unwrap();
        let hidden = vec![vec![false, true, false, false], vec![true, true, false, false]];
        let out = inpaint(&model, &x, &hidden).unwrap();
        assert_eq!(out.values, 3);
        for (i, m) in hidden.iter().enumerate() {
            for (j, &h) in m.iter().enumerate() {
                if !h {
                    assert_eq!(out.images.row(i)[j], x.row(i)[j]);
                }
            }
        }
        let mut blanked = x.clone();
        blanked.row_mut(0)[1] = 0.0;
        blanked.row_mut(1)[0] = 0.0;
        blanked.row_mut(1)[1] = 0.0;
        let recon = model.reconstruct(&blanked).unwrap();
        assert_eq!(out.images.row(1)[0], recon.row(1)[0]);
        assert!(out.region_mse > 0.0 && out.region_psnr.is_some());
    }
}
