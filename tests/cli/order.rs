//! The order of an export never changes what bulletin makes of it.
//!
//! CMS exports come in publication order (ascending id or date), which
//! makes every record the newest for a moment; loading keeps candidates by
//! place and decodes only the ones finally kept. These tests write the same
//! records chronologically, newest first and shuffled, in one file, in
//! several and as a JSON array, and compare every byte built and every
//! message planned.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::{NOW, Site, Small, article, at, read_files};

/// How many articles each feed carries in these sites: small, so that the
/// newest of each feed change all the time while loading.
const ITEMS: usize = 5;

/// 600 records over the small site's sections, from 40 days before [`NOW`]
/// to a few hours after (scheduled ones), many sharing a time (ties go by
/// id), some with long ids, escapes in every text, keywords from a small
/// vocabulary and related ids, in chronological order.
fn corpus() -> Vec<Value> {
    const SECTIONS: [&str; 4] = ["news", "yushi", "finance", "tech"];
    const WORDS: [&str; 6] = ["基层干部", "群众路线", "营商环境", "高铁", "天气", "芯片"];
    let mut records: Vec<(String, Value)> = (0..600)
        .map(|i| {
            // Whole hours from -960 to +4: ~600 records over ~965 hours, so
            // times repeat.
            let hours = -960.0 + ((i * 37) % 965) as f64;
            let id = if i % 9 == 0 {
                format!("article-with-a-rather-long-id-{i:04}")
            } else {
                format!("a{i:04}")
            };
            let section = SECTIONS[i % SECTIONS.len()];
            let keywords: Vec<&str> = (0..1 + i % 3).map(|k| WORDS[(i + k * 2) % 6]).collect();
            let published = at(hours);
            let mut record = article(&id, section, &published);
            record["keywords"] = json!(keywords);
            record["related"] = json!([format!("a{:04}", (i + 5) % 600)]);
            record["summary"] = json!(format!("摘要 \"{i}\"\t，第{i}篇"));
            record["content_html"] =
                json!(format!("<p>正文 {i}</p>\n<p>\"引号\" &amp; \\ 斜杠</p>"));
            (published, record)
        })
        .collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    records.into_iter().map(|(_, r)| r).collect()
}

/// The corpus in three orders: as exported, newest first, and shuffled.
fn orders() -> Vec<(&'static str, Vec<Value>)> {
    let chronological = corpus();
    let reversed: Vec<Value> = chronological.iter().rev().cloned().collect();
    let mut shuffled = chronological.clone();
    let mut state = 42u64;
    for i in (1..shuffled.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        shuffled.swap(i, (state >> 33) as usize % (i + 1));
    }
    vec![
        ("chronological", chronological),
        ("newest first", reversed),
        ("shuffled", shuffled),
    ]
}

