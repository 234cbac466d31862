//! The size guard: a feed file over `output.max_feed_bytes` carries fewer
//! items, the newest, each whole; `build` names every trimmed file and the
//! items it kept.

use serde_json::{Value, json};

use crate::support::{Site, article, parse_feed};

const LIMIT: usize = 300_000;

/// Twenty news articles with bodies of about 45 KB each, and two small
/// tech ones.
fn large_site() -> Site {
    let site = Site::new();
    site.append_config(&format!(
        "[output]\nformats = [\"rss\", \"atom\", \"json\"]\nmax_feed_bytes = {LIMIT}\n"
    ));
    let paragraph = "<p>郑州市今年继续推进老旧小区改造，惠及居民逾万户 &amp; more.</p>\n";
    let mut records: Vec<Value> = (0..20)
        .map(|i| {
            let mut a = article(
                &format!("n{i:02}"),
                "news",
                &format!("2017-03-{:02} 08:00", i + 1),
            );
            a["content_html"] = json!(paragraph.repeat(450 + i * 7));
            a
        })
        .collect();
    records.push(article("t1", "tech", "2017-03-22 08:00"));
    records.push(article("t2", "tech", "2017-03-23 08:00"));
    site.write_jsonl("articles/a.jsonl", &records);
    site
}

/// From a warning line: (path, planned items, kept items, bytes kept).
fn trims(stderr: &str) -> Vec<(String, usize, usize, usize)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("warning: "))
        .filter(|l| l.contains("is over output.max_feed_bytes"))
        .map(|l| {
            let (path, rest) = l.split_once(": ").unwrap();
            let numbers: Vec<usize> = rest
                .split(|c: char| !c.is_ascii_digit())
                .filter(|w| !w.is_empty())
                .map(|w| w.parse().unwrap())
                .collect();
            // bytes, planned, limit, kept, bytes kept
            assert_eq!(numbers.len(), 5, "{l}");
            assert_eq!(numbers[2], LIMIT, "{l}");
            (path.to_owned(), numbers[1], numbers[3], numbers[4])
        })
        .collect()
}

#[test]
fn feeds_over_the_limit_keep_their_newest_whole_items_and_the_build_says_so() {
    let site = large_site();
    let run = site.build();
    run.assert_success();
    let mut trimmed = trims(&run.stderr_rel());
    trimmed.sort();
    let paths: Vec<&str> = trimmed.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        paths,
        [
            "feeds/atom.xml",
            "feeds/feed.json",
            "feeds/news/atom.xml",
            "feeds/news/feed.json",
            "feeds/news/rss.xml",
            "feeds/rss.xml",
        ],
        "{run}"
    );
    for (path, planned, kept, bytes) in &trimmed {
        let file = site.read_out(path);
        assert_eq!(file.len(), *bytes, "{path}");
        assert!(file.len() <= LIMIT, "{path}: {} bytes", file.len());
        assert!(*kept >= 1 && kept < planned, "{path}: {kept} of {planned}");
        // Whole items, the newest: a document that parses, ids in order.
        let ids: Vec<String> = if path.ends_with(".json") {
            let json: Value = serde_json::from_slice(&file).unwrap();
            json["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["url"].as_str().unwrap().to_owned())
                .collect()
        } else {
            parse_feed(path, &file)
                .entries
                .iter()
                .map(|e| e.links[0].href.clone())
                .collect()
        };
        assert_eq!(ids.len(), *kept, "{path}");
        // The site's feed has the two tech articles on top.
        let newest_news: Vec<String> = (0..20)
            .rev()
            .map(|i| format!("https://news.example.cn/news/n{i:02}.html"))
            .collect();
        let expected: Vec<String> = if path.starts_with("feeds/news/") {
            newest_news[..*kept].to_vec()
        } else {
            [
                "https://news.example.cn/tech/t2.html".to_owned(),
                "https://news.example.cn/tech/t1.html".to_owned(),
            ]
            .into_iter()
            .chain(newest_news)
            .take(*kept)
            .collect()
        };
        assert_eq!(ids, expected, "{path}");
    }
    // Feeds under the limit are whole.
    assert_eq!(site.feed("feeds/tech/rss.xml").entries.len(), 2);
    assert_eq!(site.feed("feeds/yushi/atom.xml").entries.len(), 0);
    site.assert_all_feeds_valid();

    // The same input, the same trimmed bytes, and the warning again.
    let before = crate::support::Snapshot::of(&site.out_dir());
    let again = site.build();
    assert_eq!(trims(&again.stderr_rel()).len(), 6);
    before.assert_same(&site.out_dir(), "a rebuild");
}

#[test]
fn no_limit_with_zero_and_a_clear_error_for_a_bad_value() {
    let site = large_site();
    site.edit_config(&format!("max_feed_bytes = {LIMIT}"), "max_feed_bytes = 0");
    let run = site.build();
    run.assert_success();
    assert!(trims(&run.stderr_rel()).is_empty(), "{run}");
    assert_eq!(site.feed("feeds/news/rss.xml").entries.len(), 20);

    site.edit_config("max_feed_bytes = 0", "max_feed_bytes = -5");
    let run = site.build();
    run.assert_code(1);
    assert!(run.error_line().contains("output.max_feed_bytes"), "{run}");
}
