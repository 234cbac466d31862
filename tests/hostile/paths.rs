//! Every path derived from input stays inside the output folder: section
//! ids that try to climb out are refused, and writing never follows a
//! symlink that leads out of the folder it writes into.

use std::fs;
use std::os::unix::fs::symlink;

use crate::support::{Cmd, Site, Snapshot};

#[test]
fn section_ids_that_leave_the_output_folder_are_refused() {
    for (id, why) in [
        (
            "../x",
            "must start with a letter or digit (it becomes a folder name)",
        ),
        (
            "/etc",
            "must start with a letter or digit (it becomes a folder name)",
        ),
        (
            "a/../../x",
            "may hold only ASCII letters, digits, '-' and '_' (it becomes a folder name)",
        ),
        (
            "a\\\\b",
            "may hold only ASCII letters, digits, '-' and '_' (it becomes a folder name)",
        ),
        (
            ".",
            "must start with a letter or digit (it becomes a folder name)",
        ),
        ("", "is empty; a section id must be a slug like \"yushi\""),
        (
            "a\\u0000",
            "may hold only ASCII letters, digits, '-' and '_' (it becomes a folder name)",
        ),
    ] {
        let site = Site::with_digest();
        site.edit_config("id = \"tech\"", &format!("id = \"{id}\""));
        site.write_jsonl(
            "articles/a.jsonl",
            &[crate::support::digest_article("a1", "news")],
        );
        let run = site.build();
        run.assert_code(1);
        let shown = format!(
            "{:?}",
            toml::from_str::<toml::Table>(&format!("v = \"{id}\"")).unwrap()["v"]
                .as_str()
                .unwrap()
        );
        let line = run.error_line();
        assert!(
            line.ends_with(&format!("sections[2].id: {shown} {why}")),
            "{id:?}: {line}"
        );
        assert!(
            !site.path("public").exists(),
            "{id:?}: something was written"
        );
        assert!(!site.root().parent().unwrap().join("x").exists());
    }
}

/// A record naming an undeclared section (any text) is an error: its
/// section never becomes a path.
#[test]
fn a_record_section_is_never_a_path() {
    let site = Site::with_digest();
    let mut record = crate::support::digest_article("a1", "news");
    record["section"] = "../../escape".into();
    site.write_jsonl("articles/a.jsonl", &[record]);
    site.build()
        .assert_code(1)
        .assert_stderr_has(&["section: \"../../escape\" is not a section declared in the config"]);
    assert!(!site.path("public").exists());
}

/// The right behaviour when a folder inside the output folder is a symlink
/// that leads out of it: refuse to write through it (exit 1, a clear
/// message naming the link), write nothing anywhere.
#[track_caller]
fn assert_refuses_to_write_through(site: &Site, link: &str, outside: &std::path::Path) {
    let before = Snapshot::of(outside);
    let run = site.build();
    run.assert_code(1).assert_stderr_has(&["symlink", link]);
    before.assert_same(outside, "the folder outside the output folder");
}

#[test]
fn a_section_folder_symlinked_outside_is_not_written_through() {
    // Regression (fixed in 861b599): `output::Staging::add` joins the relative path onto the output
    // folder and calls create_dir_all / File::create / rename, all of which
    // follow symlinks: public/feeds/news -> /elsewhere makes the build write
    // news/rss.xml, news/atom.xml and news/feed.json into /elsewhere (exit 0).
    let site = Site::with_digest();
    site.build().assert_success();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("keep.txt"), "outside").unwrap();
    fs::remove_dir_all(site.path("public/feeds/news")).unwrap();
    symlink(outside.path(), site.path("public/feeds/news")).unwrap();
    site.write_jsonl(
        "articles/a.jsonl",
        &[crate::support::digest_article("a2", "news")],
    );
    assert_refuses_to_write_through(&site, "public/feeds/news", outside.path());
}

#[test]
fn a_feeds_folder_symlinked_outside_is_not_written_through() {
    // Regression (fixed in 861b599): as above, for public/feeds itself: every feed and index.opml are
    // written into the link's target.
    let site = Site::with_digest();
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir_all(site.path("public")).unwrap();
    symlink(outside.path(), site.path("public/feeds")).unwrap();
    assert_refuses_to_write_through(&site, "public/feeds", outside.path());
}

/// A feed file that is a symlink is replaced by the rename (the link, not
/// its target): the file outside keeps its bytes.
#[test]
fn a_feed_file_symlinked_outside_is_replaced_not_written_through() {
    let site = Site::with_digest();
    site.build().assert_success();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim.xml");
    fs::write(&victim, "precious").unwrap();
    fs::remove_file(site.path("public/feeds/rss.xml")).unwrap();
    symlink(&victim, site.path("public/feeds/rss.xml")).unwrap();
    site.build().assert_success();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    let meta = fs::symlink_metadata(site.path("public/feeds/rss.xml")).unwrap();
    assert!(meta.is_file(), "rss.xml is still a link");
}

