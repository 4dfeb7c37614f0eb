//! What the commands that train share around the training loop: checkpoints (when, where,
//! and the command that resumes them), the `--log` file written as epochs end, and stopping
//! on SIGINT/SIGTERM.

use crate::args::{CheckpointArgs, Every};
use crate::signals;
use anyhow::{Context, Result, bail};
use hourglass::{Checkpoint, EpochStats, Event, Flow};
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

/// The command line as run (after a bare `--resume` was expanded) and its folder: stored in
/// checkpoints so that `--resume PATH` alone can replay it.
static COMMAND: OnceLock<serde_json::Value> = OnceLock::new();

/// The flags a bare `--resume` may give anew (`true`: takes a value).
const OVERRIDES: [(&str, bool); 5] = [
    ("--threads", true),
    ("--quiet", false),
    ("-q", false),
    ("--checkpoint", true),
    ("--checkpoint-every", true),
];

/// Splits `args` (without the program) into the flags of [`OVERRIDES`] (and `--resume`'s
/// value) and the rest.
fn split_overrides(args: &[OsString]) -> (Vec<OsString>, Option<OsString>, Vec<OsString>) {
    let (mut overrides, mut resume, mut rest) = (Vec::new(), None, Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        let key = s.split_once('=').map_or(&*s, |(k, _)| k);
        if key == "--resume" {
            resume = match s.split_once('=') {
                Some((_, v)) => Some(OsString::from(v)),
                None => it.next().cloned(),
            };
            continue;
        }
        match OVERRIDES.iter().find(|(k, _)| *k == key) {
            Some((_, takes)) => {
                overrides.push(a.clone());
                if *takes
                    && !s.contains('=')
                    && let Some(v) = it.next()
                {
                    overrides.push(v.clone());
                }
            }
            None => rest.push(a.clone()),
        }
    }
    (overrides, resume, rest)
}

/// The command line to run: `hourglass train --resume PATH` (with only [`OVERRIDES`] beside
/// it) becomes the checkpointed run's own arguments, run in its folder; anything else is
/// returned as it is. Remembers the result for the checkpoints this run writes.
///
/// # Errors
/// A checkpoint that cannot be read or holds no command, or a folder that is gone.
pub fn command_line(args: Vec<OsString>) -> Result<Vec<OsString>> {
    let remember = |args: &[OsString]| {
        let strings: Option<Vec<String>> = args[1..].iter().map(|a| a.to_str().map(str::to_owned)).collect();
        let (_, _, rest) = split_overrides(&args[1..]);
        let dir = std::env::current_dir().ok().and_then(|d| d.to_str().map(str::to_owned));
        // Store the arguments without --resume: replaying adds it.
        let _ = COMMAND.set(match (strings, dir) {
            (Some(_), Some(dir)) => {
                let (overrides, _, _) = split_overrides(&args[1..]);
                let keep: Vec<String> = rest
                    .iter()
                    .chain(&overrides)
                    .filter_map(|a| a.to_str().map(str::to_owned))
                    .collect();
                serde_json::json!({ "args": keep, "dir": dir })
            }
            _ => serde_json::Value::Null,
        });
    };
    let (overrides, resume, rest) = split_overrides(args.get(1..).unwrap_or_default());
    let bare = matches!(&rest[..], [cmd] if cmd == "train" || cmd == "finetune");
    let Some(resume) = resume.filter(|_| bare) else {
        remember(&args);
        return Ok(args);
    };
    let path = std::path::absolute(&resume).unwrap_or_else(|_| PathBuf::from(&resume));
    let ck = Checkpoint::load(&path)?;
    let stored: serde_json::Value = serde_json::from_str(ck.note()).unwrap_or_default();
    let (Some(stored_args), Some(dir)) = (stored["args"].as_array(), stored["dir"].as_str()) else {
        bail!(
            "{}: the checkpoint holds no command to replay; give the run's full arguments with --resume",
            path.display()
        );
    };
    let stored_args: Vec<OsString> = stored_args
        .iter()
        .filter_map(|a| a.as_str().map(OsString::from))
        .collect();
    if stored_args.first() != rest.first() {
        bail!(
            "{}: the checkpoint is of `hourglass {}`, not `{}`",
            path.display(),
            stored_args.first().map_or("?".into(), |a| a.to_string_lossy()),
            rest[0].to_string_lossy()
        );
    }
    std::env::set_current_dir(dir)
        .with_context(|| format!("{}: cannot enter the run's folder {dir}", path.display()))?;
    // The stored arguments, less the flags given anew, then those flags and --resume.
    let given: Vec<String> = overrides
        .iter()
        .filter_map(|a| a.to_str())
        .filter(|a| a.starts_with('-'))
        .map(|a| a.split_once('=').map_or(a, |(k, _)| k).to_owned())
        .collect();
    let mut out = vec![args[0].clone()];
    let mut it = stored_args.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        let key = s.split_once('=').map_or(&*s, |(k, _)| k).to_owned();
        match OVERRIDES.iter().find(|(k, _)| *k == key) {
            Some((_, takes)) if given.contains(&key) || (key == "-q" && given.iter().any(|g| g == "--quiet")) => {
                if *takes && !s.contains('=') {
                    it.next();
                }
            }
            _ => out.push(a.clone()),
        }
    }
    out.extend(overrides);
    out.push("--resume".into());
    out.push(path.into_os_string());
    remember(&out);
    Ok(out)
}

