//! Training checkpoints: everything the loop needs to continue exactly where it stopped, at a
//! batch boundary — the weights, the optimizer's moments and step, the three random streams,
//! the epoch and the next batch of the epoch's shuffled order, the running loss sums, the
//! last complete epoch's and the best epoch's weights (early stopping), and the history so
//! far. Resuming from one gives the same final weights, bit for bit, as a run that never
//! stopped (`tests/it/reliability.rs` kills a real process to check it).
//!
//! A checkpoint is a `.safetensors` file (format `hourglass-checkpoint`): the loop's scalars
//! as JSON metadata (floats stored as their bits), the tensors as F32 (the batch order as
//! U64). It holds no architecture: it continues a model built by the same settings, and
//! refuses another one, other training settings or other data (a fingerprint of the rows).

use super::config::{EpochStats, TrainConfig};
use crate::error::{Error, Result};
use crate::fsutil::{io_at, write_bytes};
use crate::layer::Layer;
use crate::tensor::MatrixRef;
use crate::tensorfile::{self, TensorData, write_typed};
use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `format` metadata value of a checkpoint file.
pub const CHECKPOINT_FORMAT: &str = "hourglass-checkpoint";
/// The checkpoint layout this build writes and reads.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Where training stood, saved by [`Checkpoint::save`] and continued by
/// [`fit_from`](super::fit_from) and friends.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub(crate) state: State,
    /// Weight and bias of every layer (two entries per layer).
    pub(crate) params: Vec<Vec<f32>>,
    /// The same for the last complete epoch.
    pub(crate) last_good: Vec<Vec<f32>>,
    /// The same for the best epoch, when early stopping keeps it.
    pub(crate) best: Option<Vec<Vec<f32>>>,
    /// The optimizer's moments, per tensor it updates.
    pub(crate) moments: Vec<(Vec<f32>, Vec<f32>)>,
    /// This epoch's order of the training rows.
    pub(crate) order: Vec<u64>,
}

/// The loop's scalars.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct State {
    /// The 1-based epoch to continue.
    pub epoch: usize,
    /// The 0-based batch of that epoch to continue with (0: the epoch has not started, its
    /// order is not shuffled yet).
    pub next_batch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// The lowest layer that trains (the freeze schedule).
    pub lowest: usize,
    /// The epoch's loss sum so far, as f64 bits.
    pub loss_sum: u64,
    /// The epoch's correct predictions so far (classifiers).
    pub hits: usize,
    /// The last learning rate, as f32 bits.
    pub lr: u32,
    /// The shuffle, noise and dropout streams.
    pub rngs: [[u64; 4]; 3],
    /// The optimizer's step count.
    pub optimizer_step: u64,
    /// The best validation loss (as f64 bits) and its epoch.
    pub best: Option<(u64, usize)>,
    /// The finished epochs.
    pub history: Vec<EpochStats>,
    /// Seconds trained before this checkpoint (for the report).
    pub seconds: f64,
    /// The training settings, as JSON: a resumed run must have the same.
    pub config: serde_json::Value,
    /// A fingerprint of the training rows, targets and validation rows.
    pub fingerprint: String,
    /// What the caller stored with the checkpoint (the command line: its arguments).
    #[serde(default)]
    pub note: String,
    /// The AuxK firing counts (rows since each code unit fired).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub firing: Vec<u64>,
}

impl Checkpoint {
    /// What the caller stored with [`Checkpoint::with_note`].
    pub fn note(&self) -> &str {
        &self.state.note
    }

