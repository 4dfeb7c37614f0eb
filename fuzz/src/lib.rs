//! Helpers shared by the fuzz targets: most readers take a path (they name it in their errors
//! and choose the format from its extension), so each input is written to a file in a
//! per-process scratch folder first.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The memory the readers may plan for while fuzzing. A reader that allocates far more than
/// this for a small input without asking [`hourglass::bounds`] trips libFuzzer's RSS limit
/// (`-rss_limit_mb`, set by `scripts/fuzz`), which counts as a crash. Kept small so that an
/// input whose honest reading is merely large (a 362-byte JPEG declaring 7168 x 32805 pixels
/// decodes, within a 256 MB limit, in 7 s) is refused at once instead of timing out: the
/// work of reading is linear in what the limit admits.
pub const MEMORY_LIMIT: &str = "32M";

fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // SAFETY: set once, before any thread reads the environment (libFuzzer runs targets
        // on one thread, and this runs on the first input).
        unsafe { std::env::set_var("HOURGLASS_MEMORY_LIMIT", MEMORY_LIMIT) };
        // libFuzzer's hook aborts on every panic; the Parquet reader catches the `parquet`
        // crate's panics on damaged files and returns errors, so those are let through.
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !hourglass::data::parquet::catching_panics() {
                abort(info);
            }
        }));
        let base = std::env::var_os("HOURGLASS_FUZZ_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let dir = base.join(format!("hourglass-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        dir
    })
}

/// Sets the memory limit (and makes the scratch folder) for a target that writes no file.
pub fn setup() {
    scratch();
}

/// Writes `data` to `name` in the scratch folder and returns its path.
pub fn file(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, data).expect("scratch file");
    path
}

/// A fresh empty folder `name` in the scratch folder.
pub fn folder(name: &str) -> PathBuf {
    let path = scratch().join(name);
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).expect("scratch folder");
    path
}

/// Splits the first byte off as a selector.
pub fn split(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(&b, rest)| (b, rest))
}
