//! The run lock: one `digest --send` at a time per state database.

use std::path::Path;

use anyhow::{Context, anyhow};

use crate::Failure;

/// An exclusive lock held for the whole run; the OS releases it when the
/// process ends, however it ends.
pub struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    /// Takes the lock beside the state database `state`, or fails with
    /// [`Failure::Busy`] when another run holds it.
    pub fn take(state: &Path) -> Result<RunLock, Failure> {
        let path = state.with_extension("lock");
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Failure::Busy(format!(
                "another `bulletin digest --send` is running (it holds {}); nothing was sent by this one",
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(anyhow!(e)
                .context(format!("cannot lock {}", path.display()))
                .into()),
        }
    }
}
