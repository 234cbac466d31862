//! What recipients already have, read from the state database: articles
//! sent in an earlier issue are not sent again, an issue is not sent twice,
//! a database from a newer release is refused, and a dry run changes none
//! of it. What an earlier release recorded counts the same, read as it is
//! and once upgraded.
//!
//! There is no SMTP server in this suite, so the tests write the database
//! themselves, as release 0.1 (schema version 1) and the last release
//! before version 6 (schema version 5) did.

use rusqlite::{Connection, params};

use crate::support::{A, ISSUE, Site, Small, at, legacy_state};

const STATE: &str = ".bulletin/state.sqlite";

/// Creates the state database of `site` as the release of schema `version`
/// (1 or 5) did.
fn create_state(site: &Site, version: i64) -> Connection {
    legacy_state(&site.path(STATE), version)
}

/// Records, as schema version 5 keeps it, that `recipient` was sent
/// (`status`) issue `issue` with `articles`.
fn record_v5(conn: &Connection, issue: &str, recipient: &str, status: &str, articles: &[&str]) {
    conn.execute(
        "INSERT INTO deliveries (issue, recipient, address, message_id, message, status, attempts, created_at, updated_at, articles)
         VALUES (?1, ?2, ?3, ?4, x'', ?5, 1, ?6, ?6, ?7)",
        params![
            issue,
            recipient.to_lowercase(),
            recipient,
            format!("<digest.{issue}.test@news.example.cn>"),
            status,
            "2017-03-24T08:00:00+08:00",
            articles.join("\n")
        ],
    )
    .expect("insert a delivery");
}

/// Records, as schema version 1 keeps it, that `recipient` was sent
/// (`status`) issue `issue` with `articles`.
fn record(conn: &Connection, issue: &str, recipient: &str, status: &str, articles: &[&str]) {
    let key = recipient.to_lowercase();
    conn.execute(
        "INSERT INTO deliveries (issue, recipient, address, message_id, message, status, attempts, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7)",
        params![
            issue,
            key,
            recipient,
            format!("<digest.{issue}.test@news.example.cn>"),
            b"From: x\r\n\r\nbody".as_slice(),
            status,
            "2017-03-24T08:00:00+08:00"
        ],
    )
    .expect("insert a delivery");
    for id in articles {
        conn.execute(
            "INSERT INTO delivery_articles (recipient, article_id, issue) VALUES (?1, ?2, ?3)",
            params![key, id, issue],
        )
        .expect("insert a delivery article");
    }
}

fn site() -> Site {
    Small::new()
        .article(A::new("a", "news", &at(-1.0)))
        .article(A::new("b", "news", &at(-20.0)))
        .article(A::new("c", "news", &at(-30.0)))
        .subscriber("sent@example.com", "已发", None)
        .subscriber("Other@Example.com", "其他", None)
        .build()
}

#[test]
fn articles_already_sent_to_a_recipient_are_not_sent_to_them_again() {
    let site = site();
    let conn = create_state(&site, 1);
    record(&conn, "2017-03-24", "sent@example.com", "sent", &["b", "c"]);
    drop(conn);

    let run = site.dry_run("out").ok();
    assert_eq!(run.listing("sent@example.com").item_ids(), ["a"]);
    // Others still get them.
    assert_eq!(run.listing("other@example.com").item_ids(), ["a", "b", "c"]);
}

#[test]
fn articles_of_a_failed_delivery_count_as_not_sent() {
    let site = site();
    let conn = create_state(&site, 1);
    record(
        &conn,
        "2017-03-24",
        "sent@example.com",
        "failed",
        &["b", "c"],
    );
    drop(conn);

    let run = site.dry_run("out").ok();
    assert_eq!(run.listing("sent@example.com").item_ids(), ["a", "b", "c"]);
}

#[test]
fn a_recipient_who_has_this_issue_gets_no_email_and_is_counted() {
    let site = site();
    let conn = create_state(&site, 1);
    // Recorded under the lower-cased address; subscribed as Other@Example.com.
    record(&conn, ISSUE, "Other@Example.com", "sent", &["a"]);
    drop(conn);

    let run = site.dry_run("out").ok();
    assert!(run.has_email("sent@example.com"));
    assert!(!run.has_email("other@example.com"));
    assert_eq!(run.emls().len(), 1);
    assert!(
        run.run.stdout.contains("1 already sent"),
        "summary: {}",
        run.run.stdout
    );
    assert!(run.index().contains("1 位已收到本期"), "{}", run.index());
}

