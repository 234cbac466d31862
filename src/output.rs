//! Writing generated files into the output folder, safely.
//!
//! All files are first written to temporary files beside their targets and
//! synced; only when every one of them is written are they renamed into
//! place. A failed build therefore leaves the previous feeds as they were, a
//! reader never sees half a file, and a file whose bytes would not change is
//! not touched at all (its mtime stays, so caches and rsync stay quiet).
//!
//! Others may be able to create files in the folder (it is served, or
//! shared): the temporary files are created exclusively under names nobody
//! can predict (`temp`), and what is already at a target's name is never
//! followed or opened for writing. A link there is replaced by the rename;
//! it is only read (to compare) when it is a plain file.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::temp::Temp;

/// A generated file, relative to the output folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Threads syncing files to disk at once.
const SYNC_THREADS: usize = 8;

/// What a write did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteReport {
    pub changed: usize,
    pub unchanged: usize,
    /// The paths (as added) of the files that were written, in the order
    /// they were added; the others already held their bytes.
    pub written: Vec<String>,
}

/// Files written beside their targets and moved into place together by
/// [`Staging::commit`]; dropped uncommitted, it removes what it wrote. Holds
/// paths only, so any number of large files can be staged.
pub struct Staging {
    dir: PathBuf,
    /// Sync each file to disk before it is moved into place.
    durable: bool,
    /// Temporary files, their targets, and the paths as added.
    staged: Vec<(Temp, PathBuf, String)>,
    /// Folders already cleared of stale temporary files.
    swept: HashSet<PathBuf>,
    /// Every path added, written or unchanged.
    paths: Vec<String>,
    pub report: WriteReport,
}

impl Staging {
    pub fn new(dir: &Path) -> Staging {
        Staging {
            dir: dir.to_path_buf(),
            durable: true,
            staged: Vec::new(),
            swept: HashSet::new(),
            paths: Vec::new(),
            report: WriteReport::default(),
        }
    }

    /// For files nobody serves or depends on after a crash (previews): still
    /// moved into place whole, but not synced one by one.
    pub fn scratch(dir: &Path) -> Staging {
        let mut staging = Staging::new(dir);
        staging.durable = false;
        staging
    }

    /// Stages `bytes` for `path` (relative to the folder), unless the file
    /// already holds exactly these bytes.
    pub fn add(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        let relative = safe_relative(path)?;
        no_symlink_between(&self.dir, relative)?;
        let target = self.dir.join(relative);
        self.paths.push(path.to_owned());
        let parent = target.parent().expect("a joined path has a parent");
        if self.swept.insert(parent.to_path_buf()) {
            crate::temp::sweep_stale(parent, false);
        }
        if read_plain_file(&target, bytes.len() as u64).is_some_and(|old| old == bytes) {
            self.report.unchanged += 1;
            return Ok(());
        }
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
        let (temp, mut file) =
            Temp::beside(&target).with_context(|| format!("cannot write {}", target.display()))?;
        let written = file.write_all(bytes);
        let context = || format!("cannot write {}", target.display());
        // Recorded first, so a failed write is cleaned up too.
        self.staged.push((temp, target.clone(), path.to_owned()));
        written.with_context(context)
    }

    /// Moves every staged file into place, durable ones synced to disk
    /// first (all of them, before any is moved). If one cannot be moved, the
    /// temporary files not yet moved are removed (when `self` drops).
    pub fn commit(mut self) -> Result<WriteReport> {
        if self.durable {
            // Syncs wait on the disk, not a core: many at once let the file
            // system batch them.
            let synced = crate::parallel::map(&self.staged, SYNC_THREADS, |(temp, _, _)| {
                open_plain(temp.path())
                    .and_then(|f| f.sync_all())
                    .with_context(|| format!("cannot write {}", temp.path().display()))
            });
            synced.into_iter().collect::<Result<Vec<()>>>()?;
        }
        let mut folders = std::collections::BTreeSet::new();
        let mut pending = std::mem::take(&mut self.staged).into_iter();
        let mut failed = None;
        while let Some((mut temp, target, path)) = pending.next() {
            if let Err(e) = temp.persist(&target) {
                failed = Some(
                    anyhow::Error::new(e)
                        .context(format!("cannot move {} into place", target.display())),
                );
                // This one and the rest are removed on drop.
                self.staged.push((temp, target, path));
                self.staged.extend(pending);
                break;
            }
            self.report.changed += 1;
            self.report.written.push(path);
            folders.extend(target.parent().map(Path::to_path_buf));
        }
        if self.durable {
            // Makes the renames durable; not every file system allows it.
            let folders: Vec<PathBuf> = folders.into_iter().collect();
            crate::parallel::map(&folders, SYNC_THREADS, |folder| {
                let _ = fs::File::open(folder).and_then(|f| f.sync_all());
            });
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(std::mem::take(&mut self.report)),
        }
    }

