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
    let mut leading: Vec<(String, Vec<String>)> = Vec::new();
    if !a.keep_columns.is_empty() {
        anyhow::ensure!(
            ds.format == hourglass::data::Format::Csv,
            "{}: --keep-columns needs a CSV file",
            a.data.display()
        );
        let sel = hourglass::data::ColumnSelection {
            columns: Some(a.keep_columns.clone()),
            ..Default::default()
        };
        let raw = hourglass::data::csv::read_raw(&a.data, &sel)?;
        for (j, name) in raw.names.iter().enumerate() {
            leading.push((
                name.clone(),
                (0..raw.rows()).map(|i| raw.get(i, j).to_string()).collect(),
            ));
        }
    }
    if let (Some(name), Some(labels)) = (&a.columns.label_column, ds.labels) {
        leading.push((name.clone(), labels));
    }
    write_output(&a.output, &codes, &names, &leading)
}
