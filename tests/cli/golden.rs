//! The example site (the repository's own `feeds.toml` and `examples/`),
//! built at a fixed clock; the feeds it writes (`<out>/feeds/`) are compared
//! byte for byte with `tests/golden/feeds/`.
//!
//! `BULLETIN_BLESS=1` rewrites the golden files from the current output
//! (and removes golden files the build no longer produces) instead of
//! comparing. Review the diff before committing it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cli::harness::{self, files_under, read, repo_root};

/// The clock the golden files were made with: after every example article.
pub const EXAMPLE_NOW: &str = "2017-03-25T08:00:00+08:00";

/// Builds the example site into a new temporary folder and returns it.
pub fn build_example() -> tempfile::TempDir {
    let out = tempfile::Builder::new()
        .prefix("bulletin-example-")
        .tempdir()
        .expect("temporary folder");
    let output = std::process::Command::new(harness::BIN)
        .arg("build")
        .arg("--config")
        .arg(repo_root().join("feeds.toml"))
        .arg("--out")
        .arg(out.path())
        .args(["--now", EXAMPLE_NOW])
        .output()
        .expect("run bulletin");
    assert!(
        output.status.success(),
        "building the example site failed ({:?}):\n{}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

fn golden_dir() -> PathBuf {
    repo_root().join("tests/golden/feeds")
}

fn blessing() -> bool {
    std::env::var_os("BULLETIN_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

fn bless(out: &Path, golden: &Path) {
    let produced = files_under(out);
    for stale in files_under(golden) {
        if !produced.contains(&stale) {
            fs::remove_file(golden.join(&stale)).expect("remove a stale golden file");
            eprintln!("BULLETIN_BLESS: removed tests/golden/feeds/{stale}");
        }
    }
    for rel in &produced {
        let target = golden.join(rel);
        fs::create_dir_all(target.parent().expect("a parent")).expect("create golden folder");
        fs::write(&target, read(&out.join(rel))).expect("write golden file");
    }
    eprintln!(
        "BULLETIN_BLESS: rewrote {} golden files in {}; review `git diff tests/golden` before committing",
        produced.len(),
        golden.display()
    );
}

#[test]
fn example_site_matches_the_golden_files() {
    let out = build_example();
    let everything = files_under(out.path());
    assert!(
        everything.iter().all(|f| f.starts_with("feeds/")),
        "the build wrote outside feeds/: {everything:?}"
    );
    let feeds = out.path().join("feeds");
    let golden = golden_dir();
    if blessing() {
        bless(&feeds, &golden);
        return;
    }
    let produced = files_under(&feeds);
    let expected = files_under(&golden);
    assert!(
        !expected.is_empty(),
        "no golden files in {}; create them with BULLETIN_BLESS=1 cargo test --test integration golden",
        golden.display()
    );
    assert_eq!(
        produced, expected,
        "the build wrote a different set of files than tests/golden/feeds holds \
         (left: built, right: golden); rerun with BULLETIN_BLESS=1 if the change is intended"
    );
    let mut differing = Vec::new();
    for rel in &produced {
        let built = read(&feeds.join(rel));
        let want = read(&golden.join(rel));
        if built != want {
            differing.push(format!("{rel}\n{}", first_difference(&built, &want)));
        }
    }
    assert!(
        differing.is_empty(),
        "{} generated file(s) differ from tests/golden/feeds (rerun with BULLETIN_BLESS=1 if intended):\n{}",
        differing.len(),
        differing.join("\n")
    );
}

/// The first line where two files differ, for a readable failure.
fn first_difference(built: &[u8], golden: &[u8]) -> String {
    let built = String::from_utf8_lossy(built);
    let golden = String::from_utf8_lossy(golden);
    let mut b = built.lines();
    let mut g = golden.lines();
    let mut n = 0;
    loop {
        n += 1;
        match (b.next(), g.next()) {
            (None, None) => return "  (differ only in line endings)".into(),
            (x, y) if x != y => {
                return format!(
                    "  line {n}\n  built:  {}\n  golden: {}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                );
            }
            _ => {}
        }
    }
}
