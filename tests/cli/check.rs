//! Validation: every mistake in the config or in a record is reported as
//! `path:line:col: field: message` on stderr, the command exits 1, and
//! nothing is written. `check` lists every problem of a corpus in one run.

use serde_json::json;

use crate::support::{DEFAULT_CONFIG, Run, Site, Snapshot, article};

/// serde's list of the record fields, as the unknown-field message gives it.
const EXPECTED_FIELDS: &str = "expected one of `id`, `title`, `section`, `url`, `published`, `updated`, \
     `author`, `editor`, `source`, `keywords`, `summary`, `content_html`, `image`, `related`, `views`";

/// The 1-based number of the line of `text` that equals `line` exactly.
fn line_of(text: &str, line: &str) -> usize {
    text.lines()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no line {line:?} in\n{text}"))
        + 1
}

/// A build that must fail: exit 1, the given summary, no output folder.
#[track_caller]
fn failed_build(site: &Site, problems: usize) -> Run {
    let output = site.build();
    output.assert_code(1);
    site.assert_nothing_written();
    let summary = if problems == 1 {
        "bulletin: 1 problem found; nothing was written".to_owned()
    } else {
        format!("bulletin: {problems} problems found; nothing was written")
    };
    assert!(
        output.stderr.lines().any(|l| l.starts_with(&summary)),
        "expected {summary:?}:\n{output:?}"
    );
    assert_eq!(output.errors().len(), problems, "{output:?}");
    assert!(!output.stderr.contains("panicked"), "{output:?}");
    output
}

// ---- one test per kind of mistake ----------------------------------------

#[test]
fn unknown_field_in_a_toml_record_names_the_field_and_its_line() {
    let site = Site::new();
    site.write(
        "articles/typo.toml",
        r#"[[articles]]
id = "t1"
title = "错别字"
sectoin = "news"
url = "/t1.html"
published = "2017-03-23T11:03:00+08:00"
"#,
    );
    let output = failed_build(&site, 1);
    // The message is right today; the location points at `[[articles]]`
    // (line 1) instead of the `sectoin` line (see the report on
    // src/load/formats.rs: toml's table spans cover only the header).
    assert!(
        output.errors()[0].ends_with(&format!(
            "sectoin: unknown field `sectoin`, {EXPECTED_FIELDS}"
        )),
        "{output:?}"
    );
    output.assert_error_line(&format!(
        "articles/typo.toml:4:1: sectoin: unknown field `sectoin`, {EXPECTED_FIELDS}"
    ));
}

#[test]
fn unknown_field_in_a_json_record_names_the_field_and_its_line() {
    let site = Site::new();
    site.write(
        "articles/typo.json",
        r#"[
  {
    "id": "j1",
    "title": "错别字",
    "section": "news",
    "url": "/j1.html",
    "published": "2017-03-23T11:03:00+08:00",
    "auther": "杜鹃花"
  }
]
"#,
    );
    let output = failed_build(&site, 1);
    // serde_json places unknown keys at the key's closing quote.
    output.assert_error_line(&format!(
        "articles/typo.json:8:12: auther: unknown field `auther`, {EXPECTED_FIELDS}"
    ));
}

#[test]
fn every_missing_required_field_is_listed() {
    let site = Site::new();
    site.write(
        "articles/short.toml",
        "[[articles]]\nid = \"m1\"\ntitle = \"只有标题\"\n",
    );
    let output = failed_build(&site, 3);
    assert_eq!(
        output.errors(),
        [
            "articles/short.toml:1:1: section: is missing (required)",
            "articles/short.toml:1:1: url: is missing (required)",
            "articles/short.toml:1:1: published: is missing (required)",
        ],
        "{output:?}"
    );
}

#[test]
fn empty_required_fields_are_reported() {
    let site = Site::new();
    let mut record = article("e1", "news", "2017-03-23 11:03");
    record["title"] = json!("  \u{b} ");
    site.write_jsonl("articles/empty.jsonl", &[record]);
    let output = failed_build(&site, 1);
    let line = std::fs::read_to_string(site.path("articles/empty.jsonl")).unwrap();
    let col = line.find("\"title\"").unwrap() + 1;
    output.assert_error_line(&format!(
        "articles/empty.jsonl:1:{col}: title: must not be empty"
    ));
}

