//! The ledger: which digest went to whom, with which articles, and the
//! exact bytes of every message not yet final.
//!
//! A message is fixed here before it is sent: one row per recipient, the
//! message bytes and the articles it carries (an issue in batches, each one
//! transaction, while the earlier batches are sent). Each outcome is recorded the moment it is known, so a run
//! that dies is completed by the next one from what is recorded; "finished"
//! is derived from those rows, never stored as a flag.
//!
//! [`Ledger`] is what the rest of the program sees; [`sqlite`] keeps it in
//! one file for one machine, [`postgres`] in a PostgreSQL database that
//! several `digest --send` processes, on one machine or several, share.
//! [`open`] picks the store `digest.state` names. Only this module knows a
//! schema.

#[cfg(test)]
mod contract;
pub mod postgres;
pub mod sqlite;

use std::collections::HashSet;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};

use crate::Failure;
pub use crate::model::SuppressionReason as Reason;
use crate::model::{ArticleId, IssueKey, RecipientKey};

pub use postgres::Postgres;
pub use sqlite::Sqlite;

pub use crate::model::State;

/// Opens (creating or migrating when needed) the ledger `state` names, for
/// writing. `password`: the PostgreSQL password (from the environment;
/// unused for SQLite).
pub fn open(state: &State, password: Option<&str>) -> Result<Box<dyn Ledger + Send>> {
    Ok(match state {
        State::Sqlite(path) => Box::new(Sqlite::open(path)?),
        State::Postgres(target) => Box::new(Postgres::open(target, password)?),
    })
}

/// Opens the ledger `state` names for reading only (never creating or
/// migrating it); `None` when there is none yet (nothing has been sent).
pub fn open_read_only(
    state: &State,
    password: Option<&str>,
) -> Result<Option<Box<dyn Ledger + Send>>> {
    Ok(match state {
        State::Sqlite(path) => {
            Sqlite::open_read_only(path)?.map(|l| Box::new(l) as Box<dyn Ledger + Send>)
        }
        State::Postgres(target) => Postgres::open_read_only(target, password)?
            .map(|l| Box::new(l) as Box<dyn Ledger + Send>),
    })
}

/// How one recipient's copy of an issue stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Sent,
    Failed,
    /// Final without being sent, and not a failure: the message is not
    /// wanted any more (its reason is its recorded error).
    Dropped,
}

impl Status {
    /// The number both stores keep for it (SQLite's version 6 and
    /// PostgreSQL's schema; `sent` is 1, which SQLite stores in no bytes).
    pub(crate) fn code(self) -> u8 {
        match self {
            Status::Pending => 0,
            Status::Sent => 1,
            Status::Failed => 2,
            Status::Dropped => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::Dropped => "dropped",
        }
    }
}

/// A message to fix for one recipient of an issue.
pub struct NewDelivery<'a> {
    /// The address as subscribed (what RCPT TO will carry).
    pub address: &'a str,
    pub message_id: &'a str,
    pub message: &'a Packed,
    pub article_ids: Vec<&'a ArticleId>,
}

/// New messages of one issue, fixed by a [`Ledger::commit`].
pub struct Fixing<'a> {
    pub issue: &'a IssueKey,
    /// When they are fixed (the run's time).
    pub at: DateTime<Utc>,
    pub deliveries: &'a [NewDelivery<'a>],
}

/// A message as it is stored: LZ4-compressed (digests are repetitive
/// markup: less than half the bytes to write, sync and read back), done on
/// the thread that composed it.
pub struct Packed(Vec<u8>);

impl Packed {
    pub fn new(message: &[u8]) -> Packed {
        Packed(lz4_flex::block::compress_prepend_size(message))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The message bytes of a stored row.
fn unpack(stored: Vec<u8>, encoding: &str) -> Result<Vec<u8>> {
    match encoding {
        "lz4" => lz4_flex::block::decompress_size_prepended(&stored)
            .context("a stored message is damaged (it does not decompress)"),
        // A message fixed by a release whose schema kept them as they
        // were (version 1), still pending when the database was migrated.
        "raw" => Ok(stored),
        other => bail!("a stored message has an unknown encoding {other:?}"),
    }
}

/// The outcome of one attempt, to record.
pub struct Outcome<'a> {
    pub issue: &'a IssueKey,
    pub recipient: &'a RecipientKey,
    pub status: Status,
    pub error: Option<&'a str>,
    /// The server refused the recipient's address for good (5xx to RCPT):
    /// it goes on the suppression list as `bounced`, with `error` (the
    /// reply) as its source, in the same transaction as the outcome.
    pub refused: bool,
}

/// What a bounce or complaint report says of one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceKind {
    /// A permanent failure (5.x.x, `Action: failed`): suppresses at once.
    Hard,
    /// A temporary one (4.x.x, or `Action: delayed`): suppresses when
    /// there are enough of them (see [`SoftRule`]).
    Soft,
    /// An abuse report (ARF): suppresses at once.
    Complaint,
}

