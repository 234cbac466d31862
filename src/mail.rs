//! Delivery: the only module that touches the network.
//!
//! A fixed number of worker threads, each holding one SMTP connection
//! (lettre's low-level `SmtpConnection`), take messages from a shared queue
//! and report every outcome over a channel, so the caller can record it
//! durably before the next one is known. Replies are classified:
//!
//! - 2xx: sent;
//! - 5xx on RCPT or the message: permanent for that recipient, never retried;
//! - 5xx on MAIL: the sender is refused; the run stops, all left pending;
//! - 4xx, a lost connection, a timeout: temporary, retried on a new
//!   connection with backoff, a bounded number of times, then left pending;
//! - 421: the server is closing; reconnect after a pause;
//! - no session at all (unreachable, TLS, login): a shared backoff, then
//!   the run stops (see [`Breaker`]).
//!
//! lettre 0.11 writes a message body and its final `.` in two writes and
//! never sets TCP_NODELAY, so every message waits on Nagle's algorithm for
//! the server's delayed ACK (~40 ms). We send the dot-stuffed body and the
//! terminator as one command write through lettre's public API instead.

use std::collections::VecDeque;
use std::fmt;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::{Address, Transport as _};

use crate::config::{Security, SmtpConfig, Transport};

/// One message to deliver; its bytes are fetched when it is sent.
#[derive(Debug, Clone)]
pub struct Job {
    pub key: usize,
    pub recipient: Address,
}

/// Reads a job's message (from the state store), on a sender thread.
pub type Fetch<'a> = &'a (dyn Fn(usize) -> anyhow::Result<Vec<u8>> + Sync);

/// What happened to one message in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Refused for good (5xx): recorded, never retried.
    Rejected(String),
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
    pub recorded: std::sync::mpsc::SyncSender<()>,
}

/// Delivery settings derived from `[smtp]` and the environment.
#[derive(Clone)]
pub struct Settings {
    pub smtp: SmtpConfig,
    pub from: Address,
    /// From `BULLETIN_SMTP_PASSWORD`; never logged.
    pub password: Option<String>,
    pub tls_roots: Option<Vec<u8>>,
    pub retries: u32,
    pub retry_delay: Duration,
}

impl Settings {
    /// `text` without the password, plain or as AUTH PLAIN / LOGIN sent it.
    pub fn redact(&self, text: &str) -> String {
        use base64::Engine as _;
        let Some(password) = self.password.as_deref().filter(|p| !p.is_empty()) else {
            return text.to_owned();
        };
        let engine = base64::engine::general_purpose::STANDARD;
        let forms = [
            engine.encode(format!("\0{}\0{password}", self.smtp.username)),
            engine.encode(password),
            password.to_owned(),
        ];
        forms.iter().fold(text.to_owned(), |text, form| {
            text.replace(form.as_str(), "[redacted]")
        })
    }
}

/// Why one attempt failed.
#[derive(Debug)]
enum Failure {
    Permanent(String),
    Temporary(String),
    /// No session: the server cannot be reached, TLS or authentication
    /// failed. Nothing about this message; counted by the [`Breaker`].
    Connect(String),
    /// The server refuses the sender (5xx to MAIL FROM): it would refuse
    /// every message, so the run stops with everything left pending.
    Sender(String),
    /// 421, or the connection broke: drop it and reconnect.
    Connection(String),
    /// The message went out in full but no reply came back: the server may
    /// have it. Not retried in this run (each retry could add a copy); the
    /// next run sends it again, with the same Message-ID.
    Ambiguous(String),
}

