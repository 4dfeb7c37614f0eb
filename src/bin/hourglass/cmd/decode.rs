//! `hourglass decode`.

use super::{load_model, read, write_output};
use crate::args::DecodeArgs;
use anyhow::Result;

pub fn run(a: DecodeArgs) -> Result<()> {
    let mut file = load_model(&a.model)?;
    a.infer.apply(&mut file.model)?;
    let codes = read(&a.codes, &Default::default(), None)?.data;
    if codes.x.cols() != file.model.code_dim() {
        anyhow::bail!(
            "{}: has {} columns, the model's code has {}",
            a.codes.display(),
            codes.x.cols(),
            file.model.code_dim()
        );
    }
    let out = file.model.decode(&codes.x)?;
    write_output(&a.output, &out, &file.feature_names(), &[])
}
