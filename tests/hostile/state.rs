//! Files and state: an output folder that cannot be written, a state
//! database that is corrupt, newer, missing or locked — each ends in a
//! clear message and the right exit code, with nothing half-written.

use std::fs;
use std::process::Command;

use crate::support::{Site, Snapshot, legacy_state, set_mode};

/// Makes a folder unwritable for this process, and undoes it on drop. As
/// root `chmod` is not enough: the folder is then made immutable
/// (`chattr +i`).
struct ReadOnly {
    dirs: Vec<std::path::PathBuf>,
    immutable: bool,
}

impl ReadOnly {
    fn new(dirs: &[std::path::PathBuf]) -> ReadOnly {
        for dir in dirs {
            set_mode(dir, 0o555);
        }
        let probe = dirs[0].join(".probe");
        let immutable = fs::write(&probe, "x").is_ok();
        if immutable {
            fs::remove_file(&probe).unwrap();
            for dir in dirs {
                let status = Command::new("chattr").arg("+i").arg(dir).status();
                assert!(
                    status.is_ok_and(|s| s.success()),
                    "running as root and `chattr +i` failed: cannot make {} read-only",
                    dir.display()
                );
            }
            assert!(fs::write(&probe, "x").is_err(), "still writable");
        }
        ReadOnly {
            dirs: dirs.to_vec(),
            immutable,
        }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        for dir in &self.dirs {
            if self.immutable {
                let _ = Command::new("chattr").arg("-i").arg(dir).status();
            }
            set_mode(dir, 0o755);
        }
    }
}

#[test]
fn a_read_only_output_folder_fails_cleanly_and_keeps_the_previous_feeds() {
    let site = Site::with_digest();
    site.build().assert_success();
    site.write_jsonl(
        "articles/a.jsonl",
        &[crate::support::digest_article("a2", "news")],
    );
    let dirs: Vec<_> = [
        "public/feeds",
        "public/feeds/news",
        "public/feeds/yushi",
        "public/feeds/tech",
    ]
    .iter()
    .map(|d| site.path(d))
    .collect();
    let before = Snapshot::of(&site.path("public"));
    let guard = ReadOnly::new(&dirs);
    let run = site.build();
    drop(guard);
    run.assert_code(1);
    let line = run.error_line();
    assert!(
        line.starts_with("nothing was changed in the output folder: cannot write ./public/feeds/")
            && (line.ends_with("Permission denied (os error 13)")
                || line.ends_with("Operation not permitted (os error 1)")),
        "{line}"
    );
    before.assert_same(&site.path("public"), "a failed build");
}

#[test]
fn a_failed_move_into_place_leaves_no_temporary_files() {
    // Regression (fixed in 9300de6): `Staging::commit` takes the staged list before renaming, so when
    // one rename fails (here: a folder where news/atom.xml goes) the temp
    // files not yet moved (`.atom.xml.<pid>.tmp`, …) are left in the output
    // folder, where rsync and web servers see them. (The files renamed
    // before the failure — the site feeds here — are already replaced: the
    // output is a mix of old and new feeds; the message says so only as
    // "cannot move … into place".)
    let site = Site::with_digest();
    site.build().assert_success();
    site.write_jsonl(
        "articles/a.jsonl",
        &[crate::support::digest_article("a2", "news")],
    );
    fs::remove_file(site.path("public/feeds/news/atom.xml")).unwrap();
    fs::create_dir(site.path("public/feeds/news/atom.xml")).unwrap();
    fs::write(site.path("public/feeds/news/atom.xml/in-the-way"), "x").unwrap();
    let run = site.build();
    run.assert_code(1);
    assert!(
        run.error_line()
            .starts_with("cannot move ./public/feeds/news/atom.xml into place: Is a directory"),
        "{run}"
    );
    let leftovers: Vec<String> = Snapshot::of(&site.path("public"))
        .paths()
        .into_iter()
        .filter(|p| p.ends_with(".tmp"))
        .map(str::to_owned)
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

/// A state database of random bytes.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_state_database_of_random_bytes_is_refused_untouched() {
    let site = Site::with_digest();
    let garbage = random_bytes(16384);
    site.write("state/state.sqlite", &garbage);
    let message = "./state/state.sqlite is not a usable SQLite database: file is not a database";
    for run in [site.dry_run("out").run, site.send()] {
        run.assert_code(1);
        assert!(run.error_line().starts_with(message), "{run}");
    }
    assert_eq!(fs::read(site.path("state/state.sqlite")).unwrap(), garbage);
    assert!(site.sent().is_empty());
    assert!(!site.path("out").exists());
}

