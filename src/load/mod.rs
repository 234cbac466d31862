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

use chrono::{DateTime, Utc};

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

/// Receives every valid article as the inputs stream by. Loading runs on
/// several threads, each with its own sink; `merge` folds them together.
pub trait Sink: Send + Sized {
    /// Whether an article with this date, id and section would be kept;
    /// one that would not is never copied out of the input.
    fn wants(&self, _published: DateTime<Utc>, _id: &str, _section: &str) -> bool {
        true
    }
    fn accept(&mut self, article: Article);
    fn merge(&mut self, other: Self);
}

/// Keeps every article: for small sites and the digest.
#[derive(Default)]
pub struct KeepAll(pub Vec<Article>);

impl Sink for KeepAll {
    fn accept(&mut self, article: Article) {
        self.0.push(article);
    }

    fn merge(&mut self, other: Self) {
        self.0.extend(other.0);
    }
}

/// Loads and validates every article of the site, keeping them all.
pub fn load_articles(config: &Config) -> Result<Vec<Article>, Problems> {
    let (all, _) = scan(config, KeepAll::default)?;
    Ok(all.0)
}

/// Reads and validates every input, handing each valid article to a sink,
/// on all cores: JSON Lines files are cut into blocks at line ends and the
/// blocks parsed in parallel; other files are parsed whole. Returns the
/// merged sink and the number of articles, or every problem found.
pub fn scan<S: Sink>(config: &Config, make: impl Fn() -> S + Sync) -> Result<(S, usize), Problems> {
    let mut problems = Problems::default();
    let files = input_files(&config.inputs, &mut problems);
    let section_exists = |id: &str| config.site.section(id).is_some();
    let cx = RecordContext {
        base_url: &config.site.base_url,
        zone: config.site.zone,
        section_exists: &section_exists,
    };
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 16);
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Unit>(workers * 2);
    let receiver = std::sync::Mutex::new(receiver);
    let mut read_errors = Vec::new();
    let collectors: Vec<Collector<S>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (receiver, files, cx, make) = (&receiver, &files, &cx, &make);
                scope.spawn(move || {
                    let mut out = Collector::new(cx, make());
                    loop {
                        let unit = receiver.lock().expect("a worker panicked").recv();
                        let Ok(unit) = unit else { break };
                        out.origin = Origin {
                            file: unit.file,
                            chunk: unit.chunk,
                        };
                        let (path, format) = &files[unit.file as usize];
                        match unit.lines {
                            None => formats::read_file(path, *format, &mut out),
                            Some(block) => {
                                let lines = formats::read_json_lines(
                                    path,
                                    &block,
                                    unit.chunk == 0,
                                    &mut out,
                                );
                                out.chunk_lines.push((out.origin, lines));
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        for (index, (path, format)) in files.iter().enumerate() {
            let file = index as u32;
            let sent = match format {
                Format::JsonLines => send_blocks(path, file, &sender),
                _ => sender
                    .send(Unit {
                        file,
                        chunk: 0,
                        lines: None,
                    })
                    .map_err(|_| None),
            };
            if let Err(Some(e)) = sent {
                read_errors.push(e);
            }
        }
        drop(sender);
        handles
            .into_iter()
            .map(|h| h.join().expect("a loader thread panicked"))
            .collect()
    });
    problems.0.extend(read_errors);

    let mut collectors = collectors.into_iter();
    let mut all = collectors.next().expect("at least one worker");
    for other in collectors {
        all.absorb(other);
    }
    let Collector { sink, count, .. } = all.finish(&files, &mut problems);
    problems.into_result((sink, count))
}

/// A piece of work for a loader thread: a whole file, or a block of lines.
struct Unit {
    file: u32,
    chunk: u32,
    lines: Option<Vec<u8>>,
}

/// Bytes per block of JSON Lines handed to a thread (a longer line makes a
/// longer block).
const BLOCK: usize = 4 << 20;

/// Cuts a JSON Lines file into blocks that end at line ends.
fn send_blocks(
    path: &Path,
    file: u32,
    sender: &std::sync::mpsc::SyncSender<Unit>,
) -> Result<(), Option<Problem>> {
    use std::io::Read;
    let cannot = |e: std::io::Error| {
        Some(Problem::new(
            Location::file(path),
            None,
            format!("cannot read: {e}"),
        ))
    };
    let mut input = std::fs::File::open(path).map_err(cannot)?;
    let mut carry: Vec<u8> = Vec::new();
    let mut chunk = 0;
    loop {
        let mut block = std::mem::take(&mut carry);
        block.reserve(BLOCK);
        // `read_to_end` on a `Take` fills the spare capacity without zeroing it.
        let n = (&mut input)
            .take(BLOCK as u64)
            .read_to_end(&mut block)
            .map_err(cannot)?;
        if n == 0 {
            if !block.is_empty() {
                sender
                    .send(Unit {
                        file,
                        chunk,
                        lines: Some(block),
                    })
                    .map_err(|_| None)?;
            }
            return Ok(());
        }
        match memchr::memrchr(b'\n', &block) {
            Some(end) => {
                carry.reserve(BLOCK);
                carry.extend_from_slice(&block[end + 1..]);
                block.truncate(end + 1);
                sender
                    .send(Unit {
                        file,
                        chunk,
                        lines: Some(block),
                    })
                    .map_err(|_| None)?;
                chunk += 1;
            }
            None => carry = block,
        }
    }
}

/// Which unit of work a position is relative to: JSON Lines blocks count
/// lines from their own start until all blocks are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct Origin {
    file: u32,
    chunk: u32,
}

/// Where an id was seen: a fingerprint of the id and its place. 24 bytes an
/// article; the full ids are not kept.
struct IdSeen {
    hash: u64,
    origin: Origin,
    line: u32,
    col: u32,
}

/// Receives records from the format readers, validates them and hands the
/// articles to the sink; keeps what is wrong.
pub(crate) struct Collector<'a, S> {
    cx: &'a RecordContext<'a>,
    sink: S,
    count: usize,
    origin: Origin,
    ids: Vec<IdSeen>,
    problems: Vec<(Origin, Problem)>,
    /// Lines in each JSON Lines block, to turn block lines into file lines.
    chunk_lines: Vec<(Origin, usize)>,
}

