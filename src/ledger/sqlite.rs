//! The SQLite ledger: one database file (bundled SQLite, WAL journal, full
//! sync) owned by this module alone.
//!
//! Messages are kept in their own table and deleted once final: their pages
//! are reused by the next issue, so the file stays about one issue's size.
//!
//! The schema is versioned with `PRAGMA user_version`; a database from a
//! newer release is refused rather than misread. Version 2 added the
//! `messages` table; version 1 kept each message raw in
//! `deliveries.message`, which is still read for its pending rows (new rows
//! leave it empty). Version 3 added `deliveries.claimed_by` (the run that
//! holds a pending message: see [`Ledger::claim_pending`]) and the status
//! `dropped`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use super::{
    BounceEvent, BounceKind, Fixer, Ledger, MessageStore, NewDelivery, Outcome, Pending, Reason,
    Recorded, SoftRule, Status, Suppression, unpack,
};
use crate::Failure;
use crate::model::{ArticleId, IssueKey, RecipientKey};

/// The schema version this release writes.
const SCHEMA_VERSION: i64 = 5;

/// What turns each earlier version into the next: `MIGRATIONS[v - 1]` takes
/// version `v` to `v + 1`.
const MIGRATIONS: [fn(&Transaction<'_>) -> rusqlite::Result<()>; 4] = [
    |tx| tx.execute_batch(TO_VERSION_2),
    |tx| tx.execute_batch(TO_VERSION_3),
    |tx| tx.execute_batch(TO_VERSION_4),
    to_version_5,
];

const TO_VERSION_2: &str = "
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
const STATUS_CHECK_2: &str = "CHECK (status IN ('pending', 'sent', 'failed'))";
const STATUS_CHECK_3: &str = "CHECK (status IN ('pending', 'sent', 'failed', 'dropped'))";

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

/// Version 1, as it was created; the migrations above bring it up to date.
const SCHEMA: &str = "
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

/// Records one attempt's outcome and releases the claim (a version 1 row's
/// message, kept in the row, is dropped once final; see
/// [`Ledger::drop_final_messages`]). Only a row still pending and not held
/// by another run (`?6` is this run): a final outcome is never overwritten
/// — a `sent` row whose bytes are gone turned back into `pending` could
/// never be sent, and every later run would end incomplete.
const RECORD_OUTCOME: &str = "
UPDATE deliveries SET status = ?3, attempts = attempts + 1, last_error = ?4, updated_at = ?5,
    message = CASE WHEN ?3 = 'pending' THEN message ELSE x'' END,
    claimed_by = NULL
WHERE issue = ?1 AND recipient = ?2 AND status = 'pending' AND coalesce(claimed_by, ?6) = ?6";

/// Puts an address on the suppression list; one already there keeps its
/// first entry.
const SUPPRESS: &str = "
INSERT OR IGNORE INTO suppressions (address, reason, created_at, source) VALUES (?1, ?2, ?3, ?4)";

/// A time as the bounce events keep it: UTC with `Z`, so text order is
/// time order.
fn sortable(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Drops a recipient's messages still pending from issues before `?1`
/// when a message of `?1` is fixed for them (`?2`): it carries their
/// articles. Not a message another run holds (`?5` is this run).
const SUPERSEDE: &str = "
UPDATE deliveries SET status = 'dropped', last_error = ?3, updated_at = ?4, message = x'',
    claimed_by = NULL
WHERE recipient = ?2 AND issue < ?1 AND status = 'pending' AND coalesce(claimed_by, ?5) = ?5";

/// An error from the database at `path`, saying which file and, for a lock,
/// what to do. Every error of this module goes through here or
/// [`Sqlite::labelled`], so none leaves without the file's name.
fn unusable(path: &Path, e: rusqlite::Error) -> anyhow::Error {
    use rusqlite::ErrorCode;
    let what = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => format!(
            "state database {} is locked by another program; nothing was sent, try again when it is done",
            path.display()
        ),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            format!("{} is not a usable SQLite database", path.display())
        }
        _ => format!("state database {}", path.display()),
    };
    anyhow::Error::from(e).context(what)
}

/// Adds the messages of one issue inside [`Ledger::fix_issue`]'s transaction.
struct SqliteFixer<'t> {
    /// Names the database in errors.
    label: String,
    insert: rusqlite::Statement<'t>,
    message: rusqlite::Statement<'t>,
    supersede: rusqlite::Statement<'t>,
    /// Why a superseded message was dropped.
    superseded: String,
    issue: &'t str,
    now: &'t str,
    /// The run that fixes the issue holds its messages from the start.
    run: &'t str,
}

impl Fixer for SqliteFixer<'_> {
    fn add(&mut self, d: &NewDelivery<'_>) -> Result<()> {
        self.insert_all(d).with_context(|| self.label.clone())
    }
}

impl SqliteFixer<'_> {
    fn insert_all(&mut self, d: &NewDelivery<'_>) -> Result<()> {
        let recipient = RecipientKey::of(d.address);
        self.insert.execute(params![
            self.issue,
            recipient.as_str(),
            d.address,
            d.message_id,
            d.article_ids
                .iter()
                .map(|id| id.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            self.now,
            self.run
        ])?;
        self.message.execute(params![
            self.issue,
            recipient.as_str(),
            d.message.as_bytes()
        ])?;
        self.supersede.execute(params![
            self.issue,
            recipient.as_str(),
            self.superseded,
            self.now,
            self.run
        ])?;
        Ok(())
    }
}

