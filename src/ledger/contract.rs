//! The ledger contract: the same tests against every store, through
//! `Box<dyn Ledger>` only. `stores!` runs each test once on SQLite (a
//! temporary file) and once on PostgreSQL (a database of the test
//! process's private cluster, `tests/support/pg_cluster.rs`; a cluster that
//! cannot start fails the test).

use std::collections::HashSet;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::{
    BounceEvent, BounceKind, Fixing, Ledger, NewDelivery, Outcome, Packed, Postgres, Reason,
    Recorded, SoftRule, Sqlite, Status, Suppression, ids,
};
use crate::model::{ArticleId, IssueKey, PgTarget, RecipientKey, State};

#[path = "../../tests/support/pg_cluster.rs"]
mod pg_cluster;

/// Where a test's ledger lives; [`Place::open`] opens it again (another run).
enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(PgTarget),
}

impl Place {
    fn sqlite() -> Place {
        Place::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres() -> Place {
        let url = pg_cluster::database();
        match State::parse(&url, std::path::Path::new("/")).unwrap() {
            State::Postgres(target) => Place::Postgres(target),
            State::Sqlite(_) => unreachable!("a postgres URL"),
        }
    }

    fn open(&self) -> Box<dyn Ledger + Send> {
        match self {
            Place::Sqlite(dir) => {
                let path: PathBuf = dir.path().join("state.sqlite");
                Box::new(Sqlite::open(&path).unwrap())
            }
            Place::Postgres(target) => Box::new(Postgres::open(target, None).unwrap()),
        }
    }
}

/// Runs each listed `fn(&Place)` against both stores.
macro_rules! stores {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $test() {
                super::$test(&super::Place::sqlite())
            })*
        }
        mod postgres {
            $(#[test]
            fn $test() {
                super::$test(&super::Place::postgres())
            })*
        }
    };
}

stores!(
    fixed_articles_count_as_sent_until_failed,
    a_final_outcome_is_never_overwritten,
    two_runs_never_hold_the_same_message_and_the_claims_of_a_dead_run_come_back,
    bounces_count_once_and_soft_ones_suppress_at_the_limit,
    a_new_issue_supersedes_the_pending_message_of_an_earlier_one,
    the_suppression_list_keeps_the_first_entry,
    messages_read_back_as_composed_until_final,
    a_refused_recipient_is_suppressed_with_its_outcome,
);

pub(super) fn issue(key: &str) -> IssueKey {
    IssueKey::stored(key.to_owned())
}

pub(super) fn key(address: &str) -> RecipientKey {
    RecipientKey::of(address)
}

pub(super) fn now() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

