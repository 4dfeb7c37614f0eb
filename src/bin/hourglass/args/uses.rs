//! The arguments of the commands that use a trained model: predict, hash, search, retrieval
//! evaluation, probes, feature selection, scores and calibration, filters, samples, pictures
//! and PCA. Doc comments are the help text.

use super::{AnomalyLabels, ColumnArgs, ImageShapeArg, InferArgs, NoiseArgs};
use clap::Args;
use hourglass::Scaling;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The classifier (from `finetune`).
    pub classifier: PathBuf,
    /// Rows to classify.
    pub data: PathBuf,
    /// Output CSV: predicted, then p_CLASS for each class.
    #[arg(long, short, value_name = "CSV")]
    pub output: PathBuf,
    #[command(flatten)]
    pub columns: ColumnArgs,
}

#[derive(Debug, Args)]
pub struct HashArgs {
    /// The model file (e.g. trained with --binary-code, or `pca --itq`).
    pub model: PathBuf,
    /// Data files, hashed in this order into one code file.
    #[arg(required = true)]
    pub data: Vec<PathBuf>,
    /// Output code file (.hgh).
    #[arg(long, short, value_name = "HGH")]
    pub output: PathBuf,
    #[command(flatten)]
    pub columns: ColumnArgs,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Database codes (.hgh).
    pub codes: PathBuf,
    /// Query codes (.hgh) with the same number of bits.
    pub queries: PathBuf,
    /// Results per query.
    #[arg(long, short, default_value_t = 10, value_name = "K")]
    pub k: usize,
    /// Return every item within this Hamming distance instead of the k nearest.
    #[arg(long, value_name = "R")]
    pub radius: Option<u32>,
    /// Output CSV: query, rank, item, distance.
    #[arg(long, short, value_name = "CSV")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct EvalRetrievalArgs {
    /// Codes (.hgh).
    pub codes: PathBuf,
    /// Labels of the codes' rows; several files are concatenated in order.
    #[arg(long, required = true, value_name = "FILE")]
    pub labels: Vec<PathBuf>,
    /// The first N rows are the queries and the rest the database ...
    #[arg(long, value_name = "N", conflicts_with = "query_codes")]
    pub queries: Option<usize>,
    /// ... or queries from another code file (then every row of CODES is the database).
    #[arg(long, value_name = "HGH", requires = "query_labels")]
    pub query_codes: Option<PathBuf>,
    /// Labels of --query-codes.
    #[arg(long, value_name = "FILE")]
    pub query_labels: Option<PathBuf>,
    /// k of precision@k.
    #[arg(long, default_value_t = 100, value_name = "K")]
    pub k: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Training features (or raw data with --model).
    pub train: PathBuf,
    /// Test features (or raw data with --model).
    pub test: PathBuf,
    /// Labels of the training rows (IDX, NPY or one-column CSV); or use --label-column.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Labels of the test rows.
    #[arg(long, value_name = "FILE")]
    pub test_labels: Option<PathBuf>,
    /// Encode both files with this model first (an autoencoder or a PCA model).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// With --model: use this encoder layer (default: the code).
    #[arg(long, value_name = "I", requires = "model")]
    pub layer: Option<usize>,
    /// With a k-sparse --model: keep this many code units when encoding (e.g. 3 x k).
    #[arg(long, value_name = "K", requires = "model")]
    pub topk_encode: Option<usize>,
    /// L2 strength (default: chosen from 1e-1, 1e-2, 1e-3, 1e-4 by accuracy on a held-out tenth
    /// of the training rows).
    #[arg(long, value_name = "F")]
    pub l2: Option<f64>,
    /// Most L-BFGS iterations.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_iter: usize,
    /// Write the test predictions here (.csv: label, predicted, then one probability per class).
    #[arg(long, short, value_name = "CSV")]
    pub output: Option<PathBuf>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub columns: ColumnArgs,
    #[command(flatten)]
    pub infer: InferArgs,
}

#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Data files, concatenated in this order (same width).
    #[arg(required = true)]
    pub data: Vec<PathBuf>,
    /// Labels of each data file, in the same order (IDX, NPY or one-column CSV).
    #[arg(long, value_name = "FILE")]
    pub labels: Vec<PathBuf>,
    /// Keep rows whose label is one of these values.
    #[arg(long, value_delimiter = ',', value_name = "VALUES", requires = "labels")]
    pub label: Vec<String>,
    /// Then keep rows START..END (0-based, end excluded; either may be left out).
    #[arg(long, value_parser = hourglass::data::parse_rows, value_name = "START..END")]
    pub rows: Option<(usize, Option<usize>)>,
    /// Output rows: .npy or .csv.
    #[arg(long, short, value_name = "OUT")]
    pub output: PathBuf,
    /// Write the kept rows' labels here (.csv, one column `label`).
    #[arg(long, value_name = "CSV", requires = "labels")]
    pub labels_output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The model file.
    pub model: PathBuf,
    /// Rows to score.
    pub data: PathBuf,
    /// Output (.csv, .parquet or .npy): `score` (higher = more anomalous), `anomaly` (1 above
    /// the calibrated threshold), the label column if any, and with --per-feature the
    /// explanation columns. Rows stream through in chunks; only labels (for the ROC and PR
    /// curves) keep a score and a label per row in memory.
    #[arg(long, short, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Reconstruction error per row: mse (mean squared) or mae (mean absolute), in the model's
    /// scaled units; for a variational autoencoder, nll (the row's negative log-likelihood in
    /// nats, importance-weighted over 32 code draws); for a model trained with --neighbours,
    /// mse+lof (the error plus the code's local outlier factor among the training codes, each
    /// in units of its training spread) or mse+knn (the same with the code's distance to its
    /// K-th nearest training code). Default: the calibrated metric, else the neighbourhood's
    /// own (mse+knn where the code is at least half the input's width, else mse+lof), else mse.
    #[arg(long, value_name = "METRIC")]
    pub metric: Option<hourglass::score::ScoreMetric>,
    /// Explain each score: `top_feature`, and for every feature `NAME.expected` (the
    /// reconstruction, in the data's units) and `NAME.share` (its fraction of the row's error).
    #[arg(long)]
    pub per_feature: bool,
    /// A model of windows (train --window): one score per window (a row for each window,
    /// labelled by its last step) instead of one per step of the series.
    #[arg(long)]
    pub per_window: bool,
    /// Known labels, one per row (IDX, NPY or one-column CSV); or use --label-column.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    #[command(flatten)]
    pub anomaly: AnomalyLabels,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub columns: ColumnArgs,
    #[command(flatten)]
    pub infer: InferArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("rule").required(true).args(["contamination", "quantile", "fpr"])))]
