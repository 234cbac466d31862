//! The run lock: one `digest --send` at a time per state database.
//!
//! The lock is an OS lock (`flock`) on the database file itself, so every
//! way of reaching that file — a symlink (`releases/N/.bulletin/state.sqlite
//! -> shared/`), a hard link, a bind mount, another working directory —
//! meets the same lock, and no file can be deleted to get past it short of
//! the database. The OS releases it when the process ends, however it
//! ends. A run of an earlier release locked only a `.lock` file beside the
//! state path as written; that lock is taken too, so the two never send at
//! once either.
//!
//! The lock is also what lets a run take over the claims of runs that died
//! ([`RunLock::reclaim`]): while it is held, no other run is alive.
//!
//! A PostgreSQL ledger takes no file lock ([`RunLock::Shared`]): any
//! number of runs send from it at once, each holding an advisory lock on
//! its own run id for as long as its session lives, and a run takes back
//! only the claims of runs whose lock is gone (`ledger::postgres`).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use anyhow::{Context, anyhow};

use crate::Failure;
use crate::ledger::Ledger;
use crate::model::State;

/// What a run holds for its whole length. Drop it only after every
/// connection to the database is closed: closing a descriptor of a file
/// releases the process's POSIX locks on it, SQLite's included.
pub enum RunLock {
    /// SQLite: an exclusive lock on the database file (and the legacy
    /// `.lock` file); one run at a time.
    File { _database: File, _legacy: File },
    /// PostgreSQL: shared by every run; each run's own advisory lock lives
    /// in its ledger session.
    Shared,
}

impl RunLock {
    /// The lock for the ledger `state` names: [`RunLock::take`] on an
    /// SQLite file, [`RunLock::Shared`] on PostgreSQL.
    pub fn take_for(state: &State) -> Result<RunLock, Failure> {
        match state {
            State::Sqlite(path) => RunLock::take(path),
            State::Postgres(_) => Ok(RunLock::Shared),
        }
    }

    /// Takes the lock on the state database `state` (creating the file,
    /// empty, when there is none yet), or fails with [`Failure::Busy`] when
    /// another run holds it.
    pub fn take(state: &Path) -> Result<RunLock, Failure> {
        if let Some(folder) = state.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
        let database = match File::open(state) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(state)
                .with_context(|| format!("cannot create the state database {}", state.display()))?,
            Err(e) => {
                return Err(anyhow!(e)
                    .context(format!(
                        "cannot open the state database {}",
                        state.display()
                    ))
                    .into());
            }
        };
        lock(&database, state, state)?;
        let legacy = state.with_extension("lock");
        let legacy_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&legacy)
            .with_context(|| format!("cannot open the lock file {}", legacy.display()))?;
        lock(&legacy_file, &legacy, state)?;
        Ok(RunLock::File {
            _database: database,
            _legacy: legacy_file,
        })
    }

    /// Releases the claims of runs that ended without releasing them
    /// (killed, crashed): holding a file lock, the caller knows no other
    /// run is alive; on a shared ledger, the ledger finds which runs are
    /// gone. Returns how many messages came back.
    pub fn reclaim(&self, ledger: &mut dyn Ledger) -> Result<usize, Failure> {
        Ok(ledger.release_abandoned()?)
    }
}

/// Locks `file` (at `path`) for the run on `state`.
fn lock(file: &File, path: &Path, state: &Path) -> Result<(), Failure> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(Failure::Busy(format!(
            "another `bulletin digest --send` is sending from the state database {}; \
             nothing was sent by this one. Its lock ends with it, however it ends: \
             run again once it is done",
            shown(state)
        ))),
        Err(TryLockError::Error(e)) => Err(anyhow!(e)
            .context(format!("cannot lock {}", path.display()))
            .into()),
    }
}

/// The state database's path as configured and, when that is a way round
/// (a symlink), the file it leads to.
fn shown(state: &Path) -> String {
    let written = std::path::absolute(state).unwrap_or_else(|_| state.to_path_buf());
    match std::fs::canonicalize(state) {
        Ok(real) if real != written => {
            format!("{} (that is, {})", state.display(), real.display())
        }
        _ => state.display().to_string(),
    }
}
