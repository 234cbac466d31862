//! Subscriber loading from TOML or JSON: never panics; every subscriber it
//! accepts has no control character anywhere, an ASCII address lettre
//! accepts, only declared sections, and gets a digest message whose header
//! section holds nothing but the digest's own headers (no injection).
//!
//! Input: one selector byte (format), then the file.

#![no_main]

use bulletin_fuzz::checks;
use bulletin_fuzz::load::subscribers::load_subscribers;
use bulletin_fuzz::model::Article;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let name = if selector % 2 == 0 {
        "subscribers.toml"
    } else {
        "subscribers.json"
    };
    let path = checks::scratch().join(name);
    std::fs::write(&path, body).expect("write the input");
    let config = checks::config("unused.jsonl", checks::ZONES[0]);
    let site = &config.site;
    let Ok(subscribers) = load_subscribers(&path, site) else {
        return;
    };
    let article = Article {
        id: "a".into(),
        title: "标题".into(),
        section: "news".into(),
        url: site.base_url.join("a.html").unwrap(),
        published: chrono::DateTime::UNIX_EPOCH,
        updated: chrono::DateTime::UNIX_EPOCH,
        author: None,
        editor: None,
        source: None,
        keywords: Vec::new(),
        summary: None,
        content_html: None,
        image: None,
        related: Vec::new(),
        views: None,
    };
    let mut seen: Vec<String> = Vec::new();
    for s in &subscribers {
        assert!(s.email.is_ascii(), "{:?}", s.email);
        assert!(!s.email.chars().any(char::is_control), "{:?}", s.email);
        assert!(s.email.parse::<lettre::Address>().is_ok(), "{:?}", s.email);
        let key = s.email.to_lowercase();
        assert!(!seen.contains(&key), "duplicate {key:?}");
        seen.push(key);
        if let Some(name) = &s.name {
            assert!(
                !name.is_empty() && !name.chars().any(char::is_control),
                "{name:?}"
            );
        }
        for id in s.sections.iter().flatten() {
            assert!(
                site.section(id.as_str()).is_some(),
                "undeclared section {id:?}"
            );
        }
        if !(checks::skip_known() && checks::known_quoted_local_part(&s.email)) {
            checks::check_digest(&config, &article, s);
        }
    }
});
