//! What each email carries: the recipient's sections, the window, the clock,
//! the caps, and related reads (editor's picks first, then shared keywords),
//! never the article itself and never anything twice in one email.
//!
//! Each test writes a small site whose text template lists ids (see
//! `LISTING` in `tests/support/sites.rs`).

use std::collections::HashSet;

use crate::support::{A, Listing, Small, at};

const OLD: f64 = -24.0 * 30.0;

#[track_caller]
fn assert_no_repeats(listing: &Listing) {
    for (item, read) in &listing.related {
        assert_ne!(item, read, "{item} lists itself as a related read");
    }
    let mut seen = HashSet::new();
    for id in listing.all_ids() {
        assert!(
            seen.insert(id),
            "{id} appears twice in one email: {listing:?}"
        );
    }
}

#[test]
fn no_article_is_its_own_related_read_or_appears_twice() {
    let site = Small::new()
        .article(
            A::new("a1", "news", &at(-2.0))
                .keywords(&["k1", "k2"])
                .related(&["a1", "c1", "c1"]),
        )
        .article(
            A::new("a2", "news", &at(-3.0))
                .keywords(&["k1", "k2"])
                .related(&["c1", "a1"]),
        )
        .article(
            A::new("t1", "tech", &at(-4.0))
                .keywords(&["k2"])
                .related(&["a1", "a2"]),
        )
        .article(A::new("c1", "news", &at(OLD)).keywords(&["k1"]))
        .article(A::new("c2", "tech", &at(OLD)).keywords(&["k2"]))
        .article(A::new("c3", "finance", &at(OLD + 24.0)).keywords(&["k1", "k2"]))
        .subscriber("all@example.com", "全部", None)
        .build();
    let run = site.dry_run("out").ok();
    let listing = run.listing("all@example.com");
    assert_no_repeats(&listing);
    assert_eq!(listing.item_ids(), ["a1", "a2", "t1"]);
    // a1: its own id and the repeated c1 are skipped; then by keywords, the
    // article sharing both (c3) before the one sharing one (c2).
    assert_eq!(listing.related_of("a1"), ["c1", "c3", "c2"]);
    // Everything a2 and t1 could offer is already in the email.
    assert_eq!(listing.related_of("a2"), Vec::<&str>::new());
    assert_eq!(listing.related_of("t1"), Vec::<&str>::new());
}

fn editor_site(related: &[&str], limit: usize) -> Listing {
    let site = Small::new()
        .digest("related", &limit.to_string())
        .article(
            A::new("x", "news", &at(-1.0))
                .keywords(&["shared"])
                .related(related),
        )
        .article(A::new("p1", "tech", &at(OLD)))
        .article(A::new("p2", "tech", &at(OLD - 1.0)))
        .article(A::new("p3", "tech", &at(OLD - 2.0)))
        .article(A::new("k1", "news", &at(-24.0 * 10.0)).keywords(&["shared"]))
        .subscriber("reader@example.com", "读者", Some(&["news"]))
        .build();
    let run = site.dry_run("out").ok();
    run.listing("reader@example.com")
}

#[test]
fn editors_picks_come_first_in_their_order_then_keyword_picks() {
    let listing = editor_site(&["p3", "p1", "p2"], 4);
    assert_eq!(listing.item_ids(), ["x"]);
    assert_eq!(listing.related_of("x"), ["p3", "p1", "p2", "k1"]);

    let listing = editor_site(&["p3", "p1", "p2"], 2);
    assert_eq!(listing.related_of("x"), ["p3", "p1"]);
}

#[test]
fn an_id_listed_twice_in_related_appears_once_and_costs_no_slot() {
    // Like the seed page, whose related list repeats one item.
    let listing = editor_site(&["p1", "p2", "p2", "p3"], 3);
    assert_eq!(listing.related_of("x"), ["p1", "p2", "p3"]);
    assert_no_repeats(&listing);
}

