//! Every version of the ledger's schema, and what turns each into the next.
//!
//! A new database is made as version 1 was and brought up to date by the
//! same migrations an old one goes through, all in one transaction (see
//! `Sqlite::migrate`): a migration killed halfway leaves the database as it
//! was.
//!
//! - 1: one row per delivery with its message raw in `deliveries.message`,
//!   one row per article in `delivery_articles`.
//! - 2: the `messages` table (LZ4); a delivery's article ids in one text
//!   column, one per line.
//! - 3: the suppression list. 4: bounce events.
//! - 5: `deliveries.claimed_by` and the status `dropped`.
//! - 6: the record in numbers (about 55 bytes per recipient per issue
//!   instead of 550): issues, recipients and article ids are each stored
//!   once under a number; a delivery row (a `WITHOUT ROWID` table keyed by
//!   issue and recipient number) holds those numbers, its status as a small
//!   integer, its time as a Unix time, and its articles as a compact list
//!   (see [`super::numbers`]). What only a message still to send needs —
//!   the address as subscribed, the Message-ID, the run that holds it — is
//!   in `outbox`, one row per pending message, deleted when it is final.

use rusqlite::Transaction;

use super::numbers::Numbering;

/// The schema version this release writes.
pub(super) const SCHEMA_VERSION: i64 = 6;

/// What turns each earlier version into the next: `MIGRATIONS[v - 1]` takes
/// version `v` to `v + 1`.
pub(super) const MIGRATIONS: [fn(&Transaction<'_>) -> rusqlite::Result<()>; 5] = [
    |tx| tx.execute_batch(TO_VERSION_2),
    |tx| tx.execute_batch(TO_VERSION_3),
    |tx| tx.execute_batch(TO_VERSION_4),
    to_version_5,
    to_version_6,
];

/// Version 1, as it was created; the migrations bring it up to date.
pub(super) const SCHEMA: &str = "
CREATE TABLE deliveries (
    issue       TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,   -- the address, lower-cased: the key
    address     TEXT    NOT NULL,   -- the address as subscribed, for RCPT TO
    message_id  TEXT    NOT NULL,
    message     BLOB    NOT NULL,   -- version 1: the message; since: empty
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

pub(super) const TO_VERSION_2: &str = "
CREATE TABLE messages (
    issue       TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    encoding    TEXT NOT NULL,      -- 'lz4': LZ4 block, size prefixed
    bytes       BLOB NOT NULL,
    PRIMARY KEY (issue, recipient)
);
-- A delivery's article ids, one per line, in its own row: version 1 kept a
-- row (and an index entry) per article, ~8 times the space.
ALTER TABLE deliveries ADD COLUMN articles TEXT NOT NULL DEFAULT '';
UPDATE deliveries SET articles = coalesce(
    (SELECT group_concat(article_id, char(10)) FROM delivery_articles a
     WHERE a.recipient = deliveries.recipient AND a.issue = deliveries.issue), '');
DROP TABLE delivery_articles;
CREATE INDEX deliveries_recipient ON deliveries (recipient);";

const TO_VERSION_3: &str = "
-- Version 3: addresses that get no digest, whatever the subscriber file says.
CREATE TABLE IF NOT EXISTS suppressions (
    address     TEXT NOT NULL PRIMARY KEY,   -- lower-cased
    reason      TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'bounced', 'complained', 'manual')),
    created_at  TEXT NOT NULL,
    source      TEXT NOT NULL
);";

const TO_VERSION_4: &str = "
-- Version 4: what `bulletin bounces` read, one row per report and
-- recipient (so a report read twice counts once); soft bounces are
-- counted here until they suppress.
CREATE TABLE IF NOT EXISTS bounce_events (
    report      TEXT NOT NULL,      -- the report Message-ID, or sha256- and a hash of its bytes
    address     TEXT NOT NULL,      -- lower-cased
    kind        TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
    status      TEXT NOT NULL,      -- the DSN status (5.1.1) or the feedback type
    at          TEXT NOT NULL,      -- UTC, RFC 3339 with Z: sorts as text
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (report, address)
);
CREATE INDEX IF NOT EXISTS bounce_events_address ON bounce_events (address, kind, at);";

