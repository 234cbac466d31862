//! The example digest, byte for byte: every `.eml` and `index.html` of a dry
//! run of the repository's example site at [`NOW`] against
//! `tests/golden/digest/`. `BULLETIN_BLESS=1 cargo test --test integration golden`
//! rewrites the golden files (read the diff before committing it).

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use crate::digest::harness::{DryRun, NOW, Site, repo_root};

/// The environment variable that rewrites golden files instead of comparing.
const BLESS_VAR: &str = "BULLETIN_BLESS";

fn golden_dir() -> PathBuf {
    repo_root().join("tests/golden/digest")
}

/// The files a golden comparison covers: the messages and the index.
fn covered(run: &DryRun) -> BTreeMap<String, Vec<u8>> {
    run.files()
        .into_iter()
        .filter(|(name, _)| name.ends_with(".eml") || name == "index.html")
        .collect()
}

fn golden_files() -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(golden_dir()).expect("tests/golden/digest exists") {
        let entry = entry.expect("a folder entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".eml") || name == "index.html" {
            files.insert(name, fs::read(entry.path()).expect("read a golden file"));
        }
    }
    files
}

/// The first line where two byte strings differ, for a readable failure.
fn first_difference(expected: &[u8], actual: &[u8]) -> String {
    let (e, a) = (
        String::from_utf8_lossy(expected),
        String::from_utf8_lossy(actual),
    );
    for (n, (el, al)) in e.split('\n').zip(a.split('\n')).enumerate() {
        if el != al {
            return format!("line {}:\n  golden: {el:?}\n  actual: {al:?}", n + 1);
        }
    }
    format!(
        "one is a prefix of the other ({} vs {} bytes)",
        expected.len(),
        actual.len()
    )
}

#[test]
fn example_digest_matches_the_golden_files() {
    let site = Site::example();
    let run = site.dry_run("out", NOW).ok();
    let actual = covered(&run);
    assert_eq!(
        actual.keys().filter(|k| k.ends_with(".eml")).count(),
        6,
        "one email per example subscriber: {:?}",
        actual.keys().collect::<Vec<_>>()
    );

    if std::env::var_os(BLESS_VAR).is_some_and(|v| v == "1") {
        let dir = golden_dir();
        fs::create_dir_all(&dir).expect("create tests/golden/digest");
        for name in golden_files().keys() {
            fs::remove_file(dir.join(name)).expect("remove an old golden file");
        }
        for (name, bytes) in &actual {
            fs::write(dir.join(name), bytes).expect("write a golden file");
        }
        eprintln!("blessed {} golden files in {}", actual.len(), dir.display());
        return;
    }

    let golden = golden_files();
    assert_eq!(
        golden.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "the dry run wrote other files than the golden ones (BULLETIN_BLESS=1 to update)"
    );
    for (name, expected) in &golden {
        let got = &actual[name];
        assert!(
            expected == got,
            "{name} differs from tests/golden/digest/{name} at {} (BULLETIN_BLESS=1 to update)",
            first_difference(expected, got)
        );
    }
}

#[test]
fn dry_run_creates_no_state_database() {
    let site = Site::example();
    site.dry_run("out", NOW).ok();
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
    let first = site.dry_run("out1", NOW).ok();
    let second = site.dry_run("out2", NOW).ok();
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
    let first = site.dry_run("out", NOW).ok().files();
    let again = site.dry_run("out", NOW).ok().files();
    assert_eq!(first, again);
}
