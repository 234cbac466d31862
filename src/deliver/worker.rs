//! The senders: a fixed number of worker threads, each with one session of
//! the transport, take messages from a shared queue and report every
//! outcome over a channel — then wait until it is recorded before they send
//! the next one, so a crash loses at most one outcome per connection.
//!
//! The queue is fed while the workers run (messages become jobs as their
//! bytes are committed) and closed when nothing more will come. A worker
//! holds at most one job ahead: the session may begin that message's
//! transaction together with the current message's content (see
//! [`Session::send`]), but its content goes out only after the current
//! outcome is recorded. With `max_rate` set nothing is begun ahead (a paced
//! message would keep the server waiting in the middle of a transaction).
//!
//! With several relays ([`Relay`]), each has its own workers (its
//! `connections`), pacing (`max_rate`) and breaker, and the queue hands
//! each new job to one relay by smooth weighted round-robin (nginx's: over
//! any stretch of jobs each relay's share is its weight's, interleaved).
//! A job is on one relay at a time: it sits in that relay's line of the
//! queue until one of its workers takes it, and leaves it only when the
//! relay is found down. A relay that is down — no session through every
//! retry (refused, TLS, login), the sender refused, or `retries + 1`
//! dropped connections or 421s in a row while another relay is up — gets
//! no more jobs this run: its waiting jobs, and its in-flight one when
//! that one was certainly not accepted (no session, a 421 or a drop
//! before the end of the content, a refused sender), go to the others by
//! their weights. A message whose content went out without a reply
//! ([`Failure::Ambiguous`]) is never moved: it stays pending, as with one
//! relay. When the last relay is down, the run stops as it did with one.
//!
//! What a failure means for the run is decided here:
//! - temporary failures and dropped connections are retried on a new
//!   session with backoff, a bounded number of times, then left pending;
//! - a refused sender stops the run, everything left pending;
//! - no session at all (unreachable, TLS, login) starts a shared backoff,
//!   and the run stops after `retries + 1` failed attempts in a row (see
//!   `Breaker`), instead of trying each of thousands of messages in turn.

use std::collections::VecDeque;
use std::sync::mpsc::SyncSender;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use lettre::Address;

use super::transport::{Envelope, Failure, Letter, Session, Transport};

/// One message to deliver; its bytes are fetched when it is sent.
#[derive(Debug, Clone)]
pub struct Job {
    /// The caller's index of the message.
    pub key: usize,
    /// The envelope sender (MAIL FROM), derived for this message.
    pub sender: Address,
    pub recipient: Address,
}

/// What happened to one message in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Refused for good (5xx): recorded, never retried.
    Rejected(String),
    /// The recipient's address refused for good (5xx to RCPT): recorded as
    /// a refusal, and the address suppressed.
    Refused(String),
    /// Still undelivered after this run's retries: stays pending.
    Deferred(String),
}

/// A delivery report from a worker.
pub struct Report {
    pub key: usize,
    /// The relay (its index in the run's list) that had the job.
    pub relay: usize,
    pub outcome: Outcome,
    /// Dropped (or answered) once the outcome is recorded: the sender waits
    /// for it before it takes another job, so a stalled or dead recorder
    /// stops sending at once — at most one unrecorded message per connection.
    pub recorded: SyncSender<()>,
}

/// How hard to try, and how fast.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Attempts after the first for a temporary failure, within one run.
    pub retries: u32,
    /// Pause before the first retry; doubled for each further one.
    pub retry_delay: Duration,
    /// Messages per second across all sessions; 0 is unlimited.
    pub max_rate: f64,
}

/// One relay: a transport, how hard to try it, its share of the messages.
pub struct Relay<'a> {
    /// What the summary calls it.
    pub name: String,
    pub transport: &'a dyn Transport,
    pub policy: Policy,
    /// Its share of the messages, relative to the others' (at least 1).
    pub weight: u32,
}

