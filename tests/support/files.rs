//! Folders read back: the files under a folder, a [`Snapshot`] of their
//! bytes and times (to prove that nothing was written), and small file
//! helpers. Symlinks are listed as they are, never followed.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The bytes of a file; panics naming it.
pub fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Everything under `dir` that is not a folder (files, and symlinks, which
/// are not followed), as sorted `/`-separated relative paths; empty when
/// `dir` does not exist.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let entry = entry.expect("read a folder entry");
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().expect("a file type").is_dir() {
                walk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

/// The bytes of every file under `dir` (see [`files_under`]), by relative path.
pub fn read_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|rel| {
            let bytes = read(&dir.join(&rel));
            (rel, bytes)
        })
        .collect()
}

/// Copies the files under `from` into `to`, creating folders.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create folder");
    for rel in files_under(from) {
        let target = to.join(&rel);
        fs::create_dir_all(target.parent().expect("a file has a folder")).expect("create folder");
        fs::copy(from.join(&rel), &target)
            .unwrap_or_else(|e| panic!("copy {}: {e}", target.display()));
    }
}

/// A folder's files: bytes and modification time, or for a symlink its
/// target (and no time).
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot(BTreeMap<String, (Vec<u8>, Option<SystemTime>)>);

impl Snapshot {
    pub fn of(dir: &Path) -> Snapshot {
        let files = files_under(dir)
            .into_iter()
            .map(|rel| {
                let path = dir.join(&rel);
                let meta = fs::symlink_metadata(&path).expect("metadata");
                let entry = if meta.file_type().is_symlink() {
                    let target = fs::read_link(&path).expect("read a link");
                    (target.display().to_string().into_bytes(), None)
                } else {
                    (read(&path), meta.modified().ok())
                };
                (rel, entry)
            })
            .collect();
        Snapshot(files)
    }

    /// The relative paths, sorted.
    pub fn paths(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    /// The bytes of `rel`.
    #[track_caller]
    pub fn bytes(&self, rel: &str) -> &[u8] {
        &self
            .0
            .get(rel)
            .unwrap_or_else(|| panic!("{rel} is not in the snapshot"))
            .0
    }

    /// The relative paths whose bytes or time differ between `self` and
    /// `after` (including paths in only one of them).
    pub fn changed(&self, after: &Snapshot) -> Vec<String> {
        let mut names: Vec<&String> = self.0.keys().chain(after.0.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter(|n| self.0.get(*n) != after.0.get(*n))
            .cloned()
            .collect()
    }

    /// Asserts `dir` still holds exactly this.
    #[track_caller]
    pub fn assert_same(&self, dir: &Path, what: &str) {
        let now = Snapshot::of(dir);
        assert_eq!(
            now.paths(),
            self.paths(),
            "{what}: files were added or removed in {}",
            dir.display()
        );
        for (path, (bytes, mtime)) in &self.0 {
            let (now_bytes, now_mtime) = &now.0[path];
            assert!(now_bytes == bytes, "{what}: {path} was rewritten");
            assert_eq!(now_mtime, mtime, "{what}: {path} was touched");
        }
    }
}

/// Sets every file under `dir` to a time far in the past, so that any
/// rewrite afterwards shows in its modification time whatever the file
/// system's timestamp granularity (no sleeping, no timing assumptions).
pub fn age_files(dir: &Path) {
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for rel in files_under(dir) {
        let file = fs::File::options()
            .write(true)
            .open(dir.join(&rel))
            .expect("open for set_modified");
        file.set_modified(old).expect("set mtime");
    }
}

/// `chmod MODE path`.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Where `needle` first occurs in `haystack`.
pub fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether `needle` occurs in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && find_bytes(haystack, needle).is_some()
}
