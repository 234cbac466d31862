//! Golden files: what bulletin generates, compared byte for byte with
//! `tests/golden/<name>/`. `BULLETIN_BLESS=1` rewrites a golden folder from
//! the current output instead (and removes golden files no longer
//! produced); review the diff before committing it.
//!
//! Files whose name starts with `.` (`.gitattributes`, which keeps the
//! CRLF line ends of golden messages as they are) are not golden files.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::files::{files_under, read};
use super::repo_root;

/// The variable that rewrites golden files instead of comparing.
const BLESS_VAR: &str = "BULLETIN_BLESS";

fn blessing() -> bool {
    std::env::var_os(BLESS_VAR).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The golden files of a folder, by relative path.
fn golden_files(dir: &Path) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter(|rel| !rel.rsplit('/').next().unwrap_or(rel).starts_with('.'))
        .collect()
}

/// Asserts that `produced` (path relative to the golden folder → bytes) is
/// exactly the golden folder `tests/golden/<name>`: the same files, the same
/// bytes; with `BULLETIN_BLESS=1`, rewrites the folder from it instead.
#[track_caller]
pub fn assert_golden(name: &str, produced: &BTreeMap<String, Vec<u8>>) {
    let dir = repo_root().join("tests/golden").join(name);
    if blessing() {
        bless(&dir, produced);
        return;
    }
    let expected = golden_files(&dir);
    assert!(
        !expected.is_empty(),
        "no golden files in {}; create them with {BLESS_VAR}=1 cargo test golden",
        dir.display()
    );
    assert_eq!(
        produced.keys().collect::<Vec<_>>(),
        expected.iter().collect::<Vec<_>>(),
        "other files were generated than tests/golden/{name} holds (left: generated, right: \
         golden); rerun with {BLESS_VAR}=1 if the change is intended"
    );
    let differing: Vec<String> = produced
        .iter()
        .filter(|(rel, bytes)| read(&dir.join(rel)) != **bytes)
        .map(|(rel, bytes)| format!("{rel}\n{}", first_difference(bytes, &read(&dir.join(rel)))))
        .collect();
    assert!(
        differing.is_empty(),
        "{} generated file(s) differ from tests/golden/{name} (left: generated, right: golden; \
         rerun with {BLESS_VAR}=1 if intended):\n{}",
        differing.len(),
        differing.join("\n")
    );
}

fn bless(dir: &Path, produced: &BTreeMap<String, Vec<u8>>) {
    for stale in golden_files(dir) {
        if !produced.contains_key(&stale) {
            fs::remove_file(dir.join(&stale)).expect("remove a stale golden file");
            eprintln!("{BLESS_VAR}: removed {}", dir.join(&stale).display());
        }
    }
    for (rel, bytes) in produced {
        let target = dir.join(rel);
        fs::create_dir_all(target.parent().expect("a parent")).expect("create golden folder");
        fs::write(&target, bytes).expect("write golden file");
    }
    eprintln!(
        "{BLESS_VAR}: rewrote {} golden files in {}; review `git diff tests/golden` before \
         committing",
        produced.len(),
        dir.display()
    );
}

/// Where two files first differ, by line, for a readable failure.
pub fn first_difference(left: &[u8], right: &[u8]) -> String {
    let (left, right) = (
        String::from_utf8_lossy(left),
        String::from_utf8_lossy(right),
    );
    let mut l = left.split('\n');
    let mut r = right.split('\n');
    let mut n = 0;
    loop {
        n += 1;
        match (l.next(), r.next()) {
            (None, None) => return "  (the same text; the bytes differ)".into(),
            (x, y) if x != y => {
                return format!(
                    "  line {n}\n  left:  {:?}\n  right: {:?}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                );
            }
            _ => {}
        }
    }
}
