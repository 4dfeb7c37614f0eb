//! SIGINT and SIGTERM. While a command trains, the first signal asks the training loop to stop
//! after its batch (it then writes a checkpoint and the best model so far, and the command
//! exits with 128 + the signal's number); a second one, or a signal at any other time, removes
//! the temporary files of outputs being written and exits at once, leaving every output as it
//! was (outputs are renamed into place only when complete).

use signal_hook::consts::{SIGINT, SIGTERM};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Whether a training loop is listening for [`requested`].
static TRAINING: AtomicBool = AtomicBool::new(false);
/// The signal that asked training to stop (0: none).
static STOP: AtomicI32 = AtomicI32::new(0);

/// Starts the thread that takes the signals. Without it (it fails only when the process
/// cannot make threads or signal handlers) the signals keep their default action.
pub fn install() {
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            if TRAINING.load(Ordering::SeqCst) && STOP.load(Ordering::SeqCst) == 0 {
                STOP.store(sig, Ordering::SeqCst);
                note!(
                    "\n{}: stopping after this batch to save a checkpoint (send it again to quit at once)",
                    name(sig)
                );
                continue;
            }
            hourglass::fsutil::remove_temporaries();
            std::process::exit(128 + sig);
        }
    });
}

/// The signal that asked training to stop, if one did.
pub fn requested() -> Option<i32> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The signal's name.
pub fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

/// While alive, a signal asks training to stop instead of ending the process.
pub struct Training(());

impl Training {
    pub fn start() -> Self {
        TRAINING.store(true, Ordering::SeqCst);
        Training(())
    }
}

impl Drop for Training {
    fn drop(&mut self) {
        TRAINING.store(false, Ordering::SeqCst);
    }
}

/// A command that stopped on a signal after saving what it could: the process exits with
/// 128 + the signal's number.
#[derive(Debug)]
pub struct Interrupted(pub i32);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted by {}", name(self.0))
    }
}

impl std::error::Error for Interrupted {}
