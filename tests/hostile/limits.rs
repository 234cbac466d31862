//! Size and shape limits: huge inputs build without being loaded whole;
//! absurd records (a 50 MB line, deep nesting, a 1 MB title, a flood of
//! keywords) end in a clear error or are handled, never an abort or OOM.
//! Big files are generated in temporary folders and removed afterwards.

use std::fs;
use std::io::{BufWriter, Write};

use serde_json::json;

use crate::support::{NOW, Site};

#[test]
fn a_200_mb_json_lines_file_builds() {
    let site = Site::with_digest();
    let path = site.path("articles/a.jsonl");
    let mut out = BufWriter::new(fs::File::create(&path).unwrap());
    let body = "正文内容 ".repeat(30);
    let summary = "摘要".repeat(40);
    let (mut written, mut n) = (0usize, 0usize);
    while written < 200 << 20 {
        let line = format!(
            "{{\"id\":\"id-{n}\",\"title\":\"标题 第{n}条\",\"section\":\"{}\",\"url\":\"/n/{n}.html\",\
             \"published\":\"2016-{:02}-{:02} {:02}:{:02}\",\"summary\":\"{summary}\",\
             \"keywords\":\"基层干部;群众路线；干部素质\",\"content_html\":\"<p>{body}</p>\"}}\n",
            ["news", "yushi", "tech"][n % 3],
            1 + n % 12,
            1 + n % 28,
            n % 24,
            n % 60
        );
        out.write_all(line.as_bytes()).unwrap();
        written += line.len();
        n += 1;
    }
    out.flush().unwrap();
    drop(out);
    let run = site.run(&["build", "--no-cache", "--now", NOW]);
    run.assert_success();
    assert!(run.stdout.contains(&format!("from {n} articles")), "{run}");
    let rss = fs::read_to_string(site.path("public/feeds/rss.xml")).unwrap();
    assert_eq!(rss.matches("<item>").count(), 50);
    fs::remove_file(&path).unwrap();
}

#[test]
fn a_50_mb_record_on_one_line_is_handled() {
    let site = Site::with_digest();
    // Whole, not trimmed by the size guard (tests/feeds/size.rs tests that).
    site.set("output.max_feed_bytes", 0);
    let body = format!("<p>{}</p>", "x".repeat(50 << 20));
    site.write_jsonl(
        "articles/a.jsonl",
        &[json!({
            "id": "big", "title": "t", "section": "tech", "url": "/big.html",
            "published": "2017-03-24 10:00", "content_html": body,
        })],
    );
    let run = site.run(&["build", "--no-cache", "--now", NOW]);
    run.assert_success();
    let atom = fs::read(site.path("public/feeds/tech/atom.xml")).unwrap();
    assert!(
        atom.len() > 50 << 20,
        "the body was cut: {} bytes",
        atom.len()
    );
    roxmltree::Document::parse(std::str::from_utf8(&atom).unwrap()).expect("well-formed");
}

#[test]
fn a_50_mb_line_that_is_not_json_is_one_clear_error() {
    let site = Site::with_digest();
    let mut junk = vec![b'x'; 50 << 20];
    junk.extend_from_slice(b"\n");
    junk.extend_from_slice(
        crate::support::digest_article("a2", "news")
            .to_string()
            .as_bytes(),
    );
    site.write("articles/b.jsonl", junk);
    let run = site.build();
    run.assert_code(1);
    assert_eq!(run.error_line(), "./articles/b.jsonl:1:1: expected value");
    assert!(
        run.stderr.len() < 4096,
        "the message echoes the line: {} bytes",
        run.stderr.len()
    );
    assert!(!site.path("public").exists());
}

/// 10,000 levels of `[` or `{` inside one field of a record.
#[test]
fn ten_thousand_levels_of_json_nesting_in_a_field_is_an_error() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let objects = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    for (nested, message) in [
        (&deep, "summary: invalid type: sequence, expected a string"),
        (&objects, "summary: invalid type: map, expected a string"),
    ] {
        let site = Site::with_digest();
        let record = format!(
            "{{\"id\":\"a1\",\"title\":\"t\",\"section\":\"news\",\"url\":\"/a\",\"published\":\"2017-03-24 10:00\",\"summary\":{nested}}}\n"
        );
        site.write("articles/a.jsonl", &record);
        site.write("articles/b.json", format!("[{}]", record.trim_end()));
        let run = site.build();
        run.assert_code(1);
        let errors = run.errors();
        assert_eq!(errors.len(), 2, "{run}");
        for e in errors {
            assert!(e.ends_with(message), "{e}");
        }
        assert!(!site.path("public").exists());
    }
}