/// Sends every job, reporting each outcome on `reports` as it happens.
/// Returns when every job has an outcome.
pub fn deliver(jobs: Vec<Job>, settings: &Settings, fetch: Fetch<'_>, reports: Sender<Report>) {
    let workers = match settings.smtp.transport {
        Transport::Sendmail => 1,
        Transport::Smtp => settings.smtp.connections.max(1).min(jobs.len().max(1)),
    };
    let queue = Arc::new(Queue::new(jobs));
    let pacer = Arc::new(Pacer::new(settings.smtp.max_rate));
    let breaker = Breaker::new(settings.retries, settings.retry_delay);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (queue, pacer, reports) = (queue.clone(), pacer.clone(), reports.clone());
            let breaker = &breaker;
            scope.spawn(move || worker(&queue, &pacer, breaker, settings, fetch, &reports));
        }
    });
}

fn worker(
    queue: &Queue,
    pacer: &Pacer,
    breaker: &Breaker,
    settings: &Settings,
    fetch: Fetch<'_>,
    reports: &Sender<Report>,
) {
    let mut connection: Option<SmtpConnection> = None;
    while let Some((job, attempt)) = queue.next() {
        let result = match fetch(job.key) {
            Err(e) => Err(Failure::Temporary(format!(
                "cannot read the message from the state store: {e:#}"
            ))),
            Ok(bytes) => {
                pacer.wait();
                match settings.smtp.transport {
                    Transport::Sendmail => send_sendmail(&job, &bytes, settings),
                    Transport::Smtp => send_smtp(&mut connection, &job, &bytes, settings, breaker),
                }
            }
        };
        let outcome = match result {
            Ok(()) => Outcome::Sent,
            Err(Failure::Connect(why)) => {
                if breaker.failed() {
                    // The server has been out of reach through every retry:
                    // stop here, everything not sent stays pending.
                    queue.abandon();
                    Outcome::Deferred(format!(
                        "{why} (gave up after {} attempts)",
                        settings.retries + 1
                    ))
                } else {
                    // Not this message's fault: it waits for the next try.
                    queue.retry(job, attempt, Duration::ZERO);
                    continue;
                }
            }
            Err(Failure::Sender(why)) => {
                queue.abandon();
                Outcome::Deferred(format!(
                    "the server refuses the sender {}: {why}; nothing more is sent this run",
                    settings.from
                ))
            }
            Err(Failure::Permanent(why)) => Outcome::Rejected(why),
            Err(Failure::Ambiguous(why)) => Outcome::Deferred(format!(
                "no reply after the message was sent ({why}); the server may have it"
            )),
            Err(Failure::Temporary(why) | Failure::Connection(why)) => {
                if attempt < settings.retries {
                    queue.retry(job, attempt + 1, settings.retry_delay * 2u32.pow(attempt));
                    continue;
                }
                Outcome::Deferred(why)
            }
        };
        // A server reply may quote what it was sent: never show or store the
        // password, in any form it went out in.
        let outcome = match outcome {
            Outcome::Rejected(why) => Outcome::Rejected(settings.redact(&why)),
            Outcome::Deferred(why) => Outcome::Deferred(settings.redact(&why)),
            sent => sent,
        };
        queue.done();
        let (recorded, wait) = std::sync::mpsc::sync_channel(1);
        let report = Report {
            key: job.key,
            outcome,
            recorded,
        };
        if reports.send(report).is_err() || wait.recv().is_err() {
            // The recorder is gone: stop sending.
            queue.abandon();
            break;
        }
    }
    if let Some(mut conn) = connection {
        let _ = conn.command(Quit);
    }
}

fn send_smtp(
    slot: &mut Option<SmtpConnection>,
    job: &Job,
    bytes: &[u8],
    settings: &Settings,
    breaker: &Breaker,
) -> Result<(), Failure> {
    if slot.as_mut().is_some_and(|c| c.has_broken()) {
        *slot = None;
    }
    if slot.is_none() {
        breaker.wait();
        *slot = Some(connect(settings)?);
        breaker.connected();
    }
    let conn = slot.as_mut().expect("connected above");
    let result = transaction(conn, job, bytes, settings);
    match &result {
        Err(Failure::Connection(_) | Failure::Ambiguous(_)) => {
            if let Some(mut c) = slot.take() {
                c.abort();
            }
        }
        Err(_) => {
            // Clear the transaction so the connection can carry the next one.
            if conn.command(Rset).is_err() {
                *slot = None;
            }
        }
        Ok(()) => {}
    }
    result
}