pub(super) fn fix(state: &mut dyn Ledger, at: &str, deliveries: &[NewDelivery<'_>]) {
    state
        .fix_issue(&issue(at), now(), &mut |f| {
            for d in deliveries {
                f.add(d)?;
            }
            Ok(())
        })
        .unwrap();
}

fn record(state: &mut dyn Ledger, i: &str, r: &str, status: Status, error: Option<&str>) {
    let (i, r) = (issue(i), key(r));
    let outcome = Outcome {
        issue: &i,
        recipient: &r,
        status,
        error,
        refused: false,
    };
    state.record_all(&[outcome], now()).unwrap();
}

fn fixed_articles_count_as_sent_until_failed(place: &Place) {
    let mut state = place.open();
    let d = NewDelivery {
        address: "A@example.com",
        message_id: "<x@y>",
        message: &Packed::new(b"m"),
        article_ids: ids(&["a1", "a2"]),
    };
    fix(state.as_mut(), "2017-03-25", &[d]);
    let i = issue("2017-03-25");
    assert!(state.has_delivery(&i, &key("a@example.com")).unwrap());
    assert_eq!(
        state.articles_for(&key("a@EXAMPLE.com"), &i).unwrap().len(),
        2
    );
    assert_eq!(state.pending().unwrap().len(), 1);
    assert_eq!(state.newest_issue().unwrap(), Some(i.clone()));
    record(
        state.as_mut(),
        "2017-03-25",
        "a@example.com",
        Status::Failed,
        Some("550"),
    );
    assert!(
        state
            .articles_for(&key("a@example.com"), &i)
            .unwrap()
            .is_empty()
    );
    assert_eq!(state.count(&i, Status::Failed).unwrap(), 1);
    assert_eq!(state.count_all(Status::Failed).unwrap(), 1);
    assert_eq!(state.drop_final_messages().unwrap(), 1);
    assert!(state.pending().unwrap().is_empty());
    assert_eq!(state.recipients().unwrap(), ["a@example.com"]);
}

fn a_final_outcome_is_never_overwritten(place: &Place) {
    let mut state = place.open();
    let d = NewDelivery {
        address: "a@example.com",
        message_id: "<a@x>",
        message: &Packed::new(b"m"),
        article_ids: ids(&["a1"]),
    };
    fix(state.as_mut(), "2017-03-25", &[d]);
    let (i, r) = ("2017-03-25", "a@example.com");
    record(state.as_mut(), i, r, Status::Sent, None);
    assert_eq!(state.drop_final_messages().unwrap(), 1);
    record(state.as_mut(), i, r, Status::Pending, Some("451 later"));
    record(state.as_mut(), i, r, Status::Failed, Some("550 no"));
    assert_eq!(state.count(&issue(i), Status::Sent).unwrap(), 1);
    assert!(state.pending().unwrap().is_empty());
}

fn two_runs_never_hold_the_same_message_and_the_claims_of_a_dead_run_come_back(place: &Place) {
    let mut first = place.open();
    let packed = Packed::new(b"m");
    let deliveries: Vec<NewDelivery<'_>> = ["a@x.cn", "b@x.cn", "c@x.cn"]
        .into_iter()
        .map(|address| NewDelivery {
            address,
            message_id: "<m@x>",
            message: &packed,
            article_ids: vec![],
        })
        .collect();
    fix(first.as_mut(), "2017-03-25", &deliveries);
    assert_eq!(first.claim_pending().unwrap().len(), 3, "fixed = claimed");

    let mut second = place.open();
    assert!(second.claim_pending().unwrap().is_empty());
    // The second cannot record over the first's claim either.
    record(
        second.as_mut(),
        "2017-03-25",
        "a@x.cn",
        Status::Failed,
        Some("550"),
    );
    let i = issue("2017-03-25");
    assert_eq!(second.count(&i, Status::Failed).unwrap(), 0);

    record(first.as_mut(), "2017-03-25", "a@x.cn", Status::Sent, None);
    drop(first); // dies holding b and c
    assert!(second.claim_pending().unwrap().is_empty());
    assert_eq!(second.release_abandoned().unwrap(), 2);
    let taken: Vec<String> = second
        .claim_pending()
        .unwrap()
        .into_iter()
        .map(|p| p.address)
        .collect();
    assert_eq!(taken, ["b@x.cn", "c@x.cn"]);
    assert_eq!(second.release_claims().unwrap(), 2);
    assert_eq!(second.release_abandoned().unwrap(), 0);
}

fn bounces_count_once_and_soft_ones_suppress_at_the_limit(place: &Place) {
    let mut state = place.open();
    let rule = SoftRule {
        limit: 3,
        window: chrono::Duration::days(14),
    };
    let day = |d: i64| now() + chrono::Duration::days(d);
    let event = |report: &str, address: &str, kind, at| BounceEvent {
        report: report.into(),
        address: key(address),
        kind,
        status: "4.2.2".into(),
        at,
    };
    let soft = |report: &str, at| event(report, "full@example.com", BounceKind::Soft, at);
    let r = state
        .record_bounces(
            &[soft("<1@x>", day(0)), soft("<2@x>", day(1))],
            rule,
            day(30),
        )
        .unwrap();
    assert_eq!(r, [Recorded::New { suppressed: false }; 2]);
    let r = state
        .record_bounces(&[soft("<3@x>", day(20))], rule, day(30))
        .unwrap();
    assert_eq!(r, [Recorded::New { suppressed: false }]);
    let r = state
        .record_bounces(&[soft("<2@x>", day(1))], rule, day(30))
        .unwrap();
    assert_eq!(r, [Recorded::Duplicate]);
    assert!(state.suppressions().unwrap().is_empty());
    let r = state
        .record_bounces(&[soft("<4@x>", day(25))], rule, day(30))
        .unwrap();
    assert_eq!(r, [Recorded::New { suppressed: false }]);
    let r = state
        .record_bounces(&[soft("<5@x>", day(26))], rule, day(30))
        .unwrap();
    assert_eq!(r, [Recorded::New { suppressed: true }]);
    let r = state
        .record_bounces(
            &[
                event("<6@x>", "gone@example.com", BounceKind::Hard, day(1)),
                event("<7@x>", "angry@example.com", BounceKind::Complaint, day(1)),
            ],
            rule,
            day(30),
        )
        .unwrap();
    assert_eq!(r, [Recorded::New { suppressed: true }; 2]);
    let list: Vec<(String, Reason, String)> = state
        .suppressions()
        .unwrap()
        .into_iter()
        .map(|s| (s.address.as_str().to_owned(), s.reason, s.source))
        .collect();
    assert_eq!(
        list,
        [
            (
                "angry@example.com".into(),
                Reason::Complained,
                "<7@x>".into()
            ),
            (
                "full@example.com".into(),
                Reason::Bounced,
                "3 soft bounces, the last <5@x>".into()
            ),
            ("gone@example.com".into(), Reason::Bounced, "<6@x>".into()),
        ]
    );
}

fn a_new_issue_supersedes_the_pending_message_of_an_earlier_one(place: &Place) {
    let mut state = place.open();
    let packed = Packed::new(b"m");
    let delivery = |address, article_ids| NewDelivery {
        address,
        message_id: "<m@x>",
        message: &packed,
        article_ids,
    };
    let (monday, tuesday) = (issue("2017-03-20"), issue("2017-03-21"));
    fix(
        state.as_mut(),
        "2017-03-20",
        &[
            delivery("a@x.cn", ids(&["a1"])),
            delivery("b@x.cn", ids(&["b1"])),
        ],
    );
    record(state.as_mut(), "2017-03-20", "b@x.cn", Status::Sent, None);
    let a1: HashSet<ArticleId> = [ArticleId::from("a1")].into();
    assert_eq!(state.articles_for(&key("a@x.cn"), &monday).unwrap(), a1);
    assert!(
        state
            .articles_for(&key("a@x.cn"), &tuesday)
            .unwrap()
            .is_empty(),
        "an earlier issue's pending articles are carried over"
    );
    assert_eq!(
        state.articles_for(&key("b@x.cn"), &tuesday).unwrap().len(),
        1
    );
    fix(
        state.as_mut(),
        "2017-03-21",
        &[
            delivery("a@x.cn", ids(&["a1", "a2"])),
            delivery("b@x.cn", ids(&["b2"])),
        ],
    );
    let pending: Vec<(String, String)> = state
        .pending()
        .unwrap()
        .into_iter()
        .map(|p| (p.issue.to_string(), p.address))
        .collect();
    assert_eq!(
        pending,
        [
            ("2017-03-21".to_owned(), "a@x.cn".to_owned()),
            ("2017-03-21".to_owned(), "b@x.cn".to_owned())
        ]
    );
    assert_eq!(state.count(&monday, Status::Dropped).unwrap(), 1);
    assert_eq!(state.count(&monday, Status::Sent).unwrap(), 1, "b's stays");
    assert_eq!(state.drop_final_messages().unwrap(), 2);
}

fn the_suppression_list_keeps_the_first_entry(place: &Place) {
    let mut state = place.open();
    let entry = |address: &str, reason, source: &str| Suppression {
        address: key(address),
        reason,
        at: now(),
        source: source.into(),
    };
    let first = [
        entry("b@x.cn", Reason::Unsubscribed, "token"),
        entry("a@x.cn", Reason::Manual, "file"),
    ];
    assert_eq!(state.suppress(&first).unwrap(), 2);
    assert_eq!(
        state
            .suppress(&[entry("a@x.cn", Reason::Bounced, "later")])
            .unwrap(),
        0
    );
    let list = state.suppressions().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[0].address.as_str(), list[0].reason),
        ("a@x.cn", Reason::Manual)
    );
    assert_eq!(list[0].at, now());
    assert_eq!(
        state
            .unsuppress(&[key("a@x.cn"), key("nobody@x.cn")])
            .unwrap(),
        1
    );
    assert_eq!(state.suppressions().unwrap().len(), 1);
}

