//! Article URLs and images with `javascript:`, `data:`, `file:` and other
//! non-web schemes are refused at load; links of those schemes inside the
//! content are removed; config URLs are held to the same rule.

use std::fs;

use serde_json::json;

use crate::support::{Site, digest_article, files_under};

/// Each hostile URL and the scheme the error names.
const HOSTILE: [(&str, &str); 11] = [
    ("javascript:alert(1)", "javascript"),
    ("JaVaScRiPt:alert(1)", "javascript"),
    ("  javascript:alert(1)", "javascript"),
    ("java\u{0}script:alert(1)", "javascript"),
    ("data:text/html,<script>alert(1)</script>", "data"),
    ("data:image/svg+xml;base64,PHN2Zz4=", "data"),
    ("file:///etc/passwd", "file"),
    ("vbscript:msgbox(1)", "vbscript"),
    ("ftp://example.com/a", "ftp"),
    ("mailto:a@example.com", "mailto"),
    ("blob:https://example.com/x", "blob"),
];

#[test]
fn non_web_schemes_in_url_and_image_are_refused() {
    for field in ["url", "image"] {
        for (url, scheme) in HOSTILE {
            let site = Site::with_digest();
            let mut record = digest_article("a1", "news");
            record[field] = url.into();
            site.write_jsonl("articles/a.jsonl", &[record]);
            for args in [&["build", "--now", crate::support::NOW][..], &["check"][..]] {
                let run = site.run(args);
                run.assert_code(1);
                let line = run.error_line();
                assert!(
                    line.starts_with("./articles/a.jsonl:1:")
                        && line.contains(&format!(": {field}: "))
                        && line.ends_with(&format!(
                            "uses the {scheme}: scheme; only http and https links are allowed"
                        )),
                    "{field} = {url:?}: {line}"
                );
            }
            assert!(!site.path("public").exists(), "{field} = {url:?}: written");
        }
    }
}

/// A tab inside a scheme is white space folded to a space, which makes
/// the text a page path on the site, never a `javascript:` URL.
#[test]
fn a_scheme_split_by_white_space_is_a_path_on_the_site() {
    let site = Site::with_digest();
    let mut record = digest_article("a1", "news");
    record["url"] = "java\tscript:alert(1)".into();
    site.write_jsonl("articles/a.jsonl", &[record]);
    site.build().assert_success();
    let rss = fs::read_to_string(site.path("public/feeds/rss.xml")).unwrap();
    assert!(
        rss.contains("<link>https://news.example.cn/java%20script:alert(1)</link>"),
        "{rss}"
    );
}

#[test]
fn urls_without_a_host_are_refused() {
    for url in ["https://", "http://", "https://:80/"] {
        let site = Site::with_digest();
        let mut record = digest_article("a1", "news");
        record["url"] = url.into();
        site.write_jsonl("articles/a.jsonl", &[record]);
        site.build()
            .assert_code(1)
            .assert_stderr_has(&[&format!(": url: {url:?} is not a URL: empty host")]);
        assert!(!site.path("public").exists());
    }
}

/// Links in the body with those schemes are dropped by the cleaner; the
/// article itself is fine.
#[test]
fn non_web_links_in_content_are_removed_from_every_feed_and_email() {
    let site = Site::with_digest();
    let body = HOSTILE
        .iter()
        .filter(|(_, scheme)| *scheme != "mailto")
        .enumerate()
        .map(|(i, (url, _))| {
            let quoted = url.replace('"', "&quot;");
            format!("<p><a href=\"{quoted}\">a{i}</a><img src=\"{quoted}\"><iframe src=\"{quoted}\"></iframe>\
                     <form action=\"{quoted}\"><button formaction=\"{quoted}\">b</button></form></p>")
        })
        .collect::<String>();
    site.write_jsonl(
        "articles/a.jsonl",
        &[json!({
            "id": "a1", "title": "t", "section": "news", "url": "/news/a1.html",
            "published": "2017-03-24 10:00", "content_html": body,
        })],
    );
    site.build().assert_success();
    site.dry_run("out").ok();
    let mut checked = 0;
    for dir in ["public/feeds", "out"] {
        let dir = site.path(dir);
        for entry in files_under(&dir).into_iter().map(|rel| dir.join(rel)) {
            let text = fs::read_to_string(&entry).unwrap().to_lowercase();
            for scheme in [
                "javascript:",
                "data:",
                "file:",
                "vbscript:",
                "ftp:",
                "blob:",
            ] {
                // The text of the page may say "data:" only inside href/src.
                for attr in ["href=", "src=", "action=", "formaction="] {
                    for quote in ["\"", "'", "&quot;", "&#x22;", ""] {
                        let needle = format!("{attr}{quote}{scheme}");
                        assert!(!text.contains(&needle), "{} has {needle}", entry.display());
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} files checked");
}

#[test]
fn non_web_schemes_in_config_urls_are_refused() {
    for (from, to, key) in [
        (
            "base_url = \"https://news.example.cn/\"",
            "base_url = \"javascript:alert(1)//\"",
            "site.base_url",
        ),
        (
            "title = \"科技\"",
            "title = \"科技\"\nurl = \"javascript:alert(1)\"",
            "sections[2].url",
        ),
        (
            "unsubscribe_url = \"https://news.example.cn/unsubscribe?token={{token}}\"",
            "unsubscribe_url = \"javascript:alert('{{token}}')\"",
            "digest.unsubscribe_url",
        ),
        (
            "unsubscribe_url = \"https://news.example.cn/unsubscribe?token={{token}}\"",
            "unsubscribe_url = \"data:text/html,{{token}}\"",
            "digest.unsubscribe_url",
        ),
    ] {
        let site = Site::with_digest();
        site.edit_config(from, to);
        let run = site.run(&["check"]);
        run.assert_code(1).assert_stderr_has(&[&format!("{key}: ")]);
        site.build().assert_code(1);
        assert!(!site.path("public").exists(), "{key}: written");
    }
}