fn connect(settings: &Settings) -> Result<SmtpConnection, Failure> {
    let smtp = &settings.smtp;
    let hello = ClientId::default();
    let timeout = Some(Duration::from_secs(smtp.timeout.max(1)));
    let tls = match smtp.security {
        Security::None => None,
        Security::Starttls | Security::Tls => Some(tls_parameters(settings)?),
    };
    let implicit = if smtp.security == Security::Tls {
        tls.as_ref()
    } else {
        None
    };
    let mut conn = SmtpConnection::connect(
        (smtp.host.as_str(), smtp.port),
        timeout,
        &hello,
        implicit,
        None,
    )
    .map_err(|e| {
        Failure::Connect(format!(
            "cannot connect to {}:{}: {e}",
            smtp.host, smtp.port
        ))
    })?;
    if smtp.security == Security::Starttls {
        let params = tls.as_ref().expect("built above");
        if !conn.can_starttls() {
            conn.abort();
            return Err(Failure::Connect(format!(
                "{} does not offer STARTTLS",
                smtp.host
            )));
        }
        conn.starttls(params, &hello)
            .map_err(|e| Failure::Connect(format!("STARTTLS failed: {e}")))?;
    }
    if !smtp.username.is_empty() {
        let password = settings.password.clone().unwrap_or_default();
        let credentials = Credentials::new(smtp.username.clone(), password);
        conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
            .map_err(|e| {
                // Never echo the server's reply to AUTH: it may quote what we sent.
                let class = if e.is_permanent() {
                    "rejected"
                } else {
                    "failed"
                };
                Failure::Connect(format!("authentication as {:?} {class}", smtp.username))
            })?;
    }
    Ok(conn)
}

fn tls_parameters(settings: &Settings) -> Result<TlsParameters, Failure> {
    let mut builder = TlsParameters::builder(settings.smtp.host.clone());
    if let Some(pem) = &settings.tls_roots {
        let certificate = Certificate::from_pem(pem)
            .map_err(|e| Failure::Connect(format!("smtp.ca_file: {e}")))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| Failure::Connect(format!("TLS setup failed: {e}")))
}

/// One MAIL / RCPT / DATA transaction on an open connection.
fn transaction(
    conn: &mut SmtpConnection,
    job: &Job,
    bytes: &[u8],
    settings: &Settings,
) -> Result<(), Failure> {
    let mut parameters = Vec::new();
    if !bytes.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(Failure::Permanent(
                "the message is 8-bit and the server lacks 8BITMIME".into(),
            ));
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(Some(settings.from.clone()), parameters))
        .map_err(|e| match classify(e) {
            Failure::Permanent(why) => Failure::Sender(why),
            other => other,
        })?;
    conn.command(Rcpt::new(job.recipient.clone(), Vec::new()))
        .map_err(classify)?;
    conn.command(Data).map_err(classify)?;
    let body = std::str::from_utf8(bytes)
        .map_err(|_| Failure::Permanent("the message is not UTF-8".into()))?;
    // RFC 5321 §4.5.3.2.6: wait long for the reply to the final dot; giving
    // up early is what turns a slow server into a duplicate.
    let data_timeout =
        Duration::from_secs(settings.smtp.data_timeout.max(settings.smtp.timeout).max(1));
    let _ = conn.set_timeout(Some(data_timeout));
    let reply = conn.command(DataBody(body));
    let _ = conn.set_timeout(Some(Duration::from_secs(settings.smtp.timeout.max(1))));
    reply.map_err(|e| match classify(e) {
        Failure::Connection(why) if !why.starts_with("421") => Failure::Ambiguous(why),
        other => other,
    })?;
    Ok(())
}