fn messages_read_back_as_composed_until_final(place: &Place) {
    let mut state = place.open();
    let body = "Subject: 测试\r\n\r\n".to_owned() + &"digest ".repeat(2000);
    let packed = Packed::new(body.as_bytes());
    let fixing_deliveries = [NewDelivery {
        address: "Li@X.cn",
        message_id: "<m@x>",
        message: &packed,
        article_ids: ids(&["a1"]),
    }];
    let i = issue("2017-03-25");
    let lost = state
        .commit_fixed(
            Some(&Fixing {
                issue: &i,
                at: now(),
                deliveries: &fixing_deliveries,
            }),
            &[],
            now(),
        )
        .unwrap();
    assert!(lost.is_empty());
    let store = state.messages();
    assert_eq!(store.read(&i, &key("li@x.cn")).unwrap(), body.as_bytes());
    record(state.as_mut(), "2017-03-25", "li@x.cn", Status::Sent, None);
    state.drop_final_messages().unwrap();
    let gone = store.read(&i, &key("li@x.cn")).unwrap_err();
    assert!(format!("{gone:#}").contains("no longer stored"), "{gone:#}");
}

fn a_refused_recipient_is_suppressed_with_its_outcome(place: &Place) {
    let mut state = place.open();
    let packed = Packed::new(b"m");
    fix(
        state.as_mut(),
        "2017-03-25",
        &[NewDelivery {
            address: "gone@x.cn",
            message_id: "<m@x>",
            message: &packed,
            article_ids: vec![],
        }],
    );
    let (i, r) = (issue("2017-03-25"), key("gone@x.cn"));
    let outcome = Outcome {
        issue: &i,
        recipient: &r,
        status: Status::Failed,
        error: Some("550 5.1.1 no such user"),
        refused: true,
    };
    state.commit(None, &[outcome], now()).unwrap();
    assert_eq!(state.count(&i, Status::Failed).unwrap(), 1);
    let list = state.suppressions().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].reason, Reason::Bounced);
    assert!(list[0].source.contains("550 5.1.1"), "{}", list[0].source);
}

