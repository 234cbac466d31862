//! What the recorder (the thread that owns the ledger) is handed: messages
//! just composed, to fix, and outcomes the workers report, to record. Two
//! lanes behind one lock, so the recorder waits for either and takes
//! everything there is at once — one transaction for all of it (a group
//! commit). Composed messages wait in a bounded lane: composing pauses
//! when the recorder falls behind, instead of filling memory.

use std::sync::{Condvar, Mutex};

use super::worker::Report;
use crate::Failure;
use crate::ledger::Packed;
use crate::model::ArticleId;

/// A message composed for this run, packed for the ledger.
pub struct Made<'a> {
    /// The address as subscribed (what RCPT TO will carry).
    pub address: &'a str,
    pub message_id: String,
    pub packed: Packed,
    pub article_ids: Vec<&'a ArticleId>,
}

/// How many composed messages may wait for the recorder (~25 KB each,
/// packed).
const WAITING: usize = 256;

pub struct Inbox<'a> {
    lanes: Mutex<Lanes<'a>>,
    /// The recorder waits here for something to take.
    filled: Condvar,
    /// The composer waits here for room.
    emptied: Condvar,
}

struct Lanes<'a> {
    made: Vec<Made<'a>>,
    reports: Vec<Report>,
    /// How composing ended, once it has (taken by the recorder).
    composed: Option<Result<(), Failure>>,
    /// The composer is finished (or there was none).
    composer_done: bool,
    /// Every worker is finished.
    workers_done: bool,
    /// The recorder stopped: nothing more is taken.
    closed: bool,
}

/// What the recorder takes at once.
pub struct Taken<'a> {
    pub made: Vec<Made<'a>>,
    pub reports: Vec<Report>,
    /// Composing ended with this since the last take.
    pub composed: Option<Result<(), Failure>>,
    /// Nothing more will come.
    pub last: bool,
}

/// The recorder has stopped (a commit failed): stop too.
#[derive(Debug)]
pub struct Closed;

impl<'a> Inbox<'a> {
    /// An inbox; `composing`: whether a composer will put messages in.
    pub fn new(composing: bool) -> Inbox<'a> {
        Inbox {
            lanes: Mutex::new(Lanes {
                made: Vec::new(),
                reports: Vec::new(),
                composed: None,
                composer_done: !composing,
                workers_done: false,
                closed: false,
            }),
            filled: Condvar::new(),
            emptied: Condvar::new(),
        }
    }

    /// A composed message, waiting for room.
    pub fn put_made(&self, made: Made<'a>) -> Result<(), Closed> {
        let mut lanes = self.lanes.lock().expect("inbox lock");
        while lanes.made.len() >= WAITING && !lanes.closed {
            lanes = self.emptied.wait(lanes).expect("inbox lock");
        }
        if lanes.closed {
            return Err(Closed);
        }
        lanes.made.push(made);
        self.filled.notify_one();
        Ok(())
    }

    /// A worker's report.
    pub fn put_report(&self, report: Report) -> Result<(), Closed> {
        let mut lanes = self.lanes.lock().expect("inbox lock");
        if lanes.closed {
            return Err(Closed);
        }
        lanes.reports.push(report);
        self.filled.notify_one();
        Ok(())
    }

    /// Composing has ended (with `result`).
    pub fn composer_done(&self, result: Result<(), Failure>) {
        let mut lanes = self.lanes.lock().expect("inbox lock");
        lanes.composed = Some(result);
        lanes.composer_done = true;
        self.filled.notify_one();
    }

    pub fn workers_done(&self) {
        self.lanes.lock().expect("inbox lock").workers_done = true;
        self.filled.notify_one();
    }

    /// Everything there is, waiting until there is something (or nothing
    /// more will come).
    pub fn take(&self) -> Taken<'a> {
        let mut lanes = self.lanes.lock().expect("inbox lock");
        loop {
            let last = lanes.composer_done && lanes.workers_done;
            let something =
                !lanes.made.is_empty() || !lanes.reports.is_empty() || lanes.composed.is_some();
            if something || last {
                self.emptied.notify_all();
                return Taken {
                    made: std::mem::take(&mut lanes.made),
                    reports: std::mem::take(&mut lanes.reports),
                    composed: lanes.composed.take(),
                    last,
                };
            }
            lanes = self.filled.wait(lanes).expect("inbox lock");
        }
    }

    /// The recorder stops: whatever waits in the inbox is dropped (a
    /// worker waiting for its report to be recorded is told so), and every
    /// later put fails.
    pub fn close(&self) {
        let mut lanes = self.lanes.lock().expect("inbox lock");
        lanes.closed = true;
        lanes.made.clear();
        lanes.reports.clear();
        self.emptied.notify_all();
    }
}
