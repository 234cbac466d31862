//! `bulletin build`: what goes into which feed, how it is written, and that
//! every file reads back in strict and common parsers.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::cli::golden::build_example;
use crate::support::{
    DEFAULT_CONFIG, NOW, Site, Snapshot, age_files, article, check_strict_xml, child_text,
    elements, files_under, parse_feed, read, repo_root, strict_xml, xml_doc,
};

const RSS_NS: &str = "http://purl.org/rss/1.0/modules/content/";

/// The `<item>`s of an RSS document.
fn rss_items<'a, 'i>(doc: &'a roxmltree::Document<'i>) -> Vec<roxmltree::Node<'a, 'i>> {
    elements(doc, "item").collect()
}

/// guids of an RSS feed, in order.
fn rss_guids(site: &Site, rel: &str) -> Vec<String> {
    let text = site.read_out_text(rel);
    let doc = xml_doc(&text);
    rss_items(&doc)
        .iter()
        .map(|i| child_text(*i, "guid").unwrap_or_default().to_owned())
        .collect()
}

/// Every `href="…"` and `src="…"` value inside an HTML fragment.
fn html_links(html: &str) -> Vec<String> {
    let mut links = Vec::new();
    for attr in ["href=", "src="] {
        for (at, _) in html.match_indices(attr) {
            let rest = &html[at + attr.len()..];
            let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                links.push(rest.split_whitespace().next().unwrap_or("").to_owned());
                continue;
            };
            let value = rest[1..].split(quote).next().unwrap_or("");
            links.push(value.to_owned());
        }
    }
    links
}

fn is_absolute(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://") || url.starts_with("mailto:")
}

/// The HTML strings a feed carries: RSS description and content:encoded,
/// Atom summary and content.
fn html_fields(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| {
            n.is_element()
                && matches!(
                    n.tag_name().name(),
                    "description" | "encoded" | "content" | "summary"
                )
        })
        .filter_map(|n| n.text().map(str::to_owned))
        .collect()
}

// ---- XML strictness --------------------------------------------------------

#[test]
fn strict_xml_rejects_characters_xml_forbids() {
    let good = "<?xml version=\"1.0\"?><rss><title>标题</title></rss>";
    strict_xml(good.as_bytes());
    for bad in ['\u{B}', '\u{FFFE}', '\u{0}', '\u{1B}'] {
        let doc = format!("<?xml version=\"1.0\"?><rss><title>标{bad}题</title></rss>");
        assert!(
            check_strict_xml(doc.as_bytes()).is_err(),
            "{bad:?} was accepted"
        );
        let panicked = std::panic::catch_unwind(|| strict_xml(doc.as_bytes())).is_err();
        assert!(panicked, "strict_xml did not fail on {bad:?}");
    }
    // feed-rs alone is not enough: it takes the vertical tab.
    let rss = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>a\u{B}b</title><link>https://x/</link>\
               <description>d</description></channel></rss>";
    assert!(
        feed_rs::parser::parse(rss.as_bytes()).is_ok(),
        "feed-rs became strict; keep strict_xml anyway"
    );
    assert!(check_strict_xml(rss.as_bytes()).is_err());
    // Nor is a document that does not start with the declaration.
    assert!(check_strict_xml(b"\n<?xml version=\"1.0\"?><a/>").is_err());
}

#[test]
fn control_characters_in_records_never_reach_the_feeds() {
    let site = Site::new();
    site.append_config("[output]\nformats = [\"rss\", \"atom\", \"json\"]\n");
    let mut dirty = article("ctl-1", "yushi", "2017-03-23 11:03");
    dirty["title"] = json!("标\u{B}题\u{FFFE}");
    dirty["author"] = json!("杜\u{B}鹃花");
    dirty["source"] = json!("映\u{FFFE}象网");
    dirty["editor"] = json!("张\u{1}释文");
    dirty["summary"] = json!("摘\u{B}要\u{FFFE}");
    dirty["keywords"] = json!("基层\u{B}干部；群众\u{FFFE}呼声");
    dirty["content_html"] = json!("<p>正\u{B}文\u{FFFE}</p><p>第二段\u{C}</p>");
    site.write_json("articles/dirty.json", &[dirty]);
    site.build().assert_success();
    site.assert_all_feeds_valid();
    for rel in site.out_files() {
        let text = site.read_out_text(&rel);
        assert!(
            !text.contains(['\u{B}', '\u{FFFE}', '\u{1}', '\u{C}']),
            "{rel} carries a forbidden character"
        );
    }
    for rel in [
        "feeds/yushi/rss.xml",
        "feeds/yushi/atom.xml",
        "feeds/news/rss.xml",
        "feeds/rss.xml",
    ] {
        let feed = site.feed(rel);
        assert_eq!(feed.entries.len(), 1, "{rel}");
        let title = feed.entries[0]
            .title
            .as_ref()
            .expect("a title")
            .content
            .clone();
        assert!(
            title.starts_with('标') && title.ends_with('题'),
            "{rel}: {title:?}"
        );
        let text = site.read_out_text(rel);
        assert!(
            text.contains("正文") && text.contains("摘要"),
            "{rel}: body or summary lost"
        );
    }
}