/// PostgreSQL only: several runs fix the same issue at once; each message
/// is fixed once, and each run is told which it does not hold.
#[test]
fn postgres_runs_fixing_the_same_issue_fix_each_message_once() {
    let Place::Postgres(target) = Place::postgres() else {
        unreachable!()
    };
    let addresses: Vec<String> = (0..300).map(|n| format!("r{n}@x.cn")).collect();
    let won: Vec<Vec<String>> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..3)
            .map(|run| {
                let (target, addresses) = (&target, &addresses);
                scope.spawn(move || {
                    let mut ledger = Postgres::open(target, None).unwrap();
                    let packed = Packed::new(format!("from run {run}").as_bytes());
                    let mut mine = Vec::new();
                    // Batches of 50, in a different order per run.
                    let mut order: Vec<&String> = addresses.iter().collect();
                    order.rotate_left(run * 100);
                    for batch in order.chunks(50) {
                        let deliveries: Vec<NewDelivery<'_>> = batch
                            .iter()
                            .map(|a| NewDelivery {
                                address: a,
                                message_id: "<m@x>",
                                message: &packed,
                                article_ids: ids(&["a1", "a2"]),
                            })
                            .collect();
                        let i = issue("2017-03-25");
                        let fixing = Fixing {
                            issue: &i,
                            at: now(),
                            deliveries: &deliveries,
                        };
                        let lost = ledger.commit_fixed(Some(&fixing), &[], now()).unwrap();
                        let lost: HashSet<usize> = lost.into_iter().collect();
                        mine.extend(
                            (0..batch.len())
                                .filter(|i| !lost.contains(i))
                                .map(|i| batch[i].clone()),
                        );
                    }
                    let held: Vec<String> = ledger
                        .claim_pending()
                        .unwrap()
                        .into_iter()
                        .map(|p| p.address)
                        .collect();
                    let mut sorted = mine.clone();
                    sorted.sort();
                    let mut held_sorted = held;
                    held_sorted.sort();
                    assert_eq!(sorted, held_sorted, "a run holds exactly what it fixed");
                    mine
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let mut all: Vec<&String> = won.iter().flatten().collect();
    assert_eq!(all.len(), addresses.len(), "each fixed once: {won:?}");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), addresses.len());
}

/// PostgreSQL only: the schema is created once when several sessions open
/// an empty database at the same moment (the advisory lock orders them),
/// and opening again changes nothing.
#[test]
fn postgres_schema_creation_is_idempotent_when_opened_at_once() {
    let Place::Postgres(target) = Place::postgres() else {
        unreachable!()
    };
    let barrier = std::sync::Barrier::new(6);
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                barrier.wait();
                Postgres::open(&target, None).unwrap();
            });
        }
    });
    let ledger = Postgres::open(&target, None).unwrap();
    let versions: i64 = ledger
        .client
        .borrow_mut()
        .query_one("SELECT count(*) FROM bulletin_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(versions, 1);
    assert!(Postgres::open_read_only(&target, None).unwrap().is_some());
}

