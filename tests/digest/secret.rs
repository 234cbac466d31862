//! The unsubscribe token's key comes from the environment; without it a
//! digest whose `unsubscribe_url` needs a token is refused, writing nothing.

use crate::support::{A, SECRET_VAR, Site, Small, at};

#[test]
fn a_missing_secret_is_refused_naming_the_variable() {
    let site = Site::example();
    for value in [None, Some("")] {
        let run = site.dry_run_with("out", |cmd| cmd.envs(&[(SECRET_VAR, value)]));
        run.run
            .assert_code(1)
            .assert_stderr_has(&[SECRET_VAR, "unsubscribe_url"]);
        assert!(
            !run.dir.exists(),
            "files written without a secret: {:?}",
            run.files().keys()
        );
    }
    assert!(!site.path(".bulletin").exists());
}

fn small() -> Small {
    Small::new()
        .article(A::new("n", "news", &at(-1.0)))
        .subscriber("reader@example.com", "读者", None)
}

#[test]
fn an_unsubscribe_url_without_token_needs_no_secret() {
    let site = small()
        .digest(
            "unsubscribe_url",
            "\"mailto:unsubscribe@news.example.cn?subject=unsubscribe\"",
        )
        .build();
    let run = site
        .dry_run_with("out", |cmd| cmd.env_remove(SECRET_VAR))
        .ok();
    let email = run.email("reader@example.com");
    assert_eq!(
        email.unsubscribe_url(),
        "mailto:unsubscribe@news.example.cn?subject=unsubscribe"
    );
    // RFC 8058 one-click unsubscribe needs an HTTPS URI, not a mailto: one.
    assert_eq!(email.header("List-Unsubscribe-Post"), None);
}

#[test]
fn without_an_unsubscribe_url_there_are_no_unsubscribe_headers() {
    let site = small().without("unsubscribe_url").without("text").build();
    let run = site
        .dry_run_with("out", |cmd| cmd.env_remove(SECRET_VAR))
        .ok();
    let email = run.email("reader@example.com");
    assert_eq!(email.header("List-Unsubscribe"), None);
    assert_eq!(email.header("List-Unsubscribe-Post"), None);
    assert!(email.header("List-Id").is_some());
    assert!(!email.text.contains("退订"), "{}", email.text);
    assert!(!email.html.contains("退订"));
}
