//! Command-line arguments. Doc comments are the help text.

mod groups;
mod uses;

use groups::parse_spec;
pub use groups::{
    AnomalyLabels, CheckpointArgs, ColumnArgs, Every, ImageShapeArg, InferArgs, NoiseArgs, Optimizer, Spec, TabularArgs,
};

pub use uses::{
    CalibrateArgs, EvalRetrievalArgs, FiltersArgs, HashArgs, PcaArgs, PredictArgs, ProbeArgs, SampleArgs, ScoreArgs,
    SearchArgs, SelectArgs, ShowArgs,
};

use clap::{Args, Parser, Subcommand};
use hourglass::inpaint::Region;
use hourglass::regularize::{BinaryCode, KlSparsity, Setting};
use hourglass::{Activation, Init, Loss, Scaling};
use std::path::PathBuf;

/// Train and use autoencoders: compression, features, anomaly scores, denoising.
#[derive(Debug, Parser)]
#[command(name = "hourglass", version, about, max_term_width = 100)]
pub struct Cli {
    /// Worker threads (default: all cores). Results do not depend on this number.
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train an autoencoder on a data file (CSV, Parquet, NPY, safetensors or IDX) and save the model.
    Train(Box<TrainArgs>),
    /// Write the codes (or the activations of an encoder layer) of each row.
    Encode(EncodeArgs),
    /// The rows on which chosen code units are most active (a sparse dictionary's latents):
    /// each unit's top rows (0-based row numbers) and values.
    TopRows(TopRowsArgs),
    /// Write the reconstructions of codes.
    Decode(DecodeArgs),
    /// Write the reconstruction of each row.
    Reconstruct(ReconstructArgs),
    /// Evaluate on a data file: reconstruction error (MSE, SSE per sample, PSNR, BCE) of an
    /// autoencoder, or accuracy and the confusion matrix of a classifier.
    Eval(EvalArgs),
    /// Show a model's architecture, parameter count and training provenance.
    Inspect(InspectArgs),
    /// Write a model as ONNX (opset 17): the scaler and table encoding inside the graph, named
    /// outputs (code, reconstruction, score, anomaly, per_feature; a classifier's probabilities
    /// and class), a dynamic batch dimension.
    Export(ExportArgs),
    /// Write one self-contained HTML page about a model: its card, training curves and, given
    /// data, the error distribution, pictures, code statistics, ROC/PR curves with labels,
    /// the features behind the error, or a classifier's confusion matrix.
    Report(ReportArgs),
    /// Fit PCA (exact) and save it as a linear autoencoder that every command accepts.
    Pca(PcaArgs),
    /// Draw the learned filters (first encoder layer, or decoder columns) as a PNG grid.
    Filters(FiltersArgs),
    /// Draw originals, corrupted inputs and reconstructions side by side as a PNG.
    Show(ShowArgs),
    /// A variational autoencoder's samples as a PNG grid: images decoded from codes drawn
    /// from the prior, or a latent traversal (each code unit swept from -3 to 3).
    Sample(SampleArgs),
    /// Anomaly scores: each row's reconstruction error (higher = more anomalous), a 0/1 flag
    /// once the model is calibrated, and ROC-AUC / PR-AUC when labels are given.
    Score(ScoreArgs),
    /// Set the model's anomaly threshold from data that is (mostly) normal.
    Calibrate(CalibrateArgs),
    /// Concatenate data files and keep rows by label or position (e.g. one digit of MNIST,
    /// or the first 500 rows): writes the rows and their labels.
    Select(SelectArgs),
    /// Judge features: fit a multinomial logistic regression (L2, to convergence) on training
    /// rows and report its test accuracy. Features are the files as given, or their codes
    /// under --model.
    Probe(ProbeArgs),
    /// Binary codes for semantic hashing: the model's code thresholded (0.5 for sigmoid codes,
    /// 0 otherwise), packed 64 bits to a word into a .hgh file.
    Hash(HashArgs),
    /// Nearest codes by Hamming distance: for each query, the k closest items (or all within
    /// --radius), ties by item index.
    Search(SearchArgs),
    /// Retrieval quality of codes given labels (relevant = same label): mAP and precision@k.
    EvalRetrieval(EvalRetrievalArgs),
    /// Greedy layer-wise pretraining: one autoencoder per hidden layer, each on the codes of
    /// the one below, stacked into a deep autoencoder ready for `finetune`.
    Pretrain(PretrainArgs),
    /// Train a classifier: a model's encoder plus a softmax head, fine-tuned end to end on
    /// labelled rows (or the same network from random weights with --from-scratch).
    Finetune(FinetuneArgs),
    /// Class and class probabilities of each row, from a classifier.
    Predict(PredictArgs),
    /// Clean images with a (denoising) autoencoder: writes each image's reconstruction as PNG
    /// files (a folder), a PNG grid, or an array (.npy/.csv).
    Denoise(DenoiseArgs),
    /// Fill hidden regions of images from the reconstruction while keeping the known pixels;
    /// prints the error inside the regions against the input's own values there.
    Inpaint(InpaintArgs),
}

