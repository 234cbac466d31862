//! Writing generated files into the output folder, safely.
//!
//! All files are first written to temporary files beside their targets and
//! synced; only when every one of them is written are they renamed into
//! place. A failed build therefore leaves the previous feeds as they were, a
//! reader never sees half a file, and a file whose bytes would not change is
//! not touched at all (its mtime stays, so caches and rsync stay quiet).

use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::feed::OutputFile;

/// What a write did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteReport {
    pub changed: usize,
    pub unchanged: usize,
}

pub fn write_files(dir: &Path, files: &[OutputFile]) -> Result<WriteReport> {
    let mut report = WriteReport::default();
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result: Result<()> = (|| {
        for file in files {
            let target = dir.join(safe_relative(&file.path)?);
            if fs::read(&target).is_ok_and(|old| old == file.bytes) {
                report.unchanged += 1;
                continue;
            }
            let parent = target.parent().expect("a joined path has a parent");
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create folder {}", parent.display()))?;
            let temp = temp_path(&target);
            write_synced(&temp, &file.bytes)
                .with_context(|| format!("cannot write {}", temp.display()))?;
            staged.push((temp, target));
        }
        Ok(())
    })();
    if let Err(e) = result {
        for (temp, _) in &staged {
            let _ = fs::remove_file(temp);
        }
        return Err(e.context("nothing was changed in the output folder"));
    }
    for (temp, target) in &staged {
        fs::rename(temp, target)
            .with_context(|| format!("cannot move {} into place", target.display()))?;
        report.changed += 1;
    }
    let mut folders: Vec<&Path> = staged.iter().filter_map(|(_, t)| t.parent()).collect();
    folders.dedup();
    for folder in folders {
        // Makes the renames durable; not every file system allows it.
        if let Ok(handle) = fs::File::open(folder) {
            let _ = handle.sync_all();
        }
    }
    Ok(report)
}

/// Writes `files` like [`write_files`], plus a manifest of them named
/// `manifest`; files listed in the previous manifest and not written now are
/// removed. Only files this function wrote before are ever removed.
pub fn write_owned_set(dir: &Path, manifest: &str, files: &[OutputFile]) -> Result<WriteReport> {
    let previous = fs::read_to_string(dir.join(manifest)).unwrap_or_default();
    let mut all = files.to_vec();
    let listing: String = files.iter().map(|f| format!("{}\n", f.path)).collect();
    all.push(OutputFile {
        path: manifest.to_owned(),
        bytes: listing.into_bytes(),
    });
    let report = write_files(dir, &all)?;
    let current: std::collections::HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for stale in previous
        .lines()
        .filter(|p| !p.is_empty() && !current.contains(p))
    {
        if let Ok(relative) = safe_relative(stale) {
            let _ = fs::remove_file(dir.join(relative));
        }
    }
    Ok(report)
}

/// Writes `bytes` to `path` and syncs them to disk.
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("file");
    target.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
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
