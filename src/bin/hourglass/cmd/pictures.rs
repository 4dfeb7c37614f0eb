//! `hourglass filters` and `hourglass show`.

use super::{load_data_for, load_model};
use crate::args::{ColumnArgs, FiltersArgs, ShowArgs};
use anyhow::{Context, Result};
use hourglass::viz;

fn image_shape(
    given: Option<(usize, usize, usize)>,
    file: &hourglass::ModelFile,
    data: Option<(usize, usize, usize)>,
) -> Result<(usize, usize, usize)> {
    given
        .or(data)
        .or(file.provenance.image_shape)
        .context("the image shape is unknown: give --image-shape H,W[,C]")
}

pub fn filters(a: FiltersArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let shape = image_shape(a.image_shape, &file, None)?;
    let pic = viz::filters(&file.model, a.decoder, shape, a.n)?;
    viz::write_png(&a.output, &pic)?;
    eprintln!("wrote {}x{} pixels to {}", pic.width, pic.height, a.output.display());
    Ok(())
}

pub fn show(a: ShowArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let ds = load_data_for(&file, &a.data, &ColumnArgs::default())?;
    let shape = image_shape(a.image_shape, &file, ds.image_shape)?;
    let pic = viz::show(&file.model, &ds.x, &a.noise, shape, a.n, a.seed)?;
    viz::write_png(&a.output, &pic)?;
    eprintln!("wrote {}x{} pixels to {}", pic.width, pic.height, a.output.display());
    Ok(())
}