/// A small site (sections news, yushi under news, finance, tech; a digest
/// with related reads) holding `records` as `layout` says: `"jsonl"` one
/// JSON Lines file, `"split"` three of them, `"json"` one JSON array.
fn site(records: &[Value], layout: &str) -> Site {
    let mut small = Small::new();
    for (i, sections) in [
        None,
        Some(&["news"][..]),
        Some(&["finance", "tech"][..]),
        Some(&["yushi"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        small = small.subscriber(&format!("reader{i}@example.com"), "读者", sections);
    }
    let site = small.build();
    site.append_config(&format!("\n[output]\nitems = {ITEMS}\n\n{TOPICS}"));
    std::fs::remove_file(site.path("articles/articles.json")).expect("remove the sample articles");
    match layout {
        "jsonl" => {
            site.write_jsonl("articles/all.jsonl", records);
        }
        "split" => {
            for (i, part) in records.chunks(records.len().div_ceil(3)).enumerate() {
                site.write_jsonl(&format!("articles/part{i}.jsonl"), part);
            }
        }
        "json" => {
            site.write_json("articles/all.json", records);
        }
        other => panic!("no layout {other}"),
    }
    site
}

/// Topic feeds over the corpus's keywords: an article goes to one for any
/// of its keywords, whatever its section.
const TOPICS: &str = r#"
[[topics]]
id = "cadre"
title = "基层"
keywords = ["基层干部"]

[[topics]]
id = "rail"
title = "高铁与芯片"
keywords = ["高铁", "芯片"]
"#;

/// Every file a build wrote, by path.
fn built(site: &Site, args: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let mut command = vec!["build", "--now", NOW];
    command.extend_from_slice(args);
    site.run(&command).assert_success();
    read_files(&site.out_dir())
}

#[test]
fn the_order_of_the_records_does_not_change_the_feeds() {
    let mut reference: Option<(String, BTreeMap<String, Vec<u8>>)> = None;
    for layout in ["jsonl", "split", "json"] {
        for (order, records) in orders() {
            let site = site(&records, layout);
            let what = format!("{order} records in layout {layout}");
            // Without the cache, then a cold build that stores it, then a
            // build from the cache: the same bytes each time.
            let fresh = built(&site, &["--no-cache"]);
            std::fs::remove_dir_all(site.out_dir()).expect("remove the output");
            assert_eq!(built(&site, &[]), fresh, "{what}: cold build");
            assert_eq!(built(&site, &[]), fresh, "{what}: build from the cache");
            match &reference {
                None => {
                    // The feeds are full: every candidate was in the running.
                    let rss = String::from_utf8(fresh["feeds/rss.xml"].clone()).unwrap();
                    assert_eq!(rss.matches("<item>").count(), ITEMS, "{rss}");
                    let now = at(0.0);
                    let newest = records
                        .iter()
                        .filter(|r| r["published"].as_str().unwrap() <= now.as_str())
                        .max_by_key(|r| r["published"].as_str().unwrap())
                        .unwrap();
                    let newest = format!("<title>标题 {}</title>", newest["id"].as_str().unwrap());
                    assert!(rss.contains(&newest), "{newest} missing: {rss}");
                    // A topic feed holds the newest matching articles, in order.
                    let rail =
                        String::from_utf8(fresh["feeds/topics/rail/rss.xml"].clone()).unwrap();
                    let mut matching: Vec<(&str, &str)> = records
                        .iter()
                        .filter(|r| r["published"].as_str().unwrap() <= now.as_str())
                        .filter(|r| {
                            r["keywords"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .any(|k| k == "高铁" || k == "芯片")
                        })
                        .map(|r| (r["published"].as_str().unwrap(), r["id"].as_str().unwrap()))
                        .collect();
                    // Newest first, the smaller id first among equals.
                    matching.sort_by(|a, b| b.0.cmp(a.0).then(a.1.cmp(b.1)));
                    let titles: Vec<String> = matching
                        .iter()
                        .take(ITEMS)
                        .map(|(_, id)| format!("<title>标题 {id}</title>"))
                        .collect();
                    let found: Vec<String> = rail
                        .match_indices("<title>标题 ")
                        .map(|(at, _)| {
                            rail[at..].split_once("</title>").unwrap().0.to_owned() + "</title>"
                        })
                        .collect();
                    assert_eq!(found, titles, "{rail}");
                    reference = Some((what, fresh));
                }
                Some((first, files)) => {
                    assert_eq!(
                        files.keys().collect::<Vec<_>>(),
                        fresh.keys().collect::<Vec<_>>()
                    );
                    for (path, bytes) in files {
                        assert!(
                            fresh[path] == *bytes,
                            "{path} differs between {first} and {what}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn the_order_of_the_records_does_not_change_the_digest() {
    let mut reference: Option<(String, BTreeMap<String, Vec<u8>>)> = None;
    for layout in ["jsonl", "split"] {
        for (order, records) in orders() {
            let site = site(&records, layout);
            let what = format!("{order} records in layout {layout}");
            let dry = site.dry_run("dry").ok();
            let files = dry.files();
            match &reference {
                None => {
                    // Old articles (before the 7-day window) are among the
                    // related reads: they were read back from the input.
                    let week_ago = at(-7.0 * 24.0);
                    let old: Vec<&str> = records
                        .iter()
                        .filter(|r| r["published"].as_str().unwrap() < week_ago.as_str())
                        .map(|r| r["id"].as_str().unwrap())
                        .collect();
                    let listing = dry.listing("reader0@example.com");
                    assert!(!listing.items.is_empty(), "{what}: an empty digest");
                    assert!(
                        listing
                            .related
                            .iter()
                            .any(|(_, id)| old.contains(&id.as_str())),
                        "{what}: no old article among {:?}",
                        listing.related
                    );
                    reference = Some((what, files));
                }
                Some((first, expected)) => {
                    assert_eq!(
                        expected.keys().collect::<Vec<_>>(),
                        files.keys().collect::<Vec<_>>()
                    );
                    for (path, bytes) in expected {
                        assert!(
                            files[path] == *bytes,
                            "{path} differs between {first} and {what}"
                        );
                    }
                }
            }
        }
    }
}
