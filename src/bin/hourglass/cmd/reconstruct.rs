//! `hourglass reconstruct`.

use super::{load_model, read_for, write_output};
use crate::args::ReconstructArgs;
use anyhow::Result;

pub fn run(a: ReconstructArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let ds = read_for(&file, &a.data, &a.columns.selection())?.data;
    let out = file.model.reconstruct(&ds.x)?;
    write_output(&a.output, &out, &file.feature_names(), &[])
}
