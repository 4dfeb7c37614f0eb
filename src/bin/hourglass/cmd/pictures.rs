//! `hourglass filters` and `hourglass show`.

use super::{load_model, read_for};
use crate::args::{FiltersArgs, ShowArgs};
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