#[test]
fn a_bad_date_names_the_value_and_the_accepted_forms() {
    let site = Site::new();
    site.write(
        "articles/dates.toml",
        r#"[[articles]]
id = "d1"
title = "坏日期"
section = "news"
published = "2017-13-01"
url = "/d1.html"
"#,
    );
    let output = failed_build(&site, 1);
    let message = r#"published: "2017-13-01" is not a date; expected RFC 3339 like "2017-03-23T11:03:00+08:00" or "2017-03-23 11:03[:SS]" in the site's timezone"#;
    assert!(output.errors()[0].ends_with(message), "{output:?}");
    // The field is on line 5 (see the report: TOML locations point at the header).
    output.assert_error_line(&format!("articles/dates.toml:5:1: {message}"));
}

#[test]
fn a_javascript_url_is_refused() {
    let site = Site::new();
    site.write(
        "articles/links.json",
        r#"[
  {
    "id": "u1",
    "title": "坏链接",
    "section": "news",
    "url": "javascript:alert(1)",
    "published": "2017-03-23T11:03:00+08:00"
  }
]
"#,
    );
    let output = failed_build(&site, 1);
    output.assert_error_line(
        r#"articles/links.json:6:5: url: "javascript:alert(1)" uses the javascript: scheme; only http and https links are allowed"#,
    );
}

#[test]
fn an_unknown_section_is_refused() {
    let site = Site::new();
    let mut bad = article("s2", "world", "2017-03-23 11:03");
    bad["url"] = json!("/s2.html");
    site.write_jsonl(
        "articles/wire.jsonl",
        &[article("s1", "news", "2017-03-23 10:00"), bad],
    );
    let output = failed_build(&site, 1);
    let text = std::fs::read_to_string(site.path("articles/wire.jsonl")).unwrap();
    let col = text.lines().nth(1).unwrap().find("\"section\"").unwrap() + 1;
    output.assert_error_line(&format!(
        "articles/wire.jsonl:2:{col}: section: \"world\" is not a section declared in the config"
    ));
}

#[test]
fn a_duplicate_id_across_two_files_names_both_places() {
    let site = Site::new();
    site.write_json(
        "articles/a.json",
        &[article("dup-1", "news", "2017-03-23 10:00")],
    );
    site.write_jsonl(
        "articles/b.jsonl",
        &[
            article("b-1", "tech", "2017-03-23 10:00"),
            article("dup-1", "tech", "2017-03-23 11:00"),
        ],
    );
    let output = failed_build(&site, 1);
    // a.json is pretty-printed: `"id"` is on line 3, column 5.
    output.assert_error_line(
        r#"articles/b.jsonl:2:2: id: "dup-1" is already used at articles/a.json:3:5"#,
    );
}

