//! The exactly-once loop against an in-memory transport that fails on
//! command, over a real SQLite ledger in a temporary folder. (The real
//! servers — smtp-sink, a scriptable aiosmtpd, kill -9 mid-run — are in
//! `tests/delivery`.)

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::Address;

use super::inbox::Made;
use super::transport::{Failure, Letter, Session, Transport};
use super::{Policy, Relay, Sending, Source, Wanted};
use crate::ledger::{self, Ledger, NewDelivery, Packed, Sqlite, Status, ids};
use crate::model::{IssueKey, RecipientKey};
use crate::report::Verbosity;

/// Delivers into memory; each recipient's scripted failures come first,
/// one per attempt, then it succeeds.
#[derive(Default)]
struct Memory {
    script: Mutex<HashMap<String, VecDeque<Failure>>>,
    /// Failures of opening a session, one per attempt, before one succeeds.
    connect: Mutex<VecDeque<Failure>>,
    delivered: Mutex<Vec<(String, Vec<u8>)>>,
    opened: Mutex<usize>,
    /// How many times a session was told the next message.
    announced: Mutex<usize>,
    /// With a state database: each message must be committed there (and
    /// pending) when it is sent.
    durable_in: Option<std::path::PathBuf>,
}

impl Memory {
    fn fail(&self, recipient: &str, failures: impl IntoIterator<Item = Failure>) {
        self.script
            .lock()
            .unwrap()
            .entry(recipient.to_owned())
            .or_default()
            .extend(failures);
    }

    fn copies(&self) -> HashMap<String, usize> {
        let mut copies = HashMap::new();
        for (to, _) in self.delivered.lock().unwrap().iter() {
            *copies.entry(to.clone()).or_insert(0) += 1;
        }
        copies
    }
}

impl Transport for Memory {
    fn sessions(&self) -> usize {
        3
    }

    fn session(&self) -> Box<dyn Session + '_> {
        Box::new(MemorySession {
            memory: self,
            open: false,
            announced: None,
        })
    }
}

struct MemorySession<'a> {
    memory: &'a Memory,
    open: bool,
    /// The recipient of the message announced as the next one: the worker
    /// must send exactly that one next, or close the session.
    announced: Option<String>,
}

impl Session for MemorySession<'_> {
    fn is_open(&self) -> bool {
        self.open
    }

    fn open(&mut self) -> Result<(), Failure> {
        self.announced = None;
        *self.memory.opened.lock().unwrap() += 1;
        if let Some(failure) = self.memory.connect.lock().unwrap().pop_front() {
            return Err(failure);
        }
        self.open = true;
        Ok(())
    }

    fn send(&mut self, letter: &Letter<'_>, next: Option<&Letter<'_>>) -> Result<(), Failure> {
        let to = letter.envelope.to.to_string();
        if let Some(announced) = self.announced.take() {
            assert_eq!(
                announced, to,
                "the worker sent another message than it announced"
            );
        }
        if next.is_some() {
            *self.memory.announced.lock().unwrap() += 1;
        }
        if let Some(path) = &self.memory.durable_in {
            // Another connection sees only what is committed.
            let reader = Sqlite::open_read_only(path).unwrap().unwrap();
            let pending = reader.pending().unwrap();
            assert!(
                pending.iter().any(|p| p.address == to),
                "{to}: sent before its message was committed"
            );
        }
        let message = letter.message;
        let scripted = self
            .memory
            .script
            .lock()
            .unwrap()
            .get_mut(&to)
            .and_then(VecDeque::pop_front);
        match scripted {
            Some(failure) => {
                if matches!(failure, Failure::Connection(_) | Failure::Ambiguous(_)) {
                    self.open = false;
                } else {
                    self.announced = next.map(|n| n.envelope.to.to_string());
                }
                Err(failure)
            }
            None => {
                self.announced = next.map(|n| n.envelope.to.to_string());
                self.memory
                    .delivered
                    .lock()
                    .unwrap()
                    .push((to, message.to_vec()));
                Ok(())
            }
        }
    }

    fn close(&mut self) {
        self.open = false;
        self.announced = None;
    }
}

const ISSUE: &str = "2017-03-25";

fn clock() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