#[test]
fn an_unknown_related_id_is_skipped_with_one_warning_naming_it() {
    let site = Small::new()
        .article(A::new("x", "news", &at(-1.0)).related(&["p1", "ghost-9", "p2"]))
        .article(A::new("p1", "tech", &at(OLD)))
        .article(A::new("p2", "tech", &at(OLD)))
        .subscriber("one@example.com", "一", None)
        .subscriber("two@example.com", "二", Some(&["news"]))
        .build();
    let run = site.dry_run("out").ok();
    for address in ["one@example.com", "two@example.com"] {
        assert_eq!(run.listing(address).related_of("x"), ["p1", "p2"]);
    }
    let stderr = &run.run.stderr;
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("ghost-9")).collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning for the unknown id, not one per email:\n{stderr}"
    );
    assert!(
        warnings[0].contains("\"x\""),
        "the warning names the article: {}",
        warnings[0]
    );
}

#[test]
fn keyword_picks_prefer_rarer_shared_keywords() {
    let mut site = Small::new()
        .article(A::new("x", "news", &at(-1.0)).keywords(&["common", "rare"]))
        // Same section and newer, but shares only the common keyword.
        .article(A::new("y", "news", &at(-24.0 * 10.0)).keywords(&["common"]))
        // Another section and older, but shares the rare one.
        .article(A::new("z", "tech", &at(-24.0 * 20.0)).keywords(&["rare"]));
    for i in 0..4 {
        site = site.article(
            A::new(&format!("f{i}"), "finance", &at(OLD - f64::from(i))).keywords(&["common"]),
        );
    }
    let site = site
        .digest("related", "2")
        .subscriber("reader@example.com", "读者", Some(&["news"]))
        .build();
    let run = site.dry_run("out").ok();
    let listing = run.listing("reader@example.com");
    assert_eq!(listing.item_ids(), ["x"]);
    assert_eq!(listing.related_of("x"), ["z", "y"]);
}

#[test]
fn the_window_excludes_older_articles() {
    let small = || {
        Small::new()
            .article(A::new("in", "news", &at(-24.0 * 6.0)))
            .article(A::new("edge", "news", &at(-24.0 * 7.0)))
            .article(A::new("out", "news", &at(-24.0 * 8.0)))
            .article(A::new("today", "news", &at(-12.0)))
            .subscriber("reader@example.com", "读者", None)
    };
    let site = small().build();
    let run = site.dry_run("out").ok();
    assert_eq!(
        run.listing("reader@example.com").item_ids(),
        ["today", "in"],
        "window 7d: newer than 7 days only"
    );

    let site = small().digest("window", "\"9d\"").build();
    let run = site.dry_run("out").ok();
    assert_eq!(
        run.listing("reader@example.com").item_ids(),
        ["today", "in", "edge", "out"]
    );

    let site = small().digest("window", "\"6h\"").build();
    let run = site.dry_run("out").ok();
    assert!(!run.has_email("reader@example.com"), "nothing in 6 hours");
}

#[test]
fn articles_after_now_are_left_out_also_as_related_reads() {
    let small = || {
        Small::new()
            .article(
                A::new("n1", "news", &at(-1.0))
                    .keywords(&["k"])
                    .related(&["future"]),
            )
            .article(A::new("future", "news", &at(1.0)).keywords(&["k"]))
            .article(A::new("later", "tech", &at(3.0)).keywords(&["k"]))
            .subscriber("reader@example.com", "读者", None)
            .build()
    };
    let site = small();
    let run = site.dry_run("out").ok();
    let listing = run.listing("reader@example.com");
    assert_eq!(listing.item_ids(), ["n1"]);
    assert_eq!(listing.related_of("n1"), Vec::<&str>::new());

    // Two hours later, `future` is published; `later` still is not.
    let run = site.dry_run_at("later", &at(2.0)).ok();
    let listing = run.listing("reader@example.com");
    assert_eq!(listing.item_ids(), ["future", "n1"]);
    assert!(!listing.all_ids().contains(&"later"), "{listing:?}");
}

