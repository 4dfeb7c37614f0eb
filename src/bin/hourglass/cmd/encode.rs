//! `hourglass encode`.

use super::{load_model, read_for, write_output};
use crate::args::EncodeArgs;
use anyhow::Result;

pub fn run(a: EncodeArgs) -> Result<()> {
    let file = load_model(&a.model)?;
    let ds = read_for(&file, &a.data, &a.columns.selection())?.data;
    let layer = a.layer.unwrap_or(file.model.encoder_layers() - 1);
    let codes = file.model.encode_layer(&ds.x, layer)?;
    let names = hourglass::data::numbered(if a.layer.is_some() { "h" } else { "code" }, codes.cols());
    let mut leading: Vec<(String, Vec<String>)> = Vec::new();
    if !a.keep_columns.is_empty() {
        anyhow::ensure!(
            ds.format == hourglass::data::Format::Csv,
            "{}: --keep-columns needs a CSV file",
            a.data.display()
        );
        leading = hourglass::data::csv::read_columns(&a.data, &a.keep_columns)?;
    }
    if let (Some(name), Some(labels)) = (&a.columns.label_column, ds.labels) {
        leading.push((name.clone(), labels));
    }
    write_output(&a.output, &codes, &names, &leading)
}
