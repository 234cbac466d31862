//! The build cache (`.bulletin/cache`) is read back on every build: an
//! entry that is damaged is a miss (the build reads the input again),
//! never an error or a crash, and never changes the feeds.

use std::fs;

use crate::support::{Site, Snapshot};

/// The cache entries of a site, by path.
fn entries(site: &Site) -> Vec<std::path::PathBuf> {
    let dir = site.path(".bulletin/cache");
    let mut paths: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
}

fn feeds(site: &Site) -> Vec<(String, Vec<u8>)> {
    let snapshot = Snapshot::of(&site.path("public/feeds"));
    snapshot
        .paths()
        .into_iter()
        .map(|p| {
            (
                p.to_owned(),
                fs::read(site.path(&format!("public/feeds/{p}"))).unwrap(),
            )
        })
        .collect()
}

/// A way to damage an entry: its name and what it does to the bytes.
type Damage = (&'static str, Box<dyn Fn(&[u8]) -> Vec<u8>>);

#[test]
fn damaged_cache_entries_are_misses() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let damage: Vec<Damage> = vec![
        (
            "random bytes",
            Box::new(|_| {
                (0..4096u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect()
            }),
        ),
        ("truncated", Box::new(|b| b[..b.len() / 2].to_vec())),
        ("empty", Box::new(|_| Vec::new())),
        ("deep nesting", Box::new(move |_| deep.clone().into_bytes())),
        (
            "wrong shape",
            Box::new(|_| b"{\"format\":1,\"articles\":7}".to_vec()),
        ),
        (
            "ids of a length not a multiple of 16",
            Box::new(|b| {
                let mut v: serde_json::Value = serde_json::from_slice(b).unwrap();
                v["ids"] = "AAAA".into();
                serde_json::to_vec(&v).unwrap()
            }),
        ),
        (
            "a count that overflows",
            Box::new(|b| {
                let mut v: serde_json::Value = serde_json::from_slice(b).unwrap();
                v["count"] = u64::MAX.into();
                serde_json::to_vec(&v).unwrap()
            }),
        ),
    ];
    for (what, damage) in damage {
        let site = Site::with_digest();
        site.build().assert_success();
        let clean = feeds(&site);
        fs::remove_dir_all(site.path("public")).unwrap();
        for entry in entries(&site) {
            let bytes = fs::read(&entry).unwrap();
            fs::write(&entry, damage(&bytes)).unwrap();
        }
        let run = site.build();
        run.assert_success();
        assert_eq!(feeds(&site), clean, "{what}: the feeds changed");
    }
}

/// An entry is bulletin's own file, but a file on disk all the same: one
/// that says an article holds a control character or a `javascript:` link
/// must not get either into a feed.
#[test]
fn a_tampered_cache_entry_cannot_put_unvalidated_articles_in_the_feeds() {
    // Regression (fixed in 0c427d9; was a hardening gap): `cache::BuildCache::lookup` deserializes `Article`s
    // straight into the feeds, skipping record validation and text hygiene:
    // an entry edited to hold a title with U+0001 makes rss.xml ill-formed
    // XML, a `javascript:` url becomes the item's link. Entries are keyed on
    // hashes anyone can recompute; re-validating kept articles (or signing
    // entries with a per-cache key) closes this.
    let site = Site::with_digest();
    site.build().assert_success();
    for entry in entries(&site) {
        let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&entry).unwrap()).unwrap();
        for article in v["articles"].as_array_mut().unwrap() {
            article["title"] = "bad\u{1}title".into();
            article["url"] = "javascript:alert(1)".into();
        }
        fs::write(&entry, serde_json::to_vec(&v).unwrap()).unwrap();
    }
    fs::remove_dir_all(site.path("public")).unwrap();
    site.build().assert_success();
    let rss = fs::read_to_string(site.path("public/feeds/rss.xml")).unwrap();
    assert!(!rss.contains("javascript:"), "{rss}");
    roxmltree::Document::parse(&rss).expect("rss.xml is well-formed");
}