impl BounceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BounceKind::Hard => "hard",
            BounceKind::Soft => "soft",
            BounceKind::Complaint => "complaint",
        }
    }
}

/// One recipient of one report, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceEvent {
    /// What identifies the report: its Message-ID, or a hash of its bytes.
    /// The same report and recipient are recorded once.
    pub report: String,
    pub address: RecipientKey,
    pub kind: BounceKind,
    /// The DSN status (`5.1.1`) or the feedback type (`abuse`).
    pub status: String,
    /// When the report was made (its `Date:`), else when it was read.
    pub at: DateTime<Utc>,
}

/// When soft bounces suppress: `limit` of them within `window` (counted
/// back from the newest).
#[derive(Debug, Clone, Copy)]
pub struct SoftRule {
    pub limit: u32,
    pub window: chrono::Duration,
}

/// What recording one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// This report was already recorded for this recipient: nothing changed.
    Duplicate,
    /// Recorded; `suppressed` when it put the address on the list.
    New { suppressed: bool },
}

/// A recorded message not yet delivered.
#[derive(Debug, Clone)]
pub struct Pending {
    pub issue: IssueKey,
    pub recipient: RecipientKey,
    /// The address as subscribed, for RCPT TO.
    pub address: String,
    pub message_id: String,
}

/// One address on the suppression list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub address: RecipientKey,
    pub reason: Reason,
    /// When it was put on the list.
    pub at: DateTime<Utc>,
    /// Where it came from: the token, the bounce's Message-ID, the file.
    pub source: String,
}

/// Adds the messages of one issue inside [`Ledger::fix_issue`]'s transaction.
pub trait Fixer {
    fn add(&mut self, delivery: &NewDelivery<'_>) -> Result<()>;
}

/// Reads fixed messages back, from any sender thread.
pub trait MessageStore: Sync {
    fn read(&self, issue: &IssueKey, recipient: &RecipientKey) -> Result<Vec<u8>>;

    /// Whether a message of `issue` is fixed for `recipient` already — by
    /// any run. A store several runs share answers it, so a run skips
    /// composing what another fixed; one run's own store (SQLite, behind
    /// the run lock) need not look, and says no.
    fn is_fixed(&self, _issue: &IssueKey, _recipient: &RecipientKey) -> Result<bool> {
        Ok(false)
    }

    /// Claims part `part` of `issue` for this run to compose (runs sharing
    /// the ledger split an issue's recipients into parts, by a hash of the
    /// address): yes when no run has it, or this one does, or the run that
    /// had it is gone; no while another live run has it. A store only one
    /// run writes at a time says yes.
    fn claim_part(&self, _issue: &IssueKey, _part: u32) -> Result<bool> {
        Ok(true)
    }
}

/// The store of deliveries. Every error names the store (the database file).
pub trait Ledger {
    /// Whether `recipient` already has a message fixed for `issue`.
    fn has_delivery(&self, issue: &IssueKey, recipient: &RecipientKey) -> Result<bool>;

    /// Articles already sent to (or fixed for) `recipient`, as the plan of
    /// `issue` sees them: those of every message except the ones refused
    /// for good or dropped, and except messages still pending from an
    /// earlier issue — fixing a message of `issue` for the recipient
    /// supersedes those (see [`Ledger::fix_issue`]), so their articles are
    /// carried over into it instead of being lost.
    fn articles_for(
        &self,
        recipient: &RecipientKey,
        issue: &IssueKey,
    ) -> Result<HashSet<ArticleId>>;

    /// The newest issue with a message fixed, if any.
    fn newest_issue(&self) -> Result<Option<IssueKey>>;

    /// Fixes the messages of an issue, all in one transaction: `produce`
    /// adds them one by one (so they need not all be in memory at once).
    /// The write-ahead log holds the whole issue until it commits (about
    /// the messages' stored size), and is emptied right after.
    /// They are claimed by this run from the start. A recipient's messages
    /// still pending from earlier issues (and not held by another run) are
    /// superseded by the new one: dropped, never sent, their articles left
    /// to the new message (see [`Ledger::articles_for`]).
    fn fix_issue(
        &mut self,
        issue: &IssueKey,
        now: DateTime<Utc>,
        produce: &mut dyn FnMut(&mut dyn Fixer) -> Result<(), Failure>,
    ) -> Result<(), Failure>;

    /// Every message still to deliver, oldest issue first, whoever has
    /// claimed it (for counting and tests: senders use
    /// [`Ledger::claim_pending`]).
    fn pending(&self) -> Result<Vec<Pending>>;

