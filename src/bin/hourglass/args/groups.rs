//! Argument groups shared by several commands (flattened into them), and the conversions of
//! arguments into the library's settings.

use super::TrainArgs;
use clap::Args;
use hourglass::data::ColumnSelection;
use hourglass::data::tabular::{CategoricalColumns, TabularOptions};
use hourglass::regularize::Setting;
use hourglass::{Noise, OptimizerConfig};

/// Which table columns to use (CSV and Parquet tables; a Parquet file decodes only these), or
/// which tensor of a .safetensors file.
#[derive(Debug, Args, Clone, Default)]
pub struct ColumnArgs {
    /// Use only these columns (names, or 0-based indices for files without a header); for a
    /// .safetensors file, the one tensor to read.
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub columns: Option<Vec<String>>,
    /// Leave out these columns.
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub drop: Vec<String>,
    /// A column kept out of the features (e.g. a class label); passed through by `encode`.
    #[arg(long, value_name = "COL")]
    pub label_column: Option<String>,
}

/// How tables (CSV, Parquet) become features; the fitted encoding is stored in the model.
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
    /// Most categories kept per column (the most frequent); the rest become NAME=<other>
    /// [default: 50; with --text, the vocabulary: 100 characters or 2,000 words]
    #[arg(long, value_name = "N")]
    pub max_categories: Option<usize>,
    /// Columns with more categories than --max-categories are hashed into N features
    /// (NAME#0..NAME#N-1, FNV-1a of the value) instead; any value, seen or not, lands in one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..))]
    pub hash_buckets: Option<u32>,
    /// Read the data as a UTF-8 text cut into tokens, in order: chars (characters; a run of
    /// white space is one space) or words (words and punctuation marks). The tokens are one
    /// categorical column, `token`, one-hot over a vocabulary stored in the model (the most
    /// frequent, the rest token=<other>), cut into sequences by --window; the other commands
    /// read text the same way, and `reconstruct` writes text. Without --arch: a recurrent
    /// sequence autoencoder (an LSTM of --hidden units [default: 64] reads each window into a
    /// code of --code [default: 32], an LSTM writes it back, a softmax over the vocabulary at
    /// each step, trained with the categorical cross-entropy).
    #[arg(long, value_name = "chars|words", requires = "window",
          conflicts_with_all = ["categorical", "impute", "hash_buckets", "columns", "drop", "label_column"])]
    pub text: Option<hourglass::data::text::Unit>,
    /// With --text: lower-case the text first.
    #[arg(long, requires = "text")]
    pub lowercase: bool,
}

