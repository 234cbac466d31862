//! Safe defaults: a web unsubscribe link must be one that one-click
//! unsubscribe (RFC 8058) can use, and sending without any link warns.

use crate::support::{A, Site, Small, at};

fn small() -> Small {
    Small::new()
        .article(A::new("n", "news", &at(-1.0)))
        .subscriber("reader@example.com", "读者", None)
}

#[test]
fn check_refuses_an_http_unsubscribe_url_and_one_without_a_token() {
    for (url, expected) in [
        (
            "http://news.example.cn/unsubscribe?token={{token}}",
            "digest.unsubscribe_url: must be https://",
        ),
        (
            "https://news.example.cn/unsubscribe",
            "digest.unsubscribe_url: has no {{token}}",
        ),
    ] {
        let site = small()
            .digest("unsubscribe_url", &format!("{url:?}"))
            .build();
        let run = site.check();
        run.assert_code(1);
        assert!(
            run.errors().iter().any(|e| e.contains(expected)),
            "{url}: {run}"
        );
        site.dry_run("out").run.assert_code(1);
    }
    // https with a token, and mailto:, are fine.
    for url in [
        "https://news.example.cn/unsubscribe?token={{token}}",
        "mailto:unsubscribe@news.example.cn",
    ] {
        small()
            .digest("unsubscribe_url", &format!("{url:?}"))
            .build()
            .check()
            .assert_success();
    }
}

#[test]
fn sending_without_an_unsubscribe_link_warns() {
    let site = Site::with_digest();
    site.unset("digest.unsubscribe_url");
    let run = site.send();
    run.assert_success();
    assert!(
        run.stderr
            .contains("warning: the digest has no unsubscribe link"),
        "{run}"
    );
}
