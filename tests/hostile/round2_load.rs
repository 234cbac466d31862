//! Issue #17, second round: loading and planning at scale, and config
//! values that passed `check` and then panicked.
//!
//! - positions in a JSON array written on one line (what `json.dumps`,
//!   `JSON.stringify` and `jq -c` write) were counted from the line's start
//!   for every record: quadratic;
//! - `window`, `max_rate`, `related`, `retries`... out of range panicked on
//!   every run;
//! - a bare date whose midnight the clocks skip (America/Santiago) failed
//!   the whole build;
//! - sections were searched one by one for every subscriber, article and
//!   ancestor: thousands of sections took minutes.
//!
//! Speed is the benchmarks' business (`bench/oneline.sh`,
//! `bench/sections.sh`). The tests that guard it run the binary under a
//! deadline far above what the linear code needs (a debug build, a busy
//! machine) and far below what the quadratic code took.

use std::fs;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Email, NOW, Site, digest_article};

const DEADLINE: Duration = Duration::from_secs(60);

/// 1-based column, in characters, of byte `offset` of a one-line text.
fn col(text: &str, offset: usize) -> usize {
    text[..offset].chars().count() + 1
}

/// Byte offset of `needle` in `text` after `from`.
fn find_after(text: &str, from: usize, needle: &str) -> usize {
    from + text[from..].find(needle).expect("the needle is there")
}

/// A record with CJK text (so columns are not bytes).
fn record(i: usize) -> Value {
    json!({
        "id": format!("b{i}"),
        "title": format!("标题 第{i}条 河南新闻"),
        "section": (["news", "yushi", "tech"][i % 3]),
        "url": format!("/a/{i}.html"),
        "published": "2017-03-24 10:00",
        "summary": "摘要：基层干部深入群众",
    })
}

/// Records as one JSON array on one line, the way `json.dumps` writes it.
fn one_line(records: &[Value]) -> String {
    let items: Vec<String> = records.iter().map(Value::to_string).collect();
    format!("[{}]\n", items.join(", "))
}

// ---- 5: one-line JSON ------------------------------------------------------

/// Regression: each record's position in a one-line JSON array was counted
/// from the line's start: 50,000 articles took 24–51 s, 200,000 did not
/// finish in 300 s (release build). The bad records near the end are
/// reported at their character columns, as before.
#[test]
fn a_one_line_json_array_of_100k_articles_reports_late_errors_at_their_character_columns() {
    let site = Site::with_digest();
    let n = 100_000;
    let mut records: Vec<Value> = (0..n).map(record).collect();
    records[n - 5]["section"] = json!("nowhere");
    records[n - 3]["published"] = json!("2017-02-30 10:00");
    let text = one_line(&records);
    site.write("articles/b.json", &text);

    let bad_section = find_after(&text, text.find("\"b99995\"").unwrap(), "\"section\"");
    let bad_date = find_after(&text, text.find("\"b99997\"").unwrap(), "\"published\"");
    let run = site.cmd(&["check"]).run_within(DEADLINE);
    run.assert_code(1);
    assert_eq!(
        run.errors(),
        [
            format!(
                "./articles/b.json:1:{}: section: \"nowhere\" is not a section declared in the config",
                col(&text, bad_section)
            ),
            format!(
                "./articles/b.json:1:{}: published: \"2017-02-30 10:00\" is not a date; \
                 expected RFC 3339 like \"2017-03-23T11:03:00+08:00\" or \"2017-03-23 11:03[:SS]\" \
                 in the site's timezone",
                col(&text, bad_date)
            ),
        ]
    );

    // Without them, it builds.
    records[n - 5]["section"] = json!("news");
    records[n - 3]["published"] = json!("2017-02-28 10:00");
    site.write("articles/b.json", one_line(&records));
    let run = site
        .cmd(&["build", "--no-cache", "--now", NOW])
        .run_within(DEADLINE);
    run.assert_success();
    assert!(
        run.stdout.contains(&format!("from {} articles", n + 1)),
        "{run}"
    );
}

