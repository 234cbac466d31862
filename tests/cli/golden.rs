//! The example site (the repository's own `feeds.toml` and `examples/`),
//! built at a fixed clock; the feeds it writes (`<out>/feeds/`) are compared
//! byte for byte with `tests/golden/feeds/`.
//!
//! `BULLETIN_BLESS=1` rewrites the golden files from the current output
//! (and removes golden files the build no longer produces) instead of
//! comparing. Review the diff before committing it.

use std::collections::BTreeMap;

use crate::support::{Cmd, NOW, assert_golden, read_files, repo_root};

/// Builds the example site at [`NOW`] (the clock the golden files were made
/// with: after every example article) into a new temporary folder.
pub fn build_example() -> tempfile::TempDir {
    let out = tempfile::Builder::new()
        .prefix("bulletin-example-")
        .tempdir()
        .expect("temporary folder");
    Cmd::new()
        .arg("build")
        .config(&repo_root().join("feeds.toml"))
        .out(out.path())
        .args(["--now", NOW])
        .run()
        .assert_success();
    out
}

#[test]
fn example_site_matches_the_golden_files() {
    let out = build_example();
    let feeds: BTreeMap<String, Vec<u8>> = read_files(out.path())
        .into_iter()
        .map(|(rel, bytes)| {
            let feed = rel
                .strip_prefix("feeds/")
                .unwrap_or_else(|| panic!("the build wrote {rel}, outside feeds/"))
                .to_owned();
            (feed, bytes)
        })
        .collect();
    assert_golden("feeds", &feeds);
}