    /// Like [`Staging::commit`], and keeps a manifest of the added paths
    /// named `manifest`: files listed by the previous manifest and not added
    /// this time are removed. Only files listed there are ever removed.
    pub fn commit_owned_set(mut self, manifest: &str) -> Result<WriteReport> {
        let previous = read_plain_file(&self.dir.join(manifest), MANIFEST_BYTES)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default();
        let listing: String = self.paths.iter().map(|p| format!("{p}\n")).collect();
        let current: HashSet<String> = self.paths.iter().cloned().collect();
        self.add(manifest, listing.as_bytes())?;
        let dir = self.dir.clone();
        let report = self.commit()?;
        for stale in previous
            .lines()
            .filter(|p| !p.is_empty() && !current.contains(*p))
        {
            if let Ok(relative) = safe_relative(stale)
                && no_symlink_between(&dir, relative).is_ok()
            {
                let _ = fs::remove_file(dir.join(relative));
            }
        }
        Ok(report)
    }
}

/// Writes every file, all or none: nothing is moved into place unless all
/// of them could be written.
pub fn write_files(dir: &Path, files: &[OutputFile]) -> Result<WriteReport> {
    let mut staging = Staging::new(dir);
    for file in files {
        staging
            .add(&file.path, &file.bytes)
            .context("nothing was changed in the output folder")?;
    }
    staging.commit()
}

/// A manifest longer than this is not one bulletin wrote.
const MANIFEST_BYTES: u64 = 1 << 30;

/// Opens `path` for reading if it is a plain file: never through a link,
/// and without waiting on a FIFO or a device.
fn open_plain(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(std::io::Error::other("not a plain file"))
    }
}

/// The bytes of `path` if it is a plain file of at most `limit` bytes
/// (never through a link, never a FIFO or a device): for reading back what
/// bulletin wrote into a folder others may write to.
pub fn read_plain_file(path: &Path, limit: u64) -> Option<Vec<u8>> {
    let file = open_plain(path).ok()?;
    let size = file.metadata().ok()?.len();
    if size > limit {
        return None;
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= limit).then_some(bytes)
}

/// Refuses a path under `dir` whose folders include a symbolic link: it
/// could lead anywhere, and generated files stay inside the output folder.
/// (`dir` itself may be a link: the user chose it. A link as the final
/// file is fine: the rename replaces the link, never what it points to.)
pub fn no_symlink_between(dir: &Path, relative: &Path) -> Result<()> {
    let mut path = dir.to_path_buf();
    if let Some(parent) = relative.parent() {
        for component in parent.components() {
            path.push(component);
            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                bail!(
                    "refusing to write through the symlink {}: files are only written inside {}",
                    path.display(),
                    dir.display()
                );
            }
        }
    }
    Ok(())
}

/// Generated paths are relative and never climb out of the output folder.
fn safe_relative(path: &str) -> Result<&Path> {
    let p = Path::new(path);
    if p.components().all(|c| matches!(c, Component::Normal(_))) {
        Ok(p)
    } else {
        bail!("refusing to write {path:?}: it would leave the output folder")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_outside_the_folder() {
        assert!(safe_relative("feeds/a/rss.xml").is_ok());
        assert!(safe_relative("../x").is_err());
        assert!(safe_relative("/etc/passwd").is_err());
        assert!(safe_relative("feeds/./x").is_ok());
    }
}
