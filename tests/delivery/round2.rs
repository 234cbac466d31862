//! Hardening of `digest --send` (issue #17): each test pins one defect found
//! in the second round and fails on the code before its fix.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    Cmd, ISSUE, NOW, PASSWORD_VAR, Run, Running, SECRET, SECRET_VAR, Site, SmtpServer, Stored,
    assert_one_each, check_digest, copies, free_port, parse_stored, set_mode,
};

/// `digest --send` with its file-size limit at `kib` KiB (writes beyond it
/// fail with EFBIG, as on a full disk, instead of killing the process).
fn send_with_file_size_limit(site: &Site, kib: u64) -> Run {
    site.cmd(&["digest", "--config", "feeds.toml", "--send", "--now", NOW])
        .wrapped_in([
            "sh".to_owned(),
            "-c".to_owned(),
            format!("trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"", kib * 2),
        ])
        .run()
}

/// `bulletin digest --send` at `now`, or by the clock when `None`.
fn send_at(site: &Site, now: Option<&str>) -> Run {
    site.cmd(&["digest", "--config", "feeds.toml", "--send"])
        .args(now.map(|now| ["--now", now]).into_iter().flatten())
        .run()
}

/// Adds an article in `news` published at `published`, in its own file.
fn add_article(site: &Site, id: &str, published: chrono::DateTime<chrono::Utc>) {
    let record = serde_json::json!({
        "id": id,
        "title": format!("新稿件 {id}"),
        "section": "news",
        "url": format!("/news/{id}.html"),
        "published": published.to_rfc3339(),
        "summary": format!("摘要 {id}"),
    });
    fs::write(
        site.path(&format!("articles/{id}.jsonl")),
        format!("{record}\n"),
    )
    .unwrap();
}

/// Waits until `server` has stored `n` messages (the run is sending).
fn wait_for_stored(server: &SmtpServer, n: usize, running: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.stored_count() < n {
        assert!(
            !running.exited(),
            "the send ended before {n} messages were stored"
        );
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---- 2: one sender per state database -----------------------------------------

/// The second run found the first one's lock: exit 2, nothing sent, and a
/// message that does not send anyone deleting a lock file.
fn assert_busy(second: &Run) {
    // The second run, while the first sends.
    second.assert_code(2);
    assert!(
        second
            .stderr
            .contains("another `bulletin digest --send` is sending from the state database"),
        "{second}"
    );
    assert!(
        !second.stderr.contains(".lock"),
        "the message should not point at a lock file (people delete those):\n{second}"
    );
}

/// Regression: the lock sat beside the state path *as written*, so two
/// sites reaching one database through a symlink (a deploy layout
/// `releases/N/.bulletin/state.sqlite -> shared/`) both sent everything.
#[test]
fn two_sites_sharing_one_state_through_a_symlink_send_each_digest_once() {
    let first = Site::smtp(40);
    first.set("smtp.connections", 2);
    let server = first.serve(&["--delay", "0.1"]);
    let second = Site::smtp(40);
    second.set("smtp.connections", 2).point_at(server.port);
    fs::create_dir_all(second.path("state")).unwrap();
    std::os::unix::fs::symlink(first.state_path(), second.state_path()).unwrap();

    let mut running = first.send_cmd().spawn();
    wait_for_stored(&server, 1, &mut running);
    let other = second.send();
    running.finish().assert_success(); // the first run
    assert_busy(&other);
    assert_one_each(&server.stored(), &first.recipients());
    second.send().assert_success(); // a later run through the symlink
    assert_one_each(&server.stored(), &first.recipients());
}

/// Regression: the busy message named the lock file, and deleting it let a
/// second run send everything again.
#[test]
fn deleting_the_lock_file_does_not_let_a_second_run_send() {
    let site = Site::smtp(40);
    site.set("smtp.connections", 2);
    let server = site.serve(&["--delay", "0.1"]);
    let mut running = site.send_cmd().spawn();
    wait_for_stored(&server, 1, &mut running);
    for entry in fs::read_dir(site.path("state")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "lock") {
            fs::remove_file(path).unwrap();
        }
    }
    let other = site.send();
    running.finish().assert_success(); // the first run
    assert_busy(&other);
    assert_one_each(&server.stored(), &site.recipients());
    site.state().assert_all(&site.recipients(), "sent");
}

// ---- 3: at most one issue a day, against the clock too ------------------------

/// Regression: the issue is the date of the clock, compared with nothing,
/// so a clock stepped back across midnight started a second issue the
/// same day, sent to everyone with anything new since the first.
#[test]
fn a_clock_gone_back_does_not_start_a_second_issue_the_same_day() {
    let site = Site::smtp(5);
    let server = site.serve(&[]);
    let now = chrono::Utc::now();
    add_article(&site, "fresh-1", now - chrono::Duration::hours(2));
    // The day's issue went out while the clock was a day ahead...
    let ahead = (now + chrono::Duration::days(1)).to_rfc3339();
    send_at(&site, Some(&ahead)).assert_success(); // the issue of the clock a day ahead
    assert_eq!(server.stored_count(), 5);
    // ...then the clock was stepped back, and there is news.
    add_article(&site, "fresh-2", now - chrono::Duration::hours(1));
    let run = send_at(&site, None);
    run.assert_code(1); // a run by a clock that went back
    assert!(
        run.stderr.contains("has the clock gone back?") && run.stderr.contains("Nothing was sent"),
        "{run}"
    );
    assert_eq!(
        server.stored_count(),
        5,
        "a second issue was sent the same day"
    );

    let preview = site
        .cmd(&["digest", "--config", "feeds.toml", "--dry-run", "preview"])
        .run();
    preview.assert_success(); // a dry run by the clock gone back
    assert!(
        preview.stderr.contains("has the clock gone back?"),
        "{preview}"
    );

    // On purpose, `--now` sends the older issue.
    send_at(&site, Some(&now.to_rfc3339())).assert_success(); // an older issue with --now
    assert_eq!(server.stored_count(), 10);
}

// ---- 4: an outcome that cannot be recorded stops the run ----------------------

/// Regression: with two or more connections, `digest --send` hung forever,
/// silently, holding the run lock (every later run exited 2), when an
/// outcome could not be recorded — here another program holds the
/// database's write lock past the 10 s busy timeout; a full disk did the
/// same. It must stop with an error naming the database, and the next run
/// must finish the issue.
#[test]
fn an_outcome_that_cannot_be_recorded_stops_the_run_naming_the_database() {
    let site = Site::smtp(200);
    site.set("digest.max_items", 3).set("smtp.connections", 4);
    let server = site.serve(&["--delay", "0.02"]);
    let mut running = site.send_cmd().spawn();
    wait_for_stored(&server, 20, &mut running);

    let holder = rusqlite::Connection::open(site.state_path()).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !running.exited() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stopped = running.exited();
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    if !stopped {
        let run = running.kill();
        panic!("still running 30 s after the database was locked (it hangs):\n{run}");
    }
    let run = running.finish();
    run.assert_code(1); // outcomes could not be recorded
    let error = run.errors().into_iter().next().unwrap_or_default();
    assert!(
        error.contains("sending stopped")
            && error.contains("state/digest.state")
            && error.contains("database is locked"),
        "the error should say sending stopped and name the database:\n{run}"
    );

    site.send_until_done(3);
    let stored = server.stored();
    let duplicates = stored.len() - copies(&stored).len();
    assert!(
        duplicates <= 4,
        "{duplicates} duplicates; at most one per connection can be unrecorded"
    );
    assert_eq!(copies(&stored).len(), site.recipients().len());
    site.state().assert_all(&site.recipients(), "sent");
}

// ---- 8: stale issues and removed subscribers ----------------------------------

/// The article ids recorded for `recipient` in `issue`, and its status.
fn recorded(site: &Site, issue: &str, recipient: &str) -> (Vec<String>, String) {
    let state = site.state();
    let status = state.statuses_of(issue).remove(recipient);
    let status = status.unwrap_or_else(|| panic!("{recipient} in issue {issue}: no row"));
    (state.articles(issue, recipient), status)
}

/// Regression: pending messages never expired, so after a relay outage of
/// N days everyone got N + 1 digests in one run. The run after the outage
/// sends one digest each, carrying what the stale ones held (all of it, as
/// none is older than the window here).
#[test]
fn after_a_relay_outage_everyone_gets_one_digest_with_everything_new() {
    let site = Site::smtp(5);
    site.set("digest.max_items", 100)
        .set("digest.window", "14d")
        .point_at(free_port());
    for day in ["2017-03-23T08:00:00+08:00", "2017-03-24T08:00:00+08:00"] {
        send_at(&site, Some(day)).assert_code(2); // a run while the relay is down
    }
    let server = site.serve(&[]);
    site.send().assert_success(); // the first run after the outage
    let stored = server.stored();
    let recipients = site.recipients();
    assert_one_each(&stored, &recipients);
    for message in &stored {
        check_digest(message); // of the issue of NOW
    }
    for recipient in &recipients {
        let (now, status) = recorded(&site, ISSUE, recipient);
        assert_eq!(status, "sent");
        for stale in ["2017-03-23", "2017-03-24"] {
            let (carried, status) = recorded(&site, stale, recipient);
            assert_eq!(status, "dropped", "{recipient}, issue {stale}");
            let lost: Vec<&String> = carried.iter().filter(|a| !now.contains(a)).collect();
            assert!(
                lost.is_empty(),
                "{recipient}: {lost:?} of issue {stale} never sent"
            );
        }
    }
    site.send().assert_success(); // a rerun
    assert_eq!(server.stored_count(), stored.len());
}

/// Regression: a subscriber removed from the list after an interrupted
/// run was still mailed by the next one.
#[test]
fn a_subscriber_removed_after_an_interrupted_run_is_never_mailed() {
    let site = Site::smtp(5);
    site.point_at(free_port());
    site.send().assert_code(2); // a run while the relay is down
    let recipients = site.recipients();
    let removed = "reader0002@example.com";
    let subscribers = fs::read_to_string(site.path("subscribers.toml")).unwrap();
    let kept: Vec<&str> = subscribers
        .split("[[subscribers]]")
        .filter(|s| !s.trim().is_empty() && !s.contains(removed))
        .collect();
    fs::write(
        site.path("subscribers.toml"),
        kept.iter()
            .map(|s| format!("[[subscribers]]{s}"))
            .collect::<String>(),
    )
    .unwrap();
    let server = site.serve(&[]);
    let run = site.send();
    run.assert_success(); // dropping a message is no failure
    let others: Vec<String> = recipients
        .iter()
        .filter(|r| *r != removed)
        .cloned()
        .collect();
    assert_one_each(&server.stored(), &others);
    assert_eq!(recorded(&site, ISSUE, removed).1, "dropped");
    assert_eq!(
        site.state().last_error(removed).as_deref(),
        Some("no longer a subscriber")
    );
    assert!(run.stdout.contains("1 dropped"), "{run}");
}

// ---- 11: a dry run with read-only access ---------------------------------------

/// `setpriv` switching to the unprivileged user `nobody` (util-linux): the
/// tests run as root, whom file modes do not stop.
const AS_NOBODY: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

/// `bulletin digest --config feeds.toml --now NOW --dry-run preview` as
/// `nobody`.
fn dry_run_as_nobody(site: &Site) -> Run {
    site.cmd(&[
        "digest",
        "--config",
        "feeds.toml",
        "--now",
        NOW,
        "--dry-run",
        "preview",
    ])
    .wrapped_in(AS_NOBODY)
    .run()
}

/// Regression: a dry run by an account that may read the state but not
/// write its folder (an editor's; a read-only mount) failed with "not a
/// usable SQLite database", though the database was fine: SQLite could not
/// create the `-shm` index beside it.
#[test]
fn a_dry_run_reads_a_state_database_it_may_not_write() {
    let site = Site::smtp(5);
    let _server = site.serve(&[]);
    site.send().assert_success(); // the send, as the owner
    // As the sender's account leaves it: root's, folder 0755, file 0644,
    // no -wal or -shm (gone with the last connection).
    set_mode(site.root(), 0o755);
    set_mode(&site.path("state"), 0o755);
    set_mode(&site.state_path(), 0o644);
    fs::create_dir(site.path("preview")).unwrap();
    set_mode(&site.path("preview"), 0o777);
    let beside = |suffix: &str| site.path(&format!("state/digest.state{suffix}"));
    assert!(!beside("-wal").exists() && !beside("-shm").exists());
    let probe = Command::new(AS_NOBODY[0])
        .args(&AS_NOBODY[1..])
        .args(["touch", "state/probe"])
        .current_dir(site.root())
        .output()
        .unwrap();
    assert_eq!(
        probe.status.code(),
        Some(1),
        "nobody may not write the folder"
    );
    let before = fs::read(site.state_path()).unwrap();

    let run = dry_run_as_nobody(&site);
    run.assert_success(); // a dry run without write access
    assert!(
        run.stdout.contains("0 emails") && run.stdout.contains("5 already sent"),
        "{run}"
    );
    assert_eq!(fs::read(site.state_path()).unwrap(), before);
    assert!(!beside("-shm").exists());

    // A write-ahead log left with changes in it (a crash, its index file
    // removed since): those cannot be read without creating the index, and
    // the error says what is needed.
    {
        let db = rusqlite::Connection::open(site.state_path()).unwrap();
        db.execute("UPDATE deliveries SET last_error = 'x'", [])
            .unwrap();
        fs::copy(beside("-wal"), site.path("wal")).unwrap();
    }
    fs::copy(site.path("wal"), beside("-wal")).unwrap();
    set_mode(&beside("-wal"), 0o644);
    let run = dry_run_as_nobody(&site);
    run.assert_code(1); // a dry run that cannot read the write-ahead log
    assert!(
        run.stderr.contains(
            "cannot read the state database ./state/digest.state without write access to its folder"
        ) && run
            .stderr
            .contains("give this user write access to the folder"),
        "{run}"
    );
}

// ---- 12, 13: the sendmail command ---------------------------------------------

const END: &str = "=== end of message ===";

/// A sendmail stand-in at `bin/sendmail` in the site: appends the envelope
/// recipient (its last argument) and its stdin to `sendmail.out`, and its
/// environment to `sendmail.env`.
fn fake_sendmail(site: &Site) {
    let path = site.path("bin/sendmail");
    let script = format!(
        "#!/bin/sh\n\
         for last in \"$@\"; do :; done\n\
         env >> '{env}'\n\
         {{ printf 'X-Test-Rcpt-To: %s\\r\\n' \"$last\"; cat; printf '\\r\\n{END}\\r\\n'; }} >> '{out}'\n",
        env = site.path("sendmail.env").display(),
        out = site.path("sendmail.out").display(),
    );
    fs::create_dir_all(site.path("bin")).unwrap();
    fs::write(&path, script).unwrap();
    set_mode(&path, 0o755);
}

/// The messages the fake sendmail was handed.
fn handed_over(site: &Site) -> Vec<Stored> {
    let text = fs::read_to_string(site.path("sendmail.out")).unwrap_or_default();
    text.split(&format!("\r\n{END}\r\n"))
        .filter(|chunk| !chunk.trim().is_empty())
        .enumerate()
        .map(|(i, chunk)| {
            parse_stored(
                format!("sendmail.out#{i}").into(),
                chunk.as_bytes().to_vec(),
            )
        })
        .collect()
}

/// Regression: `smtp.sendmail` was resolved against the working directory,
/// not the config's folder like every other path: from another directory
/// every message stayed pending.
#[test]
fn a_relative_sendmail_path_is_found_from_any_working_directory() {
    let site = Site::smtp(3);
    fake_sendmail(&site);
    site.set("smtp.transport", "sendmail")
        .set("smtp.sendmail", "bin/sendmail");
    Cmd::in_dir(Path::new("/"))
        .args(["digest", "--config"])
        .arg(site.path("feeds.toml"))
        .args(["--send", "--now", NOW])
        .env(SECRET_VAR, SECRET)
        .run()
        .assert_success(); // a send from another directory
    assert_one_each(&handed_over(&site), &site.recipients());
}

/// Regression: the sendmail child inherited `BULLETIN_SMTP_PASSWORD` and
/// `BULLETIN_UNSUBSCRIBE_SECRET` (with which anyone can forge unsubscribe
/// tokens).
#[test]
fn the_sendmail_command_gets_no_secret_from_the_environment() {
    let site = Site::smtp(3);
    fake_sendmail(&site);
    site.set("smtp.transport", "sendmail")
        .set("smtp.sendmail", "bin/sendmail");
    let password = "smtp-password-never-for-children";
    site.send_cmd()
        .env(PASSWORD_VAR, password)
        .run()
        .assert_success();
    let messages = handed_over(&site);
    assert_one_each(&messages, &site.recipients());
    for message in &messages {
        check_digest(message);
    }
    let env = fs::read_to_string(site.path("sendmail.env")).unwrap();
    for secret in [SECRET, password, "BULLETIN_"] {
        assert!(
            !env.contains(secret),
            "the child's environment has {secret:?}:\n{env}"
        );
    }
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
}

// ---- 16: every state error names the file ------------------------------------

/// Regression: a state linked to `/dev/null` failed with "disk I/O error:
/// Error code 1034: disk I/O error", naming no file.
#[test]
fn a_state_database_linked_to_dev_null_is_an_error_naming_the_file() {
    let site = Site::smtp(3);
    fs::create_dir_all(site.path("state")).unwrap();
    std::os::unix::fs::symlink("/dev/null", site.state_path()).unwrap();
    let run = site.send();
    run.assert_code(1); // a state on /dev/null
    assert!(
        run.stderr.contains("state/digest.state") && run.stderr.contains("disk I/O error"),
        "the error should name the state database:\n{run}"
    );
}

/// Regression: the disk filling up while the schema was written (the
/// migration) failed with "database or disk is full: Error code 13" or
/// "disk I/O error", naming no file.
#[test]
fn a_full_disk_while_the_schema_is_written_is_an_error_naming_the_file() {
    let site = Site::smtp(3);
    let run = send_with_file_size_limit(&site, 64);
    run.assert_code(1); // no room for the state database's tables
    let error = run.errors().into_iter().next();
    assert!(
        error.is_some_and(|l| l.contains("state/digest.state")),
        "the error should name the state database:\n{run}"
    );
}
