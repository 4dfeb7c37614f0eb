//! Training from Python: the estimators' settings, and a watched training call (progress
//! events, Ctrl-C).

use crate::{HourglassError, json_err, py_err};
use hourglass::{Flow, Noise, OptimizerConfig, Schedule, TrainConfig, TrainReport};
use pyo3::prelude::*;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Training settings as the Python estimators spell them (strings where the command line has
/// strings), turned into the library's `TrainConfig` by the library's own parsers.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Training {
    epochs: usize,
    batch_size: usize,
    lr: f32,
    optimizer: String,
    momentum: f32,
    nesterov: bool,
    weight_decay: f32,
    schedule: String,
    warmup: usize,
    clip_norm: Option<f32>,
    valid_fraction: f32,
    patience: Option<usize>,
    seed: u64,
    scale: String,
    precision: String,
    noise: Vec<String>,
    max_norm: Option<f32>,
    #[serde(default)]
    freeze_epochs: usize,
    #[serde(default)]
    binarize: bool,
    #[serde(default)]
    unit_norm_decoder: bool,
    #[serde(default)]
    tied_init: bool,
    #[serde(default)]
    pre_bias: bool,
}

impl Training {
    /// The training settings; warns (a `UserWarning`) when the precision asked for cannot
    /// run on this machine.
    pub(crate) fn parse(py: Python<'_>, json: &str) -> PyResult<TrainConfig> {
        let config = Self::settings(json)?;
        if let Some(note) = config.precision.fallback_note() {
            let message = std::ffi::CString::new(note).map_err(|e| HourglassError::new_err(e.to_string()))?;
            PyErr::warn(py, &py.get_type::<pyo3::exceptions::PyUserWarning>(), &message, 1)?;
        }
        Ok(config)
    }

    pub(crate) fn settings(json: &str) -> PyResult<TrainConfig> {
        let t: Training = serde_json::from_str(json).map_err(json_err)?;
        let bad = |m: String| HourglassError::new_err(m);
        Ok(TrainConfig {
            epochs: t.epochs,
            batch_size: t.batch_size,
            lr: t.lr,
            optimizer: match t.optimizer.as_str() {
                "adam" => OptimizerConfig::adam(t.weight_decay),
                "sgd" => OptimizerConfig::sgd(t.momentum, t.nesterov, t.weight_decay),
                other => return Err(bad(format!("unknown optimizer `{other}`; expected adam or sgd"))),
            },
            schedule: Schedule::parse(&t.schedule).map_err(bad)?,
            warmup_epochs: t.warmup,
            clip_norm: t.clip_norm,
            valid_fraction: t.valid_fraction,
            patience: t.patience,
            seed: t.seed,
            scaling: t.scale.parse().map_err(bad)?,
            precision: t.precision.parse().map_err(bad)?,
            noise: t
                .noise
                .iter()
                .map(|n| Noise::parse(n))
                .collect::<Result<_, _>>()
                .map_err(bad)?,
            image_shape: None,
            max_norm: t.max_norm,
            freeze_epochs: t.freeze_epochs,
            binarize: t.binarize,
            unit_norm_decoder: t.unit_norm_decoder,
            tied_init: t.tied_init,
            pre_bias: t.pre_bias,
        })
    }
}

/// Training events as Python sees them: `("epoch_start", epoch, epochs, batches)`,
/// `("batch", batch, loss)`, `("epoch_end", stats_json)`.
pub(crate) enum Message {
    EpochStart(usize, usize, usize),
    Batch(usize, f64),
    EpochEnd(String),
}

impl Message {
    pub(crate) fn of(e: &hourglass::Event<'_>) -> Option<Self> {
        Some(match e {
            hourglass::Event::EpochStart { epoch, epochs, batches } => Message::EpochStart(*epoch, *epochs, *batches),
            hourglass::Event::Batch { batch, loss } => Message::Batch(*batch, *loss),
            hourglass::Event::EpochEnd(s) => Message::EpochEnd(serde_json::to_string(s).ok()?),
            _ => return None,
        })
    }

    pub(crate) fn call(self, py: Python<'_>, callback: &Py<PyAny>) -> PyResult<()> {
        match self {
            Message::EpochStart(e, n, b) => callback.call1(py, ("epoch_start", e, n, b)),
            Message::Batch(b, l) => callback.call1(py, ("batch", b, l)),
            Message::EpochEnd(s) => callback.call1(py, ("epoch_end", s)),
        }
        .map(|_| ())
    }
}

/// Runs a training call on its own thread while this one, without the GIL, waits for its
/// events: each goes to `progress` (with the GIL; batch events only when `batches`, since
/// waking Python for every batch costs time), and Ctrl-C (`KeyboardInterrupt`) stops
/// training cleanly at the next batch. Returns the report; an interrupted report says so.
pub(crate) fn train_watched<F>(
    py: Python<'_>,
    progress: Option<&Py<PyAny>>,
    batches: bool,
    train: F,
) -> PyResult<TrainReport>
where
    F: FnOnce(&mut (dyn FnMut(&hourglass::Event<'_>) -> Flow + Send)) -> hourglass::Result<TrainReport> + Send,
{
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Message>();
    let rx = Mutex::new(rx);
    let mut failure: Option<PyErr> = None;
    let outcome = std::thread::scope(|s| {
        let stop = &stop;
        let worker = s.spawn(move || {
            let mut on_event = |e: &hourglass::Event<'_>| {
                if let Some(m) = Message::of(e)
                    && (batches || !matches!(m, Message::Batch(..)))
                {
                    // The receiver lives until the worker is joined.
                    let _ = tx.send(m);
                }
                if stop.load(Ordering::Relaxed) {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            };
            train(&mut on_event)
        });
        loop {
            let got = py.detach(|| {
                rx.lock()
                    .expect("only this thread receives")
                    .recv_timeout(Duration::from_millis(50))
            });
            match got {
                Ok(m) => {
                    if let (Some(cb), None) = (progress, &failure)
                        && let Err(e) = m.call(py, cb)
                    {
                        // A callback that fails (or is interrupted) stops training.
                        stop.store(true, Ordering::Relaxed);
                        failure = Some(e);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if let Err(e) = py.check_signals() {
                stop.store(true, Ordering::Relaxed);
                // Ctrl-C ends training cleanly; anything else is raised after it ends.
                if !e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) && failure.is_none() {
                    failure = Some(e);
                }
            }
        }
        worker.join()
    });
    let report = match outcome {
        Ok(r) => r.map_err(py_err)?,
        Err(_) => return Err(HourglassError::new_err("internal error: training panicked")),
    };
    if let Some(e) = failure
        && !e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py)
    {
        return Err(e);
    }
    Ok(report)
}
