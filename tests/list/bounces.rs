//! `bulletin bounces`: bounces made by a real Postfix, hand-written
//! samples (soft bounces to the limit, an ARF complaint, a non-report, a
//! report read twice), a kill -9 midway through a large mbox, and a 5xx to
//! RCPT during `--send`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Run, Site, repo_root};

const BOUNCE_ADDRESS: &str = "bounces+{{token}}@news.test";

/// The suppression list as (address, reason, source) lines.
fn listed(site: &Site) -> Vec<(String, String, String)> {
    let run = site.run(&["suppressions", "list"]);
    run.assert_success();
    run.stdout
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            (f[0].to_owned(), f[1].to_owned(), f[3].to_owned())
        })
        .collect()
}

/// `bulletin bounces -` with `message` on stdin.
fn bounces_on_stdin(site: &Site, message: &[u8]) -> Run {
    let mut command = site.cmd(&["bounces", "-"]).into_command();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bulletin");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(message)
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait for bulletin");
    let run = Run::from_output(output);
    assert!(!run.stderr.contains("panicked"), "{run}");
    run
}

/// The envelope sender (MAIL FROM) the fault server saw for each recipient.
fn senders(stored: &[crate::support::Stored]) -> Vec<(String, String)> {
    stored
        .iter()
        .map(|s| {
            let raw =
                String::from_utf8_lossy(&std::fs::read(&s.file).expect("read stored")).into_owned();
            let from = raw
                .lines()
                .find_map(|l| l.strip_prefix("X-Test-Mail-From: "))
                .expect("the fault server's envelope line")
                .trim()
                .to_owned();
            (s.rcpt.clone(), from)
        })
        .collect()
}

/// Runs `tests/support/postfix_dsn.sh`: a private Postfix instance bounces
/// `message` (envelope sender `sender`, to an unknown local user) and its
/// bounce daemon's DSN lands in a Maildir. Returns the Maildir folder and
/// the DSN file.
fn postfix_bounce(dir: &Path, sender: &str, message: &[u8]) -> (PathBuf, PathBuf) {
    let message_file = dir.join("message.eml");
    std::fs::write(&message_file, message).expect("write the message");
    let instance = dir.join("postfix");
    let output = Command::new("bash")
        .arg(repo_root().join("tests/support/postfix_dsn.sh"))
        .arg(&instance)
        .arg(sender)
        .arg("nobody-here@example.test")
        .arg(&message_file)
        .output()
        .expect("run postfix_dsn.sh (needs bash and Postfix: apt-get install postfix)");
    assert!(
        output.status.success(),
        "the private Postfix made no bounce:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dsn = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let maildir = dsn
        .parent()
        .and_then(Path::parent)
        .expect("MAILDIR/new/FILE")
        .to_path_buf();
    (maildir, dsn)
}

#[test]
fn a_postfix_bounce_suppresses_its_recipient_by_the_verp_token_from_a_maildir_and_from_stdin() {
    let site = Site::smtp(3);
    site.set("digest.bounce_address", BOUNCE_ADDRESS);
    let server = site.serve(&[]);
    site.send().assert_success();

    // Each message's envelope sender carries its recipient's token.
    let stored = server.stored();
    let senders = senders(&stored);
    assert_eq!(senders.len(), 3);
    for (rcpt, from) in &senders {
        assert!(
            from.starts_with("bounces+") && from.ends_with("@news.test"),
            "{rcpt}: MAIL FROM {from}"
        );
        let token = &from["bounces+".len()..from.len() - "@news.test".len()];
        assert_eq!(token.len(), 29, "{from}");
    }
    let distinct: std::collections::BTreeSet<&String> = senders.iter().map(|(_, f)| f).collect();
    assert_eq!(distinct.len(), 3, "one sender per recipient: {senders:?}");

    // reader0001's digest, bounced for real by Postfix's local and bounce
    // daemons (to an unknown user there), with reader0001's VERP sender.
    let victim = "reader0001@example.com";
    let message = stored.iter().find(|s| s.rcpt == victim).expect("sent");
    let sender = &senders.iter().find(|(r, _)| r == victim).expect("sent").1;
    let work = tempfile::tempdir().expect("a temporary folder");
    let (maildir, dsn) = postfix_bounce(work.path(), sender, &message.bytes);
    let dsn_bytes = std::fs::read(&dsn).expect("read the DSN");
    let text = String::from_utf8_lossy(&dsn_bytes);
    assert!(
        text.contains("report-type=delivery-status") && text.contains("Status: 5.1.1"),
        "{text}"
    );
    // The DSN's own recipient fields name the unknown user, not ours: only
    // the token says whom it is about.
    assert!(!text.contains(&format!("Final-Recipient: rfc822; {victim}")));

    let run = site.run(&["bounces", maildir.to_str().expect("UTF-8 path")]);
    run.assert_success();
    assert!(
        run.stdout.contains(
            "read 1 messages: 1 hard bounces, 0 complaints, 0 soft (0 now suppressed), 0 skipped"
        ),
        "{run}"
    );
    let list = listed(&site);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].0, victim);
    assert_eq!(list[0].1, "bounced");
    assert!(list[0].2.contains("@mx.example.test>"), "source: {list:?}");
    assert!(!site.dry_run("after").ok().has_email(victim));

    // The same DSN through the alias pipe (stdin) of another site with the
    // same subscribers and secret: found and suppressed the same way.
    let other = Site::smtp(3);
    other.set("digest.bounce_address", BOUNCE_ADDRESS);
    let piped = bounces_on_stdin(&other, &dsn_bytes);
    piped.assert_success();
    assert!(piped.stdout.contains("1 hard bounces"), "{piped}");
    assert_eq!(listed(&other), list);

    // And read again: counted once.
    let again = bounces_on_stdin(&site, &dsn_bytes);
    again.assert_success();
    assert!(
        again.stdout.contains("0 hard bounces") && again.stdout.contains("1 already recorded"),
        "{again}"
    );
    assert_eq!(listed(&site), list);
}