#[test]
fn sections_choose_what_each_recipient_gets() {
    let site = Small::new()
        .article(A::new("n_old", "news", &at(-30.0)))
        .article(A::new("y", "yushi", &at(-2.0)))
        .article(A::new("f", "finance", &at(-3.0)))
        .article(A::new("t", "tech", &at(-4.0)))
        .article(A::new("n_new", "news", &at(-1.0)))
        .subscriber("all@example.com", "全部", None)
        .subscriber("news@example.com", "新闻", Some(&["news"]))
        .subscriber("yushi@example.com", "豫事", Some(&["yushi"]))
        .subscriber("fin@example.com", "财经", Some(&["finance"]))
        .subscriber("multi@example.com", "多个", Some(&["tech", "finance"]))
        .build();
    let run = site.dry_run("out").ok();

    let all = run.listing("all@example.com");
    assert_eq!(all.sections, ["news", "yushi", "finance", "tech"]);
    assert_eq!(all.item_ids(), ["n_new", "n_old", "y", "f", "t"]);

    // A subscriber of the parent section gets its child's articles.
    let news = run.listing("news@example.com");
    assert_eq!(news.sections, ["news", "yushi"]);
    assert_eq!(news.item_ids(), ["n_new", "n_old", "y"]);

    // ...but not the other way round.
    assert_eq!(run.listing("yushi@example.com").item_ids(), ["y"]);

    let fin = run.listing("fin@example.com");
    assert_eq!(fin.sections, ["finance"]);
    assert_eq!(fin.item_ids(), ["f"]);

    // Config order, not the subscriber's order.
    assert_eq!(
        run.listing("multi@example.com").sections,
        ["finance", "tech"]
    );
}

#[test]
fn a_recipient_with_nothing_new_gets_no_email_and_is_counted() {
    let site = Small::new()
        .article(A::new("n", "news", &at(-1.0)))
        .article(A::new("t_old", "tech", &at(OLD)))
        .subscriber("all@example.com", "全部", None)
        .subscriber("tech@example.com", "科技", Some(&["tech"]))
        .build();
    let run = site.dry_run("out").ok();
    assert!(run.has_email("all@example.com"));
    assert!(!run.has_email("tech@example.com"));
    assert!(
        !run.files().keys().any(|k| k.contains("tech@example.com")),
        "files for a recipient with nothing new: {:?}",
        run.files().keys().collect::<Vec<_>>()
    );
    assert!(
        run.run
            .stdout
            .contains("1 emails (1 items) for 2 subscribers, 1 with nothing new"),
        "summary: {}",
        run.run.stdout
    );
    assert!(
        run.index().contains("1 位订阅者没有新内容"),
        "{}",
        run.index()
    );
}

#[test]
fn related_zero_gives_no_related_reads() {
    let site = Small::new()
        .digest("related", "0")
        .article(
            A::new("x", "news", &at(-1.0))
                .keywords(&["k"])
                .related(&["p"]),
        )
        .article(A::new("p", "tech", &at(OLD)).keywords(&["k"]))
        .subscriber("reader@example.com", "读者", Some(&["news"]))
        .build();
    let run = site.dry_run("out").ok();
    let listing = run.listing("reader@example.com");
    assert_eq!(listing.item_ids(), ["x"]);
    assert!(listing.related.is_empty(), "{listing:?}");
    // The HTML template shows no empty “related reads” box either.
    assert!(!run.email("reader@example.com").html.contains("相关阅读"));
}

#[test]
fn max_items_caps_the_items_keeping_the_newest() {
    let mut small = Small::new().digest("max_items", "2");
    for (i, section) in ["finance", "news", "tech", "news", "finance"]
        .iter()
        .enumerate()
    {
        small = small.article(A::new(&format!("m{i}"), section, &at(-1.0 - i as f64)));
    }
    let site = small.subscriber("reader@example.com", "读者", None).build();
    let run = site.dry_run("out").ok();
    let listing = run.listing("reader@example.com");
    // The two newest, m0 (finance) and m1 (news), grouped in config order.
    assert_eq!(listing.item_ids(), ["m1", "m0"]);
    assert_eq!(listing.sections, ["news", "finance"]);
}