/// Reads a job's message (from the ledger), on a sender thread.
pub type Fetch<'a> = &'a (dyn Fn(usize) -> anyhow::Result<Vec<u8>> + Sync);

/// Hands a report to the recorder; false when the recorder is gone.
pub type Reports<'a> = &'a (dyn Fn(Report) -> bool + Sync);

/// Sends every job `queue` is given until it is closed and empty,
/// reporting each outcome on `reports` as it happens, through `relays`
/// (each on at most `expected` sessions: there is no use for more sessions
/// than jobs). Returns when every job has an outcome (or the run was
/// stopped). `queue` must have been made for these relays
/// ([`Queue::new`]).
pub fn deliver(
    queue: &Queue,
    expected: usize,
    relays: &[Relay<'_>],
    fetch: Fetch<'_>,
    reports: Reports<'_>,
) {
    let lines: Vec<Line<'_>> = relays
        .iter()
        .enumerate()
        .map(|(index, relay)| Line {
            index,
            relay,
            pacer: Pacer::new(relay.policy.max_rate),
            breaker: Breaker::new(relay.policy.retries, relay.policy.retry_delay),
            drops: Mutex::new(0),
        })
        .collect();
    std::thread::scope(|scope| {
        for line in &lines {
            let workers = line.relay.transport.sessions().clamp(1, expected.max(1));
            for _ in 0..workers {
                let worker = Worker { queue, line, fetch };
                scope.spawn(move || worker.run(reports));
            }
        }
    });
}

/// One relay during a run: what its workers share.
struct Line<'a> {
    index: usize,
    relay: &'a Relay<'a>,
    pacer: Pacer,
    breaker: Breaker,
    /// Dropped connections and 421s in a row, with no reply between.
    drops: Mutex<u32>,
}

struct Worker<'a> {
    queue: &'a Queue,
    line: &'a Line<'a>,
    fetch: Fetch<'a>,
}

/// A job taken from the queue, with its message read.
struct Taken {
    job: Job,
    attempt: u32,
    bytes: Result<Vec<u8>, Failure>,
}

