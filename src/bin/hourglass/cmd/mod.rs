//! One file per subcommand; shared helpers here.

mod decode;
mod encode;
mod eval;
mod hash;
mod inspect;
mod pca;
mod pictures;
mod pretrain;
mod probe;
mod reconstruct;
mod score;
mod select;
mod train;

use crate::args::{Cli, ColumnArgs, Command};
use anyhow::{Context, Result};
use hourglass::data::{self, ColumnSelection, Dataset};
use hourglass::format::{self, ModelFile};
use std::path::Path;

pub fn run(cli: Cli) -> Result<()> {
    let threads = cli.threads;
    hourglass::with_threads(threads, move || match cli.command {
        Command::Train(a) => train::run(*a),
        Command::Encode(a) => encode::run(a),
        Command::Decode(a) => decode::run(a),
        Command::Reconstruct(a) => reconstruct::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Pca(a) => pca::run(a),
        Command::Filters(a) => pictures::filters(a),
        Command::Show(a) => pictures::show(a),
        Command::Score(a) => score::run(a),
        Command::Calibrate(a) => score::calibrate(a),
        Command::Select(a) => select::run(a),
        Command::Probe(a) => probe::run(a),
        Command::Hash(a) => hash::hash(a),
        Command::Search(a) => hash::search(a),
        Command::EvalRetrieval(a) => hash::eval(a),
        Command::Pretrain(a) => pretrain::pretrain(a),
        Command::Finetune(a) => pretrain::finetune(a),
        Command::Predict(a) => pretrain::predict(a),
    })?
}

impl ColumnArgs {
    pub fn selection(&self) -> ColumnSelection {
        ColumnSelection {
            columns: self.columns.clone(),
            drop: self.drop.clone(),
            label_column: self.label_column.clone(),
        }
    }
}

/// Reads a data file.
pub fn load_data(path: &Path, sel: &ColumnSelection) -> Result<Dataset> {
    Ok(data::load(path, sel)?)
}

/// Reads data for a trained model: a CSV with a header uses the model's training columns by
/// name unless columns were chosen explicitly; the width must match the model.
pub fn load_data_for(file: &ModelFile, path: &Path, cols: &ColumnArgs) -> Result<Dataset> {
    let mut sel = cols.selection();
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if sel.columns.is_none()
        && sel.drop.is_empty()
        && is_csv
        && let Some(names) = &file.provenance.feature_names
        && names.len() == file.model.input_dim()
        && csv_header_has(path, names)
    {
        sel.columns = Some(names.clone());
    }
    let ds = load_data(path, &sel)?;
    if ds.x.cols() != file.model.input_dim() {
        anyhow::bail!(
            "{}: has {} feature columns, the model expects {}",
            path.display(),
            ds.x.cols(),
            file.model.input_dim()
        );
    }
    Ok(ds)
}

fn csv_header_has(path: &Path, names: &[String]) -> bool {
    let Ok(mut r) = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_path(path)
    else {
        return false;
    };
    let Some(Ok(first)) = r.records().next() else {
        return false;
    };
    names.iter().all(|n| first.iter().any(|f| f == n)) && first.iter().any(|f| f.parse::<f64>().is_err())
}

pub fn load_model(path: &Path) -> Result<ModelFile> {
    Ok(format::load(path)?)
}

/// Feature names for reconstructions: the training columns, else c0, c1, …
pub fn feature_names(file: &ModelFile) -> Vec<String> {
    file.provenance
        .feature_names
        .clone()
        .filter(|n| n.len() == file.model.input_dim())
        .unwrap_or_else(|| data::numbered("c", file.model.input_dim()))
}

/// Writes a matrix and says where.
pub fn write_output(
    path: &Path,
    m: &hourglass::Matrix,
    names: &[String],
    leading: &[(String, Vec<String>)],
) -> Result<()> {
    data::write(path, m, names, leading).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {} rows x {} columns to {}", m.rows(), m.cols(), path.display());
    Ok(())
}
