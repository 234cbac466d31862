//! How problems read: the `error:` line (unchanged, see `check.rs`), then
//! the offending source line with a caret under the column and, for a
//! misspelled name, a did-you-mean hint. Colour only on a terminal.

use serde_json::json;

use crate::support::{Run, Site, article};

/// serde's list of the record fields, as the unknown-field message gives it.
const EXPECTED_FIELDS: &str = "expected one of `id`, `title`, `section`, `url`, `published`, `updated`, \
     `author`, `editor`, `source`, `keywords`, `summary`, `content_html`, `image`, `related`, `views`";

/// `bulletin ARGS` in the site's folder (no colour variable but `env`),
/// its stderr with paths relative to the site.
fn run(site: &Site, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = site.cmd(args);
    for (key, value) in env {
        cmd = cmd.env(key, value);
    }
    let mut run = cmd.run();
    run.stderr = run.stderr_rel();
    run
}

/// `bulletin check` with NO_COLOR=1: must fail, and print exactly `stderr`.
#[track_caller]
fn assert_check_says(site: &Site, stderr: &str) {
    let run = run(site, &["check"], &[("NO_COLOR", "1")]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.stderr, stderr);
}

#[test]
fn a_toml_mistake_shows_the_line_a_caret_and_a_hint() {
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
    assert_check_says(
        &site,
        &format!(
            "\
error: ./articles/typo.toml:4:1: sectoin: unknown field `sectoin`, {EXPECTED_FIELDS}
  |
4 | sectoin = \"news\"
  | ^
  = help: did you mean `section`?

bulletin: 1 problem found; nothing was written or sent
"
        ),
    );
}

#[test]
fn a_json_mistake_shows_the_line_a_caret_and_a_hint() {
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
    assert_check_says(
        &site,
        &format!(
            "\
error: ./articles/typo.json:8:12: auther: unknown field `auther`, {EXPECTED_FIELDS}
  |
8 |     \"auther\": \"杜鹃花\"
  |            ^
  = help: did you mean `author`?

bulletin: 1 problem found; nothing was written or sent
"
        ),
    );
}

#[test]
fn the_caret_counts_wide_characters_and_tabs() {
    let site = Site::new();
    // `x` is the 15th character, but a terminal draws 标 and 题 two cells wide.
    site.write("articles/a.toml", "[[articles]]\ntitle = \"标题\" x\n");
    site.write("articles/b.toml", "[[articles]]\nid =\t\"t1\n");
    assert_check_says(
        &site,
        "\
error: ./articles/a.toml:2:14: unexpected key or value, expected newline, `#`
  |
2 | title = \"标题\" x
  |                ^

error: ./articles/b.toml:2:9: invalid basic string, expected `\"`
  |
2 | id =    \"t1
  |            ^

bulletin: 2 problems found; nothing was written or sent
",
    );
}

#[test]
fn an_unknown_section_suggests_a_declared_one_or_lists_them() {
    let site = Site::new();
    site.write(
        "articles/wire.jsonl",
        r#"{"id": "s1", "section": "nwes", "title": "一", "url": "/s1.html", "published": "2017-03-23"}
{"id": "s2", "section": "world", "title": "二", "url": "/s2.html", "published": "2017-03-23"}
"#,
    );
    assert_check_says(
        &site,
        r#"error: ./articles/wire.jsonl:1:14: section: "nwes" is not a section declared in the config
  |
1 | {"id": "s1", "section": "nwes", "title": "一", "url": "/s1.html", "published": "2017-03-23"}
  |              ^
  = help: did you mean `news`?

error: ./articles/wire.jsonl:2:14: section: "world" is not a section declared in the config
  |
2 | {"id": "s2", "section": "world", "title": "二", "url": "/s2.html", "published": "2017-03-23"}
  |              ^
  = help: the declared sections are `news`, `yushi`, `tech`

bulletin: 2 problems found; nothing was written or sent
"#,
    );
}