/// A real state database (WAL, as bulletin leaves it) whose pages past the
/// first are overwritten: opening works, reading fails.
#[test]
fn a_state_database_with_corrupt_pages_is_refused_untouched_naming_the_file() {
    // Regression (fixed in 9300de6): the error was "database disk image is malformed: Error code 11: …"
    // without the file's name: `State` adds context only when opening, not to
    // the queries that find the damage.
    let site = Site::with_digest();
    site.run(&["digest", "--send", "--now", "2017-03-24T20:00:00+08:00"])
        .assert_success();
    let path = site.path("state/state.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
            .unwrap();
    }
    let mut bytes = fs::read(&path).unwrap();
    assert!(bytes.len() > 4096, "the database has one page");
    let noise = random_bytes(bytes.len() - 4096);
    bytes[4096..].copy_from_slice(&noise);
    fs::write(&path, &bytes).unwrap();
    let sent_before = site.sent().len();
    for run in [site.dry_run("out").run, site.send()] {
        run.assert_code(1);
        run.assert_stderr_has(&["database disk image is malformed", "state/state.sqlite"]);
    }
    assert_eq!(
        fs::read(&path).unwrap(),
        bytes,
        "the damaged database was changed"
    );
    assert_eq!(site.sent().len(), sent_before);
}