#[test]
fn control_characters_in_the_config_never_reach_the_feeds() {
    // A title pasted from a CMS with a stray control character: either the
    // config is refused (exit 1, nothing written) or the feeds stay strict.
    let config = DEFAULT_CONFIG
        .replace(r#"title = "新闻中心""#, r#"title = "新闻\u000B中心""#)
        .replace(
            r#"description = "测试用的新闻站""#,
            r#"description = "测试用的\uFFFE新闻站""#,
        );
    let site = Site::with_config(&config);
    site.write_json(
        "articles/a.json",
        &[article("n1", "news", "2017-03-23 11:03")],
    );
    let output = site.build();
    match output.code {
        Some(1) => {
            site.assert_nothing_written();
            assert!(output.stderr.contains("sections[0].title"), "{output:?}");
        }
        _ => {
            output.assert_success();
            for rel in site.out_files() {
                let bytes = site.read_out(&rel);
                if let Err(e) = check_strict_xml(&bytes) {
                    panic!(
                        "{rel} is not strict XML 1.0 ({e}): a control character in feeds.toml went into it"
                    );
                }
            }
        }
    }
}

// ---- the example site ------------------------------------------------------

/// Sections of the example site and their parents, from the repo's feeds.toml.
fn example_sections() -> Vec<(String, Option<String>)> {
    let text = std::fs::read_to_string(repo_root().join("feeds.toml")).unwrap();
    let config: toml::Table = toml::from_str(&text).unwrap();
    config["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let id = s["id"].as_str().unwrap().to_owned();
            let parent = s.get("parent").and_then(|p| p.as_str()).map(str::to_owned);
            (id, parent)
        })
        .collect()
}