impl Worker<'_> {
    fn run(&self, reports: Reports<'_>) {
        let relay = self.line.index;
        let transport = self.line.relay.transport;
        let mut session = transport.session();
        let ahead = self.line.pacer.interval.is_none();
        // The job whose transaction may be begun with the current message.
        let mut upcoming: Option<Taken> = None;
        loop {
            let current = match upcoming.take() {
                Some(_) if self.queue.is_abandoned() => {
                    self.queue.done();
                    break;
                }
                // Its relay is down: begun there at most (never its
                // content), so it goes to another.
                Some(taken) if !self.queue.is_live(relay) => {
                    self.queue.moved(taken.job, taken.attempt);
                    break;
                }
                Some(taken) => taken,
                None => match self.queue.next(relay) {
                    Some((job, attempt)) => self.take(job, attempt),
                    None => break,
                },
            };
            upcoming = match (&current.bytes, ahead) {
                (Ok(_), true) => self
                    .queue
                    .try_next(relay)
                    .map(|(job, attempt)| self.take(job, attempt)),
                _ => None,
            };
            let result = match &current.bytes {
                Err(failure) => Err(failure.clone()),
                Ok(bytes) => {
                    self.line.pacer.wait();
                    let next = upcoming.as_ref().and_then(|t| {
                        Some(Letter {
                            envelope: envelope(&t.job),
                            message: t.bytes.as_deref().ok()?,
                        })
                    });
                    self.send(session.as_mut(), &current.job, bytes, next.as_ref())
                }
            };
            let (job, attempt) = (current.job, current.attempt);
            let Some(outcome) = self.outcome(result, &job, attempt) else {
                continue;
            };
            // A server reply may quote what it was sent: never show or store
            // a secret, in any form it went out in.
            let outcome = match outcome {
                Outcome::Rejected(why) => Outcome::Rejected(transport.redact(&why)),
                Outcome::Refused(why) => Outcome::Refused(transport.redact(&why)),
                Outcome::Deferred(why) => Outcome::Deferred(transport.redact(&why)),
                sent => sent,
            };
            self.queue.done();
            let (recorded, wait) = std::sync::mpsc::sync_channel(1);
            let report = Report {
                key: job.key,
                relay,
                outcome,
                recorded,
            };
            if !reports(report) || wait.recv().is_err() {
                // The recorder is gone: stop sending.
                self.queue.abandon();
                if upcoming.take().is_some() {
                    self.queue.done();
                }
                break;
            }
        }
        session.close();
    }

    /// A job with its message read from the ledger.
    fn take(&self, job: Job, attempt: u32) -> Taken {
        let bytes = (self.fetch)(job.key).map_err(|e| {
            Failure::Temporary(format!(
                "cannot read the message from the state store: {e:#}"
            ))
        });
        Taken {
            job,
            attempt,
            bytes,
        }
    }

    /// One attempt, opening the session first when needed (after the
    /// shared backoff of earlier failed openings).
    fn send(
        &self,
        session: &mut dyn Session,
        job: &Job,
        bytes: &[u8],
        next: Option<&Letter<'_>>,
    ) -> Result<(), Failure> {
        if !session.is_open() {
            self.line.breaker.wait();
            if !self.queue.is_live(self.line.index) {
                // Found down while this worker waited: nothing was tried,
                // so the message goes to another relay.
                return Err(Failure::Connect(format!(
                    "relay {} is down",
                    self.line.relay.name
                )));
            }
            session.open()?;
            self.line.breaker.connected();
        }
        let letter = Letter {
            envelope: envelope(job),
            message: bytes,
        };
        session.send(&letter, next)
    }

    /// What an attempt means: an outcome to record, or `None` when the job
    /// went back to the queue (to this relay, or to another when this one
    /// is down and the message was certainly not accepted).
    fn outcome(&self, result: Result<(), Failure>, job: &Job, attempt: u32) -> Option<Outcome> {
        let line = self.line;
        let policy = &line.relay.policy;
        let relay = line.index;
        if !matches!(result, Err(Failure::Connection(_) | Failure::Connect(_))) {
            *line.drops.lock().expect("drops lock") = 0;
        }
        // Not accepted, and the relay is down (found so by this worker or
        // another): another relay sends it.
        let not_accepted = matches!(
            result,
            Err(Failure::Connect(_) | Failure::Connection(_) | Failure::Sender(_))
        );
        if not_accepted && !self.queue.is_live(relay) && self.queue.moved(job.clone(), attempt) {
            return None;
        }
        Some(match result {
            Ok(()) => Outcome::Sent,
            Err(Failure::Connect(why)) => {
                if line.breaker.failed() {
                    // The server has been out of reach through every retry:
                    // no more for it; with no other relay, the run stops
                    // here, everything not sent stays pending.
                    if self.queue.relay_down(
                        relay,
                        format!("{why} (gave up after {} attempts)", policy.retries + 1),
                    ) && self.queue.moved(job.clone(), attempt)
                    {
                        return None;
                    }
                    self.queue.abandon();
                    Outcome::Deferred(format!(
                        "{why} (gave up after {} attempts)",
                        policy.retries + 1
                    ))
                } else {
                    // Not this message's fault: it waits for the next try.
                    self.queue
                        .retry(relay, job.clone(), attempt, Duration::ZERO);
                    return None;
                }
            }
            Err(Failure::Sender(why)) => {
                if self
                    .queue
                    .relay_down(relay, format!("refuses the sender {}: {why}", job.sender))
                    && self.queue.moved(job.clone(), attempt)
                {
                    return None;
                }
                self.queue.abandon();
                Outcome::Deferred(format!(
                    "the server refuses the sender {}: {why}; nothing more is sent this run",
                    job.sender
                ))
            }
            Err(Failure::Permanent(why)) => Outcome::Rejected(why),
            Err(Failure::Recipient(why)) => Outcome::Refused(why),
            Err(Failure::Ambiguous(why)) => Outcome::Deferred(format!(
                "no reply after the message was sent ({why}); the server may have it"
            )),
            Err(Failure::Connection(why)) => {
                let drops = {
                    let mut drops = line.drops.lock().expect("drops lock");
                    *drops += 1;
                    *drops
                };
                // Dropped again and again: down, when another relay can
                // take its messages (alone, a relay keeps today's
                // per-message retries).
                if drops > policy.retries
                    && self.queue.others_live(relay)
                    && self.queue.relay_down(
                        relay,
                        format!("{why} ({drops} dropped connections or 421 in a row)"),
                    )
                    && self.queue.moved(job.clone(), attempt)
                {
                    return None;
                }
                self.temporary(why, job, attempt)?
            }
            Err(Failure::Temporary(why)) => self.temporary(why, job, attempt)?,
        })
    }

    /// A temporary failure: retried on this relay after a pause, until
    /// the retries are spent.
    fn temporary(&self, why: String, job: &Job, attempt: u32) -> Option<Outcome> {
        let policy = &self.line.relay.policy;
        if attempt < policy.retries {
            let delay = policy.retry_delay * 2u32.saturating_pow(attempt);
            self.queue
                .retry(self.line.index, job.clone(), attempt + 1, delay);
            return None;
        }
        Some(Outcome::Deferred(why))
    }
}

