//! `hourglass encode`.

use super::{load_data_for, load_model, write_output};
use crate::args::EncodeArgs;
use anyhow::Result;

pub fn run(a: EncodeArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let ds = load_data_for(&file, &a.data, &a.columns)?;
    let layer = a.layer.unwrap_or(file.model.config().encoder_layers() - 1);
    let codes = file.model.encode_layer(&ds.x, layer)?;
    let names = hourglass::data::numbered(if a.layer.is_some() { "h" } else { "code" }, codes.cols());
    let leading: Vec<(String, Vec<String>)> = match (&a.columns.label_column, ds.labels) {
        (Some(name), Some(labels)) => vec![(name.clone(), labels)],
        _ => Vec::new(),
    };
    write_output(&a.output, &codes, &names, &leading)
}
