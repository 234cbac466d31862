//! Delivery: the exactly-once path from a composed issue to the relay.
//!
//! 1. [`RunLock`] — one `digest --send` at a time per ledger; holding it, a
//!    run takes back what runs that died had claimed ([`RunLock::reclaim`]).
//! 2. [`send`] — every pending message (an interrupted run's, of this
//!    issue or an earlier one) is *claimed* for this run in the ledger (a
//!    commit before the first is sent: two senders never hold the same
//!    message); those no longer [`Wanted`] are dropped, the others become
//!    [`worker::Job`]s at once. Meanwhile this run's new messages are
//!    composed ([`Source`]) and *fixed* in the ledger — bytes, Message-ID,
//!    articles — in batches, each a transaction: a message becomes a job
//!    only once its batch is committed. **Nothing is sent before its bytes
//!    are durable**, and a message is never composed twice: a run that
//!    dies leaves every message it fixed to the next run, which sends
//!    those bytes and composes only the rest.
//! 3. The workers ([`worker`]) *send* the jobs over a [`Transport`]
//!    ([`smtp::Smtp`] or [`sendmail::Sendmail`]); this thread, the
//!    recorder, *records* each outcome — whatever arrives together, new
//!    messages and outcomes, in one transaction (a group commit) — before
//!    its worker may send another message. A crash therefore loses at most
//!    one outcome per connection, and that message goes out again (same
//!    bytes, same Message-ID) on the next run.
//! 4. [`tally::Summary`] — what the run did, for the command to print.
//!
//! This is the only module that talks to a mail server. It reads neither
//! the clock nor the environment: both come in as values.

pub mod inbox;
pub mod lock;
pub mod sendmail;
pub mod smtp;
pub mod tally;
pub mod transport;
pub mod worker;

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use lettre::Address;

use crate::Failure;
use crate::digest::compose::{Composed, Composer};
use crate::ledger::{self, Ledger, NewDelivery, Packed, Status};
use crate::model::{IssueKey, RecipientKey, Shard};
use crate::progress::{self, Tick};
use crate::report::Verbosity;
use inbox::{Inbox, Made};

pub use lock::RunLock;
pub use tally::{Summary, Tally};
pub use transport::Transport;
pub use worker::{Outcome, Policy, Relay};

/// "At most one digest a day" against the clock as well: refuses to start
/// `issue` when the ledger already has a newer one — a clock stepped back
/// across midnight would otherwise start a second issue the same day, sent
/// to everyone with anything new since — unless the run's time was given
/// on purpose (`--now`, `given`).
pub fn check_clock(
    ledger: &dyn Ledger,
    issue: &IssueKey,
    now: DateTime<Utc>,
    given: bool,
) -> Result<(), Failure> {
    match newer_issue(ledger, issue)? {
        Some(newest) if !given => Err(anyhow::anyhow!(
            "it is {} by the clock, which makes this issue {issue}, but issue {newest} has been \
             sent already: has the clock gone back? Nothing was sent. Correct the clock, or \
             give `--now` to send an older issue on purpose",
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
        .into()),
        _ => Ok(()),
    }
}

/// The newest issue in the ledger when it is newer than `issue`.
pub fn newer_issue(ledger: &dyn Ledger, issue: &IssueKey) -> Result<Option<IssueKey>, Failure> {
    Ok(ledger.newest_issue()?.filter(|newest| newest > issue))
}

/// Where this run's new messages come from: the composer (in unit tests,
/// a list).
pub trait Source: Sync {
    /// Who gets one, in the order they are made.
    fn recipients(&self) -> Vec<&str>;

    /// Makes every message (on as many threads as it likes) and hands each
    /// to `emit` on the calling thread, in order; stops at the first error.
    fn each<'s>(
        &'s self,
        emit: &mut dyn FnMut(Made<'s>) -> Result<(), Failure>,
    ) -> Result<(), Failure>;
}

impl Source for Composer<'_> {
    fn recipients(&self) -> Vec<&str> {
        Composer::recipients(self)
            .map(|s| s.email.as_str())
            .collect()
    }

    fn each<'s>(
        &'s self,
        emit: &mut dyn FnMut(Made<'s>) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        Composer::each(self, pack, emit)
    }
}

/// A composed message as the ledger keeps it, compressed on the composing
/// thread (the thread that stores them only stores).
fn pack<'a>(c: Composed<'a>) -> Result<Made<'a>, Failure> {
    Ok(Made {
        address: &c.subscriber.email,
        message_id: c.message_id,
        packed: Packed::new(&c.bytes),
        article_ids: c.article_ids,
    })
}

/// This run's new messages: the issue they belong to, when they are fixed
/// (the run's time) and where they come from.
pub struct Fresh<'a> {
    pub issue: &'a IssueKey,
    pub at: DateTime<Utc>,
    pub source: &'a dyn Source,
}