fn policy() -> Policy {
    Policy {
        retries: 2,
        retry_delay: Duration::from_millis(1),
        max_rate: 0.0,
    }
}

/// A ledger with one fixed message per recipient (`r0@example.com`, ...).
fn ledger_with(recipients: usize) -> (tempfile::TempDir, Sqlite) {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Sqlite::open(&dir.path().join("state.sqlite")).unwrap();
    let addresses: Vec<String> = (0..recipients)
        .map(|i| format!("r{i}@example.com"))
        .collect();
    let packed: Vec<Packed> = addresses
        .iter()
        .map(|a| Packed::new(format!("message for {a}\r\n").as_bytes()))
        .collect();
    ledger
        .fix_issue(&issue(), clock(), &mut |fixer| {
            for (address, message) in addresses.iter().zip(&packed) {
                fixer.add(&NewDelivery {
                    address,
                    message_id: "<id@example.com>",
                    message,
                    article_ids: ids(&["a1"]),
                })?;
            }
            Ok(())
        })
        .unwrap();
    (dir, ledger)
}

fn issue() -> IssueKey {
    IssueKey::stored(ISSUE.to_owned())
}

/// `r0@example.com` to `r199@example.com`, and no message expired.
fn everyone() -> HashSet<RecipientKey> {
    (0..200)
        .map(|i| RecipientKey::of(&format!("r{i}@example.com")))
        .collect()
}

/// Sends what is pending in `ledger`, and `fresh`'s messages.
fn send_with(
    ledger: &mut dyn Ledger,
    fresh: Option<super::Fresh<'_>>,
    memory: &dyn Transport,
    wanted: &Wanted<'_>,
) -> Result<super::Tally, crate::Failure> {
    let from: Address = "digest@example.com".parse().unwrap();
    let sender = move |_: &str| from.clone();
    let relays = [Relay {
        name: "memory".into(),
        transport: memory,
        policy: policy(),
        weight: 1,
    }];
    let sending = Sending {
        relays: &relays,
        sender: &sender,
        clock,
        say: Verbosity::Quiet,
    };
    super::send(ledger, fresh, wanted, &sending)
}

fn send_wanted(ledger: &mut dyn Ledger, memory: &Memory, wanted: &Wanted<'_>) -> super::Tally {
    send_with(ledger, None, memory, wanted).unwrap()
}

fn send(ledger: &mut Sqlite, memory: &Memory) -> super::Tally {
    let subscribers = everyone();
    let wanted = Wanted {
        subscribers: &subscribers,
        oldest_issue: IssueKey::stored(String::new()),
        shard: None,
    };
    send_wanted(ledger, memory, &wanted)
}

#[test]
fn every_recipient_gets_exactly_their_own_message_once() {
    let (_dir, mut ledger) = ledger_with(50);
    let memory = Memory::default();
    let tally = send(&mut ledger, &memory);
    assert_eq!((tally.total, tally.sent), (50, 50));
    let copies = memory.copies();
    assert_eq!(copies.len(), 50);
    assert!(copies.values().all(|&n| n == 1), "{copies:?}");
    for (to, bytes) in memory.delivered.lock().unwrap().iter() {
        assert_eq!(bytes, format!("message for {to}\r\n").as_bytes());
    }
    assert_eq!(ledger.count(&issue(), Status::Sent).unwrap(), 50);
    assert!(ledger.pending().unwrap().is_empty());
    // A second run finds nothing to send.
    let again = Memory::default();
    assert_eq!(send(&mut ledger, &again).total, 0);
    assert!(again.delivered.lock().unwrap().is_empty());
}

#[test]
fn a_permanent_refusal_is_recorded_and_never_retried() {
    let (_dir, mut ledger) = ledger_with(5);
    let memory = Memory::default();
    memory.fail(
        "r2@example.com",
        [Failure::Permanent("550 no such user".into())],
    );
    let tally = send(&mut ledger, &memory);
    assert_eq!((tally.sent, tally.rejected), (4, 1));
    assert!(!memory.copies().contains_key("r2@example.com"));
    assert_eq!(ledger.count(&issue(), Status::Failed).unwrap(), 1);
    assert!(ledger.pending().unwrap().is_empty());
    // Refused for good: the articles count as not sent to that recipient.
    let refused = ledger
        .articles_for(&RecipientKey::of("r2@example.com"), &issue())
        .unwrap();
    assert!(refused.is_empty());
}