fn envelope(job: &Job) -> Envelope<'_> {
    Envelope {
        from: &job.sender,
        to: &job.recipient,
    }
}

/// The jobs still to try, each in the line of one relay, some waiting for
/// their retry time; fed while the workers run, until it is closed.
pub struct Queue {
    state: Mutex<QueueState>,
    wake: Condvar,
}

struct QueueState {
    /// Per relay: jobs ready to take.
    ready: Vec<VecDeque<(Job, u32)>>,
    /// Jobs waiting for their retry time: when, on which relay.
    waiting: Vec<(Instant, usize, Job, u32)>,
    /// Per relay: its weight, and its smooth weighted round-robin credit.
    weights: Vec<i64>,
    credit: Vec<i64>,
    /// Per relay: why it is down, once it is (it gets no more jobs).
    down: Vec<Option<String>>,
    /// Jobs taken and not yet finished (they may come back as retries).
    in_flight: usize,
    /// No more jobs will be pushed.
    closed: bool,
    /// The run stopped sending: jobs pushed now are dropped.
    abandoned: bool,
}

impl Default for Queue {
    /// A queue for one relay.
    fn default() -> Queue {
        Queue::new(&[1])
    }
}

impl QueueState {
    /// The relay the next job goes to: smooth weighted round-robin over
    /// the relays that are up (each gains its weight; the richest takes
    /// the job and pays the sum), `None` when every one is down.
    fn pick(&mut self) -> Option<usize> {
        let live: Vec<usize> = (0..self.weights.len())
            .filter(|&r| self.down[r].is_none())
            .collect();
        let total: i64 = live.iter().map(|&r| self.weights[r]).sum();
        for &r in &live {
            self.credit[r] += self.weights[r];
        }
        let best = live
            .iter()
            .copied()
            .max_by_key(|&r| (self.credit[r], std::cmp::Reverse(r)))?;
        self.credit[best] -= total;
        Some(best)
    }

    /// Puts a job in the line of the relay whose turn it is; false when no
    /// relay is up.
    fn place(&mut self, job: Job, attempt: u32) -> bool {
        match self.pick() {
            Some(r) => {
                self.ready[r].push_back((job, attempt));
                true
            }
            None => false,
        }
    }
}