/// Reads one fixed message, for sender threads: each thread keeps its own
/// read-only connection (SQLite's WAL lets them read while the main
/// connection records outcomes).
fn read_message(path: &Path, issue: &str, recipient: &str) -> Result<Vec<u8>> {
    thread_local! {
        static READER: std::cell::RefCell<Option<(PathBuf, Connection)>> = const { std::cell::RefCell::new(None) };
    }
    READER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(p, _)| p != path) {
            let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .with_context(|| format!("cannot open the state database {}", path.display()))?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            *slot = Some((path.to_path_buf(), conn));
        }
        let (_, conn) = slot.as_ref().expect("opened above");
        let packed: Option<(Vec<u8>, String)> = conn
            .prepare_cached(
                "SELECT bytes, encoding FROM messages WHERE issue = ?1 AND recipient = ?2",
            )?
            .query_row(params![issue, recipient], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        if let Some((stored, encoding)) = packed {
            return unpack(stored, &encoding);
        }
        // A row fixed by version 1 keeps its message raw in `deliveries`.
        let raw: Vec<u8> = conn
            .prepare_cached("SELECT message FROM deliveries WHERE issue = ?1 AND recipient = ?2")?
            .query_row(params![issue, recipient], |row| row.get(0))?;
        if raw.is_empty() {
            bail!("the message for {recipient} in issue {issue} is no longer stored");
        }
        Ok(raw)
    })
}

/// A pending row as [`Ledger::pending`] and [`Ledger::claim_pending`] read it.
fn pending_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Pending> {
    Ok(Pending {
        issue: IssueKey::stored(row.get(0)?),
        recipient: RecipientKey::stored(row.get(1)?),
        address: row.get(2)?,
        message_id: row.get(3)?,
    })
}

/// Sender threads' view of the message table.
struct Messages {
    path: PathBuf,
}

impl MessageStore for Messages {
    fn read(&self, issue: &IssueKey, recipient: &RecipientKey) -> Result<Vec<u8>> {
        read_message(&self.path, issue.as_str(), recipient.as_str())
            .with_context(|| format!("state database {}", self.path.display()))
    }
}

/// Opens the database at `path` as immutable — without the `-shm` index a
/// reader cannot create (`failed`: why the ordinary read-only open failed)
/// — when that reads it exactly: when no write-ahead log (`-wal`) holds
/// changes not yet in the file, as between sends. SQLite then reads the
/// file alone and takes no lock: a `digest --send` writing at the same
/// moment may make this read fail (never the send); run it again.
fn open_immutable(path: &Path, failed: rusqlite::Error) -> Result<Connection> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let logged = std::fs::metadata(&wal).map_or(0, |m| m.len());
    if logged > 0 {
        return Err(anyhow::Error::from(failed).context(format!(
            "cannot read the state database {} without write access to its folder: its \
             write-ahead log {} holds changes, and reading them needs an index file beside \
             it, which this user cannot create. Let a `digest --send` (as the database's \
             owner) finish, which folds the log into the file, or give this user write \
             access to the folder",
            path.display(),
            Path::new(&wal).display()
        )));
    }
    let uri = file_uri(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
    Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .with_context(|| format!("cannot open the state database {}", path.display()))
}

/// `file:PATH?immutable=1`, PATH percent-encoded (SQLite decodes it back
/// to the same bytes).
fn file_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/._-~".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// How much write-ahead log to let build up before it is folded into the
/// database file (a checkpoint).
const CHECKPOINT_BYTES: i64 = 4 << 20;

/// How big a write-ahead log file may stay once checkpointed.
const LOG_LIMIT_BYTES: i64 = 8 << 20;

/// Bounds the write-ahead log. SQLite checkpoints it every 1,000 pages by
/// default, which with 64 KB pages is 64 MB: every outcome's commit writes
/// a few whole pages, so any sizeable send grew it to 64–73 MB of headroom
/// nobody had asked for. Now it is checkpointed every 4 MB and truncated
/// back to 8 MB at most. (Fixing an issue is one transaction, which the
/// log holds whole until it commits: see [`Ledger::fix_issue`].)
fn bound_the_log(conn: &Connection) -> rusqlite::Result<()> {
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
    conn.pragma_update(
        None,
        "wal_autocheckpoint",
        (CHECKPOINT_BYTES / page_size.max(512)).max(1),
    )?;
    conn.pragma_update(None, "journal_size_limit", LOG_LIMIT_BYTES)
}

/// A run id: this process and 64 random bits (SQLite's generator).
fn run_id(conn: &Connection) -> rusqlite::Result<String> {
    let random: String =
        conn.query_row("SELECT lower(hex(randomblob(8)))", [], |row| row.get(0))?;
    Ok(format!("{}-{random}", std::process::id()))
}

pub struct Sqlite {
    conn: Connection,
    /// For messages: every error names the database file.
    path: PathBuf,
    /// The schema version (a read-only database is read as it is).
    version: i64,
    /// This run's id, in the claims it makes: the process id and random
    /// bits.
    run: String,
}

impl Sqlite {
    /// Names the database file in an error (damage or a lock is found by
    /// whatever query meets it first).
    fn labelled<T>(&self, result: Result<T>) -> Result<T> {
        result.with_context(|| format!("state database {}", self.path.display()))
    }