#[test]
fn a_refused_recipient_is_recorded_and_suppressed_together_but_a_refused_message_is_not() {
    let (_dir, mut ledger) = ledger_with(5);
    let memory = Memory::default();
    memory.fail(
        "r1@example.com",
        [Failure::Recipient("550 5.1.1 no such user".into())],
    );
    memory.fail(
        "r3@example.com",
        [Failure::Permanent("554 5.7.1 content refused".into())],
    );
    let tally = send(&mut ledger, &memory);
    assert_eq!((tally.sent, tally.rejected), (3, 2));
    assert_eq!(ledger.count(&issue(), Status::Failed).unwrap(), 2);
    let list = ledger.suppressions().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].address.as_str(), "r1@example.com");
    assert_eq!(list[0].reason, ledger::Reason::Bounced);
    assert_eq!(list[0].source, "SMTP reply: 550 5.1.1 no such user");
}

#[test]
fn temporary_failures_are_retried_within_the_run_then_left_pending() {
    let (_dir, mut ledger) = ledger_with(4);
    let memory = Memory::default();
    // One 4xx then success; and one that fails more often than the retries.
    memory.fail(
        "r1@example.com",
        [Failure::Temporary("451 try later".into())],
    );
    memory.fail(
        "r3@example.com",
        (0..3).map(|_| Failure::Connection("connection reset".into())),
    );
    let tally = send(&mut ledger, &memory);
    assert_eq!((tally.sent, tally.deferred), (3, 1));
    assert_eq!(memory.copies().get("r1@example.com"), Some(&1));
    let pending = ledger.pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].address, "r3@example.com");
    // The next run sends the one left, and only it.
    let next = Memory::default();
    assert_eq!(send(&mut ledger, &next).sent, 1);
    assert_eq!(next.copies().len(), 1);
}

#[test]
fn an_ambiguous_failure_is_not_retried_in_the_same_run() {
    let (_dir, mut ledger) = ledger_with(3);
    let memory = Memory::default();
    memory.fail(
        "r0@example.com",
        [Failure::Ambiguous("timeout after DATA".into())],
    );
    let tally = send(&mut ledger, &memory);
    assert_eq!((tally.sent, tally.deferred), (2, 1));
    assert!(!memory.copies().contains_key("r0@example.com"));
    assert_eq!(ledger.pending().unwrap().len(), 1);
}

#[test]
fn an_unreachable_server_stops_the_run_after_the_retries_with_everything_pending() {
    let (_dir, mut ledger) = ledger_with(40);
    let memory = Memory::default();
    memory
        .connect
        .lock()
        .unwrap()
        .extend((0..1000).map(|_| Failure::Connect("connection refused".into())));
    let tally = send(&mut ledger, &memory);
    assert_eq!(tally.sent, 0);
    let opened = *memory.opened.lock().unwrap();
    assert!(
        opened <= 3 * (policy().retries as usize + 1),
        "{opened} attempts to connect for 40 messages"
    );
    assert_eq!(ledger.pending().unwrap().len(), 40);
}

#[test]
fn a_refused_sender_stops_the_run_and_fails_nobody() {
    let (_dir, mut ledger) = ledger_with(30);
    let memory = Memory::default();
    for i in 0..30 {
        memory.fail(
            &format!("r{i}@example.com"),
            [Failure::Sender("553 sender rejected".into())],
        );
    }
    let tally = send(&mut ledger, &memory);
    assert_eq!((tally.sent, tally.rejected), (0, 0));
    assert!(tally.untried() + tally.deferred == 30);
    assert_eq!(ledger.count(&issue(), Status::Failed).unwrap(), 0);
    assert_eq!(ledger.pending().unwrap().len(), 30);
}