/// Finds where a record and its fields are in the input text.
pub(crate) trait Locate {
    fn path(&self) -> &Path;
    /// Line and column of the record's start.
    fn record(&self) -> (usize, usize);
    /// Line and column of `field`, or of the record when it cannot be found.
    fn field(&self, field: &str) -> (usize, usize);
}

impl<'a, S: Sink> Collector<'a, S> {
    fn new(cx: &'a RecordContext<'a>, sink: S) -> Self {
        Collector {
            cx,
            sink,
            count: 0,
            origin: Origin::default(),
            ids: Vec::new(),
            problems: Vec::new(),
            chunk_lines: Vec::new(),
        }
    }

    pub(crate) fn problem(&mut self, problem: Problem) {
        self.problems.push((self.origin, problem));
    }

    pub(crate) fn record(&mut self, raw: RawRecord, at: &dyn Locate) {
        if let Some(id) = raw
            .id()
            .map(crate::text::one_line)
            .filter(|id| !id.is_empty())
        {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::hash::DefaultHasher::new();
            id.hash(&mut hasher);
            let (line, col) = at.field("id");
            self.ids.push(IdSeen {
                hash: hasher.finish(),
                origin: self.origin,
                line: line as u32,
                col: col as u32,
            });
        }
        match raw.check(self.cx) {
            Ok(checked) => {
                self.count += 1;
                if self
                    .sink
                    .wants(checked.published(), &checked.id(), &checked.section())
                {
                    self.sink.accept(checked.into_article());
                }
            }
            Err(errors) => {
                for e in errors {
                    let (line, col) = at.field(e.field);
                    let location = Location::at(at.path(), line, col);
                    self.problem(Problem::new(location, Some(e.field), e.message));
                }
            }
        }
    }