/// A hand-written DSN for `recipient` (no VERP token: found by its
/// `Final-Recipient`, a known subscriber).
fn dsn(id: &str, date: &str, recipient: &str, action: &str, status: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.net\r
To: digest@news.example.cn\r
Subject: Delivery Status Notification\r
Message-ID: <{id}@mx.example.net>\r
Date: {date}\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r
\r
--b1\r
Content-Type: text/plain\r
\r
Your message is delayed: the mailbox is full.\r
--b1\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.net\r
\r
Final-Recipient: rfc822; {recipient}\r
Action: {action}\r
Status: {status}\r
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\r
--b1--\r
"
    )
}

/// A hand-written ARF abuse report about a digest to `recipient`.
fn complaint(id: &str, recipient: &str) -> String {
    format!(
        "From: fbl@isp.example.net\r
To: abuse@news.example.cn\r
Subject: Abuse report\r
Message-ID: <{id}@isp.example.net>\r
Date: Sat, 25 Mar 2017 10:00:00 +0000\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=feedback-report; boundary=\"arf\"\r
\r
--arf\r
Content-Type: text/plain\r
\r
This is an email abuse report.\r
--arf\r
Content-Type: message/feedback-report\r
\r
Feedback-Type: abuse\r
User-Agent: SomeISP-FBL/1.0\r
Version: 1\r
Original-Rcpt-To: <{recipient}>\r
\r
--arf\r
Content-Type: text/rfc822-headers\r
\r
From: digest@news.example.cn\r
To: {recipient}\r
Subject: News\r
\r
--arf--\r
"
    )
}

/// Messages as an mbox file.
fn mbox(messages: &[String]) -> String {
    messages
        .iter()
        .map(|m| {
            format!(
                "From MAILER-DAEMON Sat Mar 25 10:00:00 2017\n{}\n",
                m.replace("\r\n", "\n")
            )
        })
        .collect()
}