/// The envelope sender (MAIL FROM) of the message to an address: the
/// caller derives it at send time, per message (with a bounce address, the
/// recipient's token in it); it is never stored.
pub type EnvelopeSender<'a> = &'a (dyn Fn(&str) -> Address + Sync);

/// Which pending messages are still wanted; any other is dropped — final,
/// not sent, not a failure — with the reason recorded.
pub struct Wanted<'a> {
    /// The current subscribers: a message to anyone else is dropped (a
    /// subscriber removed since it was fixed is never mailed).
    pub subscribers: &'a HashSet<RecipientKey>,
    /// Messages of issues before this one are dropped: everything in them
    /// was published before the digest's `window` (issue and window are
    /// the caller's: the run's date, and the one a `window` earlier).
    pub oldest_issue: IssueKey,
    /// With `--shard K/N`: pending messages of recipients outside the
    /// shard are not this run's — neither sent nor dropped, left pending
    /// (a state shared by the shards, run one after the other, keeps each
    /// shard's).
    pub shard: Option<Shard>,
}

impl Wanted<'_> {
    /// Why `p` is not to be sent any more, if it is not.
    fn refuses(&self, p: &ledger::Pending) -> Option<String> {
        if !self.subscribers.contains(&p.recipient) {
            Some("no longer a subscriber".to_owned())
        } else if p.issue < self.oldest_issue {
            Some(format!(
                "expired: issue {} is older than the digest's window",
                p.issue
            ))
        } else {
            None
        }
    }
}

/// How to send: over what, how hard, from whom, stamped by which clock,
/// saying how much.
pub struct Sending<'a> {
    /// The relays, at least one: each with its transport, policy and
    /// weight (see [`worker`]).
    pub relays: &'a [Relay<'a>],
    pub sender: EnvelopeSender<'a>,
    /// Stamps each recorded outcome.
    pub clock: fn() -> DateTime<Utc>,
    pub say: Verbosity,
}

