//! `bulletin`: RSS, Atom and JSON feeds plus an email digest for news sites.
//!
//! The library behind the `bulletin` binary. Data flows one way:
//!
//! ```text
//! feeds.toml ─► config ─┐
//! inputs ─────► load ───► model::Article ─┬─► feed ─► output (files)
//!                                         └─► digest (plan, compose) ─► deliver ─► SMTP
//!                                                      ledger (what was sent) ◄──┘
//! ```
//!
//! `ARCHITECTURE.md` at the repository's root maps every module, says which
//! may use which, and lists the invariants each keeps. In short: `model`,
//! `text`, `diag` and `parallel` are the ground floor; `config`, `load`,
//! `feed` and `digest` are pure or read only their inputs; `output` writes
//! files; `ledger` owns the state database; `deliver` is the only module
//! that talks to a mail server, `websub` the only one that makes HTTP
//! requests (to WebSub hubs); `commands` (with `main`) is the only place
//! that reads the clock and the environment.

// The library's public surface is its modules: an item `pub` in a private
// module is a mistake (tests and the binary are separate crates).
#![warn(unreachable_pub)]

pub mod archive;
pub mod bounce;
pub mod cli;
pub mod commands;
pub mod config;
pub mod deliver;
pub mod diag;
pub mod digest;
pub mod dkim;
pub mod error;
pub mod feed;
pub mod ledger;
pub mod load;
pub mod model;
pub mod output;
pub mod parallel;
pub mod progress;
pub mod report;
pub mod serve;
pub mod signals;
pub mod suppression;
pub mod temp;
pub mod text;
pub mod token;
pub mod unsubscribe;
pub mod websub;

pub use error::Failure;

/// The modules each module may use (`crate::…`), as `ARCHITECTURE.md`
/// draws them: dependencies point one way, down this list. `lib`, `main`
/// and `commands` sit on top and may use anything.
#[cfg(test)]
const LAYERS: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("text", &[]),
    ("diag", &[]),
    ("parallel", &[]),
    ("progress", &[]),
    ("token", &[]),
    ("temp", &[]),
    ("signals", &["temp"]),
    ("dkim", &[]),
    ("websub", &[]),
    ("error", &["diag"]),
    ("report", &["diag", "progress"]),
    ("config", &["diag", "model", "text"]),
    ("output", &["parallel", "temp"]),
    ("load", &["config", "diag", "model", "parallel", "text"]),
    (
        "feed",
        &[
            "config", "diag", "load", "model", "output", "parallel", "temp", "text",
        ],
    ),
    ("ledger", &["error", "model"]),
    ("suppression", &["diag", "ledger", "model"]),
    (
        "bounce",
        &["config", "error", "ledger", "model", "report", "token"],
    ),
    (
        "unsubscribe",
        &["config", "error", "ledger", "load", "model", "token"],
    ),
    (
        "digest",
        &[
            "config", "diag", "dkim", "error", "feed", "ledger", "load", "model", "output",
            "parallel", "report", "text", "token",
        ],
    ),
    (
        "archive",
        &[
            "config", "digest", "feed", "model", "output", "parallel", "text",
        ],
    ),
    (
        "deliver",
        &[
            "config", "digest", "error", "ledger", "model", "progress", "report", "text",
        ],
    ),
    (
        "serve",
        &[
            "config",
            "error",
            "ledger",
            "report",
            "token",
            "unsubscribe",
        ],
    ),
    ("cli", &[]),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    /// The crate modules a source file names (`crate::x`, `use crate::{x, y}`),
    /// its unit tests left out; `crate::Failure` counts as `error`.
    fn uses(source: &str) -> BTreeSet<String> {
        let code = source.split("#[cfg(test)]").next().unwrap_or("");
        let mut found = BTreeSet::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let names: Vec<String> = match rest.strip_prefix('{') {
                Some(list) => list[..list.find('}').unwrap_or(0)]
                    .split(',')
                    .filter_map(|item| item.trim().split("::").next())
                    .map(|name| name.trim().to_owned())
                    .collect(),
                None => vec![
                    rest.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect(),
                ],
            };
            found.extend(names.into_iter().filter(|n| !n.is_empty()).map(|n| {
                if n == "Failure" {
                    "error".to_owned()
                } else {
                    n
                }
            }));
        }
        found
    }

    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }

    #[test]
    fn dependencies_point_one_way() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        let mut wrong = Vec::new();
        for file in files {
            let relative = file.strip_prefix(&src).unwrap();
            let first = relative.iter().next().unwrap().to_string_lossy();
            let module = first.trim_end_matches(".rs");
            let Some((_, allowed)) = super::LAYERS.iter().find(|(m, _)| *m == module) else {
                assert!(
                    ["lib", "main", "commands"].contains(&module),
                    "{module} is missing from LAYERS"
                );
                continue;
            };
            let source = std::fs::read_to_string(&file).unwrap();
            for used in uses(&source) {
                let is_module = super::LAYERS.iter().any(|(m, _)| *m == used) || used == "commands";
                if used != module && is_module && !allowed.contains(&used.as_str()) {
                    wrong.push(format!("{} uses crate::{used}", relative.display()));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "dependencies against ARCHITECTURE.md:\n{}",
            wrong.join("\n")
        );
    }
}
