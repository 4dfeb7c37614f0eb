//! `hourglass decode`.

use super::{feature_names, load_data, load_model, write_output};
use crate::args::DecodeArgs;
use anyhow::Result;

pub fn run(a: DecodeArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let codes = load_data(&a.codes, &Default::default())?;
    if codes.x.cols() != file.model.code_dim() {
        anyhow::bail!(
            "{}: has {} columns, the model's code has {}",
            a.codes.display(),
            codes.x.cols(),
            file.model.code_dim()
        );
    }
    let out = file.model.decode(&codes.x)?;
    write_output(&a.output, &out, &feature_names(&file), &[])
}
