//! Writing files safely: to a temporary file in the same folder, then renamed into place, so a
//! failed write never leaves a half-written output.
//!
//! - Temporary files have random names, are created exclusively (never through a planted
//!   symbolic link) and are short (an output name of 255 bytes still has room).
//! - An output that is a device or a pipe (`-o /dev/null`, `-o /dev/stdout`) is written in
//!   place: renaming over it would replace the device with a regular file.
//! - Rewriting a file keeps its permissions.
//! - Live temporary files are listed in a registry, so a front end's signal handler can remove
//!   them ([`remove_temporaries`]) before it exits.
//! - Several outputs written together are all or nothing ([`Outputs`]).

use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Temporary files being written, for [`remove_temporaries`].
static LIVE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn live() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    LIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes every temporary file this process is writing (for a signal handler about to exit).
/// Returns how many were removed.
pub fn remove_temporaries() -> usize {
    let mut live = live();
    let n = live
        .iter()
        .filter(|p| std::fs::remove_file(p).is_ok() || std::fs::remove_dir_all(p).is_ok())
        .count();
    live.clear();
    n
}

/// The folder a file is written in.
fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether `path` is an existing device, pipe or socket (written in place, never replaced).
pub fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// A temporary file beside its destination, registered while it lives; removed on drop unless
/// persisted.
struct Temp {
    file: Option<tempfile::NamedTempFile>,
    path: PathBuf,
}

/// Why a temporary file or folder beside `dest` could not be made, in the destination's terms
/// (the temporary's own name would only confuse).
fn cannot_create(dest: &Path, e: &std::io::Error) -> Error {
    let dir = folder(dest);
    let cause = if dir.is_dir() {
        std::io::Error::from(e.kind())
    } else {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("folder {} does not exist", dir.display()),
        )
    };
    Error::io(dest, cause)
}

impl Temp {
    fn new(dest: &Path) -> Result<Temp> {
        use std::os::unix::fs::PermissionsExt;
        // Created 0666 less the umask, as a plain create would (tempfile's default is 0600).
        let file = tempfile::Builder::new()
            .prefix(".hourglass-")
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(folder(dest))
            .map_err(|e| cannot_create(dest, &e))?;
        let path = file.path().to_path_buf();
        live().insert(path.clone());
        Ok(Temp { file: Some(file), path })
    }

    /// Writes the content, flushes it to disk and gives the file the destination's permissions
    /// when it exists.
    fn fill(&mut self, dest: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
        let file = self.file.as_mut().expect("not persisted yet");
        let mut w = BufWriter::new(file.as_file_mut());
        write(&mut w)?;
        w.flush().map_err(|e| Error::io(dest, e))?;
        drop(w);
        if let Ok(meta) = std::fs::metadata(dest) {
            std::fs::set_permissions(&self.path, meta.permissions()).map_err(|e| Error::io(dest, e))?;
        }
        file.as_file().sync_all().map_err(|e| Error::io(dest, e))
    }

    /// Renames the file to `dest`.
    fn persist(mut self, dest: &Path) -> Result<()> {
        let file = self.file.take().expect("not persisted yet");
        let result = file.persist(dest).map(drop).map_err(|e| Error::io(dest, e.error));
        live().remove(&self.path);
        result
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        // An unpersisted NamedTempFile removes itself.
        drop(self.file.take());
        live().remove(&self.path);
    }
}

/// Writes a file atomically: `write` fills a temporary file beside `path`, which is renamed to
/// `path` only when everything succeeded. A device or pipe is written directly.
///
/// # Errors
/// [`Error::Io`] naming `path` when the folder is not writable or a write fails; whatever error
/// `write` returns. The temporary file is removed on failure.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    check_file_path(path)?;
    if is_special(path) {
        return write_in_place(path, write);
    }
    let mut tmp = Temp::new(path)?;
    tmp.fill(path, write)?;
    tmp.persist(path)
}

/// Writes `bytes` to `path` atomically, as [`write_atomic`].
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| w.write_all(bytes).map_err(io_at(path)))
}

fn check_file_path(path: &Path) -> Result<()> {
    if path.file_name().is_none() || path.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        ));
    }
    Ok(())
}

fn write_in_place(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::new(file);
    write(&mut w)?;
    w.flush().map_err(|e| Error::io(path, e))
}

/// Outputs written together, all or nothing: each is staged in a temporary file (or, for a
/// folder, a temporary folder) and nothing is renamed into place until [`Outputs::commit`].
/// Dropped without a commit, every staged file is removed.
#[derive(Default)]
pub struct Outputs {
    staged: Vec<(Temp, PathBuf)>,
    direct: Vec<PathBuf>,
}

impl Outputs {
    /// Nothing staged yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stages one file (a device or pipe is written at once: it cannot be staged).
    ///
    /// # Errors
    /// As [`write_atomic`].
    pub fn file(&mut self, path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
        check_file_path(path)?;
        if self.staged.iter().any(|(_, p)| p == path) || self.direct.iter().any(|p| p == path) {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "written twice by one command"),
            ));
        }
        if is_special(path) {
            self.direct.push(path.to_path_buf());
            return write_in_place(path, write);
        }
        let mut tmp = Temp::new(path)?;
        tmp.fill(path, write)?;
        self.staged.push((tmp, path.to_path_buf()));
        Ok(())
    }

    /// Renames every staged file into place.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file whose rename failed (the files staged after it are
    /// removed).
    pub fn commit(self) -> Result<()> {
        for (tmp, dest) in self.staged {
            tmp.persist(&dest)?;
        }
        Ok(())
    }
}