/// The `--log` file: one JSON line per epoch, written and flushed as the epoch ends.
struct Log {
    path: PathBuf,
    file: std::fs::File,
}

impl Log {
    /// Creates the log, or on resume keeps its lines of the epochs before the checkpoint's
    /// and continues it.
    fn open(path: &Path, resume: Option<&Checkpoint>) -> Result<Log> {
        let cannot = || format!("cannot write log {}", path.display());
        let kept = match (resume, std::fs::read_to_string(path)) {
            (Some(ck), Ok(text)) => text
                .lines()
                .filter(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v["epoch"].as_u64())
                        .is_some_and(|e| (e as usize) < ck.epoch())
                })
                .map(|l| format!("{l}\n"))
                .collect(),
            _ => String::new(),
        };
        hourglass::fsutil::write_atomic(path, |w| {
            w.write_all(kept.as_bytes()).map_err(hourglass::fsutil::io_at(path))
        })
        .with_context(cannot)?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(cannot)?;
        Ok(Log {
            path: path.to_owned(),
            file,
        })
    }

    fn write(&mut self, s: &EpochStats) -> Result<()> {
        let line = serde_json::to_string(s).context("epoch statistics")?;
        writeln!(self.file, "{line}")
            .and_then(|()| self.file.flush())
            .with_context(|| format!("cannot write log {}", self.path.display()))
    }
}

/// Checkpoints, the log and signals for one training run.
pub struct Session {
    command: &'static str,
    path: PathBuf,
    every: Option<Every>,
    last: Instant,
    saved: Option<(usize, usize)>,
    failed: Option<anyhow::Error>,
    log: Option<Log>,
    _training: signals::Training,
}

impl Session {
    /// For `command` (train, finetune) writing `output`: checkpoints as `args` say (on a
    /// signal only, to `OUTPUT.checkpoint`, without --checkpoint), the log at `log`.
    ///
    /// # Errors
    /// A checkpoint folder that does not exist; a log that cannot be written.
    pub fn new(
        command: &'static str,
        args: &CheckpointArgs,
        output: &Path,
        log: Option<&Path>,
        resume: Option<&Checkpoint>,
    ) -> Result<Session> {
        let path = args.checkpoint.clone().unwrap_or_else(|| {
            let mut p = output.as_os_str().to_owned();
            p.push(".checkpoint");
            PathBuf::from(p)
        });
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            bail!(
                "cannot write checkpoint {}: folder {} does not exist",
                path.display(),
                dir.display()
            );
        }
        let log = log.map(|p| Log::open(p, resume)).transpose()?;
        Ok(Session {
            command,
            path,
            every: args.checkpoint.is_some().then_some(args.checkpoint_every),
            last: Instant::now(),
            saved: None,
            failed: None,
            log,
            _training: signals::Training::start(),
        })
    }

    /// Takes a training event (after the progress display): saves checkpoints, writes the
    /// log, and answers whether to go on, stop (a signal came) or offer a checkpoint.
    pub fn on(&mut self, e: &Event<'_>) -> Flow {
        match e {
            Event::Checkpoint(ck) => {
                self.save(ck);
                return Flow::Continue;
            }
            Event::EpochEnd(s) => {
                if let Some(log) = &mut self.log
                    && let Err(err) = log.write(s)
                {
                    self.failed.get_or_insert(err);
                    self.log = None;
                }
            }
            _ => {}
        }
        if signals::requested().is_some() {
            return Flow::Stop;
        }
        match (e, self.every) {
            (Event::Batch { .. }, Some(Every::Seconds(t))) if self.last.elapsed().as_secs_f64() >= t => {
                Flow::Checkpoint
            }
            (Event::EpochEnd(s), Some(Every::Epochs(n))) if s.epoch % n == 0 => Flow::Checkpoint,
            _ => Flow::Continue,
        }
    }

    fn save(&mut self, ck: &Checkpoint) {
        let note = COMMAND.get().map(ToString::to_string).unwrap_or_default();
        match ck.save_noted(&self.path, &note) {
            Ok(()) => self.saved = Some((ck.epoch(), ck.next_batch())),
            Err(e) => {
                self.failed
                    .get_or_insert(anyhow::Error::new(e).context("cannot save the checkpoint"));
            }
        }
        self.last = Instant::now();
    }

    /// After training and after the model was saved: the first checkpoint or log error, or,
    /// when a signal stopped training, where the checkpoint is and how to resume it
    /// ([`signals::Interrupted`], exit 128 + the signal).
    ///
    /// # Errors
    /// As said.
    pub fn finish(mut self, interrupted: bool) -> Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if interrupted && let Some(sig) = signals::requested() {
            match self.saved {
                Some((epoch, batch)) => note!(
                    "checkpoint: {} (continues at epoch {epoch}, batch {}); resume with: hourglass {} --resume {}",
                    self.path.display(),
                    batch + 1,
                    self.command,
                    self.path.display()
                ),
                None => note!("no checkpoint was saved"),
            }
            return Err(signals::Interrupted(sig).into());
        }
        Ok(())
    }
}
