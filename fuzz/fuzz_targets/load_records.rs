//! Record loading from TOML, JSON and JSON Lines text: never panics; what
//! it accepts satisfies the model's promises, renders into feeds that parse
//! strictly, makes a digest email without markup or header injection, and
//! builds the same feeds through the build cache (stored, then reused) as
//! without it.
//!
//! Input: one selector byte (format and site timezone), then the file.

#![no_main]

use bulletin_fuzz::checks;
use bulletin_fuzz::config::Config;
use bulletin_fuzz::model::Subscriber;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let ext = ["toml", "json", "jsonl"][selector as usize % 3];
    let zone = checks::ZONES[(selector as usize / 3) % checks::ZONES.len()];
    let name = format!("in.{ext}");
    std::fs::write(checks::scratch().join(&name), body).expect("write the input");
    let config = checks::config(&name, zone);
    match checks::load_all(&config) {
        Ok(articles) => {
            for a in &articles {
                checks::check_article(a);
            }
            let subscriber = Subscriber {
                email: "reader@example.com".into(),
                name: Some("读者".into()),
                sections: None,
                left: None,
            };
            if let Some(first) = articles
                .iter()
                .find(|a| !checks::skip_known() || !checks::known_rfc2822_crash(&config.site, a))
            {
                checks::check_digest(&config, first, &subscriber);
            }
            let skip = checks::skip_known()
                && articles.iter().any(|a| {
                    checks::known_rfc2822_crash(&config.site, a) || checks::known_entity_leak(a)
                });
            checks::render_and_check(&config, articles);
            if !skip {
                check_cache(&config);
            }
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            for p in &problems.0 {
                assert!(!p.message.trim().is_empty(), "empty message: {p:?}");
            }
        }
    }
});

/// A build through an empty cache, then one reusing what it stored, write
/// the same bytes as a build without the cache.
fn check_cache(config: &Config) {
    let now = chrono::DateTime::parse_from_rfc3339("2017-03-25T08:00:00+08:00")
        .unwrap()
        .to_utc();
    let dir = checks::scratch().join("cache");
    let _ = std::fs::remove_dir_all(&dir);
    let first = checks::build_with_cache(config, &dir, now).expect("it loaded once");
    let second = checks::build_with_cache(config, &dir, now).expect("it loaded twice");
    assert!(
        first == second,
        "a build from the cache differs from the build that filled it"
    );
}