/// Regression: each duplicate id was read back by walking its line from
/// the start to its column: 20,000 records repeating one id on one line
/// took many minutes.
#[test]
fn duplicate_ids_in_a_one_line_json_array_are_reported_in_linear_time() {
    let site = Site::with_digest();
    let n = 20_000;
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let mut r = record(i);
            r["id"] = json!("同一个");
            r
        })
        .collect();
    let text = one_line(&records);
    site.write("articles/b.json", &text);
    let run = site.cmd(&["check"]).run_within(DEADLINE);
    run.assert_code(1);
    let errors = run.errors();
    assert_eq!(errors.len(), n - 1);
    // The first is the "already used" of the second record.
    let second = find_after(&text, 2, "{\"id\"") + 1;
    assert_eq!(
        errors[0],
        format!(
            "./articles/b.json:1:{}: id: \"同一个\" is already used at ./articles/b.json:1:3",
            col(&text, second)
        )
    );
    let last = text.rfind("{\"id\"").unwrap() + 1;
    assert_eq!(
        errors[n - 2],
        format!(
            "./articles/b.json:1:{}: id: \"同一个\" is already used at ./articles/b.json:1:3",
            col(&text, last)
        )
    );
}

/// Regression: every invalid subscriber entry rebuilt the line index of the
/// whole file: 40,000 of them on one line took 54 s before the first error.
#[test]
fn forty_thousand_bad_subscribers_on_one_line_are_reported_in_linear_time() {
    let site = Site::with_digest();
    site.edit_config("subscribers.toml", "subscribers.json");
    let n = 40_000;
    let entries: Vec<String> = (0..n)
        .map(|i| {
            format!("{{\"email\": \"reader{i}@example.com\", \"name\": 17, \"note\": \"读者\"}}")
        })
        .collect();
    let text = format!("[{}]", entries.join(", "));
    site.write("subscribers.json", &text);
    let run = site.cmd(&["check"]).run_within(DEADLINE);
    run.assert_code(1);
    let errors = run.errors();
    assert_eq!(
        errors.len(),
        n,
        "{}",
        &run.stderr[..2000.min(run.stderr.len())]
    );
    let message = "invalid type: integer `17`, expected a string";
    assert_eq!(errors[0], format!("./subscribers.json:1:2: {message}"));
    let last = text.rfind('{').unwrap();
    assert_eq!(
        errors[n - 1],
        format!("./subscribers.json:1:{}: {message}", col(&text, last))
    );
}

/// A syntax error in a JSON subscriber list is at its character column,
/// like every other position (serde_json counts bytes: the column was the
/// byte's, 4 too far after two CJK characters).
#[test]
fn a_syntax_error_in_a_json_subscriber_list_is_at_its_character_column() {
    let site = Site::with_digest();
    site.edit_config("subscribers.toml", "subscribers.json");
    let text = "[{\"email\": \"a@example.com\", \"name\": \"读者\"},]";
    site.write("subscribers.json", text);
    let run = site.run(&["check"]);
    run.assert_code(1);
    assert_eq!(
        run.errors(),
        [format!(
            "./subscribers.json:1:{}: trailing comma",
            col(text, text.rfind(']').unwrap())
        )]
    );
}

