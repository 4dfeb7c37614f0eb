//! One file per subcommand: arguments → settings → one library call → render. Shared
//! rendering helpers here.

mod decode;
mod encode;
mod eval;
mod export;
mod hash;
mod images;
mod inspect;
mod parallel;
mod pca;
mod pictures;
mod pretrain;
mod probe;
mod reconstruct;
mod report;
mod score;
mod select;
pub mod session;
mod top_rows;
mod train;

use crate::args::{Cli, Command};
use anyhow::{Context, Result};
use hourglass::format::{self, ModelFile};
use hourglass::load::Loaded;
use std::path::Path;

/// `println!` that returns the error of a closed stdout instead of panicking (`… | head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?;
    }};
}
pub(crate) use outln;

/// `print!` that returns the error of a closed stdout.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?;
    }};
}
pub(crate) use out;

pub fn run(cli: Cli) -> Result<()> {
    let threads = cli.threads;
    hourglass::with_threads(threads, move || match cli.command {
        Command::Train(a) if a.distributed || a.local_ranks.is_some() => parallel::run(*a),
        Command::Train(a) => train::run(*a),
        Command::Encode(a) => encode::run(a),
        Command::TopRows(a) => top_rows::run(a),
        Command::Decode(a) => decode::run(a),
        Command::Reconstruct(a) => reconstruct::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Export(a) => export::run(a),
        Command::Report(a) => report::run(a),
        Command::Pca(a) => pca::run(a),
        Command::Filters(a) => pictures::filters(a),
        Command::Sample(a) => pictures::sample(a),
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

/// Prints the notes of loaded data and hands the data on.
pub fn noted(loaded: Loaded) -> Loaded {
    for n in &loaded.notes {
        note!("note: {n}");
    }
    loaded
}

/// Reads a data file as it is (notes printed).
pub fn read(
    path: &Path,
    sel: &hourglass::data::ColumnSelection,
    image_shape: Option<(usize, usize, usize)>,
) -> Result<Loaded> {
    Ok(noted(hourglass::load::read(path, sel, image_shape)?))
}

/// Reads data for a trained model the way its training data was read (notes printed).
pub fn read_for(file: &ModelFile, path: &Path, sel: &hourglass::data::ColumnSelection) -> Result<Loaded> {
    Ok(noted(hourglass::load::for_model(file, path, sel)?))
}

/// The labels of the rows of `ds` (read from `path`): from a labels file, else its label
/// column; `None` when there is neither.
pub fn labels_of(file: Option<&Path>, path: &Path, ds: &hourglass::data::Dataset) -> Result<Option<Vec<String>>> {
    Ok(match (file, &ds.labels) {
        (None, None) => None,
        (file, column) => Some(hourglass::load::labels(path, file, column.clone(), ds.x.rows())?),
    })
}

pub fn load_model(path: &Path) -> Result<ModelFile> {
    Ok(format::load(path)?)
}

/// Writes a matrix and says where.
pub fn write_output(
    path: &Path,
    m: &hourglass::Matrix,
    names: &[String],
    leading: &[(String, Vec<String>)],
) -> Result<()> {
    hourglass::data::write(path, m, names, leading).with_context(|| format!("cannot write {}", path.display()))?;
    note!("wrote {} rows x {} columns to {}", m.rows(), m.cols(), path.display());
    Ok(())
}

/// Opens `path` for the model a chunk of rows at a time (notes printed).
pub fn source_for(
    file: &ModelFile,
    path: &Path,
    sel: &hourglass::data::ColumnSelection,
) -> Result<hourglass::stream::Source> {
    let src = hourglass::stream::Source::for_model(file, path, sel)?;
    for n in src.notes() {
        note!("note: {n}");
    }
    Ok(src)
}

/// Streams `data` through `rows_of` (a chunk's rows for the model → its output rows of
/// `names`) into `output`, with the label column passed through first when one is chosen;
/// says where it wrote.
pub fn stream_output(
    file: &ModelFile,
    data: &Path,
    sel: &hourglass::data::ColumnSelection,
    output: &Path,
    names: &[String],
    mut rows_of: impl FnMut(&hourglass::Matrix) -> hourglass::Result<hourglass::Matrix>,
) -> Result<()> {
    let mut src = source_for(file, data, sel)?;
    let leading: Vec<String> = sel.label_column.iter().cloned().collect();
    let cannot = || format!("cannot write {}", output.display());
    let mut sink = hourglass::stream::Sink::create(output, names, &leading).with_context(cannot)?;
    while let Some(chunk) = src.next_chunk()? {
        let out = rows_of(&chunk.x)?;
        let labels: Vec<Vec<String>> = chunk.labels.into_iter().filter(|_| !leading.is_empty()).collect();
        sink.write(&out, &labels).with_context(cannot)?;
    }
    let rows = sink.rows();
    sink.finish().with_context(cannot)?;
    note!("wrote {rows} rows x {} columns to {}", names.len(), output.display());
    Ok(())
}