impl Queue {
    /// A queue for relays of these weights (one line each).
    pub fn new(weights: &[u32]) -> Queue {
        let n = weights.len().max(1);
        Queue {
            state: Mutex::new(QueueState {
                ready: (0..n).map(|_| VecDeque::new()).collect(),
                waiting: Vec::new(),
                weights: (0..n)
                    .map(|r| i64::from(weights.get(r).copied().unwrap_or(1).max(1)))
                    .collect(),
                credit: vec![0; n],
                down: vec![None; n],
                in_flight: 0,
                closed: false,
                abandoned: false,
            }),
            wake: Condvar::new(),
        }
    }

    /// Adds jobs to send, each to one relay by weight (nothing, once the
    /// run has stopped sending).
    pub fn push(&self, jobs: impl IntoIterator<Item = Job>) {
        let mut state = self.state.lock().expect("queue lock");
        if !state.abandoned {
            for job in jobs {
                state.place(job, 0);
            }
        }
        self.wake.notify_all();
    }

    /// No more jobs will come: the workers end when these are done.
    pub fn close(&self) {
        self.state.lock().expect("queue lock").closed = true;
        self.wake.notify_all();
    }

    /// The relays found down in this run, with why (by index).
    pub fn down(&self) -> Vec<Option<String>> {
        self.state.lock().expect("queue lock").down.clone()
    }

    /// The next job for `relay` to try, waiting for retries to come due
    /// and for jobs to be pushed; `None` when the relay is down, or the
    /// queue is closed and every job is finished.
    fn next(&self, relay: usize) -> Option<(Job, u32)> {
        let mut state = self.state.lock().expect("queue lock");
        loop {
            let now = Instant::now();
            while let Some(i) = state.waiting.iter().position(|(due, ..)| *due <= now) {
                let (_, r, job, attempt) = state.waiting.swap_remove(i);
                if state.down[r].is_none() {
                    state.ready[r].push_back((job, attempt));
                } else if !state.place(job, attempt) {
                    // No relay left: the run is abandoned.
                }
            }
            if state.down[relay].is_some() {
                self.wake.notify_all();
                return None;
            }
            if let Some(next) = state.ready[relay].pop_front() {
                state.in_flight += 1;
                return Some(next);
            }
            let open = !state.closed && !state.abandoned;
            let ready = state.ready.iter().any(|r| !r.is_empty());
            if !open && !ready && state.waiting.is_empty() && state.in_flight == 0 {
                self.wake.notify_all();
                return None;
            }
            let sleep = state
                .waiting
                .iter()
                .map(|(due, ..)| due.saturating_duration_since(now))
                .min()
                .unwrap_or(Duration::from_millis(100));
            state = self.wake.wait_timeout(state, sleep).expect("queue lock").0;
        }
    }

    /// A job for `relay` that is ready now, without waiting.
    fn try_next(&self, relay: usize) -> Option<(Job, u32)> {
        let mut state = self.state.lock().expect("queue lock");
        if state.down[relay].is_some() {
            return None;
        }
        let next = state.ready[relay].pop_front()?;
        state.in_flight += 1;
        Some(next)
    }

    fn is_abandoned(&self) -> bool {
        self.state.lock().expect("queue lock").abandoned
    }

    /// Whether `relay` still gets jobs.
    fn is_live(&self, relay: usize) -> bool {
        self.state.lock().expect("queue lock").down[relay].is_none()
    }

    /// Whether another relay than `relay` is up.
    fn others_live(&self, relay: usize) -> bool {
        let state = self.state.lock().expect("queue lock");
        (0..state.down.len()).any(|r| r != relay && state.down[r].is_none())
    }