#[derive(Debug, Args)]
pub struct DenoiseArgs {
    /// The model file.
    pub model: PathBuf,
    /// Images: a folder of PNG/JPEG files (resized to the model's image size), IDX or NPY.
    pub data: PathBuf,
    /// Output: a folder (one PNG per image, named as the inputs), FILE.png (a grid of the first
    /// --grid images) or FILE.npy / FILE.csv (the values).
    #[arg(long, short, value_name = "OUT")]
    pub output: PathBuf,
    /// Images in a .png grid.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub grid: usize,
    #[command(flatten)]
    pub image: ImageShapeArg,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("region").required(true).args(["rect", "mask", "random_rect"])))]
pub struct InpaintArgs {
    /// The model file (e.g. trained with --noise block:10x10).
    pub model: PathBuf,
    /// Images: a folder of PNG/JPEG files, IDX or NPY.
    pub data: PathBuf,
    /// The hidden region, the same in every image: left column, top row, width, height.
    #[arg(long, value_parser = Region::parse_rect, value_name = "X,Y,W,H")]
    pub rect: Option<(usize, usize, usize, usize)>,
    /// The hidden region as a picture of the image's size: pixels brighter than half are hidden.
    #[arg(long, value_name = "MASK.png")]
    pub mask: Option<PathBuf>,
    /// A rectangle of WxH pixels at a random position in each image (drawn from --seed).
    #[arg(long, value_parser = Region::parse_size, value_name = "WxH")]
    pub random_rect: Option<(usize, usize)>,
    /// Seed of --random-rect.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Output, as for `denoise`.
    #[arg(long, short, value_name = "OUT")]
    pub output: PathBuf,
    /// Images in a .png grid.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub grid: usize,
    #[command(flatten)]
    pub image: ImageShapeArg,
    /// Print the region metrics as JSON (values: hidden pixels x channels, region_mse,
    /// region_psnr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// Training data (labels not needed).
    pub data: PathBuf,
    /// Hidden widths, input side first, e.g. 1000,1000,1000; the last is the code.
    #[arg(long, value_delimiter = ',', required = true, value_name = "WIDTHS")]
    pub hidden: Vec<usize>,
    /// Activation of every hidden layer (and of the higher layers' reconstructions).
    #[arg(long, default_value = "sigmoid", value_name = "ACT")]
    pub activation: Activation,
    /// Output activation of the first layer's reconstruction.
    #[arg(long, default_value = "sigmoid", value_name = "ACT")]
    pub output_activation: Activation,
    /// Reconstruction loss: mse or bce (bce where the reconstruction is a sigmoid).
    #[arg(long, default_value = "mse", value_name = "LOSS")]
    pub loss: Loss,
    #[command(flatten)]
    pub noise: NoiseArgs,
    /// Epochs per layer.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub epochs: usize,
    /// Rows per mini-batch.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub batch_size: usize,
    /// Learning rate (Adam).
    #[arg(long, default_value_t = 1e-3, value_name = "F")]
    pub lr: f32,
    /// Feature scaling of the input, fitted on the data and stored in the model.
    #[arg(long, default_value = "none", value_name = "SCALE")]
    pub scale: Scaling,
    /// Arithmetic of the training GEMMs: f32 or bf16.
    #[arg(long, default_value = "f32", value_name = "P")]
    pub precision: hourglass::Precision,
    /// Seed.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    #[command(flatten)]
    pub columns: ColumnArgs,
    /// Where to save the stacked autoencoder.
    #[arg(long, short, value_name = "MODEL")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct FinetuneArgs {
    /// A (pretrained) autoencoder, or a classifier to train further.
    pub model: PathBuf,
    /// Labelled training rows.
    pub data: PathBuf,
    /// Labels of the rows (IDX, NPY or one-column CSV); or use --label-column.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Number of classes: the labels are 0 .. N-1 (default: the distinct labels seen).
    #[arg(long, value_name = "N")]
    pub classes: Option<usize>,
    /// Train the same network from random weights (the baseline for pretraining).
    #[arg(long)]
    pub from_scratch: bool,
    /// Epochs.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub epochs: usize,
    /// Train only the head for the first N epochs (the encoder frozen).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub freeze_epochs: usize,
    /// Rows per mini-batch.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub batch_size: usize,
    /// Learning rate (Adam).
    #[arg(long, default_value_t = 1e-3, value_name = "F")]
    pub lr: f32,
    /// Decoupled weight decay.
    #[arg(long, default_value_t = 0.0, value_name = "F")]
    pub weight_decay: f32,
    /// Dropout on every hidden layer's output in training.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub dropout: f32,
    /// Arithmetic of the training GEMMs: f32 or bf16.
    #[arg(long, default_value = "f32", value_name = "P")]
    pub precision: hourglass::Precision,
    /// Seed of the head's weights, shuffles and dropout.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Print nothing but the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
    #[command(flatten)]
    pub columns: ColumnArgs,
    /// Where to save the classifier.
    #[arg(long, short, value_name = "CLASSIFIER")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training data: .csv, .parquet, .npy, .safetensors, IDX (raw or .gz), a folder of
    /// images, or a text (--text).
    pub data: PathBuf,
    /// Encoder hidden widths, input side first, e.g. 1000,500,250 (none: one-layer autoencoder).
    #[arg(long, value_delimiter = ',', value_name = "WIDTHS")]
    pub hidden: Vec<usize>,
    /// Width of the code. Without --code and --arch, the anomaly detector's defaults, sized
    /// from the data (as the Python OutlierDetector's): code max(2, min(32, 3 x features/4)), one
    /// hidden layer of min(256, max(4 x code, features/2)), 60,000/rows epochs within
    /// [10, 50] with 10 % held out and early stopping (patience 10), batch rows/32 within [16, 256], no scaling for data in
    /// [0, 1] and standard scaling otherwise, and --neighbours 10; each flag still overrides
    /// its part.
    #[arg(long, value_name = "N")]
    pub code: Option<usize>,
    /// Paired targets, one row per training row and of the same width (noisy → clean images,
    /// images → segmentation masks): the model learns to map each row to its target instead
    /// of to itself. Needs --scale none.
    #[arg(long, value_name = "DATA")]
    pub target: Option<PathBuf>,
    /// Targets of the --valid rows.
    #[arg(long, value_name = "DATA", requires_all = ["target", "valid"])]
    pub valid_target: Option<PathBuf>,
    /// Train on sliding windows of N steps of a time series: the table's rows are the steps,
    /// in time order, and its columns the channels (leave out a time column with --drop).
    /// Each training row is one window, channel-major (a one-row image of N steps for an
    /// architecture file). Stored in the model: the other commands read every window of a
    /// series (stride 1), and `score` gives each step the mean score of the windows that
    /// contain it.
    #[arg(long, value_name = "N", conflicts_with_all = ["stream", "target", "distributed", "local_ranks"])]
    pub window: Option<usize>,
    /// Keep the codes of (up to 10,000 of) the training rows, so that anomaly scores add to the
    /// reconstruction error how isolated the row's code is among its K nearest training codes,
    /// each part in units of its spread over the training rows (what the Python
    /// OutlierDetector does by default, with K = 10): by its distance to the K-th (`mse+knn`)
    /// where the code is at least half the input's width (tables), by its local outlier factor
    /// (`mse+lof`) where it compresses more (images); `score --metric` picks either.
    #[arg(long, value_name = "K", conflicts_with_all = ["stream", "target", "distributed", "local_ranks", "window"])]
    pub neighbours: Option<usize>,
    /// Steps between the starts of consecutive training windows.
    #[arg(long, default_value_t = 1, value_name = "N", requires = "window")]
    pub stride: usize,
    /// Architecture file (TOML): any mix of dense, convolution (2-D and 1-D), pooling,
    /// upsampling, recurrent (lstm, gru) and repeat layers, their activations, the loss and the
    /// code's regularizers (see examples/*.toml). Replaces
    /// --hidden/--code/--activation...; regularizer flags given here add to the file's [code].
    #[arg(long, value_name = "FILE", conflicts_with_all = ["hidden", "code", "decoder_hidden", "tied"])]
    pub arch: Option<PathBuf>,
    /// Decoder hidden widths, code side first (default: the encoder's, mirrored).
    #[arg(long, value_delimiter = ',', value_name = "WIDTHS")]
    pub decoder_hidden: Option<Vec<usize>>,
    /// Activation of hidden layers: identity, relu, leaky_relu, elu, sigmoid, tanh, gelu.
    #[arg(long, default_value = "relu", value_name = "ACT")]
    pub activation: Activation,
    /// Activation of the code layer.
    #[arg(long, default_value = "identity", value_name = "ACT")]
    pub code_activation: Activation,
    /// Activation of the output layer [default: sigmoid where the scaled data lie in [0, 1]
    /// (--loss bce, --scale minmax, unscaled data in [0, 1] such as images), else identity]
    #[arg(long, value_name = "ACT")]
    pub output_activation: Option<Activation>,
    /// Reconstruction loss: mse, or bce (needs a sigmoid output and data in [0, 1]). An --arch
    /// file sets its own, and may choose ce: categorical cross-entropy under a softmax layer.
    #[arg(long, default_value = "mse", value_name = "LOSS")]
    pub loss: Loss,
    /// Variational autoencoder: a Gaussian code (mean and log-variance from a linear layer,
    /// sampled by the reparameterization trick in training, the mean at encode time) with a KL
    /// term to N(0, I); the loss is then the negative ELBO per value (bce: a Bernoulli decoder).
    #[arg(long, conflicts_with = "arch")]
    pub vae: bool,
    /// Dynamic binarization: each value p in [0, 1] becomes a fresh 0/1 draw (P(1) = p) every
    /// time its row enters a batch, in the input and the target alike (binarized MNIST).
    #[arg(long)]
    pub binarize: bool,
    /// Weight of the VAE's KL term (β-VAE above 1).
    #[arg(long, default_value_t = 1.0, value_name = "F", requires = "vae")]
    pub kl_beta: f32,
    /// VAE capacity target C in nats per row: the KL term becomes β |KL − C|.
    #[arg(long, default_value_t = 0.0, value_name = "NATS", requires = "vae")]
    pub kl_capacity: f32,
    /// Epochs over which the VAE's KL weight rises linearly to --kl-beta.
    #[arg(long, default_value_t = 0, value_name = "N", requires = "vae")]
    pub kl_warmup: usize,
    /// Train the VAE on the importance-weighted bound (IWAE, Burda et al. 2016) with K samples
    /// a row instead of the ELBO (1: the ELBO).
    #[arg(long, default_value_t = 1, value_name = "K", requires = "vae")]
    pub iwae: usize,
    /// Weight initialization: auto (He for ReLU-like, else Xavier), he, xavier.
    #[arg(long, default_value = "auto", value_name = "INIT")]
    pub init: Init,
    /// Passes over the training data [default: 10; with --window, enough for 1,000 optimizer
    /// steps when 10 are fewer, since a series often gives only a few thousand windows;
    /// without --code and --arch, 60,000/rows within [10, 50]]
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Rows per mini-batch [default: 256; without --code and --arch, rows/32 within [16, 256];
    /// with --text, 64]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Learning rate [default: 0.001; with --text, 0.01]
    #[arg(long, value_name = "F")]
    pub lr: Option<f32>,
    /// Optimizer: adam (AdamW: decoupled weight decay) or sgd.
    #[arg(long, value_enum, default_value_t = Optimizer::Adam, value_name = "OPT")]
    pub optimizer: Optimizer,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9, value_name = "F")]
    pub momentum: f32,
    /// SGD with Nesterov momentum.
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay (decoupled for Adam, L2 for SGD); biases are not decayed.
    #[arg(long, default_value_t = 0.0, value_name = "F")]
    pub weight_decay: f32,
    /// Learning-rate schedule: constant, step:EVERY,GAMMA (epochs), cosine[:MIN_FACTOR].
    #[arg(long, default_value = "constant", value_parser = hourglass::Schedule::parse, value_name = "SCHEDULE")]
    pub schedule: hourglass::Schedule,
    /// Epochs of linear learning-rate warm-up.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub warmup: usize,
    /// Clip the gradient's global L2 norm to this value.
    #[arg(long, value_name = "F")]
    pub clip_norm: Option<f32>,
    /// Validation data (same format and columns as the training data).
    #[arg(long, value_name = "DATA", conflicts_with = "valid_fraction")]
    pub valid: Option<PathBuf>,
    /// Hold out this fraction of the training rows for validation.
    #[arg(long, value_name = "F")]
    pub valid_fraction: Option<f32>,
    /// Stop after N epochs without a better validation loss and keep the best weights.
    #[arg(long, value_name = "N")]
    pub patience: Option<usize>,
    /// Feature scaling fitted on the training data and stored in the model: none, minmax or
    /// standard [default: none; standard with --window, since a series' channels come in
    /// their own units]
    #[arg(long, value_name = "SCALE")]
    pub scale: Option<Scaling>,
    /// Arithmetic of the training GEMMs: f32, or bf16 (bf16 operands, f32 accumulation and
    /// weights; runs on AMX tiles or AVX512-BF16 on AMD, falls back to f32 with a note
    /// elsewhere).
    #[arg(long, default_value = "f32", value_name = "P")]
    pub precision: hourglass::Precision,
    /// Tie weights: each decoder weight is the transpose of its mirror encoder weight.
    #[arg(long)]
    pub tied: bool,
    /// L1 penalty on code activations: λ Σ|h|, averaged per sample.
    #[arg(long, value_name = "LAMBDA")]
    pub l1: Option<f32>,
    /// KL sparsity toward mean activation RHO with weight BETA (needs --code-activation sigmoid).
    #[arg(long, value_parser = KlSparsity::parse, value_name = "RHO,BETA")]
    pub kl: Option<KlSparsity>,
    /// k-sparse autoencoder: keep the K largest code activations per sample.
    #[arg(long, value_name = "K")]
    pub topk: Option<usize>,
    /// Units kept at encode time (e.g. 2-3 x K; default K).
    #[arg(long, value_name = "K")]
    pub topk_encode: Option<usize>,
    /// Start training with this many units and lower it linearly to --topk ...
    #[arg(long, value_name = "K")]
    pub topk_start: Option<usize>,
    /// ... over this many epochs.
    #[arg(long, value_name = "N")]
    pub topk_anneal: Option<usize>,
    /// Binary code for semantic hashing (needs --code-activation sigmoid): noise:SIGMA adds
    /// Gaussian noise before the sigmoid in training; ste trains through the 0/1 threshold
    /// (straight-through). Codes are thresholded at 0.5 when encoding.
    #[arg(long, value_parser = BinaryCode::parse, value_name = "METHOD")]
    pub binary_code: Option<BinaryCode>,
    /// Dropout on the code in training (the "redundant" autoencoder).
    #[arg(long, value_name = "P")]
    pub code_dropout: Option<f32>,
    /// Decorrelate the code units (DeCov): BETA / 2 times the sum of the squared off-diagonal
    /// covariances of the code over each batch.
    #[arg(long, value_name = "BETA")]
    pub decov: Option<f32>,
    /// The code's regularizers in one list, e.g. `l1=1e-4,topk=25,topk-encode=50`; keys l1,
    /// kl=RHO/BETA, topk, topk-encode, topk-start, topk-anneal, dropout, binary=noise:SIGMA|ste.
    /// The flags above are the same keys and go after it; both go over an --arch file's [code].
    #[arg(long, value_parser = parse_spec, value_name = "SPEC")]
    pub code_reg: Option<Spec>,
    /// Regularize another layer (0-based, as `inspect` lists them), repeatable, e.g.
    /// `0:l1=1e-4,dropout=0.1`; the keys of --code-reg.
    #[arg(long, value_parser = Setting::parse_layer, value_name = "LAYER:SPEC")]
    pub hidden_reg: Vec<(usize, Vec<Setting>)>,
    /// Rescale each unit's incoming weights to at most this L2 norm after every step.
    #[arg(long, value_name = "C")]
    pub max_norm: Option<f32>,
    /// Rescale each column of the first decoder layer (a code unit's dictionary atom) to unit
    /// norm after every step, as sparse dictionary (SAE) trainers do.
    #[arg(long)]
    pub unit_norm_decoder: bool,
    /// Start each code unit's decoder column as its encoder row scaled to unit norm (the tied
    /// initialization of sparse dictionary trainers), and a one-layer dictionary centred on the
    /// training rows' mean (decoder bias at the mean, the code zero there).
    #[arg(long)]
    pub tied_init: bool,
    /// A learned pre-encoder bias (one-layer dictionaries): the code is W (x − b) + c with b
    /// the decoder's output bias, trained from both sides as sparse dictionary trainers do;
    /// stored folded into the code layer's bias, so inference is unchanged.
    #[arg(long)]
    pub pre_bias: bool,
    #[command(flatten)]
    pub noise: NoiseArgs,
    #[command(flatten)]
    pub image: ImageShapeArg,
    /// Seed for initialization, shuffling and the validation split.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Train without holding the rows in memory (a CSV or Parquet table of numbers, an NPY
    /// array or an IDX file): the scaler is fitted in streaming passes, a seeded share of rows
    /// is held out (at most 65,536 kept to validate on), and each epoch reads the file's
    /// segments (Parquet row groups, 65,536-row stretches of an NPY array; CSV and IDX files in
    /// order) in a
    /// seeded order, shuffling rows within blocks of about 64 MiB. A table encoding
    /// (--categorical, --impute) is fitted first in streaming passes, the same as in memory (a
    /// categorical column of more than 65,536 distinct values needs --hash-buckets). Not with
    /// --target, --valid or checkpoints.
    #[arg(long, conflicts_with_all = ["target", "valid", "resume", "checkpoint"])]
    pub stream: bool,
    /// Train data-parallel as one rank of `mpirun -np N hourglass train … --distributed`
    /// (a build with the `mpi` feature): each rank reads only its shard (its share of a Parquet
    /// file's row groups or an NPY array's 65,536-row stretches when there are at least N, else
    /// every N-th row from row `rank`), rank 0's initial weights go to all, the scaler is fitted over all shards, and
    /// every step the ranks' gradients are gathered and summed in rank order, so every rank
    /// holds the same model and two runs give the same model, bit for bit. --batch-size is the
    /// whole run's batch (each rank takes its share). Rank 0 writes the model and the log; a
    /// rank that fails ends the job. A table encoding (--categorical, --impute) is fitted by
    /// every rank over the whole file; without one, columns are taken as they are (a constant
    /// column is kept). Not with --target, --valid or checkpoints.
    #[arg(long, conflicts_with_all = ["target", "valid", "resume", "checkpoint", "stream", "local_ranks"])]
    pub distributed: bool,
    /// Train as N data-parallel ranks would, in threads of this one process: the same shards
    /// and sums as `mpirun -np N … --distributed`, so the same model, bit for bit.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024),
          conflicts_with_all = ["target", "valid", "resume", "checkpoint", "stream"])]
    pub local_ranks: Option<u32>,
    /// With --distributed or --local-ranks: instead of summing gradients every step, let each
    /// rank step on its own rows and average the weights every K steps (and at each epoch's
    /// end): K times less traffic, for slow networks.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub average_every: Option<u32>,
    /// Write one JSON line per epoch to this file, as each epoch ends (continued on --resume).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Print nothing but errors and the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
    #[command(flatten)]
    pub columns: ColumnArgs,
    #[command(flatten)]
    pub tabular: TabularArgs,
    /// Where to save the model (.safetensors).
    #[arg(long, short, value_name = "MODEL")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// The model file.
    pub model: PathBuf,
    /// Data to encode.
    pub data: PathBuf,
    /// Output file: .npy, .csv or .parquet (written as the rows stream through in chunks).
    #[arg(long, short, value_name = "OUT")]
    pub output: PathBuf,
    /// Encoder layer whose activations to write (0-based; default: the code layer).
    #[arg(long, value_name = "I")]
    pub layer: Option<usize>,
    /// Copy these input columns (e.g. an id and the target) in front of the codes, so the CSV
    /// feeds XGBoost or LightGBM directly; they must not be model features.
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub keep_columns: Vec<String>,
    #[command(flatten)]
    pub columns: ColumnArgs,
    #[command(flatten)]
    pub infer: InferArgs,
}