/// Regression: each problem's source line was decoded whole to show 200
/// characters of it: thousands of problems on one (shown, under 1 MiB)
/// line were quadratic. Each is shown cut around its column, the caret
/// under its field.
#[test]
fn thousands_of_problems_on_one_shown_line_print_in_linear_time() {
    let site = Site::with_digest();
    let n = 8_000;
    let mut records: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": format!("b{i}"), "title": "t", "section": "nowhere",
                   "url": "/b", "published": "2017-03-24 10:00"})
        })
        .collect();
    records[0]["title"] = json!("标题：第一条");
    let text = one_line(&records);
    assert!(text.len() < 1 << 20, "the line is shown: {}", text.len());
    site.write("articles/b.json", &text);
    let run = site.cmd(&["check"]).run_within(DEADLINE);
    run.assert_code(1);
    assert_eq!(run.errors().len(), n, "{}", &run.stderr[..2000]);
    // The last problem's block: its line, the source cut around the
    // column, the caret under `"section"`.
    let last = find_after(&text, text.find("\"b7999\"").unwrap(), "\"section\"");
    let head = format!(
        "./articles/b.json:1:{}: section: \"nowhere\" is not a section declared in the config",
        col(&text, last)
    );
    let block: Vec<&str> = run
        .stderr
        .split(&format!("{head}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no {head:?}"))
        .lines()
        .take(3)
        .collect();
    assert_eq!(block[0], "  |");
    let shown = block[1].strip_prefix("1 | ").expect("the source line");
    let caret = block[2].strip_prefix("  | ").expect("the caret line");
    assert!(shown.starts_with("...") && shown.len() < 300, "{shown}");
    let at = caret.find('^').expect("a caret");
    assert!(
        shown[at..].starts_with("\"section\":\"nowhere\""),
        "{shown}\n{caret}"
    );
}

/// The same positions in a one-line TOML file of inline tables.
#[test]
fn a_one_line_toml_array_of_inline_tables_reports_character_columns() {
    let site = Site::with_digest();
    let tables: Vec<String> = (0..2_000)
        .map(|i| {
            let section = if i == 1_990 { "nowhere" } else { "news" };
            format!(
                "{{id = \"t{i}\", title = \"标题{i}\", section = \"{section}\", url = \"/t/{i}\", published = \"2017-03-24 10:00\"}}"
            )
        })
        .collect();
    let text = format!("articles = [{}]\n", tables.join(", "));
    site.write("articles/c.toml", &text);
    let bad = find_after(&text, text.find("\"t1990\"").unwrap(), "section");
    let run = site.cmd(&["check"]).run_within(DEADLINE);
    run.assert_code(1);
    assert_eq!(
        run.errors(),
        [format!(
            "./articles/c.toml:1:{}: section: \"nowhere\" is not a section declared in the config",
            col(&text, bad)
        )]
    );
}

// ---- 7: config values out of range ----------------------------------------

/// Regression: `window = "999999999d"` passed `check`, then every digest
/// panicked (exit 101) subtracting it from the clock. A window longer than
/// the calendar means "everything".
#[test]
fn a_window_longer_than_the_calendar_takes_every_article() {
    let site = Site::with_digest();
    let mut records = vec![digest_article("old", "news")];
    records[0]["published"] = json!("1990-01-01 10:00");
    records.push(digest_article("new", "news"));
    site.write_jsonl("articles/a.jsonl", &records);
    for window in [
        "999999999d",
        "99999999999999999999999w",
        "9223372036854775807ms",
    ] {
        site.edit_config("window = \"7d\"", &format!("window = \"{window}\""));
        site.run(&["check"]).assert_success();
        let out = format!("out-{}", window.len());
        let mail = site.dry_run(&out).ok().only_email();
        assert!(
            mail.text.contains("标题 old") && mail.text.contains("标题 new"),
            "{window}: {}",
            mail.text
        );
        site.edit_config(&format!("window = \"{window}\""), "window = \"7d\"");
    }
}

/// Regression: `related` and `max_items` of 2^63 - 1 overflowed computing
/// how many articles an email lists (exit 101). A huge value means "all".
#[test]
fn huge_related_and_max_items_mean_all() {
    let site = Site::with_digest();
    let records: Vec<Value> = (0..5)
        .map(|i| {
            let mut r = digest_article(&format!("n{i}"), "news");
            r["keywords"] = json!("基层干部");
            r
        })
        .collect();
    site.write_jsonl("articles/a.jsonl", &records);
    site.edit_config(
        "window = \"7d\"",
        "window = \"7d\"\nrelated = 9223372036854775807\nmax_items = 9223372036854775807",
    );
    site.run(&["check"]).assert_success();
    let mail = site.dry_run("out").ok().only_email();
    for i in 0..5 {
        assert!(mail.text.contains(&format!("标题 n{i}")), "{}", mail.text);
    }
}

