//! `digest --send` on a PostgreSQL ledger (`digest.state =
//! "postgres://…"`), against the test process's private cluster
//! (`support::pg_database`) and Postfix's `smtp-sink`: several processes
//! sharing one issue, one of them killed with SIGKILL again and again.
//! Run them with `cargo test --test integration postgres`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::{ISSUE, Running, Site, SmtpServer, copies, pg_database};

const RECIPIENTS: usize = 5000;
const CONNECTIONS: usize = 4;

/// Waits until the sink's store stops growing.
fn settle(server: &SmtpServer) -> usize {
    let mut last = server.stored_count();
    loop {
        std::thread::sleep(Duration::from_millis(400));
        let now = server.stored_count();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// `SELECT status, count(*)` of the issue, and the outbox's size.
fn ledger_counts(url: &str) -> (BTreeMap<String, i64>, i64) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    let statuses = client
        .query(
            "SELECT status, count(*) FROM delivery_log WHERE issue = $1 GROUP BY status",
            &[&ISSUE],
        )
        .expect("count deliveries")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let outbox: i64 = client
        .query_one("SELECT count(*) FROM outbox", &[])
        .expect("count the outbox")
        .get(0);
    (statuses, outbox)
}

/// A pseudo-random number from the clock (printed, so a failure can be
/// told apart from another).
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .subsec_nanos();
    u64::from(nanos) | 1
}

fn next(state: &mut u64) -> u64 {
    // xorshift64
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Three `digest --send` processes share one issue of 5,000 recipients on
/// one PostgreSQL ledger and one smtp-sink; the third is killed with
/// SIGKILL at three random points and started again each time. Every
/// recipient ends with exactly one copy, except at most one per connection
/// of the killed process per kill (in flight: sent, not yet recorded); the
/// copies of one recipient carry one Message-ID; nothing is left pending.
#[test]
fn three_processes_share_an_issue_and_one_killed_again_and_again_sends_each_once() {
    let url = pg_database();
    let site = Site::smtp(RECIPIENTS);
    site.set("digest.max_items", 3)
        .set("digest.state", url.as_str())
        .set("smtp.connections", CONNECTIONS as i64);
    let server = site.serve_sink();

    let mut random = seed();
    println!("seed {random}");
    let mut points: Vec<usize> = (0..3)
        .map(|_| RECIPIENTS * (5 + (next(&mut random) % 80) as usize) / 100)
        .collect();
    points.sort_unstable();

    let survivors: Vec<Running> = (0..2).map(|_| site.send_cmd().spawn()).collect();
    let mut killed = site.send_cmd().spawn();
    let mut kills = 0;
    for &point in &points {
        let deadline = Instant::now() + Duration::from_secs(300);
        while server.stored_count() < point && !killed.exited() {
            assert!(Instant::now() < deadline, "no progress towards {point}");
            std::thread::sleep(Duration::from_millis(2));
        }
        if killed.exited() {
            break; // it finished before this point
        }
        let run = killed.kill();
        assert_eq!(run.code, None, "the run was not killed:\n{run}");
        kills += 1;
        killed = site.send_cmd().spawn();
    }
    let mut runs: Vec<_> = survivors.into_iter().map(Running::finish).collect();
    runs.push(killed.finish());
    for run in &runs {
        assert_eq!(run.code, Some(0), "a run did not finish the issue:\n{run}");
    }
    settle(&server);

    let stored = server.stored();
    let by_recipient = copies(&stored);
    for r in &site.recipients() {
        assert!(
            by_recipient.contains_key(&r.to_lowercase()),
            "{r}: no copy at all"
        );
    }
    assert_eq!(by_recipient.len(), RECIPIENTS, "mail for a non-subscriber");
    let mut duplicates = 0;
    for (rcpt, copies) in &by_recipient {
        for pair in copies.windows(2) {
            assert_eq!(
                pair[0].message_id, pair[1].message_id,
                "{rcpt}: a resend changed Message-ID"
            );
        }
        duplicates += copies.len() - 1;
    }
    println!(
        "postgres drill: {RECIPIENTS} recipients, 3 processes × {CONNECTIONS} connections, \
         {kills} kills at {points:?} stored; {} stored, {duplicates} duplicates",
        stored.len()
    );
    assert!(
        duplicates <= kills * CONNECTIONS,
        "{duplicates} duplicates, more than the {CONNECTIONS} in flight per kill ({kills} kills)"
    );
    let (statuses, outbox) = ledger_counts(&url);
    assert_eq!(
        statuses.get("sent").copied(),
        Some(RECIPIENTS as i64),
        "{statuses:?}"
    );
    assert_eq!(statuses.len(), 1, "only sent: {statuses:?}");
    assert_eq!(outbox, 0, "nothing is left pending");
}

/// Two commands opening an empty database at the same moment both work:
/// the schema is created once (the second waits on the advisory lock and
/// finds it made).
#[test]
fn two_processes_opening_a_new_postgres_ledger_at_once_create_it_once() {
    let url = pg_database();
    let site = Site::smtp(1);
    site.set("digest.state", url.as_str());
    let running: Vec<Running> = ["a@x.cn", "b@x.cn", "c@x.cn"]
        .iter()
        .map(|a| site.cmd(&["unsubscribe", a]).spawn())
        .collect();
    for run in running.into_iter().map(Running::finish) {
        assert_eq!(run.code, Some(0), "{run}");
    }
    let listed = site.run(&["suppressions", "list"]);
    assert_eq!(listed.code, Some(0), "{listed}");
    assert_eq!(listed.stdout.lines().count(), 3, "{listed}");
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let versions: i64 = client
        .query_one("SELECT count(*) FROM bulletin_schema", &[])
        .expect("the schema table")
        .get(0);
    assert_eq!(versions, 1);
}

/// A password in `digest.state` is refused before anything runs; the
/// message says where the password goes, and never repeats it.
#[test]
fn a_password_in_the_postgres_url_is_a_config_error() {
    let site = Site::smtp(1);
    site.set(
        "digest.state",
        "postgres://news:hunter2@127.0.0.1:5432/news",
    );
    let run = site.check();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("digest.state"), "{run}");
    assert!(run.stderr.contains("PGPASSWORD"), "{run}");
    assert!(!run.stderr.contains("hunter2"), "{run}");
}

/// A dry run reads a PostgreSQL ledger that does not exist yet (nothing
/// sent) without creating it, and after a send says who has the issue.
#[test]
fn a_dry_run_reads_the_postgres_ledger_without_writing() {
    let url = pg_database();
    let site = Site::smtp(20);
    site.set("digest.state", url.as_str());
    let before = site.dry_run("preview-1");
    assert_eq!(before.run.code, Some(0), "{}", before.run);
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let made: bool = client
        .query_one("SELECT to_regclass('bulletin_schema') IS NOT NULL", &[])
        .expect("query")
        .get(0);
    assert!(!made, "a dry run created the ledger");
    let _server = site.serve_sink();
    let sent = site.send();
    assert_eq!(sent.code, Some(0), "{sent}");
    let after = site.dry_run("preview-2");
    assert_eq!(after.run.code, Some(0), "{}", after.run);
    assert!(
        after.run.stderr.contains("20 already sent")
            || after.run.stdout.contains("20 already sent"),
        "{}",
        after.run
    );
}