#[derive(Debug, Args)]
pub struct TopRowsArgs {
    /// The model file.
    pub model: PathBuf,
    /// The rows to search (streamed through in chunks).
    pub data: PathBuf,
    /// Code units to report (0-based), e.g. 3,17,204.
    #[arg(long, value_delimiter = ',', value_name = "UNITS", required = true)]
    pub units: Vec<usize>,
    /// Rows per unit.
    #[arg(short, long, default_value_t = 10, value_name = "N")]
    pub n: usize,
    /// Encoder layer whose units to rank (0-based; default: the code layer).
    #[arg(long, value_name = "I")]
    pub layer: Option<usize>,
    /// Write the table as CSV (unit, rank, row, activation) instead of printing it.
    #[arg(long, short, value_name = "CSV")]
    pub output: Option<PathBuf>,
    /// Print one JSON object: {"units": [{"unit", "rows": [{"row", "activation"}]}]}.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub columns: ColumnArgs,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The model file.
    pub model: PathBuf,
    /// Codes to decode (as written by `encode`).
    pub codes: PathBuf,
    /// Output file: .npy, .csv or .parquet.
    #[arg(long, short, value_name = "OUT")]
    pub output: PathBuf,
    #[command(flatten)]
    pub infer: InferArgs,
}

#[derive(Debug, Args)]
pub struct ReconstructArgs {
    /// The model file.
    pub model: PathBuf,
    /// Data to reconstruct.
    pub data: PathBuf,
    /// Output file: .npy, .csv or .parquet (written as the rows stream through in chunks). For
    /// a model of a text (train --text): .txt writes the whole text back (each token the most
    /// probable under the mean of the windows that hold it); .csv or .parquet one row per
    /// window: the input's text, its reconstruction's, and the share of tokens that came back.
    #[arg(long, short, value_name = "OUT")]
    pub output: PathBuf,
    #[command(flatten)]
    pub columns: ColumnArgs,
    #[command(flatten)]
    pub infer: InferArgs,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model file.
    pub model: PathBuf,
    /// Data to evaluate on.
    pub data: PathBuf,
    /// Print one JSON object: n, mse, sse_per_sample, psnr, bce, fvu, l0, dead_fraction,
    /// mean_activation; for a variational autoencoder also elbo, log_likelihood, kl,
    /// reconstruction_nll and samples (nats per row).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub noise: NoiseArgs,
    /// A variational autoencoder's code samples per row: the ELBO's expectation and the
    /// importance-weighted estimate of the log-likelihood (IWAE; more samples, a tighter bound).
    #[arg(long, default_value_t = 100, value_name = "K")]
    pub samples: usize,
    /// Evaluate on a stochastically binarized copy of the rows (each value p in [0, 1] drawn
    /// once as 1 with probability p, from --seed): binarized MNIST's test set.
    #[arg(long)]
    pub binarize: bool,
    /// Seed of the corruption, the binarization and a variational autoencoder's code samples.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    #[command(flatten)]
    pub image: ImageShapeArg,
    /// Paired targets (a model trained with --target): compare the outputs with these instead
    /// of the inputs; for 0/1 targets (masks) also prints pixel accuracy and IoU at 0.5.
    #[arg(long, value_name = "DATA", conflicts_with = "noise")]
    pub target: Option<PathBuf>,
    /// For a classifier: the true labels (or --label-column); prints accuracy and the
    /// confusion matrix.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    #[command(flatten)]
    pub columns: ColumnArgs,
    #[command(flatten)]
    pub infer: InferArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The model file (an autoencoder or a classifier).
    pub model: PathBuf,
    /// The ONNX file to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// The graph's outputs, comma-separated: code, reconstruction, score, anomaly (calibrated
    /// models), per_feature; probabilities, class (classifiers). Default: code,
    /// reconstruction, score (and anomaly once calibrated); probabilities,class for a
    /// classifier.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub outputs: Option<Vec<hourglass::onnx::Output>>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The model file (an autoencoder or a classifier).
    pub model: PathBuf,
    /// Rows to show the model on (optional).
    pub data: Option<PathBuf>,
    /// The HTML file to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Labels of the rows (IDX, NPY or one-column CSV), or use --label-column: anomaly labels
    /// for an autoencoder (ROC and PR curves), classes for a classifier (confusion matrix).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    #[command(flatten)]
    pub anomaly: AnomalyLabels,
    /// The training run's --log file: its per-epoch wall time and speed join the curves
    /// (model files do not store time).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    #[command(flatten)]
    pub image: ImageShapeArg,
    #[command(flatten)]
    pub columns: ColumnArgs,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The model file.
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