/// Two senders on one ledger at once (which the run lock should make
/// impossible): each message is claimed by one of them before it is sent,
/// so nobody gets two copies and every message is sent.
#[test]
fn two_senders_at_once_send_each_message_once() {
    let (dir, mut first) = ledger_with(60);
    // Unclaimed, as a crashed run's messages after `RunLock::reclaim`.
    first.release_claims().unwrap();
    let mut second = Sqlite::open(&dir.path().join("state.sqlite")).unwrap();
    let memory = Memory::default();
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| send(&mut first, &memory));
        let b = scope.spawn(|| send(&mut second, &memory));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.sent + b.sent, 60, "{} + {}", a.sent, b.sent);
    let copies = memory.copies();
    assert_eq!(copies.len(), 60);
    assert!(copies.values().all(|&n| n == 1), "{copies:?}");
    assert_eq!(first.count(&issue(), Status::Sent).unwrap(), 60);
}

/// A ledger whose disk fills up: after `commits` outcome commits, every
/// further one fails (slowly, as a busy timeout would, so the other senders'
/// reports pile up meanwhile).
struct FillingUp {
    inner: Sqlite,
    commits: usize,
}

impl Ledger for FillingUp {
    fn has_delivery(&self, issue: &IssueKey, recipient: &RecipientKey) -> anyhow::Result<bool> {
        self.inner.has_delivery(issue, recipient)
    }
    fn articles_for(
        &self,
        recipient: &RecipientKey,
        issue: &IssueKey,
    ) -> anyhow::Result<HashSet<crate::model::ArticleId>> {
        self.inner.articles_for(recipient, issue)
    }
    fn newest_issue(&self) -> anyhow::Result<Option<IssueKey>> {
        self.inner.newest_issue()
    }
    fn fix_issue(
        &mut self,
        issue: &IssueKey,
        now: DateTime<Utc>,
        produce: &mut dyn FnMut(&mut dyn ledger::Fixer) -> Result<(), crate::Failure>,
    ) -> Result<(), crate::Failure> {
        self.inner.fix_issue(issue, now, produce)
    }
    fn pending(&self) -> anyhow::Result<Vec<ledger::Pending>> {
        self.inner.pending()
    }
    fn claim_pending(&mut self) -> anyhow::Result<Vec<ledger::Pending>> {
        self.inner.claim_pending()
    }
    fn release_abandoned(&mut self) -> anyhow::Result<usize> {
        self.inner.release_abandoned()
    }
    fn release_claims(&mut self) -> anyhow::Result<usize> {
        self.inner.release_claims()
    }
    fn record_all(
        &mut self,
        outcomes: &[ledger::Outcome<'_>],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.inner.record_all(outcomes, now)
    }
    fn commit(
        &mut self,
        fixing: Option<&ledger::Fixing<'_>>,
        outcomes: &[ledger::Outcome<'_>],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        if self.commits == 0 {
            std::thread::sleep(Duration::from_millis(200));
            return Err(anyhow::anyhow!("database or disk is full")
                .context("state database /srv/news/state.sqlite"));
        }
        self.commits -= 1;
        self.inner.commit(fixing, outcomes, now)
    }
    fn count(&self, issue: &IssueKey, status: Status) -> anyhow::Result<usize> {
        self.inner.count(issue, status)
    }
    fn count_all(&self, status: Status) -> anyhow::Result<usize> {
        self.inner.count_all(status)
    }
    fn drop_final_messages(&mut self) -> anyhow::Result<usize> {
        self.inner.drop_final_messages()
    }
    fn suppress(&mut self, entries: &[ledger::Suppression]) -> anyhow::Result<usize> {
        self.inner.suppress(entries)
    }
    fn unsuppress(&mut self, addresses: &[RecipientKey]) -> anyhow::Result<usize> {
        self.inner.unsuppress(addresses)
    }
    fn suppressions(&self) -> anyhow::Result<Vec<ledger::Suppression>> {
        self.inner.suppressions()
    }
    fn record_bounces(
        &mut self,
        events: &[ledger::BounceEvent],
        rule: ledger::SoftRule,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<ledger::Recorded>> {
        self.inner.record_bounces(events, rule, now)
    }
    fn recipients(&self) -> anyhow::Result<Vec<String>> {
        self.inner.recipients()
    }
    fn messages(&self) -> Box<dyn ledger::MessageStore> {
        self.inner.messages()
    }
}

/// Regression (#17): when an outcome could not be recorded (a full disk, a
/// write lock held past the busy timeout), the recorder returned while
/// senders waited for it to read their reports, and the run hung forever,
/// holding the run lock. It must stop with the ledger's error, and the next
/// run must finish the issue.
#[test]
fn a_failing_outcome_commit_stops_the_run_and_the_next_run_finishes() {
    let (dir, ledger) = ledger_with(60);
    let memory = Arc::new(Memory::default());
    let (done, result) = std::sync::mpsc::channel();
    let mut filling = FillingUp {
        inner: ledger,
        commits: 3,
    };
    let transport = Arc::clone(&memory);
    std::thread::spawn(move || {
        let subscribers = everyone();
        let wanted = Wanted {
            subscribers: &subscribers,
            oldest_issue: IssueKey::stored(String::new()),
            shard: None,
        };
        let tally = send_with(&mut filling, None, transport.as_ref(), &wanted);
        let _ = done.send(tally.map(|_| ()).map_err(|e| match e {
            crate::Failure::Error(e) => format!("{e:#}"),
            _ => "another failure".to_owned(),
        }));
    });
    let error = result
        .recv_timeout(Duration::from_secs(20))
        .expect("send_pending hung after the ledger failed")
        .expect_err("the run should fail");
    assert!(
        error.contains("/srv/news/state.sqlite") && error.contains("database or disk is full"),
        "{error}"
    );
    let sent_before = memory.delivered.lock().unwrap().len();
    assert!(
        sent_before < 60,
        "{sent_before} sent: it should stop sending"
    );

    let mut next = Sqlite::open(&dir.path().join("state.sqlite")).unwrap();
    next.release_abandoned().unwrap();
    send(&mut next, &memory);
    let copies = memory.copies();
    assert_eq!(copies.len(), 60, "everyone has a copy after the next run");
    let duplicates: usize = copies.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= memory.sessions(),
        "{duplicates} duplicates; at most one per connection may be unrecorded"
    );
    assert_eq!(next.count(&issue(), Status::Sent).unwrap(), 60);
}

/// Fixes `issue` for `addresses` (as [`ledger_with`] does).
fn fix(ledger: &mut Sqlite, issue: &str, addresses: &[&str]) {
    let packed = Packed::new(b"an older message\r\n");
    ledger
        .fix_issue(&IssueKey::stored(issue.to_owned()), clock(), &mut |fixer| {
            for address in addresses {
                fixer.add(&NewDelivery {
                    address,
                    message_id: "<old@example.com>",
                    message: &packed,
                    article_ids: ids(&["a0"]),
                })?;
            }
            Ok(())
        })
        .unwrap();
}

/// Regression (#17): pending messages were never checked against the
/// subscriber list (someone removed after an interrupted run was still
/// mailed) and never expired. Neither is sent; both are dropped, which is
/// final and no failure.
#[test]
fn pending_messages_of_removed_subscribers_and_of_expired_issues_are_dropped() {
    let (_dir, mut ledger) = ledger_with(4);
    fix(&mut ledger, "2017-03-10", &["r3@example.com"]);
    let mut subscribers = everyone();
    subscribers.remove(&RecipientKey::of("r1@example.com"));
    let wanted = Wanted {
        subscribers: &subscribers,
        oldest_issue: IssueKey::stored("2017-03-18".to_owned()),
        shard: None,
    };
    let memory = Memory::default();
    let tally = send_wanted(&mut ledger, &memory, &wanted);
    assert_eq!((tally.sent, tally.dropped), (3, 2));
    let copies = memory.copies();
    assert!(!copies.contains_key("r1@example.com"), "{copies:?}");
    assert_eq!(copies.get("r3@example.com"), Some(&1), "{copies:?}");
    assert_eq!(ledger.count(&issue(), Status::Dropped).unwrap(), 1);
    assert_eq!(ledger.count_all(Status::Dropped).unwrap(), 2);
    assert_eq!(ledger.count_all(Status::Failed).unwrap(), 0);
    assert!(ledger.pending().unwrap().is_empty());
}

/// With every message ready, each session is told the next one while it
/// sends the current one (the SMTP session then begins that transaction in
/// the same flight), and sends exactly that one next (asserted by
/// `MemorySession`); with `max_rate` nothing is announced.
#[test]
fn the_next_message_is_announced_unless_sending_is_paced() {
    let (_dir, mut ledger) = ledger_with(30);
    let memory = Memory::default();
    assert_eq!(send(&mut ledger, &memory).sent, 30);
    let announced = *memory.announced.lock().unwrap();
    assert!(
        announced >= 30 - memory.sessions(),
        "{announced} of 30 messages were announced ahead"
    );

    let (_dir, mut ledger) = ledger_with(10);
    let paced = Memory::default();
    let from: Address = "digest@example.com".parse().unwrap();
    let sender = move |_: &str| from.clone();
    let relays = [Relay {
        name: "paced".into(),
        transport: &paced,
        policy: Policy {
            max_rate: 1000.0,
            ..policy()
        },
        weight: 1,
    }];
    let sending = Sending {
        relays: &relays,
        sender: &sender,
        clock,
        say: Verbosity::Quiet,
    };
    let subscribers = everyone();
    let wanted = Wanted {
        subscribers: &subscribers,
        oldest_issue: IssueKey::stored(String::new()),
        shard: None,
    };
    assert_eq!(
        super::send(&mut ledger, None, &wanted, &sending)
            .unwrap()
            .sent,
        10
    );
    assert_eq!(*paced.announced.lock().unwrap(), 0);
}

/// This run's new messages, from a list: `r0@example.com`, ….
struct List<'m> {
    addresses: Vec<String>,
    /// Before emitting this many, wait until one message was delivered.
    wait_for_a_send_after: Option<(usize, &'m Memory)>,
    /// Fail instead of making this one (as a template error would).
    fail_at: Option<usize>,
}

impl List<'_> {
    fn new(range: std::ops::Range<usize>) -> List<'static> {
        List {
            addresses: range.map(|i| format!("r{i}@example.com")).collect(),
            wait_for_a_send_after: None,
            fail_at: None,
        }
    }
}

