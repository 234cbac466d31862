//! Inputs that crashed or misled the binary (found by fuzzing and by
//! hand): each must end in a clear, single-line error or be handled —
//! never a panic, never raw control characters on the user's terminal.

use serde_json::json;

use crate::support::{Run, Site};

#[test]
fn a_year_outside_rfc_2822_is_an_error_not_a_panic() {
    // Regression (fuzz: load_records; fixed in 66253e0): chrono's `%Y` accepts signed and 5-digit
    // years, so "-0001-06-01 00:00" (or "+10000-01-01", or
    // "0000-01-01T00:00:00Z" in a site west of UTC) passes validation, and
    // `DateTime::to_rfc2822` panics in src/feed/rss.rs (pubDate /
    // lastBuildDate): "date cannot be represented by RFC 2822", exit 101.
    // Dates should be refused at load unless years 0..=9999 in the site's
    // timezone (or written without panicking).
    for (published, zone) in [
        ("-0001-06-01 00:00", "+08:00"),
        ("0000-01-01T00:00:00Z", "-05:00"),
        ("0000-01-01", "-05:00"),
    ] {
        let site = Site::with_digest();
        site.edit_config("timezone = \"+08:00\"", &format!("timezone = \"{zone}\""));
        site.write_jsonl(
            "articles/a.jsonl",
            &[json!({
                "id": "old", "title": "t", "section": "news", "url": "/old.html",
                "published": published,
            })],
        );
        let run = site.build();
        assert!(
            run.code == Some(1) || run.code == Some(0),
            "{published:?} in {zone}: exit {:?}\n{run}",
            run.code
        );
        run.assert_no_panic();
        if run.code == Some(1) {
            run.assert_stderr_has(&["published"]);
        }
    }
}

#[test]
fn a_digest_dated_before_year_zero_in_the_site_timezone_is_not_a_panic() {
    // Regression (fixed in 66253e0): the same panic from the digest: `--now 0000-01-01T00:00:00Z` in a
    // site west of UTC makes the message's Date header year -1;
    // src/digest/message.rs calls `to_rfc2822` on it. (With the built-in
    // templates the run stops earlier, blaming the template: "error:
    // (built-in template):9:3: format_date: "-0001-12-31T19:00:00-05:00" is
    // not an RFC 3339 time" — the data is at fault, not the template.)
    let site = Site::with_digest();
    site.edit_config("timezone = \"+08:00\"", "timezone = \"-05:00\"");
    site.write("digest.html.hbs", "<p>{{item_count}}</p>");
    site.write("digest.txt.hbs", "{{item_count}}");
    site.edit_config(
        "subscribers = \"subscribers.toml\"",
        "subscribers = \"subscribers.toml\"\nhtml = \"digest.html.hbs\"\ntext = \"digest.txt.hbs\"",
    );
    site.write_jsonl(
        "articles/a.jsonl",
        &[json!({
            "id": "old", "title": "t", "section": "news", "url": "/old.html",
            "published": "0000-01-01T00:00:00Z",
        })],
    );
    let run = site.run(&[
        "digest",
        "--dry-run",
        "out",
        "--now",
        "0000-01-01T00:00:00Z",
    ]);
    assert!(run.code == Some(0) || run.code == Some(1), "{run}");
    run.assert_no_panic();
}

/// `bulletin check` as on a terminal: colour forced (anstream strips
/// escape sequences only when it is not).
fn check_in_colour(site: &Site) -> Run {
    site.cmd(&["check"])
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .run()
}

/// JSON keys and TOML keys that hold control characters, and where they
/// end up in messages.
const KEYS: [(&str, &str); 2] = [
    ("ti\\u001b]0;pwned\\u0007\\u001b[2Jtle\\nnext", "json"),
    ("ti\\u001b]0;pwned\\u0007\\u001b[2Jtle\\nnext", "toml"),
];

