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
const OVERRIDES: [(&str, bool); 4] = [
    ("--threads", true),
    ("--quiet", false),
    ("--checkpoint", true),
    ("--checkpoint-every", true),
];

/// A command line split for replaying.
struct Split {
    /// The flags of [`OVERRIDES`], each as its name (`-q` spelled `--quiet`) and its words.
    overrides: Vec<(&'static str, Vec<OsString>)>,
    /// `--resume`'s value.
    resume: Option<OsString>,
    /// Everything else, in order (the subcommand first).
    rest: Vec<OsString>,
}

impl Split {
    /// Splits `args` (without the program).
    fn of(args: &[OsString]) -> Split {
        let mut split = Split {
            overrides: Vec::new(),
            resume: None,
            rest: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let s = a.to_string_lossy();
            let (key, inline) = s.split_once('=').map_or((&*s, false), |(k, _)| (k, true));
            if key == "--resume" {
                split.resume = if inline {
                    s.split_once('=').map(|(_, v)| OsString::from(v))
                } else {
                    it.next().cloned()
                };
                continue;
            }
            let key = if key == "-q" { "--quiet" } else { key };
            match OVERRIDES.iter().find(|(k, _)| *k == key) {
                Some((name, takes)) => {
                    let mut words = vec![a.clone()];
                    if *takes
                        && !inline
                        && let Some(v) = it.next()
                    {
                        words.push(v.clone());
                    }
                    split.overrides.push((name, words));
                }
                None => split.rest.push(a.clone()),
            }
        }
        split
    }

    /// The words of the overrides, in order.
    fn override_words(&self) -> impl Iterator<Item = &OsString> {
        self.overrides.iter().flat_map(|(_, words)| words)
    }
}

/// Remembers `args` (with the program) without `--resume`, and the current folder, for the
/// checkpoints this run writes.
fn remember(args: &[OsString]) {
    let split = Split::of(&args[1..]);
    let words: Option<Vec<String>> = split
        .rest
        .iter()
        .chain(split.override_words())
        .map(|a| a.to_str().map(str::to_owned))
        .collect();
    let dir = std::env::current_dir().ok().and_then(|d| d.to_str().map(str::to_owned));
    // A command that is not UTF-8 cannot be stored; such a checkpoint needs the full arguments.
    let _ = COMMAND.set(match (words, dir) {
        (Some(words), Some(dir)) => serde_json::json!({ "args": words, "dir": dir }),
        _ => serde_json::Value::Null,
    });
}

/// The command line to run: `hourglass train --resume PATH` (with only [`OVERRIDES`] beside
/// it) becomes the checkpointed run's own arguments, run in its folder; anything else is
/// returned as it is. Remembers the result for the checkpoints this run writes.
///
/// # Errors
/// A checkpoint that cannot be read or holds no command, or a folder that is gone.
pub fn command_line(args: Vec<OsString>) -> Result<Vec<OsString>> {
    let given = Split::of(args.get(1..).unwrap_or_default());
    let bare = matches!(&given.rest[..], [cmd] if cmd == "train" || cmd == "finetune");
    let Some(resume) = given.resume.clone().filter(|_| bare) else {
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
    let stored = Split::of(&stored_args);
    if stored.rest.first() != given.rest.first() {
        bail!(
            "{}: the checkpoint is of `hourglass {}`, not `{}`",
            path.display(),
            stored.rest.first().map_or("?".into(), |a| a.to_string_lossy()),
            given.rest[0].to_string_lossy()
        );
    }
    std::env::set_current_dir(dir)
        .with_context(|| format!("{}: cannot enter the run's folder {dir}", path.display()))?;
    // The stored arguments, less the flags given anew, then those flags and --resume.
    let anew = |name: &str| given.overrides.iter().any(|(n, _)| *n == name);
    let mut out = vec![args[0].clone()];
    out.extend(stored.rest.iter().cloned());
    for (name, words) in &stored.overrides {
        if !anew(name) {
            out.extend(words.iter().cloned());
        }
    }
    out.extend(given.override_words().cloned());
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
        hourglass::fsutil::write_bytes(path, kept.as_bytes()).with_context(cannot)?;
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

    /// After training that a signal stopped (the report says `interrupted`): saves the `what`
    /// (model, classifier) that the `finished` epochs of the `planned` made, through `save`, when
    /// one finished (it holds the weights of epoch `best`), says so, and [`Session::finish`]es.
    ///
    /// # Errors
    /// As `save` and [`Session::finish`].
    pub fn stopped(
        self,
        (finished, best, planned): (usize, usize, usize),
        what: &str,
        output: &Path,
        save: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        if finished > 0 {
            save()?;
            note!(
                "saved the {what} of epoch {best} ({finished} of {planned} finished) to {}",
                output.display()
            );
        } else {
            note!("no epoch finished: no {what} saved");
        }
        self.finish(true)
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
