//! `hourglass encode`.

use super::{load_model, read_for, stream_output, write_output};
use crate::args::EncodeArgs;
use anyhow::Result;

pub fn run(a: EncodeArgs) -> Result<()> {
    let mut file = load_model(&a.model)?;
    a.infer.apply(&mut file.model)?;
    let layer = a.layer.unwrap_or(file.model.encoder_layers() - 1);
    // The layer's width (and an error for a layer out of range) from no rows.
    let width = file
        .model
        .encode_layer(&hourglass::Matrix::zeros(0, file.model.input_dim()), layer)?
        .cols();
    let names = hourglass::data::numbered(if a.layer.is_some() { "h" } else { "code" }, width);
    if a.keep_columns.is_empty() {
        return stream_output(&file, &a.data, &a.columns.selection(), &a.output, &names, |x| {
            file.model.encode_layer(x, layer)
        });
    }
    let ds = read_for(&file, &a.data, &a.columns.selection())?.data;
    let codes = file.model.encode_layer(&ds.x, layer)?;
    anyhow::ensure!(
        ds.format == hourglass::data::Format::Csv,
        "{}: --keep-columns needs a CSV file",
        a.data.display()
    );
    let mut leading = hourglass::data::csv::read_columns(&a.data, &a.keep_columns)?;
    if let Some(w) = &file.windows {
        // A code per window: each window keeps its last step's values.
        let every = w.every();
        for (_, values) in &mut leading {
            *values = every.labels(values);
        }
    }
    if let (Some(name), Some(labels)) = (&a.columns.label_column, ds.labels) {
        leading.push((name.clone(), labels));
    }
    write_output(&a.output, &codes, &names, &leading)
}
