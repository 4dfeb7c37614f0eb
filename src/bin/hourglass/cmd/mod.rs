//! One file per subcommand; shared helpers here.

mod decode;
mod encode;
mod eval;
mod hash;
mod images;
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
use hourglass::data::tabular::Tabular;
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
        Command::Denoise(a) => images::denoise(a),
        Command::Inpaint(a) => images::inpaint(a),
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
    load_data_shaped(path, sel, None)
}

/// Reads a data file; a folder of images is resized to `shape` (height, width, channels) when
/// given, with a note saying how many images were.
pub fn load_data_shaped(path: &Path, sel: &ColumnSelection, shape: Option<(usize, usize, usize)>) -> Result<Dataset> {
    let (ds, resized) = data::load_with(path, sel, shape)?;
    if resized > 0 {
        let (h, w, _) = ds.image_shape.unwrap_or_default();
        eprintln!(
            "note: resized {resized} of {} images in {} to {h}x{w} (height x width)",
            ds.x.rows(),
            path.display()
        );
    }
    Ok(ds)
}

/// Reads training data. A CSV becomes a [`Tabular`] encoding when asked (categorical columns,
/// imputation) or when it has constant columns (dropped, with a note).
pub fn load_training_table(
    path: &Path,
    sel: &ColumnSelection,
    t: &crate::args::TabularArgs,
    image_shape: Option<(usize, usize, usize)>,
) -> Result<(Dataset, Option<Tabular>)> {
    use hourglass::data::tabular::{CategoricalColumns, TabularOptions};
    let is_csv = is_table(path);
    anyhow::ensure!(
        t.hash_buckets.is_none() || !t.categorical.is_empty(),
        "--hash-buckets hashes categorical columns: name them with --categorical COLS or --categorical auto"
    );
    let asked = !t.categorical.is_empty() || t.impute.is_some();
    if !is_csv {
        anyhow::ensure!(
            !asked,
            "{}: --categorical and --impute apply to CSV files only",
            path.display()
        );
        return Ok((load_data_shaped(path, sel, image_shape)?, None));
    }
    if !asked {
        let ds = load_data(path, sel)?;
        let constant = (0..ds.x.cols()).any(|j| (1..ds.x.rows()).all(|i| ds.x.row(i)[j] == ds.x.row(0)[j]));
        if !constant || ds.x.rows() < 2 {
            return Ok((ds, None));
        }
    }
    let opts = TabularOptions {
        categorical: match t.categorical.as_slice() {
            [] => CategoricalColumns::None,
            [a] if a == "auto" => CategoricalColumns::Auto,
            names => CategoricalColumns::Names(names.to_vec()),
        },
        impute: t.impute,
        max_categories: t.max_categories.max(1),
        hash_buckets: t.hash_buckets.map(|n| n as usize),
    };
    let raw = data::csv::read_raw(path, sel)?;
    let (tab, notes) = Tabular::fit(path, &raw, &opts)?;
    for n in notes {
        eprintln!("note: {n}");
    }
    let x = tab.transform(path, &raw)?;
    let ds = Dataset {
        x,
        names: tab.feature_names(),
        labels: raw.labels,
        image_shape: None,
        format: data::Format::Csv,
        files: None,
    };
    Ok((ds, Some(tab)))
}

/// Whether `path` names a CSV table (`.csv` or `.txt`), the files a [`Tabular`] encoding reads.
fn is_table(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv") || e.eq_ignore_ascii_case("txt"))
}

/// Encodes a CSV with a fitted [`Tabular`]: its input columns by name (plus the label column).
pub fn encode_table(tab: &Tabular, path: &Path, sel: &ColumnSelection) -> Result<Dataset> {
    let is_csv = is_table(path);
    anyhow::ensure!(
        is_csv,
        "{}: the model was trained on a CSV table with encoded columns; give a CSV with the columns {}",
        path.display(),
        tab.input_names().join(", ")
    );
    let sel = ColumnSelection {
        columns: Some(tab.input_names()),
        drop: Vec::new(),
        label_column: sel.label_column.clone(),
    };
    let raw = data::csv::read_raw(path, &sel)?;
    let x = tab.transform(path, &raw)?;
    Ok(Dataset {
        x,
        names: tab.feature_names(),
        labels: raw.labels,
        image_shape: None,
        format: data::Format::Csv,
        files: None,
    })
}

/// Reads data for a trained model: a CSV with a header uses the model's training columns by
/// name unless columns were chosen explicitly; the width must match the model.
pub fn load_data_for(file: &ModelFile, path: &Path, cols: &ColumnArgs) -> Result<Dataset> {
    if let Some(tab) = &file.tabular {
        return encode_table(tab, path, &cols.selection());
    }
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
    // A folder of images takes the size the model was trained on.
    let ds = load_data_shaped(path, &sel, file.provenance.image_shape)?;
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