    /// Stores `note` (e.g. the command that resumes the run) with the checkpoint.
    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.state.note = note.into();
        self
    }

    /// The 1-based epoch training continues with.
    pub fn epoch(&self) -> usize {
        self.state.epoch
    }

    /// The 0-based batch of [`Checkpoint::epoch`] training continues with.
    pub fn next_batch(&self) -> usize {
        self.state.next_batch
    }

    /// The finished epochs' statistics.
    pub fn history(&self) -> &[EpochStats] {
        &self.state.history
    }

    /// The bytes of the checkpoint file.
    ///
    /// # Errors
    /// [`Error::Config`] if the state cannot be serialized.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.to_bytes_noted(&self.state.note)
    }

    /// [`Checkpoint::to_bytes`] with `note` stored instead of [`Checkpoint::note`].
    ///
    /// # Errors
    /// As [`Checkpoint::to_bytes`].
    pub fn to_bytes_noted(&self, note: &str) -> Result<Vec<u8>> {
        let mut meta = serde_json::Map::new();
        meta.insert("format".into(), CHECKPOINT_FORMAT.into());
        meta.insert("format_version".into(), CHECKPOINT_VERSION.to_string().into());
        let mut state = serde_json::to_value(&self.state).map_err(|e| Error::Config(e.to_string()))?;
        state["note"] = note.into();
        let state = serde_json::to_string(&state).map_err(|e| Error::Config(e.to_string()))?;
        meta.insert("state".into(), state.into());
        let mut tensors = Vec::new();
        let groups = [
            ("params", Some(&self.params)),
            ("last_good", Some(&self.last_good)),
            ("best", self.best.as_ref()),
        ];
        for (prefix, params) in groups {
            for (i, p) in params.into_iter().flatten().enumerate() {
                tensors.push((format!("{prefix}.{i:04}"), vec![p.len()], TensorData::F32(p)));
            }
        }
        for (i, (m, v)) in self.moments.iter().enumerate() {
            tensors.push((format!("moment1.{i:04}"), vec![m.len()], TensorData::F32(m)));
            tensors.push((format!("moment2.{i:04}"), vec![v.len()], TensorData::F32(v)));
        }
        tensors.push(("order".into(), vec![self.order.len()], TensorData::U64(&self.order)));
        write_typed(meta, &mut tensors)
    }

    /// Saves the checkpoint atomically (temporary file, then rename).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.save_noted(path, &self.state.note)
    }

    /// [`Checkpoint::save`] with `note` stored instead of [`Checkpoint::note`].
    ///
    /// # Errors
    /// As [`Checkpoint::save`].
    pub fn save_noted(&self, path: &Path, note: &str) -> Result<()> {
        let bytes = self.to_bytes_noted(note)?;
        write_bytes(path, &bytes)
    }

    /// Reads a checkpoint file.
    ///
    /// # Errors
    /// [`Error::Io`], and [`Error::UnknownFormat`] for a file that is not a checkpoint of this
    /// layout (or is damaged).
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(io_at(path))?;
        Checkpoint::from_bytes(path, &bytes)
    }

    /// [`Checkpoint::load`] on the bytes of a file; `path` names it in errors.
    ///
    /// # Errors
    /// As [`Checkpoint::load`].
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
        let bad = |reason: String| Error::UnknownFormat {
            path: path.into(),
            reason,
        };
        let (meta, st) = tensorfile::parse(bytes).map_err(|e| bad(format!("not a valid checkpoint ({e})")))?;
        if meta.get("format").map(String::as_str) != Some(CHECKPOINT_FORMAT) {
            return Err(bad(format!(
                "not a training checkpoint (no `format` = `{CHECKPOINT_FORMAT}`)"
            )));
        }
        let version = meta.get("format_version").map(String::as_str);
        if version != Some(&CHECKPOINT_VERSION.to_string()) {
            return Err(bad(format!(
                "checkpoint layout {} (this build reads {CHECKPOINT_VERSION})",
                version.unwrap_or("missing")
            )));
        }
        let state: State = meta
            .get("state")
            .ok_or_else(|| bad("no `state` metadata".into()))
            .and_then(|s| serde_json::from_str(s).map_err(|e| bad(format!("`state`: {e}"))))?;
        let f32s = |name: &str| -> Result<Vec<f32>> {
            let v = st.tensor(name).map_err(|_| bad(format!("no tensor `{name}`")))?;
            if v.dtype() != Dtype::F32 || v.shape().len() != 1 {
                return Err(bad(format!("tensor `{name}` is not a F32 vector")));
            }
            Ok(tensorfile::f32_values(&v))
        };
        let names: Vec<String> = st.names().into_iter().map(str::to_owned).collect();
        let count = |prefix: &str| names.iter().filter(|n| n.starts_with(&format!("{prefix}."))).count();
        let group = |prefix: &str| -> Result<Vec<Vec<f32>>> {
            (0..count(prefix)).map(|i| f32s(&format!("{prefix}.{i:04}"))).collect()
        };
        let params = group("params")?;
        let last_good = group("last_good")?;
        let best = (count("best") > 0).then(|| group("best")).transpose()?;
        let moments = (0..count("moment1"))
            .map(|i| Ok((f32s(&format!("moment1.{i:04}"))?, f32s(&format!("moment2.{i:04}"))?)))
            .collect::<Result<Vec<_>>>()?;
        let order = {
            let v = st.tensor("order").map_err(|_| bad("no tensor `order`".into()))?;
            if v.dtype() != Dtype::U64 || v.shape().len() != 1 {
                return Err(bad("tensor `order` is not a U64 vector".into()));
            }
            v.data()
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect()
        };
        Ok(Checkpoint {
            state,
            params,
            last_good,
            best,
            moments,
            order,
        })
    }
}