#[test]
fn a_duplicate_id_in_toml_names_the_id_lines() {
    let site = Site::new();
    site.write(
        "articles/a.toml",
        r#"# 两篇稿件用了同一个 id
[[articles]]
id = "same"
title = "第一篇"
section = "news"
url = "/1.html"
published = "2017-03-23 10:00"

[[articles]]
title = "第二篇"
id = "same"
section = "news"
url = "/2.html"
published = "2017-03-23 11:00"
"#,
    );
    let output = failed_build(&site, 1);
    assert!(
        output.errors()[0].contains(r#"id: "same" is already used at articles/a.toml:"#),
        "{output:?}"
    );
    output.assert_error_line(
        r#"articles/a.toml:11:1: id: "same" is already used at articles/a.toml:3:1"#,
    );
}

#[test]
fn section_ids_that_are_not_slugs_are_refused() {
    for (bad, why) in [
        (
            "../x",
            "must start with a letter or digit (it becomes a folder name)",
        ),
        (
            "a/b",
            "may hold only ASCII letters, digits, '-' and '_' (it becomes a folder name)",
        ),
    ] {
        let config = DEFAULT_CONFIG.replace(r#"id = "tech""#, &format!("id = {bad:?}"));
        let site = Site::with_config(&config);
        site.write_json(
            "articles/a.json",
            &[article("a1", "news", "2017-03-23 10:00")],
        );
        let line = line_of(&config, &format!("id = {bad:?}"));
        let output = failed_build(&site, 1);
        output.assert_error_line(&format!(
            "feeds.toml:{line}:1: sections[2].id: {bad:?} {why}"
        ));
        assert!(
            !site.path("x").exists() && !site.path("a").exists(),
            "{bad}: something was created"
        );
    }
}

#[test]
fn a_parent_that_does_not_exist_is_refused() {
    let config = DEFAULT_CONFIG.replace(r#"parent = "news""#, r#"parent = "world""#);
    let site = Site::with_config(&config);
    let line = line_of(&config, r#"parent = "world""#);
    let output = failed_build(&site, 1);
    output.assert_error_line(&format!(
        r#"feeds.toml:{line}:1: sections[1].parent: section "yushi" names parent "world", which is not a declared section"#
    ));
}

#[test]
fn a_parent_cycle_is_refused() {
    let config = DEFAULT_CONFIG.replace(
        "title = \"新闻中心\"\n",
        "title = \"新闻中心\"\nparent = \"yushi\"\n",
    );
    let site = Site::with_config(&config);
    let news_line = line_of(&config, r#"parent = "yushi""#);
    let yushi_line = line_of(&config, r#"parent = "news""#);
    let output = failed_build(&site, 2);
    output
        .assert_error_line(&format!("feeds.toml:{news_line}:1: sections[0].parent: parents form a cycle: news → yushi → news"))
        .assert_error_line(&format!("feeds.toml:{yushi_line}:1: sections[1].parent: parents form a cycle: yushi → news → yushi"));
}

#[test]
fn a_json_lines_syntax_error_names_its_line() {
    let site = Site::new();
    let good = |id: &str| serde_json::to_string(&article(id, "news", "2017-03-23 10:00")).unwrap();
    let broken = r#"{"id": "l3", "title": "少了逗号" "section": "news"}"#;
    site.write(
        "articles/export.jsonl",
        format!("{}\n{}\n{broken}\n", good("l1"), good("l2")),
    );
    let output = failed_build(&site, 1);
    // Columns count characters, not bytes (the title is CJK).
    let col = broken[..broken.find(r#" "section""#).unwrap()]
        .chars()
        .count()
        + 2;
    output.assert_error_line(&format!(
        "articles/export.jsonl:3:{col}: expected `,` or `}}`"
    ));
}

#[test]
fn a_bad_now_is_a_usage_error_with_exit_1() {
    let site = Site::new();
    site.write_json(
        "articles/a.json",
        &[article("a1", "news", "2017-03-23 10:00")],
    );
    let output = site
        .cmd(&["build"])
        .config(&site.config_path())
        .args(["--now", "garbage"])
        .run();
    output.assert_code(1);
    assert!(
        output
            .stderr
            .contains("invalid value 'garbage' for '--now <RFC3339>'")
            && output
                .stderr
                .contains("is not an RFC 3339 time like 2017-03-24T20:00:00+08:00"),
        "{output:?}"
    );
    assert!(!output.stderr.contains("panicked"), "{output:?}");
    site.assert_nothing_written();
    // A date without an offset is not RFC 3339 either.
    let output = site
        .cmd(&["build"])
        .config(&site.config_path())
        .args(["--now", "2017-03-25 08:00"])
        .run();
    output.assert_code(1);
    site.assert_nothing_written();
}

#[test]
fn a_missing_config_is_an_error_naming_the_file() {
    let site = Site::new();
    let output = site.cmd(&["build"]).config(&site.path("nope.toml")).run();
    output.assert_code(1);
    assert!(
        output
            .stderr_rel()
            .starts_with("error: nope.toml: cannot read the config"),
        "{output:?}"
    );
    site.assert_nothing_written();
}

// ---- check ----------------------------------------------------------------

/// A corpus with seven mistakes in three formats.
fn messy_site() -> Site {
    let site = Site::new();
    site.write(
        "articles/a.toml",
        r#"[[articles]]
id = "ok-toml"
title = "正常"
section = "news"
url = "/ok.html"
published = 2017-03-23T11:03:00+08:00

[[articles]]
id = "bad-date"
title = "坏日期"
section = "news"
url = "/bad-date.html"
published = "2017-13-01"

[[articles]]
id = "no-url"
title = "没有链接"
section = "tech"
published = "2017-03-23 11:03"
"#,
    );
    let mut js = article("js", "news", "2017-03-23 11:03");
    js["url"] = json!("javascript:alert(1)");
    let mut typo = article("typo", "news", "2017-03-23 11:03");
    typo["sectoin"] = json!("news");
    site.write_json("articles/b.json", &[js, typo]);
    let mut lines = vec![
        serde_json::to_string(&article("ok-jsonl", "yushi", "2017-03-23 11:03")).unwrap(),
        serde_json::to_string(&article("lost", "world", "2017-03-23 11:03")).unwrap(),
        r#"{"id": "broken", "title": "x" "#.to_owned(),
    ];
    lines.push(serde_json::to_string(&article("ok-toml", "tech", "2017-03-23 11:03")).unwrap());
    site.write("articles/c.jsonl", lines.join("\n") + "\n");
    site
}

#[test]
fn check_reports_every_problem_of_every_file_in_one_run() {
    let site = messy_site();
    let before = Snapshot::of(site.root());
    let output = site.check();
    output.assert_code(1);
    assert_eq!(
        Snapshot::of(site.root()),
        before,
        "check changed the site folder"
    );
    site.assert_nothing_written();

    let errors = output.errors();
    assert_eq!(errors.len(), 7, "{output:?}");
    assert!(
        output
            .stderr
            .contains("bulletin: 7 problems found; nothing was written"),
        "{output:?}"
    );
    // Which file and field each one names (order: files by name, then position).
    let places: Vec<(String, String)> = errors
        .iter()
        .map(|e| {
            let mut parts = e.split(": ");
            let location = parts.next().unwrap_or("");
            let file = location.split(':').next().unwrap_or("").to_owned();
            (file, parts.next().unwrap_or("").to_owned())
        })
        .collect();
    let want = [
        ("articles/a.toml", "published"),
        ("articles/a.toml", "url"),
        ("articles/b.json", "url"),
        ("articles/b.json", "sectoin"),
        ("articles/c.jsonl", "section"),
        ("articles/c.jsonl", "EOF while parsing an object"),
        ("articles/c.jsonl", "id"),
    ];
    for ((file, field), (got_file, got_rest)) in want.iter().zip(&places) {
        assert_eq!(got_file, file, "{output:?}");
        assert!(
            got_rest.starts_with(field),
            "expected {field:?} in {file}, got {got_rest:?}\n{output:?}"
        );
    }
    // Every problem has a line and a column.
    for e in &errors {
        let mut parts = e.split(':');
        let (_, line, col) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        assert!(
            line.parse::<usize>().is_ok() && col.parse::<usize>().is_ok(),
            "no line:col in {e:?}"
        );
    }
    assert!(
        errors[6].starts_with(
            r#"articles/c.jsonl:4:2: id: "ok-toml" is already used at articles/a.toml:"#
        ),
        "{output:?}"
    );
}

#[test]
fn build_on_the_same_corpus_reports_the_same_problems_and_writes_nothing() {
    let site = messy_site();
    let check = site.check();
    let build = site.build();
    build.assert_code(1);
    site.assert_nothing_written();
    assert_eq!(build.errors(), check.errors());
}

#[test]
fn check_passes_on_the_example_site_and_writes_nothing() {
    // A copy of the example site, so "writes nothing" can be checked.
    let site = Site::example();
    let before = Snapshot::of(site.root());
    let output = site
        .cmd(&["check", "--config"])
        .arg(site.config_path())
        .run();
    output.assert_success();
    let stdout = &output.stdout;
    assert!(
        stdout.starts_with("checked ") && stdout.contains("no problems"),
        "{stdout}"
    );
    assert!(stdout.contains(" 8 sections"), "{stdout}");
    assert_eq!(
        Snapshot::of(site.root()),
        before,
        "check wrote into the site"
    );
}