#[test]
fn a_misspelled_config_value_gets_a_hint_too() {
    let site = Site::new();
    site.append_config("[output]\nformats = [\"rss\", \"atmo\"]\n");
    let run = run(&site, &["check"], &[("NO_COLOR", "1")]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.ends_with(
            "\
   |
27 | formats = [\"rss\", \"atmo\"]
   | ^
   = help: did you mean `atom`?

bulletin: 1 problem found; nothing was written or sent
"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_problem_without_a_line_is_only_its_error_line() {
    let site = Site::new();
    let run = run(&site, &["check", "--config", "nope.toml"], &[]);
    assert_eq!(
        run.stderr,
        "error: nope.toml: cannot read the config: No such file or directory (os error 2)\n\
         bulletin: 1 problem found; nothing was written or sent\n"
    );
}

/// A site with a mistake in a record.
fn messy_site() -> Site {
    let site = Site::new();
    site.write(
        "articles/typo.toml",
        "[[articles]]\nid = \"t1\"\ntitle = \"x\"\nsectoin = \"news\"\n",
    );
    site
}

#[test]
fn no_colour_codes_when_stderr_is_not_a_terminal() {
    let site = messy_site();
    for (args, env) in [
        (&["check"][..], &[("TERM", "xterm-256color")][..]),
        (&["check"], &[("CLICOLOR", "1")]),
        (&["check"], &[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]),
        (&["build", "--nope"], &[("TERM", "xterm-256color")]),
        (&["check", "--config", "nope.toml"], &[]),
    ] {
        let run = run(&site, args, env);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.is_empty());
        assert!(
            !run.stderr.contains('\u{1b}') && !run.stdout.contains('\u{1b}'),
            "{args:?} {env:?}: {:?}",
            run.stderr
        );
    }
    // The colours are there for a terminal (forced here).
    let run = run(&site, &["check"], &[("CLICOLOR_FORCE", "1")]);
    assert!(
        run.stderr.starts_with("\u{1b}[1m\u{1b}[31merror\u{1b}[0m: \u{1b}[1m./articles/typo.toml:4:1\u{1b}[0m: sectoin: "),
        "{:?}",
        run.stderr
    );
}

/// A started site (`bulletin init`) with one more article, in the digest
/// window of [`LATER`], whose related reads name an id that does not exist.
fn site_with_a_warning() -> Site {
    // The starter's unsubscribe link needs the secret.
    let site = Site::new().with_secret();
    std::fs::remove_file(site.config_path()).unwrap();
    std::fs::remove_dir(site.path("articles")).unwrap();
    let init = run(&site, &["init", "."], &[]);
    assert_eq!(init.code, Some(0), "{}", init.stderr);
    let mut record = article("later", "news", "2029-12-31T12:00:00Z");
    record["related"] = json!(["ghost-9"]);
    site.write_json("articles/later.json", &[record]);
    site
}

const LATER: &str = "2030-01-01T00:00:00Z";

#[test]
fn warnings_go_to_stderr_and_q_keeps_only_errors() {
    let site = site_with_a_warning();
    let dry_run = ["digest", "--dry-run", "out", "--now", LATER];
    let normal = run(&site, &dry_run, &[]);
    assert_eq!(normal.code, Some(0), "{}", normal.stderr);
    assert_eq!(
        normal.stderr,
        "warning: article \"later\" lists related id \"ghost-9\", which is not an article; skipped\n"
    );
    assert!(
        normal.stdout.starts_with("dry run of digest 2030-01-01: "),
        "{}",
        normal.stdout
    );

    let quiet = run(
        &site,
        &[
            "-q", dry_run[0], dry_run[1], dry_run[2], dry_run[3], dry_run[4],
        ],
        &[],
    );
    assert_eq!(quiet.code, Some(0), "{}", quiet.stderr);
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""));

    // -v adds detail (each file built) on stderr; the summary stays on stdout.
    let verbose = run(&site, &["-v", "build", "--now", LATER], &[]);
    assert_eq!(verbose.code, Some(0), "{}", verbose.stderr);
    assert!(
        verbose.stderr.lines().any(|l| l
            == format!(
                "./public/feeds/rss.xml ({} bytes)",
                std::fs::metadata(site.path("public/feeds/rss.xml"))
                    .unwrap()
                    .len()
            )),
        "{}",
        verbose.stderr
    );
    assert!(verbose.stdout.starts_with("built "), "{}", verbose.stdout);
    let quiet = run(&site, &["-q", "build", "--now", LATER], &[]);
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""));
}