/// The status constraint up to version 4, and from version 5.
pub(super) const STATUS_CHECK_2: &str = "CHECK (status IN ('pending', 'sent', 'failed'))";
pub(super) const STATUS_CHECK_3: &str =
    "CHECK (status IN ('pending', 'sent', 'failed', 'dropped'))";

/// Version 5: who holds a pending message (`claimed_by`, a run id; NULL
/// when nobody does), and the status `dropped`.
///
/// SQLite cannot alter a CHECK constraint; rebuilding `deliveries` would
/// copy the whole history (and need as much free space again). Allowing one
/// more value changes no stored byte, so the table's definition is edited
/// in place, as SQLite documents for loosening a constraint
/// (<https://sqlite.org/lang_altertable.html#otheralter>): in this
/// transaction, with the schema cookie bumped so every connection reloads
/// it. The ALTER comes first: it edits the same definition text by offset.
fn to_version_5(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
         CREATE INDEX deliveries_claimed ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL;",
    )?;
    let definition: String = tx.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'deliveries'",
        [],
        |row| row.get(0),
    )?;
    if definition.contains(STATUS_CHECK_3) {
        return Ok(()); // loosened already
    }
    if !definition.contains(STATUS_CHECK_2) {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(format!(
                "the deliveries table is not as bulletin made it (no `{STATUS_CHECK_2}`)"
            )),
        ));
    }
    let cookie: i64 = tx.pragma_query_value(None, "schema_version", |row| row.get(0))?;
    tx.pragma_update(None, "writable_schema", true)?;
    tx.execute(
        "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = 'deliveries'",
        [definition.replace(STATUS_CHECK_2, STATUS_CHECK_3)],
    )?;
    tx.pragma_update(None, "schema_version", cookie + 1)?;
    tx.pragma_update(None, "writable_schema", false)?;
    Ok(())
}

/// The tables of version 6 (those of version 5 renamed out of the way).
const TABLES_6: &str = "
ALTER TABLE deliveries RENAME TO deliveries_5;
ALTER TABLE messages RENAME TO messages_5;
-- Each issue, recipient and article id once, under a number.
CREATE TABLE issues (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE            -- YYYY-MM-DD
);
CREATE TABLE recipients (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,           -- the address, lower-cased
    first       INTEGER NOT NULL                -- issues.id of their first message: none before
);
CREATE TABLE articles (
    id          INTEGER PRIMARY KEY,
    article     TEXT NOT NULL UNIQUE            -- the article's id
);
-- One row per recipient and issue: the record that keeps an article from
-- being sent to anyone twice, so every byte counts (no rowid, numbers
-- instead of text). A row keeps its size from pending to final, so the
-- pages it fills stay full.
CREATE TABLE deliveries (
    issue       INTEGER NOT NULL,               -- issues.id
    recipient   INTEGER NOT NULL,               -- recipients.id
    status      INTEGER NOT NULL CHECK (status IN (0, 1, 2, 3)),  -- pending, sent, failed, dropped
    articles    BLOB    NOT NULL,               -- article numbers, ascending, as LEB128 differences
    attempts    INTEGER NOT NULL DEFAULT 0,
    at          INTEGER,                        -- Unix time of the last change
    last_error  TEXT,
    PRIMARY KEY (issue, recipient)
) WITHOUT ROWID;
-- A row per message still to send (status 0), deleted when it is final.
CREATE TABLE outbox (
    issue       INTEGER NOT NULL,
    recipient   INTEGER NOT NULL,
    address     TEXT    NOT NULL,               -- as subscribed, for RCPT TO
    message_id  TEXT    NOT NULL,
    claimed_by  TEXT,                           -- the run that holds it
    PRIMARY KEY (issue, recipient)
) WITHOUT ROWID;
-- The bytes of a message, deleted (in batches, after sending) once final.
CREATE TABLE messages (
    issue       INTEGER NOT NULL,
    recipient   INTEGER NOT NULL,
    encoding    TEXT    NOT NULL,               -- 'lz4': LZ4 block, size prefixed; 'raw': as composed
    bytes       BLOB    NOT NULL,
    PRIMARY KEY (issue, recipient)
);";

