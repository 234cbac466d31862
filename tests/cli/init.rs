//! `bulletin init DIR`, then the first commands a newcomer runs there.

use std::path::Path;

use crate::support::{Cmd, assert_all_feeds_valid, files_under};

/// `bulletin ARGS` in `dir`: must succeed; returns stdout.
#[track_caller]
fn ok(dir: &Path, args: &[&str]) -> String {
    let run = Cmd::in_dir(dir).args(args).run();
    run.assert_success();
    run.stdout
}

#[test]
fn init_then_check_build_and_digest_dry_run_succeed() {
    let temp = tempfile::tempdir().unwrap();
    let said = ok(temp.path(), &["init", "mysite"]);
    assert_eq!(
        said,
        "created a starter site in mysite\n\
         next: cd mysite && bulletin check && bulletin build\n      \
         export BULLETIN_UNSUBSCRIBE_SECRET=\"$(openssl rand -hex 32)\"   # the key of unsubscribe links; keep it\n      \
         bulletin digest --dry-run preview\n"
    );
    let site = temp.path().join("mysite");
    assert_eq!(
        files_under(&site),
        [
            "articles/articles.json",
            "articles/articles.jsonl",
            "articles/articles.toml",
            "feeds.toml",
            "subscribers.toml",
            "templates/digest.html.hbs",
            "templates/digest.txt.hbs",
        ]
    );

    // The starter site is English: its templates are the English built-in
    // ones, written out to be edited.
    for part in ["html", "txt"] {
        assert_eq!(
            std::fs::read_to_string(site.join(format!("templates/digest.{part}.hbs"))).unwrap(),
            std::fs::read_to_string(
                crate::support::repo_root().join(format!("templates/digest.en.{part}.hbs"))
            )
            .unwrap(),
            "templates/digest.{part}.hbs"
        );
    }

    // The commands `init` suggests, as it suggests them.
    let checked = ok(&site, &["check"]);
    assert!(checked.ends_with(": no problems\n"), "{checked}");
    let built = ok(&site, &["build"]);
    assert!(built.starts_with("built "), "{built}");
    assert!(assert_all_feeds_valid(&site.join("public")) > 0);
    // Without the secret it says what is missing; with it, every email has
    // a working one-click unsubscribe link.
    let unset = Cmd::in_dir(&site)
        .args(["digest", "--dry-run", "preview"])
        .run();
    unset.assert_code(1);
    assert!(
        unset.stderr.contains("BULLETIN_UNSUBSCRIBE_SECRET"),
        "{unset}"
    );
    let run = Cmd::in_dir(&site)
        .args(["digest", "--dry-run", "preview"])
        .env("BULLETIN_UNSUBSCRIBE_SECRET", "0123456789abcdef")
        .run();
    run.assert_success();
    let previewed = run.stdout;
    assert!(previewed.starts_with("dry run of digest "), "{previewed}");
    let previews = files_under(&site.join("preview"));
    assert!(previews.contains(&"index.html".to_owned()), "{previews:?}");
    let eml = previews
        .iter()
        .find(|f| f.ends_with(".eml"))
        .unwrap_or_else(|| panic!("no email in the preview: {previews:?}"));
    let email =
        crate::support::Email::parse(std::fs::read(site.join("preview").join(eml)).unwrap());
    assert!(
        email
            .unsubscribe_url()
            .starts_with("https://news.example.com/unsubscribe?token="),
        "{}",
        email.unsubscribe_url()
    );
    assert_eq!(
        email.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );

    // A second init there refuses, naming what exists, and changes nothing.
    let again = Cmd::in_dir(temp.path()).args(["init", "mysite"]).run();
    assert_eq!(again.code, Some(1));
    let stderr = &again.stderr;
    assert!(
        stderr.starts_with("error: refusing to overwrite existing files: mysite/feeds.toml, "),
        "{stderr}"
    );
}
