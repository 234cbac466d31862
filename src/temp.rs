//! Temporary files beside the files they will become.
//!
//! Every file bulletin writes into a folder others may share (the output
//! folder, a dry-run folder, the build cache) is first written to a
//! temporary file in the same folder and then renamed over its target. This
//! module owns those temporary files:
//!
//! - each is created exclusively (`O_CREAT | O_EXCL`, so never through a
//!   link or file already at its name) under a name nobody can predict:
//!   `.<name>.<pid>.<random>.tmp`;
//! - the live ones are kept in one process-wide set, so that an interrupted
//!   run can remove them ([`remove_live`], called by the signal handler in
//!   `signals`) and a temporary file is never created after that cleanup;
//! - [`sweep_stale`] removes the temporary files that runs which died
//!   without cleaning up (SIGKILL, a power cut) left in a folder: those of
//!   a pid that no longer runs, or older than a day.
//!
//! It must not decide anything about signals or exit codes (that is the
//! edge's job), nor touch a file it did not name.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

/// Temporary files of this process that exist now.
static LIVE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// A temporary file older than this is stale whoever made it: no run
/// stages a file for a day, and a pid may have been reused meanwhile.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Random characters in a temporary name.
const RANDOM_CHARS: usize = 6;

/// At most this many bytes of the target's name go into the temporary
/// name, so that the name stays within a file system's 255.
const NAME_BYTES: usize = 200;

fn live() -> MutexGuard<'static, BTreeSet<PathBuf>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A temporary file beside its target. Dropped without [`Temp::persist`],
/// it removes itself.
#[derive(Debug)]
pub struct Temp {
    path: Option<tempfile::TempPath>,
}

impl Temp {
    /// Creates `.<name>.<pid>.<random>.tmp` in `target`'s folder,
    /// exclusively, with the permissions a plain write would give
    /// (0666 less the umask), and registers it for removal if the run is
    /// interrupted.
    pub fn beside(target: &Path) -> io::Result<(Temp, File)> {
        let folder = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_owned());
        let mut cut = name.len().min(NAME_BYTES);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        let prefix = format!(".{}.{}.", &name[..cut], std::process::id());
        let mut builder = tempfile::Builder::new();
        builder
            .prefix(&prefix)
            .suffix(".tmp")
            .rand_bytes(RANDOM_CHARS);
        // O_CREAT | O_EXCL (tempfile retries another name if one exists),
        // opened here so that a failure is the plain OS error.
        let create = |path: &Path| {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o666);
            options.open(path)
        };
        // Created and registered under the lock: after `remove_live` has
        // taken it for good, no temporary file appears.
        let mut live = live();
        let (file, path) = builder.make_in(folder, create)?.into_parts();
        live.insert(path.to_path_buf());
        Ok((Temp { path: Some(path) }, file))
    }

    pub fn path(&self) -> &Path {
        self.path.as_deref().expect("a temporary file has a path")
    }

    /// Renames the file over `target` (a link there is replaced, never
    /// followed). On failure the temporary file stays, and goes on drop.
    pub fn persist(&mut self, target: &Path) -> io::Result<()> {
        let path = self.path.take().expect("persisted once");
        let mut live = live();
        let key = path.to_path_buf();
        match path.persist(target) {
            Ok(()) => {
                live.remove(&key);
                Ok(())
            }
            Err(e) => {
                self.path = Some(e.path);
                Err(e.error)
            }
        }
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let mut live = live();
            let key = path.to_path_buf();
            let _ = path.close();
            live.remove(&key);
        }
    }
}

/// Removes every live temporary file of this process and keeps them from
/// being created, renamed or removed by anyone else until `then` returns
/// (which is meant to end the process).
pub fn remove_live<R>(then: impl FnOnce() -> R) -> R {
    let live = live();
    for path in live.iter() {
        let _ = std::fs::remove_file(path);
    }
    let result = then();
    drop(live);
    result
}

