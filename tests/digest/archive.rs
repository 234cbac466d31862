//! The public archive (`digest.archive`): each issue's page with every
//! section and nothing personal, the list of issues and their Atom feed,
//! written by dry runs and sends, kept across issues, and checked the way
//! the site's feeds are — a strict XML parser, feed-rs, Python's
//! feedparser, the W3C validator's rules (`shared/FEEDS.md`) — and the
//! pages by HTML Tidy.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;

use chrono::DateTime;
use mail_parser::MessageParser;

use crate::support::{
    A, ISSUE, NOW, Site, Small, Snapshot, age_files, article, at, contains_bytes, files_under,
    links, parse_feed, read_files, repo_root, strict_xml,
};

const BASE: &str = "https://news.example.cn/";

/// A plain-text template that lists the items and says where the archive
/// page is (`V URL`), or that there is none.
const VIEW_TEMPLATE: &str = "{{#each sections}}{{#each items}}I {{id}}\n{{/each}}{{/each}}\
{{#if archive_url}}V {{archive_url}}\n{{else}}NO ARCHIVE\n{{/if}}";

/// Subscribers whose every trace is looked for in the archive: (address,
/// name, sections). None of them takes every section.
const READERS: [(&str, &str, &[&str]); 3] = [
    ("zhang.sanfeng@example.com", "张三丰", &["tech"]),
    ("li.siguang@example.org", "李四光", &["finance"]),
    ("Wang.Wu@Example.NET", "王五", &["news"]),
];

/// A small site with an archive in `digest/`: one article in each of news,
/// yushi (under news), finance and tech, and an older one (out of the
/// window) that shares their keywords, a related read; and [`READERS`].
fn site() -> Site {
    let mut small = Small::new()
        .digest("archive", "\"digest\"")
        .digest("text", "\"view.txt.hbs\"")
        .article(A::new("old", "news", &at(-24.0 * 30.0)).keywords(&["基层", "扶贫"]))
        .article(A::new("n1", "news", &at(-5.0)).keywords(&["基层", "扶贫"]))
        .article(A::new("y1", "yushi", &at(-4.5)).keywords(&["基层"]))
        .article(A::new("f1", "finance", &at(-4.0)).keywords(&["扶贫"]))
        .article(
            A::new("t1", "tech", &at(-3.0))
                .keywords(&["基层"])
                .set("source", "映象网".into())
                .set("author", "杜鹃花".into())
                .set("image", "https://img.example.cn/t1.jpg".into()),
        );
    for (email, name, sections) in READERS {
        small = small.subscriber(email, name, Some(sections));
    }
    let site = small.build();
    site.write("view.txt.hbs", VIEW_TEMPLATE);
    site
}

fn page_url(issue: &str) -> String {
    format!("{BASE}digest/{issue}/")
}

/// Every file of the archive folder, by path relative to it.
fn archive_files(site: &Site) -> BTreeMap<String, Vec<u8>> {
    read_files(&site.out_dir().join("digest"))
}

fn archive_text(site: &Site, rel: &str) -> String {
    String::from_utf8(site.read_out(&format!("digest/{rel}"))).expect("UTF-8")
}

/// The text part and the unsubscribe token of a message as it was
/// written or received.
fn read_message(raw: &[u8]) -> (String, String) {
    let message = MessageParser::default()
        .parse(raw)
        .expect("mail-parser reads the message");
    let text = message
        .body_text(0)
        .expect("a text part")
        .replace("\r\n", "\n");
    let url = message
        .header_raw("List-Unsubscribe")
        .expect("List-Unsubscribe")
        .trim()
        .trim_matches(['<', '>']);
    let (_, token) = url.split_once("token=").expect("a token in the URL");
    assert!(token.len() >= 20, "{url}");
    (text, token.to_owned())
}

/// Whether a text part says the archive page is `url` (`V URL`).
fn links_page(text: &str, url: &str) -> bool {
    text.lines().any(|l| l.strip_prefix("V ") == Some(url))
}

