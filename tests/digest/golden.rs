//! The example digest, byte for byte: every `.eml` and `index.html` of a dry
//! run of the repository's example site at [`crate::support::NOW`] against
//! `tests/golden/digest/`. `BULLETIN_BLESS=1 cargo test --test integration
//! golden` rewrites the golden files (read the diff before committing it).

use std::collections::BTreeMap;

use crate::support::{DryRun, Site, assert_golden, first_difference};

/// The files a golden comparison covers: the messages and the index.
fn covered(run: &DryRun) -> BTreeMap<String, Vec<u8>> {
    run.files()
        .into_iter()
        .filter(|(name, _)| name.ends_with(".eml") || name == "index.html")
        .collect()
}

#[test]
fn example_digest_matches_the_golden_files() {
    let site = Site::example();
    let run = site.dry_run("out").ok();
    let actual = covered(&run);
    assert_eq!(
        actual.keys().filter(|k| k.ends_with(".eml")).count(),
        6,
        "one email per example subscriber: {:?}",
        actual.keys().collect::<Vec<_>>()
    );
    assert_golden("digest", &actual);
}

#[test]
fn dry_run_creates_no_state_database() {
    let site = Site::example();
    site.dry_run("out").ok();
    assert!(
        !site.path(".bulletin/state.sqlite").exists(),
        "a dry run created the state database"
    );
    assert!(
        !site.path(".bulletin").exists(),
        "a dry run created the state folder"
    );
}

#[test]
fn two_runs_write_identical_bytes() {
    let site = Site::example();
    let first = site.dry_run("out1").ok();
    let second = site.dry_run("out2").ok();
    let (a, b) = (first.files(), second.files());
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the two runs wrote different files"
    );
    for (name, bytes) in &a {
        assert!(
            bytes == &b[name],
            "{name} differs between two runs at {}",
            first_difference(bytes, &b[name])
        );
    }
}

#[test]
fn rerun_into_the_same_folder_changes_nothing() {
    let site = Site::example();
    let first = site.dry_run("out").ok().files();
    let again = site.dry_run("out").ok().files();
    assert_eq!(first, again);
}
