//! The subscriber list is validated before anything is written: header
//! injection, bad addresses, duplicates and unknown sections are errors
//! with file, line and field; TOML and JSON are both read.

use crate::support::{A, Run, Site, Small, at};

fn site() -> Site {
    Small::new()
        .article(A::new("n", "news", &at(-1.0)))
        .article(A::new("f", "finance", &at(-2.0)))
        .build()
}

/// Both `check` and `digest` refuse the list, the digest writing nothing.
fn refuse(site: &Site) -> [Run; 2] {
    let digest = site.dry_run("out");
    assert!(!digest.dir.exists(), "digest wrote files");
    [site.check(), digest.run]
}

/// The `error:` line naming `file` at one of `lines` and `field`.
#[track_caller]
fn assert_problem(run: &Run, file: &str, lines: &[usize], field: &str, words: &[&str]) -> String {
    run.assert_code(1);
    let found = run.stderr.lines().find(|l| {
        l.starts_with("error:")
            && l.contains(&format!(": {field}: "))
            && lines.iter().any(|n| l.contains(&format!("{file}:{n}:")))
            && words.iter().all(|w| l.contains(w))
    });
    found
        .unwrap_or_else(|| {
            panic!(
                "no error naming {file} at line {lines:?}, field {field} and {words:?}:\n{}",
                run.stderr
            )
        })
        .to_owned()
}

#[test]
fn a_line_break_in_a_name_is_refused_with_field_and_line() {
    let site = site();
    site.write(
        "subscribers.toml",
        "# readers\n\n[[subscribers]]\nemail = \"ok@example.com\"\nname = \"好\"\n\n[[subscribers]]\nemail = \"a@example.com\"\nname = \"张三\\r\\nBcc: evil@example.com\"\n",
    );
    for run in refuse(&site) {
        // Line 7 is the entry, line 9 the field: either locates it.
        assert_problem(&run, "subscribers.toml", &[7, 9], "name", &[]);
    }
}

#[test]
fn a_line_break_in_an_address_is_refused_with_field_and_line() {
    let site = site();
    site.write(
        "subscribers.toml",
        "[[subscribers]]\nemail = \"a@example.com\\nBcc: evil@example.com\"\nname = \"张三\"\n",
    );
    for run in refuse(&site) {
        assert_problem(&run, "subscribers.toml", &[1, 2], "email", &[]);
    }
}

#[test]
fn an_invalid_address_is_refused() {
    let site = site();
    site.write(
        "subscribers.toml",
        "[[subscribers]]\nemail = \"ok@example.com\"\n\n[[subscribers]]\nemail = \"not an address\"\n",
    );
    for run in refuse(&site) {
        assert_problem(
            &run,
            "subscribers.toml",
            &[4, 5],
            "email",
            &["not an address"],
        );
    }
}

#[test]
fn a_missing_address_is_refused() {
    let site = site();
    site.write("subscribers.toml", "[[subscribers]]\nname = \"无地址\"\n");
    for run in refuse(&site) {
        assert_problem(&run, "subscribers.toml", &[1, 2], "email", &[]);
    }
}

#[test]
fn a_duplicate_address_names_both_places() {
    let site = site();
    site.write(
        "subscribers.toml",
        "[[subscribers]]\nemail = \"reader@example.com\"\n\n[[subscribers]]\nemail = \"other@example.com\"\n\n[[subscribers]]\nemail = \"Reader@EXAMPLE.com\"\n",
    );
    for run in refuse(&site) {
        let line = assert_problem(&run, "subscribers.toml", &[7, 8], "email", &[]);
        assert!(
            line.contains("subscribers.toml:1:") || line.contains("subscribers.toml:2:"),
            "the message does not name the first place: {line}"
        );
    }
}

#[test]
fn an_unknown_section_is_refused() {
    let site = site();
    site.write(
        "subscribers.toml",
        "[[subscribers]]\nemail = \"reader@example.com\"\nsections = [\"news\", \"sport\"]\n",
    );
    for run in refuse(&site) {
        assert_problem(
            &run,
            "subscribers.toml",
            &[1, 3],
            "sections",
            &["\"sport\""],
        );
    }
}

