//! The one error type of the library.

use std::path::PathBuf;

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in hourglass, with the context needed to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (shown in the message, so not chained as a source).
        cause: std::io::Error,
    },
    /// A text file (CSV) has a value that cannot be used.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column (field number).
        column: usize,
        /// What was expected and what was found.
        message: String,
    },
    /// A binary data file (NPY, IDX) is malformed or unsupported.
    #[error("{}: {message}", path.display())]
    Data {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Data held in memory is unusable (non-finite values, wrong width, empty).
    #[error("{what}: {message}")]
    InvalidData {
        /// Which data (file name or role such as "validation data").
        what: String,
        /// What is wrong.
        message: String,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A setting has a value that cannot be used. `name` is the setting's name in the library
    /// (a field of a config, e.g. `valid_fraction`); front ends map it to their own spelling
    /// (the command line's `--valid-fraction`).
    #[error("invalid {name} {value}: {reason}")]
    Setting {
        /// The setting.
        name: &'static str,
        /// The value given.
        value: String,
        /// What is wrong, or what was expected.
        reason: String,
    },
    /// A column named by a setting is not in the table.
    #[error("{}: no column `{name}` (setting `{setting}`); the columns are {columns}", path.display())]
    NoColumn {
        /// The table.
        path: PathBuf,
        /// The column asked for.
        name: String,
        /// The setting that named it (`columns`, `drop`, `label_column`, `keep_columns`).
        setting: &'static str,
        /// The table's columns (the first dozen and a count when there are more).
        columns: String,
    },
    /// An error with a hint at the setting that would fix it.
    #[error("{error} (hint: {hint})")]
    Hinted {
        /// The error.
        error: Box<Error>,
        /// What to change.
        hint: Hint,
    },
    /// A layer of an architecture does not fit (its shapes, its settings or its regularizer).
    #[error("layer {layer} ({kind}): {message}")]
    Layer {
        /// The layer's name (its own, or its place such as `encoder[1]`, or its index).
        layer: String,
        /// Its kind (`dense`, `conv`, …).
        kind: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A size from a file or a setting that overflows or does not fit in memory (see
    /// [`bounds`](crate::bounds)).
    #[error("{what} is too large: {detail}")]
    TooLarge {
        /// What would be allocated (the data, the model's weights, an image, …).
        what: String,
        /// The sizes that overflow, or the bytes needed against the limit.
        detail: String,
    },
    /// Two shapes that must agree do not.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        /// Which operand.
        what: String,
        /// The shape that was expected.
        expected: String,
        /// The shape that was given.
        got: String,
    },
    /// The file is not an hourglass model.
    #[error("{}: not an hourglass model file: {reason}", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// The model file was written by a newer hourglass.
    #[error(
        "{}: model format version {found} is newer than the newest this hourglass reads ({supported}); \
         hint: upgrade hourglass",
        path.display()
    )]
    NewerVersion {
        /// The file.
        path: PathBuf,
        /// Version found in the file.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// A tensor the model needs is not in the file.
    #[error("{}: tensor `{name}` is missing", path.display())]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// Tensor name.
        name: String,
    },
    /// A tensor in the model file has the wrong shape or dtype.
    #[error("{}: tensor `{name}`: expected {expected}, got {got}", path.display())]
    BadTensor {
        /// The file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// What the model config implies.
        expected: String,
        /// What the file holds.
        got: String,
    },
    /// Training produced a NaN or infinite loss.
    #[error(
        "training diverged: loss is {value} at epoch {epoch}, batch {batch}; \
         the model holds the weights of the last good epoch ({last_good_epoch}); hint: lower the learning rate"
    )]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// The offending loss value.
        value: f32,
        /// Number of epochs whose weights are kept (0: the initial weights).
        last_good_epoch: usize,
    },
    /// The ranks of a data-parallel run could not agree (one stopped, or they were given
    /// different data or settings).
    #[error("distributed training: {0}")]
    Distributed(String),
}

/// A setting that would fix an error. Front ends name the setting their own way (the command
/// line says `--impute mean`, the library's text says `impute = mean`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hint {
    /// Missing values: impute them (table setting `impute`).
    Impute,
    /// Text in a numeric column: encode the column as categories (table setting `categorical`).
    Categorical,
    /// The rows are images of unknown (or another) shape: give it (`image_shape`).
    ImageShape,
    /// A model of paired targets: compare its outputs with targets (`target`).
    Target,
}

impl Hint {
    /// The setting the hint is about.
    pub fn setting(self) -> &'static str {
        match self {
            Hint::Impute => "impute",
            Hint::Categorical => "categorical",
            Hint::ImageShape => "image_shape",
            Hint::Target => "target",
        }
    }

    /// The hint with the setting spelled by `name` (e.g. a command-line flag).
    pub fn with_setting(self, name: &str) -> String {
        match self {
            Hint::Impute => format!("{name} mean fills missing values"),
            Hint::Categorical => format!("{name} NAME or auto for text columns"),
            Hint::ImageShape => format!("give {name} H,W[,C]"),
            Hint::Target => format!("compare its outputs with targets: {name} DATA"),
        }
    }
}

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let setting = match self {
            Hint::Impute | Hint::Categorical => format!("the table setting `{}`", self.setting()),
            Hint::ImageShape => "the image shape".to_string(),
            Hint::Target => "the targets".to_string(),
        };
        f.write_str(&self.with_setting(&setting))
    }
}

impl Error {
    /// This error with a hint.
    pub fn with_hint(self, hint: Hint) -> Self {
        Error::Hinted {
            error: Box::new(self),
            hint,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause,
        }
    }

    pub(crate) fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn setting(name: &'static str, value: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Error::Setting {
            name,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidData {
            what: what.into(),
            message: message.into(),
        }
    }
}
