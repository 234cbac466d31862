//! Topic feeds (`[[topics]]`): every article with any of a topic's keywords,
//! across sections, newest first, in every format; read back by feed-rs, a
//! strict XML parser and feedparser; listed in the OPML; kept right by the
//! build cache; and the config's topics checked like sections.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::{Site, Snapshot, age_files, article, assert_all_feeds_valid, xml_doc};

const TOPICS: &str = r#"
[output]
items = 3
formats = ["rss", "atom", "json"]

[[topics]]
id = "jiceng"
title = "基层干部"
keywords = ["基层干部", "深入基层"]
description = "基层干部：跨版块报道"

[[topics]]
id = "ai"
title = "人工智能"
keywords = ["AI", "人工智能"]

[[topics]]
id = "empty"
title = "无人问津"
keywords = ["没有文章用这个关键词"]
"#;

fn with_keywords(id: &str, section: &str, published: &str, keywords: Value) -> Value {
    let mut a = article(id, section, published);
    a["keywords"] = keywords;
    a
}

/// Articles in three sections; `jiceng` matches five of them (more than
/// `items`), in lists and in keyword lines with full-width separators;
/// `ai` matches one by another case.
fn topic_site() -> Site {
    let site = Site::new();
    site.append_config(TOPICS);
    site.write_jsonl(
        "articles/a.jsonl",
        &[
            with_keywords(
                "n1",
                "news",
                "2017-03-20 08:00",
                json!(["基层干部", "群众路线"]),
            ),
            with_keywords(
                "y1",
                "yushi",
                "2017-03-21 08:00",
                json!("干部素质；深入基层、实干"),
            ),
            with_keywords("t1", "tech", "2017-03-22 08:00", json!("基层干部;ai")),
            with_keywords("t2", "tech", "2017-03-22 09:00", json!(["芯片"])),
            with_keywords("n2", "news", "2017-03-23 08:00", json!(["天气"])),
            with_keywords("y2", "yushi", "2017-03-24 08:00", json!(["基层干部"])),
            with_keywords("n3", "news", "2017-03-19 08:00", json!(["深入基层"])),
            // Last and oldest: by the time it is read the site's and news's
            // feeds are full, and only its keyword (in a keyword line)
            // keeps it, for the `ai` topic.
            with_keywords("n0", "news", "2017-03-01 08:00", json!("旧闻；人工智能")),
        ],
    );
    site
}

/// The item links of an RSS feed, in order.
fn rss_links(site: &Site, rel: &str) -> Vec<String> {
    let feed = site.feed(rel);
    feed.entries
        .iter()
        .map(|e| e.links[0].href.clone())
        .collect()
}

fn urls(ids: &[(&str, &str)]) -> Vec<String> {
    ids.iter()
        .map(|(section, id)| format!("https://news.example.cn/{section}/{id}.html"))
        .collect()
}