/// The message with transparency dots and the final `.`, written at once.
struct DataBody<'a>(&'a str);

impl fmt::Display for DataBody<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Transparency (RFC 5321 §4.5.2): a line starting with '.' gets one
        // more. Written in runs between such lines (most messages have none);
        // a bare LF counts as a line end too, as some servers take it.
        let text = self.0;
        if text.starts_with('.') {
            f.write_str(".")?;
        }
        let mut start = 0;
        for at in memchr::memmem::find_iter(text.as_bytes(), b"\n.") {
            f.write_str(&text[start..=at])?;
            f.write_str(".")?;
            start = at + 1;
        }
        f.write_str(&text[start..])?;
        if !text.ends_with("\r\n") {
            f.write_str("\r\n")?;
        }
        f.write_str(".\r\n")
    }
}

fn classify(e: lettre::transport::smtp::Error) -> Failure {
    let code = e.status().map(|c| c.to_string());
    match code.as_deref() {
        Some("421") => Failure::Connection(format!("421 {e}")),
        Some(_) if e.is_permanent() => Failure::Permanent(e.to_string()),
        Some(_) => Failure::Temporary(e.to_string()),
        // No reply code: the connection broke or timed out. The server may
        // or may not have the message; it is sent again with the same id.
        None => Failure::Connection(e.to_string()),
    }
}

fn send_sendmail(job: &Job, bytes: &[u8], settings: &Settings) -> Result<(), Failure> {
    let transport = match &settings.smtp.sendmail {
        Some(path) => lettre::SendmailTransport::new_with_command(path.as_os_str()),
        None => lettre::SendmailTransport::new(),
    };
    let envelope = Envelope::new(Some(settings.from.clone()), vec![job.recipient.clone()])
        .map_err(|e| Failure::Permanent(e.to_string()))?;
    transport
        .send_raw(&envelope, bytes)
        .map_err(|e| Failure::Temporary(format!("sendmail: {e}")))
}

/// The jobs still to try, some waiting for their retry time.
struct Queue {
    state: Mutex<QueueState>,
    wake: Condvar,
}

struct QueueState {
    ready: VecDeque<(Job, u32)>,
    waiting: Vec<(Instant, Job, u32)>,
    /// Jobs taken and not yet finished (they may come back as retries).
    in_flight: usize,
}

impl Queue {
    fn new(jobs: Vec<Job>) -> Queue {
        let ready = jobs.into_iter().map(|j| (j, 0)).collect();
        Queue {
            state: Mutex::new(QueueState {
                ready,
                waiting: Vec::new(),
                in_flight: 0,
            }),
            wake: Condvar::new(),
        }
    }

    /// The next job to try, waiting for retries to come due; `None` when
    /// every job is finished.
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
            if state.waiting.is_empty() && state.in_flight == 0 {
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

    fn retry(&self, job: Job, attempt: u32, delay: Duration) {
        let mut state = self.state.lock().expect("queue lock");
        state.in_flight -= 1;
        state.waiting.push((Instant::now() + delay, job, attempt));
        self.wake.notify_all();
    }

    /// Drops every job still waiting: nothing more will be sent.
    fn abandon(&self) {
        let mut state = self.state.lock().expect("queue lock");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_and_terminator() {
        assert_eq!(
            DataBody("a\r\n.b\r\n..c\r\n").to_string(),
            "a\r\n..b\r\n...c\r\n.\r\n"
        );
        assert_eq!(DataBody("x").to_string(), "x\r\n.\r\n");
        assert_eq!(DataBody(".a\r\nb").to_string(), "..a\r\nb\r\n.\r\n");
        assert_eq!(DataBody("a\n.b\r\n").to_string(), "a\n..b\r\n.\r\n");
    }
}