/// Regression: `max_rate = 1e-20` passed `check`, then every `--send`
/// panicked converting one message's interval (1e20 s) into a duration.
/// The SMTP numbers are checked at load, each a `feeds.toml:line:col: key:`
/// problem, and all of them at once.
#[test]
fn smtp_numbers_out_of_range_are_problems_at_load() {
    let site = Site::with_digest();
    site.edit_config(
        "from = ",
        "max_rate = 1e-20\nconnections = 100000\ntimeout = 0\ndata_timeout = 0\nretries = 1000\n\
         retry_delay = \"999999999d\"\nport = 0\nfrom = ",
    );
    let config = fs::read_to_string(site.path("feeds.toml")).unwrap();
    let line = |key: &str| {
        1 + config
            .lines()
            .position(|l| l.starts_with(&format!("{key} =")))
            .unwrap()
    };
    for args in [&["check"][..], &["digest", "--send", "--now", NOW]] {
        let run = site.run(args);
        run.assert_code(1);
        assert_eq!(
            run.errors(),
            [
                format!(
                    "feeds.toml:{}:1: smtp.port: must be from 1 to 65535",
                    line("port")
                ),
                format!(
                    "feeds.toml:{}:1: smtp.connections: must be from 1 to 1000 \
                     (a thread and an SMTP connection each)",
                    line("connections")
                ),
                format!(
                    "feeds.toml:{}:1: smtp.max_rate: 0.00000000000000000001 messages per \
                     second is less than one an hour: use 0 for no limit, or at least 1/3600 (0.000278)",
                    line("max_rate")
                ),
                format!(
                    "feeds.toml:{}:1: smtp.timeout: must be at least 1 second",
                    line("timeout")
                ),
                format!(
                    "feeds.toml:{}:1: smtp.data_timeout: must be at least 1 second",
                    line("data_timeout")
                ),
                format!(
                    "feeds.toml:{}:1: smtp.retries: must be at most 20 (the pause doubles \
                     with each: the last would be retry_delay × 2^19)",
                    line("retries")
                ),
                format!(
                    "feeds.toml:{}:1: smtp.retry_delay: \"999999999d\" is longer than a day: \
                     the run waits out each pause before it ends",
                    line("retry_delay")
                ),
            ],
            "{run}"
        );
        assert!(site.sent().is_empty());
    }
}

/// The edges of each range are accepted: a rate of one message an hour, a
/// day's retry pause, 20 retries, 1000 connections, timeouts of a second
/// and of 2^63 - 1 seconds (waiting forever).
#[test]
fn smtp_numbers_at_the_edges_of_their_ranges_are_accepted() {
    let site = Site::with_digest();
    site.edit_config(
        "from = ",
        "max_rate = 0.000278\nconnections = 1000\ntimeout = 9223372036854775807\n\
         data_timeout = 1\nretries = 20\nretry_delay = \"24h\"\nport = 65535\nfrom = ",
    );
    site.run(&["check"]).assert_success();
    site.send().assert_success();
    assert_eq!(site.sent().len(), 1);
}

/// Durations of zero, negative ones, and ones that are not durations say
/// which they are.
#[test]
fn durations_that_are_not_positive_say_so() {
    let site = Site::with_digest();
    for (window, message) in [
        ("0d", "\"0d\" is not a duration: it must be longer than 0"),
        ("-7d", "\"-7d\" is not a duration: it must be longer than 0"),
        (
            "7 days",
            "\"7 days\" is not a duration like \"7d\", \"36h\" or \"90m\"",
        ),
    ] {
        site.edit_config("window = \"7d\"", &format!("window = \"{window}\""));
        let run = site.run(&["check"]);
        run.assert_code(1);
        let line = fs::read_to_string(site.path("feeds.toml"))
            .unwrap()
            .lines()
            .position(|l| l.starts_with("window"))
            .unwrap()
            + 1;
        assert_eq!(
            run.errors(),
            [format!("feeds.toml:{line}:1: digest.window: {message}")]
        );
        site.edit_config(&format!("window = \"{window}\""), "window = \"7d\"");
    }
}