    /// Opens (creating when needed) the database at `path` for writing.
    pub fn open(path: &Path) -> Result<Sqlite> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("cannot create the state folder {}", folder.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the state database {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| unusable(path, e))?;
        // Messages are tens of kilobytes: large pages keep each in a few
        // pages (and writes) instead of dozens. Only takes effect when the
        // file is created.
        conn.pragma_update(None, "page_size", 65536)
            .map_err(|e| unusable(path, e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| unusable(path, e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| unusable(path, e))?;
        bound_the_log(&conn).map_err(|e| unusable(path, e))?;
        let run = run_id(&conn).map_err(|e| unusable(path, e))?;
        let mut state = Sqlite {
            conn,
            path: path.to_path_buf(),
            version: 0,
            run,
        };
        state.migrate(path)?;
        state.version = SCHEMA_VERSION;
        Ok(state)
    }

    /// Opens the database read-only, for dry runs; `None` when it does not
    /// exist yet (nothing has been sent). Works without write access to
    /// the file or its folder (an editor's account, a read-only mount).
    pub fn open_read_only(path: &Path) -> Result<Option<Sqlite>> {
        if !path.exists() {
            return Ok(None);
        }
        let mut conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open the state database {}", path.display()))?;
        // Reading a WAL database takes its shared-memory index (`-shm`),
        // which SQLite creates beside the file if it is not there — it is
        // not, between sends (the last connection to close removes it).
        // Without write access to the folder the first read fails.
        let read = conn.pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0));
        if let Err(e) = read
            && matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
            )
        {
            conn = open_immutable(path, e)?;
        }
        let mut state = Sqlite {
            conn,
            path: path.to_path_buf(),
            version: 0,
            run: String::new(),
        };
        let version = state.version(path)?;
        state.version = version;
        if version == 0 && state.is_empty().map_err(|e| unusable(path, e))? {
            // An empty file: a send took the run lock on it and stopped
            // before creating the tables. Nothing has been sent.
            return Ok(None);
        }
        // Reading history needs no message: every version this release
        // can migrate is readable as it is.
        if !(1..=SCHEMA_VERSION).contains(&version) {
            bail!(
                "{}: the state database has schema version {version}, this release reads version {SCHEMA_VERSION}{}",
                path.display(),
                if version > SCHEMA_VERSION {
                    " (it was written by a newer bulletin)"
                } else {
                    "; run `digest --send` once to migrate it"
                }
            );
        }
        Ok(Some(state))
    }

    /// Whether the database has no tables at all.
    fn is_empty(&self) -> rusqlite::Result<bool> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))?;
        Ok(n == 0)
    }

    fn version(&self, path: &Path) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| unusable(path, e))
    }

    fn migrate(&mut self, path: &Path) -> Result<()> {
        let version = self.version(path)?;
        if version > SCHEMA_VERSION {
            bail!(
                "{}: the state database has schema version {version}, written by a newer bulletin; this release reads version {SCHEMA_VERSION}",
                path.display()
            );
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let mut upgrade = || -> rusqlite::Result<()> {
            let tx = self.conn.transaction()?;
            if version == 0 {
                tx.execute_batch(SCHEMA)?;
            }
            for migration in &MIGRATIONS[version.max(1) as usize - 1..] {
                migration(&tx)?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()
        };
        upgrade().map_err(|e| {
            let locked = matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            );
            if locked {
                return unusable(path, e);
            }
            anyhow::Error::from(e).context(if version == 0 {
                format!("cannot create the tables of the state database {}", path.display())
            } else {
                format!(
                    "cannot upgrade the state database {} from schema version {version} to {SCHEMA_VERSION}",
                    path.display()
                )
            })
        })
    }

    /// Records the outcome of one attempt (for tests and one-off records).
    pub fn record(
        &mut self,
        issue: &IssueKey,
        recipient: &RecipientKey,
        status: Status,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let outcome = Outcome {
            issue,
            recipient,
            status,
            error,
            refused: false,
        };
        self.record_all(&[outcome], now)
    }
}