#[test]
fn topic_feeds_carry_matching_articles_across_sections_in_every_format() {
    let site = topic_site();
    site.build().assert_success();
    // Newest three of the five matching, from yushi, tech and news.
    let jiceng = urls(&[("yushi", "y2"), ("tech", "t1"), ("yushi", "y1")]);
    assert_eq!(rss_links(&site, "feeds/topics/jiceng/rss.xml"), jiceng);
    assert_eq!(rss_links(&site, "feeds/topics/jiceng/atom.xml"), jiceng);
    let json: Value =
        serde_json::from_slice(&site.read_out("feeds/topics/jiceng/feed.json")).unwrap();
    let json_urls: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["url"].as_str().unwrap())
        .collect();
    assert_eq!(json_urls, jiceng);
    assert_eq!(json["title"], "测试站 · 基层干部");
    assert_eq!(json["description"], "基层干部：跨版块报道");
    assert_eq!(
        json["feed_url"],
        "https://news.example.cn/feeds/topics/jiceng/feed.json"
    );
    // A keyword matches whatever its case; an old article is kept for a
    // topic alone.
    assert_eq!(
        rss_links(&site, "feeds/topics/ai/rss.xml"),
        urls(&[("tech", "t1"), ("news", "n0")])
    );

    // The RSS channel names the topic and serves its own self link.
    let rss = site.read_out_text("feeds/topics/jiceng/rss.xml");
    let doc = xml_doc(&rss);
    let self_link = doc
        .descendants()
        .find(|n| n.has_tag_name(("http://www.w3.org/2005/Atom", "link")))
        .unwrap();
    assert_eq!(
        self_link.attribute("href"),
        Some("https://news.example.cn/feeds/topics/jiceng/rss.xml")
    );
    assert_eq!(
        site.feed("feeds/topics/jiceng/atom.xml")
            .title
            .unwrap()
            .content,
        "测试站 · 基层干部"
    );

    // A topic nothing matches still has valid, empty feeds.
    assert!(site.feed("feeds/topics/empty/rss.xml").entries.is_empty());
    assert!(site.feed("feeds/topics/empty/atom.xml").entries.is_empty());
    let empty: Value =
        serde_json::from_slice(&site.read_out("feeds/topics/empty/feed.json")).unwrap();
    assert_eq!(empty["items"], json!([]));

    // Sections' feeds are what they were: topics are feeds beside them.
    assert_eq!(
        rss_links(&site, "feeds/tech/rss.xml"),
        urls(&[("tech", "t2"), ("tech", "t1")])
    );
    // 3 formats × (site + 3 sections + 3 topics) + OPML, all strict and parsed.
    assert_eq!(site.assert_all_feeds_valid(), 22);
}

#[test]
fn the_opml_lists_every_topic_feed() {
    let site = topic_site();
    site.build().assert_success();
    let opml = site.read_out_text("feeds/index.opml");
    let doc = xml_doc(&opml);
    let listed: BTreeSet<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute("xmlUrl"))
        .filter(|u| u.contains("/topics/"))
        .collect();
    let expected: BTreeSet<String> = ["jiceng", "ai", "empty"]
        .iter()
        .flat_map(|t| {
            ["rss.xml", "atom.xml", "feed.json"]
                .map(|f| format!("https://news.example.cn/feeds/topics/{t}/{f}"))
        })
        .collect();
    assert_eq!(
        listed,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
}

