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
}

impl Error {
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

    pub(crate) fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidData {
            what: what.into(),
            message: message.into(),
        }
    }
}
