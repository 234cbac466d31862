//! Feed text hygiene that fuzzing broke: whatever a record holds, every
//! RSS and Atom document is well-formed XML 1.0 and carries valid times.

use std::fs;

use serde_json::json;

use crate::support::Site;

/// Every feed of the site parses in roxmltree (strict XML 1.0 characters).
#[track_caller]
fn assert_feeds_well_formed(site: &Site) {
    for feed in [
        "rss.xml",
        "atom.xml",
        "news/rss.xml",
        "news/atom.xml",
        "index.opml",
    ] {
        let path = site.path(&format!("public/feeds/{feed}"));
        let text = fs::read_to_string(&path).unwrap();
        if let Err(e) = roxmltree::Document::parse(&text) {
            panic!("{feed} is not well-formed XML: {e}\n{text}");
        }
    }
    let json = fs::read(site.path("public/feeds/feed.json")).unwrap();
    serde_json::from_slice::<serde_json::Value>(&json).expect("feed.json is JSON");
}

#[test]
fn numeric_character_references_never_put_forbidden_characters_in_feeds() {
    // Regression (fuzz: text_hygiene; fixed in 8a2d3b8): `text::HtmlCleaner::clean` runs
    // `strip_unsafe` on the HTML *before* ammonia, which then decodes
    // character references: `&#1;`, `&#xB;`, `&#xFFFE;`, `&#xFDD0;` come
    // out as raw U+0001, U+000B, U+FFFE, U+FDD0 in content:encoded and Atom
    // content (attributes too: `title="&#2;"`), which XML 1.0 forbids even in
    // CDATA: rss.xml and atom.xml are not well-formed and strict readers
    // drop the whole feed. Stripping after cleaning (as well) fixes it.
    let site = Site::with_digest();
    site.write_jsonl(
        "articles/a.jsonl",
        &[json!({
            "id": "a1", "title": "t", "section": "news", "url": "/news/a1.html",
            "published": "2017-03-24 10:00",
            "content_html": "<p>a&#1;b&#xB;c&#xFFFE;d&#xFDD0;e&#65535;f<a title=\"&#2;\" href=\"/x\">x</a></p>",
        })],
    );
    site.build().assert_success();
    assert_feeds_well_formed(&site);
    let rss = fs::read_to_string(site.path("public/feeds/rss.xml")).unwrap();
    assert!(
        rss.contains("abcdef"),
        "the text around the references is kept:\n{rss}"
    );
}

/// Raw control characters and non-characters in every field.
#[test]
fn raw_forbidden_characters_in_every_field_never_reach_the_feeds() {
    let bad = "\u{1}\u{b}\u{c}\u{1b}\u{7f}\u{85}\u{9f}\u{fdd0}\u{fffe}\u{ffff}";
    let site = Site::with_digest();
    site.write_jsonl(
        "articles/a.jsonl",
        &[json!({
            "id": format!("id{bad}"), "title": format!("title{bad}"), "section": "news",
            "url": "/news/a1.html", "published": "2017-03-24 10:00",
            "author": format!("author{bad}"), "editor": format!("editor{bad}"),
            "source": format!("source{bad}"), "keywords": format!("k1{bad};k2"),
            "summary": format!("summary{bad}"),
            "content_html": format!("<p title=\"t{bad}\">body{bad}</p>"),
            "image": "/i.jpg", "related": [format!("r{bad}")],
        })],
    );
    site.build().assert_success();
    assert_feeds_well_formed(&site);
}

#[test]
fn a_leap_second_never_reaches_the_feeds_as_second_60() {
    // Regression (fuzz: keywords_dates; fixed in 8a2d3b8): chrono's `%S` and RFC 3339 parser accept
    // second 60 at any minute, so "2017-03-23 11:03:60" is kept as a leap
    // second and written as `11:03:60` in pubDate, <updated>, <published>
    // and JSON Feed dates: RFC 3339 allows 60 only for a real leap second
    // (23:59:60 UTC), and readers' date parsers (Python's datetime, which
    // feedparser uses) refuse it. Refuse it at load, or write it as :59.
    let site = Site::with_digest();
    site.write_jsonl(
        "articles/a.jsonl",
        &[json!({
            "id": "a1", "title": "t", "section": "news", "url": "/news/a1.html",
            "published": "2017-03-23 11:03:60",
        })],
    );
    let run = site.build();
    if run.code == Some(1) {
        run.assert_code(1).assert_stderr_has(&["published"]);
        return;
    }
    run.assert_success();
    for feed in ["rss.xml", "atom.xml", "feed.json"] {
        let text = fs::read_to_string(site.path(&format!("public/feeds/{feed}"))).unwrap();
        assert!(!text.contains(":60"), "{feed} carries second 60:\n{text}");
    }
}
