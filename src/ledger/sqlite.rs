//! The SQLite ledger: one database file (bundled SQLite, WAL journal, full
//! sync) owned by this module alone.
//!
//! Messages are kept in their own table and deleted once final: their pages
//! are reused by the next issue, so the file stays about one issue's size.
//! What stays is the record, one row per recipient and issue, kept small
//! (about 55 bytes: see `schema.rs`): issues, recipients and article ids are
//! each stored once under a number, and rows hold numbers.
//!
//! The schema is versioned with `PRAGMA user_version` (`schema.rs` lists
//! every version); a database from a newer release is refused rather than
//! misread. One from an earlier release is read as it is by the commands
//! that only read (`legacy.rs`) and migrated, in one transaction, by the
//! first that writes.

mod legacy;
pub(super) mod numbers;
mod schema;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use rusqlite::{
    CachedStatement, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
    params,
};

use super::{
    BounceEvent, BounceKind, Fixer, Fixing, Ledger, MessageStore, NewDelivery, Outcome, Pending,
    Reason, Recorded, SoftRule, Status, Suppression, unpack,
};
use crate::Failure;
use crate::model::{ArticleId, IssueKey, RecipientKey};
use numbers::{Names, Numbering};
use schema::{MIGRATIONS, SCHEMA, SCHEMA_VERSION};

/// The numbers of an issue and a recipient, given their keys.
const NUMBERS: &str = "
SELECT i.id, r.id FROM issues i, recipients r WHERE i.key = ?1 AND r.key = ?2";

/// Records one attempt's outcome (`?1`, `?2`: the numbers of the issue and
/// the recipient). Only on a row still pending and not held by another run
/// (`?6` is this run): a final outcome is never overwritten — a `sent` row
/// whose bytes are gone turned back into `pending` could never be sent, and
/// every later run would end incomplete.
const RECORD_OUTCOME: &str = "
UPDATE deliveries SET status = ?3, attempts = attempts + 1, last_error = ?4, at = ?5
WHERE issue = ?1 AND recipient = ?2 AND status = 0
  AND coalesce((SELECT claimed_by FROM outbox o
                WHERE o.issue = deliveries.issue AND o.recipient = deliveries.recipient), ?6) = ?6";

/// After [`RECORD_OUTCOME`] recorded a final outcome: the message leaves
/// the outbox (its bytes go in [`Ledger::drop_final_messages`]).
const LEAVE_OUTBOX: &str = "DELETE FROM outbox WHERE issue = ?1 AND recipient = ?2";

/// After [`RECORD_OUTCOME`] recorded that a message is still to send: the
/// claim is released (the next run sends it).
const RELEASE: &str = "UPDATE outbox SET claimed_by = NULL WHERE issue = ?1 AND recipient = ?2";