/// Section of every example article, read straight from `examples/articles`.
fn example_article_sections() -> BTreeMap<String, String> {
    let dir = repo_root().join("examples/articles");
    let mut out = BTreeMap::new();
    for rel in files_under(&dir) {
        let text = std::fs::read_to_string(dir.join(&rel)).unwrap();
        let records: Vec<Value> = if rel.ends_with(".toml") {
            let table: toml::Table = toml::from_str(&text).unwrap();
            table["articles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| json!({"id": a["id"].as_str(), "section": a["section"].as_str()}))
                .collect()
        } else if rel.ends_with(".jsonl") || rel.ends_with(".ndjson") {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        } else if rel.ends_with(".json") {
            let v: Value = serde_json::from_str(&text).unwrap();
            match v {
                Value::Array(a) => a,
                Value::Object(mut o) => o.remove("articles").unwrap().as_array().unwrap().clone(),
                _ => panic!("{rel}"),
            }
        } else {
            continue;
        };
        for r in records {
            out.insert(
                r["id"].as_str().unwrap().to_owned(),
                r["section"].as_str().unwrap().to_owned(),
            );
        }
    }
    out
}

#[test]
#[allow(clippy::too_many_lines)] // one walk over every feed of the example, kept together
fn example_site_round_trips_through_strict_and_common_parsers() {
    let out = build_example();
    let out = out.path();
    let sections = example_sections();
    let articles = example_article_sections();
    assert!(
        articles.len() > 30,
        "the example corpus shrank: {}",
        articles.len()
    );
    let parent_of: BTreeMap<&str, Option<&str>> = sections
        .iter()
        .map(|(id, p)| (id.as_str(), p.as_deref()))
        .collect();
    // Articles per feed: a section's feed carries its descendants' items.
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    expected.insert("feeds".into(), articles.len().min(50));
    for (id, _) in &sections {
        let n = articles
            .values()
            .filter(|s| {
                let mut next = Some(s.as_str());
                while let Some(cur) = next {
                    if cur == id {
                        return true;
                    }
                    next = parent_of.get(cur).copied().flatten();
                }
                false
            })
            .count();
        expected.insert(format!("feeds/{id}"), n.min(50));
    }
    assert!(
        expected["feeds/news"] > expected["feeds/yushi"],
        "news must include yushi's items"
    );

    for (folder, count) in &expected {
        for file in ["rss.xml", "atom.xml", "feed.json"] {
            let rel = format!("{folder}/{file}");
            let bytes = read(&out.join(&rel));
            if file.ends_with(".xml") {
                strict_xml(&bytes);
            }
            let feed =
                feed_rs::parser::parse(bytes.as_slice()).unwrap_or_else(|e| panic!("{rel}: {e}"));
            assert_eq!(feed.entries.len(), *count, "{rel}");
        }
    }

    // The seed article, as RSS.
    let text = String::from_utf8(read(&out.join("feeds/yushi/rss.xml"))).unwrap();
    let doc = xml_doc(&text);
    let seed = rss_items(&doc)
        .into_iter()
        .find(|i| child_text(*i, "guid") == Some("hnr-20170323-5034"))
        .expect("the seed article is in feeds/yushi/rss.xml");
    assert_eq!(
        child_text(seed, "pubDate"),
        Some("Thu, 23 Mar 2017 11:03:00 +0800")
    );
    let guid = seed.children().find(|c| c.has_tag_name("guid")).unwrap();
    assert_eq!(guid.attribute("isPermaLink"), Some("false"));
    let creator = seed
        .children()
        .find(|c| {
            c.tag_name().name() == "creator"
                && c.tag_name().namespace() == Some("http://purl.org/dc/elements/1.1/")
        })
        .expect("dc:creator");
    assert_eq!(creator.text(), Some("杜鹃花"));
    let categories: Vec<&str> = seed
        .children()
        .filter(|c| c.has_tag_name("category"))
        .map(|c| c.text().unwrap_or(""))
        .collect();
    assert!(
        categories.contains(&"基层干部") && categories.contains(&"群众呼声"),
        "{categories:?}"
    );
    assert_eq!(
        child_text(seed, "link"),
        Some("https://news.example.cn/news/yushi/2017/0323/5034.html")
    );

    // Every XML feed: absolute ids and links, China time, no empty category.
    for rel in files_under(out).into_iter().filter(|r| r.ends_with(".xml")) {
        let text = String::from_utf8(read(&out.join(&rel))).unwrap();
        let doc = xml_doc(&text);
        let root = doc.root_element().tag_name().name();
        for c in elements(&doc, "category") {
            let value = c.text().or(c.attribute("term")).unwrap_or("");
            assert!(!value.trim().is_empty(), "{rel}: empty category");
        }
        if root == "rss" {
            for item in rss_items(&doc) {
                let guid = item
                    .children()
                    .find(|c| c.has_tag_name("guid"))
                    .expect("a guid");
                assert_eq!(guid.attribute("isPermaLink"), Some("false"), "{rel}");
                let date = child_text(item, "pubDate").expect("a pubDate");
                assert!(date.ends_with(" +0800"), "{rel}: {date}");
                assert!(child_text(item, "link").is_some_and(is_absolute), "{rel}");
            }
            let guids: Vec<_> = rss_items(&doc)
                .iter()
                .filter_map(|i| child_text(*i, "guid"))
                .collect();
            assert_eq!(
                guids.iter().collect::<HashSet<_>>().len(),
                guids.len(),
                "{rel}: repeated guid"
            );
        } else {
            assert_eq!(root, "feed", "{rel}");
            let feed_id = doc
                .root_element()
                .children()
                .find(|c| c.has_tag_name("id"))
                .and_then(|c| c.text());
            assert!(
                feed_id.is_some_and(is_absolute),
                "{rel}: feed id {feed_id:?}"
            );
            for entry in elements(&doc, "entry") {
                let id = child_text(entry, "id").unwrap_or("");
                assert!(id.starts_with("urn:uuid:"), "{rel}: entry id {id}");
            }
            for date in elements(&doc, "updated").chain(elements(&doc, "published")) {
                let value = date.text().unwrap_or("");
                assert!(value.ends_with("+08:00"), "{rel}: {value}");
            }
        }
        for node in doc.descendants().filter(|n| n.is_element()) {
            for attr in ["href", "url", "src"] {
                if let Some(v) = node.attribute(attr) {
                    assert!(
                        is_absolute(v),
                        "{rel}: {attr}={v:?} on <{}>",
                        node.tag_name().name()
                    );
                }
            }
        }
        for html in html_fields(&doc) {
            assert!(
                !html.contains("src=\"../") && !html.contains("href=\"/"),
                "{rel}: relative link in {html}"
            );
            for link in html_links(&html) {
                assert!(
                    is_absolute(&link),
                    "{rel}: relative link {link:?} in content"
                );
            }
        }
    }
    // The example's one relative image and link, made absolute.
    let news = String::from_utf8(read(&out.join("feeds/news/rss.xml"))).unwrap();
    assert!(
        news.contains(r#"src="https://news.example.cn/news/2017/img/photo.jpg""#),
        "relative image not resolved"
    );
    assert!(
        news.contains(r#"href="https://news.example.cn/news/2017/0301/1.html""#),
        "relative link not resolved"
    );
}

// ---- writing: determinism, atomicity --------------------------------------

fn three_section_site() -> Site {
    let site = Site::new();
    site.write_toml(
        "articles/news.toml",
        &[article("n1", "news", "2017-03-23 09:00")],
    );
    site.write_json(
        "articles/yushi.json",
        &[article("y1", "yushi", "2017-03-23 10:00")],
    );
    site.write_jsonl(
        "articles/tech.jsonl",
        &[article("t1", "tech", "2017-03-23 11:00")],
    );
    site
}

#[test]
fn building_twice_gives_the_same_bytes_and_touches_nothing() {
    let site = three_section_site();
    site.build().assert_success();
    let files = site.out_files();
    assert_eq!(
        files,
        [
            "feeds/atom.xml",
            "feeds/index.opml",
            "feeds/news/atom.xml",
            "feeds/news/rss.xml",
            "feeds/rss.xml",
            "feeds/tech/atom.xml",
            "feeds/tech/rss.xml",
            "feeds/yushi/atom.xml",
            "feeds/yushi/rss.xml",
        ]
    );
    site.assert_all_feeds_valid();
    age_files(&site.out_dir());
    let before = Snapshot::of(&site.out_dir());

    let second = site.build();
    second.assert_success();
    assert!(
        second.stdout.contains("(0 changed, 9 unchanged)"),
        "{second:?}"
    );
    assert_eq!(
        before.changed(&Snapshot::of(&site.out_dir())),
        Vec::<String>::new(),
        "bytes or mtimes changed"
    );

    // A build into another folder gives the same bytes.
    let other = site.path("other");
    site.cmd(&["build"])
        .config(&site.config_path())
        .out(&other)
        .args(["--now", NOW])
        .run()
        .assert_success();
    let again = Snapshot::of(&other);
    assert_eq!(again.paths(), before.paths());
    for rel in again.paths() {
        assert!(
            again.bytes(rel) == before.bytes(rel),
            "{rel} differs between two builds"
        );
    }
}

#[test]
fn changing_one_article_rewrites_only_the_feeds_that_carry_it() {
    let site = three_section_site();
    site.build().assert_success();
    age_files(&site.out_dir());
    let before = Snapshot::of(&site.out_dir());

    let mut y1 = article("y1", "yushi", "2017-03-23 10:00");
    y1["title"] = json!("改过的标题");
    site.write_json("articles/yushi.json", &[y1]);
    let output = site.build();
    output.assert_success();
    let after = Snapshot::of(&site.out_dir());
    assert_eq!(
        before.changed(&after),
        [
            "feeds/atom.xml",
            "feeds/news/atom.xml",
            "feeds/news/rss.xml",
            "feeds/rss.xml",
            "feeds/yushi/atom.xml",
            "feeds/yushi/rss.xml",
        ],
        "only the site feed, yushi's and its parent news's feeds should change"
    );
    assert!(
        output.stdout.contains("(6 changed, 3 unchanged)"),
        "{output:?}"
    );
    assert!(
        site.read_out_text("feeds/news/rss.xml")
            .contains("改过的标题")
    );
    site.assert_all_feeds_valid();

    // A change in tech leaves news and yushi alone.
    age_files(&site.out_dir());
    let before = Snapshot::of(&site.out_dir());
    let mut t1 = article("t1", "tech", "2017-03-23 11:00");
    t1["summary"] = json!("新的摘要");
    site.write_jsonl("articles/tech.jsonl", &[t1]);
    site.build().assert_success();
    assert_eq!(
        before.changed(&Snapshot::of(&site.out_dir())),
        [
            "feeds/atom.xml",
            "feeds/rss.xml",
            "feeds/tech/atom.xml",
            "feeds/tech/rss.xml"
        ]
    );
}

#[test]
fn a_failed_build_leaves_the_previous_feeds_untouched() {
    let site = three_section_site();
    site.build().assert_success();
    age_files(&site.out_dir());
    let before = Snapshot::of(&site.out_dir());

    let mut bad = article("bad", "news", "2017-03-23 12:00");
    bad["published"] = json!("2017-13-01");
    site.write_jsonl(
        "articles/zz-late.jsonl",
        &[article("ok", "news", "2017-03-24 08:00"), bad],
    );
    let output = site.build();
    output.assert_code(1);
    assert!(output.stderr.contains("nothing was written"), "{output:?}");
    assert_eq!(
        before.changed(&Snapshot::of(&site.out_dir())),
        Vec::<String>::new(),
        "a failed build changed the output folder"
    );
}

// ---- what goes into the feeds ----------------------------------------------

#[test]
fn an_article_dated_after_now_stays_out_until_its_time() {
    let site = Site::new();
    site.write_json(
        "articles/a.json",
        &[
            article("past", "yushi", "2017-03-23 10:00"),
            article("future", "yushi", "2017-03-26 09:00"),
        ],
    );
    site.build().assert_success();
    for rel in site.out_files() {
        let text = site.read_out_text(&rel);
        assert!(
            !text.contains("future") && !text.contains("标题 future"),
            "{rel} shows the scheduled article"
        );
        assert!(
            !text.contains("2017-03-26") && !text.contains("26 Mar 2017"),
            "{rel} mentions the future date"
        );
    }
    assert_eq!(rss_guids(&site, "feeds/yushi/rss.xml"), ["past"]);

    site.build_at("2017-03-26T08:59:59+08:00").assert_success();
    assert_eq!(rss_guids(&site, "feeds/rss.xml"), ["past"]);

    site.build_at("2017-03-26T09:00:00+08:00").assert_success();
    for rel in ["feeds/rss.xml", "feeds/news/rss.xml", "feeds/yushi/rss.xml"] {
        assert_eq!(rss_guids(&site, rel), ["future", "past"], "{rel}");
    }
    let atom = site.feed("feeds/yushi/atom.xml");
    assert_eq!(atom.entries.len(), 2);
    assert_eq!(
        atom.entries[0].title.as_ref().unwrap().content,
        "标题 future"
    );
    assert!(rss_guids(&site, "feeds/tech/rss.xml").is_empty());
}

#[test]
fn each_feed_holds_the_newest_items_newest_first_ties_by_id() {
    let site = Site::new();
    site.append_config("[output]\nitems = 2\n");
    site.write_json(
        "articles/a.json",
        &[
            article("n-old", "news", "2017-03-23 08:00"),
            article("n-mid", "news", "2017-03-23 09:00"),
            // Same minute, written out of id order.
            article("tie-b", "yushi", "2017-03-23 11:00"),
            article("tie-a", "yushi", "2017-03-23 11:00"),
            article("y-old", "yushi", "2017-03-22 11:00"),
        ],
    );
    site.write_jsonl(
        "articles/t.jsonl",
        &[
            article("t1", "tech", "2017-03-21 08:00"),
            article("t3", "tech", "2017-03-21 10:00"),
            article("t2", "tech", "2017-03-21 09:00"),
        ],
    );
    site.build().assert_success();
    assert_eq!(rss_guids(&site, "feeds/rss.xml"), ["tie-a", "tie-b"]);
    assert_eq!(rss_guids(&site, "feeds/news/rss.xml"), ["tie-a", "tie-b"]);
    assert_eq!(rss_guids(&site, "feeds/yushi/rss.xml"), ["tie-a", "tie-b"]);
    assert_eq!(rss_guids(&site, "feeds/tech/rss.xml"), ["t3", "t2"]);
    for rel in [
        "feeds/atom.xml",
        "feeds/news/atom.xml",
        "feeds/yushi/atom.xml",
        "feeds/tech/atom.xml",
    ] {
        let feed = site.feed(rel);
        let titles: Vec<_> = feed
            .entries
            .iter()
            .map(|e| e.title.as_ref().unwrap().content.clone())
            .collect();
        let want = if rel.contains("tech") {
            ["标题 t3", "标题 t2"]
        } else {
            ["标题 tie-a", "标题 tie-b"]
        };
        assert_eq!(titles, want, "{rel}");
    }
}

#[test]
fn an_empty_section_still_gets_valid_empty_feeds() {
    let site = Site::new();
    site.write_json(
        "articles/a.json",
        &[article("n1", "news", "2017-03-23 10:00")],
    );
    site.build().assert_success();
    site.assert_all_feeds_valid();
    for rel in [
        "feeds/tech/rss.xml",
        "feeds/tech/atom.xml",
        "feeds/yushi/rss.xml",
        "feeds/yushi/atom.xml",
    ] {
        let feed = site.feed(rel);
        assert_eq!(feed.entries.len(), 0, "{rel}");
        assert!(feed.title.is_some(), "{rel}: no title");
    }
    let rss = site.read_out_text("feeds/tech/rss.xml");
    let doc = xml_doc(&rss);
    let channel = elements(&doc, "channel").next().expect("a channel");
    assert!(
        child_text(channel, "description").is_some_and(|d| !d.trim().is_empty()),
        "{rss}"
    );
    assert_eq!(
        child_text(channel, "link"),
        Some("https://news.example.cn/tech/")
    );

    // A site with no articles at all builds too.
    let empty = Site::new();
    empty.build().assert_success();
    assert_eq!(empty.assert_all_feeds_valid(), 9);
    assert_eq!(empty.feed("feeds/atom.xml").entries.len(), 0);
}

#[test]
fn dates_in_every_accepted_form_come_out_in_china_time() {
    let config = DEFAULT_CONFIG.replace(r#"timezone = "+08:00""#, r#"timezone = "Asia/Shanghai""#);
    let site = Site::with_config(&config);
    site.write(
        "articles/dates.toml",
        r#"[[articles]]
id = "toml-datetime"
title = "TOML 日期时间"
section = "news"
url = "/1.html"
published = 2017-03-23T11:03:00+08:00
keywords = "a；b、c,d;"

[[articles]]
id = "toml-local"
title = "TOML 本地时间"
section = "news"
url = "/2.html"
published = 2017-03-23T11:03:00
"#,
    );
    let records = [
        ("rfc3339", "2017-03-23T11:03:00+08:00"),
        ("utc", "2017-03-23T03:03:00Z"),
        ("naive", "2017-03-23 11:03"),
        ("naive-seconds", "2017-03-23 11:03:00"),
    ];
    let records: Vec<Value> = records
        .iter()
        .map(|(id, date)| article(id, "news", date))
        .collect();
    site.write_json("articles/dates.json", &records);
    site.build().assert_success();

    let text = site.read_out_text("feeds/news/rss.xml");
    let doc = xml_doc(&text);
    let items = rss_items(&doc);
    assert_eq!(items.len(), 6);
    for item in &items {
        let guid = child_text(*item, "guid").unwrap();
        assert_eq!(
            child_text(*item, "pubDate"),
            Some("Thu, 23 Mar 2017 11:03:00 +0800"),
            "{guid}"
        );
    }
    let atom = site.read_out_text("feeds/news/atom.xml");
    let atom_doc = xml_doc(&atom);
    for published in elements(&atom_doc, "published") {
        assert_eq!(published.text(), Some("2017-03-23T11:03:00+08:00"));
    }
    assert_eq!(elements(&atom_doc, "published").count(), 6);

    // keywords = "a；b、c,d;": four categories after the section's own.
    let item = items
        .iter()
        .find(|i| child_text(**i, "guid") == Some("toml-datetime"))
        .unwrap();
    let categories: Vec<&str> = item
        .children()
        .filter(|c| c.has_tag_name("category"))
        .map(|c| c.text().unwrap_or(""))
        .collect();
    assert_eq!(categories, ["新闻中心", "a", "b", "c", "d"]);
    let entry = elements(&atom_doc, "entry")
        .find(|e| child_text(*e, "title") == Some("TOML 日期时间"))
        .unwrap();
    let terms: Vec<&str> = entry
        .children()
        .filter(|c| c.has_tag_name("category"))
        .filter_map(|c| c.attribute("term"))
        .collect();
    assert_eq!(terms, ["news", "a", "b", "c", "d"]);
}

#[test]
fn content_is_cleaned_and_its_links_made_absolute() {
    let site = Site::new();
    site.append_config("[output]\nformats = [\"rss\", \"atom\", \"json\"]\n");
    let mut record = article("html-1", "yushi", "2017-03-23 11:03");
    record["url"] = json!("/news/yushi/2017/0323/5034.html");
    record["content_html"] = json!(
        r#"<p onclick="steal()">正文<img src="../img/a.jpg" onerror="x()"><a href="/a.html">链接</a></p><script>alert(1)</script><iframe src="https://evil.example/"></iframe><p><a href="javascript:alert(2)">坏链接</a><a href="related.html">相对</a></p>"#
    );
    site.write_json("articles/a.json", &[record]);
    site.build().assert_success();
    site.assert_all_feeds_valid();

    let rss = site.read_out_text("feeds/yushi/rss.xml");
    let doc = xml_doc(&rss);
    let encoded = doc
        .descendants()
        .find(|n| n.tag_name().name() == "encoded" && n.tag_name().namespace() == Some(RSS_NS))
        .and_then(|n| n.text())
        .expect("content:encoded")
        .to_owned();
    let atom = site.read_out_text("feeds/yushi/atom.xml");
    let atom_doc = xml_doc(&atom);
    let atom_content = elements(&atom_doc, "content")
        .find_map(|n| n.text())
        .expect("atom content")
        .to_owned();
    let json: Value = serde_json::from_str(&site.read_out_text("feeds/yushi/feed.json")).unwrap();
    let json_content = json["items"][0]["content_html"]
        .as_str()
        .expect("content_html")
        .to_owned();

    for (name, html) in [
        ("content:encoded", &encoded),
        ("atom content", &atom_content),
        ("json", &json_content),
    ] {
        for banned in [
            "<script",
            "<iframe",
            "onclick",
            "onerror",
            "alert(",
            "javascript:",
            "evil.example",
        ] {
            assert!(!html.contains(banned), "{name} keeps {banned:?}: {html}");
        }
        assert!(
            html.contains(r#"src="https://news.example.cn/news/yushi/2017/img/a.jpg""#),
            "{name}: {html}"
        );
        assert!(
            html.contains(r#"href="https://news.example.cn/a.html""#),
            "{name}: {html}"
        );
        assert!(
            html.contains(r#"href="https://news.example.cn/news/yushi/2017/0323/related.html""#),
            "{name}: {html}"
        );
        assert!(
            html.contains("正文") && html.contains("坏链接"),
            "{name} lost text: {html}"
        );
        for link in html_links(html) {
            assert!(is_absolute(&link), "{name}: {link:?}");
        }
    }
}

#[test]
fn json_feed_is_valid_json_feed_1_1() {
    let site = Site::new();
    site.append_config("[output]\nformats = [\"rss\", \"atom\", \"json\"]\n");
    let mut first = article("j1", "yushi", "2017-03-23 11:03");
    first["author"] = json!("杜鹃花");
    first["keywords"] = json!(["基层干部", "群众呼声"]);
    first["content_html"] = json!("<p>正文</p>");
    site.write_json(
        "articles/a.json",
        &[first, article("j2", "tech", "2017-03-22 09:00")],
    );
    site.build().assert_success();
    site.assert_all_feeds_valid();

    for (folder, count) in [
        ("feeds", 2),
        ("feeds/news", 1),
        ("feeds/yushi", 1),
        ("feeds/tech", 1),
    ] {
        let rel = format!("{folder}/feed.json");
        let text = site.read_out_text(&rel);
        let feed: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(feed["version"], "https://jsonfeed.org/version/1.1", "{rel}");
        assert_eq!(
            feed["feed_url"],
            format!("https://news.example.cn/{rel}"),
            "{rel}"
        );
        assert!(
            feed["home_page_url"].as_str().is_some_and(is_absolute),
            "{rel}"
        );
        assert!(
            feed["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{rel}"
        );
        assert_eq!(feed["language"], "zh-CN", "{rel}");
        let items = feed["items"].as_array().expect("items");
        assert_eq!(items.len(), count, "{rel}");
        let mut ids = HashSet::new();
        for item in items {
            let id = item["id"].as_str().expect("a string id");
            assert!(
                !id.is_empty() && ids.insert(id.to_owned()),
                "{rel}: id {id:?}"
            );
            assert!(
                item["url"].as_str().is_some_and(is_absolute),
                "{rel}: {item}"
            );
            let date = item["date_published"].as_str().expect("date_published");
            let parsed = chrono::DateTime::parse_from_rfc3339(date)
                .unwrap_or_else(|e| panic!("{rel}: {date}: {e}"));
            assert_eq!(parsed.offset().local_minus_utc(), 8 * 3600, "{rel}: {date}");
            assert!(
                item.get("content_html")
                    .or(item.get("content_text"))
                    .is_some(),
                "{rel}: no content"
            );
            if let Some(authors) = item.get("authors") {
                assert!(
                    authors
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|a| a["name"].is_string()),
                    "{rel}"
                );
            }
        }
        let parsed = feed_rs::parser::parse(text.as_bytes())
            .unwrap_or_else(|e| panic!("feed-rs: {rel}: {e}"));
        assert_eq!(parsed.entries.len(), count, "{rel}");
    }
    let site_feed: Value = serde_json::from_str(&site.read_out_text("feeds/feed.json")).unwrap();
    assert_eq!(
        site_feed["items"][0]["date_published"],
        "2017-03-23T11:03:00+08:00"
    );
    assert_eq!(
        site_feed["items"][0]["url"],
        "https://news.example.cn/yushi/j1.html"
    );
    assert_eq!(
        site_feed["items"][0]["tags"],
        json!(["基层干部", "群众呼声"])
    );
}

#[test]
fn opml_lists_every_feed_with_absolute_urls() {
    let site = Site::new();
    site.append_config("[output]\nformats = [\"rss\", \"atom\", \"json\"]\n");
    site.write_json(
        "articles/a.json",
        &[article("n1", "news", "2017-03-23 10:00")],
    );
    site.build().assert_success();
    let text = site.read_out_text("feeds/index.opml");
    let doc = xml_doc(&text);
    assert_eq!(doc.root_element().tag_name().name(), "opml");
    let mut listed = Vec::new();
    for outline in elements(&doc, "outline").filter(|o| o.attribute("xmlUrl").is_some()) {
        let xml_url = outline.attribute("xmlUrl").unwrap();
        for attr in ["text", "title"] {
            assert!(
                outline
                    .attribute(attr)
                    .is_some_and(|v| !v.trim().is_empty()),
                "{xml_url}: no {attr}"
            );
        }
        assert_eq!(outline.attribute("type"), Some("rss"), "{xml_url}");
        assert!(
            outline.attribute("htmlUrl").is_some_and(is_absolute),
            "{xml_url}: htmlUrl"
        );
        let rel = xml_url
            .strip_prefix("https://news.example.cn/")
            .unwrap_or_else(|| panic!("{xml_url} is not absolute"));
        listed.push(rel.to_owned());
        if let Some(version) = outline.attribute("version") {
            assert!(
                !version.eq_ignore_ascii_case("atom"),
                "{xml_url}: version={version}"
            );
            assert!(
                ["RSS", "RSS1", "RSS2", "scriptingNews"].contains(&version),
                "{xml_url}: version={version}"
            );
        }
    }
    listed.sort();
    let mut feeds: Vec<String> = site
        .out_files()
        .into_iter()
        .filter(|f| f != "feeds/index.opml")
        .collect();
    feeds.sort();
    assert_eq!(
        listed, feeds,
        "the OPML must list exactly the generated feeds"
    );
}

// ---- a second, independent reader: Python's feedparser ---------------------

/// Runs `tests/support/feedparser_check.py DIR`. Fails (never skips) when
/// python3 or feedparser is missing: CI installs it with `pip install feedparser`.
fn feedparser_check(dir: &Path) -> std::process::Output {
    let script = repo_root().join("tests/support/feedparser_check.py");
    Command::new("python3").arg(&script).arg(dir).output().unwrap_or_else(|e| {
        panic!("cannot run python3 ({e}); install Python 3 and `pip install feedparser` to run this test")
    })
}

#[test]
fn feedparser_reads_every_example_feed_without_complaint() {
    let out = build_example();
    let result = feedparser_check(out.path());
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "feedparser_check.py failed ({:?}); if feedparser is missing: pip install feedparser\n{stdout}{stderr}",
        result.status.code()
    );
    let xml_files = files_under(out.path())
        .iter()
        .filter(|f| f.ends_with(".xml"))
        .count();
    assert!(
        stdout.contains(&format!("{xml_files} feeds, 0 bad")),
        "{stdout}"
    );

    // The checker itself catches a broken feed.
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(
        broken.path().join("rss.xml"),
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>a\u{B}b</title><link>https://x/</link>\
         <description>d</description></channel></rss>",
    )
    .unwrap();
    let result = feedparser_check(broken.path());
    assert_eq!(
        result.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&result.stdout)
    );
}

#[test]
fn every_feed_of_a_small_site_parses_in_feed_rs_and_strictly() {
    let site = three_section_site();
    site.append_config("[output]\nformats = [\"rss\", \"atom\", \"json\"]\n");
    site.build().assert_success();
    assert_eq!(site.assert_all_feeds_valid(), 13);
    let _ = parse_feed("feeds/rss.xml", &site.read_out("feeds/rss.xml"));
}

/// The build cache reuses an input only when its bytes are unchanged: an
/// edit that keeps the file's size and modification time must still show.
#[test]
fn cache_never_misses_an_edit_that_keeps_size_and_mtime() {
    let site = Site::new();
    let records = [article("a1", "news", "2017-03-20T10:00:00+08:00")];
    site.write_jsonl("articles/a.jsonl", &records);
    site.build_at(NOW).assert_success();
    assert!(site.read_out_text("feeds/rss.xml").contains("标题 a1"));

    let path = site.path("articles/a.jsonl");
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let before = std::fs::read_to_string(&path).unwrap();
    let after = before.replace("标题 a1", "标题 b2");
    assert_eq!(before.len(), after.len());
    std::fs::write(&path, after).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);

    site.build_at(NOW).assert_success();
    let rss = site.read_out_text("feeds/rss.xml");
    assert!(rss.contains("标题 b2") && !rss.contains("标题 a1"), "{rss}");
}

/// A cached run gives the same feeds as a full parse, also for a later clock
/// (a scheduled article comes out of the cache when its time comes) and an
/// earlier one (the cache is not used).
#[test]
fn cached_builds_match_full_parses_for_any_clock() {
    let site = Site::new();
    let records = [
        article("p1", "news", "2017-03-20T10:00:00+08:00"),
        article("s1", "yushi", "2017-03-26T10:00:00+08:00"),
        article("t1", "tech", "2017-03-21T10:00:00+08:00"),
    ];
    site.write_jsonl("articles/a.jsonl", &records);
    let full = Site::new();
    full.write_jsonl("articles/a.jsonl", &records);
    for now in [
        NOW,
        "2017-03-27T00:00:00+08:00",
        "2017-03-21T00:00:00+08:00",
        NOW,
    ] {
        site.build_at(now).assert_success();
        full.cmd(&["build", "--now", now, "--no-cache"])
            .run()
            .assert_success();
        for rel in [
            "feeds/rss.xml",
            "feeds/news/atom.xml",
            "feeds/yushi/rss.xml",
        ] {
            assert_eq!(
                site.read_out_text(rel),
                full.read_out_text(rel),
                "{rel} at {now}"
            );
        }
    }
    assert!(site.read_out_text("feeds/rss.xml").contains("标题 p1"));
    assert!(!site.read_out_text("feeds/rss.xml").contains("标题 s1"));
}

/// A duplicate id is found between a file reused from the cache and a new
/// one, and both places are named.
#[test]
fn cached_file_ids_still_catch_duplicates() {
    let site = Site::new();
    site.write_jsonl(
        "articles/a.jsonl",
        &[article("x1", "news", "2017-03-20T10:00:00+08:00")],
    );
    site.build_at(NOW).assert_success();
    site.write_jsonl(
        "articles/b.jsonl",
        &[article("x1", "tech", "2017-03-21T10:00:00+08:00")],
    );
    let output = site.build_at(NOW);
    output.assert_code(1);
    let errors = output.errors().join("\n");
    assert!(
        errors.contains("articles/b.jsonl:1:2: id: \"x1\" is already used at ")
            && errors.contains("articles/a.jsonl:1:2"),
        "{errors}"
    );
}