// ---- 10: a date whose midnight the clocks skip -------------------------------

/// A site in America/Santiago, where daylight saving starts at 00:00 (the
/// clocks go from 23:59:59 to 01:00): 2024-09-08 has no midnight.
fn santiago_site() -> Site {
    let site = Site::with_digest();
    site.edit_config("timezone = \"+08:00\"", "timezone = \"America/Santiago\"");
    site
}

const SANTIAGO_NOW: &str = "2024-09-10T12:00:00-03:00";

/// Regression: a date-only `published` on 2024-09-08 was refused as "a
/// daylight-saving gap", and that one record failed the whole build. A date
/// means the first instant of that day: 01:00 there.
#[test]
fn a_date_whose_midnight_the_clocks_skip_starts_when_they_jump() {
    let site = santiago_site();
    let mut records = vec![digest_article("gap", "news")];
    records[0]["published"] = json!("2024-09-08");
    records[0]["updated"] = json!("2024-09-08");
    let mut other = digest_article("before", "news");
    other["published"] = json!("2024-09-07");
    records.push(other);
    site.write_jsonl("articles/a.jsonl", &records);
    let run = site.run(&["build", "--now", SANTIAGO_NOW]);
    run.assert_success();
    let rss = fs::read_to_string(site.path("public/feeds/rss.xml")).unwrap();
    assert!(
        rss.contains("<pubDate>Sun, 8 Sep 2024 01:00:00 -0300</pubDate>"),
        "{rss}"
    );
    assert!(
        rss.contains("<pubDate>Sat, 7 Sep 2024 00:00:00 -0400</pubDate>"),
        "{rss}"
    );
    let atom = fs::read_to_string(site.path("public/feeds/atom.xml")).unwrap();
    assert!(
        atom.contains("<published>2024-09-08T01:00:00-03:00</published>"),
        "{atom}"
    );
}

/// A wall-clock time inside the gap names no instant: still an error, that
/// says why (documented).
#[test]
fn a_time_inside_the_gap_is_still_an_error() {
    let site = santiago_site();
    let mut records = vec![digest_article("gap", "news")];
    records[0]["published"] = json!("2024-09-08 00:30");
    let mut updated = digest_article("upd", "news");
    updated["published"] = json!("2024-09-07");
    updated["updated"] = json!("2024-09-08T00:00:00");
    records.push(updated);
    site.write_jsonl("articles/a.jsonl", &records);
    let run = site.run(&["build", "--now", SANTIAGO_NOW]);
    run.assert_code(1);
    let errors = run.errors();
    assert_eq!(errors.len(), 2, "{run}");
    assert!(
        errors[0].starts_with("./articles/a.jsonl:1:")
            && errors[0].ends_with(
                "published: \"2024-09-08 00:30\" does not exist in the site's timezone (a daylight-saving gap)"
            ),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].ends_with(
            "updated: \"2024-09-08T00:00:00\" does not exist in the site's timezone (a daylight-saving gap)"
        ),
        "{}",
        errors[1]
    );
    assert!(!site.path("public").exists());
}

/// `--now` is RFC 3339 (an offset, never a gap); at the ends of the
/// calendar it is an instant like any other, never a panic.
#[test]
fn now_at_the_ends_of_the_calendar_is_not_a_panic() {
    let site = santiago_site();
    for now in ["0000-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"] {
        let run = site.run(&["build", "--now", now]);
        assert!(matches!(run.code, Some(0 | 1)), "{now}: {run}");
        run.assert_no_panic();
        let run = site.run(&["digest", "--dry-run", "out", "--now", now]);
        assert!(matches!(run.code, Some(0 | 1)), "{now}: {run}");
        run.assert_no_panic();
    }
}

