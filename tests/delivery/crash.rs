//! Crash drills (SIGKILL mid-send, then rerun) and the run lock.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::time::{Duration, Instant};

use crate::support::{Email, Pipelining, Site, SmtpServer, assert_one_each, copies};

both_ways!(
    killed_while_composing_the_rerun_sends_what_was_fixed_and_composes_the_rest,
    crash_drill_sigkill_at_10_50_90_percent_then_rerun,
    sending_stops_when_outcomes_cannot_be_recorded,
    two_sends_at_once_only_one_sends,
);

const DRILL_SUBSCRIBERS: usize = 2000;
const CONNECTIONS: usize = 4;

/// Waits until the server's store stops growing (messages in flight when the
/// client died are stored or dropped by then).
fn settle(server: &SmtpServer) -> usize {
    let mut last = server.stored_count();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = server.stored_count();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// 2000 subscribers, a server that keeps each message 10 ms before its 250
/// (stored first, like a real MTA, so a kill in that window leaves a message
/// the server has and the client never heard about). `digest --send` is
/// killed with SIGKILL once the server holds ~10 %, ~50 % and ~90 % of the
/// messages, then rerun until it exits 0.
///
/// Every recipient must end with at least one copy; a duplicate is allowed
/// only for a message in flight at a kill, so at most `connections` per kill,
/// with the same Message-ID and bytes; the state database must say all sent.
fn crash_drill_sigkill_at_10_50_90_percent_then_rerun(pipelining: Pipelining) {
    let site = Site::smtp(DRILL_SUBSCRIBERS);
    // Three items per email keep the messages small and composing quick.
    site.set("digest.max_items", 3)
        .set("smtp.connections", CONNECTIONS as i64);
    let server = site.serve_with(pipelining, &["--delay", "0.01"]);

    let mut boundaries = Vec::new(); // stored count after each kill
    for percent in [10, 50, 90] {
        let target = DRILL_SUBSCRIBERS * percent / 100;
        let mut running = site.send_cmd().spawn();
        let deadline = Instant::now() + Duration::from_secs(180);
        while server.stored_count() < target {
            if running.exited() {
                panic!(
                    "digest --send ended before the {percent}% kill point ({} stored):\n{}",
                    server.stored_count(),
                    running.finish()
                );
            }
            assert!(Instant::now() < deadline, "no progress towards {percent}%");
            std::thread::sleep(Duration::from_millis(2));
        }
        let killed = running.kill();
        assert_eq!(killed.code, None, "the run was not killed:\n{killed}");
        boundaries.push(settle(&server));
    }
    let runs = site.send_until_done(5);

    let stored = server.stored();
    let phase_of = |index: usize| boundaries.iter().position(|&b| index < b);
    let mut per_kill = vec![0usize; boundaries.len()];
    let mut unexplained = Vec::new();
    let mut positions: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in stored.iter().enumerate() {
        positions.entry(s.rcpt.as_str()).or_default().push(i);
    }
    for r in &site.recipients() {
        assert!(positions.contains_key(r.as_str()), "{r}: no copy at all");
    }
    assert_eq!(
        positions.len(),
        DRILL_SUBSCRIBERS,
        "mail for a non-subscriber"
    );
    for (rcpt, at) in &positions {
        for pair in at.windows(2) {
            let (a, b) = (&stored[pair[0]], &stored[pair[1]]);
            assert_eq!(
                a.message_id, b.message_id,
                "{rcpt}: a resend changed Message-ID"
            );
            assert!(a.bytes == b.bytes, "{rcpt}: a resend changed the bytes");
            // The earlier copy was stored but not recorded before the kill
            // that ended its run.
            match phase_of(pair[0]) {
                Some(kill) => per_kill[kill] += 1,
                None => unexplained.push(rcpt.to_string()),
            }
        }
    }
    let duplicates: usize = per_kill.iter().sum();
    println!(
        "crash drill: {DRILL_SUBSCRIBERS} recipients, {CONNECTIONS} connections, kills at {boundaries:?} stored; \
         {} messages stored in all, {duplicates} duplicates (per kill: {per_kill:?}), {} reruns to finish",
        stored.len(),
        runs.len()
    );
    assert!(
        unexplained.is_empty(),
        "duplicates not explained by any kill: {unexplained:?}"
    );
    for (kill, &n) in per_kill.iter().enumerate() {
        assert!(
            n <= CONNECTIONS,
            "kill {} left {n} duplicates, more than the {CONNECTIONS} messages that can be in flight",
            kill + 1
        );
    }
    site.state().assert_all(&site.recipients(), "sent");
}

/// The journal (the state database) stalls — another process holds its write
/// lock, as a slow disk would hold each commit — while the server keeps
/// accepting. Outcomes cannot be recorded, so sending must stop within
/// `connections` messages; a SIGKILL at that point may then cost at most
/// `connections` duplicates. (Sending on while outcomes queue up unrecorded
/// turns every queued message into a duplicate after a crash.)
fn sending_stops_when_outcomes_cannot_be_recorded(pipelining: Pipelining) {
    let site = Site::smtp(400);
    site.set("digest.max_items", 3)
        .set("smtp.connections", CONNECTIONS as i64);
    let server = site.serve_with(pipelining, &["--delay", "0.005"]);
    let mut running = site.send_cmd().spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.stored_count() < 40 {
        assert!(!running.exited(), "the send ended early");
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(2));
    }

    let journal = rusqlite::Connection::open(site.state_path()).expect("open the state");
    journal
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let recorded: usize = journal
        .query_row(
            "SELECT count(*) FROM delivery_log WHERE status = 'sent'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .expect("count sent") as usize;
    // Give the workers time to run ahead, if they do.
    std::thread::sleep(Duration::from_millis(1500));
    let killed = running.kill();
    assert_eq!(killed.code, None, "the run was not killed:\n{killed}");
    let stored_at_kill = settle(&server);
    journal.execute_batch("ROLLBACK").expect("release the lock");
    drop(journal);

    site.send_until_done(3);
    let stored = server.stored();
    let duplicates = stored.len() - copies(&stored).len();
    println!(
        "stalled journal: {recorded} recorded when the lock was taken, {stored_at_kill} stored at the kill, \
         {duplicates} duplicates after the rerun"
    );
    assert!(
        stored_at_kill <= recorded + CONNECTIONS,
        "the server accepted {} messages that could not be recorded (at most {CONNECTIONS}, one per connection, may be in flight)",
        stored_at_kill - recorded
    );
    assert!(
        duplicates <= CONNECTIONS,
        "{duplicates} duplicates after one kill; at most {CONNECTIONS} were in flight"
    );
    for r in &site.recipients() {
        assert!(copies(&stored).contains_key(r.as_str()), "{r}: no copy");
    }
    site.state().assert_all(&site.recipients(), "sent");
}

fn two_sends_at_once_only_one_sends(pipelining: Pipelining) {
    let site = Site::smtp(12);
    let server = site.serve_with(pipelining, &["--delay", "0.3"]);
    let a = site.send_cmd().spawn();
    let b = site.send_cmd().spawn();
    let (a, b) = (a.finish(), b.finish());
    let (winner, loser) = if a.code == Some(0) { (a, b) } else { (b, a) };
    winner.assert_success(); // the run holding the lock
    loser.assert_code(2); // the run that found the lock taken
    let said = loser.stderr.to_lowercase();
    assert!(
        said.contains("another") && said.contains("lock"),
        "the second run should say another run holds the lock:\n{loser}"
    );
    assert_one_each(&server.stored(), &site.recipients());
    site.state().assert_all(&site.recipients(), "sent");
}

/// The recipients with a message fixed for the issue, and their
/// Message-IDs while they are still to send (the state keeps a sent
/// message's record, not its Message-ID).
fn fixed_messages(site: &Site) -> BTreeMap<String, Option<String>> {
    let state = rusqlite::Connection::open(site.state_path()).expect("open the state");
    let mut statement = state
        .prepare("SELECT recipient, message_id FROM delivery_log WHERE issue = ?1")
        .expect("query deliveries");
    statement
        .query_map([crate::support::ISSUE], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .expect("read deliveries")
        .collect::<Result<_, _>>()
        .expect("read deliveries")
}

/// Killed while the issue is still being composed: the first messages are
/// out, most are not made yet. Before the rerun a new article is published.
/// The rerun sends every message fixed before the kill as it was fixed
/// (without the new article, with its Message-ID) and composes the others
/// now (with it); nobody gets two different digests, and a duplicate (at
/// most one per connection) is the same bytes.
fn killed_while_composing_the_rerun_sends_what_was_fixed_and_composes_the_rest(
    pipelining: Pipelining,
) {
    const SUBSCRIBERS: usize = 600;
    let site = Site::smtp(SUBSCRIBERS);
    site.set("smtp.connections", CONNECTIONS as i64);
    let server = site.serve_with(pipelining, &["--delay", "0.05"]);
    let mut running = site.send_cmd().spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.stored_count() == 0 {
        assert!(
            !running.exited(),
            "the send ended before anything was stored"
        );
        assert!(Instant::now() < deadline, "nothing was sent");
        std::thread::sleep(Duration::from_millis(1));
    }
    let killed = running.kill();
    assert_eq!(killed.code, None, "the run was not killed:\n{killed}");
    let at_kill = settle(&server);
    let fixed = fixed_messages(&site);
    println!(
        "killed while composing: {} of {SUBSCRIBERS} messages fixed, {at_kill} stored",
        fixed.len()
    );
    assert!(
        !fixed.is_empty() && fixed.len() < SUBSCRIBERS,
        "the kill should come while composing: {} of {SUBSCRIBERS} fixed",
        fixed.len()
    );

    let title = "重启之后发布的新稿件";
    let record = serde_json::json!({
        "id": "after-the-kill",
        "title": title,
        "section": "news",
        "url": "/news/after-the-kill.html",
        "published": "2017-03-25T07:00:00+08:00",
        "summary": "在两次发送之间发布。",
    });
    fs::write(
        site.path("articles/after-the-kill.jsonl"),
        format!("{record}\n"),
    )
    .unwrap();
    site.send_until_done(3);

    let stored = server.stored();
    let copies = copies(&stored);
    assert_eq!(copies.len(), SUBSCRIBERS, "everyone has a copy");
    let mut late = 0;
    for (rcpt, messages) in &copies {
        let first = &messages[0];
        for other in &messages[1..] {
            assert!(other.bytes == first.bytes, "{rcpt}: two different copies");
        }
        let has_new = Email::parse(first.bytes.clone()).text.contains(title);
        match fixed.get(rcpt.as_str()) {
            Some(id) => {
                if let Some(id) = id {
                    assert_eq!(
                        &first.message_id, id,
                        "{rcpt}: not the message fixed before the kill"
                    );
                }
                assert!(
                    !has_new,
                    "{rcpt}: its message was fixed before the article existed"
                );
            }
            None => {
                late += 1;
                assert!(
                    has_new,
                    "{rcpt}: composed after the kill, without the new article"
                );
            }
        }
    }
    let duplicates = stored.len() - copies.len();
    println!("after the rerun: {late} composed by it, {duplicates} duplicates");
    assert!(late > 0);
    assert!(
        duplicates <= CONNECTIONS,
        "{duplicates} duplicates; at most {CONNECTIONS} messages were in flight at the kill"
    );
    let distinct: BTreeSet<&str> = stored.iter().map(|s| s.message_id.as_str()).collect();
    assert_eq!(distinct.len(), SUBSCRIBERS);
    site.state().assert_all(&site.recipients(), "sent");
}
