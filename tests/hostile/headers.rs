//! Header injection: control characters (CR/LF above all) in anything that
//! reaches a mail header are refused when the input is loaded, with a clear
//! error, exit 1, and nothing written or sent.

use crate::support::Site;

/// Control characters a header must never carry, as TOML escapes, and how
/// the error message shows them (Rust's `{:?}`).
const CONTROLS: [(&str, &str); 9] = [
    ("\\r\\nBcc: evil@example.com", "\\r\\nBcc: evil@example.com"),
    ("\\nBcc: evil@example.com", "\\nBcc: evil@example.com"),
    ("\\rBcc: evil@example.com", "\\rBcc: evil@example.com"),
    ("\\u0000", "\\0"),
    ("\\u001b[2J", "\\u{1b}[2J"),
    ("\\u0085", "\\u{85}"),
    ("\\u007f", "\\u{7f}"),
    ("\\t", "\\t"),
    ("\\u000b", "\\u{b}"),
];

/// `digest --dry-run`, `digest --send` and `check` all refuse the site with
/// exactly `line` among their errors; nothing is written or sent.
#[track_caller]
fn refused_everywhere(site: &Site, line: &str) {
    for args in [
        &["digest", "--dry-run", "out", "--now", crate::support::NOW][..],
        &["digest", "--send", "--now", crate::support::NOW][..],
        &["check"][..],
    ] {
        let run = site.run(args);
        run.assert_code(1);
        assert!(
            run.stderr.lines().any(|l| l == line),
            "{args:?}: no line {line:?}\n{run}"
        );
        run.assert_stderr_has(&["nothing was written or sent"]);
    }
    assert!(!site.path("out").exists(), "the dry run wrote its folder");
    assert!(site.sent().is_empty(), "something was sent");
    assert!(
        !site.path("state/state.sqlite").exists(),
        "the state database was created"
    );
}

#[test]
fn control_characters_in_a_subscriber_name_are_refused() {
    for (escaped, shown) in CONTROLS {
        let site = Site::with_digest();
        site.write(
            "subscribers.toml",
            format!("[[subscribers]]\nemail = \"reader@example.com\"\nname = \"Alice{escaped}\"\n"),
        );
        refused_everywhere(
            &site,
            &format!(
                "error: ./subscribers.toml:1:1: name: \"Alice{shown}\" contains a control \
                 character (line breaks are not allowed in mail headers)"
            ),
        );
    }
}

#[test]
fn control_characters_in_a_subscriber_address_are_refused() {
    for (escaped, shown) in CONTROLS {
        let site = Site::with_digest();
        site.write(
            "subscribers.toml",
            format!(
                "[[subscribers]]\nemail = \"ok@example.com\"\n\n[[subscribers]]\nemail = \"reader@example.com{escaped}\"\n"
            ),
        );
        refused_everywhere(
            &site,
            &format!(
                "error: ./subscribers.toml:4:1: email: \"reader@example.com{shown}\" contains a \
                 control character (line breaks are not allowed in mail headers)"
            ),
        );
    }
}

#[test]
fn control_characters_in_a_json_subscriber_are_refused() {
    let site = Site::with_digest();
    site.edit_config("subscribers.toml", "subscribers.json");
    site.write(
        "subscribers.json",
        r#"[
  {"email": "ok@example.com"},
  {"email": "reader@example.com", "name": "Mallory\r\nBcc: evil@example.com"}
]"#,
    );
    refused_everywhere(
        &site,
        "error: ./subscribers.json:3:3: name: \"Mallory\\r\\nBcc: evil@example.com\" contains a \
         control character (line breaks are not allowed in mail headers)",
    );
}

#[test]
fn a_line_break_in_the_subject_template_is_refused() {
    // Regression (fixed in 0f5ff0e): the subject template is not checked for control characters the
    // way site and section titles are; the rendered subject is folded onto
    // one line instead ("测试站 Bcc: evil@example.com" in the Subject), so
    // nothing is injected, but a CR/LF that reaches a mail header must be
    // refused at load with a clear error (see the README's subscriber rule).
    let site = Site::with_digest();
    site.edit_config(
        "subject = \"{{site.title}} · {{date}} 要闻\"",
        "subject = \"{{site.title}}\\r\\nBcc: evil@example.com\"",
    );
    for args in [
        &["check"][..],
        &["digest", "--dry-run", "out", "--now", crate::support::NOW][..],
    ] {
        let run = site.run(args);
        run.assert_code(1)
            .assert_stderr_has(&["digest.subject", "control character"]);
    }
    assert!(!site.path("out").exists());
}

#[test]
fn a_line_break_in_the_unsubscribe_url_is_refused() {
    // Regression (fixed in 0f5ff0e): `digest.unsubscribe_url` is validated with `Url::parse`, which
    // silently drops tabs and line breaks, so the raw text (with the CR/LF)
    // is accepted and used: List-Unsubscribe becomes RFC 2047 encoded words
    // inside `<...>` (a broken header, not an injection: lettre encodes it)
    // and the link in both bodies carries "\r\nBcc: evil@example.com".
    let site = Site::with_digest();
    site.edit_config(
        "unsubscribe_url = \"https://news.example.cn/unsubscribe?token={{token}}\"",
        "unsubscribe_url = \"https://news.example.cn/unsubscribe?token={{token}}\\r\\nBcc: evil@example.com\"",
    );
    let run = site.dry_run("out").run;
    run.assert_code(1)
        .assert_stderr_has(&["digest.unsubscribe_url"]);
    assert!(!site.path("out").exists());
}