/// The pid in a temporary name bulletin made: `.<name>.<pid>.<random>.tmp`,
/// or `.<name>.<pid>.tmp` (the names of earlier versions). With
/// `undotted`, also without the leading dot (the build cache's old names,
/// `<key>.<pid>.tmp` and `<key>.ids.<pid>.tmp`): only for folders that hold
/// nothing but bulletin's own files.
fn temp_pid(name: &str, undotted: bool) -> Option<u32> {
    let stem = name.strip_suffix(".tmp")?;
    let stem = match stem.strip_prefix('.') {
        Some(rest) => rest,
        None if undotted => stem,
        None => return None,
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    let (rest, last) = stem.rsplit_once('.')?;
    // `<pid>.<random>` when the last part could be random characters and
    // the one before is a number (the random part may be all digits); else
    // the last part is the pid.
    let random = last.len() == RANDOM_CHARS && last.bytes().all(|b| b.is_ascii_alphanumeric());
    let (name, pid) = match rest.rsplit_once('.') {
        Some((name, pid)) if random && digits(pid) => (name, pid),
        _ => (rest, last),
    };
    (!name.is_empty() && digits(pid))
        .then(|| pid.parse().ok())
        .flatten()
}

/// Whether `pid` is a running process: `None` where that cannot be told
/// (no `/proc`).
fn running(pid: u32) -> Option<bool> {
    if !Path::new("/proc/self").exists() {
        return None;
    }
    Some(Path::new("/proc").join(pid.to_string()).exists())
}

/// Removes from `folder` (not below it) the temporary files of runs that
/// ended without cleaning up: names bulletin makes whose pid is not
/// running, or older than a day. Never a folder, never this process's own
/// live files; errors are ignored (a stale file only costs space).
pub fn sweep_stale(folder: &Path, undotted: bool) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    let me = std::process::id();
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| temp_pid(n, undotted)) else {
            continue;
        };
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            continue;
        }
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > STALE_AFTER);
        let dead = pid != me && running(pid) == Some(false);
        if (dead || old) && !live().contains(&entry.path()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised() {
        assert_eq!(temp_pid(".rss.xml.123.aB3xY9.tmp", false), Some(123));
        assert_eq!(temp_pid(".rss.xml.123.tmp", false), Some(123));
        assert_eq!(temp_pid(".a@b.c.eml.77.tmp", false), Some(77));
        // Six digits are a pid, unless a number comes before them.
        assert_eq!(temp_pid(".rss.xml.123456.tmp", false), Some(123456));
        assert_eq!(temp_pid(".rss.xml.99.123456.tmp", false), Some(99));
        assert_eq!(temp_pid("0123abcd.ids.42.tmp", true), Some(42));
        assert_eq!(temp_pid("0123abcd.42.tmp", true), Some(42));
        for other in [
            "0123abcd.42.tmp",
            "notes.tmp",
            ".rss.xml.tmp",
            ".rss.xml.12x.tmp",
            ".123.tmp",
            "..123.tmp",
            ".rss.xml.123.tmp.bak",
            ".x.1.toolong7.tmp",
            ".x.aB3xY9.tmp",
            ".x.99999999999.tmp",
        ] {
            assert_eq!(temp_pid(other, false), None, "{other}");
        }
    }

    #[test]
    fn a_temporary_file_is_created_exclusively_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("rss.xml");
        let (temp, _file) = Temp::beside(&target).unwrap();
        let name = temp
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(temp_pid(&name, false), Some(std::process::id()));
        assert!(live().contains(temp.path()));
        let path = temp.path().to_path_buf();
        drop(temp);
        assert!(!path.exists());
        assert!(!live().contains(&path));
    }

    #[test]
    fn persisting_replaces_a_link_at_the_target() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let target = dir.path().join("feed.xml");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        let (mut temp, mut file) = Temp::beside(&target).unwrap();
        file.write_all(b"new").unwrap();
        temp.persist(&target).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert!(!std::fs::symlink_metadata(&target).unwrap().is_symlink());
    }

    #[test]
    fn long_target_names_give_valid_temporary_names() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join(format!("{}.eml", "é".repeat(120)));
        let (temp, _file) = Temp::beside(&target).unwrap();
        assert!(temp.path().file_name().unwrap().len() <= 255);
    }
}