/// Records outcomes inside `tx` for run `run` (see [`Ledger::record_all`]).
fn record_in(
    tx: &Transaction<'_>,
    outcomes: &[Outcome<'_>],
    now: DateTime<Utc>,
    run: &str,
) -> rusqlite::Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let (at, now) = (now.timestamp(), now.to_rfc3339());
    let mut numbers = tx.prepare_cached(NUMBERS)?;
    let mut update = tx.prepare_cached(RECORD_OUTCOME)?;
    let mut leave = tx.prepare_cached(LEAVE_OUTBOX)?;
    let mut release = tx.prepare_cached(RELEASE)?;
    let mut suppress = tx.prepare_cached(SUPPRESS)?;
    for o in outcomes {
        let found: Option<(i64, i64)> = numbers
            .query_row(params![o.issue.as_str(), o.recipient.as_str()], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        let Some((issue, recipient)) = found else {
            continue; // no such message: nothing to record
        };
        let recorded = update.execute(params![
            issue,
            recipient,
            i64::from(o.status.code()),
            o.error,
            at,
            run
        ])?;
        if recorded > 0 {
            match o.status {
                Status::Pending => release.execute(params![issue, recipient])?,
                _ => leave.execute(params![issue, recipient])?,
            };
        }
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
    Ok(())
}

/// Puts an address on the suppression list; one already there keeps its
/// first entry.
const SUPPRESS: &str = "
INSERT OR IGNORE INTO suppressions (address, reason, created_at, source) VALUES (?1, ?2, ?3, ?4)";

/// A time as the bounce events keep it: UTC with `Z`, so text order is
/// time order.
fn sortable(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Drops a recipient's (`?2`, a number) messages still pending from issues
/// before `?1` when a message of `?1` is fixed for them: it carries their
/// articles. Not a message another run holds (`?5` is this run).
const SUPERSEDE: &str = "
UPDATE deliveries SET status = 3, last_error = ?3, at = ?4
WHERE recipient = ?2 AND status = 0
  AND issue IN (SELECT o.issue FROM outbox o JOIN issues i ON i.id = o.issue
                WHERE o.recipient = ?2 AND i.key < ?1 AND coalesce(o.claimed_by, ?5) = ?5)";

/// After [`SUPERSEDE`]: the messages it dropped leave the outbox.
const SUPERSEDED: &str = "
DELETE FROM outbox WHERE recipient = ?2 AND coalesce(claimed_by, ?3) = ?3
  AND issue IN (SELECT id FROM issues WHERE key < ?1)";

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

/// Adds the messages of one issue inside a transaction
/// ([`Ledger::fix_issue`], [`Ledger::commit`]).
struct SqliteFixer<'t> {
    /// Names the database in errors.
    label: String,
    tx: &'t Connection,
    issue: &'t str,
    /// The issue's number, given at its first message (an issue with no
    /// message leaves no trace).
    issue_id: Option<i64>,
    find_recipient: CachedStatement<'t>,
    add_recipient: CachedStatement<'t>,
    numbering: Numbering<'t>,
    insert: CachedStatement<'t>,
    outbox: CachedStatement<'t>,
    message: CachedStatement<'t>,
    supersede: CachedStatement<'t>,
    superseded_leave: CachedStatement<'t>,
    /// Why a superseded message was dropped.
    superseded: String,
    /// Unix time.
    now: i64,
    /// The run that fixes the issue holds its messages from the start.
    run: &'t str,
}

impl Fixer for SqliteFixer<'_> {
    fn add(&mut self, d: &NewDelivery<'_>) -> Result<()> {
        self.insert_all(d).with_context(|| self.label.clone())
    }
}

impl<'t> SqliteFixer<'t> {
    fn new(
        tx: &'t Transaction<'_>,
        label: String,
        issue: &'t IssueKey,
        now: DateTime<Utc>,
        run: &'t str,
    ) -> rusqlite::Result<SqliteFixer<'t>> {
        // Cached: a send makes one fixer per batch.
        Ok(SqliteFixer {
            label,
            tx,
            issue: issue.as_str(),
            issue_id: None,
            find_recipient: tx.prepare_cached("SELECT id FROM recipients WHERE key = ?1")?,
            add_recipient: tx
                .prepare_cached("INSERT INTO recipients (key, first) VALUES (?1, ?2)")?,
            numbering: Numbering::new(tx)?,
            insert: tx.prepare_cached(
                "INSERT INTO deliveries (issue, recipient, status, articles, attempts, at)
                 VALUES (?1, ?2, 0, ?3, 0, ?4)",
            )?,
            outbox: tx.prepare_cached(
                "INSERT INTO outbox (issue, recipient, address, message_id, claimed_by)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?,
            message: tx.prepare_cached(
                "INSERT INTO messages (issue, recipient, encoding, bytes) VALUES (?1, ?2, 'lz4', ?3)",
            )?,
            supersede: tx.prepare_cached(SUPERSEDE)?,
            superseded_leave: tx.prepare_cached(SUPERSEDED)?,
            superseded: format!("superseded by issue {issue}"),
            now: now.timestamp(),
            run,
        })
    }

    fn issue_id(&mut self) -> rusqlite::Result<i64> {
        if let Some(id) = self.issue_id {
            return Ok(id);
        }
        self.tx.execute(
            "INSERT INTO issues (key) VALUES (?1) ON CONFLICT (key) DO NOTHING",
            [self.issue],
        )?;
        let id = self.tx.query_row(
            "SELECT id FROM issues WHERE key = ?1",
            [self.issue],
            |row| row.get(0),
        )?;
        self.issue_id = Some(id);
        Ok(id)
    }

    fn recipient_id(&mut self, recipient: &RecipientKey, issue: i64) -> rusqlite::Result<i64> {
        let key = recipient.as_str();
        match self
            .find_recipient
            .query_row([key], |row| row.get(0))
            .optional()?
        {
            Some(id) => Ok(id),
            None => self.add_recipient.insert(params![key, issue]),
        }
    }

    fn insert_all(&mut self, d: &NewDelivery<'_>) -> Result<()> {
        let issue = self.issue_id()?;
        let recipient = self.recipient_id(&RecipientKey::of(d.address), issue)?;
        let articles = self
            .numbering
            .list(d.article_ids.iter().map(|id| id.as_str()))?;
        self.insert
            .execute(params![issue, recipient, articles, self.now])?;
        self.outbox
            .execute(params![issue, recipient, d.address, d.message_id, self.run])?;
        self.message
            .execute(params![issue, recipient, d.message.as_bytes()])?;
        self.supersede.execute(params![
            self.issue,
            recipient,
            self.superseded,
            self.now,
            self.run
        ])?;
        self.superseded_leave
            .execute(params![self.issue, recipient, self.run])?;
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
                "SELECT bytes, encoding FROM messages
                 WHERE issue = (SELECT id FROM issues WHERE key = ?1)
                   AND recipient = (SELECT id FROM recipients WHERE key = ?2)",
            )?
            .query_row(params![issue, recipient], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        match packed {
            Some((stored, encoding)) => unpack(stored, &encoding),
            None => bail!("the message for {recipient} in issue {issue} is no longer stored"),
        }
    })
}