/// Sends every message still pending in the ledger and still wanted, and
/// `fresh`'s messages as they are composed and fixed; returns what this run
/// did.
pub fn send(
    ledger: &mut dyn Ledger,
    fresh: Option<Fresh<'_>>,
    wanted: &Wanted<'_>,
    how: &Sending<'_>,
) -> Result<Tally, Failure> {
    let say = how.say;
    let held = ledger.claim_pending()?;
    let newcomers: HashSet<RecipientKey> = fresh
        .as_ref()
        .map(|f| {
            f.source
                .recipients()
                .into_iter()
                .map(RecipientKey::of)
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::with_capacity(held.len() + newcomers.len());
    let mut jobs = Vec::with_capacity(held.len());
    let mut finals = Vec::new();
    let mut dropped = 0;
    for p in held {
        if let Some(f) = &fresh
            && p.issue < *f.issue
            && newcomers.contains(&p.recipient)
        {
            // Superseded by the message this run fixes for them (which
            // drops this one and carries its articles): never sent.
            continue;
        }
        if wanted.shard.is_some_and(|s| !s.contains(&p.address)) {
            // Another shard's: released with this run's claims.
            continue;
        }
        if let Some(why) = wanted.refuses(&p) {
            say.detail(format!(
                "not sending {} to {}: {why}",
                p.message_id, p.address
            ));
            finals.push((p, Status::Dropped, why));
            dropped += 1;
            continue;
        }
        match job(rows.len(), &p, how.sender) {
            Ok(job) => {
                jobs.push(job);
                rows.push(p);
            }
            Err(why) => finals.push((p, Status::Failed, why)),
        }
    }
    if !finals.is_empty() {
        let outcomes: Vec<ledger::Outcome<'_>> = finals
            .iter()
            .map(|(p, status, why)| ledger::Outcome {
                issue: &p.issue,
                recipient: &p.recipient,
                status: *status,
                error: Some(why),
                refused: false,
            })
            .collect();
        ledger.record_all(&outcomes, (how.clock)())?;
    }
    let tally = Tally {
        total: jobs.len(),
        dropped,
        relays: how
            .relays
            .iter()
            .map(|r| tally::RelayTally {
                name: r.name.clone(),
                ..tally::RelayTally::default()
            })
            .collect(),
        ..Tally::default()
    };
    let expected = jobs.len() + newcomers.len();
    let weights: Vec<u32> = how.relays.iter().map(|r| r.weight).collect();
    let queue = worker::Queue::new(&weights);
    queue.push(jobs);
    let inbox = Inbox::new(fresh.is_some());
    let rows = std::sync::RwLock::new(rows);
    let messages = ledger.messages();
    let bar = progress::Delivery::start(expected, say.is_quiet());
    let result = std::thread::scope(|scope| {
        let (rows, messages, queue, inbox) = (&rows, &messages, &queue, &inbox);
        let fetch = move |key: usize| {
            let (issue, recipient) = {
                let rows = rows.read().expect("rows lock");
                (rows[key].issue.clone(), rows[key].recipient.clone())
            };
            messages.read(&issue, &recipient)
        };
        let reports = move |report| inbox.put_report(report).is_ok();
        scope.spawn(move || {
            worker::deliver(queue, expected, how.relays, &fetch, &reports);
            inbox.workers_done();
        });
        if let Some(f) = &fresh {
            scope.spawn(move || {
                let made = f
                    .source
                    .each(&mut |made| inbox.put_made(made).map_err(|_| stopped()));
                inbox.composer_done(made);
            });
        } else {
            queue.close();
        }
        let recorder = Recorder {
            fresh: fresh.as_ref(),
            rows,
            queue,
            bar: &bar,
            how,
            tally,
        };
        let result = recorder.run(ledger, inbox);
        if result.is_err() {
            // Nothing more is sent or fixed; every thread stops at its
            // next step.
            queue.abandon();
            inbox.close();
        }
        result
    });
    drop(bar);
    let mut tally = result?;
    for (relay, down) in tally.relays.iter_mut().zip(queue.down()) {
        relay.down = down;
    }
    // What this run did not finish is the next run's. Should this fail, the
    // next run takes the claims back all the same (it holds the lock).
    if let Err(e) = ledger.release_claims() {
        say.warn(format!("{e:#}"));
    }
    Ok(tally)
}

/// The error composing stops with when the recorder has stopped (the
/// recorder's own error is the one reported).
fn stopped() -> Failure {
    Failure::Error(anyhow::anyhow!(
        "stopped: the state database could not be written"
    ))
}

/// The job that sends `p` (the caller's row `key`), or why it cannot be
/// sent.
fn job(key: usize, p: &ledger::Pending, sender: EnvelopeSender<'_>) -> Result<worker::Job, String> {
    let recipient = p.address.parse::<Address>().map_err(|e| e.to_string())?;
    Ok(worker::Job {
        key,
        sender: sender(&p.address),
        recipient,
    })
}

/// The recorder: the thread that owns the ledger. It fixes what is
/// composed and records what the workers report, everything that arrived
/// together in one transaction; only after that commit does a new message
/// become a job, and a worker learn that its outcome is recorded.
struct Recorder<'r, 'a> {
    fresh: Option<&'r Fresh<'a>>,
    /// What each job sends; a job's key indexes it.
    rows: &'r std::sync::RwLock<Vec<ledger::Pending>>,
    queue: &'r worker::Queue,
    bar: &'r progress::Delivery,
    how: &'r Sending<'a>,
    tally: Tally,
}

impl Recorder<'_, '_> {
    fn run(mut self, ledger: &mut dyn Ledger, inbox: &Inbox<'_>) -> Result<Tally, Failure> {
        let say = self.how.say;
        let mut fixed_total = 0;
        let mut failed = None;
        loop {
            let taken = inbox.take();
            let rows_before = self.rows.read().expect("rows lock").len();
            let mut new_rows = Vec::with_capacity(taken.made.len());
            let deliveries: Vec<NewDelivery<'_>> = taken
                .made
                .iter()
                .map(|m| NewDelivery {
                    address: m.address,
                    message_id: &m.message_id,
                    message: &m.packed,
                    article_ids: m.article_ids.clone(),
                })
                .collect();
            if let Some(f) = self.fresh {
                for m in &taken.made {
                    new_rows.push(ledger::Pending {
                        issue: f.issue.clone(),
                        recipient: RecipientKey::of(m.address),
                        address: m.address.to_owned(),
                        message_id: m.message_id.clone(),
                    });
                }
            }
            let committed = {
                let rows = self.rows.read().expect("rows lock");
                let outcomes: Vec<ledger::Outcome<'_>> = taken
                    .reports
                    .iter()
                    .map(|report| outcome(&rows[report.key], &report.outcome))
                    .collect();
                let fixing = self.fresh.map(|f| ledger::Fixing {
                    issue: f.issue,
                    at: f.at,
                    deliveries: &deliveries,
                });
                ledger.commit_fixed(fixing.as_ref(), &outcomes, (self.how.clock)())
            };
            // Which of the new messages another run (sharing the ledger)
            // fixed first.
            let (committed, lost) = match committed {
                Ok(lost) => (Ok(()), lost),
                Err(e) => (Err(e), Vec::new()),
            };
            if let Err(e) = committed {
                // Nothing more may be sent: an outcome that cannot be
                // recorded is a duplicate on the next run. The reports not
                // recorded stay pending; the messages not fixed are
                // composed by the next run.
                let t = &self.tally;
                return Err(e
                    .context(format!(
                        "sending stopped: the outcome of {} messages could not be recorded \
                         ({} recorded before); they stay pending, and the next `digest --send` \
                         sends them again (same Message-ID)",
                        taken.reports.len(),
                        t.sent + t.rejected + t.deferred
                    ))
                    .into());
            }
            // Fixed: the new messages may be sent — but not those another
            // run (sharing the ledger) fixed first: they are its to send.
            if !lost.is_empty() {
                let lost: HashSet<usize> = lost.into_iter().collect();
                let mut i = 0;
                new_rows.retain(|_| {
                    i += 1;
                    !lost.contains(&(i - 1))
                });
            }
            fixed_total += new_rows.len();
            let mut jobs = Vec::with_capacity(new_rows.len());
            let mut unsendable = Vec::new();
            for (i, p) in new_rows.iter().enumerate() {
                match job(rows_before + i, p, self.how.sender) {
                    Ok(job) => jobs.push(job),
                    Err(why) => unsendable.push((i, why)),
                }
            }
            self.tally.total += jobs.len();
            self.rows.write().expect("rows lock").extend(new_rows);
            self.queue.push(jobs);
            self.fail_unsendable(ledger, rows_before, &unsendable)?;
            // Recorded: each sender may send its next message.
            {
                let rows = self.rows.read().expect("rows lock");
                for report in taken.reports {
                    let p = &rows[report.key];
                    tell(say, &report.outcome, &p.message_id, &p.address);
                    self.bar.record(match report.outcome {
                        Outcome::Sent => Tick::Sent,
                        Outcome::Rejected(_) | Outcome::Refused(_) => Tick::Failed,
                        Outcome::Deferred(_) => Tick::Deferred,
                    });
                    self.tally.count(report.relay, &report.outcome);
                    let _ = report.recorded.send(());
                }
            }
            match taken.composed {
                Some(Ok(())) => {
                    say.detail(format!("composed and fixed {fixed_total} new messages"));
                    self.queue.close();
                }
                Some(Err(e)) => {
                    // Nothing more is sent; the outcomes of what is on its
                    // way are still recorded (the ledger works), so the
                    // error costs no duplicate.
                    self.queue.abandon();
                    failed = Some(e);
                }
                None => {}
            }
            if taken.last {
                return failed.map_or(Ok(self.tally), Err);
            }
        }
    }

    /// Records as failed the new messages whose address cannot be an SMTP
    /// recipient (`unsendable`: index after `first`, and why).
    fn fail_unsendable(
        &mut self,
        ledger: &mut dyn Ledger,
        first: usize,
        unsendable: &[(usize, String)],
    ) -> Result<(), Failure> {
        if unsendable.is_empty() {
            return Ok(());
        }
        let rows = self.rows.read().expect("rows lock");
        let outcomes: Vec<ledger::Outcome<'_>> = unsendable
            .iter()
            .map(|(i, why)| {
                let p = &rows[first + i];
                ledger::Outcome {
                    issue: &p.issue,
                    recipient: &p.recipient,
                    status: Status::Failed,
                    error: Some(why),
                    refused: false,
                }
            })
            .collect();
        ledger.record_all(&outcomes, (self.how.clock)())?;
        self.tally.rejected += unsendable.len();
        self.tally.total += unsendable.len();
        Ok(())
    }
}

/// What the ledger records of a report on `p`.
fn outcome<'p>(p: &'p ledger::Pending, outcome: &'p Outcome) -> ledger::Outcome<'p> {
    let (status, error) = match outcome {
        Outcome::Sent => (Status::Sent, None),
        Outcome::Rejected(why) | Outcome::Refused(why) => (Status::Failed, Some(why.as_str())),
        Outcome::Deferred(why) => (Status::Pending, Some(why.as_str())),
    };
    ledger::Outcome {
        issue: &p.issue,
        recipient: &p.recipient,
        status,
        error,
        // Suppressed in the same transaction as the outcome.
        refused: matches!(outcome, Outcome::Refused(_)),
    }
}

/// What `-v` and warnings say of one outcome.
fn tell(say: Verbosity, outcome: &Outcome, message_id: &str, address: &str) {
    match outcome {
        Outcome::Sent => say.detail(format!("sent {message_id} to {address}")),
        Outcome::Rejected(why) => say.warn(format!("{address} refused the digest for good: {why}")),
        Outcome::Refused(why) => say.warn(format!(
            "{address} was refused for good ({why}); it is now on the suppression list"
        )),
        Outcome::Deferred(why) => say.detail(format!("{address} deferred: {why}")),
    }
}