// ---- 14: thousands of sections -------------------------------------------------

/// The `feeds.toml` of [`Site::with_digest`] with `sections` more sections
/// `s0`, `s1`... (`parent(i)` names each one's parent).
fn config_with_sections(site: &Site, n: usize, parent: impl Fn(usize) -> Option<usize>) {
    use std::fmt::Write as _;
    let mut config = site.read("feeds.toml");
    let at = config.find("[digest]").unwrap();
    let mut sections = String::new();
    for i in 0..n {
        let _ = write!(
            sections,
            "[[sections]]\nid = \"s{i}\"\ntitle = \"栏目{i}\"\n"
        );
        if let Some(p) = parent(i) {
            let _ = writeln!(sections, "parent = \"s{p}\"");
        }
        sections.push('\n');
    }
    config.insert_str(at, &sections);
    site.write("feeds.toml", config);
}

/// Regression: planning a digest looked each section up by scanning all of
/// them, for every section's every ancestor, for every subscriber: 1,000
/// sections took 0.97 s, 5,000 15.7 s, 10,000 210 s (release build).
#[test]
fn ten_thousand_sections_with_section_subscribers_plan_a_digest_in_time() {
    use std::fmt::Write as _;
    let site = Site::with_digest();
    let n = 10_000;
    // Every tenth section is a child of the one before.
    config_with_sections(&site, n, |i| (i % 10 == 1).then(|| i - 1));
    let mut subscribers = String::new();
    for k in 0..300 {
        let picks = [k * 31 % n, k * 97 % n, (k * 7919 + 10) % n / 10 * 10];
        let list: Vec<String> = picks.iter().map(|p| format!("\"s{p}\"")).collect();
        let _ = write!(
            subscribers,
            "[[subscribers]]\nemail = \"r{k}@example.com\"\nsections = [{}]\n\n",
            list.join(", ")
        );
    }
    site.write("subscribers.toml", subscribers);
    let records: Vec<Value> = (0..3_000)
        .map(|i| digest_article(&format!("x{i}"), &format!("s{}", i * 7 % n)))
        .collect();
    site.write_jsonl("articles/a.jsonl", &records);
    let run = site.cmd(&["check"]).run_within(DEADLINE);
    run.assert_success();
    let run = site
        .cmd(&["digest", "--dry-run", "out", "--now", NOW])
        .run_within(DEADLINE);
    run.assert_success();
    // The subscriber to s10 also gets s11 (its child), grouped in config order.
    let emls: Vec<_> = fs::read_dir(site.path("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert!(emls.len() > 200, "{} emails\n{run}", emls.len());
}

/// Regression: checking a parent chain walked every section's whole chain,
/// searching the path at every step: cubic, a 4,000-deep chain took 12 s
/// (release build). 8,000 deep, and a subscriber to the root gets the
/// deepest section's article.
#[test]
fn an_8000_deep_parent_chain_is_checked_in_time_and_its_root_gets_everything() {
    let site = Site::with_digest();
    let n = 8_000;
    config_with_sections(&site, n, |i| i.checked_sub(1));
    site.write(
        "subscribers.toml",
        "[[subscribers]]\nemail = \"root@example.com\"\nsections = [\"s0\"]\n\n\
         [[subscribers]]\nemail = \"leaf@example.com\"\nsections = [\"s7999\"]\n\n\
         [[subscribers]]\nemail = \"news@example.com\"\nsections = [\"news\"]\n",
    );
    site.write_jsonl(
        "articles/a.jsonl",
        &[
            digest_article("deep", "s7999"),
            digest_article("mid", "s4000"),
        ],
    );
    let run = site.cmd(&["check"]).run_within(DEADLINE);
    run.assert_success();
    let run = site
        .cmd(&["digest", "--dry-run", "out", "--now", NOW])
        .run_within(DEADLINE);
    run.assert_success();
    let mut mails: Vec<Email> = fs::read_dir(site.path("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| Email::parse(fs::read(p).unwrap()))
        .collect();
    mails.sort_by(|a, b| a.to[0].1.cmp(&b.to[0].1));
    let to: Vec<&str> = mails.iter().map(|m| m.to[0].1.as_str()).collect();
    assert_eq!(
        to,
        ["leaf@example.com", "root@example.com"],
        "news has nothing new"
    );
    assert!(mails[0].text.contains("标题 deep") && !mails[0].text.contains("标题 mid"));
    assert!(mails[1].text.contains("标题 deep") && mails[1].text.contains("标题 mid"));
}

/// Regression: every feed selection (the loader makes one per input file
/// and thread) stored, for each section, the feeds of all its ancestors:
/// for an 8,000-deep chain 32 million entries each, 2.5 GB for 8 files
/// (release build). The ancestry is followed per article instead. Under a
/// 1 GB address-space limit, the old build aborts.
#[test]
fn a_build_of_an_8000_deep_chain_from_many_files_stays_small() {
    let site = Site::with_digest();
    let n = 8_000;
    config_with_sections(&site, n, |i| i.checked_sub(1));
    site.edit_config(
        "formats = [\"rss\", \"atom\", \"json\"]",
        "formats = [\"rss\"]",
    );
    for f in 0..8 {
        site.write_jsonl(
            &format!("articles/f{f}.jsonl"),
            &[digest_article(&format!("deep{f}"), "s7999")],
        );
    }
    site.cmd(&["build", "--no-cache", "--now", NOW])
        .wrapped_in(["sh", "-c", "ulimit -v 1000000 && exec \"$0\" \"$@\""])
        .run()
        .assert_success();
    let root = fs::read_to_string(site.path("public/feeds/s0/rss.xml")).unwrap();
    for f in 0..8 {
        assert!(root.contains(&format!("标题 deep{f}")), "{root}");
    }
}

/// A cycle of thousands of sections is one problem per section, each naming
/// the cycle with its middle left out (not thousands of names each).
#[test]
fn a_long_parent_cycle_is_reported_briefly() {
    let site = Site::with_digest();
    let n = 3_000;
    config_with_sections(&site, n, |i| Some((i + 1) % n));
    let run = site.cmd(&["check"]).run_within(DEADLINE);
    run.assert_code(1);
    let errors = run.errors();
    assert_eq!(errors.len(), n);
    assert!(
        errors[0].ends_with(
            "sections[3].parent: parents form a cycle: s0 → s1 → s2 → s3 → s4 → s5 → s6 → s7 → … \
             (2990 more) … → s2998 → s2999 → s0"
        ),
        "{}",
        errors[0]
    );
    assert!(run.stderr.len() < n * 400, "{} bytes", run.stderr.len());
}

/// Regression: the hint of each unknown section compared it with every
/// declared one: 10,000 records with distinct unknown sections on a site of
/// 10,000 took over a minute (release build). Hints are found once per
/// message and within a budget of comparisons; past it, a hint lists the
/// declared sections.
#[test]
fn thousands_of_unknown_sections_on_a_site_of_thousands_are_hinted_in_time() {
    let site = Site::with_digest();
    let n = 5_000;
    config_with_sections(&site, n, |_| None);
    let records: Vec<Value> = (0..n)
        .map(|i| digest_article(&format!("u{i}"), &format!("z{i}")))
        .collect();
    site.write_jsonl("articles/a.jsonl", &records);
    let run = site.cmd(&["check"]).run_within(DEADLINE);
    run.assert_code(1);
    assert_eq!(run.errors().len(), n);
    assert!(
        run.stderr.contains("= help: did you mean `s0`?"),
        "{}",
        &run.stderr[..2000]
    );
    assert!(
        run.stderr
            .trim_end()
            .contains("= help: the declared sections are `news`, `yushi`, `tech`, `s0`, "),
        "{}",
        &run.stderr[run.stderr.len() - 2000..]
    );
}