/// Asserts no archive file holds any trace of a recipient: address (as
/// written and lower-cased), its local part, name, or token, nor an
/// unsubscribe link.
#[track_caller]
fn assert_nothing_personal(site: &Site, tokens: &[String]) {
    let files = archive_files(site);
    assert!(files.len() >= 4, "{:?}", files.keys());
    let mut needles: Vec<String> = tokens.to_vec();
    for (email, name, _) in READERS {
        let (local, _) = email.split_once('@').unwrap();
        needles.extend([
            email.into(),
            email.to_lowercase(),
            local.into(),
            name.into(),
        ]);
    }
    needles.push("unsubscribe".into());
    for (path, bytes) in &files {
        for needle in &needles {
            assert!(
                !contains_bytes(bytes, needle.as_bytes()),
                "the archive's {path} holds {needle:?}"
            );
        }
    }
}

/// Runs HTML Tidy on `file`: no error and no warning.
#[track_caller]
fn assert_tidy(file: &Path) {
    let output = Command::new("tidy")
        .args(["-q", "-e", "--show-warnings", "yes"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tidy ({e}); install it: apt-get install tidy"));
    assert!(
        output.status.success(),
        "tidy finds problems in {}:\n{}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `href`s of `html`, each an absolute http(s) URL.
#[track_caller]
fn absolute_links(html: &str) -> Vec<String> {
    links(html)
        .into_iter()
        .map(|(href, _)| {
            let url = url::Url::parse(&href).unwrap_or_else(|e| panic!("{href:?}: {e}"));
            assert!(matches!(url.scheme(), "http" | "https"), "{href}");
            href
        })
        .collect()
}

/// The W3C validator's rules for an Atom feed (`shared/FEEDS.md`), checked
/// on the archive's feed served from `self_url`; returns the entries' page
/// links, in order.
#[track_caller]
fn assert_valid_atom(bytes: &[u8], self_url: &str, index_url: &str) -> Vec<String> {
    strict_xml(bytes);
    parse_feed("digest/atom.xml", bytes);
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(text.starts_with("<?xml"), "the declaration comes first");
    // No HTML named entity: only XML's own.
    for (at, _) in text.match_indices('&') {
        let name: String = text[at + 1..].chars().take_while(|c| *c != ';').collect();
        assert!(
            name.starts_with('#') || ["amp", "lt", "gt", "quot", "apos"].contains(&name.as_str()),
            "entity &{name};"
        );
    }
    let doc = roxmltree::Document::parse(text).unwrap();
    let feed = doc.root_element();
    assert!(feed.has_tag_name(("http://www.w3.org/2005/Atom", "feed")));
    assert_eq!(
        feed.attribute(("http://www.w3.org/XML/1998/namespace", "lang")),
        Some("zh-CN")
    );
    let now = DateTime::parse_from_rfc3339(NOW).unwrap();
    let time = |node: roxmltree::Node<'_, '_>| {
        let text = node
            .children()
            .find(|c| c.has_tag_name("updated"))
            .and_then(|c| c.text())
            .expect("an updated");
        let time = DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(text.ends_with("+08:00"), "{text} has the site's offset");
        assert!(
            time <= now + chrono::Duration::days(2),
            "{text} is in the future"
        );
        time
    };
    let id = |node: roxmltree::Node<'_, '_>| -> String {
        let id = node
            .children()
            .find(|c| c.has_tag_name("id"))
            .and_then(|c| c.text())
            .expect("an id");
        let url = url::Url::parse(id).unwrap_or_else(|e| panic!("id {id}: {e}"));
        assert!(!url.cannot_be_a_base() || url.scheme() == "urn", "{id}");
        id.to_owned()
    };
    let link = |node: roxmltree::Node<'_, '_>, rel: &str| -> (String, Option<String>) {
        let links: Vec<_> = node
            .children()
            .filter(|c| c.has_tag_name("link") && c.attribute("rel") == Some(rel))
            .collect();
        assert_eq!(links.len(), 1, "one rel={rel} link");
        (
            links[0].attribute("href").unwrap().to_owned(),
            links[0].attribute("type").map(str::to_owned),
        )
    };
    id(feed);
    time(feed);
    let author = feed
        .children()
        .find(|c| c.has_tag_name("author"))
        .and_then(|a| a.children().find(|c| c.has_tag_name("name")))
        .and_then(|n| n.text());
    assert!(
        author.is_some_and(|a| !a.trim().is_empty()),
        "a feed-level author"
    );
    assert_eq!(
        link(feed, "self"),
        (self_url.to_owned(), Some("application/atom+xml".into()))
    );
    assert_eq!(
        link(feed, "alternate"),
        (index_url.to_owned(), Some("text/html".into()))
    );
    let mut ids = HashSet::new();
    let mut times = HashSet::new();
    let mut pages = Vec::new();
    for entry in feed.children().filter(|c| c.has_tag_name("entry")) {
        assert!(ids.insert(id(entry)), "a repeated entry id");
        assert!(times.insert(time(entry)), "two entries with one updated");
        let title = entry
            .children()
            .find(|c| c.has_tag_name("title"))
            .and_then(|t| t.text());
        assert!(title.is_some_and(|t| !t.trim().is_empty()));
        let (page, kind) = link(entry, "alternate");
        assert_eq!(kind.as_deref(), Some("text/html"));
        let content = entry
            .children()
            .find(|c| c.has_tag_name("content"))
            .expect("content");
        assert_eq!(content.attribute("type"), Some("html"));
        let html = content.text().unwrap();
        assert!(!html.contains("<script") && !html.contains(" on"), "{html}");
        assert!(!absolute_links(html).is_empty(), "{html}");
        pages.push(page);
    }
    pages
}

/// Runs `tests/support/feedparser_check.py` on the archive folder: its one
/// feed reads without a "bozo" flag.
#[track_caller]
fn assert_feedparser_reads(dir: &Path) {
    let output = Command::new("python3")
        .arg(repo_root().join("tests/support/feedparser_check.py"))
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}); install it and `pip install feedparser`")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 feeds, 0 bad"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_dry_run_publishes_the_issue_with_every_section_and_nothing_personal() {
    let site = site();
    let dry = site.dry_run("out").ok();
    let page_path = format!("digest/{ISSUE}/index.html");
    assert_eq!(
        files_under(&site.out_dir()),
        [
            "digest/2017-03-25/index.html",
            "digest/2017-03-25/issue.json",
            "digest/atom.xml",
            "digest/index.html"
        ]
    );
    // Every section's article, though no reader takes every section.
    let page = archive_text(&site, &format!("{ISSUE}/index.html"));
    let items = headline_links(&page);
    for (id, section) in [
        ("n1", "news"),
        ("y1", "yushi"),
        ("f1", "finance"),
        ("t1", "tech"),
    ] {
        let url = format!("{BASE}{section}/{id}.html");
        assert!(items.contains(&url), "{url} not on the page:\n{page}");
    }
    assert!(
        page.contains("相关阅读"),
        "related reads are shown:\n{page}"
    );
    assert!(
        page.contains("来源：映象网") && page.contains("作者：杜鹃花"),
        "{page}"
    );
    assert!(
        page.contains(r#"<img src="https://img.example.cn/t1.jpg" alt="标题 t1""#),
        "{page}"
    );
    assert!(page.contains(r#"<html lang="zh-CN">"#));
    assert_tidy(&site.out_dir().join(&page_path));
    assert_tidy(&site.out_dir().join("digest/index.html"));

    // Each email links the page; nothing of any reader is in the archive.
    let mut tokens = Vec::new();
    for (email, _, _) in READERS {
        let (text, token) = read_message(&dry.email(&email.to_lowercase()).raw);
        assert!(links_page(&text, &page_url(ISSUE)), "{text}");
        tokens.push(token);
    }
    assert_nothing_personal(&site, &tokens);
    let stdout = &dry.run.stdout;
    assert!(
        stdout.contains(&format!("archive: {}", page_url(ISSUE))),
        "{stdout}"
    );
}

/// The links of an issue page's items (its headlines), in order.
fn headline_links(page: &str) -> Vec<String> {
    page.split("<h3>")
        .skip(1)
        .flat_map(|h| absolute_links(&h[..h.find("</h3>").expect("a closed h3")]))
        .collect()
}

#[test]
fn the_feed_of_issues_is_valid_atom_for_strict_parsers_and_feedparser() {
    let site = site();
    site.dry_run("out").ok();
    let bytes = site.read_out("digest/atom.xml");
    let pages = assert_valid_atom(
        &bytes,
        &format!("{BASE}digest/atom.xml"),
        &format!("{BASE}digest/"),
    );
    assert_eq!(pages, [page_url(ISSUE)]);
    assert_feedparser_reads(&site.out_dir().join("digest"));
}

#[test]
fn a_second_issue_is_listed_and_fed_while_the_first_page_stays_as_it_was() {
    let site = site();
    site.dry_run("out").ok();
    let archive = site.out_dir().join("digest");
    age_files(&archive);
    let before = Snapshot::of(&archive);

    // The next day: one new article; the old ones are still in the window.
    site.edit("articles/articles.json", |json| {
        let mut records: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
        let mut t2 = article("t2", "tech", &at(20.0));
        t2["keywords"] = serde_json::json!(["基层"]);
        records.push(t2);
        serde_json::to_string_pretty(&records).unwrap()
    });
    let next_now = at(24.0);
    let next = "2017-03-26";
    let dry = site.dry_run_at("out2", &next_now);
    dry.run.assert_success();
    let after = Snapshot::of(&archive);
    let mut changed = before.changed(&after);
    changed.sort();
    assert_eq!(
        changed,
        [
            "2017-03-26/index.html",
            "2017-03-26/issue.json",
            "atom.xml",
            "index.html"
        ],
        "only the new issue, the list and the feed are written"
    );
    // The new page carries only what is new since the first issue's.
    let page = archive_text(&site, &format!("{next}/index.html"));
    assert_eq!(
        headline_links(&page),
        [format!("{BASE}tech/t2.html")],
        "{page}"
    );
    let (text, _) = read_message(&dry.email("zhang.sanfeng@example.com").raw);
    assert!(links_page(&text, &page_url(next)), "{text}");

    let index = archive_text(&site, "index.html");
    let listed: Vec<String> = absolute_links(&index)
        .into_iter()
        .filter(|l| l.starts_with(&format!("{BASE}digest/20")))
        .collect();
    assert_eq!(listed, [page_url(next), page_url(ISSUE)], "newest first");
    let bytes = site.read_out("digest/atom.xml");
    let pages = assert_valid_atom(
        &bytes,
        &format!("{BASE}digest/atom.xml"),
        &format!("{BASE}digest/"),
    );
    assert_eq!(pages, [page_url(next), page_url(ISSUE)]);
    assert_feedparser_reads(&archive);

    // The same run again: byte for byte the same, nothing touched.
    age_files(&archive);
    let settled = Snapshot::of(&archive);
    site.dry_run_at("out2", &next_now).run.assert_success();
    settled.assert_same(&archive, "a rerun of the same issue");
}

#[test]
fn a_send_publishes_the_archive_that_its_messages_link() {
    let site = Site::smtp(3);
    site.set("digest.archive", "digest");
    site.write("view.txt.hbs", VIEW_TEMPLATE);
    site.set("digest.text", "view.txt.hbs");
    let sink = site.serve_sink();
    site.send().assert_success();
    let stored = sink.stored();
    assert_eq!(stored.len(), 3);
    let record = archive_text(&site, &format!("{ISSUE}/issue.json"));
    let mut needles = Vec::new();
    for message in &stored {
        let (text, token) = read_message(&message.bytes);
        assert!(links_page(&text, &page_url(ISSUE)), "{text}");
        // Whatever a reader of every section got is on the page.
        let ids: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("I ")).collect();
        assert!(!ids.is_empty(), "{text}");
        for id in ids {
            assert!(
                record.contains(&format!("\"id\": \"{id}\"")),
                "{id} not in\n{record}"
            );
        }
        needles.push(token);
        needles.push(message.rcpt.clone());
    }
    needles.extend([
        "读者0000".to_owned(),
        "reader0001".to_owned(),
        "unsubscribe".to_owned(),
    ]);
    for (path, bytes) in archive_files(&site) {
        for needle in &needles {
            assert!(
                !contains_bytes(&bytes, needle.as_bytes()),
                "{path} holds {needle:?}"
            );
        }
    }
    let bytes = site.read_out("digest/atom.xml");
    assert_valid_atom(
        &bytes,
        &format!("{BASE}digest/atom.xml"),
        &format!("{BASE}digest/"),
    );
    // A second send of the issue sends nothing and leaves the archive as it is.
    let archive = site.out_dir().join("digest");
    age_files(&archive);
    let settled = Snapshot::of(&archive);
    site.send().assert_success();
    assert_eq!(sink.stored().len(), 3);
    settled.assert_same(&archive, "a second send of the issue");
}

#[test]
fn without_an_archive_archive_url_is_falsy_and_nothing_is_published() {
    let site = site();
    site.edit_config("archive = \"digest\"\n", "");
    site.check().assert_success();
    let dry = site.dry_run("out").ok();
    let (text, _) = read_message(&dry.email("zhang.sanfeng@example.com").raw);
    assert!(text.contains("NO ARCHIVE"), "{text}");
    assert!(
        !site.out_dir().exists(),
        "{:?}",
        files_under(&site.out_dir())
    );

    // A bare `{{archive_url}}` passes `check` in strict mode, and renders empty.
    site.write(
        "view.txt.hbs",
        "[{{archive_url}}]{{#each sections}}{{id}}{{/each}}",
    );
    site.check().assert_success();
    let (text, _) = read_message(
        &site
            .dry_run("out")
            .ok()
            .email("zhang.sanfeng@example.com")
            .raw,
    );
    assert!(text.starts_with("[]"), "{text}");
}

#[test]
fn a_template_mistake_publishes_nothing() {
    let site = site();
    site.write("view.txt.hbs", "{{#each sections}}{{nope}}{{/each}}");
    let dry = site.dry_run("out");
    dry.run.assert_code(1).assert_stderr_has(&["nope"]);
    assert!(
        !site.out_dir().exists(),
        "{:?}",
        files_under(&site.out_dir())
    );
}

#[test]
fn an_english_site_gets_english_boilerplate() {
    let site = site();
    site.edit_config("language = \"zh-CN\"", "language = \"en\"");
    site.dry_run("out").ok();
    let page = archive_text(&site, &format!("{ISSUE}/index.html"));
    let index = archive_text(&site, "index.html");
    let feed = archive_text(&site, "atom.xml");
    assert!(
        page.contains("<html lang=\"en\">") && page.contains("Related"),
        "{page}"
    );
    assert!(
        page.contains("Source: 映象网") && page.contains("By 杜鹃花"),
        "{page}"
    );
    assert!(
        index.contains("Past issues") && index.contains("Digest 2017-03-25"),
        "{index}"
    );
    for word in ["要闻", "往期", "相关阅读", "来源", "作者", "条", "订阅"] {
        for (name, text) in [("page", &page), ("index", &index), ("feed", &feed)] {
            assert!(!text.contains(word), "the English {name} says {word}");
        }
    }
}

#[test]
fn bad_archive_folders_fail_with_exit_1_naming_the_field() {
    for bad in [
        "../digest",
        "/srv/www/digest",
        "feeds",
        "feeds/digest",
        "a/../../b",
        "",
        ".git",
        "新闻",
    ] {
        let site = site();
        site.edit_config("archive = \"digest\"", &format!("archive = {bad:?}"));
        let line = site
            .read("feeds.toml")
            .lines()
            .position(|l| l.starts_with("archive ="))
            .unwrap()
            + 1;
        for run in [site.check(), site.dry_run("out").run] {
            run.assert_code(1);
            let error = run.error_line();
            assert!(
                error.contains(&format!("feeds.toml:{line}:1: digest.archive: ")),
                "{bad:?}: {error}\n{run}"
            );
        }
        assert!(!site.out_dir().exists(), "{bad:?}: wrote the output");
        assert!(!site.path("out").exists(), "{bad:?}: wrote the dry run");
    }
}

#[test]
fn a_record_someone_else_wrote_is_left_out_with_a_warning() {
    let site = site();
    site.write(
        "public/digest/2017-03-20/issue.json",
        "{\"format\": \"nope\"}",
    );
    site.write("public/digest/assets/site.css", "body{}");
    let dry = site.dry_run("out").ok();
    assert!(dry.run.stderr.contains("2017-03-20"), "{}", dry.run.stderr);
    let index = archive_text(&site, "index.html");
    assert!(!index.contains("2017-03-20"), "{index}");
    assert_eq!(
        site.read_out("digest/assets/site.css"),
        b"body{}",
        "files not bulletin's are left alone"
    );
}

#[test]
fn the_page_is_published_before_any_message_goes_out() {
    // No server: nothing can be delivered, yet the page the messages link
    // is there (published once they were fixed, before sending began).
    let site = Site::smtp(2);
    site.set("digest.archive", "digest");
    site.point_at(crate::support::free_port());
    site.send().assert_code(2);
    assert_eq!(site.state().count("pending"), 2);
    let page = archive_text(&site, &format!("{ISSUE}/index.html"));
    assert!(page.contains("<h3>"), "{page}");
}