impl Ledger for Sqlite {
    fn articles_for(
        &self,
        recipient: &RecipientKey,
        issue: &IssueKey,
    ) -> Result<HashSet<ArticleId>> {
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<HashSet<ArticleId>> {
            let recipient = recipient.as_str();
            if self.version < 2 {
                // A version 1 database read by a dry run, as it is.
                let mut statement = self.conn.prepare_cached(
                    "SELECT a.article_id FROM delivery_articles a
                     JOIN deliveries d ON d.issue = a.issue AND d.recipient = a.recipient
                     WHERE a.recipient = ?1 AND d.status != 'failed'
                       AND NOT (d.status = 'pending' AND d.issue < ?2)",
                )?;
                let rows = statement.query_map([recipient, issue.as_str()], |row| {
                    row.get::<_, String>(0).map(ArticleId::from)
                })?;
                return Ok(rows.collect::<rusqlite::Result<_>>()?);
            }
            let mut statement = self.conn.prepare_cached(
                "SELECT articles FROM deliveries WHERE recipient = ?1
                   AND status IN ('pending', 'sent') AND NOT (status = 'pending' AND issue < ?2)",
            )?;
            let mut ids = HashSet::new();
            let rows =
                statement.query_map([recipient, issue.as_str()], |row| row.get::<_, String>(0))?;
            for lines in rows {
                ids.extend(lines?.lines().map(ArticleId::from));
            }
            Ok(ids)
        })();
        self.labelled(result)
    }

    fn has_delivery(&self, issue: &IssueKey, recipient: &RecipientKey) -> Result<bool> {
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<bool> {
            let found = self
                .conn
                .prepare_cached("SELECT 1 FROM deliveries WHERE issue = ?1 AND recipient = ?2")?
                .query_row(params![issue.as_str(), recipient.as_str()], |_| Ok(()))
                .optional()?;
            Ok(found.is_some())
        })();
        self.labelled(result)
    }

    fn newest_issue(&self) -> Result<Option<IssueKey>> {
        let result = self
            .conn
            .query_row("SELECT max(issue) FROM deliveries", [], |row| {
                row.get::<_, Option<String>>(0)
            })
            .map(|key| key.map(IssueKey::stored))
            .map_err(anyhow::Error::from);
        self.labelled(result)
    }

    fn fix_issue(
        &mut self,
        issue: &IssueKey,
        now: DateTime<Utc>,
        produce: &mut dyn FnMut(&mut dyn Fixer) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let label = format!("state database {}", self.path.display());
        let now = now.to_rfc3339();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| anyhow::Error::from(e).context(label.clone()))?;
        {
            let mut fixer = SqliteFixer {
                label: label.clone(),
                insert: tx
                    .prepare(
                        "INSERT INTO deliveries (issue, recipient, address, message_id, message, articles, status, created_at, updated_at, claimed_by)
                         VALUES (?1, ?2, ?3, ?4, x'', ?5, 'pending', ?6, ?6, ?7)",
                    )
                    .map_err(|e| anyhow::Error::from(e).context(label.clone()))?,
                message: tx
                    .prepare("INSERT INTO messages (issue, recipient, encoding, bytes) VALUES (?1, ?2, 'lz4', ?3)")
                    .map_err(|e| anyhow::Error::from(e).context(label.clone()))?,
                supersede: tx
                    .prepare(SUPERSEDE)
                    .map_err(|e| anyhow::Error::from(e).context(label.clone()))?,
                superseded: format!("superseded by issue {issue}"),
                issue: issue.as_str(),
                now: &now,
                run: &self.run,
            };
            produce(&mut fixer)?;
        }
        tx.commit()
            .map_err(|e| anyhow::Error::from(e).context(label))?;
        // The log now holds the whole issue: fold it into the file and
        // empty it before sending starts (nothing reads yet, so it can
        // finish). A failure loses nothing: the automatic checkpoints go on.
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        Ok(())
    }

    fn pending(&self) -> Result<Vec<Pending>> {
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<Vec<Pending>> {
            let mut statement = self.conn.prepare(
                "SELECT issue, recipient, address, message_id FROM deliveries
                 WHERE status = 'pending' ORDER BY issue, recipient",
            )?;
            let rows = statement.query_map([], pending_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })();
        self.labelled(result)
    }

    fn claim_pending(&mut self) -> Result<Vec<Pending>> {
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<Vec<Pending>> {
            let tx = self.conn.transaction()?;
            tx.execute(
                "UPDATE deliveries SET claimed_by = ?1 WHERE status = 'pending' AND claimed_by IS NULL",
                [&self.run],
            )?;
            let held = {
                let mut statement = tx.prepare(
                    "SELECT issue, recipient, address, message_id FROM deliveries
                     WHERE status = 'pending' AND claimed_by = ?1 ORDER BY issue, recipient",
                )?;
                let rows = statement.query_map([&self.run], pending_row)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.commit()?;
            Ok(held)
        })();
        self.labelled(result)
    }

    fn release_abandoned(&mut self) -> Result<usize> {
        let result = self
            .conn
            .execute(
                "UPDATE deliveries SET claimed_by = NULL WHERE claimed_by IS NOT NULL AND claimed_by != ?1",
                [&self.run],
            )
            .map_err(anyhow::Error::from);
        self.labelled(result)
    }

    fn release_claims(&mut self) -> Result<usize> {
        let result = self
            .conn
            .execute(
                "UPDATE deliveries SET claimed_by = NULL WHERE claimed_by = ?1",
                [&self.run],
            )
            .map_err(anyhow::Error::from);
        self.labelled(result)
    }

    /// Their pages are reused by the next issue, so the file stays about
    /// one issue big. Run after sending, off the path of each outcome's
    /// commit, in batches: one transaction deleting a whole issue's
    /// messages would put every page they fill through the write-ahead log
    /// at once (each batch's commit lets it be checkpointed).
    fn drop_final_messages(&mut self) -> Result<usize> {
        let mut dropped = 0;
        let result = loop {
            match self.conn.execute(
                "DELETE FROM messages WHERE rowid IN (
                     SELECT m.rowid FROM messages m JOIN deliveries d
                       ON d.issue = m.issue AND d.recipient = m.recipient
                     WHERE d.status != 'pending' LIMIT 64)",
                [],
            ) {
                Ok(0) => break Ok(dropped),
                Ok(n) => dropped += n,
                Err(e) => break Err(anyhow::Error::from(e)),
            }
        };
        self.labelled(result)
    }

    fn record_all(&mut self, outcomes: &[Outcome<'_>], now: DateTime<Utc>) -> Result<()> {
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<()> {
            let now = now.to_rfc3339();
            let tx = self.conn.transaction()?;
            {
                let mut update = tx.prepare_cached(RECORD_OUTCOME)?;
                let mut suppress = tx.prepare_cached(SUPPRESS)?;
                for o in outcomes {
                    let status = o.status.as_str();
                    update.execute(params![
                        o.issue.as_str(),
                        o.recipient.as_str(),
                        status,
                        o.error,
                        now,
                        self.run
                    ])?;
                    if o.refused {
                        let source = format!("SMTP reply: {}", o.error.unwrap_or("5xx to RCPT"));
                        suppress.execute(params![
                            o.recipient.as_str(),
                            Reason::Bounced.as_str(),
                            now,
                            source
                        ])?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })();
        self.labelled(result)
    }

    fn count(&self, issue: &IssueKey, status: Status) -> Result<usize> {
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<usize> {
            let n: i64 = self.conn.query_row(
                "SELECT count(*) FROM deliveries WHERE issue = ?1 AND status = ?2",
                params![issue.as_str(), status.as_str()],
                |row| row.get(0),
            )?;
            Ok(n as usize)
        })();
        self.labelled(result)
    }

    fn count_all(&self, status: Status) -> Result<usize> {
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<usize> {
            let n: i64 = self.conn.query_row(
                "SELECT count(*) FROM deliveries WHERE status = ?1",
                [status.as_str()],
                |row| row.get(0),
            )?;
            Ok(n as usize)
        })();
        self.labelled(result)
    }

    fn suppress(&mut self, entries: &[Suppression]) -> Result<usize> {
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<usize> {
            let tx = self.conn.transaction()?;
            let mut added = 0;
            {
                let mut insert = tx.prepare_cached(SUPPRESS)?;
                for e in entries {
                    added += insert.execute(params![
                        e.address.as_str(),
                        e.reason.as_str(),
                        e.at.to_rfc3339(),
                        e.source
                    ])?;
                }
            }
            tx.commit()?;
            Ok(added)
        })();
        self.labelled(result)
    }

    fn unsuppress(&mut self, addresses: &[RecipientKey]) -> Result<usize> {
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<usize> {
            let tx = self.conn.transaction()?;
            let mut removed = 0;
            {
                let mut delete =
                    tx.prepare_cached("DELETE FROM suppressions WHERE address = ?1")?;
                for address in addresses {
                    removed += delete.execute([address.as_str()])?;
                }
            }
            tx.commit()?;
            Ok(removed)
        })();
        self.labelled(result)
    }

    fn suppressions(&self) -> Result<Vec<Suppression>> {
        if self.version < 3 {
            // Read as it is by a dry run: no list yet.
            return Ok(Vec::new());
        }
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<Vec<Suppression>> {
            let mut statement = self.conn.prepare(
                "SELECT address, reason, created_at, source FROM suppressions ORDER BY address",
            )?;
            let rows = statement.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })?;
            let mut list = Vec::new();
            for row in rows {
                let (address, reason, at, source) = row?;
                let reason = Reason::named(&reason)
                    .with_context(|| format!("unknown suppression reason {reason:?}"))?;
                let at = DateTime::parse_from_rfc3339(&at)
                    .with_context(|| format!("bad suppression time {at:?}"))?
                    .to_utc();
                list.push(Suppression {
                    address: RecipientKey::stored(address),
                    reason,
                    at,
                    source,
                });
            }
            Ok(list)
        })();
        self.labelled(result)
    }

    fn record_bounces(
        &mut self,
        events: &[BounceEvent],
        rule: SoftRule,
        now: DateTime<Utc>,
    ) -> Result<Vec<Recorded>> {
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<Vec<Recorded>> {
            let recorded_at = sortable(now);
            let tx = self.conn.transaction()?;
            let mut results = Vec::with_capacity(events.len());
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO bounce_events (report, address, kind, status, at, recorded_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                let mut soft = tx.prepare_cached(
                    "SELECT count(*) FROM bounce_events
                     WHERE address = ?1 AND kind = 'soft' AND at > ?2 AND at <= ?3",
                )?;
                let mut suppress = tx.prepare_cached(SUPPRESS)?;
                for e in events {
                    let at = sortable(e.at);
                    let added = insert.execute(params![
                        e.report,
                        e.address.as_str(),
                        e.kind.as_str(),
                        e.status,
                        at,
                        recorded_at
                    ])?;
                    if added == 0 {
                        results.push(Recorded::Duplicate);
                        continue;
                    }
                    let entry = match e.kind {
                        BounceKind::Hard => Some((Reason::Bounced, e.report.clone())),
                        BounceKind::Complaint => Some((Reason::Complained, e.report.clone())),
                        BounceKind::Soft => {
                            let since = sortable(e.at - rule.window);
                            let n: i64 = soft
                                .query_row(params![e.address.as_str(), since, at], |row| {
                                    row.get(0)
                                })?;
                            (n >= i64::from(rule.limit)).then(|| {
                                (
                                    Reason::Bounced,
                                    format!("{n} soft bounces, the last {}", e.report),
                                )
                            })
                        }
                    };
                    let suppressed = match entry {
                        Some((reason, source)) => {
                            suppress.execute(params![
                                e.address.as_str(),
                                reason.as_str(),
                                now.to_rfc3339(),
                                source
                            ])? > 0
                        }
                        None => false,
                    };
                    results.push(Recorded::New { suppressed });
                }
            }
            tx.commit()?;
            Ok(results)
        })();
        self.labelled(result)
    }

    fn recipients(&self) -> Result<Vec<String>> {
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<Vec<String>> {
            let mut statement = self
                .conn
                .prepare("SELECT DISTINCT recipient FROM deliveries")?;
            let rows = statement.query_map([], |row| row.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })();
        self.labelled(result)
    }

    fn messages(&self) -> Box<dyn MessageStore> {
        Box::new(Messages {
            path: self.path.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Packed, ids};

    fn issue(key: &str) -> IssueKey {
        IssueKey::stored(key.to_owned())
    }

    fn key(address: &str) -> RecipientKey {
        RecipientKey::of(address)
    }

    fn now() -> DateTime<Utc> {
        DateTime::UNIX_EPOCH
    }

    fn fix(state: &mut Sqlite, at: &str, deliveries: &[NewDelivery<'_>]) {
        state
            .fix_issue(&issue(at), now(), &mut |f| {
                for d in deliveries {
                    f.add(d)?;
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn fixed_articles_count_as_sent_until_failed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/state.sqlite");
        let mut state = Sqlite::open(&path).unwrap();
        let d = NewDelivery {
            address: "A@example.com",
            message_id: "<x@y>",
            message: &Packed::new(b"m"),
            article_ids: ids(&["a1", "a2"]),
        };
        fix(&mut state, "2017-03-25", &[d]);
        assert!(
            state
                .has_delivery(&issue("2017-03-25"), &key("a@example.com"))
                .unwrap()
        );
        assert_eq!(
            state
                .articles_for(&key("a@EXAMPLE.com"), &issue("2017-03-25"))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(state.pending().unwrap().len(), 1);
        state
            .record(
                &issue("2017-03-25"),
                &key("a@example.com"),
                Status::Failed,
                Some("550"),
                now(),
            )
            .unwrap();
        assert!(
            state
                .articles_for(&key("a@example.com"), &issue("2017-03-25"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            state.count(&issue("2017-03-25"), Status::Failed).unwrap(),
            1
        );
        assert_eq!(state.drop_final_messages().unwrap(), 1);
        let kept: i64 = state
            .conn
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 0, "a final outcome drops the message bytes");
        assert!(state.pending().unwrap().is_empty());
    }

    #[test]
    fn stored_messages_round_trip_compressed_and_from_version_1_raw() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        // A version 1 database with a pending raw message, as 0.1 wrote it.
        let v1 = Connection::open(&path).unwrap();
        v1.pragma_update(None, "journal_mode", "WAL").unwrap();
        v1.execute_batch(SCHEMA).unwrap();
        v1.pragma_update(None, "user_version", 1).unwrap();
        v1.execute(
            "INSERT INTO deliveries (issue, recipient, address, message_id, message, status, created_at, updated_at)
             VALUES ('i1', 'old@example.com', 'old@example.com', '<o@x>', ?1, 'pending', 'now', 'now')",
            [b"raw bytes".as_slice()],
        )
        .unwrap();
        v1.execute_batch(
            "INSERT INTO delivery_articles VALUES ('old@example.com', 'a1', 'i1'), ('old@example.com', 'a2', 'i1');",
        )
        .unwrap();
        drop(v1);
        let both: HashSet<ArticleId> = [ArticleId::from("a1"), ArticleId::from("a2")].into();
        let read_only = Sqlite::open_read_only(&path).unwrap().unwrap();
        assert_eq!(
            read_only
                .articles_for(&key("OLD@example.com"), &issue("i1"))
                .unwrap(),
            both
        );
        drop(read_only);

        let mut state = Sqlite::open(&path).unwrap();
        assert_eq!(state.version(&path).unwrap(), SCHEMA_VERSION);
        assert_eq!(
            state
                .articles_for(&key("old@example.com"), &issue("i1"))
                .unwrap(),
            both,
            "migrated"
        );
        let message = "中文摘要 ".repeat(5000).into_bytes();
        let d = NewDelivery {
            address: "new@example.com",
            message_id: "<n@x>",
            message: &Packed::new(&message),
            article_ids: vec![],
        };
        fix(&mut state, "i2", &[d]);
        assert_eq!(
            read_message(&path, "i1", "old@example.com").unwrap(),
            b"raw bytes"
        );
        assert_eq!(
            read_message(&path, "i2", "new@example.com").unwrap(),
            message
        );
        let stored: Vec<u8> = state
            .conn
            .query_row("SELECT bytes FROM messages WHERE issue = 'i2'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(
            stored.len() < message.len() / 10,
            "{} bytes stored",
            stored.len()
        );
        state
            .conn
            .execute("UPDATE messages SET bytes = x'0102' WHERE issue = 'i2'", [])
            .unwrap();
        let err = format!(
            "{:#}",
            read_message(&path, "i2", "new@example.com").unwrap_err()
        );
        assert!(err.contains("damaged"), "{err}");
    }

    #[test]
    fn the_file_stays_one_issue_big_when_messages_are_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut state = Sqlite::open(&path).unwrap();
        // Incompressible bytes, so the size is the messages' own.
        let mut seed = 1u64;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 56) as u8
                })
                .collect()
        };
        let mut send_issue = |state: &mut Sqlite, at: &str| {
            let recipients: Vec<String> = (0..100).map(|i| format!("r{i}@example.com")).collect();
            let messages: Vec<Packed> = recipients
                .iter()
                .map(|_| Packed::new(&noise(30_000)))
                .collect();
            let deliveries: Vec<NewDelivery<'_>> = recipients
                .iter()
                .zip(&messages)
                .map(|(r, m)| NewDelivery {
                    address: r,
                    message_id: "<x@y>",
                    message: m,
                    article_ids: vec![],
                })
                .collect();
            fix(state, at, &deliveries);
            for r in &recipients {
                state
                    .record(&issue(at), &key(r), Status::Sent, None, now())
                    .unwrap();
            }
            state.drop_final_messages().unwrap();
            let pages: i64 = state
                .conn
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .unwrap();
            pages
        };
        let after_one = send_issue(&mut state, "2017-03-24");
        let after_three = {
            send_issue(&mut state, "2017-03-25");
            send_issue(&mut state, "2017-03-26")
        };
        assert!(
            after_three < after_one + after_one / 4,
            "{after_one} pages after one issue, {after_three} after three"
        );
    }

    #[test]
    fn bounces_count_once_and_soft_ones_suppress_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = Sqlite::open(&dir.path().join("s.sqlite")).unwrap();
        let rule = SoftRule {
            limit: 3,
            window: chrono::Duration::days(14),
        };
        let day = |d: i64| now() + chrono::Duration::days(d);
        let event = |report: &str, address: &str, kind, at| BounceEvent {
            report: report.into(),
            address: key(address),
            kind,
            status: "4.2.2".into(),
            at,
        };
        let soft = |report: &str, at| event(report, "full@example.com", BounceKind::Soft, at);
        // Two soft bounces, then one far outside the window: not yet.
        let r = state
            .record_bounces(
                &[soft("<1@x>", day(0)), soft("<2@x>", day(1))],
                rule,
                day(30),
            )
            .unwrap();
        assert_eq!(r, [Recorded::New { suppressed: false }; 2]);
        let r = state
            .record_bounces(&[soft("<3@x>", day(20))], rule, day(30))
            .unwrap();
        assert_eq!(r, [Recorded::New { suppressed: false }]);
        // The same report again changes nothing.
        let r = state
            .record_bounces(&[soft("<2@x>", day(1))], rule, day(30))
            .unwrap();
        assert_eq!(r, [Recorded::Duplicate]);
        assert!(state.suppressions().unwrap().is_empty());
        // The third within 14 days suppresses.
        let r = state
            .record_bounces(&[soft("<4@x>", day(25))], rule, day(30))
            .unwrap();
        assert_eq!(r, [Recorded::New { suppressed: false }]);
        let r = state
            .record_bounces(&[soft("<5@x>", day(26))], rule, day(30))
            .unwrap();
        assert_eq!(r, [Recorded::New { suppressed: true }]);
        let r = state
            .record_bounces(
                &[
                    event("<6@x>", "gone@example.com", BounceKind::Hard, day(1)),
                    event("<7@x>", "angry@example.com", BounceKind::Complaint, day(1)),
                ],
                rule,
                day(30),
            )
            .unwrap();
        assert_eq!(r, [Recorded::New { suppressed: true }; 2]);
        let list: Vec<(String, Reason, String)> = state
            .suppressions()
            .unwrap()
            .into_iter()
            .map(|s| (s.address.as_str().to_owned(), s.reason, s.source))
            .collect();
        assert_eq!(
            list,
            [
                (
                    "angry@example.com".into(),
                    Reason::Complained,
                    "<7@x>".into()
                ),
                (
                    "full@example.com".into(),
                    Reason::Bounced,
                    "3 soft bounces, the last <5@x>".into()
                ),
                ("gone@example.com".into(), Reason::Bounced, "<6@x>".into()),
            ]
        );
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        drop(Sqlite::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Sqlite::open(&path).err().unwrap().to_string();
        assert!(
            err.contains("schema version 99, written by a newer bulletin"),
            "{err}"
        );
        let err = Sqlite::open_read_only(&path).err().unwrap().to_string();
        assert!(err.contains("newer bulletin"), "{err}");
    }
    /// Regression (#17): a late outcome of a second sender (`pending`, a
    /// deferral) turned a `sent` row whose bytes were already dropped back
    /// into `pending`: it could never be sent, and every later run ended
    /// incomplete.
    #[test]
    fn a_final_outcome_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut state = Sqlite::open(&path).unwrap();
        let d = NewDelivery {
            address: "a@example.com",
            message_id: "<a@x>",
            message: &Packed::new(b"m"),
            article_ids: ids(&["a1"]),
        };
        fix(&mut state, "2017-03-25", &[d]);
        let (i, r) = (issue("2017-03-25"), key("a@example.com"));
        state.record(&i, &r, Status::Sent, None, now()).unwrap();
        assert_eq!(state.drop_final_messages().unwrap(), 1);
        state
            .record(&i, &r, Status::Pending, Some("451 try later"), now())
            .unwrap();
        state
            .record(&i, &r, Status::Failed, Some("550 no"), now())
            .unwrap();
        assert_eq!(state.count(&i, Status::Sent).unwrap(), 1);
        assert!(state.pending().unwrap().is_empty());
    }

    #[test]
    fn two_runs_never_hold_the_same_message_and_the_claims_of_a_dead_run_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut first = Sqlite::open(&path).unwrap();
        let packed = Packed::new(b"m");
        let deliveries: Vec<NewDelivery<'_>> = ["a@x.cn", "b@x.cn", "c@x.cn"]
            .into_iter()
            .map(|address| NewDelivery {
                address,
                message_id: "<m@x>",
                message: &packed,
                article_ids: vec![],
            })
            .collect();
        fix(&mut first, "2017-03-25", &deliveries);
        assert_eq!(first.claim_pending().unwrap().len(), 3, "fixed = claimed");

        let mut second = Sqlite::open(&path).unwrap();
        assert!(second.claim_pending().unwrap().is_empty());
        // The second cannot record over the first's claim either.
        let (i, a) = (issue("2017-03-25"), key("a@x.cn"));
        second
            .record(&i, &a, Status::Failed, Some("550"), now())
            .unwrap();
        assert_eq!(second.count(&i, Status::Failed).unwrap(), 0);

        first.record(&i, &a, Status::Sent, None, now()).unwrap();
        drop(first); // dies holding b and c
        assert!(second.claim_pending().unwrap().is_empty());
        assert_eq!(second.release_abandoned().unwrap(), 2);
        let taken: Vec<String> = second
            .claim_pending()
            .unwrap()
            .into_iter()
            .map(|p| p.address)
            .collect();
        assert_eq!(taken, ["b@x.cn", "c@x.cn"]);
        assert_eq!(second.release_claims().unwrap(), 2);
        assert_eq!(second.release_abandoned().unwrap(), 0);
    }

    /// A version 2 database as the previous release left it: a dry run
    /// reads it as it is; a send migrates it to version 3, rows as they
    /// were and unclaimed, `dropped` allowed and nothing else new.
    #[test]
    fn a_version_2_database_is_read_as_it_is_and_migrated_to_version_3() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let v2 = Connection::open(&path).unwrap();
        v2.pragma_update(None, "page_size", 65536).unwrap();
        v2.pragma_update(None, "journal_mode", "WAL").unwrap();
        v2.execute_batch(SCHEMA).unwrap();
        v2.execute_batch(TO_VERSION_2).unwrap();
        v2.pragma_update(None, "user_version", 2).unwrap();
        v2.execute_batch(
            "INSERT INTO deliveries (issue, recipient, address, message_id, message, status, created_at, updated_at, articles)
             VALUES ('i1', 'a@x.cn', 'a@x.cn', '<a@x>', x'', 'sent', 't', 't', 'a1'),
                    ('i1', 'b@x.cn', 'B@x.cn', '<b@x>', x'', 'pending', 't', 't', 'a2');",
        )
        .unwrap();
        v2.execute(
            "INSERT INTO messages VALUES ('i1', 'b@x.cn', 'lz4', ?1)",
            [Packed::new(b"bytes of b").as_bytes()],
        )
        .unwrap();
        drop(v2);

        let read_only = Sqlite::open_read_only(&path).unwrap().unwrap();
        assert_eq!(read_only.version, 2);
        assert_eq!(read_only.pending().unwrap().len(), 1);
        assert_eq!(
            read_only
                .articles_for(&key("a@x.cn"), &issue("i1"))
                .unwrap()
                .len(),
            1
        );
        drop(read_only);

        let mut state = Sqlite::open(&path).unwrap();
        assert_eq!(state.version(&path).unwrap(), SCHEMA_VERSION);
        assert_eq!(state.count(&issue("i1"), Status::Sent).unwrap(), 1);
        let held = state.claim_pending().unwrap();
        assert_eq!(held.len(), 1, "the pending row was unclaimed");
        assert_eq!(held[0].address, "B@x.cn");
        assert_eq!(read_message(&path, "i1", "b@x.cn").unwrap(), b"bytes of b");
        state
            .record(
                &issue("i1"),
                &key("b@x.cn"),
                Status::Dropped,
                Some("no longer a subscriber"),
                now(),
            )
            .unwrap();
        assert_eq!(state.count(&issue("i1"), Status::Dropped).unwrap(), 1);
        let bogus = state
            .conn
            .execute("UPDATE deliveries SET status = 'lost'", [])
            .unwrap_err()
            .to_string();
        assert!(bogus.contains("CHECK constraint failed"), "{bogus}");
        let check: String = state
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        // Another connection reads the new definition.
        let other = Connection::open(&path).unwrap();
        let definition: String = other
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'deliveries'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(definition.contains(STATUS_CHECK_3), "{definition}");
        assert!(definition.contains("claimed_by TEXT"), "{definition}");
    }

    /// Regression (#17): pending messages never expired, so after a relay
    /// outage of N days everyone got N + 1 digests in one run. The message
    /// of a new issue supersedes a recipient's pending one of an earlier
    /// issue, and the new one's plan sees the old one's articles as unsent
    /// (so they are carried over, not lost).
    #[test]
    fn a_new_issue_supersedes_the_pending_message_of_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut state = Sqlite::open(&path).unwrap();
        let packed = Packed::new(b"m");
        let delivery = |address, article_ids| NewDelivery {
            address,
            message_id: "<m@x>",
            message: &packed,
            article_ids,
        };
        let (monday, tuesday) = (issue("2017-03-20"), issue("2017-03-21"));
        fix(
            &mut state,
            "2017-03-20",
            &[
                delivery("a@x.cn", ids(&["a1"])),
                delivery("b@x.cn", ids(&["b1"])),
            ],
        );
        state
            .record(&monday, &key("b@x.cn"), Status::Sent, None, now())
            .unwrap();
        let a1: HashSet<ArticleId> = [ArticleId::from("a1")].into();
        assert_eq!(state.articles_for(&key("a@x.cn"), &monday).unwrap(), a1);
        assert!(
            state
                .articles_for(&key("a@x.cn"), &tuesday)
                .unwrap()
                .is_empty(),
            "an earlier issue's pending articles are carried over"
        );
        assert_eq!(
            state.articles_for(&key("b@x.cn"), &tuesday).unwrap().len(),
            1
        );

        fix(
            &mut state,
            "2017-03-21",
            &[
                delivery("a@x.cn", ids(&["a1", "a2"])),
                delivery("b@x.cn", ids(&["b2"])),
            ],
        );
        let pending: Vec<(String, String)> = state
            .pending()
            .unwrap()
            .into_iter()
            .map(|p| (p.issue.to_string(), p.address))
            .collect();
        assert_eq!(
            pending,
            [
                ("2017-03-21".to_owned(), "a@x.cn".to_owned()),
                ("2017-03-21".to_owned(), "b@x.cn".to_owned())
            ]
        );
        assert_eq!(state.count(&monday, Status::Dropped).unwrap(), 1);
        assert_eq!(state.count(&monday, Status::Sent).unwrap(), 1, "b's stays");
        let why: String = state
            .conn
            .query_row(
                "SELECT last_error FROM deliveries WHERE issue = '2017-03-20' AND recipient = 'a@x.cn'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(why, "superseded by issue 2017-03-21");
        assert_eq!(state.drop_final_messages().unwrap(), 2);
    }

    /// The size of the write-ahead log beside `path` (0 when there is none).
    fn log_size(path: &Path) -> u64 {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(&wal).map_or(0, |m| m.len())
    }

    /// Regression (#17): the write-ahead log grew to 64–73 MB during any
    /// sizeable send (1,000 pages of 64 KB before SQLite's automatic
    /// checkpoint; every outcome's commit writes a few whole pages), kept
    /// the issue's size after it was fixed, and took a whole issue's pages
    /// again when the sent messages were deleted. Bounded now: checkpointed
    /// every 4 MB, truncated to 8 MB.
    #[test]
    fn the_write_ahead_log_stays_small_while_sending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut state = Sqlite::open(&path).unwrap();
        // 800 incompressible messages of 20 KB, three to a page: a 16 MB
        // issue.
        let mut seed = 7u64;
        let recipients: Vec<String> = (0..800).map(|i| format!("r{i}@x.cn")).collect();
        let messages: Vec<Packed> = recipients
            .iter()
            .map(|_| {
                let bytes: Vec<u8> = (0..20_000)
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        (seed >> 56) as u8
                    })
                    .collect();
                Packed::new(&bytes)
            })
            .collect();
        let deliveries: Vec<NewDelivery<'_>> = recipients
            .iter()
            .zip(&messages)
            .map(|(address, message)| NewDelivery {
                address,
                message_id: "<m@x>",
                message,
                article_ids: ids(&["a1"]),
            })
            .collect();
        fix(&mut state, "2017-03-25", &deliveries);
        let limit = LOG_LIMIT_BYTES as u64;
        assert!(
            log_size(&path) <= limit,
            "{} bytes of log after the issue was fixed",
            log_size(&path)
        );
        let mut peak = 0;
        for r in &recipients {
            state
                .record(&issue("2017-03-25"), &key(r), Status::Sent, None, now())
                .unwrap();
            peak = peak.max(log_size(&path));
        }
        assert!(
            peak <= limit,
            "{peak} bytes of log while recording outcomes"
        );
        assert_eq!(state.drop_final_messages().unwrap(), 800);
        assert!(
            log_size(&path) <= limit,
            "{} bytes of log after dropping the sent messages",
            log_size(&path)
        );
    }
}