impl Source for List<'_> {
    fn recipients(&self) -> Vec<&str> {
        self.addresses.iter().map(String::as_str).collect()
    }

    fn each<'s>(
        &'s self,
        emit: &mut dyn FnMut(Made<'s>) -> Result<(), crate::Failure>,
    ) -> Result<(), crate::Failure> {
        for (i, address) in self.addresses.iter().enumerate() {
            if self.fail_at == Some(i) {
                return Err(anyhow::anyhow!("the template failed for {address}").into());
            }
            if let Some((n, memory)) = self.wait_for_a_send_after
                && i == n
            {
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while memory.delivered.lock().unwrap().is_empty() {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "nothing was sent while the issue was being composed"
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            emit(Made {
                address,
                message_id: format!("<{i}@example.com>"),
                packed: Packed::new(format!("new message for {address}\r\n").as_bytes()),
                article_ids: ids(&["a2"]),
            })?;
        }
        Ok(())
    }
}

fn fresh<'a>(list: &'a List<'_>) -> super::Fresh<'a> {
    super::Fresh {
        issue: &FRESH_ISSUE,
        at: clock(),
        source: list,
    }
}

static FRESH_ISSUE: std::sync::LazyLock<IssueKey> =
    std::sync::LazyLock::new(|| IssueKey::stored("2017-03-26".to_owned()));

fn everyone_wanted() -> (HashSet<RecipientKey>, IssueKey) {
    (everyone(), IssueKey::stored(String::new()))
}

/// Composing and sending overlap: the first messages go out while the rest
/// are still being made — each only once its batch is committed (checked
/// by the transport on every send) — and everyone gets their own message
/// once.
#[test]
fn new_messages_are_sent_as_their_batches_commit_while_the_rest_are_composed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let mut ledger = Sqlite::open(&path).unwrap();
    let memory = Memory {
        durable_in: Some(path),
        ..Memory::default()
    };
    let mut list = List::new(0..60);
    list.wait_for_a_send_after = Some((20, &memory));
    let (subscribers, oldest_issue) = everyone_wanted();
    let wanted = Wanted {
        subscribers: &subscribers,
        oldest_issue,
        shard: None,
    };
    let tally = send_with(&mut ledger, Some(fresh(&list)), &memory, &wanted).unwrap();
    assert_eq!((tally.total, tally.sent), (60, 60));
    let copies = memory.copies();
    assert_eq!(copies.len(), 60);
    assert!(copies.values().all(|&n| n == 1), "{copies:?}");
    for (to, bytes) in memory.delivered.lock().unwrap().iter() {
        assert_eq!(bytes, format!("new message for {to}\r\n").as_bytes());
    }
    assert_eq!(ledger.count(&FRESH_ISSUE, Status::Sent).unwrap(), 60);
    assert!(ledger.pending().unwrap().is_empty());
}

