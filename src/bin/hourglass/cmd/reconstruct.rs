//! `hourglass reconstruct`.

use super::{load_model, stream_output};
use crate::args::ReconstructArgs;
use anyhow::Result;

pub fn run(a: ReconstructArgs) -> Result<()> {
    let mut file = load_model(&a.model)?;
    a.infer.apply(&mut file.model)?;
    let sel = hourglass::data::ColumnSelection {
        label_column: None,
        ..a.columns.selection()
    };
    let m = &file.model;
    let names = if m.output_dim() == m.input_dim() {
        file.feature_names()
    } else {
        hourglass::data::numbered("c", m.output_dim()) // paired targets of another width
    };
    stream_output(&file, &a.data, &sel, &a.output, &names, |x| file.model.reconstruct(x))
}