/// PostgreSQL over TLS (rustls): `sslmode=require` with the server's CA as
/// `sslrootcert` connects encrypted; without that CA (Mozilla's roots
/// only) the certificate is refused, not ignored; `disable` connects in
/// the clear.
#[test]
fn postgres_over_tls_verifies_the_server_certificate() {
    let (url, ca) = pg_cluster::tls_database();
    let target =
        |query: &str| match State::parse(&format!("{url}?{query}"), std::path::Path::new("/"))
            .unwrap()
        {
            State::Postgres(target) => target,
            State::Sqlite(_) => unreachable!(),
        };
    let encrypted = |ledger: &Postgres| -> bool {
        ledger
            .client
            .borrow_mut()
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let secure = Postgres::open(
        &target(&format!("sslmode=require&sslrootcert={}", ca.display())),
        None,
    )
    .unwrap();
    assert!(encrypted(&secure));
    // The sender threads' connections are encrypted too.
    let packed = Packed::new(b"over TLS");
    let mut secure = secure;
    fix(
        &mut secure,
        "2017-03-25",
        &[NewDelivery {
            address: "a@x.cn",
            message_id: "<m@x>",
            message: &packed,
            article_ids: vec![],
        }],
    );
    let read = secure
        .messages()
        .read(&issue("2017-03-25"), &key("a@x.cn"))
        .unwrap();
    assert_eq!(read, b"over TLS");

    let refused = Postgres::open(&target("sslmode=require"), None)
        .err()
        .expect("a certificate no root vouches for is refused");
    assert!(
        format!("{refused:#}").contains("certificate"),
        "{refused:#}"
    );
    let plain = Postgres::open(&target("sslmode=disable"), None).unwrap();
    assert!(!encrypted(&plain));
}