impl TabularArgs {
    /// The library's table options.
    pub fn options(&self) -> TabularOptions {
        let text = self.text.map(|unit| hourglass::data::text::TextTokens {
            unit,
            lowercase: self.lowercase,
        });
        TabularOptions {
            categorical: match self.categorical.as_slice() {
                [] => CategoricalColumns::None,
                [a] if a == "auto" => CategoricalColumns::Auto,
                names => CategoricalColumns::Names(names.to_vec()),
            },
            impute: self.impute,
            max_categories: self
                .max_categories
                .unwrap_or(text.map_or(50, |t| t.default_vocabulary())),
            hash_buckets: self.hash_buckets.map(|n| n as usize),
            text,
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
    /// Whether the anomaly detector's data-sized defaults apply: neither --code nor --arch
    /// (see [`hourglass::defaults`]).
    pub fn sized_from_data(&self) -> bool {
        self.code.is_none() && self.arch.is_none() && self.tabular.text.is_none()
    }

    /// The batch size asked for, else 256, 64 for a text, or with the detector's defaults one
    /// sized from `rows`.
    pub fn batch(&self, rows: usize) -> usize {
        self.batch_size.unwrap_or(if self.sized_from_data() {
            hourglass::defaults::batch_size(rows)
        } else if self.tabular.text.is_some() {
            hourglass::data::text::SEQUENCE_BATCH
        } else {
            256
        })
    }

    /// The learning rate asked for, else 0.001, or 0.01 for a text's sequence autoencoder.
    pub fn lr(&self) -> f32 {
        self.lr.unwrap_or(if self.tabular.text.is_some() {
            hourglass::data::text::SEQUENCE_LR
        } else {
            1e-3
        })
    }

    /// The epochs asked for, else the default for `rows` training rows: 10, or for a series'
    /// windows at least [`hourglass::train::SERIES_MIN_STEPS`] optimizer steps, or with the
    /// detector's defaults [`hourglass::defaults::epochs`] for `rows`.
    pub fn epochs(&self, rows: usize) -> usize {
        self.epochs.unwrap_or_else(|| match self.window {
            Some(_) => {
                hourglass::train::epochs_for_steps(rows, self.batch(rows), 10, hourglass::train::SERIES_MIN_STEPS)
            }
            None if self.sized_from_data() => hourglass::defaults::epochs(rows),
            None => 10,
        })
    }

    /// The validation fraction and patience asked for, else none, or with the detector's
    /// defaults (and no --valid file) the ones for `rows` training rows.
    pub fn validation(&self, rows: usize) -> (f32, Option<usize>) {
        let sized = self.sized_from_data() && self.valid.is_none();
        let fraction = self.valid_fraction.unwrap_or(if sized {
            hourglass::defaults::valid_fraction(rows)
        } else {
            0.0
        });
        let held_out = fraction > 0.0 || self.valid.is_some();
        let patience = self
            .patience
            .or((sized && held_out).then_some(hourglass::defaults::PATIENCE));
        (fraction, patience)
    }

    /// The code neighbourhood's k asked for, else none, or with the detector's defaults
    /// [`hourglass::defaults::NEIGHBOURS`] (fewer on a tiny table of `rows` rows).
    pub fn neighbours_for(&self, rows: usize) -> Option<usize> {
        match self.neighbours {
            Some(k) => Some(k),
            None if self.sized_from_data() && rows >= 2 => Some(hourglass::defaults::NEIGHBOURS.min(rows - 1)),
            None => None,
        }
    }

    /// The scaling asked for, else the default for training rows `x` (`table`: an encoded
    /// table): the detector's [`hourglass::defaults::scaling`] without --code and --arch, else
    /// as [`Self::scaling`].
    pub fn scaling_for(&self, x: hourglass::tensor::MatrixRef<'_>, table: bool) -> hourglass::data::scale::Scaling {
        match self.scale {
            Some(s) => s,
            None if self.sized_from_data() && self.window.is_none() => hourglass::defaults::scaling(x, table),
            None => self.scaling(),
        }
    }

    /// The scaling asked for, else the default: none, or standard for a series' windows (of
    /// numbers, not of a text's tokens).
    pub fn scaling(&self) -> hourglass::data::scale::Scaling {
        use hourglass::data::scale::Scaling;
        self.scale
            .unwrap_or(if self.window.is_some() && self.tabular.text.is_none() {
                Scaling::Standard
            } else {
                Scaling::None
            })
    }

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

/// Checkpoints and resuming, for the commands that train.
#[derive(Debug, Args, Clone, Default)]
pub struct CheckpointArgs {
    /// Save a checkpoint here while training (atomically, replacing the last): the weights,
    /// the optimizer's state, the random streams and the position in the epoch, enough for
    /// --resume to finish with the same model, bit for bit, as a run that never stopped. On
    /// SIGINT/SIGTERM one is saved even without this flag, to OUTPUT.checkpoint.
    #[arg(long, value_name = "PATH")]
    pub checkpoint: Option<std::path::PathBuf>,
    /// How often to save the checkpoint: every N epochs (`2`), or every N seconds or minutes
    /// of training (`30s`, `10m`), at the end of a batch.
    #[arg(long, value_name = "N|Ns|Nm", default_value = "1", requires = "checkpoint")]
    pub checkpoint_every: Every,
    /// Continue the run saved in this checkpoint. Alone (`hourglass train --resume PATH`), the
    /// run's own arguments are replayed from the checkpoint, in its folder; --threads, --quiet
    /// and the checkpoint flags may be given anew. With the full arguments, they must be the
    /// run's.
    #[arg(long, value_name = "PATH")]
    pub resume: Option<std::path::PathBuf>,
}

/// How often a checkpoint is saved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Every {
    /// Every N epochs.
    Epochs(usize),
    /// Every so many seconds of training.
    Seconds(f64),
}

impl Default for Every {
    fn default() -> Self {
        Every::Epochs(1)
    }
}

impl std::str::FromStr for Every {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected N (epochs), Ns (seconds) or Nm (minutes), got `{s}`");
        let time = |t: &str, unit: f64| match t.parse::<f64>() {
            Ok(v) if v > 0.0 && v.is_finite() => Ok(Every::Seconds(v * unit)),
            _ => Err(bad()),
        };
        if let Some(t) = s.strip_suffix('s') {
            time(t, 1.0)
        } else if let Some(t) = s.strip_suffix('m') {
            time(t, 60.0)
        } else {
            match s.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Every::Epochs(n)),
                _ => Err(bad()),
            }
        }
    }
}

/// Which label values mark anomalies, shared by `score` and `report`.
#[derive(Debug, Args)]
pub struct AnomalyLabels {
    /// Label values that mark an anomaly (default 1) ...
    #[arg(long, value_delimiter = ',', value_name = "VALUES", conflicts_with = "normal_labels")]
    pub anomaly_labels: Vec<String>,
    /// ... or the label values that are normal (every other value is an anomaly).
    #[arg(long, value_delimiter = ',', value_name = "VALUES")]
    pub normal_labels: Vec<String>,
}

impl AnomalyLabels {
    /// Which rows are anomalies by their labels.
    pub fn of(&self, labels: &[String]) -> Vec<bool> {
        hourglass::score::anomalies(labels, &self.anomaly_labels, &self.normal_labels)
    }
}

/// The arithmetic of inference, for the commands that run a trained autoencoder.
#[derive(Debug, Args, Clone, Default)]
pub struct InferArgs {
    /// Arithmetic of inference: f32, or int8 (weights of dense layers and of convolutions whose
    /// filters read at least 32 inputs quantized per output row or filter at load, each row's
    /// activations with its own scale, exact integer products with AVX512-VNNI / AVX-VNNI
    /// where the CPU has them; bias and activation in f32; other layers stay f32).
    #[arg(long, default_value = "f32", value_name = "P")]
    pub precision: hourglass::InferPrecision,
}

impl InferArgs {
    /// Sets the precision on `model`, with a note of what runs in int8 and on which unit.
    pub fn apply(&self, model: &mut hourglass::Autoencoder) -> anyhow::Result<()> {
        model.set_precision(self.precision)?;
        if self.precision == hourglass::InferPrecision::Int8 {
            let (q, all) = (model.int8_layers(), model.layers().len());
            note!(
                "inference in int8: {q} of {all} layers (the dense ones and the convolutions whose filters read at least {} inputs; the others in f32, where int8 would not be faster), {}",
                hourglass::layer::INT8_MIN_PATCH,
                self.precision.kernels()
            );
        }
        Ok(())
    }
}
