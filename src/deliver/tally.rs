//! Counting a run's outcomes, and the summary a person reads at the end.

use std::collections::HashMap;

use super::worker::Outcome;
use crate::model::IssueKey;

/// What this run did with the messages it tried.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Messages the run set out to send.
    pub total: usize,
    pub sent: usize,
    pub rejected: usize,
    pub deferred: usize,
    /// Pending messages no longer wanted (see [`super::Wanted`]): final,
    /// never sent, not failures.
    pub dropped: usize,
    /// Why messages were deferred, with how many each.
    pub reasons: HashMap<String, usize>,
    /// Per relay, in the config's order: what each did.
    pub relays: Vec<RelayTally>,
}

/// What one relay did in this run.
#[derive(Debug, Default, Clone)]
pub struct RelayTally {
    pub name: String,
    pub sent: usize,
    /// Refused for good (the message or the address).
    pub failed: usize,
    /// Left pending after this run's retries on this relay (or not known
    /// to have arrived).
    pub deferred: usize,
    /// Why the relay got no more messages this run, if it was found down
    /// (its messages went to the others).
    pub down: Option<String>,
}

impl Tally {
    /// Adds the counts of a later round of the same run (per relay too:
    /// relays are in the config's order in both; a relay found down stays
    /// down with its first reason).
    pub fn add(&mut self, more: Tally) {
        self.total += more.total;
        self.sent += more.sent;
        self.rejected += more.rejected;
        self.deferred += more.deferred;
        self.dropped += more.dropped;
        for (why, n) in more.reasons {
            *self.reasons.entry(why).or_insert(0) += n;
        }
        if self.relays.is_empty() {
            self.relays = more.relays;
            return;
        }
        for (mine, theirs) in self.relays.iter_mut().zip(more.relays) {
            mine.sent += theirs.sent;
            mine.failed += theirs.failed;
            mine.deferred += theirs.deferred;
            if mine.down.is_none() {
                mine.down = theirs.down;
            }
        }
    }

    /// Counts one outcome, reported by relay `relay`.
    pub fn count(&mut self, relay: usize, outcome: &Outcome) {
        if let Some(r) = self.relays.get_mut(relay) {
            match outcome {
                Outcome::Sent => r.sent += 1,
                Outcome::Rejected(_) | Outcome::Refused(_) => r.failed += 1,
                Outcome::Deferred(_) => r.deferred += 1,
            }
        }
        match outcome {
            Outcome::Sent => self.sent += 1,
            Outcome::Rejected(_) | Outcome::Refused(_) => self.rejected += 1,
            Outcome::Deferred(why) => {
                self.deferred += 1;
                *self.reasons.entry(why.clone()).or_insert(0) += 1;
            }
        }
    }

    /// Messages never tried because the run stopped early.
    pub fn untried(&self) -> usize {
        self.total
            .saturating_sub(self.sent + self.rejected + self.deferred)
    }
}

/// How a send ended, from this run's tally and the ledger's counts.
pub struct Summary {
    pub issue: IssueKey,
    pub tally: Tally,
    /// Recipients who had this issue before this run.
    pub already: usize,
    /// Recipients of this issue refused for good (this run or earlier).
    pub failed_issue: usize,
    /// Messages still pending, every issue.
    pub pending_left: usize,
    /// Subscribers with nothing new.
    pub nothing_new: usize,
    /// Subscribers on the suppression list.
    pub suppressed: usize,
    pub seconds: f64,
}

impl Summary {
    /// Every recipient of every issue has their copy, or was refused for good.
    pub fn complete(&self) -> bool {
        self.pending_left == 0 && self.failed_issue == 0
    }

    /// The closing line.
    pub fn headline(&self) -> String {
        let t = &self.tally;
        let dropped = match t.dropped {
            0 => String::new(),
            n => format!(", {n} dropped (no longer subscribed, or expired)"),
        };
        format!(
            "digest {}: {} sent, {} already had it, {} failed permanently, {} pending{dropped} \
             ({} to send this run; {} with nothing new; {} suppressed) in {:.2} s",
            self.issue,
            t.sent,
            self.already,
            t.rejected,
            self.pending_left,
            t.total,
            self.nothing_new,
            self.suppressed,
            self.seconds
        )
    }

    /// With several relays, one line each: what it did, and whether it was
    /// found down; nothing with one relay (the headline says it all).
    pub fn relay_lines(&self) -> Vec<String> {
        if self.tally.relays.len() < 2 {
            return Vec::new();
        }
        self.tally
            .relays
            .iter()
            .map(|r| {
                let down = match &r.down {
                    Some(why) => format!("; down, its messages went to the others: {why}"),
                    None => String::new(),
                };
                format!(
                    "  relay {}: {} sent, {} deferred, {} failed{down}",
                    r.name, r.sent, r.deferred, r.failed
                )
            })
            .collect()
    }

    /// For an incomplete run: why messages are still pending (most common
    /// first) and what to do.
    pub fn details(&self) -> Vec<String> {
        let t = &self.tally;
        let mut reasons: Vec<(&String, &usize)> = t.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let mut lines: Vec<String> = reasons
            .iter()
            .take(5)
            .map(|(why, n)| format!("  {n} pending: {why}"))
            .collect();
        if t.untried() > 0 {
            lines.push(format!(
                "  {} pending: not tried, the run stopped early",
                t.untried()
            ));
        }
        if t.deferred > 0 || self.pending_left > 0 {
            lines.push(
                "bulletin: delivery incomplete; run `bulletin digest --send` again to finish the pending messages"
                    .into(),
            );
        }
        lines
    }
}
