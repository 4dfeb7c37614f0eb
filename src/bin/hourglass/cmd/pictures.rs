//! `hourglass filters` and `hourglass show`.

use super::{load_model, read_for};
use crate::args::{FiltersArgs, SampleArgs, ShowArgs};
use anyhow::Result;
use hourglass::viz;

pub fn filters(a: FiltersArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let shape = file.image_shape(a.image.image_shape, None)?;
    let pic = viz::filters(&file.model, a.decoder, shape, a.n)?;
    viz::write_png(&a.output, &pic)?;
    note!("wrote {}x{} pixels to {}", pic.width, pic.height, a.output.display());
    Ok(())
}

pub fn show(a: ShowArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let ds = read_for(&file, &a.data, &Default::default())?.data;
    let shape = file.image_shape(a.image.image_shape, ds.image_shape)?;
    let pic = viz::show(&file.model, &ds.x, &a.noise.noise, shape, a.n, a.seed)?;
    viz::write_png(&a.output, &pic)?;
    note!("wrote {}x{} pixels to {}", pic.width, pic.height, a.output.display());
    Ok(())
}

pub fn sample(a: SampleArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    // A PNG grid of images, or the decoded rows as data (.csv, .npy, .parquet).
    let png = a.output.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let shape = if png {
        Some(file.image_shape(a.image.image_shape, None)?)
    } else {
        None
    };
    let mut rng = hourglass::Rng::new(a.seed);
    const STEPS: usize = 9;
    let (rows, cols) = if a.traverse {
        let base = match &a.data {
            Some(path) => {
                let ds = read_for(&file, path, &Default::default())?.data;
                anyhow::ensure!(ds.x.rows() > 0, "{}: no rows", path.display());
                Some(file.model.encode(&ds.x.slice_rows(0, 1))?.into_vec())
            }
            None => None,
        };
        let (units, rows) = hourglass::vae::traverse(&file.model, base.as_deref(), a.n, STEPS, 3.0)?;
        let shown: Vec<String> = units.iter().map(usize::to_string).collect();
        note!(
            "code units, one per grid row (most influential first): {}",
            shown.join(", ")
        );
        (rows, STEPS)
    } else {
        let cols = (a.n as f64).sqrt().ceil() as usize;
        (hourglass::vae::sample(&file.model, a.n, &mut rng)?, cols)
    };
    let Some(shape) = shape else {
        return super::write_output(&a.output, &rows, &file.feature_names(), &[]);
    };
    let tiles: Vec<Vec<f32>> = (0..rows.rows()).map(|r| rows.row(r).to_vec()).collect();
    let pic = viz::grid(&tiles, shape, cols, 2);
    viz::write_png(&a.output, &pic)?;
    note!("wrote {}x{} pixels to {}", pic.width, pic.height, a.output.display());
    Ok(())
}