/// The weight and bias of every layer, as two vectors each.
pub(crate) fn params_of(layers: &[Layer]) -> Vec<Vec<f32>> {
    layers
        .iter()
        .flat_map(|l| {
            let (w, b) = l.params();
            [w.to_vec(), b.to_vec()]
        })
        .collect()
}

/// Copies [`params_of`] vectors into `layers`, which must have their sizes.
pub(crate) fn set_params(layers: &mut [Layer], params: &[Vec<f32>], what: &str) -> Result<()> {
    let fits = params.len() == 2 * layers.len()
        && layers.iter().enumerate().all(|(l, layer)| {
            let (w, b) = layer.params();
            params[2 * l].len() == w.len() && params[2 * l + 1].len() == b.len()
        });
    if !fits {
        return Err(Error::invalid(
            "checkpoint",
            format!("its {what} do not fit this model (another architecture)"),
        ));
    }
    for (l, layer) in layers.iter_mut().enumerate() {
        let (w, b) = layer.params_mut();
        w.copy_from_slice(&params[2 * l]);
        b.copy_from_slice(&params[2 * l + 1]);
    }
    Ok(())
}

/// A 64-bit fingerprint (FNV-1a over the bits, with the shape) of the matrices and labels a
/// run trains on, so that a checkpoint is not continued on other data.
pub(crate) fn fingerprint(parts: &[Option<MatrixRef<'_>>], labels: &[Option<&[usize]>]) -> String {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |w: u64| h = (h ^ w).wrapping_mul(PRIME);
    for m in parts {
        match m {
            Some(m) => {
                eat(m.rows() as u64);
                eat(m.cols() as u64);
                for &v in m.as_slice() {
                    eat(u64::from(v.to_bits()));
                }
            }
            None => eat(u64::MAX),
        }
    }
    for y in labels {
        match y {
            Some(y) => {
                eat(y.len() as u64);
                for &k in *y {
                    eat(k as u64);
                }
            }
            None => eat(u64::MAX - 1),
        }
    }
    format!("{h:016x}")
}

/// Checks that a run's settings are those of the checkpoint, naming the first that differs.
pub(crate) fn check_config(ck: &Checkpoint, config: &TrainConfig) -> Result<()> {
    let now = serde_json::to_value(config).map_err(|e| Error::Config(e.to_string()))?;
    if now == ck.state.config {
        return Ok(());
    }
    let (a, b) = (ck.state.config.as_object(), now.as_object());
    let differing = a.zip(b).and_then(|(a, b)| {
        a.keys()
            .chain(b.keys())
            .find(|k| a.get(*k) != b.get(*k))
            .map(|k| format!("{k} = {} in the checkpoint, {} now", show(a.get(k)), show(b.get(k))))
    });
    Err(Error::invalid(
        "checkpoint",
        format!(
            "it was made with other training settings ({}): resume with the same settings",
            differing.unwrap_or_else(|| "they differ".into())
        ),
    ))
}

fn show(v: Option<&serde_json::Value>) -> String {
    v.map_or_else(|| "unset".into(), ToString::to_string)
}