/// A pending message of an earlier issue is sent at once — unless this run
/// makes a new message for its recipient, which supersedes it (it carries
/// its articles): then only the new one goes out.
#[test]
fn a_pending_message_is_sent_unless_a_new_one_supersedes_it() {
    let (_dir, mut ledger) = ledger_with(4);
    ledger.release_claims().unwrap();
    let memory = Memory::default();
    let list = List::new(2..6);
    let (subscribers, oldest_issue) = everyone_wanted();
    let wanted = Wanted {
        subscribers: &subscribers,
        oldest_issue,
        shard: None,
    };
    let tally = send_with(&mut ledger, Some(fresh(&list)), &memory, &wanted).unwrap();
    assert_eq!(tally.sent, 6, "r0, r1 (earlier issue) and r2..r5 (new)");
    let delivered = memory.delivered.lock().unwrap();
    for (to, bytes) in delivered.iter() {
        let old = to == "r0@example.com" || to == "r1@example.com";
        let expected = if old {
            "message for"
        } else {
            "new message for"
        };
        assert_eq!(bytes, format!("{expected} {to}\r\n").as_bytes());
    }
    assert_eq!(delivered.len(), 6);
    assert_eq!(ledger.count(&issue(), Status::Dropped).unwrap(), 2);
    assert!(ledger.pending().unwrap().is_empty());
}