#[test]
fn soft_bounces_suppress_at_the_limit_within_the_window() {
    let site = Site::smtp(3);
    let full = "reader0002@example.com";
    let first = [
        dsn(
            "s1",
            "Mon, 20 Mar 2017 10:00:00 +0000",
            full,
            "delayed",
            "4.2.2",
        ),
        dsn(
            "s2",
            "Tue, 21 Mar 2017 10:00:00 +0000",
            full,
            "delayed",
            "4.2.2",
        ),
    ];
    site.write("soft-1.mbox", mbox(&first));
    let run = site.run(&["bounces", "soft-1.mbox"]);
    run.assert_success();
    assert!(
        run.stdout.contains(
            "read 2 messages: 0 hard bounces, 0 complaints, 2 soft (0 now suppressed), 0 skipped"
        ),
        "{run}"
    );
    assert!(listed(&site).is_empty(), "two soft bounces are not enough");

    // The third within 14 days (the default window) reaches the limit (3).
    site.write(
        "soft-2.mbox",
        mbox(&[dsn(
            "s3",
            "Wed, 22 Mar 2017 10:00:00 +0000",
            full,
            "failed",
            "4.2.2",
        )]),
    );
    let run = site.run(&["bounces", "soft-2.mbox"]);
    run.assert_success();
    assert!(run.stdout.contains("1 soft (1 now suppressed)"), "{run}");
    let list = listed(&site);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!((list[0].0.as_str(), list[0].1.as_str()), (full, "bounced"));
    assert!(list[0].2.contains("3 soft bounces"), "{list:?}");

    // Spread over more than the window, they do not add up.
    let spread = Site::smtp(3);
    spread.set("digest.soft_bounce_window", "2d");
    spread.write(
        "soft.mbox",
        mbox(&[
            first[0].clone(),
            first[1].clone(),
            dsn(
                "s4",
                "Sat, 25 Mar 2017 10:00:00 +0000",
                full,
                "delayed",
                "4.2.2",
            ),
        ]),
    );
    spread.run(&["bounces", "soft.mbox"]).assert_success();
    assert!(listed(&spread).is_empty());
}

#[test]
fn a_complaint_suppresses_a_non_report_is_skipped_and_a_report_counts_once() {
    let site = Site::smtp(3);
    // A Maildir with a complaint, a hard bounce and a message that is no report.
    for folder in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(site.path(&format!("Maildir/{folder}"))).expect("mkdir");
    }
    site.write(
        "Maildir/cur/1.arf:2,S",
        complaint("c1", "reader0000@example.com"),
    );
    site.write(
        "Maildir/new/2.dsn",
        dsn(
            "h1",
            "Sat, 25 Mar 2017 10:00:00 +0000",
            "Reader0001@Example.com",
            "failed",
            "5.1.1",
        ),
    );
    site.write(
        "Maildir/new/3.hello",
        "From: a@example.net\r\nTo: bounces@news.example.cn\r\nSubject: hello\r\n\r\nJust saying hello.\r\n",
    );
    let run = site.run(&["bounces", "Maildir"]);
    run.assert_success();
    assert!(
        run.stdout.contains(
            "read 3 messages: 1 hard bounces, 1 complaints, 0 soft (0 now suppressed), 1 skipped"
        ),
        "{run}"
    );
    assert!(
        run.stderr.contains("warning")
            && run.stderr.contains("Maildir/new/3.hello")
            && run.stderr.contains("skipped"),
        "the warning names the file:\n{run}"
    );
    let list = listed(&site);
    let reasons: Vec<(&str, &str)> = list
        .iter()
        .map(|(a, r, _)| (a.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("reader0000@example.com", "complained"),
            ("reader0001@example.com", "bounced")
        ]
    );
    assert_eq!(list[0].2, "<c1@isp.example.net>");
    assert_eq!(list[1].2, "<h1@mx.example.net>");

    // Read twice: counted once; a removed address is not put back by the
    // old report.
    site.run(&["suppressions", "remove", "reader0001@example.com"])
        .assert_success();
    let again = site.run(&["bounces", "Maildir"]);
    again.assert_success();
    assert!(
        again.stdout.contains("0 hard bounces, 0 complaints")
            && again.stdout.contains("2 already recorded"),
        "{again}"
    );
    assert_eq!(listed(&site).len(), 1);

    // An address bulletin does not send to is not suppressed.
    site.write(
        "stranger.eml",
        dsn(
            "x1",
            "Sat, 25 Mar 2017 10:00:00 +0000",
            "stranger@example.org",
            "failed",
            "5.1.1",
        ),
    );
    let run = site.run(&["bounces", "stranger.eml"]);
    run.assert_success();
    assert!(run.stdout.contains("1 skipped"), "{run}");
    assert_eq!(listed(&site).len(), 1);

    // Unreadable paths: exit 1, the rest is still read.
    let run = site.run(&["bounces", "missing.mbox", "stranger.eml"]);
    run.assert_code(1);
    assert!(run.stderr.contains("missing.mbox"), "{run}");
    assert!(run.stdout.contains("read 1 messages"), "{run}");

    // Garbage never crashes.
    site.write(
        "junk.mbox",
        b"From x\n\xff\xfe\x00garbage\nContent-Type: multipart/report\n\n--\n".as_slice(),
    );
    let run = site.run(&["bounces", "junk.mbox"]);
    run.assert_success();
    assert!(!run.stderr.contains("panicked"), "{run}");
}

