//! `hourglass denoise` and `hourglass inpaint`: images in, images out.

use super::{load_data_for, load_model};
use crate::args::{DenoiseArgs, InpaintArgs};
use anyhow::{Context, Result, bail};
use hourglass::Matrix;
use hourglass::data::{Dataset, images};
use hourglass::format::ModelFile;
use std::path::{Path, PathBuf};

/// The image shape `(height, width, channels)` of the model's rows.
fn image_shape(file: &ModelFile, ds: &Dataset, given: Option<(usize, usize, usize)>) -> Result<(usize, usize, usize)> {
    let d = file.model.input_dim();
    let shape = given.or(ds.image_shape).or(file.provenance.image_shape).or_else(|| {
        let side = (d as f64).sqrt().round() as usize;
        (side * side == d).then_some((side, side, 1))
    });
    match shape {
        Some((h, w, c)) if h * w * c == d => Ok((h, w, c)),
        Some((h, w, c)) => bail!("image shape {h}x{w}x{c} does not fit the model's {d} inputs"),
        None => bail!("the model's {d} inputs are not square gray images; give --image-shape H,W[,C]"),
    }
}

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
            eprintln!("wrote a grid of {n} images to {}", path.display());
        }
        Some(other) => bail!(
            "{}: output must be a folder, a .png grid or a .npy/.csv array, not .{other}",
            path.display()
        ),
        None => {
            images::write_folder(path, x, shape, files)
                .with_context(|| format!("cannot write images to {}", path.display()))?;
            eprintln!("wrote {} PNG images to {}", x.rows(), path.display());
        }
    }
    Ok(())
}

pub fn denoise(a: DenoiseArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    file.model.check_reconstructs()?;
    let ds = load_data_for(&file, &a.data, &Default::default())?;
    let shape = image_shape(&file, &ds, a.image_shape)?;
    let out = file.model.reconstruct(&ds.x)?;
    write_images(&a.output, &out, shape, ds.files.as_deref(), a.grid)
}

/// Hidden pixels of each image (true = hidden), from the chosen region.
fn regions(a: &InpaintArgs, rows: usize, (h, w, c): (usize, usize, usize)) -> Result<Vec<Vec<bool>>> {
    let plane = |hidden: &dyn Fn(usize, usize) -> bool| -> Vec<bool> {
        (0..c).flat_map(|_| (0..h * w).map(|p| hidden(p / w, p % w))).collect()
    };
    if let Some(r) = &a.rect {
        let &[x0, y0, rw, rh] = &r[..] else {
            bail!(
                "--rect takes four numbers X,Y,W,H (left column, top row, width, height), got {}",
                r.len()
            );
        };
        if rw == 0 || rh == 0 || x0 + rw > w || y0 + rh > h {
            bail!("--rect {x0},{y0},{rw},{rh} does not lie inside the {w}x{h} image (width x height)");
        }
        let m = plane(&|y, x| (y0..y0 + rh).contains(&y) && (x0..x0 + rw).contains(&x));
        return Ok(vec![m; rows]);
    }
    if let Some(path) = &a.mask {
        let img = image::open(path)
            .with_context(|| format!("{}: cannot read the mask image", path.display()))?
            .to_luma8();
        if (img.width() as usize, img.height() as usize) != (w, h) {
            bail!(
                "{}: the mask is {}x{} pixels, the images are {w}x{h} (width x height)",
                path.display(),
                img.width(),
                img.height()
            );
        }
        let m = plane(&|y, x| img.get_pixel(x as u32, y as u32)[0] > 127);
        if !m.contains(&true) {
            bail!(
                "{}: the mask hides no pixel (hidden = brighter than half)",
                path.display()
            );
        }
        return Ok(vec![m; rows]);
    }
    let spec = a.random_rect.as_deref().unwrap_or_default();
    let parsed = spec
        .split_once('x')
        .and_then(|(rw, rh)| Some((rw.trim().parse::<usize>().ok()?, rh.trim().parse::<usize>().ok()?)));
    let Some((rw, rh)) = parsed.filter(|&(rw, rh)| rw > 0 && rh > 0 && rw <= w && rh <= h) else {
        bail!("--random-rect {spec}: expected WxH inside the {w}x{h} image, e.g. 10x10");
    };
    let mut rng = hourglass::Rng::new(a.seed);
    Ok((0..rows)
        .map(|_| {
            let y0 = rng.below(h - rh + 1);
            let x0 = rng.below(w - rw + 1);
            plane(&|y, x| (y0..y0 + rh).contains(&y) && (x0..x0 + rw).contains(&x))
        })
        .collect())
}

pub fn inpaint(a: InpaintArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    file.model.check_reconstructs()?;
    let ds = load_data_for(&file, &a.data, &Default::default())?;
    let shape = image_shape(&file, &ds, a.image_shape)?;
    let hidden = regions(&a, ds.x.rows(), shape)?;
    // Hidden pixels are blanked (0), as --noise block:HxW does in training.
    let mut blanked = ds.x.clone();
    for (i, m) in hidden.iter().enumerate() {
        for (v, &h) in blanked.row_mut(i).iter_mut().zip(m) {
            if h {
                *v = 0.0;
            }
        }
    }
    let recon = file.model.reconstruct(&blanked)?;
    let mut out = ds.x.clone();
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
    let in_unit = ds.x.as_slice().iter().all(|v| (0.0..=1.0).contains(v));
    let psnr = (in_unit && mse > 0.0).then(|| -10.0 * mse.log10());
    write_images(&a.output, &out, shape, ds.files.as_deref(), a.grid)?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"values": n, "region_mse": mse, "region_psnr": psnr})
        );
    } else {
        println!("hidden values    {n} in {} images (pixels x channels)", ds.x.rows());
        println!("region mse       {mse:.6} (filled values against the input's own values there)");
        if let Some(p) = psnr {
            println!("region psnr      {p:.2} dB");
        }
    }
    Ok(())
}