#[test]
fn a_dry_run_preview_folder_symlinked_outside_is_not_written_or_cleaned_through() {
    // Regression (fixed in 861b599): `digest --dry-run DIR` stages DIR/preview/<address>.html through a
    // DIR/preview symlink (writes outside DIR), and its stale-file cleanup
    // removes every path listed in DIR/.bulletin-dry-run, through the same
    // link: a file outside DIR that the manifest names is deleted.
    let site = Site::with_digest();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("keep.html"), "precious").unwrap();
    fs::create_dir_all(site.path("out")).unwrap();
    symlink(outside.path(), site.path("out/preview")).unwrap();
    site.write("out/.bulletin-dry-run", "preview/keep.html\n");
    let before = Snapshot::of(outside.path());
    let run = site.dry_run("out").run;
    before.assert_same(outside.path(), "the folder outside the dry-run folder");
    run.assert_code(1)
        .assert_stderr_has(&["symlink", "preview"]);
}

/// The stale-file manifest of a dry run is input too: entries that climb
/// out of the folder are ignored.
#[test]
fn a_dry_run_manifest_cannot_name_files_outside_the_folder() {
    let site = Site::with_digest();
    site.write("victim.txt", "precious");
    let absolute = site.path("absolute-victim.txt");
    fs::write(&absolute, "precious").unwrap();
    site.write(
        "out/.bulletin-dry-run",
        format!(
            "../victim.txt\n{}\n./../victim.txt\npreview/../../victim.txt\n",
            absolute.display()
        ),
    );
    site.dry_run("out").ok();
    assert_eq!(
        fs::read_to_string(site.path("victim.txt")).unwrap(),
        "precious"
    );
    assert_eq!(fs::read_to_string(&absolute).unwrap(), "precious");
}

/// Addresses become file names in a dry run: whatever an address holds,
/// the file lands directly inside the folder.
#[test]
fn addresses_become_file_names_inside_the_dry_run_folder() {
    let site = Site::with_digest();
    site.write(
        "subscribers.toml",
        "[[subscribers]]\nemail = \"a/b@example.com\"\n\n\
         [[subscribers]]\nemail = \"x+y=z&{|}~@example.com\"\n\n[[subscribers]]\nemail = \"a_b@example.com\"\n",
    );
    site.dry_run("out").ok();
    let files = Snapshot::of(&site.path("out"));
    let mut emls: Vec<&str> = files
        .paths()
        .into_iter()
        .filter(|p| p.ends_with(".eml"))
        .collect();
    emls.sort();
    assert_eq!(
        emls,
        [
            "a_b@example.com.eml",
            "a_b@example.com_.eml",
            "x+y_z_____@example.com.eml"
        ]
    );
}

/// `init DIR` never overwrites: a dangling symlink where a starter file
/// goes is refused up front, with nothing written.
#[test]
fn init_refuses_a_dangling_symlink_before_writing_anything() {
    // Regression (fixed in 861b599): the up-front check uses `Path::exists`, which follows links and
    // says "no" for a dangling one; `write_new` (O_EXCL) then refuses that
    // file, after the files before it in the list were written: DIR is left
    // half-initialised (feeds.toml, templates, articles but no
    // subscribers.toml) and the message does not say so.
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    fs::create_dir(&site).unwrap();
    symlink(outside.path().join("pwned"), site.join("subscribers.toml")).unwrap();
    let run = Cmd::new().arg("init").arg(&site).env("NO_COLOR", "1").run();
    run.assert_code(1).assert_stderr_has(&["subscribers.toml"]);
    assert!(
        !outside.path().join("pwned").exists(),
        "written through the link"
    );
    let written = Snapshot::of(&site);
    assert_eq!(
        written.paths(),
        ["subscribers.toml"],
        "init wrote files before refusing"
    );
}

/// `init DIR` with a folder inside DIR that is a symlink out of it.
#[test]
fn init_does_not_write_through_a_symlinked_folder() {
    // Regression (fixed in 861b599): `create_dir_all` and `write_new` follow DIR/templates -> elsewhere
    // and create the two templates there.
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    fs::create_dir(&site).unwrap();
    symlink(outside.path(), site.join("templates")).unwrap();
    let _ = Cmd::new().arg("init").arg(&site).env("NO_COLOR", "1").run();
    assert_eq!(
        Snapshot::of(outside.path()).paths(),
        Vec::<&str>::new(),
        "init wrote outside DIR"
    );
}
