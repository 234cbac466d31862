//! Reading article records from the inputs the config lists.
//!
//! Each input is a file or a folder read recursively (in name order, so the
//! result never depends on the file system). `*.toml`, `*.json`, `*.jsonl`
//! and `*.ndjson` are records; other files in folders are ignored. Every
//! problem in every file is collected; the caller gets either all articles
//! or all problems, never a partial corpus.

mod formats;
pub mod record;
pub mod subscribers;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::diag::{Location, Problem, Problems};
use crate::model::Article;
use record::{RawRecord, RecordContext};

/// The input formats, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Toml,
    Json,
    JsonLines,
}

impl Format {
    fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "toml" => Some(Format::Toml),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// Loads and validates every article of the site.
pub fn load_articles(config: &Config) -> Result<Vec<Article>, Problems> {
    let mut problems = Problems::default();
    let files = input_files(&config.inputs, &mut problems);
    let section_exists = |id: &str| config.site.section(id).is_some();
    let cx = RecordContext {
        base_url: &config.site.base_url,
        zone: config.site.zone,
        section_exists: &section_exists,
    };
    let mut collector = Collector {
        cx,
        articles: Vec::new(),
        ids: HashMap::new(),
        problems,
    };
    for (path, format) in files {
        formats::read_file(&path, format, &mut collector);
    }
    let Collector {
        articles, problems, ..
    } = collector;
    problems.into_result(articles)
}

/// Receives records from the format readers, validates them and keeps
/// either the article or the problems.
pub(crate) struct Collector<'a> {
    cx: RecordContext<'a>,
    articles: Vec<Article>,
    /// Where each id was first seen, to name both places of a duplicate.
    ids: HashMap<String, Location>,
    problems: Problems,
}

/// Finds where a record and its fields are in the input text.
pub(crate) trait Locate {
    fn record(&self) -> Location;
    fn field(&self, field: &str) -> Location;
}

impl Collector<'_> {
    pub(crate) fn problem(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    pub(crate) fn record(&mut self, raw: RawRecord, at: &dyn Locate) {
        if let Some(id) = raw
            .id()
            .map(crate::text::one_line)
            .filter(|id| !id.is_empty())
        {
            let here = at.field("id");
            if let Some(first) = self.ids.get(&id) {
                self.problems.push(Problem::new(
                    here,
                    Some("id"),
                    format!("{id:?} is already used at {first}"),
                ));
                return;
            }
            self.ids.insert(id, here);
        }
        match raw.into_article(&self.cx) {
            Ok(article) => self.articles.push(article),
            Err(errors) => {
                for e in errors {
                    let location = at.field(e.field);
                    self.problems
                        .push(Problem::new(location, Some(e.field), e.message));
                }
            }
        }
    }
}

/// The record files named by the inputs, in a stable order.
fn input_files(inputs: &[PathBuf], problems: &mut Problems) -> Vec<(PathBuf, Format)> {
    let mut files = Vec::new();
    for input in inputs {
        match std::fs::metadata(input) {
            Ok(meta) if meta.is_dir() => walk(input, &mut files, problems),
            Ok(_) => match Format::of(input) {
                Some(format) => files.push((input.clone(), format)),
                None => problems.push(Problem::new(
                    Location::file(input),
                    None,
                    "unknown input format; expected .toml, .json, .jsonl or .ndjson",
                )),
            },
            Err(e) => problems.push(Problem::new(
                Location::file(input),
                None,
                format!("cannot read input: {e}"),
            )),
        }
    }
    files
}

fn walk(dir: &Path, files: &mut Vec<(PathBuf, Format)>, problems: &mut Problems) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(Problem::new(
                Location::file(dir),
                None,
                format!("cannot read folder: {e}"),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, files, problems);
        } else if let Some(format) = Format::of(&path) {
            files.push((path, format));
        }
    }
}
