//! The example site with topics, a logo, lead images and a WebSub hub, as
//! readers see it: strict XML and feed-rs, feedparser without bozo, and
//! newsboat (a real terminal reader, its own parser: libxml2) reading every
//! RSS and Atom feed into its cache with every item. The logo, icon, hub
//! and Media RSS elements are where readers look for them.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{Site, files_under, parse_feed, read, repo_root, xml_doc};

const HUB: &str = "https://pubsubhubbub.appspot.com/";
const MEDIA: &str = "http://search.yahoo.com/mrss/";
const ATOM: &str = "http://www.w3.org/2005/Atom";

/// The example site with a `[websub]` hub, built without pinging it.
fn example_with_hub() -> Site {
    let site = Site::example();
    site.edit_config("# [websub]\n# hubs = [", "[websub]\nhubs = [");
    let run = site.run(&["build", "--no-ping", "--now", crate::support::NOW]);
    run.assert_success();
    site
}

#[test]
fn logo_icon_hub_and_images_are_where_readers_look() {
    let site = example_with_hub();
    let rss = site.read_out_text("feeds/topics/jiceng/rss.xml");
    let doc = xml_doc(&rss);
    let channel = doc
        .descendants()
        .find(|n| n.has_tag_name("channel"))
        .unwrap();
    let text = |node: roxmltree::Node, name: &str| {
        node.children()
            .find(|c| c.has_tag_name(name))
            .and_then(|c| c.text())
            .map(str::to_owned)
    };
    let image = channel
        .children()
        .find(|c| c.has_tag_name("image"))
        .unwrap();
    assert_eq!(
        text(image, "url").as_deref(),
        Some("https://news.example.cn/images/logo.png")
    );
    // The validator wants the image's title and link to be the channel's.
    assert_eq!(text(image, "title"), text(channel, "title"));
    assert_eq!(text(image, "link"), text(channel, "link"));
    let hubs: Vec<&str> = channel
        .children()
        .filter(|c| c.has_tag_name((ATOM, "link")) && c.attribute("rel") == Some("hub"))
        .filter_map(|c| c.attribute("href"))
        .collect();
    assert_eq!(hubs, [HUB]);
    // Every item with a lead image has both Media RSS elements.
    let items: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("item"))
        .collect();
    let with_image: Vec<_> = items
        .iter()
        .filter(|i| i.children().any(|c| c.has_tag_name((MEDIA, "content"))))
        .collect();
    assert!(!with_image.is_empty());
    for item in with_image {
        let content = item
            .children()
            .find(|c| c.has_tag_name((MEDIA, "content")))
            .unwrap();
        let thumb = item
            .children()
            .find(|c| c.has_tag_name((MEDIA, "thumbnail")))
            .unwrap();
        assert_eq!(content.attribute("medium"), Some("image"));
        assert_eq!(content.attribute("url"), thumb.attribute("url"));
    }

    let atom = site.read_out_text("feeds/atom.xml");
    let doc = xml_doc(&atom);
    let feed = doc.root_element();
    assert_eq!(
        text(feed, "logo").as_deref(),
        Some("https://news.example.cn/images/logo.png")
    );
    assert_eq!(
        text(feed, "icon").as_deref(),
        Some("https://news.example.cn/images/icon-64.png")
    );
    assert!(
        feed.children()
            .any(|c| c.has_tag_name((ATOM, "link")) && c.attribute("rel") == Some("hub"))
    );
    let thumbs = doc
        .descendants()
        .filter(|n| n.has_tag_name((MEDIA, "thumbnail")))
        .count();
    assert!(thumbs > 0);
    // feed-rs sees the logo and icon too.
    let parsed = site.feed("feeds/atom.xml");
    assert_eq!(
        parsed.logo.map(|l| l.uri).as_deref(),
        Some("https://news.example.cn/images/logo.png")
    );

    let json: Value = serde_json::from_slice(&site.read_out("feeds/feed.json")).unwrap();
    assert_eq!(json["icon"], "https://news.example.cn/images/logo.png");
    assert_eq!(
        json["favicon"],
        "https://news.example.cn/images/icon-64.png"
    );
    assert_eq!(json["hubs"][0]["url"], HUB);
    assert!(
        json["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["image"].is_string())
    );
}

#[test]
fn feedparser_reads_the_example_with_topics_logo_and_hub_without_bozo() {
    let site = example_with_hub();
    let out = site.out_dir();
    let result = Command::new("python3")
        .arg(repo_root().join("tests/support/feedparser_check.py"))
        .arg(&out)
        .output()
        .expect("python3 (with `pip install feedparser`)");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(result.status.success(), "{stdout}");
    let xml = files_under(&out)
        .iter()
        .filter(|f| f.ends_with(".xml"))
        .count();
    assert!(stdout.contains(&format!("{xml} feeds, 0 bad")), "{stdout}");
    assert!(
        stdout.contains("ok feeds/topics/jiceng/atom.xml: atom10"),
        "{stdout}"
    );
}

/// Reads `feed` (a file) with newsboat into a fresh cache; returns the
/// feed's title and item titles as newsboat stored them.
fn newsboat_read(feed: &Path, home: &Path) -> (String, Vec<String>) {
    std::fs::create_dir_all(home).unwrap();
    let urls = home.join("urls");
    std::fs::write(&urls, format!("file://{}\n", feed.display())).unwrap();
    std::fs::write(home.join("config"), "").unwrap();
    let cache = home.join("cache.db");
    let output = Command::new("newsboat")
        .args(["-x", "reload", "-u"])
        .arg(&urls)
        .arg("-c")
        .arg(&cache)
        .arg("-C")
        .arg(home.join("config"))
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env("XDG_DATA_HOME", home)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run newsboat ({e}); install it: apt-get install newsboat")
        });
    assert!(
        output.status.success(),
        "newsboat on {}: {}",
        feed.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let db = rusqlite::Connection::open(&cache).unwrap();
    let title: String = db
        .query_row("SELECT title FROM rss_feed", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("newsboat stored no feed for {}: {e}", feed.display()));
    let mut items = db
        .prepare("SELECT title FROM rss_item ORDER BY pubDate DESC, title")
        .unwrap();
    let items = items
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (title, items)
}

#[test]
fn newsboat_reads_every_rss_and_atom_feed_with_every_item() {
    let site = example_with_hub();
    let out = site.out_dir();
    let feeds: Vec<String> = files_under(&out)
        .into_iter()
        .filter(|f| f.ends_with(".xml"))
        .collect();
    assert!(feeds.iter().any(|f| f.contains("topics/")));
    let homes = tempfile::tempdir().unwrap();
    // One newsboat each (it keeps an item once however many feeds carry
    // it), all at once.
    let results: Vec<(String, (String, Vec<String>))> = std::thread::scope(|scope| {
        let handles: Vec<_> = feeds
            .iter()
            .enumerate()
            .map(|(i, rel)| {
                let (out, home) = (&out, homes.path().join(i.to_string()));
                scope.spawn(move || (rel.clone(), newsboat_read(&out.join(rel), &home)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (rel, (title, mut items)) in results {
        let parsed = parse_feed(&rel, &read(&out.join(&rel)));
        assert_eq!(Some(title), parsed.title.map(|t| t.content), "{rel}");
        let mut expected: Vec<String> = parsed
            .entries
            .into_iter()
            .map(|e| e.title.unwrap().content)
            .collect();
        expected.sort();
        items.sort();
        assert_eq!(items, expected, "{rel}");
    }
}