    fn absorb(&mut self, other: Self) {
        self.sink.merge(other.sink);
        self.count += other.count;
        self.ids.extend(other.ids);
        self.problems.extend(other.problems);
        self.chunk_lines.extend(other.chunk_lines);
    }

    /// Turns block-relative lines into file lines, reports duplicate ids
    /// (naming both places), and appends every problem in input order.
    fn finish(mut self, files: &[(PathBuf, Format)], problems: &mut Problems) -> Self {
        self.chunk_lines.sort();
        let mut first_line: HashMap<Origin, usize> = HashMap::new();
        let mut running = (u32::MAX, 0usize);
        for (origin, lines) in &self.chunk_lines {
            if running.0 != origin.file {
                running = (origin.file, 0);
            }
            first_line.insert(*origin, running.1);
            running.1 += lines;
        }
        let offset = |origin: &Origin| first_line.get(origin).copied().unwrap_or(0);

        self.ids.sort_by_key(|s| (s.hash, s.origin, s.line, s.col));
        let place = |s: &IdSeen| {
            Location::at(
                &files[s.origin.file as usize].0,
                s.line as usize + offset(&s.origin),
                s.col as usize,
            )
        };
        // Equal fingerprints are confirmed by reading both ids back (rare:
        // only on the error path), so a hash collision is never reported.
        let mut found = Vec::new();
        let mut group_start = 0;
        for i in 1..=self.ids.len() {
            if i < self.ids.len() && self.ids[i].hash == self.ids[group_start].hash {
                continue;
            }
            let group = &self.ids[group_start..i];
            group_start = i;
            if group.len() < 2 {
                continue;
            }
            let ids: Vec<Option<String>> = group.iter().map(|s| id_at(&place(s))).collect();
            for (j, seen) in group.iter().enumerate().skip(1) {
                if let Some(first) = (0..j).find(|&k| ids[k].is_some() && ids[k] == ids[j]) {
                    let id = ids[j].as_deref().unwrap_or_default();
                    let message = format!("{id:?} is already used at {}", place(&group[first]));
                    found.push((seen.origin, Problem::new(place(seen), Some("id"), message)));
                }
            }
        }
        for (origin, problem) in &mut self.problems {
            if let Some(line) = problem.location.line.as_mut() {
                *line += offset(origin);
            }
        }
        // Positions in `found` are file lines already.
        self.problems.extend(found);
        self.problems
            .sort_by_key(|(origin, p)| (origin.file, p.location.line, p.location.col));
        problems.0.extend(self.problems.drain(..).map(|(_, p)| p));
        self
    }
}

/// The id value assigned at `at` (the position of its `id` key), read back
/// from the file: `"id": "x"` in JSON, `id = "x"` in TOML.
fn id_at(at: &Location) -> Option<String> {
    let text = std::fs::read_to_string(&at.path).ok()?;
    let line = text.lines().nth(at.line? - 1)?;
    let start = line.char_indices().nth(at.col? - 1).map(|(i, _)| i)?;
    let rest = line[start..]
        .trim_start_matches('"')
        .strip_prefix("id")?
        .trim_start_matches('"')
        .trim_start();
    let value = rest.strip_prefix([':', '='])?.trim_start();
    let mut json = serde_json::Deserializer::from_str(value).into_iter::<String>();
    if let Some(Ok(id)) = json.next() {
        return Some(crate::text::one_line(&id));
    }
    let table: HashMap<String, String> = toml::from_str(&format!("v = {value}")).ok()?;
    table.get("v").map(|id| crate::text::one_line(id))
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