    /// `relay` is down (`why`): it gets no more jobs, and those in its line
    /// or waiting for it go to the others by weight. True when another
    /// relay is up (or `relay` was already down and one is); false when none
    /// is left, and then nothing is moved: the caller stops the run.
    fn relay_down(&self, relay: usize, why: String) -> bool {
        let mut state = self.state.lock().expect("queue lock");
        let others = (0..state.down.len()).any(|r| r != relay && state.down[r].is_none());
        if !others {
            return false;
        }
        if state.down[relay].is_none() {
            state.down[relay] = Some(why);
            let lined: Vec<(Job, u32)> = state.ready[relay].drain(..).collect();
            for (job, attempt) in lined {
                state.place(job, attempt);
            }
        }
        self.wake.notify_all();
        true
    }

    /// A job taken from a relay that is down, certainly not accepted
    /// there, goes to another relay (by weight; its attempts so far kept).
    /// False when no relay is up: the job is still the caller's.
    fn moved(&self, job: Job, attempt: u32) -> bool {
        let mut state = self.state.lock().expect("queue lock");
        if state.abandoned {
            state.in_flight -= 1;
            self.wake.notify_all();
            return true;
        }
        if !state.place(job, attempt) {
            return false;
        }
        state.in_flight -= 1;
        self.wake.notify_all();
        true
    }

    fn retry(&self, relay: usize, job: Job, attempt: u32, delay: Duration) {
        let mut state = self.state.lock().expect("queue lock");
        state.in_flight -= 1;
        state
            .waiting
            .push((Instant::now() + delay, relay, job, attempt));
        self.wake.notify_all();
    }

    /// Drops every job still waiting, and any pushed later: nothing more
    /// will be sent.
    pub fn abandon(&self) {
        let mut state = self.state.lock().expect("queue lock");
        state.abandoned = true;
        for line in &mut state.ready {
            line.clear();
        }
        state.waiting.clear();
        self.wake.notify_all();
    }

    fn done(&self) {
        let mut state = self.state.lock().expect("queue lock");
        state.in_flight -= 1;
        self.wake.notify_all();
    }
}

/// Stops a run whose server cannot be reached. A failed connection attempt
/// (refused, timed out, TLS or authentication failed) starts a backoff that
/// every worker waits out before trying again; once `retries + 1` attempts
/// in a row have failed, with no session opened in between, the run gives
/// up — instead of trying each of many thousand messages in turn against a
/// dead server (or a server refusing the password).
struct Breaker {
    state: Mutex<BreakerState>,
    retries: u32,
    delay: Duration,
}

struct BreakerState {
    failures: u32,
    not_before: Instant,
}

impl Breaker {
    fn new(retries: u32, delay: Duration) -> Breaker {
        Breaker {
            state: Mutex::new(BreakerState {
                failures: 0,
                not_before: Instant::now(),
            }),
            retries,
            delay,
        }
    }

    /// Waits out the backoff after a failed attempt.
    fn wait(&self) {
        let until = self.state.lock().expect("breaker lock").not_before;
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    }

    fn connected(&self) {
        self.state.lock().expect("breaker lock").failures = 0;
    }

    /// Records a failed attempt; true when it is time to give up. Workers
    /// failing together count once per backoff period.
    fn failed(&self) -> bool {
        let mut state = self.state.lock().expect("breaker lock");
        let now = Instant::now();
        if now >= state.not_before {
            state.failures += 1;
            let backoff =
                self.delay * 2u32.saturating_pow(state.failures.saturating_sub(1).min(16));
            state.not_before = now + backoff;
        }
        state.failures > self.retries
    }
}

/// Spaces sends evenly across all workers for `max_rate` messages/second.
struct Pacer {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(max_rate: f64) -> Pacer {
        let interval = (max_rate > 0.0).then(|| Duration::from_secs_f64(1.0 / max_rate));
        Pacer {
            interval,
            next: Mutex::new(Instant::now()),
        }
    }

    fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self.next.lock().expect("pacer lock");
            let slot = (*next).max(Instant::now());
            *next = slot + interval;
            slot
        };
        std::thread::sleep(slot.saturating_duration_since(Instant::now()));
    }
}