#[test]
fn control_characters_in_an_unknown_key_never_reach_the_terminal() {
    // Regression (fixed in 66253e0): serde's "unknown field `…`" message quotes the key raw, so an
    // input key with ESC/BEL/LF (JSON "\u001b", TOML "\u001b") prints
    // terminal escape sequences (here: set the window title, clear the
    // screen) when stderr is a terminal (anstream strips them only when it is
    // not: reproduce with CLICOLOR_FORCE=1), and breaks the one-problem-
    // per-line format of `check` in every case. Keys should be shown escaped
    // ({:?}), as values already are.
    for (key, format) in KEYS {
        let site = Site::with_digest();
        match format {
            "json" => site.write(
                "articles/a.jsonl",
                format!(
                    "{{\"id\":\"a1\",\"title\":\"t\",\"section\":\"news\",\"url\":\"/a\",\"published\":\"2017-03-24 10:00\",\"{key}\":1}}\n"
                ),
            ),
            _ => site.write(
                "articles/a.jsonl",
                "",
            ).write(
                "articles/a.toml",
                format!(
                    "[[articles]]\nid = \"a1\"\ntitle = \"t\"\nsection = \"news\"\nurl = \"/a\"\npublished = \"2017-03-24 10:00\"\n\"{key}\" = 1\n"
                ),
            ),
        };
        for colour in [true, false] {
            let run = if colour {
                check_in_colour(&site)
            } else {
                site.run(&["check"])
            };
            run.assert_code(1);
            for raw in ["\u{1b}]", "\u{7}", "\u{1b}[2J"] {
                assert!(
                    !run.stderr.contains(raw),
                    "{format}, colour {colour}: raw {raw:?} on stderr"
                );
            }
            let line = run.error_line();
            assert!(
                line.contains("unknown field") && line.contains("expected one of"),
                "{format}: the message is not on one line: {line:?}\n{run}"
            );
        }
    }
}

/// Values are shown escaped: control characters in a bad value do not
/// reach the terminal either.
#[test]
fn control_characters_in_a_bad_value_are_shown_escaped() {
    let site = Site::with_digest();
    site.write_jsonl(
        "articles/a.jsonl",
        &[json!({
            "id": "a1", "title": "t", "section": "news\u{1b}]0;pwned\u{7}", "url": "/a",
            "published": "2017-03-24\u{1b}[2J 10:00",
        })],
    );
    let run = check_in_colour(&site);
    run.assert_code(1);
    for raw in ["\u{1b}]", "\u{7}", "\u{1b}[2J"] {
        assert!(!run.stderr.contains(raw), "raw {raw:?} on stderr:\n{run}");
    }
}

/// `bulletin check 2>&1 | head -1` closes the pipe early: the write fails
/// with EPIPE, which must end the run like the errors it reports, not in a
/// panic (exit 101).
#[test]
fn a_closed_output_pipe_is_not_a_panic() {
    // Regression (fixed in 66253e0): Rust ignores SIGPIPE, so `eprintln!`/`println!` panic ("failed
    // printing to stderr: Broken pipe") when the reader is gone: exit 101.
    let site = Site::with_digest();
    site.write_jsonl(
        "articles/a.jsonl",
        &[json!({"id": "a1", "title": "t", "section": "nope", "url": "/a", "published": "2017-03-24 10:00"})],
    );
    for (args, code) in [
        (&["check"][..], 1),
        (&["build", "--now", "2017-03-25T08:00:00+08:00"][..], 1),
    ] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let status = site
            .cmd(args)
            .into_command()
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .status()
            .expect("run bulletin");
        assert_eq!(status.code(), Some(code), "{args:?}: {status}");
    }
}

/// File names are input too (an export dropped into the articles folder):
/// a name with escape sequences is shown escaped in messages.
#[test]
fn control_characters_in_an_input_file_name_never_reach_the_terminal() {
    // Regression: problems printed their file with `Path::display`, raw: a
    // record file named "x\e]0;pwned\ay.jsonl" set the terminal's title
    // when stderr was a terminal. Paths are now shown escaped, like values.
    let site = Site::with_digest();
    site.write("articles/a.jsonl", "");
    site.write("articles/x\u{1b}]0;pwned\u{7}y.jsonl", "{\"id\":\"a\"}\n");
    let run = check_in_colour(&site);
    run.assert_code(1);
    for raw in ["\u{1b}]", "\u{7}"] {
        assert!(!run.stderr.contains(raw), "raw {raw:?} on stderr:\n{run}");
    }
}