/// A whole JSON file that is nothing but nesting.
#[test]
fn a_json_file_of_deep_nesting_is_an_error() {
    let site = Site::with_digest();
    site.write(
        "articles/b.json",
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    );
    let run = site.build();
    run.assert_code(1);
    assert_eq!(
        run.error_line(),
        "./articles/b.json:1:2: invalid type: sequence, expected a string"
    );
}

/// TOML nesting: arrays, inline tables, dotted keys, table headers.
#[test]
fn deep_toml_nesting_is_an_error() {
    let n = 10_000;
    for (body, message) in [
        (
            format!("summary = {}{}\n", "[".repeat(n), "]".repeat(n)),
            "cannot recurse further; max recursion depth met",
        ),
        (
            format!("summary = {}1{}\n", "{a=".repeat(n), "}".repeat(n)),
            "cannot recurse further; max recursion depth met",
        ),
        (
            format!("{} = 1\n", vec!["a"; n].join(".")),
            "recursion limit",
        ),
        (
            format!("[articles.{}]\nx = 1\n", vec!["a"; n].join(".")),
            "recursion limit",
        ),
    ] {
        let site = Site::with_digest();
        site.write(
            "articles/a.toml",
            format!("[[articles]]\nid = \"a\"\n{body}"),
        );
        let run = site.build();
        run.assert_code(1);
        assert!(run.error_line().ends_with(message), "{}", run.error_line());
        assert!(!site.path("public").exists());
    }
}

/// The same for the config and the subscribers, which are read by `check`.
#[test]
fn deep_nesting_in_the_config_and_the_subscribers_is_an_error() {
    let n = 10_000;
    let deep_toml = format!("x = {}{}\n", "[".repeat(n), "]".repeat(n));
    let site = Site::with_digest();
    site.write(
        "subscribers.toml",
        format!("{}[[subscribers]]\nemail = \"a@example.com\"\n", deep_toml),
    );
    site.run(&["check"])
        .assert_code(1)
        .assert_stderr_has(&["subscribers.toml"]);
    site.edit_config("subscribers.toml", "subscribers.json");
    site.write(
        "subscribers.json",
        format!(
            "[{{\"email\":\"a@example.com\",\"name\":{}{}}}]",
            "[".repeat(n),
            "]".repeat(n)
        ),
    );
    site.run(&["check"])
        .assert_code(1)
        .assert_stderr_has(&["subscribers.json"]);
    let config = fs::read_to_string(site.path("feeds.toml")).unwrap();
    site.write("feeds.toml", format!("{config}\n[extra]\n{deep_toml}"));
    site.run(&["check"])
        .assert_code(1)
        .assert_stderr_has(&["feeds.toml"]);
}

#[test]
fn a_one_megabyte_title_is_handled() {
    let site = Site::with_digest();
    // Whole, not trimmed by the size guard (tests/feeds/size.rs tests that).
    site.set("output.max_feed_bytes", 0);
    let title = "标".repeat((1 << 20) / 3);
    site.write_jsonl(
        "articles/a.jsonl",
        &[json!({
            "id": "t", "title": title, "section": "news", "url": "/t.html",
            "published": "2017-03-24 10:00",
        })],
    );
    site.build().assert_success();
    for feed in ["rss.xml", "atom.xml", "news/rss.xml"] {
        let text = fs::read_to_string(site.path(&format!("public/feeds/{feed}"))).unwrap();
        let doc = roxmltree::Document::parse(&text).expect("well-formed");
        assert!(
            doc.descendants()
                .any(|n| n.has_tag_name("title") && n.text() == Some(title.as_str())),
            "{feed}: the title is not there whole"
        );
    }
    site.dry_run("out").ok();
}