#[test]
fn a_state_database_from_a_newer_version_is_refused() {
    let site = Site::with_digest();
    site.run(&["digest", "--send", "--now", "2017-03-24T20:00:00+08:00"])
        .assert_success();
    {
        let conn = rusqlite::Connection::open(site.path("state/state.sqlite")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let sent_before = site.sent().len();
    let run = site.dry_run("out").run;
    run.assert_code(1);
    assert_eq!(
        run.error_line(),
        "./state/state.sqlite: the state database has schema version 99, this release reads version 6 (it was written by a newer bulletin)"
    );
    let run = site.send();
    run.assert_code(1);
    assert_eq!(
        run.error_line(),
        "./state/state.sqlite: the state database has schema version 99, written by a newer bulletin; this release reads version 6"
    );
    assert_eq!(site.sent().len(), sent_before);
    let version: i64 = rusqlite::Connection::open(site.path("state/state.sqlite"))
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 99);
}

#[test]
fn a_missing_state_folder_is_created() {
    let site = Site::with_digest();
    site.edit_config(
        "state = \"state/state.sqlite\"",
        "state = \"deep/new/folder/state.sqlite\"",
    );
    site.dry_run("out").ok();
    assert!(
        !site.path("deep").exists(),
        "a dry run created the state folder"
    );
    site.send().assert_success();
    assert!(site.path("deep/new/folder/state.sqlite").is_file());
    assert_eq!(site.sent().len(), 1);
}

/// Another `digest --send` holds the run lock (here one of an earlier
/// release, which locks only `state.lock`): exit 2 at once, nothing sent.
#[test]
fn a_state_database_locked_by_another_run_exits_2_at_once() {
    let site = Site::with_digest();
    fs::create_dir_all(site.path("state")).unwrap();
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(site.path("state/state.lock"))
        .unwrap();
    lock.try_lock().expect("take the run lock");
    let started = std::time::Instant::now();
    let run = site.send();
    run.assert_code(2);
    assert_eq!(
        run.stderr.trim_end(),
        "bulletin: another `bulletin digest --send` is sending from the state database ./state/state.sqlite; \
         nothing was sent by this one. Its lock ends with it, however it ends: run again once it is done"
    );
    assert!(started.elapsed().as_secs() < 5);
    assert!(site.sent().is_empty());
    drop(lock);
    site.send().assert_success();
    assert_eq!(site.sent().len(), 1);
}

/// Some other program holds a write transaction on the database: after the
/// busy timeout, a clear error naming the file, exit 1, nothing sent.
#[test]
fn a_state_database_locked_by_another_program_is_a_clear_error() {
    // Regression (fixed in 9300de6): the message was "error: database is locked: Error code 5: database
    // is locked": it names neither the file nor what to do.
    let site = Site::with_digest();
    site.run(&["digest", "--send", "--now", "2017-03-24T20:00:00+08:00"])
        .assert_success();
    site.write_jsonl(
        "articles/a.jsonl",
        &[
            crate::support::digest_article("a1", "news"),
            crate::support::digest_article("a2", "tech"),
        ],
    );
    let sent_before = site.sent().len();
    let conn = rusqlite::Connection::open(site.path("state/state.sqlite")).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let run = site.send();
    conn.execute_batch("ROLLBACK").unwrap();
    run.assert_code(1);
    run.assert_stderr_has(&["database is locked", "state/state.sqlite"]);
    assert_eq!(site.sent().len(), sent_before);
}

/// A run of release 0.1 (schema version 1, messages stored raw in their
/// rows) was interrupted: this release migrates the database and delivers
/// the pending message byte for byte, and what was sent before still counts
/// (nothing is sent twice).
#[test]
fn pending_messages_of_a_version_1_database_are_sent_after_the_upgrade() {
    let site = Site::with_digest();
    site.run(&["digest", "--send", "--now", "2017-03-24T20:00:00+08:00"])
        .assert_success();
    let before = site.sent().len();
    // What that send recorded, written again as release 0.1 would have.
    let path = site.path("state/state.sqlite");
    let state = site.state();
    let recorded: Vec<(String, String, String, Vec<String>)> = state
        .statuses_of("2017-03-24")
        .into_iter()
        .map(|(recipient, status)| {
            let articles = state.articles("2017-03-24", &recipient);
            ("2017-03-24".to_owned(), recipient, status, articles)
        })
        .collect();
    drop(state);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    fs::remove_file(&path).unwrap();
    let old = b"From: digest@news.example.cn\r\nTo: reader@example.com\r\nSubject: old\r\n\r\nbody of 2017-03-23\r\n";
    {
        let v1 = legacy_state(&path, 1);
        for (issue, recipient, status, articles) in &recorded {
            v1.execute(
                "INSERT INTO deliveries (issue, recipient, address, message_id, message, status, attempts, created_at, updated_at)
                 VALUES (?1, ?2, ?2, '<then@x>', x'', ?3, 1, 'then', 'then')",
                [issue, recipient, status],
            )
            .unwrap();
            for id in articles {
                v1.execute(
                    "INSERT INTO delivery_articles VALUES (?1, ?2, ?3)",
                    [recipient, id, issue],
                )
                .unwrap();
            }
        }
        v1.execute(
            "INSERT INTO deliveries (issue, recipient, address, message_id, message, status, created_at, updated_at)
             VALUES ('2017-03-23', 'reader@example.com', 'reader@example.com', '<old@x>', ?1, 'pending', 'then', 'then')",
            [old.as_slice()],
        )
        .unwrap();
    }
    // A dry run reads the old database as it is, and leaves it so.
    let bytes = fs::read(&path).unwrap();
    site.dry_run("out").ok();
    assert_eq!(fs::read(&path).unwrap(), bytes, "the dry run changed it");
    site.send().assert_success();
    let sent = site.sent();
    assert_eq!(sent.len(), before + 1, "only the pending message is sent");
    assert!(sent.contains(&old.to_vec()), "the stored bytes, unchanged");
    let state = site.state();
    assert_eq!(state.version(), 6);
    assert_eq!(state.count("pending"), 0);
    assert_eq!(
        state
            .statuses_of("2017-03-23")
            .get("reader@example.com")
            .map(String::as_str),
        Some("sent")
    );
    assert_eq!(
        state.stored_bytes(),
        0,
        "the sent message's bytes are dropped"
    );
}

/// The upgrade to version 6 rewrites the whole record in one transaction.
/// Killed halfway — here by the kernel (SIGXFSZ) when its write-ahead log
/// reaches the file size limit — it leaves version 5 as it was; the next
/// run upgrades it, and what was sent before still counts.
#[test]
fn an_upgrade_killed_halfway_leaves_the_database_as_it_was() {
    let site = Site::with_digest();
    let path = site.path("state/state.sqlite");
    let v5 = legacy_state(&path, 5);
    // 5,000 readers times 10 issues of 30 articles (about 25 MB as version
    // 5 keeps them), and the one subscriber's copy of today's article.
    v5.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 49999),
             k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 29)
         INSERT INTO deliveries (issue, recipient, address, message_id, message, status, attempts, created_at, updated_at, articles)
         SELECT printf('2017-03-%02d', 10 + i / 5000), 'r' || (i % 5000) || '@example.com',
                'r' || (i % 5000) || '@example.com', '<m' || i || '@x>', x'', 'sent', 1,
                '2017-03-10T08:00:00+08:00', '2017-03-10T08:00:00+08:00',
                (SELECT group_concat('article-' || (i / 5000 * 100 + (i * 7 + j) % 100), char(10)) FROM k)
         FROM n;
         INSERT INTO deliveries (issue, recipient, address, message_id, message, status, attempts, created_at, updated_at, articles)
         VALUES ('2017-03-24', 'reader@example.com', 'reader@example.com', '<r@x>', x'', 'sent', 1, 't', 't', 'a1');",
    )
    .unwrap();
    drop(v5);
    let before = fs::read(&path).unwrap();

    let killed = site
        .send_cmd()
        .wrapped_in(["prlimit", "--fsize=2000000", "--"])
        .run();
    assert_eq!(killed.code, None, "not killed halfway:\n{killed}");
    let v5 = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = v5
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5);
    let check: String = v5
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let tables: i64 = v5
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name IN ('issues', 'deliveries_5', 'outbox')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "the killed upgrade left tables behind");
    v5.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    drop(v5);
    assert_eq!(fs::read(&path).unwrap(), before, "the database changed");

    let run = site.send();
    run.assert_success();
    assert!(
        site.sent().is_empty(),
        "a1 was sent before the upgrade:\n{run}"
    );
    let state = site.state();
    assert_eq!(state.version(), 6);
    assert_eq!(state.statuses_of("2017-03-19").len(), 5000);
    let expected: Vec<String> = {
        let mut ids: Vec<String> = (0..30)
            .map(|j| format!("article-{}", 900 + (45_123 * 7 + j) % 100))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(state.articles("2017-03-19", "r123@example.com"), expected);
}
