//! Text hygiene for feed content: `strip_unsafe`, `one_line` (and the fast
//! `is_one_line` agreeing with it), the HTML cleaner with URL
//! absolutisation, and the feeds built from the cleaned text with the `rss`
//! and `atom_syndication` crates parsing in a strict XML parser (roxmltree).
//!
//! Input: a structured record (libFuzzer's `arbitrary`), sent through the
//! real record path (JSON → RawRecord → check → Article) into the feeds.

#![no_main]

use std::borrow::Cow;

use bulletin_fuzz::load::record::{JsonText, RawRecord, RecordContext};
use bulletin_fuzz::model::Subscriber;
use bulletin_fuzz::{checks, text};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    zone: u8,
    id: String,
    title: String,
    url: String,
    author: Option<String>,
    editor: Option<String>,
    source: Option<String>,
    keyword_line: Option<String>,
    keyword_list: Vec<String>,
    summary: Option<String>,
    content_html: Option<String>,
    image: Option<String>,
    subscriber_name: Option<String>,
}

/// Schemes a cleaned link or source may use.
const SCHEMES: [&str; 3] = ["http", "https", "mailto"];

/// Attributes that hold a URL in what the cleaner lets through.
const URL_ATTRIBUTES: [&str; 5] = ["href", "src", "cite", "longdesc", "action"];

/// Elements that must never survive cleaning.
const FORBIDDEN: [&str; 12] = [
    "script", "iframe", "style", "object", "embed", "form", "input", "link", "meta", "base",
    "frame", "svg",
];

fn check_text_functions(s: &str) {
    let stripped = text::strip_unsafe(s);
    assert!(!stripped.chars().any(text::is_unsafe_char), "{stripped:?}");
    assert_eq!(
        matches!(stripped, Cow::Borrowed(_)),
        !s.chars().any(text::is_unsafe_char)
    );
    assert_eq!(text::strip_unsafe(&stripped), stripped);

    let line = text::one_line(s);
    assert!(
        text::is_one_line(&line),
        "one_line({s:?}) = {line:?} is not one line"
    );
    assert_eq!(text::one_line(&line), line, "one_line is not idempotent");
    assert!(
        !line
            .chars()
            .any(|c| (c.is_whitespace() && c != ' ') || text::is_unsafe_char(c)),
        "{line:?}"
    );
    assert!(!line.starts_with(' ') && !line.ends_with(' ') && !line.contains("  "));
    assert_eq!(
        text::is_one_line(s),
        line == s,
        "is_one_line disagrees with one_line on {s:?}"
    );

    let plain = text::plain_title(s);
    if s.contains(['<', '&']) {
        assert!(text::is_one_line(&plain), "plain_title({s:?}) = {plain:?}");
    }
    assert!(text::is_one_line(&text::html_to_text(s)));

    for max in [0, 1, 5, 200] {
        let cut = text::truncate_chars(s, max);
        assert!(cut.chars().count() <= max + 1);
    }
    let (name, address) = text::split_mailbox(s);
    assert!(s.contains(name));
    if let Some(address) = address {
        assert!(address.contains('@') && s.contains(address));
    }
}

fn check_cleaner(html: &str, base: &url::Url) {
    let mut cleaner = text::HtmlCleaner::default();
    let clean = cleaner.clean(html, base);
    if !checks::skip_known() {
        assert!(!clean.chars().any(text::is_unsafe_char), "{clean:?}");
    }
    for tag in checks::html_tags(&clean) {
        assert!(
            !FORBIDDEN.contains(&tag.as_str()),
            "<{tag}> survived: {clean}"
        );
    }
    for (tag, name, value) in checks::html_attributes(&clean) {
        assert!(
            !name.starts_with("on"),
            "event handler {name} on <{tag}>: {clean}"
        );
        assert_ne!(name, "style", "style attribute on <{tag}>: {clean}");
        if URL_ATTRIBUTES.contains(&name.as_str()) {
            let url = url::Url::parse(&value).unwrap_or_else(|e| {
                panic!("{tag} {name}={value:?} is not absolute ({e}): {clean}")
            });
            assert!(
                SCHEMES.contains(&url.scheme()),
                "{tag} {name}={value:?}: scheme {}",
                url.scheme()
            );
        }
    }
    // The same cleaner gives the same result the second time (it is reused).
    assert_eq!(cleaner.clean(html, base), clean);
}

fuzz_target!(|input: Input| {
    for s in [&input.id, &input.title, &input.url]
        .into_iter()
        .chain(input.author.iter())
        .chain(input.keyword_line.iter())
        .chain(input.summary.iter())
        .chain(input.content_html.iter())
    {
        check_text_functions(s);
    }

    let zone = checks::ZONES[input.zone as usize % checks::ZONES.len()];
    let config = checks::config("unused.jsonl", zone);
    let site = &config.site;
    let base = bulletin_fuzz::load::record::web_url(&input.url, &site.base_url)
        .unwrap_or_else(|_| site.base_url.clone());
    if let Some(html) = &input.content_html {
        check_cleaner(html, &base);
    }

    // The record, as an exporter would write it.
    let section = ["news", "yushi", "tech"][input.zone as usize % 3];
    let mut record = serde_json::json!({
        "id": input.id,
        "title": input.title,
        "section": section,
        "url": input.url,
        "published": "2017-03-23T11:03:00+08:00",
    });
    let fields = [
        ("author", &input.author),
        ("editor", &input.editor),
        ("source", &input.source),
        ("summary", &input.summary),
        ("content_html", &input.content_html),
        ("image", &input.image),
    ];
    for (field, value) in fields {
        if let Some(value) = value {
            record[field] = value.clone().into();
        }
    }
    match &input.keyword_line {
        Some(line) => record["keywords"] = line.clone().into(),
        None => record["keywords"] = input.keyword_list.clone().into(),
    }
    let json = record.to_string();
    let Ok(raw) = serde_json::from_str::<RawRecord<'_, JsonText<'_>>>(&json) else {
        panic!("a record of strings deserializes: {json}");
    };
    let section_exists = |id: &str| site.section(id).is_some();
    let cx = RecordContext {
        base_url: &site.base_url,
        zone: site.zone,
        section_exists: &section_exists,
    };
    let Ok(checked) = raw.check(&cx) else {
        return;
    };
    let article = checked.into_article(&cx, true);
    checks::check_article(&article);
    if checks::skip_known() && checks::known_entity_leak(&article) {
        return;
    }
    let subscriber = Subscriber {
        email: "reader@example.com".into(),
        name: input
            .subscriber_name
            .filter(|n| !n.trim().is_empty() && !n.chars().any(char::is_control))
            .map(|n| n.trim().to_owned()),
        sections: None,
        left: None,
    };
    checks::check_digest(&config, &article, &subscriber);
    checks::render_and_check(&config, vec![article]);
});