#[test]
fn a_record_with_a_hundred_thousand_keywords_builds_in_linear_time() {
    // Regression (fixed in 0f5ff0e): `text::dedup_keywords` compares every keyword with every kept one
    // ("lists are short"): a record's keyword line is input, and 100,000
    // distinct keywords (a 690 KB line) take ~33 s in a debug build, 1,000,000
    // (7 MB) an hour. A hash set (or a sort) keeps it linear.
    let site = Site::with_digest();
    let keywords: Vec<String> = (0..100_000).map(|i| format!("k{i}")).collect();
    site.write_jsonl(
        "articles/a.jsonl",
        &[json!({
            "id": "kw", "title": "t", "section": "news", "url": "/kw.html",
            "published": "2017-03-24 10:00", "keywords": keywords.join(";"),
        })],
    );
    // Speed is the benchmarks' business; here: it finishes and succeeds
    // (a quadratic deduplication made this take many minutes).
    let run = site.run(&["build", "--no-cache", "--now", NOW]);
    run.assert_success();
}

#[test]
fn a_file_where_every_record_repeats_one_id_fails_in_linear_time() {
    // Regression (fixed in 0f5ff0e): duplicate ids are confirmed by `load::id_at`, which re-reads the
    // whole file for every occurrence (and compares each with all before
    // it): an export that writes the same id on every line — 20,000 lines,
    // 3 MB — takes minutes in a debug build, a 200 MB one days, before the
    // "already used" errors come out. Reading each file once per group (or
    // keeping the ids of a colliding fingerprint) keeps it linear.
    let site = Site::with_digest();
    let records: Vec<serde_json::Value> = (0..20_000)
        .map(|i| {
            json!({
                "id": "0", "title": format!("t{i}"), "section": "news", "url": format!("/{i}.html"),
                "published": "2017-03-24 10:00", "summary": "x".repeat(80),
            })
        })
        .collect();
    site.write_jsonl("articles/a.jsonl", &records);
    let run = site.run(&["check"]);
    run.assert_code(1);
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.contains("\"0\" is already used at ./articles/a.jsonl:1:"))
            .count(),
        19_999
    );
}

/// Bodies and summaries of JSON records are left undecoded unless the
/// record reaches a feed: a broken escape is still an error wherever the
/// record is, and a kept record's escapes come out decoded.
#[test]
fn long_fields_are_checked_in_every_record_and_decoded_in_kept_ones() {
    let site = Site::with_digest();
    let mut lines = String::new();
    // 60 newer records fill every feed (50 items): the old one is never kept.
    for i in 0..60 {
        let mut record = crate::support::digest_article(&format!("n{i}"), "news");
        record["published"] = json!("2017-03-24 12:00");
        record["content_html"] = json!("<p>第一段\n“引号” \"quoted\" \\ 中</p>");
        lines.push_str(&record.to_string());
        lines.push('\n');
    }
    let bad_body = r#"{"id":"old1","title":"t","section":"news","url":"/a","published":"2001-01-01 10:00","content_html":"<p>\ud800</p>"}"#;
    let bad_summary = r#"{"id":"old2","title":"t","section":"news","url":"/b","published":"2001-01-01 10:00","summary":"\udc00x"}"#;
    let not_text = r#"{"id":"old3","title":"t","section":"news","url":"/c","published":"2001-01-01 10:00","content_html":17}"#;
    site.write(
        "articles/a.jsonl",
        format!("{lines}{bad_body}\n{bad_summary}\n{not_text}\n"),
    );
    let run = site.run(&["build", "--now", NOW]);
    run.assert_code(1);
    let errors = run.errors();
    assert_eq!(errors.len(), 3, "{run}");
    assert!(
        errors[0].contains("a.jsonl:61:") && errors[0].contains("content_html: "),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("a.jsonl:62:") && errors[1].contains("summary: lone "),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("a.jsonl:63:")
            && errors[2].contains("content_html: invalid type: integer `17`, expected a string"),
        "{}",
        errors[2]
    );
    assert!(!site.path("public").exists());

    site.write("articles/a.jsonl", &lines);
    run_ok(&site);
    let rss = fs::read_to_string(site.path("public/feeds/news/rss.xml")).unwrap();
    let doc = roxmltree::Document::parse(&rss).unwrap();
    let bodies: Vec<&str> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "encoded")
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(bodies.len(), 50, "{rss}");
    for body in bodies {
        assert_eq!(body, "<p>第一段\n“引号” \"quoted\" \\ 中</p>");
    }
}

fn run_ok(site: &Site) {
    site.run(&["build", "--now", NOW]).assert_success();
}
