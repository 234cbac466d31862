//! The state database, read: what was sent to whom, and how it went.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ISSUE;
use super::site::Site;

impl Site {
    /// The state database: `[digest] state` of the config, or bulletin's
    /// default `.bulletin/state.sqlite`.
    pub fn state_path(&self) -> PathBuf {
        let config = self.config_table();
        let state = config
            .get("digest")
            .and_then(|d| d.get("state"))
            .and_then(|s| s.as_str())
            .unwrap_or(".bulletin/state.sqlite");
        self.path(state)
    }

    /// The state database, for reading.
    pub fn state(&self) -> StateDb {
        StateDb::open(&self.state_path())
    }
}

/// Read access to the state database.
pub struct StateDb(rusqlite::Connection);

impl StateDb {
    pub fn open(path: &Path) -> StateDb {
        assert!(path.exists(), "no state database at {}", path.display());
        StateDb(rusqlite::Connection::open(path).expect("open the state database"))
    }

    /// Status per recipient (lower-cased) for [`ISSUE`].
    pub fn statuses(&self) -> BTreeMap<String, String> {
        let mut statement = self
            .0
            .prepare("SELECT recipient, status FROM deliveries WHERE issue = ?1")
            .expect("query deliveries");
        statement
            .query_map([ISSUE], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("read deliveries")
            .collect::<Result<_, _>>()
            .expect("read deliveries")
    }

    /// Rows of [`ISSUE`] with `status`.
    pub fn count(&self, status: &str) -> usize {
        self.statuses().values().filter(|s| *s == status).count()
    }

    /// Bytes of message bodies still stored, over all rows.
    pub fn stored_bytes(&self) -> i64 {
        self.0
            .query_row(
                "SELECT coalesce(sum(length(message)), 0) FROM deliveries",
                [],
                |r| r.get(0),
            )
            .expect("sum message lengths")
    }

    /// `last_error` of one recipient.
    pub fn last_error(&self, recipient: &str) -> Option<String> {
        self.0
            .query_row(
                "SELECT last_error FROM deliveries WHERE issue = ?1 AND recipient = ?2",
                [ISSUE, &recipient.to_lowercase()],
                |row| row.get(0),
            )
            .expect("read last_error")
    }

    /// Panics unless every one of `recipients` is recorded with `status`.
    pub fn assert_all(&self, recipients: &[String], status: &str) {
        let statuses = self.statuses();
        let wrong: Vec<String> = recipients
            .iter()
            .filter(|r| statuses.get(&r.to_lowercase()).map(String::as_str) != Some(status))
            .map(|r| format!("{r}: {:?}", statuses.get(&r.to_lowercase())))
            .collect();
        assert!(
            wrong.is_empty(),
            "expected every recipient {status}, but:\n{}",
            wrong.join("\n")
        );
    }
}