#[test]
fn an_unknown_field_is_refused() {
    let site = site();
    site.write(
        "subscribers.toml",
        "[[subscribers]]\nemail = \"reader@example.com\"\nsection = [\"news\"]\n",
    );
    for run in refuse(&site) {
        run.assert_code(1)
            .assert_stderr_has(&["subscribers.toml", "section"]);
    }
}

#[test]
fn every_problem_is_listed_not_only_the_first() {
    let site = site();
    site.write(
        "subscribers.toml",
        "[[subscribers]]\nemail = \"bad\"\n\n[[subscribers]]\nemail = \"ok@example.com\"\nsections = [\"nope\"]\n",
    );
    let run = site.check();
    assert_problem(&run, "subscribers.toml", &[1, 2], "email", &["\"bad\""]);
    assert_problem(&run, "subscribers.toml", &[4, 6], "sections", &["\"nope\""]);
}

#[test]
fn a_json_array_of_subscribers_works() {
    let site = site();
    site.edit("feeds.toml", |c| {
        c.replace(
            "subscribers = \"subscribers.toml\"",
            "subscribers = \"subscribers.json\"",
        )
    });
    site.write(
        "subscribers.json",
        r#"[
  {"email": "all@example.com", "name": "全部读者"},
  {"email": "fin@example.com", "name": "财经读者", "sections": ["finance"]},
  {"email": "anon@example.com"}
]
"#,
    );
    site.check().assert_success();
    let run = site.dry_run("out").ok();
    assert_eq!(run.emls().len(), 3);
    let all = run.email("all@example.com");
    assert_eq!(all.to[0].0.as_deref(), Some("全部读者"));
    assert_eq!(run.listing("all@example.com").item_ids(), ["n", "f"]);
    assert_eq!(run.listing("fin@example.com").item_ids(), ["f"]);
    let anon = run.email("anon@example.com");
    assert_eq!(anon.to, [(None, "anon@example.com".to_owned())]);
}

#[test]
fn a_line_break_in_a_json_subscriber_is_refused_with_its_line() {
    let site = site();
    site.edit("feeds.toml", |c| {
        c.replace(
            "subscribers = \"subscribers.toml\"",
            "subscribers = \"subscribers.json\"",
        )
    });
    site.write(
        "subscribers.json",
        "[\n  {\"email\": \"ok@example.com\"},\n  {\"email\": \"x@example.com\", \"name\": \"王\\n五\"}\n]\n",
    );
    for run in refuse(&site) {
        assert_problem(&run, "subscribers.json", &[3], "name", &[]);
    }
}

#[test]
fn a_json_subscriber_file_that_is_not_an_array_is_refused() {
    let site = site();
    site.edit("feeds.toml", |c| {
        c.replace(
            "subscribers = \"subscribers.toml\"",
            "subscribers = \"subscribers.json\"",
        )
    });
    site.write("subscribers.json", "{\"email\": \"a@example.com\"}\n");
    for run in refuse(&site) {
        run.assert_code(1).assert_stderr_has(&["subscribers.json"]);
    }
}

/// Mail headers are ASCII (RFC 5322; UTF-8 headers need SMTPUTF8, which the
/// sender does not negotiate). An address with an internationalised domain
/// must be written in its ASCII form (`xn--…`) or refused by validation.
#[test]
fn an_internationalised_domain_never_makes_a_non_ascii_header() {
    let site = Small::new()
        .article(A::new("n", "news", &at(-1.0)))
        .subscriber("li@例子.中国", "李", None)
        .build();
    let run = site.dry_run("out");
    if run.run.code == Some(1) {
        run.run.assert_stderr_has(&["例子.中国"]);
        return;
    }
    run.run.assert_success();
    let emls = run.emls();
    assert_eq!(emls.len(), 1);
    for (name, raw) in emls {
        let email = crate::support::Email::parse(raw);
        for line in email.raw_headers().split("\r\n") {
            assert!(
                line.is_ascii(),
                "{name}: a header line is not ASCII: {line:?}"
            );
        }
    }
}
