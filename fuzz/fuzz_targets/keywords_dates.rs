//! Keyword splitting, date parsing and the other small parsers of record
//! fields and config values: never panic, and keep their promises.
//!
//! Input: one selector byte (site timezone), then text.

#![no_main]

use bulletin_fuzz::config::parse_duration;
use bulletin_fuzz::load::record::{parse_datetime, web_url};
use bulletin_fuzz::model::SiteZone;
use bulletin_fuzz::{checks, text};
use chrono::Datelike;
use libfuzzer_sys::fuzz_target;

const SEPARATORS: [char; 5] = [';', '；', ',', '，', '、'];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let Ok(line) = std::str::from_utf8(body) else {
        return;
    };
    let zone = SiteZone::parse(checks::ZONES[selector as usize % checks::ZONES.len()])
        .expect("the fuzz zones parse");

    // Keywords: non-empty one-line pieces without separators, in order.
    let keywords = text::split_keywords(line);
    for k in &keywords {
        assert!(!k.is_empty());
        assert!(text::is_one_line(k), "{k:?}");
        assert!(!k.contains(SEPARATORS), "{k:?}");
        assert_eq!(text::one_line(k), *k);
    }
    let unique = text::dedup_keywords(keywords.clone());
    assert!(unique.len() <= keywords.len());
    for (i, k) in unique.iter().enumerate() {
        assert!(!unique[..i].contains(k));
        assert!(keywords.contains(k));
    }
    // Splitting the joined pieces again gives the same pieces.
    assert_eq!(text::split_keywords(&keywords.join(";")), keywords);

    // Dates: a result is an instant; re-reading its RFC 3339 form gives it back.
    if let Ok(t) = parse_datetime(line, zone) {
        let again = parse_datetime(&t.to_rfc3339(), zone);
        let leap = chrono::Timelike::nanosecond(&t) >= 1_000_000_000;
        if (0..=9999).contains(&t.year()) && !(leap && checks::skip_known()) {
            assert_eq!(again, Ok(t), "{line:?} → {t}");
        }
        // Every zone can show it (the feeds and the digest do).
        let _ = zone.local(t).to_rfc3339();
    }
    // Resolving any wall-clock reading never panics.
    if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(line, "%Y-%m-%d %H:%M:%S") {
        let _ = zone.resolve_local(naive);
    }

    // URLs: only absolute http(s) with a host come back.
    let base = url::Url::parse("https://news.example.cn/base/").unwrap();
    if let Ok(url) = web_url(line, &base) {
        assert!(matches!(url.scheme(), "http" | "https"), "{url}");
        assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{url}");
    }

    // Config values.
    if let Ok(d) = parse_duration(line) {
        assert!(d > chrono::Duration::zero(), "{line:?} → {d}");
    }
    let _ = SiteZone::parse(line);
    let _ = bulletin_fuzz::config::check_slug(line);
});
