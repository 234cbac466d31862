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

/// Reads a job's message (from the ledger), on a sender thread.
pub type Fetch<'a> = &'a (dyn Fn(usize) -> anyhow::Result<Vec<u8>> + Sync);

/// Hands a report to the recorder; false when the recorder is gone.
pub type Reports<'a> = &'a (dyn Fn(Report) -> bool + Sync);

/// Sends every job `queue` is given until it is closed and empty,
/// reporting each outcome on `reports` as it happens, on at most
/// `expected` sessions (there is no use for more sessions than jobs).
/// Returns when every job has an outcome (or the run was stopped).
pub fn deliver(
    queue: &Queue,
    expected: usize,
    transport: &dyn Transport,
    policy: &Policy,
    fetch: Fetch<'_>,
    reports: Reports<'_>,
) {
    let workers = transport.sessions().clamp(1, expected.max(1));
    let pacer = Pacer::new(policy.max_rate);
    let breaker = Breaker::new(policy.retries, policy.retry_delay);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let worker = Worker {
                queue,
                pacer: &pacer,
                breaker: &breaker,
                policy,
                fetch,
                transport,
            };
            scope.spawn(move || worker.run(reports));
        }
    });
}

struct Worker<'a> {
    queue: &'a Queue,
    pacer: &'a Pacer,
    breaker: &'a Breaker,
    policy: &'a Policy,
    fetch: Fetch<'a>,
    transport: &'a dyn Transport,
}

/// A job taken from the queue, with its message read.
struct Taken {
    job: Job,
    attempt: u32,
    bytes: Result<Vec<u8>, Failure>,
}

impl Worker<'_> {
    fn run(&self, reports: Reports<'_>) {
        let mut session = self.transport.session();
        let ahead = self.pacer.interval.is_none();
        // The job whose transaction may be begun with the current message.
        let mut upcoming: Option<Taken> = None;
        loop {
            let current = match upcoming.take() {
                Some(_) if self.queue.is_abandoned() => {
                    self.queue.done();
                    break;
                }
                Some(taken) => taken,
                None => match self.queue.next() {
                    Some((job, attempt)) => self.take(job, attempt),
                    None => break,
                },
            };
            upcoming = match (&current.bytes, ahead) {
                (Ok(_), true) => self
                    .queue
                    .try_next()
                    .map(|(job, attempt)| self.take(job, attempt)),
                _ => None,
            };
            let result = match &current.bytes {
                Err(failure) => Err(failure.clone()),
                Ok(bytes) => {
                    self.pacer.wait();
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
                Outcome::Rejected(why) => Outcome::Rejected(self.transport.redact(&why)),
                Outcome::Refused(why) => Outcome::Refused(self.transport.redact(&why)),
                Outcome::Deferred(why) => Outcome::Deferred(self.transport.redact(&why)),
                sent => sent,
            };
            self.queue.done();
            let (recorded, wait) = std::sync::mpsc::sync_channel(1);
            let report = Report {
                key: job.key,
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
            self.breaker.wait();
            session.open()?;
            self.breaker.connected();
        }
        let letter = Letter {
            envelope: envelope(job),
            message: bytes,
        };
        session.send(&letter, next)
    }

    /// What an attempt means: an outcome to record, or `None` when the job
    /// went back to the queue.
    fn outcome(&self, result: Result<(), Failure>, job: &Job, attempt: u32) -> Option<Outcome> {
        let policy = self.policy;
        Some(match result {
            Ok(()) => Outcome::Sent,
            Err(Failure::Connect(why)) => {
                if self.breaker.failed() {
                    // The server has been out of reach through every retry:
                    // stop here, everything not sent stays pending.
                    self.queue.abandon();
                    Outcome::Deferred(format!(
                        "{why} (gave up after {} attempts)",
                        policy.retries + 1
                    ))
                } else {
                    // Not this message's fault: it waits for the next try.
                    self.queue.retry(job.clone(), attempt, Duration::ZERO);
                    return None;
                }
            }
            Err(Failure::Sender(why)) => {
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
            Err(Failure::Temporary(why) | Failure::Connection(why)) => {
                if attempt < policy.retries {
                    let delay = policy.retry_delay * 2u32.saturating_pow(attempt);
                    self.queue.retry(job.clone(), attempt + 1, delay);
                    return None;
                }
                Outcome::Deferred(why)
            }
        })
    }
}

fn envelope(job: &Job) -> Envelope<'_> {
    Envelope {
        from: &job.sender,
        to: &job.recipient,
    }
}

/// The jobs still to try, some waiting for their retry time; fed while the
/// workers run, until it is closed.
#[derive(Default)]
pub struct Queue {
    state: Mutex<QueueState>,
    wake: Condvar,
}

#[derive(Default)]
struct QueueState {
    ready: VecDeque<(Job, u32)>,
    waiting: Vec<(Instant, Job, u32)>,
    /// Jobs taken and not yet finished (they may come back as retries).
    in_flight: usize,
    /// No more jobs will be pushed.
    closed: bool,
    /// The run stopped sending: jobs pushed now are dropped.
    abandoned: bool,
}

impl Queue {
    /// Adds jobs to send (nothing, once the run has stopped sending).
    pub fn push(&self, jobs: impl IntoIterator<Item = Job>) {
        let mut state = self.state.lock().expect("queue lock");
        if !state.abandoned {
            state.ready.extend(jobs.into_iter().map(|j| (j, 0)));
        }
        self.wake.notify_all();
    }

    /// No more jobs will come: the workers end when these are done.
    pub fn close(&self) {
        self.state.lock().expect("queue lock").closed = true;
        self.wake.notify_all();
    }

    /// The next job to try, waiting for retries to come due and for jobs
    /// to be pushed; `None` when the queue is closed and every job is
    /// finished.
    fn next(&self) -> Option<(Job, u32)> {
        let mut state = self.state.lock().expect("queue lock");
        loop {
            let now = Instant::now();
            if let Some(i) = state.waiting.iter().position(|(due, ..)| *due <= now) {
                let (_, job, attempt) = state.waiting.swap_remove(i);
                state.ready.push_back((job, attempt));
            }
            if let Some(next) = state.ready.pop_front() {
                state.in_flight += 1;
                return Some(next);
            }
            let open = !state.closed && !state.abandoned;
            if !open && state.waiting.is_empty() && state.in_flight == 0 {
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

    /// A job that is ready now, without waiting.
    fn try_next(&self) -> Option<(Job, u32)> {
        let mut state = self.state.lock().expect("queue lock");
        let next = state.ready.pop_front()?;
        state.in_flight += 1;
        Some(next)
    }

    fn is_abandoned(&self) -> bool {
        self.state.lock().expect("queue lock").abandoned
    }

    fn retry(&self, job: Job, attempt: u32, delay: Duration) {
        let mut state = self.state.lock().expect("queue lock");
        state.in_flight -= 1;
        state.waiting.push((Instant::now() + delay, job, attempt));
        self.wake.notify_all();
    }

    /// Drops every job still waiting, and any pushed later: nothing more
    /// will be sent.
    pub fn abandon(&self) {
        let mut state = self.state.lock().expect("queue lock");
        state.abandoned = true;
        state.ready.clear();
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
