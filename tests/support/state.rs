//! The state database, read: what was sent to whom, and how it went; and
//! databases as earlier releases wrote them, to migrate.
//!
//! Since schema version 6 the record is in numbers (see
//! `src/ledger/sqlite/schema.rs`): tests read it through the
//! `delivery_log` view, and read article lists with their own decoder (an
//! independent check of the format).

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
        self.statuses_of(ISSUE)
    }

    /// Status per recipient (lower-cased) for `issue`.
    pub fn statuses_of(&self, issue: &str) -> BTreeMap<String, String> {
        let mut statement = self
            .0
            .prepare("SELECT recipient, status FROM delivery_log WHERE issue = ?1")
            .expect("query deliveries");
        statement
            .query_map([issue], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("read deliveries")
            .collect::<Result<_, _>>()
            .expect("read deliveries")
    }

    /// The schema version (`PRAGMA user_version`).
    pub fn version(&self) -> i64 {
        self.0
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("read the schema version")
    }

    /// The article ids recorded for `recipient` in `issue`, sorted: the
    /// row's list of article numbers (ascending, each the LEB128 difference
    /// from the one before), each looked up in `articles`.
    pub fn articles(&self, issue: &str, recipient: &str) -> Vec<String> {
        let list: Vec<u8> = self
            .0
            .query_row(
                "SELECT d.articles FROM deliveries d
                 JOIN issues i ON i.id = d.issue JOIN recipients r ON r.id = d.recipient
                 WHERE i.key = ?1 AND r.key = ?2",
                [issue, &recipient.to_lowercase()],
                |row| row.get(0),
            )
            .unwrap_or_else(|e| panic!("{recipient} in issue {issue}: {e}"));
        let (mut numbers, mut value, mut shift, mut previous) = (Vec::new(), 0i64, 0, 0i64);
        for byte in list {
            value |= i64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                previous += value;
                numbers.push(previous);
                (value, shift) = (0, 0);
            }
        }
        assert_eq!(
            shift, 0,
            "the list of {recipient} in {issue} ends inside a number"
        );
        let mut ids: Vec<String> = numbers
            .iter()
            .map(|n| {
                self.0
                    .query_row("SELECT article FROM articles WHERE id = ?1", [n], |r| {
                        r.get(0)
                    })
                    .unwrap_or_else(|e| panic!("article number {n}: {e}"))
            })
            .collect();
        ids.sort();
        ids
    }

    /// Rows of [`ISSUE`] with `status`.
    pub fn count(&self, status: &str) -> usize {
        self.statuses().values().filter(|s| *s == status).count()
    }

    /// Bytes of messages still stored, over all rows.
    pub fn stored_bytes(&self) -> i64 {
        self.0
            .query_row(
                "SELECT coalesce(sum(length(bytes)), 0) FROM messages",
                [],
                |r| r.get(0),
            )
            .expect("sum message lengths")
    }

    /// `last_error` of one recipient.
    pub fn last_error(&self, recipient: &str) -> Option<String> {
        self.0
            .query_row(
                "SELECT last_error FROM delivery_log WHERE issue = ?1 AND recipient = ?2",
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

/// The state database as release 0.1 made it: schema version 1, each
/// message raw in its row, a row per article in `delivery_articles`.
pub const SCHEMA_V1: &str = "
CREATE TABLE deliveries (
    issue       TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    address     TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    message     BLOB    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (issue, recipient)
);
CREATE INDEX deliveries_status ON deliveries (status);
CREATE TABLE delivery_articles (
    recipient   TEXT NOT NULL,
    article_id  TEXT NOT NULL,
    issue       TEXT NOT NULL,
    PRIMARY KEY (recipient, article_id, issue)
);
";

/// The state database as the last release before version 6 left it
/// (`sqlite3 state.sqlite .schema` of a database it made): schema version
/// 5, keys and statuses as text, a delivery's article ids one per line.
pub const SCHEMA_V5: &str = "
CREATE TABLE deliveries (
    issue       TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,   -- the address, lower-cased: the key
    address     TEXT    NOT NULL,   -- the address as subscribed, for RCPT TO
    message_id  TEXT    NOT NULL,
    message     BLOB    NOT NULL,   -- version 1: the message; since: empty
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'dropped')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL, articles TEXT NOT NULL DEFAULT '', claimed_by TEXT,
    PRIMARY KEY (issue, recipient)
);
CREATE INDEX deliveries_status ON deliveries (status);
CREATE TABLE messages (
    issue       TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    encoding    TEXT NOT NULL,      -- 'lz4': LZ4 block, size prefixed
    bytes       BLOB NOT NULL,
    PRIMARY KEY (issue, recipient)
);
CREATE INDEX deliveries_recipient ON deliveries (recipient);
CREATE TABLE suppressions (
    address     TEXT NOT NULL PRIMARY KEY,   -- lower-cased
    reason      TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'bounced', 'complained', 'manual')),
    created_at  TEXT NOT NULL,
    source      TEXT NOT NULL
);
CREATE TABLE bounce_events (
    report      TEXT NOT NULL,      -- the report Message-ID, or sha256- and a hash of its bytes
    address     TEXT NOT NULL,      -- lower-cased
    kind        TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
    status      TEXT NOT NULL,      -- the DSN status (5.1.1) or the feedback type
    at          TEXT NOT NULL,      -- UTC, RFC 3339 with Z: sorts as text
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (report, address)
);
CREATE INDEX bounce_events_address ON bounce_events (address, kind, at);
CREATE INDEX deliveries_claimed ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL;
";

/// Creates a state database at `path` as the release of schema `version`
/// (1 or 5) made it: 64 KB pages, WAL, the schema, the version.
pub fn legacy_state(path: &Path, version: i64) -> rusqlite::Connection {
    let schema = match version {
        1 => SCHEMA_V1,
        5 => SCHEMA_V5,
        other => panic!("no fixture for schema version {other}"),
    };
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).expect("create the state folder");
    }
    let conn = rusqlite::Connection::open(path).expect("create the state database");
    conn.pragma_update(None, "page_size", 65536).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(schema).expect("create the schema");
    conn.pragma_update(None, "user_version", version).unwrap();
    conn
}