/// What version 6 adds once its tables are filled: the indexes of the
/// outbox, and a view of the record for people (`sqlite3 state.sqlite
/// 'SELECT * FROM delivery_log'`).
const FINISH_6: &str = "
DROP TABLE messages_5;
DROP TABLE deliveries_5;
CREATE INDEX outbox_recipient ON outbox (recipient);
CREATE INDEX outbox_claimed ON outbox (claimed_by) WHERE claimed_by IS NOT NULL;
CREATE VIEW delivery_log AS
SELECT i.key AS issue, r.key AS recipient,
       CASE d.status WHEN 0 THEN 'pending' WHEN 1 THEN 'sent' WHEN 2 THEN 'failed' ELSE 'dropped' END AS status,
       d.attempts, d.last_error, datetime(d.at, 'unixepoch') AS at, o.address, o.message_id, o.claimed_by
FROM deliveries d JOIN issues i ON i.id = d.issue JOIN recipients r ON r.id = d.recipient
LEFT JOIN outbox o ON o.issue = d.issue AND o.recipient = d.recipient;";

/// Version 6: the record in numbers (see the module's notes).
///
/// Recipients are numbered in the order they first appear and articles in
/// the order they are first met, and rows are written in key order: rows
/// of later issues then land at the end of the table, and pages stay full.
/// The version 5 tables are dropped in the same transaction; their pages
/// are free space inside the file, which later issues fill (`VACUUM` gives
/// it back to the file system).
fn to_version_6(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(TABLES_6)?;
    tx.execute_batch(
        "INSERT INTO issues (key) SELECT DISTINCT issue FROM deliveries_5 ORDER BY issue;
         INSERT INTO recipients (key, first)
             SELECT d.recipient, min(i.id) FROM deliveries_5 d JOIN issues i ON i.key = d.issue
             GROUP BY d.recipient ORDER BY min(d.rowid);",
    )?;
    {
        let mut rows = tx.prepare(
            "SELECT i.id, r.id, d.status, d.articles, d.attempts, d.last_error, d.updated_at,
                    d.address, d.message_id, d.claimed_by, d.message
             FROM deliveries_5 d JOIN issues i ON i.key = d.issue JOIN recipients r ON r.key = d.recipient
             ORDER BY i.id, r.id",
        )?;
        let mut insert = tx.prepare(
            "INSERT INTO deliveries (issue, recipient, status, articles, attempts, at, last_error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut outbox = tx.prepare(
            "INSERT INTO outbox (issue, recipient, address, message_id, claimed_by)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        // A pending message of version 1, raw in its row.
        let mut raw = tx.prepare(
            "INSERT INTO messages (issue, recipient, encoding, bytes) VALUES (?1, ?2, 'raw', ?3)",
        )?;
        let mut numbering = Numbering::new(tx)?;
        let mut cursor = rows.query([])?;
        while let Some(row) = cursor.next()? {
            let (issue, recipient): (i64, i64) = (row.get(0)?, row.get(1)?);
            let status = match row.get_ref(2)?.as_str()? {
                "pending" => 0,
                "sent" => 1,
                "failed" => 2,
                _ => 3, // 'dropped': the CHECK constraint allows nothing else
            };
            let articles = numbering.list(row.get_ref(3)?.as_str()?.lines())?;
            // Times were RFC 3339 text; one that does not read is left out.
            let at = row
                .get_ref(6)?
                .as_str()
                .ok()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp());
            insert.execute(rusqlite::params![
                issue,
                recipient,
                status,
                articles,
                row.get::<_, i64>(4)?,
                at,
                row.get::<_, Option<String>>(5)?,
            ])?;
            if status != 0 {
                continue;
            }
            outbox.execute(rusqlite::params![
                issue,
                recipient,
                row.get::<_, String>(7)?,
                row.get::<_, String>(8)?,
                row.get::<_, Option<String>>(9)?,
            ])?;
            let message = row.get_ref(10)?.as_blob()?;
            if !message.is_empty() {
                raw.execute(rusqlite::params![issue, recipient, message])?;
            }
        }
    }
    tx.execute_batch(
        "INSERT INTO messages (issue, recipient, encoding, bytes)
             SELECT i.id, r.id, m.encoding, m.bytes
             FROM messages_5 m JOIN issues i ON i.key = m.issue JOIN recipients r ON r.key = m.recipient;",
    )?;
    tx.execute_batch(FINISH_6)
}
