//! `hourglass reconstruct`.

use super::{feature_names, load_data_for, load_model, write_output};
use crate::args::ReconstructArgs;
use anyhow::Result;

pub fn run(a: ReconstructArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let ds = load_data_for(&file, &a.data, &a.columns)?;
    let out = file.model.reconstruct(&ds.x)?;
    write_output(&a.output, &out, &feature_names(&file), &[])
}