#[test]
fn a_state_database_from_a_newer_release_is_refused() {
    let site = site();
    create_state(&site, 5)
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let run = site.dry_run("out");
    run.run
        .assert_code(1)
        .assert_stderr_has(&["state.sqlite", "newer"]);
    assert!(run.files().is_empty(), "written: {:?}", run.files().keys());
}

#[test]
fn a_dry_run_changes_nothing_in_the_state_database() {
    let site = site();
    let conn = create_state(&site, 1);
    record(&conn, "2017-03-24", "sent@example.com", "sent", &["b"]);
    drop(conn);
    let before = std::fs::read(site.path(STATE)).unwrap();

    site.dry_run("out").ok();

    assert_eq!(
        std::fs::read(site.path(STATE)).unwrap(),
        before,
        "the dry run changed the state database"
    );
    let conn = Connection::open(site.path(STATE)).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "the dry run recorded deliveries");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1);
}

#[test]
fn a_small_site_dry_run_creates_no_state() {
    let site = site();
    site.dry_run("out").ok();
    assert!(!site.path(".bulletin").exists());
}

/// A dry run into a folder used before must leave exactly this run's
/// messages there: an `.eml` left from an earlier run, for someone who gets
/// nothing now, reads as a message that would be sent.
#[test]
fn a_dry_run_into_a_used_folder_leaves_no_message_from_an_earlier_run() {
    let site = site();
    site.dry_run("out").ok();
    let conn = create_state(&site, 1);
    record(&conn, ISSUE, "sent@example.com", "sent", &["a", "b", "c"]);
    drop(conn);

    let run = site.dry_run("out").ok();
    assert!(
        run.run.stdout.contains("1 already sent"),
        "{}",
        run.run.stdout
    );
    assert!(!run.index().contains("sent@example.com"));
    let left: Vec<String> = run
        .files()
        .into_keys()
        .filter(|k| k.contains("sent@example.com"))
        .collect();
    assert!(
        left.is_empty(),
        "files of the earlier run are left for a recipient who gets nothing now: {left:?}"
    );
}

/// The same history, recorded by an earlier release (schema 1 or 5): a dry
/// run reads it as it is, and after the first command that writes has
/// upgraded the database to version 6 it reads the same — articles sent
/// before are still never sent again, a failed delivery's still are.
#[test]
fn history_recorded_by_an_earlier_release_counts_before_and_after_the_upgrade() {
    for version in [1, 5] {
        let site = site();
        let conn = create_state(&site, version);
        let write = if version == 1 { record } else { record_v5 };
        write(&conn, "2017-03-23", "sent@example.com", "sent", &["c"]);
        write(&conn, "2017-03-24", "sent@example.com", "sent", &["b"]);
        write(
            &conn,
            "2017-03-24",
            "Other@Example.com",
            "failed",
            &["a", "b"],
        );
        drop(conn);
        let listings = |out: &str| {
            let run = site.dry_run(out).ok();
            let ids = |r: &str| -> Vec<String> {
                run.listing(r)
                    .item_ids()
                    .into_iter()
                    .map(String::from)
                    .collect()
            };
            (ids("sent@example.com"), ids("other@example.com"))
        };
        let expected = (
            vec!["a".to_owned()],
            vec!["a".to_owned(), "b".to_owned(), "c".to_owned()],
        );
        assert_eq!(listings("before"), expected, "schema {version}, as it is");
        let read: i64 = Connection::open(site.path(STATE))
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(read, version, "the dry run upgraded it");

        site.run(&["suppressions", "remove", "nobody@example.com"])
            .assert_success();
        assert_eq!(site.state().version(), 6);
        assert_eq!(listings("after"), expected, "schema {version}, upgraded");
        assert_eq!(
            site.state().articles("2017-03-24", "other@example.com"),
            ["a", "b"]
        );
    }
}
