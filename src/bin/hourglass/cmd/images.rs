//! `hourglass denoise` and `hourglass inpaint`: images in, images out.

use super::{load_model, outln, read_for};
use crate::args::{DenoiseArgs, InpaintArgs};
use anyhow::{Context, Result, bail};
use hourglass::Matrix;
use hourglass::data::images;
use hourglass::inpaint::{self, Region};
use std::path::{Path, PathBuf};

/// Writes images: a folder of PNGs, a PNG grid, or an array (by the output's extension).
fn write_images(
    path: &Path,
    x: &Matrix,
    shape: (usize, usize, usize),
    files: Option<&[PathBuf]>,
    grid: usize,
) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("npy" | "csv") => {
            let names = hourglass::data::numbered("p", x.cols());
            return super::write_output(path, x, &names, &[]);
        }
        Some("png") => {
            let n = grid.clamp(1, x.rows());
            let tiles: Vec<Vec<f32>> = (0..n).map(|i| x.row(i).to_vec()).collect();
            let cols = (n as f64).sqrt().ceil() as usize;
            let pic = hourglass::viz::grid(&tiles, shape, cols, 2);
            hourglass::viz::write_png(path, &pic)?;
            note!("wrote a grid of {n} images to {}", path.display());
        }
        Some(other) => bail!(
            "{}: output must be a folder, a .png grid or a .npy/.csv array, not .{other}",
            path.display()
        ),
        None => {
            images::write_folder(path, x, shape, files)
                .with_context(|| format!("cannot write images to {}", path.display()))?;
            note!("wrote {} PNG images to {}", x.rows(), path.display());
        }
    }
    Ok(())
}

pub fn denoise(a: DenoiseArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    file.model.check_reconstructs()?;
    let ds = read_for(&file, &a.data, &Default::default())?.data;
    let shape = file.image_shape(a.image.image_shape, ds.image_shape)?;
    let out = file.model.reconstruct(&ds.x)?;
    write_images(&a.output, &out, shape, ds.files.as_deref(), a.grid)
}

pub fn inpaint(a: InpaintArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    file.model.check_reconstructs()?;
    let ds = read_for(&file, &a.data, &Default::default())?.data;
    let shape = file.image_shape(a.image.image_shape, ds.image_shape)?;
    let region = match (a.rect, &a.mask, a.random_rect) {
        (Some((x, y, width, height)), _, _) => Region::Rect { x, y, width, height },
        (None, Some(path), _) => Region::Mask(images::read_mask(path, (shape.0, shape.1))?),
        (None, None, Some((width, height))) => Region::RandomRect {
            width,
            height,
            seed: a.seed,
        },
        (None, None, None) => unreachable!("clap requires a region"),
    };
    let hidden = region.hidden(ds.x.rows(), shape)?;
    let filled = inpaint::inpaint(&file.model, &ds.x, &hidden)?;
    write_images(&a.output, &filled.images, shape, ds.files.as_deref(), a.grid)?;
    if a.json {
        outln!(
            "{}",
            serde_json::json!({"values": filled.values, "region_mse": filled.region_mse, "region_psnr": filled.region_psnr})
        );
    } else {
        outln!(
            "hidden values    {} in {} images (pixels x channels)",
            filled.values,
            ds.x.rows()
        );
        outln!(
            "region mse       {:.6} (filled values against the input's own values there)",
            filled.region_mse
        );
        if let Some(p) = filled.region_psnr {
            outln!("region psnr      {p:.2} dB");
        }
    }
    Ok(())
}