#[test]
fn a_line_break_in_the_sender_is_refused() {
    let site = Site::with_digest();
    site.edit_config(
        "from = \"测试站 <digest@news.example.cn>\"",
        "from = \"测试站 <digest@news.example.cn>\\r\\nBcc: evil@example.com\"",
    );
    let run = site.dry_run("out").run;
    run.assert_code(1).assert_stderr_has(&["smtp.from: \"测试站 <digest@news.example.cn>\\r\\nBcc: evil@example.com\" is not a mailbox"]);
    assert!(!site.path("out").exists());
}

#[test]
fn a_line_break_in_the_site_or_a_section_title_is_refused() {
    for (from, to, key) in [
        (
            "title = \"测试站\"",
            "title = \"测试站\\r\\nBcc: evil@example.com\"",
            "site.title",
        ),
        (
            "title = \"科技\"",
            "title = \"科技\\nX: y\"",
            "sections[2].title",
        ),
    ] {
        let site = Site::with_digest();
        site.edit_config(from, to);
        let run = site.dry_run("out").run;
        run.assert_code(1)
            .assert_stderr_has(&[&format!("{key}: "), "contains a control character"]);
        assert!(!site.path("out").exists());
    }
}

/// Line breaks in article fields that a subject template shows are folded
/// (they are text, not headers): the message keeps exactly its own headers.
#[test]
fn article_fields_in_the_subject_never_add_a_header() {
    let site = Site::with_digest();
    site.edit_config(
        "subject = \"{{site.title}} · {{date}} 要闻\"",
        "subject = \"{{site.title}} {{#each sections}}{{#each items}}{{title}} {{author}} {{source}}{{/each}}{{/each}}\"",
    );
    let mut record = crate::support::digest_article("a1", "news");
    record["title"] = "标题\r\nBcc: evil@example.com".into();
    record["author"] = "作者\nX-Injected: 1".into();
    record["source"] = "来源\r\n\r\n<body>".into();
    site.write_jsonl("articles/a.jsonl", &[record]);
    let mail = site.dry_run("out").ok().only_email();
    assert_eq!(
        mail.subject,
        "测试站 标题 Bcc: evil@example.com 作者 X-Injected: 1 来源 <body>"
    );
    let names = mail.header_names();
    for forbidden in ["Bcc", "Cc", "X-Injected"] {
        assert!(
            !names.iter().any(|n| n.eq_ignore_ascii_case(forbidden)),
            "{forbidden} header injected:\n{}",
            mail.raw_headers()
        );
    }
}

/// Quotes, angle brackets, commas and encoded-word look-alikes in a name
/// are legal; they stay inside the display name of the one recipient.
#[test]
fn header_syntax_in_a_name_stays_inside_the_display_name() {
    for name in [
        "\"Eve\" <evil@example.com>, Bcc: x@example.com",
        "=?utf-8?q?evil=0D=0ABcc:_x@example.com?=",
        "a;b:c@d, <e>",
        "王\u{2028}秀英",
    ] {
        let site = Site::with_digest();
        let quoted = toml::Value::String(name.into()).to_string();
        site.write(
            "subscribers.toml",
            format!("[[subscribers]]\nemail = \"reader@example.com\"\nname = {quoted}\n"),
        );
        let mail = site.dry_run("out").ok().only_email();
        assert_eq!(
            mail.to,
            [(Some(name.to_owned()), "reader@example.com".to_owned())],
            "{name:?}:\n{}",
            mail.raw_headers()
        );
        let names = mail.header_names();
        assert!(
            !names.iter().any(|n| n.eq_ignore_ascii_case("bcc")),
            "{name:?}: Bcc injected"
        );
    }
}

/// An address `check` accepts must get its digest (or be refused by
/// `check` with its place): one subscriber never blocks everyone's digest.
#[test]
fn a_quoted_local_part_is_refused_at_load_or_delivered() {
    // Regression (fuzz: subscribers; fixed in 8a2d3b8): `"a b"@example.com` (a quoted local part,
    // valid in RFC 5321) passes `load_subscribers` (lettre::Address parses
    // it) and `check` ("no problems"), but lettre cannot build a message to
    // it: every `digest --dry-run` / `--send` then stops with "error: cannot
    // build the message: missing destination address, invalid envelope" —
    // no file, no line, no address — and nobody gets a digest.
    for address in ["\\\"a b\\\"@example.com", "\\\"G.........ve\\\"@x.co"] {
        let site = Site::with_digest();
        site.write(
            "subscribers.toml",
            format!(
                "[[subscribers]]\nemail = \"ok@example.com\"\n\n[[subscribers]]\nemail = \"{address}\"\n"
            ),
        );
        let check = site.run(&["check"]);
        if check.code == Some(1) {
            check
                .assert_code(1)
                .assert_stderr_has(&["subscribers.toml:4:1: email: "]);
            continue;
        }
        check.assert_success();
        site.dry_run("out").ok();
    }
}