/// A file written in pieces (and sought back into, e.g. to finish a header) in a temporary file
/// beside its destination, renamed into place only at [`Staged::commit`]; dropped without a
/// commit, it is removed. For outputs produced as their inputs stream by.
pub struct Staged {
    tmp: Temp,
    dest: PathBuf,
}

impl Staged {
    /// A temporary file beside `dest` (a regular file's path: devices and pipes cannot be
    /// staged).
    ///
    /// # Errors
    /// [`Error::Io`] naming `dest` for a path that is not a regular file's, or a folder that
    /// is not writable.
    pub fn new(dest: &Path) -> Result<Staged> {
        check_file_path(dest)?;
        if is_special(dest) {
            return Err(Error::io(
                dest,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a device or pipe cannot be written in pieces",
                ),
            ));
        }
        Ok(Staged {
            tmp: Temp::new(dest)?,
            dest: dest.to_path_buf(),
        })
    }

    /// The destination.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The temporary file, to write (and seek) in.
    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.file.as_mut().expect("not persisted yet").as_file_mut()
    }

    /// Flushes the file to disk, gives it the destination's permissions when that exists, and
    /// renames it into place.
    ///
    /// # Errors
    /// [`Error::Io`] naming the destination.
    pub fn commit(mut self) -> Result<()> {
        let dest = self.dest.clone();
        self.tmp.fill(&dest, |_| Ok(()))?;
        self.tmp.persist(&dest)
    }
}

/// A temporary folder beside `dest`, registered for [`remove_temporaries`] while it lives and
/// removed (with what is in it) when dropped.
pub struct TempFolder {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl TempFolder {
    /// Makes the folder in `dest`'s parent.
    ///
    /// # Errors
    /// [`Error::Io`] naming `dest`.
    pub fn beside(dest: &Path) -> Result<TempFolder> {
        let dir = tempfile::Builder::new()
            .prefix(".hourglass-")
            .tempdir_in(folder(dest))
            .map_err(|e| cannot_create(dest, &e))?;
        let path = dir.path().to_path_buf();
        live().insert(path.clone());
        Ok(TempFolder { dir: Some(dir), path })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        drop(self.dir.take());
        live().remove(&self.path);
    }
}

/// Maps an I/O error while writing `path` to [`Error::Io`].
pub fn io_at(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_failed_write_leaves_nothing_and_a_good_one_keeps_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.csv");
        let e = write_atomic(&p, |w| {
            w.write_all(b"half").unwrap();
            Err(Error::Config("boom".into()))
        })
        .unwrap_err();
        assert!(e.to_string().contains("boom"));
        assert!(!p.exists() && hidden(dir.path()).is_empty());
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&p, |w| w.write_all(b"new").map_err(io_at(&p))).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(hidden(dir.path()).is_empty());
    }

    #[test]
    fn a_long_name_and_a_device_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x".repeat(255));
        write_atomic(&p, |w| w.write_all(b"1").map_err(io_at(&p))).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"1");
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode & 0o044,
                0o044,
                "a new file is readable by others as usual: {mode:o}"
            );
        }
        let null = Path::new("/dev/null");
        write_atomic(null, |w| w.write_all(b"gone").map_err(io_at(null))).unwrap();
        let meta = std::fs::metadata(null).unwrap();
        assert!(!meta.is_file(), "/dev/null is still a device");
    }

    #[test]
    fn a_planted_link_is_never_followed() {
        // The old temporary name was `.{name}.tmp-{pid}`, opened without O_EXCL: a symbolic link
        // planted there made the write land in the link's target.
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let out = dir.path().join("out.csv");
        std::os::unix::fs::symlink(&victim, dir.path().join(format!(".out.csv.tmp-{}", std::process::id()))).unwrap();
        write_atomic(&out, |w| w.write_all(b"new").map_err(io_at(&out))).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "new");
    }

    #[test]
    fn temporaries_are_registered_while_they_live() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        write_atomic(&p, |_| {
            let names = hidden(dir.path());
            assert_eq!(names.len(), 1, "{names:?}");
            assert!(live().iter().any(|t| t.starts_with(dir.path())));
            Ok(())
        })
        .unwrap();
        assert!(!live().iter().any(|t| t.starts_with(dir.path())));
    }

    #[test]
    fn outputs_are_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        let mut out = Outputs::new();
        out.file(&a, |w| w.write_all(b"a").map_err(io_at(&a))).unwrap();
        assert!(out.file(&b, |_| Err(Error::Config("late failure".into()))).is_err());
        drop(out);
        assert!(!a.exists() && !b.exists() && hidden(dir.path()).is_empty());
        let mut out = Outputs::new();
        out.file(&a, |w| w.write_all(b"a").map_err(io_at(&a))).unwrap();
        assert!(out.file(&a, |_| Ok(())).is_err(), "one path twice");
        out.file(&b, |w| w.write_all(b"b").map_err(io_at(&b))).unwrap();
        assert!(!a.exists());
        out.commit().unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"a");
        assert_eq!(std::fs::read(&b).unwrap(), b"b");
    }
}
