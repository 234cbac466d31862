//! Delivery: the exactly-once path from a composed issue to the relay.
//!
//! 1. [`RunLock`] — one `digest --send` at a time per ledger; holding it, a
//!    run takes back what runs that died had claimed ([`RunLock::reclaim`]).
//! 2. [`fix_issue`] — every message of the issue composed and *persisted*
//!    in the ledger (bytes, Message-ID, articles) in one transaction.
//!    Nothing is sent before its bytes are durable.
//! 3. [`send_pending`] — every pending row (this issue's and any earlier
//!    interrupted run's) is *claimed* for this run in the ledger (a commit
//!    before the first is sent: two senders never hold the same message);
//!    those no longer [`Wanted`] are dropped, the others become
//!    [`worker::Job`]s; the workers *send* them
//!    over a [`Transport`] ([`smtp::Smtp`] or [`sendmail::Sendmail`]); this
//!    thread, the recorder, *records* each outcome in the ledger — outcomes
//!    that arrive together in one transaction (a group commit) — before
//!    their workers may take their next message. A crash therefore loses at
//!    most one outcome per connection, and that message goes out again
//!    (same bytes, same Message-ID) on the next run.
//! 4. [`tally::Summary`] — what the run did, for the command to print.
//!
//! This is the only module that talks to a mail server. It reads neither
//! the clock nor the environment: both come in as values.

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
use crate::model::{IssueKey, RecipientKey};
use crate::progress::{self, Tick};
use crate::report::Verbosity;

pub use lock::RunLock;
pub use tally::{Summary, Tally};
pub use transport::Transport;
pub use worker::{Outcome, Policy};

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

/// Composes every planned message of `issue` and fixes it in the ledger,
/// all or nothing.
pub fn fix_issue(
    ledger: &mut dyn Ledger,
    composer: &Composer<'_>,
    issue: &IssueKey,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    ledger.fix_issue(issue, now, &mut |fixer| {
        composer.each(pack, |(packed, c)| {
            let delivery = NewDelivery {
                address: &c.subscriber.email,
                message_id: &c.message_id,
                message: &packed,
                article_ids: c.article_ids,
            };
            fixer.add(&delivery).map_err(Failure::Error)
        })
    })
}

/// A composed message as the ledger keeps it, compressed on the composing
/// thread (the thread that stores them only stores).
fn pack(mut c: Composed<'_>) -> Result<(Packed, Composed<'_>), Failure> {
    let packed = Packed::new(&c.bytes);
    (c.bytes, c.html) = (Vec::new(), String::new());
    Ok((packed, c))
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

/// Delivers every message still pending in the ledger and still wanted;
/// returns what this run did. `clock` stamps each recorded outcome.
pub fn send_pending(
    ledger: &mut dyn Ledger,
    wanted: &Wanted<'_>,
    transport: &dyn Transport,
    policy: &Policy,
    sender: EnvelopeSender<'_>,
    clock: fn() -> DateTime<Utc>,
    say: Verbosity,
) -> Result<Tally, Failure> {
    let pending = ledger.claim_pending()?;
    let mut jobs = Vec::with_capacity(pending.len());
    let mut finals = Vec::new();
    let mut dropped = 0;
    for (key, p) in pending.iter().enumerate() {
        if let Some(why) = wanted.refuses(p) {
            say.detail(format!(
                "not sending {} to {}: {why}",
                p.message_id, p.address
            ));
            finals.push((p, Status::Dropped, why));
            dropped += 1;
            continue;
        }
        match p.address.parse::<Address>() {
            Ok(recipient) => jobs.push(worker::Job {
                key,
                sender: sender(&p.address),
                recipient,
            }),
            Err(e) => finals.push((p, Status::Failed, e.to_string())),
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
        ledger.record_all(&outcomes, clock())?;
    }
    let mut tally = Tally {
        total: jobs.len(),
        dropped,
        ..Tally::default()
    };
    let bar = progress::Delivery::start(jobs.len(), say.is_quiet());
    let (reports, received) = std::sync::mpsc::channel::<worker::Report>();
    let messages = ledger.messages();
    let recorded = std::thread::scope(|scope| -> Result<(), Failure> {
        let pending = &pending;
        let messages = &messages;
        let fetch = move |key: usize| {
            let p = &pending[key];
            messages.read(&p.issue, &p.recipient)
        };
        scope.spawn(move || worker::deliver(jobs, transport, policy, &fetch, reports));
        // Outcomes that arrive together are committed together (one sync to
        // disk); every sender waits until its outcome is on disk.
        while let Ok(first) = received.recv() {
            let mut batch = vec![first];
            batch.extend(received.try_iter());
            let outcomes: Vec<ledger::Outcome<'_>> = batch
                .iter()
                .map(|report| {
                    let p = &pending[report.key];
                    let (status, error) = match &report.outcome {
                        Outcome::Sent => (Status::Sent, None),
                        Outcome::Rejected(why) | Outcome::Refused(why) => {
                            (Status::Failed, Some(why.as_str()))
                        }
                        Outcome::Deferred(why) => (Status::Pending, Some(why.as_str())),
                    };
                    ledger::Outcome {
                        issue: &p.issue,
                        recipient: &p.recipient,
                        status,
                        error,
                        // Suppressed in the same transaction as the outcome.
                        refused: matches!(report.outcome, Outcome::Refused(_)),
                    }
                })
                .collect();
            if let Err(e) = ledger.record_all(&outcomes, clock()) {
                // Nothing more may be sent: an outcome that cannot be
                // recorded is a duplicate on the next run. Dropping the
                // reports tells their senders the recorder is gone; those
                // still sending report once more and are told the same.
                // Every sender has stopped when the channel closes, so the
                // scope can end (returning here at once would wait for
                // them forever: the ones whose reports sit unread in the
                // channel wait for an answer).
                let unrecorded = batch.len();
                drop(outcomes);
                drop(batch);
                let unrecorded = unrecorded + received.iter().count();
                return Err(e
                    .context(format!(
                        "sending stopped: the outcome of {unrecorded} messages could not be recorded \
                         ({} recorded before); they stay pending, and the next `digest --send` \
                         sends them again (same Message-ID)",
                        tally.sent + tally.rejected + tally.deferred
                    ))
                    .into());
            }
            for report in batch {
                let p = &pending[report.key];
                tell(say, &report.outcome, &p.message_id, &p.address);
                bar.record(match report.outcome {
                    Outcome::Sent => Tick::Sent,
                    Outcome::Rejected(_) | Outcome::Refused(_) => Tick::Failed,
                    Outcome::Deferred(_) => Tick::Deferred,
                });
                tally.count(&report.outcome);
                // Recorded: the sender may take its next message.
                let _ = report.recorded.send(());
            }
        }
        Ok(())
    });
    drop(bar);
    recorded?;
    // What this run did not finish is the next run's. Should this fail, the
    // next run takes the claims back all the same (it holds the lock).
    if let Err(e) = ledger.release_claims() {
        say.warn(format!("{e:#}"));
    }
    Ok(tally)
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