/// Composing fails part-way (a template error on one recipient's data):
/// the run stops with that error; what was fixed is sent or stays pending,
/// nothing is lost or doubled, and the next run composes only the rest.
#[test]
fn a_composing_error_stops_the_run_and_the_next_run_composes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let mut ledger = Sqlite::open(&path).unwrap();
    let memory = Memory::default();
    let mut list = List::new(0..40);
    list.fail_at = Some(25);
    let (subscribers, oldest_issue) = everyone_wanted();
    let wanted = Wanted {
        subscribers: &subscribers,
        oldest_issue,
        shard: None,
    };
    let error = send_with(&mut ledger, Some(fresh(&list)), &memory, &wanted)
        .map(|_| ())
        .expect_err("the composing error ends the run");
    assert!(
        matches!(&error, crate::Failure::Error(e) if format!("{e:#}").contains("r25@example.com")),
        "{error:?}"
    );
    let fixed: usize = [Status::Pending, Status::Sent]
        .iter()
        .map(|s| ledger.count(&FRESH_ISSUE, *s).unwrap())
        .sum();
    assert_eq!(fixed, 25, "the messages made before the error are fixed");

    // The next run: what was fixed is sent as it was; the rest is made now.
    drop(ledger);
    let mut next = Sqlite::open(&path).unwrap();
    next.release_abandoned().unwrap();
    let rest = List::new(25..40);
    send_with(&mut next, Some(fresh(&rest)), &memory, &wanted).unwrap();
    let copies = memory.copies();
    assert_eq!(copies.len(), 40);
    assert!(copies.values().all(|&n| n == 1), "{copies:?}");
    assert_eq!(next.count(&FRESH_ISSUE, Status::Sent).unwrap(), 40);
}

/// Sends what is pending in `ledger` through `relays` (transport, weight).
fn send_through(ledger: &mut Sqlite, relays: &[(&Memory, u32)]) -> super::Tally {
    let from: Address = "digest@example.com".parse().unwrap();
    let sender = move |_: &str| from.clone();
    let relays: Vec<Relay<'_>> = relays
        .iter()
        .enumerate()
        .map(|(i, (memory, weight))| Relay {
            name: format!("relay{i}"),
            transport: *memory,
            policy: policy(),
            weight: *weight,
        })
        .collect();
    let sending = Sending {
        relays: &relays,
        sender: &sender,
        clock,
        say: Verbosity::Quiet,
    };
    let subscribers = everyone();
    let wanted = Wanted {
        subscribers: &subscribers,
        oldest_issue: IssueKey::stored(String::new()),
        shard: None,
    };
    super::send(ledger, None, &wanted, &sending).unwrap()
}