#[test]
fn feedparser_reads_topic_feeds_without_bozo() {
    let site = topic_site();
    site.build().assert_success();
    let script = crate::support::repo_root().join("tests/support/feedparser_check.py");
    let result = std::process::Command::new("python3")
        .arg(&script)
        .arg(site.out_dir().join("feeds/topics"))
        .output()
        .expect("python3 (with `pip install feedparser`)");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(stdout.contains("6 feeds, 0 bad"), "{stdout}");
    assert!(
        stdout.contains("ok jiceng/rss.xml: rss20, 3 entries"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok empty/atom.xml: atom10, 0 entries"),
        "{stdout}"
    );
}

#[test]
fn a_rebuild_touches_only_the_topic_feeds_an_edit_changes_and_the_cache_agrees() {
    let site = topic_site();
    site.write_jsonl(
        "articles/b.jsonl",
        &[with_keywords(
            "t9",
            "tech",
            "2017-03-10 08:00",
            json!(["芯片"]),
        )],
    );
    site.build().assert_success();
    age_files(&site.out_dir());
    let before = Snapshot::of(&site.out_dir());
    site.build().assert_success();
    before.assert_same(&site.out_dir(), "a rebuild of unchanged inputs");

    // A new article about AI in b.jsonl (a.jsonl comes from the cache).
    site.write_jsonl(
        "articles/b.jsonl",
        &[
            with_keywords("t9", "tech", "2017-03-10 08:00", json!(["芯片"])),
            with_keywords("t10", "tech", "2017-03-24 10:00", json!(["人工智能"])),
        ],
    );
    site.build().assert_success();
    let after = Snapshot::of(&site.out_dir());
    let changed: BTreeSet<String> = before
        .changed(&after)
        .into_iter()
        .filter(|p| p.contains("/topics/"))
        .collect();
    // The ai feeds, and the empty topic's dates (an empty feed is dated by
    // the site's newest change); never jiceng's.
    let expected: BTreeSet<String> = [
        "ai/rss.xml",
        "ai/atom.xml",
        "ai/feed.json",
        "empty/rss.xml",
        "empty/atom.xml",
    ]
    .map(|f| format!("feeds/topics/{f}"))
    .into();
    assert_eq!(changed, expected);
    assert_eq!(
        rss_links(&site, "feeds/topics/ai/rss.xml"),
        urls(&[("tech", "t10"), ("tech", "t1"), ("news", "n0")])
    );

    // What the cache gave is what parsing everything again gives.
    let fresh = tempfile::tempdir().unwrap();
    site.cmd(&["build", "--no-cache", "--now", crate::support::NOW])
        .config(&site.config_path())
        .out(fresh.path())
        .run()
        .assert_success();
    let cached = crate::support::read_files(&site.out_dir());
    assert_eq!(crate::support::read_files(fresh.path()), cached);
    assert_all_feeds_valid(fresh.path());
}

#[test]
fn topics_are_checked_like_sections() {
    let bad = [
        (
            "[[topics]]\nid = \"../x\"\ntitle = \"t\"\nkeywords = [\"k\"]\n",
            "topics[0].id: \"../x\" must start with a letter or digit (it becomes a folder name)",
        ),
        (
            "[[topics]]\nid = \"a\"\ntitle = \"t\"\nkeywords = [\"k\"]\n[[topics]]\nid = \"a\"\ntitle = \"u\"\nkeywords = [\"j\"]\n",
            "topics[1].id: topic \"a\" is declared twice",
        ),
        (
            "[[topics]]\nid = \"a\"\ntitle = \"t\"\nkeywords = []\n",
            "topics[0].keywords: lists no keyword; the topic's feeds carry the articles with any of them",
        ),
        (
            "[[topics]]\nid = \"a\"\ntitle = \"t\"\nkeywords = [\"基层；干部\"]\n",
            "topics[0].keywords: keyword 1 (\"基层；干部\") holds a separator (; , 、 ；，): list each keyword on its own",
        ),
        (
            "[[topics]]\nid = \"a\"\ntitle = \"t\"\nkeywords = [\"k\"]\nurl = \"ftp://x/\"\n",
            "topics[0].url: \"ftp://x/\" is not a web address; it must be an http(s) URL",
        ),
        (
            "[[topics]]\nid = \"a\"\ntitle = \"t\"\nkeywords = [\"k\"]\nkeyword = \"k\"\n",
            "topics[0].keyword: unknown field `keyword`, expected one of `id`, `title`, `keywords`, `description`, `url`",
        ),
    ];
    for (extra, problem) in bad {
        let site = Site::new();
        site.write_jsonl(
            "articles/a.jsonl",
            &[article("a1", "news", "2017-03-20 08:00")],
        );
        site.append_config(extra);
        let run = site.build();
        run.assert_code(1);
        let line = run.error_line();
        assert!(
            line.starts_with("feeds.toml:") && line.ends_with(problem),
            "{extra}\nwanted …{problem}\n   got {line}"
        );
        // file:line:col: the line of the offending key.
        let place: Vec<&str> = line.splitn(4, ':').collect();
        let line_no: usize = place[1].parse().unwrap();
        let config = site.read("feeds.toml");
        let key = problem
            .split(':')
            .next()
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap();
        assert!(
            config
                .lines()
                .nth(line_no - 1)
                .unwrap()
                .trim_start()
                .starts_with(key),
            "{line}"
        );
        site.assert_nothing_written();
    }
}