    /// Claims for this run every pending message that no run has claimed
    /// (those [`Ledger::fix_issue`] fixed are claimed already) and returns
    /// every message this run holds, oldest issue first, without bodies
    /// (senders read each through [`Ledger::messages`] when they send it).
    /// The claim is committed before this returns: two senders never hold
    /// the same message, so they can never both send it.
    fn claim_pending(&mut self) -> Result<Vec<Pending>>;

    /// Releases the claims of every other run that has ended (killed,
    /// crashed) without releasing them: what they did not record is still
    /// to send. SQLite: only for a caller holding the run lock
    /// (`deliver::RunLock`), which means every other run has ended.
    /// PostgreSQL: the claims of runs whose session (and advisory lock) is
    /// gone, whoever calls; they pass straight to this run (which
    /// [`Ledger::claim_pending`] then returns with the rest it holds).
    fn release_abandoned(&mut self) -> Result<usize>;

    /// Releases this run's claims on messages still pending (the run is
    /// over; the next one sends them).
    fn release_claims(&mut self) -> Result<usize>;

    /// Records several outcomes in one transaction (one sync to disk for
    /// all: a group commit), before any of their senders goes on. An
    /// outcome is recorded only on a message still pending and not claimed
    /// by another run: a final outcome is never overwritten.
    fn record_all(&mut self, outcomes: &[Outcome<'_>], now: DateTime<Utc>) -> Result<()>;

    /// Fixes new messages — as [`Ledger::fix_issue`] does: claimed by this
    /// run, superseding their recipients' pending messages of earlier
    /// issues — and records outcomes — as [`Ledger::record_all`] does — all
    /// in one transaction (one sync to disk for both). This is how
    /// `digest --send` writes while it sends: each batch of new messages
    /// is committed before any of them is sent, each outcome before its
    /// sender goes on.
    fn commit(
        &mut self,
        fixing: Option<&Fixing<'_>>,
        outcomes: &[Outcome<'_>],
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// As [`Ledger::commit`], and says which of `fixing`'s deliveries
    /// (their indexes) another run had fixed first: this run does not hold
    /// those and must not send them. A store only one run writes at a time
    /// (SQLite, behind the run lock) fixes them all.
    fn commit_fixed(
        &mut self,
        fixing: Option<&Fixing<'_>>,
        outcomes: &[Outcome<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<usize>> {
        self.commit(fixing, outcomes, now).map(|()| Vec::new())
    }

    /// Recipients of `issue` with `status`.
    fn count(&self, issue: &IssueKey, status: Status) -> Result<usize>;

    /// Recipients with `status` across every issue.
    fn count_all(&self, status: Status) -> Result<usize>;

    /// Messages still to send that no live run holds: what is left for the
    /// next run once this one has released its claims. With one run at a
    /// time (SQLite) every pending message; on a shared ledger, less those
    /// that other runs, still sending, hold.
    fn pending_left(&self) -> Result<usize> {
        self.count_all(Status::Pending)
    }

    /// Deletes the bytes of every message that is final — sent, refused for
    /// good or dropped (its Message-ID, articles and outcome stay as the
    /// record).
    fn drop_final_messages(&mut self) -> Result<usize>;

    /// Puts addresses on the suppression list; one already there keeps its
    /// first entry (so repeating a command changes nothing). Returns how
    /// many were added.
    fn suppress(&mut self, entries: &[Suppression]) -> Result<usize>;

    /// Takes addresses off the list; returns how many were on it.
    fn unsuppress(&mut self, addresses: &[RecipientKey]) -> Result<usize>;

    /// The whole suppression list, by address.
    fn suppressions(&self) -> Result<Vec<Suppression>>;

    /// Records bounce and complaint events, all in one transaction: each new
    /// hard bounce or complaint suppresses its address (`bounced`,
    /// `complained`, with the report as source), and a soft bounce does when
    /// it makes `rule.limit` within `rule.window`. An event already recorded
    /// (same report, same address) changes nothing. One result per event.
    fn record_bounces(
        &mut self,
        events: &[BounceEvent],
        rule: SoftRule,
        now: DateTime<Utc>,
    ) -> Result<Vec<Recorded>>;

    /// Every address a message was ever fixed for (lower-cased): with the
    /// subscribers, the addresses an unsubscribe token can stand for.
    fn recipients(&self) -> Result<Vec<String>>;

    /// Where sender threads read message bytes (independent of `self`, so
    /// outcomes can be recorded while they read).
    fn messages(&self) -> Box<dyn MessageStore>;
}

/// Article ids for a test's deliveries, alive for the whole test run.
#[cfg(test)]
pub(crate) fn ids(list: &[&str]) -> Vec<&'static ArticleId> {
    list.iter()
        .map(|&id| &*Box::leak(Box::new(ArticleId::from(id))))
        .collect()
}
