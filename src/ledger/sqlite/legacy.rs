//! Reading a database of versions 1 to 5 as it is: a dry run, `check` or
//! `suppressions list` opens it read-only and never migrates it (an
//! editor's account may not be able to write it). Only reads are here; the
//! first command that writes migrates the database to the current version.
//!
//! Keys and statuses are text in these versions: an issue's key, the
//! lower-cased address, `pending` / `sent` / `failed` / `dropped`.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};

use super::pending_row;
use crate::ledger::{Pending, Status};
use crate::model::{ArticleId, IssueKey, RecipientKey};

pub(super) fn has_delivery(
    conn: &Connection,
    issue: &IssueKey,
    recipient: &RecipientKey,
) -> rusqlite::Result<bool> {
    let found = conn
        .prepare_cached("SELECT 1 FROM deliveries WHERE issue = ?1 AND recipient = ?2")?
        .query_row(params![issue.as_str(), recipient.as_str()], |_| Ok(()))
        .optional()?;
    Ok(found.is_some())
}

/// See [`crate::ledger::Ledger::articles_for`].
pub(super) fn articles_for(
    conn: &Connection,
    version: i64,
    recipient: &RecipientKey,
    issue: &IssueKey,
) -> rusqlite::Result<HashSet<ArticleId>> {
    let recipient = recipient.as_str();
    if version < 2 {
        // One row per article.
        let mut statement = conn.prepare_cached(
            "SELECT a.article_id FROM delivery_articles a
             JOIN deliveries d ON d.issue = a.issue AND d.recipient = a.recipient
             WHERE a.recipient = ?1 AND d.status != 'failed'
               AND NOT (d.status = 'pending' AND d.issue < ?2)",
        )?;
        let rows = statement.query_map([recipient, issue.as_str()], |row| {
            row.get::<_, String>(0).map(ArticleId::from)
        })?;
        return rows.collect();
    }
    let mut statement = conn.prepare_cached(
        "SELECT articles FROM deliveries WHERE recipient = ?1
           AND status IN ('pending', 'sent') AND NOT (status = 'pending' AND issue < ?2)",
    )?;
    let mut ids = HashSet::new();
    let rows = statement.query_map([recipient, issue.as_str()], |row| row.get::<_, String>(0))?;
    for lines in rows {
        ids.extend(lines?.lines().map(ArticleId::from));
    }
    Ok(ids)
}

pub(super) fn newest_issue(conn: &Connection) -> rusqlite::Result<Option<IssueKey>> {
    conn.query_row("SELECT max(issue) FROM deliveries", [], |row| {
        row.get::<_, Option<String>>(0)
    })
    .map(|key| key.map(IssueKey::stored))
}

pub(super) fn pending(conn: &Connection) -> rusqlite::Result<Vec<Pending>> {
    let mut statement = conn.prepare(
        "SELECT issue, recipient, address, message_id FROM deliveries
         WHERE status = 'pending' ORDER BY issue, recipient",
    )?;
    let rows = statement.query_map([], pending_row)?;
    rows.collect()
}

/// Recipients of `issue` (every issue when `None`) with `status`.
pub(super) fn count(
    conn: &Connection,
    issue: Option<&IssueKey>,
    status: Status,
) -> rusqlite::Result<usize> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM deliveries WHERE coalesce(issue = ?1, 1) AND status = ?2",
        params![issue.map(IssueKey::as_str), status.as_str()],
        |row| row.get(0),
    )?;
    Ok(n as usize)
}

pub(super) fn recipients(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare("SELECT DISTINCT recipient FROM deliveries")?;
    let rows = statement.query_map([], |row| row.get(0))?;
    rows.collect()
}