pub struct CalibrateArgs {
    /// The model file; the threshold is written into it (or into --output).
    pub model: PathBuf,
    /// Calibration rows, normal or mostly normal. They stream through in chunks; their scores
    /// wait in a temporary file (8 bytes a row) for the exact order statistic.
    pub data: PathBuf,
    /// The data holds about this fraction of anomalies: flag that top fraction.
    #[arg(long, value_name = "P")]
    pub contamination: Option<f64>,
    /// The threshold is this quantile of the calibration scores.
    #[arg(long, value_name = "Q")]
    pub quantile: Option<f64>,
    /// The data is all normal: allow this false-positive rate on it.
    #[arg(long, value_name = "F")]
    pub fpr: Option<f64>,
    /// Score metric: mse or mae (reconstruction errors), nll (a variational autoencoder's
    /// negative log-likelihood of the row, importance-weighted over 32 code draws), or mse+lof
    /// or mse+knn (a model trained with --neighbours). Default: the neighbourhood's own for a
    /// model with one, else mse.
    #[arg(long, value_name = "METRIC")]
    pub metric: Option<hourglass::score::ScoreMetric>,
    /// Write the calibrated model here instead of replacing MODEL.
    #[arg(long, short, value_name = "MODEL")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub columns: ColumnArgs,
    #[command(flatten)]
    pub infer: InferArgs,
}

#[derive(Debug, Args)]
pub struct FiltersArgs {
    /// The model file.
    pub model: PathBuf,
    /// Draw the columns of the last decoder layer instead of the rows of the first encoder layer.
    #[arg(long)]
    pub decoder: bool,
    /// At most this many filters.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub n: usize,
    #[command(flatten)]
    pub image: ImageShapeArg,
    /// Output PNG.
    #[arg(long, short, value_name = "PNG")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The model file (trained with --vae).
    pub model: PathBuf,
    /// Number of samples (with --traverse: code units to sweep).
    #[arg(short, long, default_value_t = 64, value_name = "N")]
    pub n: usize,
    /// A latent traversal instead: the N code units that change the image most, each swept
    /// from -3 to 3 (9 steps, one row of the grid per unit) around the prior's mean, or around
    /// the mean code of the first row of --data.
    #[arg(long)]
    pub traverse: bool,
    /// With --traverse: sweep around this data's first row's code.
    #[arg(long, value_name = "DATA", requires = "traverse")]
    pub data: Option<PathBuf>,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    #[command(flatten)]
    pub image: ImageShapeArg,
    /// Output: a PNG grid of images, or the decoded rows as data (.csv, .npy or .parquet; a
    /// table's samples keep its column names).
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The model file.
    pub model: PathBuf,
    /// Images to show (the first N rows).
    pub data: PathBuf,
    #[command(flatten)]
    pub noise: NoiseArgs,
    /// Number of images.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub n: usize,
    /// Seed of the corruption.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    #[command(flatten)]
    pub image: ImageShapeArg,
    /// Output PNG.
    #[arg(long, short, value_name = "PNG")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct PcaArgs {
    /// Training data: .csv, .parquet, .npy, .safetensors, or IDX (raw or .gz).
    pub data: PathBuf,
    /// Number of principal components (the code width).
    #[arg(long, value_name = "K")]
    pub components: usize,
    /// Feature scaling fitted before PCA and stored in the model (PCA always centres).
    #[arg(long, default_value = "none", value_name = "SCALE")]
    pub scale: Scaling,
    #[command(flatten)]
    pub columns: ColumnArgs,
    /// Rotate the components by iterative quantization (ITQ) with this many rounds, so that the
    /// code's signs make a good binary hash (`hourglass hash`); reconstructions are unchanged.
    #[arg(long, value_name = "ROUNDS")]
    pub itq: Option<usize>,
    /// Seed of ITQ's initial rotation.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Fit on the codes of this autoencoder and save the two stacked as one model (e.g. ITQ on
    /// a denoising autoencoder's features: `hash` then takes raw data).
    #[arg(long, value_name = "MODEL")]
    pub on: Option<PathBuf>,
    /// Where to save the model (.safetensors).
    #[arg(long, short, value_name = "MODEL")]
    pub output: PathBuf,
}
