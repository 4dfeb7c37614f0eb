//! Argument groups shared by several commands (flattened into them), and the conversions of
//! arguments into the library's settings.

use super::TrainArgs;
use clap::Args;
use hourglass::data::ColumnSelection;
use hourglass::data::tabular::{CategoricalColumns, TabularOptions};
use hourglass::regularize::Setting;
use hourglass::{Noise, OptimizerConfig};

/// Which CSV columns to use (CSV files only).
#[derive(Debug, Args, Clone, Default)]
pub struct ColumnArgs {
    /// Use only these columns (names, or 0-based indices for files without a header).
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub columns: Option<Vec<String>>,
    /// Leave out these columns.
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub drop: Vec<String>,
    /// A column kept out of the features (e.g. a class label); passed through by `encode`.
    #[arg(long, value_name = "COL")]
    pub label_column: Option<String>,
}

/// How CSV tables become features; the fitted encoding is stored in the model.
#[derive(Debug, Args, Clone, Default)]
pub struct TabularArgs {
    /// Categorical columns, one-hot encoded: names, or `auto` for every column holding text.
    /// Categories are stored in the model; unseen ones go to NAME=<other>.
    #[arg(long, value_delimiter = ',', value_name = "COLS|auto")]
    pub categorical: Vec<String>,
    /// Fill missing numbers (empty, NA, NaN, null, ?) with the training mean or median and add
    /// a NAME.missing indicator column.
    #[arg(long, value_name = "mean|median")]
    pub impute: Option<hourglass::data::tabular::Impute>,
    /// Most categories kept per column (the most frequent); the rest become NAME=<other>.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub max_categories: usize,
    /// Columns with more categories than --max-categories are hashed into N features
    /// (NAME#0..NAME#N-1, FNV-1a of the value) instead; any value, seen or not, lands in one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..))]
    pub hash_buckets: Option<u32>,
}

impl TabularArgs {
    /// The library's table options.
    pub fn options(&self) -> TabularOptions {
        TabularOptions {
            categorical: match self.categorical.as_slice() {
                [] => CategoricalColumns::None,
                [a] if a == "auto" => CategoricalColumns::Auto,
                names => CategoricalColumns::Names(names.to_vec()),
            },
            impute: self.impute,
            max_categories: self.max_categories,
            hash_buckets: self.hash_buckets.map(|n| n as usize),
        }
    }
}

/// `--image-shape`, shared by every command that reads images.
#[derive(Debug, Args, Clone, Default)]
pub struct ImageShapeArg {
    /// Image shape of the rows, H,W[,C] (default: the data's, else the model's training
    /// data's; IDX and NPY images carry it). A folder of images is resized to it.
    #[arg(long, value_parser = hourglass::data::images::parse_shape, value_name = "H,W[,C]")]
    pub image_shape: Option<(usize, usize, usize)>,
}

/// `--noise`, shared by `train`, `pretrain`, `eval` and `show`.
#[derive(Debug, Args, Clone, Default)]
pub struct NoiseArgs {
    /// Corrupt the inputs, in the network's units (after --scale), repeatable to compose:
    /// gaussian:SIGMA, mask:P, saltpepper:P, block:HxW[:COUNT] (needs the image shape), clip
    /// (clamp to [0, 1], e.g. after gaussian).
    #[arg(long, value_parser = Noise::parse, value_name = "NOISE")]
    pub noise: Vec<Noise>,
}

/// The optimizers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Optimizer {
    /// AdamW (decoupled weight decay).
    Adam,
    /// SGD with momentum.
    Sgd,
}

/// A list of regularizer settings (`--code-reg`).
#[derive(Clone, Debug)]
pub struct Spec(pub Vec<Setting>);

pub(super) fn parse_spec(s: &str) -> Result<Spec, String> {
    Setting::parse_list(s).map(Spec)
}

impl TrainArgs {
    /// The code's regularizer settings: `--code-reg`, then the single flags.
    pub fn code_settings(&self) -> Vec<Setting> {
        let mut s = self.code_reg.clone().map(|s| s.0).unwrap_or_default();
        s.extend(self.l1.map(Setting::L1));
        s.extend(self.kl.map(Setting::Kl));
        s.extend(self.topk.map(Setting::TopK));
        s.extend(self.topk_encode.map(Setting::TopKEncode));
        s.extend(self.topk_start.map(Setting::TopKStart));
        s.extend(self.topk_anneal.map(Setting::TopKAnneal));
        s.extend(self.code_dropout.map(Setting::Dropout));
        s.extend(self.binary_code.map(Setting::Binary));
        s.extend(self.decov.map(Setting::Decov));
        s
    }

    /// The optimizer's config.
    pub fn optimizer(&self) -> OptimizerConfig {
        match self.optimizer {
            Optimizer::Sgd => OptimizerConfig::sgd(self.momentum, self.nesterov, self.weight_decay),
            Optimizer::Adam => OptimizerConfig::adam(self.weight_decay),
        }
    }
}

impl ColumnArgs {
    /// The library's column selection.
    pub fn selection(&self) -> ColumnSelection {
        ColumnSelection {
            columns: self.columns.clone(),
            drop: self.drop.clone(),
            label_column: self.label_column.clone(),
        }
    }
}