#[test]
fn relays_share_messages_by_weight() {
    let (_dir, mut ledger) = ledger_with(200);
    let (heavy, light) = (Memory::default(), Memory::default());
    let tally = send_through(&mut ledger, &[(&heavy, 3), (&light, 1)]);
    assert_eq!(tally.sent, 200);
    // Smooth weighted round-robin: exactly 3 to 1 over 200 jobs.
    assert_eq!(heavy.copies().len(), 150);
    assert_eq!(light.copies().len(), 50);
    assert_eq!(tally.relays[0].sent, 150);
    assert_eq!(tally.relays[1].sent, 50);
    assert!(
        heavy
            .copies()
            .keys()
            .all(|to| !light.copies().contains_key(to))
    );
}

#[test]
fn a_relay_that_cannot_be_reached_hands_its_share_to_the_others() {
    let (_dir, mut ledger) = ledger_with(60);
    let (dead, alive) = (Memory::default(), Memory::default());
    dead.connect
        .lock()
        .unwrap()
        .extend((0..1000).map(|_| Failure::Connect("connection refused".into())));
    let tally = send_through(&mut ledger, &[(&dead, 1), (&alive, 1)]);
    assert_eq!(tally.sent, 60);
    assert_eq!(alive.copies().len(), 60);
    assert!(alive.copies().values().all(|&n| n == 1));
    assert!(dead.copies().is_empty());
    assert_eq!(tally.relays[0].sent, 0);
    assert!(
        tally.relays[0]
            .down
            .as_deref()
            .unwrap()
            .contains("connection refused")
    );
    assert_eq!(tally.relays[1].sent, 60);
    assert_eq!(ledger.count_all(Status::Pending).unwrap(), 0);
}

#[test]
fn a_relay_that_keeps_dropping_is_left_but_an_unknown_outcome_is_not_resent() {
    let (_dir, mut ledger) = ledger_with(40);
    let (flaky, steady) = (Memory::default(), Memory::default());
    // Every message on the flaky relay: dropped, or gone without a reply.
    for i in 0..40 {
        let failure = if i == 0 {
            Failure::Ambiguous("connection lost after the content".into())
        } else {
            Failure::Connection("421 closing".into())
        };
        flaky.fail(&format!("r{i}@example.com"), [failure]);
    }
    let tally = send_through(&mut ledger, &[(&flaky, 1), (&steady, 1)]);
    // r0 goes to the flaky relay first (its turn). Tried there, it may be
    // there: never sent again this run, left pending. Still waiting there
    // (in line, or begun ahead of another message but not sent) when the
    // relay went down, it was certainly not accepted: sent by the other.
    let tried = flaky
        .script
        .lock()
        .unwrap()
        .get("r0@example.com")
        .is_none_or(VecDeque::is_empty);
    let pending = ledger.count_all(Status::Pending).unwrap();
    if tried {
        assert!(!steady.copies().contains_key("r0@example.com"));
        assert_eq!((tally.deferred, tally.sent, pending), (1, 39, 1));
    } else {
        assert_eq!((tally.deferred, tally.sent, pending), (0, 40, 0));
    }
    assert!(tally.relays[0].down.is_some());
    assert!(steady.copies().values().all(|&n| n == 1));
}

#[test]
fn a_shard_sends_its_pending_messages_and_leaves_the_others_pending() {
    let (_dir, mut ledger) = ledger_with(40);
    let memory = Memory::default();
    let subscribers = everyone();
    let shard = crate::model::Shard::new(1, 3).unwrap();
    let wanted = Wanted {
        subscribers: &subscribers,
        oldest_issue: IssueKey::stored(String::new()),
        shard: Some(shard),
    };
    let mine = (0..40)
        .filter(|i| shard.contains(&format!("r{i}@example.com")))
        .count();
    assert!(0 < mine && mine < 40);
    let tally = send_wanted(&mut ledger, &memory, &wanted);
    assert_eq!(tally.sent, mine);
    assert_eq!(tally.dropped, 0);
    assert!(memory.copies().keys().all(|to| shard.contains(to)));
    assert_eq!(ledger.count_all(Status::Pending).unwrap(), 40 - mine);
}