#[test]
fn kill_9_during_a_large_mbox_leaves_nothing_half_recorded_and_a_rerun_converges() {
    let n = 6000;
    let site = Site::smtp(n);
    let reports: Vec<String> = (0..n)
        .map(|i| {
            dsn(
                &format!("k{i}"),
                "Sat, 25 Mar 2017 10:00:00 +0000",
                &format!("reader{i:04}@example.com"),
                "failed",
                "5.1.1",
            )
        })
        .collect();
    site.write("large.mbox", mbox(&reports));
    let state = site.path("state/digest.state");
    let events = |path: &Path| -> (i64, i64) {
        let conn = rusqlite::Connection::open(path).expect("open the state");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap_or(0);
        (
            count("SELECT count(*) FROM bounce_events"),
            count("SELECT count(*) FROM suppressions"),
        )
    };
    let mut running = site.cmd(&["bounces", "large.mbox"]).spawn();
    let started = Instant::now();
    loop {
        if running.exited() || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        if state.exists() && events(&state).0 > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = running.kill();
    let (recorded, suppressed) = events(&state);
    println!(
        "killed with {recorded} of {n} events recorded (exit {:?})",
        killed.code
    );
    assert!(
        killed.code.is_none() && recorded < n as i64,
        "the run was not killed midway: {killed}"
    );
    // Whole batches only: every recorded hard bounce has its suppression.
    assert_eq!(recorded, suppressed, "an event without its suppression");

    let rerun = site.run(&["bounces", "large.mbox"]);
    rerun.assert_success();
    assert!(
        rerun.stdout.contains(&format!(
            "read {n} messages: {} hard bounces",
            n as i64 - recorded
        )),
        "{rerun}"
    );
    assert_eq!(events(&state), (n as i64, n as i64));
    let list = listed(&site);
    assert_eq!(list.len(), n);
    assert!(list.iter().all(|(_, reason, _)| reason == "bounced"));

    // The same as one uninterrupted run.
    let clean = Site::smtp(n);
    clean.write("large.mbox", mbox(&reports));
    clean.run(&["bounces", "large.mbox"]).assert_success();
    assert_eq!(listed(&clean), list);
}

#[test]
fn a_5xx_to_rcpt_during_send_suppresses_the_address_and_the_next_dry_run_skips_it() {
    let site = Site::smtp(6);
    let refused = "reader0003@example.com";
    let server = site.serve(&["--reject", refused]);
    let run = site.send();
    run.assert_code(2); // one recipient refused
    assert!(run.stderr.contains("suppression list"), "{run}");
    let list = listed(&site);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        (list[0].0.as_str(), list[0].1.as_str()),
        (refused, "bounced")
    );
    assert!(
        list[0].2.starts_with("SMTP reply: ") && list[0].2.contains("550"),
        "{list:?}"
    );
    assert_eq!(server.stored().len(), 5);

    let dry = site.dry_run("after").ok();
    assert!(!dry.has_email(refused));
    assert!(
        dry.run.stdout.contains("1 suppressed"),
        "{}",
        dry.run.stdout
    );
}

#[test]
fn a_5xx_after_data_does_not_suppress_the_address() {
    let site = Site::smtp(4);
    let _server = site.serve(&["--fail-every", "2", "--fail-code", "554"]);
    site.send().assert_code(2);
    assert!(
        listed(&site).is_empty(),
        "a 554 after DATA is about the content"
    );
}

#[test]
fn check_and_send_say_a_bounce_address_needs_the_secret() {
    let site = Site::smtp(2);
    site.set("digest.bounce_address", BOUNCE_ADDRESS);
    let check = site
        .cmd(&["check"])
        .env_remove(crate::support::SECRET_VAR)
        .run();
    check.assert_code(1);
    assert!(
        check.stderr.contains("digest.bounce_address")
            && check.stderr.contains(crate::support::SECRET_VAR),
        "{check}"
    );
    let send = site.send_cmd().env_remove(crate::support::SECRET_VAR).run();
    send.assert_code(1);
    assert!(send.stderr.contains("digest.bounce_address"), "{send}");
    site.check().assert_success();
}