/// The messages still to send, as [`pending_row`] reads them (from version
/// 6; callers add conditions and the order).
const PENDING: &str = "
SELECT i.key, r.key, o.address, o.message_id
FROM outbox o JOIN issues i ON i.id = o.issue JOIN recipients r ON r.id = o.recipient";

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

/// The page size of new state databases (see [`Sqlite::open`]).
const PAGE_SIZE: i64 = 4096;

/// How much write-ahead log to let build up before it is folded into the
/// database file (a checkpoint).
const CHECKPOINT_BYTES: i64 = 4 << 20;

/// How big a write-ahead log file may stay once checkpointed.
const LOG_LIMIT_BYTES: i64 = 8 << 20;

/// Bounds the write-ahead log. SQLite checkpoints it every 1,000 pages by
/// default, which with the 64 KB pages of older databases is 64 MB: every
/// outcome's commit writes a few whole pages, so any sizeable send grew it
/// to 64–73 MB of headroom nobody had asked for. Now it is checkpointed every 4 MB and truncated
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
    /// Article ids by number, as read so far.
    names: Names,
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
        // SQLite's default 4 KB pages (databases made by earlier versions have 64 KB
        // pages and keep them). A send commits once per few outcomes, and
        // each commit writes (and syncs) every page it touched, whole: with
        // 64 KB pages an outcome cost ~200 KB of writes, with 4 KB ~12 KB,
        // and a 25 KB message is written as its own bytes either way. Only
        // takes effect when the file is created.
        conn.pragma_update(None, "page_size", PAGE_SIZE)
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
            names: Names::default(),
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
            names: Names::default(),
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

    /// The number of a recipient and of the issue of their first message,
    /// if a message was ever fixed for them.
    fn recipient_id(&self, recipient: &RecipientKey) -> rusqlite::Result<Option<(i64, i64)>> {
        self.conn
            .prepare_cached("SELECT id, first FROM recipients WHERE key = ?1")?
            .query_row([recipient.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
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
        // Under the write lock from the start, and the version read again
        // under it: another process (`serve` and `digest --send` started
        // together) may have migrated the database meanwhile.
        let mut upgrade = || -> rusqlite::Result<()> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
            if version >= SCHEMA_VERSION {
                return Ok(()); // done by the other (a newer one is refused below)
            }
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
                    "cannot upgrade the state database {} from schema version {version} to {SCHEMA_VERSION}; \
                     it is left as it was",
                    path.display()
                )
            })
        })?;
        match self.version(path)? {
            SCHEMA_VERSION => Ok(()),
            newer => bail!(
                "{}: the state database has schema version {newer}, written by a newer bulletin; this release reads version {SCHEMA_VERSION}",
                path.display()
            ),
        }
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
            if self.version < 6 {
                // An earlier version, read by a dry run as it is.
                return Ok(legacy::articles_for(
                    &self.conn,
                    self.version,
                    recipient,
                    issue,
                )?);
            }
            let Some((recipient, first)) = self.recipient_id(recipient)? else {
                return Ok(HashSet::new());
            };
            // One look into the table per issue fixed since the recipient's
            // first (`CROSS JOIN` keeps `issues` the outer loop): the rows
            // of one issue are together, those of one recipient are not.
            let lists = self
                .conn
                .prepare_cached(
                    "SELECT d.articles FROM issues i CROSS JOIN deliveries d
                     WHERE i.id >= ?3 AND d.issue = i.id AND d.recipient = ?1
                       AND (d.status = 1 OR (d.status = 0 AND i.key >= ?2))",
                )?
                .query_map(params![recipient, issue.as_str(), first], |row| {
                    row.get::<_, Vec<u8>>(0)
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut ids = HashSet::new();
            for list in lists {
                self.names.read_into(&self.conn, &list, &mut ids)?;
            }
            Ok(ids)
        })();
        self.labelled(result)
    }

    fn has_delivery(&self, issue: &IssueKey, recipient: &RecipientKey) -> Result<bool> {
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<bool> {
            if self.version < 6 {
                return Ok(legacy::has_delivery(&self.conn, issue, recipient)?);
            }
            let found = self
                .conn
                .prepare_cached(
                    "SELECT 1 FROM deliveries
                     WHERE issue = (SELECT id FROM issues WHERE key = ?1)
                       AND recipient = (SELECT id FROM recipients WHERE key = ?2)",
                )?
                .query_row(params![issue.as_str(), recipient.as_str()], |_| Ok(()))
                .optional()?;
            Ok(found.is_some())
        })();
        self.labelled(result)
    }

    fn newest_issue(&self) -> Result<Option<IssueKey>> {
        let result = if self.version < 6 {
            legacy::newest_issue(&self.conn)
        } else {
            self.conn
                .query_row("SELECT max(key) FROM issues", [], |row| {
                    row.get::<_, Option<String>>(0)
                })
                .map(|key| key.map(IssueKey::stored))
        };
        self.labelled(result.map_err(anyhow::Error::from))
    }

    fn fix_issue(
        &mut self,
        issue: &IssueKey,
        now: DateTime<Utc>,
        produce: &mut dyn FnMut(&mut dyn Fixer) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let label = format!("state database {}", self.path.display());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| anyhow::Error::from(e).context(label.clone()))?;
        {
            let mut fixer = SqliteFixer::new(&tx, label.clone(), issue, now, &self.run)
                .map_err(|e| anyhow::Error::from(e).context(label.clone()))?;
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
            if self.version < 6 {
                return Ok(legacy::pending(&self.conn)?);
            }
            let mut statement = self
                .conn
                .prepare(&format!("{PENDING} ORDER BY i.key, r.key"))?;
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
                "UPDATE outbox SET claimed_by = ?1 WHERE claimed_by IS NULL",
                [&self.run],
            )?;
            let held = {
                let mut statement = tx.prepare(&format!(
                    "{PENDING} WHERE o.claimed_by = ?1 ORDER BY i.key, r.key"
                ))?;
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
                "UPDATE outbox SET claimed_by = NULL WHERE claimed_by IS NOT NULL AND claimed_by != ?1",
                [&self.run],
            )
            .map_err(anyhow::Error::from);
        self.labelled(result)
    }

    fn release_claims(&mut self) -> Result<usize> {
        let result = self
            .conn
            .execute(
                "UPDATE outbox SET claimed_by = NULL WHERE claimed_by = ?1",
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
                // Final = no longer in the outbox. (Looked for among the
                // messages, never in the whole record.)
                "DELETE FROM messages WHERE rowid IN (
                     SELECT m.rowid FROM messages m WHERE NOT EXISTS (
                         SELECT 1 FROM outbox o WHERE o.issue = m.issue AND o.recipient = m.recipient)
                     LIMIT 64)",
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
            // Immediate: the numbers are read before the first write, and a
            // transaction that has read gets no busy timeout when it then
            // needs the write lock (SQLite fails it at once).
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            record_in(&tx, outcomes, now, &self.run)?;
            tx.commit()?;
            Ok(())
        })();
        self.labelled(result)
    }

    fn commit(
        &mut self,
        fixing: Option<&Fixing<'_>>,
        outcomes: &[Outcome<'_>],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let label = format!("state database {}", self.path.display());
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<()> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(fixing) = fixing.filter(|f| !f.deliveries.is_empty()) {
                let mut fixer = SqliteFixer::new(&tx, label, fixing.issue, fixing.at, &self.run)?;
                for delivery in fixing.deliveries {
                    fixer.insert_all(delivery)?;
                }
            }
            record_in(&tx, outcomes, now, &self.run)?;
            tx.commit()?;
            Ok(())
        })();
        self.labelled(result)
    }

    fn count(&self, issue: &IssueKey, status: Status) -> Result<usize> {
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<usize> {
            if self.version < 6 {
                return Ok(legacy::count(&self.conn, Some(issue), status)?);
            }
            let n: i64 = self.conn.query_row(
                "SELECT count(*) FROM deliveries
                 WHERE issue = (SELECT id FROM issues WHERE key = ?1) AND status = ?2",
                params![issue.as_str(), i64::from(status.code())],
                |row| row.get(0),
            )?;
            Ok(n as usize)
        })();
        self.labelled(result)
    }

    fn count_all(&self, status: Status) -> Result<usize> {
        #[allow(clippy::redundant_closure_call)]
        let result = (|| -> Result<usize> {
            if self.version < 6 {
                return Ok(legacy::count(&self.conn, None, status)?);
            }
            let query = match status {
                // One outbox row per message still to send.
                Status::Pending => "SELECT count(*) FROM outbox".to_owned(),
                other => format!(
                    "SELECT count(*) FROM deliveries WHERE status = {}",
                    i64::from(other.code())
                ),
            };
            let n: i64 = self.conn.query_row(&query, [], |row| row.get(0))?;
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
            if self.version < 6 {
                return Ok(legacy::recipients(&self.conn)?);
            }
            let mut statement = self.conn.prepare("SELECT key FROM recipients")?;
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
    use crate::ledger::contract::{fix, issue, key, now};
    use crate::ledger::{Packed, ids};

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
            .query_row(
                "SELECT bytes FROM messages WHERE issue = (SELECT id FROM issues WHERE key = 'i2')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            stored.len() < message.len() / 10,
            "{} bytes stored",
            stored.len()
        );
        state
            .conn
            .execute(
                "UPDATE messages SET bytes = x'0102' WHERE issue = (SELECT id FROM issues WHERE key = 'i2')",
                [],
            )
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
    /// A database of schema `version` (1 to 5) as the release that wrote
    /// it made it: version 1's tables and the migrations up to `version`.
    fn database_at(path: &Path, version: usize) -> Connection {
        let mut conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "page_size", 65536).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(SCHEMA).unwrap();
        for migration in &MIGRATIONS[..version - 1] {
            migration(&tx).unwrap();
        }
        tx.pragma_update(None, "user_version", version as i64)
            .unwrap();
        tx.commit().unwrap();
        conn
    }

    /// A version 2 database as that release left it: a dry run reads it as
    /// it is; a send migrates it, rows as they were and unclaimed.
    #[test]
    fn a_version_2_database_is_read_as_it_is_and_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let v2 = database_at(&path, 2);
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
            .execute("UPDATE deliveries SET status = 7", [])
            .unwrap_err()
            .to_string();
        assert!(bogus.contains("CHECK constraint failed"), "{bogus}");
        let check: String = state
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }

    /// Version 5 allows the status `dropped` by editing the table's
    /// definition in place (no copy of the history); every connection reads
    /// the new definition.
    #[test]
    fn version_5_loosens_the_status_check_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        drop(database_at(&path, 4));
        drop(database_at(&path.with_extension("5"), 5));
        let v5 = Connection::open(path.with_extension("5")).unwrap();
        let definition: String = v5
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'deliveries'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(definition.contains(schema::STATUS_CHECK_3), "{definition}");
        assert!(definition.contains("claimed_by TEXT"), "{definition}");
        v5.execute_batch(
            "INSERT INTO deliveries (issue, recipient, address, message_id, message, status, created_at, updated_at)
             VALUES ('i1', 'a@x.cn', 'a@x.cn', '<a@x>', x'', 'dropped', 't', 't')",
        )
        .unwrap();
        let bogus = v5
            .execute("UPDATE deliveries SET status = 'lost'", [])
            .unwrap_err()
            .to_string();
        assert!(bogus.contains("CHECK constraint failed"), "{bogus}");
    }

    /// What the ledger says of a database, to compare it before and after
    /// a migration.
    fn answers(state: &Sqlite, recipients: &[&str], issues: &[&str]) -> Vec<String> {
        let mut said = Vec::new();
        for r in recipients {
            for i in issues {
                let mut sent: Vec<String> = state
                    .articles_for(&key(r), &issue(i))
                    .unwrap()
                    .into_iter()
                    .map(|id| id.as_str().to_owned())
                    .collect();
                sent.sort();
                let has = state.has_delivery(&issue(i), &key(r)).unwrap();
                said.push(format!("{r} {i}: has {has}, sent {sent:?}"));
            }
        }
        for i in issues {
            for s in [
                Status::Pending,
                Status::Sent,
                Status::Failed,
                Status::Dropped,
            ] {
                let n = state.count(&issue(i), s).unwrap();
                said.push(format!("{i} {}: {n}", s.as_str()));
            }
        }
        for s in [
            Status::Pending,
            Status::Sent,
            Status::Failed,
            Status::Dropped,
        ] {
            said.push(format!(
                "all {}: {}",
                s.as_str(),
                state.count_all(s).unwrap()
            ));
        }
        for p in state.pending().unwrap() {
            said.push(format!(
                "pending {} {} {} {}",
                p.issue, p.recipient, p.address, p.message_id
            ));
        }
        let mut recipients = state.recipients().unwrap();
        recipients.sort();
        said.push(format!("recipients {recipients:?}"));
        said.push(format!("newest {:?}", state.newest_issue().unwrap()));
        said.push(format!("suppressed {:?}", state.suppressions().unwrap()));
        said
    }

    /// One row of the record as the `delivery_log` view shows it.
    fn logged(state: &Sqlite, issue: &str, recipient: &str) -> String {
        state
            .conn
            .query_row(
                "SELECT status, attempts, last_error, at, message_id FROM delivery_log
                 WHERE issue = ?1 AND recipient = ?2",
                [issue, recipient],
                |r| {
                    Ok(format!(
                        "{} {} {:?} {:?} {:?}",
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?
                    ))
                },
            )
            .unwrap()
    }

    /// A version 5 database as the previous release left it — sent,
    /// failed, dropped and pending rows, one pending message held by a run
    /// that died — reads the same before its migration (read-only, as a dry
    /// run does) and after it, and goes on working: the claim comes back,
    /// the stored message is sent as it was, and an article numbered by
    /// the migration keeps its number in the next issue.
    #[test]
    fn a_version_5_database_is_read_as_it_is_and_migrated_to_version_6() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let v5 = database_at(&path, 5);
        v5.execute_batch(
            "INSERT INTO deliveries (issue, recipient, address, message_id, message, status, attempts, last_error, created_at, updated_at, articles, claimed_by) VALUES
             ('2017-03-19', 'd@x.cn', 'd@x.cn', '<d1@x>', x'', 'pending', 0, NULL, 't', '2017-03-19T08:00:00+08:00', 'n0', NULL),
             ('2017-03-20', 'a@x.cn', 'a@x.cn', '<a1@x>', x'', 'sent', 1, NULL, 't', '2017-03-20T08:00:00+08:00', 'n1' || char(10) || 'n2' || char(10) || 'n3', NULL),
             ('2017-03-20', 'b@x.cn', 'B@x.cn', '<b1@x>', x'', 'failed', 2, '550 no such user', 't', '2017-03-20T08:00:01+08:00', 'n1', NULL),
             ('2017-03-20', 'c@x.cn', 'c@x.cn', '<c1@x>', x'', 'dropped', 0, 'superseded by issue 2017-03-21', 't', 'then', 'n2', NULL),
             ('2017-03-21', 'a@x.cn', 'A@x.cn', '<a2@x>', x'', 'sent', 1, NULL, 't', '2017-03-21T08:00:00+08:00', 'n4' || char(10) || '中文-7', NULL),
             ('2017-03-21', 'c@x.cn', 'C@x.cn', '<c2@x>', x'', 'pending', 1, '451 later', 't', '2017-03-21T08:00:00+08:00', 'n2' || char(10) || 'n5', '99-deadbeef');
             INSERT INTO suppressions VALUES ('e@x.cn', 'unsubscribed', '2017-03-20T00:00:00+00:00', 'token');
             INSERT INTO bounce_events VALUES ('<r@x>', 'e@x.cn', 'soft', '4.2.2', '2017-03-20T00:00:00Z', '2017-03-20T00:00:00Z');",
        )
        .unwrap();
        v5.execute(
            "INSERT INTO messages VALUES ('2017-03-21', 'c@x.cn', 'lz4', ?1), ('2017-03-19', 'd@x.cn', 'lz4', ?2)",
            [
                Packed::new(b"bytes of c").as_bytes(),
                Packed::new(b"bytes of d").as_bytes(),
            ],
        )
        .unwrap();
        drop(v5);
        let recipients = ["a@x.cn", "b@x.cn", "c@x.cn", "d@x.cn", "e@x.cn"];
        let issues = ["2017-03-19", "2017-03-20", "2017-03-21", "2017-03-22"];

        let read_only = Sqlite::open_read_only(&path).unwrap().unwrap();
        assert_eq!(read_only.version, 5);
        let before = answers(&read_only, &recipients, &issues);
        drop(read_only);
        assert!(
            before.contains(
                &"a@x.cn 2017-03-22: has false, sent [\"n1\", \"n2\", \"n3\", \"n4\", \"中文-7\"]"
                    .to_owned()
            ),
            "{before:#?}"
        );

        let mut state = Sqlite::open(&path).unwrap();
        assert_eq!(state.version(&path).unwrap(), 6);
        assert_eq!(answers(&state, &recipients, &issues), before);
        let check: String = state
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        assert_eq!(
            logged(&state, "2017-03-20", "b@x.cn"),
            r#"failed 2 Some("550 no such user") Some("2017-03-20 00:00:01") None"#,
            "a final row keeps its outcome, not what only sending needs"
        );
        assert_eq!(
            logged(&state, "2017-03-20", "c@x.cn"),
            r#"dropped 0 Some("superseded by issue 2017-03-21") None None"#,
            "a time that does not read is left out"
        );
        assert_eq!(
            logged(&state, "2017-03-21", "c@x.cn"),
            r#"pending 1 Some("451 later") Some("2017-03-21 00:00:00") Some("<c2@x>")"#
        );

        // The dead run's claim comes back; its message is the one stored.
        let free: Vec<String> = state
            .claim_pending()
            .unwrap()
            .into_iter()
            .map(|p| p.address)
            .collect();
        assert_eq!(free, ["d@x.cn"]);
        assert_eq!(state.release_abandoned().unwrap(), 1);
        let held: Vec<String> = state
            .claim_pending()
            .unwrap()
            .into_iter()
            .map(|p| format!("{} {}", p.issue, p.address))
            .collect();
        assert_eq!(held, ["2017-03-19 d@x.cn", "2017-03-21 C@x.cn"]);
        assert_eq!(
            state
                .messages()
                .read(&issue("2017-03-21"), &key("c@x.cn"))
                .unwrap(),
            b"bytes of c"
        );
        state
            .record(
                &issue("2017-03-21"),
                &key("c@x.cn"),
                Status::Sent,
                None,
                now(),
            )
            .unwrap();
        let packed = Packed::new(b"m");
        let next = |address, article_ids| NewDelivery {
            address,
            message_id: "<m@x>",
            message: &packed,
            article_ids,
        };
        fix(
            &mut state,
            "2017-03-22",
            &[
                next("d@x.cn", ids(&["n0", "n6"])),
                next("e@x.cn", ids(&["n4", "n6"])),
            ],
        );
        assert_eq!(
            state.count(&issue("2017-03-19"), Status::Dropped).unwrap(),
            1,
            "superseded"
        );
        assert_eq!(state.drop_final_messages().unwrap(), 2);
        let numbered: Vec<(i64, String)> = state
            .conn
            .prepare("SELECT id, article FROM articles ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let names: Vec<&str> = numbered.iter().map(|(_, a)| a.as_str()).collect();
        assert_eq!(names, ["n0", "n1", "n2", "n3", "n4", "中文-7", "n5", "n6"]);
        assert_eq!(
            state
                .articles_for(&key("c@x.cn"), &issue("2017-03-23"))
                .unwrap(),
            ["n2".into(), "n5".into()].into()
        );
        assert_eq!(
            state
                .articles_for(&key("e@x.cn"), &issue("2017-03-22"))
                .unwrap(),
            ["n4".into(), "n6".into()].into()
        );
    }

    /// The migration is one transaction: one that fails halfway (here on a
    /// damaged row, after hundreds were copied) leaves version 5 as it was,
    /// and says so; repaired, the next open migrates it.
    #[test]
    fn a_migration_that_fails_halfway_leaves_the_database_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let v5 = database_at(&path, 5);
        v5.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
             INSERT INTO deliveries (issue, recipient, address, message_id, message, status, created_at, updated_at, articles)
             SELECT '2017-03-' || (10 + i % 10), 'r' || (i / 10) || '@x.cn', 'r@x.cn', '<m@x>', x'', 'sent', 't', 't', 'a' || i
             FROM n;
             UPDATE deliveries SET articles = x'ff00' WHERE issue = '2017-03-15' AND recipient = 'r50@x.cn';",
        )
        .unwrap();
        drop(v5);
        let before = std::fs::read(&path).unwrap();

        let err = format!("{:#}", Sqlite::open(&path).err().unwrap());
        assert!(
            err.contains(&format!(
                "cannot upgrade the state database {} from schema version 5 to 6; it is left as it was",
                path.display()
            )),
            "{err}"
        );
        let v5 = Connection::open(&path).unwrap();
        let version: i64 = v5
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 5);
        let tables: Vec<String> = v5
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            tables,
            ["bounce_events", "deliveries", "messages", "suppressions"]
        );
        let rows: i64 = v5
            .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1000);
        v5.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");

        v5.execute(
            "UPDATE deliveries SET articles = 'a505' WHERE issue = '2017-03-15' AND recipient = 'r50@x.cn'",
            [],
        )
        .unwrap();
        drop(v5);
        let state = Sqlite::open(&path).unwrap();
        assert_eq!(
            state
                .articles_for(&key("r50@x.cn"), &issue("2017-03-20"))
                .unwrap()
                .len(),
            10
        );
    }

    /// The point of version 6: the record of one recipient's digest (30
    /// articles) takes well under 100 bytes of the file, indexes and page
    /// slack included, where version 5 took about 550.
    #[test]
    fn the_record_grows_less_than_100_bytes_per_recipient_per_issue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut state = Sqlite::open(&path).unwrap();
        let used = |state: &Sqlite| -> i64 {
            state
                .conn
                .query_row(
                    "SELECT (page_count - freelist_count) * page_size
                     FROM pragma_page_count, pragma_freelist_count, pragma_page_size",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        };
        let recipients: Vec<String> = (0..4000)
            .map(|i| format!("reader.{i:05}@example.com"))
            .collect();
        let packed = Packed::new(b"m");
        let mut seed = 3u64;
        let mut sizes = Vec::new();
        for day in 0..4 {
            // 400 new articles a day; each reader gets 30 of them.
            let articles: Vec<ArticleId> = (0..400)
                .map(|i| ArticleId::new(format!("https://news.example.cn/{day}/{i:04}.html")))
                .collect();
            let chosen: Vec<Vec<&ArticleId>> = recipients
                .iter()
                .map(|_| {
                    (0..30)
                        .map(|_| {
                            seed = seed
                                .wrapping_mul(6364136223846793005)
                                .wrapping_add(1442695040888963407);
                            &articles[(seed >> 33) as usize % articles.len()]
                        })
                        .collect()
                })
                .collect();
            let deliveries: Vec<NewDelivery<'_>> = recipients
                .iter()
                .zip(chosen)
                .map(|(address, article_ids)| NewDelivery {
                    address,
                    message_id: "<m@x>",
                    message: &packed,
                    article_ids,
                })
                .collect();
            let at = format!("2017-03-{:02}", 20 + day);
            fix(&mut state, &at, &deliveries);
            let outcomes: Vec<(IssueKey, RecipientKey)> =
                recipients.iter().map(|r| (issue(&at), key(r))).collect();
            let outcomes: Vec<Outcome<'_>> = outcomes
                .iter()
                .map(|(issue, recipient)| Outcome {
                    issue,
                    recipient,
                    status: Status::Sent,
                    error: None,
                    refused: false,
                })
                .collect();
            state.record_all(&outcomes, now()).unwrap();
            state.drop_final_messages().unwrap();
            sizes.push(used(&state));
        }
        let per_row = (sizes[3] - sizes[0]) as f64 / (3.0 * recipients.len() as f64);
        eprintln!("{per_row:.1} bytes per recipient per issue ({sizes:?})");
        assert!(
            per_row <= 100.0,
            "{per_row:.0} bytes per recipient per issue (used bytes after each issue: {sizes:?})"
        );
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
