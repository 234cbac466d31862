//! Reading article records from the inputs the config lists.
//!
//! Each input is a file or a folder read recursively (in name order, so the
//! result never depends on the file system). `*.toml`, `*.json`, `*.jsonl`
//! and `*.ndjson` are records; other files in folders are ignored. Every
//! problem in every file is collected; the caller gets either all articles
//! or all problems, never a partial corpus.

mod formats;
mod place;
pub mod record;
pub mod subscribers;
mod subscribers_csv;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::diag::{LineIndex, Location, Problem, Problems};
use crate::model::Article;
pub use place::{Pages, Place, Records, hash_file};
pub use record::Offer;
use record::{LongText, RawRecord, RecordContext, Source};

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

/// Receives every valid record as the inputs stream by. Loading runs on
/// several threads, each with its own sink; `merge` folds them together.
pub trait Sink: Send + Sized {
    /// Whether it may keep records by place (then the scan hashes the
    /// pages of what it reads, to read them back safely).
    const READS_BACK: bool = true;
    /// Takes what it keeps of a valid record ([`Offer`]): nothing, its keys
    /// and place, or the article decoded now. What it does not ask for is
    /// never copied out of the input.
    fn accept<L: LongText>(&mut self, offer: Offer<'_, '_, L>);
    fn merge(&mut self, other: Self);
    /// The records it holds by place only and needs decoded (with their
    /// body) before [`scan`] returns it.
    fn pending(&self) -> Vec<Place> {
        Vec::new()
    }
    /// The articles of [`pending`](Self::pending), decoded.
    fn decoded(&mut self, _articles: &HashMap<Place, Arc<Article>>) {}
}

/// Keeps nothing: for validating only.
#[derive(Default)]
pub struct Discard;

impl Sink for Discard {
    const READS_BACK: bool = false;

    fn accept<L: LongText>(&mut self, _: Offer<'_, '_, L>) {}

    fn merge(&mut self, _: Self) {}
}

/// Validates every article of the site; returns how many there are.
pub fn validate(config: &Config) -> Result<usize, Problems> {
    scan(config, || Discard, None).map(|loaded| loaded.count)
}

/// What [`scan`] gives back: the merged sink (its pending records decoded),
/// the number of valid articles, and the files, to read more records back.
pub struct Loaded<S> {
    pub sink: S,
    pub count: usize,
    pub records: Records,
}

/// Where an id was seen in a file: a fingerprint of the id and its place.
/// 16 bytes an article; the full ids are not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdPlace {
    pub hash: u64,
    pub line: u32,
    pub col: u32,
}

/// What one input file contributed: its sink, the ids it holds, and how
/// many valid articles.
pub struct FileResult<S> {
    pub sink: S,
    pub ids: Vec<IdPlace>,
    pub count: usize,
}

/// A store of earlier results per file, keyed on the file's content.
pub trait Reuse<S>: Sync {
    /// An earlier result for exactly the current content of `path`.
    fn lookup(&self, path: &Path) -> Option<FileResult<S>>;
    /// Keeps the result of a file parsed without problems; `content` is the
    /// hash of exactly the bytes that were parsed.
    fn store(&self, path: &Path, content: u128, result: &FileResult<S>);
}

/// Reads and validates every input, offering each valid record to a sink,
/// on all cores: JSON Lines files are cut into blocks at line ends and the
/// blocks parsed in parallel; other files are parsed whole. Files `reuse`
/// knows unchanged are not parsed at all. What the sinks keep by place is
/// decoded at the end, each record once. Returns the merged sink, or every
/// problem found.
pub fn scan<S: Sink>(
    config: &Config,
    make: impl Fn() -> S + Sync,
    reuse: Option<&dyn Reuse<S>>,
) -> Result<Loaded<S>, Problems> {
    let mut problems = Problems::default();
    let files = input_files(&config.inputs, &mut problems);
    // Asked for every record: a hash set, not a scan of the sections.
    let sections: std::collections::HashSet<&str, xxhash_rust::xxh3::Xxh3DefaultBuilder> =
        config.site.sections.iter().map(|s| s.id.as_str()).collect();
    let section_exists = |id: &str| sections.contains(id);
    let cx = RecordContext {
        base_url: &config.site.base_url,
        zone: config.site.zone,
        section_exists: &section_exists,
    };

    let mut reused: Vec<Option<FileResult<S>>> = files
        .iter()
        .map(|(path, _)| reuse.and_then(|r| r.lookup(path)))
        .collect();
    let workers = crate::parallel::cores().clamp(1, 16);
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Unit>(workers * 2);
    let receiver = std::sync::Mutex::new(receiver);
    // Blocks go back to the reader once parsed: a few buffers in circulation
    // instead of fresh (page-faulting) memory for every block.
    let (recycle, spare) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut read_errors = Vec::new();
    let mut block_pages: HashMap<u32, Pages> = HashMap::new();
    let collectors: Vec<Collector<S>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (receiver, files, cx, make) = (&receiver, &files, &cx, &make);
                let recycle = recycle.clone();
                scope.spawn(move || {
                    let mut out = Collector::new(cx);
                    loop {
                        let unit = receiver.lock().expect("a worker panicked").recv();
                        let Ok(unit) = unit else { break };
                        out.origin = Origin {
                            file: unit.file,
                            chunk: unit.chunk,
                        };
                        out.sinks.entry(unit.file).or_insert_with(make);
                        let (path, format) = &files[unit.file as usize];
                        match unit.lines {
                            None => {
                                let pages = formats::read_file(path, *format, &mut out);
                                out.whole_pages.extend(pages.map(|p| (unit.file, p)));
                            }
                            Some(block) => {
                                let lines = formats::read_json_lines(
                                    path,
                                    &block,
                                    unit.start,
                                    unit.chunk == 0,
                                    &mut out,
                                );
                                out.chunk_lines.push((out.origin, lines));
                                let _ = recycle.send(block);
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        for (index, (path, format)) in files.iter().enumerate() {
            if reused[index].is_some() {
                continue;
            }
            let file = index as u32;
            let sent = match format {
                Format::JsonLines => {
                    let hash = reuse.is_some() || S::READS_BACK;
                    send_blocks(path, file, &sender, &spare, hash).map(|pages| {
                        block_pages.extend(pages.map(|p| (file, p)));
                    })
                }
                _ => sender
                    .send(Unit {
                        file,
                        chunk: 0,
                        start: 0,
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
    let mut pages = block_pages;
    pages.extend(all.whole_pages.drain(..));
    let Parsed {
        mut results,
        problem_files,
    } = all.finish(&files, &mut reused, &mut problems);

    let hashes: HashMap<u32, u128> = pages
        .iter()
        .map(|(&file, pages)| (file, pages.content_hash()))
        .collect();
    let records = Records::new(
        files.iter().map(|(path, _)| path.clone()).collect(),
        (0..files.len() as u32)
            .map(|file| pages.remove(&file).unwrap_or_default())
            .collect(),
        config.site.clone(),
    );
    let mut decoder = Decoder {
        records: &records,
        decoded: HashMap::new(),
    };
    // Keep what each cleanly parsed file contributed, for the next run.
    if let Some(reuse) = reuse {
        for (index, result) in results.iter_mut().enumerate() {
            let file = index as u32;
            if let (Some(result), Some(hash), false) = (
                result,
                hashes.get(&file),
                reused[index].is_some() || problem_files.contains(&file),
            ) && decoder.decode(&mut result.sink, &mut problems)
            {
                reuse.store(&files[index].0, *hash, result);
            }
        }
    }
    let mut sink = make();
    let mut count = 0;
    for result in results
        .iter_mut()
        .zip(reused)
        .filter_map(|(parsed, reused)| reused.or_else(|| parsed.take()))
    {
        count += result.count;
        sink.merge(result.sink);
    }
    if problems.is_empty() {
        decoder.decode(&mut sink, &mut problems);
    }
    problems.into_result(Loaded {
        sink,
        count,
        records,
    })
}

/// Decodes what sinks keep by place, each record once however many sinks
/// hold it (a file's own result for the build cache, then the merged one).
struct Decoder<'r> {
    records: &'r Records,
    decoded: HashMap<Place, Arc<Article>>,
}

impl Decoder<'_> {
    /// Hands `sink` the articles it holds by place; `false` (and the
    /// problems) when a file changed since it was read.
    fn decode<S: Sink>(&mut self, sink: &mut S, problems: &mut Problems) -> bool {
        let mut places = sink.pending();
        places.retain(|place| !self.decoded.contains_key(place));
        match self.records.read(&places, true) {
            Ok(articles) => {
                let articles = articles.into_iter().map(Arc::new);
                self.decoded.extend(places.into_iter().zip(articles));
                sink.decoded(&self.decoded);
                true
            }
            Err(found) => {
                problems.extend(found);
                false
            }
        }
    }
}

/// A piece of work for a loader thread: a whole file, or a block of lines
/// starting at byte `start` of the file.
struct Unit {
    file: u32,
    chunk: u32,
    start: u64,
    lines: Option<Vec<u8>>,
}

/// Bytes per block of JSON Lines handed to a thread (a longer line makes a
/// longer block): small enough to stay in cache between the UTF-8 check
/// and the parse, large enough that handing blocks over costs nothing.
const BLOCK: usize = 512 << 10;

/// Cuts a JSON Lines file into blocks that end at line ends; returns the
/// pages of everything read when `hash` asks for them (to read records
/// back, for the build cache).
fn send_blocks(
    path: &Path,
    file: u32,
    sender: &std::sync::mpsc::SyncSender<Unit>,
    spare: &std::sync::mpsc::Receiver<Vec<u8>>,
    hash: bool,
) -> Result<Option<Pages>, Option<Problem>> {
    use std::io::Read;
    let cannot = |e: std::io::Error| {
        Some(Problem::new(
            Location::file(path),
            None,
            format!("cannot read: {e}"),
        ))
    };
    let mut input = std::fs::File::open(path).map_err(cannot)?;
    let mut pages = Pages::default();
    let mut carry: Vec<u8> = Vec::new();
    let mut chunk = 0;
    // Where the next block starts in the file.
    let mut at = 0u64;
    loop {
        let mut block = std::mem::take(&mut carry);
        let start = block.len();
        block.reserve(BLOCK);
        // `read_to_end` on a `Take` fills the spare capacity without zeroing
        // it. It reads `BLOCK` bytes but at the end of the file: whole pages.
        let n = (&mut input)
            .take(BLOCK as u64)
            .read_to_end(&mut block)
            .map_err(cannot)?;
        if hash {
            pages.add(&block[start..]);
        }
        if n == 0 {
            if !block.is_empty() {
                sender
                    .send(Unit {
                        file,
                        chunk,
                        start: at,
                        lines: Some(block),
                    })
                    .map_err(|_| None)?;
            }
            return Ok(hash.then_some(pages));
        }
        match memchr::memrchr(b'\n', &block) {
            Some(end) => {
                carry = spare.try_recv().unwrap_or_default();
                carry.clear();
                carry.reserve(BLOCK);
                carry.extend_from_slice(&block[end + 1..]);
                block.truncate(end + 1);
                let length = block.len() as u64;
                sender
                    .send(Unit {
                        file,
                        chunk,
                        start: at,
                        lines: Some(block),
                    })
                    .map_err(|_| None)?;
                chunk += 1;
                at += length;
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

/// An id as seen by a loader thread, its line still block-relative.
struct IdSeen {
    origin: Origin,
    place: IdPlace,
}

/// Receives records from the format readers, validates them and hands the
/// articles to the current file's sink; keeps what is wrong.
pub(crate) struct Collector<'a, S> {
    cx: &'a RecordContext<'a>,
    sinks: HashMap<u32, S>,
    counts: HashMap<u32, usize>,
    origin: Origin,
    ids: Vec<IdSeen>,
    problems: Vec<(Origin, Problem)>,
    /// Lines in each JSON Lines block, to turn block lines into file lines.
    chunk_lines: Vec<(Origin, usize)>,
    /// The pages of whole files read by this thread.
    whole_pages: Vec<(u32, Pages)>,
}

/// What all loader threads found, per file.
struct Parsed<S> {
    results: Vec<Option<FileResult<S>>>,
    problem_files: std::collections::HashSet<u32>,
}

/// Finds where a record and its fields are in the input text.
pub(crate) trait Locate {
    fn path(&self) -> &Path;
    /// Line and column of the record's start.
    fn record(&self) -> (usize, usize);
    /// Line and column of `field`, or of the record when it cannot be found.
    fn field(&self, field: &str) -> (usize, usize);
    /// Where the `id` field is, kept for every record in case it turns out
    /// a duplicate. Column 0: not looked for yet, see [`id_column`].
    fn id_place(&self) -> (usize, usize) {
        self.field("id")
    }
    /// The record's text and its byte offset in the file, when it can be
    /// read again from there (JSON and JSON Lines; not TOML).
    fn source(&self) -> Option<(u64, &str)>;
}

impl<'a, S: Sink> Collector<'a, S> {
    fn new(cx: &'a RecordContext<'a>) -> Self {
        Collector {
            cx,
            sinks: HashMap::new(),
            counts: HashMap::new(),
            origin: Origin::default(),
            ids: Vec::new(),
            problems: Vec::new(),
            chunk_lines: Vec::new(),
            whole_pages: Vec::new(),
        }
    }

    pub(crate) fn problem(&mut self, problem: Problem) {
        self.problems.push((self.origin, problem));
    }

    pub(crate) fn record<L: LongText>(&mut self, raw: RawRecord<L>, at: &dyn Locate) {
        if let Some(id) = raw
            .id()
            .map(crate::text::one_line_cow)
            .filter(|id| !id.is_empty())
        {
            let (line, col) = at.id_place();
            let place = IdPlace {
                hash: id_fingerprint(&id),
                line: line as u32,
                col: col as u32,
            };
            self.ids.push(IdSeen {
                origin: self.origin,
                place,
            });
        }
        match raw.check(self.cx) {
            Ok(checked) => {
                *self.counts.entry(self.origin.file).or_default() += 1;
                let sink = self
                    .sinks
                    .get_mut(&self.origin.file)
                    .expect("a sink per file being read");
                let file = self.origin.file;
                let source = at
                    .source()
                    .map(|(offset, text)| Source { file, offset, text });
                sink.accept(Offer::new(checked, self.cx, source));
            }
            Err(errors) => {
                for e in errors {
                    let (line, col) = at.field(e.field);
                    let location = Location::at(at.path(), line, col);
                    let problem = Problem::new(location, Some(e.field), e.message);
                    self.problem(match e.suggest {
                        Some(suggest) => problem.suggesting(suggest),
                        None => problem,
                    });
                }
            }
        }
    }

    fn absorb(&mut self, other: Self) {
        for (file, sink) in other.sinks {
            match self.sinks.get_mut(&file) {
                Some(mine) => mine.merge(sink),
                None => {
                    self.sinks.insert(file, sink);
                }
            }
        }
        for (file, n) in other.counts {
            *self.counts.entry(file).or_default() += n;
        }
        self.ids.extend(other.ids);
        self.problems.extend(other.problems);
        self.chunk_lines.extend(other.chunk_lines);
        self.whole_pages.extend(other.whole_pages);
    }

    /// Turns block-relative lines into file lines, reports duplicate ids
    /// across parsed and reused files (naming both places), appends every
    /// problem in input order, and splits the results per file.
    fn finish(
        mut self,
        files: &[(PathBuf, Format)],
        reused: &mut [Option<FileResult<S>>],
        problems: &mut Problems,
    ) -> Parsed<S> {
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

        // Every id with its file and file line, parsed or reused, each file's
        // list sorted by fingerprint in place (16 bytes an article, no copy
        // of all of them), then merged across files to find equal ones.
        let mut per_file: Vec<Vec<IdPlace>> = vec![Vec::new(); files.len()];
        for seen in std::mem::take(&mut self.ids) {
            let mut place = seen.place;
            place.line += offset(&seen.origin) as u32;
            per_file[seen.origin.file as usize].push(place);
        }
        let key = |p: &IdPlace| (p.hash, p.line, p.col);
        for list in per_file.iter_mut() {
            list.sort_unstable_by_key(key);
        }
        for result in reused.iter_mut().flatten() {
            result.ids.sort_unstable_by_key(key);
        }
        let lists: Vec<(u32, &[IdPlace])> = per_file
            .iter()
            .enumerate()
            .chain(
                reused
                    .iter()
                    .enumerate()
                    .filter_map(|(f, r)| r.as_ref().map(|r| (f, &r.ids))),
            )
            .filter(|(_, list)| !list.is_empty())
            .map(|(f, list)| (f as u32, list.as_slice()))
            .collect();
        let place = |&(file, p): &(u32, IdPlace)| {
            Location::at(&files[file as usize].0, p.line as usize, p.col as usize)
        };
        let mut found = Vec::new();
        let mut sources = Sources::default();
        let mut groups = duplicate_fingerprints(&lists);
        for group in &mut groups {
            for (file, p) in group.iter_mut().filter(|(_, p)| p.col == 0) {
                p.col = id_column(&files[*file as usize].0, p.line, &mut sources).unwrap_or(1);
            }
            group.sort_unstable_by_key(|&(file, p)| (file, p.line, p.col));
        }
        // Equal fingerprints are confirmed by reading both ids back (rare:
        // only on the error path), so a hash collision is never reported.
        // Read in file order: a place in a long line (a one-line JSON array)
        // is found from the one before it, not from the line's start.
        let mut places: Vec<(u32, u32, u32)> = groups
            .iter()
            .flatten()
            .map(|&(file, p)| (file, p.line, p.col))
            .collect();
        places.sort_unstable();
        places.dedup();
        let ids: HashMap<(u32, u32, u32), String> = places
            .into_iter()
            .filter_map(|key @ (file, line, col)| {
                let id = id_at(&files[file as usize].0, line, col, &mut sources)?;
                Some((key, id))
            })
            .collect();
        for group in groups {
            let mut first_of: HashMap<&str, usize> = HashMap::new();
            for (j, seen) in group.iter().enumerate() {
                let Some(id) = ids.get(&(seen.0, seen.1.line, seen.1.col)) else {
                    continue;
                };
                if let Some(&first) = first_of.get(id.as_str()) {
                    let message = format!("{id:?} is already used at {}", place(&group[first]));
                    let origin = Origin {
                        file: seen.0,
                        chunk: 0,
                    };
                    found.push((origin, Problem::new(place(seen), Some("id"), message)));
                } else {
                    first_of.insert(id, j);
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
        let problem_files = self
            .problems
            .iter()
            .map(|(origin, _)| origin.file)
            .collect();
        problems.0.extend(self.problems.drain(..).map(|(_, p)| p));

        let mut results: Vec<Option<FileResult<S>>> = (0..files.len()).map(|_| None).collect();
        for (file, sink) in self.sinks {
            let ids = std::mem::take(&mut per_file[file as usize]);
            let count = self.counts.get(&file).copied().unwrap_or(0);
            results[file as usize] = Some(FileResult { sink, ids, count });
        }
        Parsed {
            results,
            problem_files,
        }
    }
}

/// Groups of places sharing a fingerprint, across lists each sorted by
/// fingerprint: a k-way merge, so nothing is copied but the groups.
fn duplicate_fingerprints(lists: &[(u32, &[IdPlace])]) -> Vec<Vec<(u32, IdPlace)>> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut heads: BinaryHeap<Reverse<(u64, usize, usize)>> = lists
        .iter()
        .enumerate()
        .map(|(l, (_, list))| Reverse((list[0].hash, l, 0)))
        .collect();
    let mut groups = Vec::new();
    let mut current: Vec<(u32, IdPlace)> = Vec::new();
    while let Some(Reverse((hash, l, i))) = heads.pop() {
        let (file, list) = lists[l];
        if current.first().is_some_and(|(_, p)| p.hash != hash) {
            if current.len() > 1 {
                groups.push(std::mem::take(&mut current));
            }
            current.clear();
        }
        current.push((file, list[i]));
        if let Some(next) = list.get(i + 1) {
            heads.push(Reverse((next.hash, l, i + 1)));
        }
    }
    if current.len() > 1 {
        groups.push(current);
    }
    groups
}

/// A 64-bit fingerprint of an id, for the duplicate check.
fn id_fingerprint(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// Input files read back for the duplicate check, each once.
#[derive(Default)]
struct Sources {
    files: HashMap<PathBuf, Option<(String, LineIndex)>>,
}

impl Sources {
    fn file(&mut self, path: &Path) -> Option<&(String, LineIndex)> {
        let entry = self.files.entry(path.to_path_buf()).or_insert_with(|| {
            let text = std::fs::read_to_string(path).ok()?;
            let index = LineIndex::new(&text);
            Some((text, index))
        });
        entry.as_ref()
    }

    /// Line `number` (1-based) of the file at `path`.
    fn line(&mut self, path: &Path, number: usize) -> Option<&str> {
        let (text, index) = self.file(path)?;
        index.line(text, number)
    }

    /// The rest of line `number` from column `col` (in characters). Asked
    /// in order along a line, finding each costs only the distance from the
    /// one before.
    fn from(&mut self, path: &Path, number: usize, col: usize) -> Option<&str> {
        let (text, index) = self.file(path)?;
        let start = index.offset(text, number, col)?;
        let line = index.line(text, number)?;
        let line_start = line.as_ptr() as usize - text.as_ptr() as usize;
        line.get(start - line_start..)
    }
}

/// The column of the `id` key on line `line` of a JSON Lines file.
fn id_column(path: &Path, line: u32, sources: &mut Sources) -> Option<u32> {
    let text = sources.line(path, line as usize)?;
    let offset = formats::find_key(text, "id", true)?;
    Some(text[..offset].chars().count() as u32 + 1)
}

/// The id value assigned at `line`:`col` (the position of its `id` key),
/// read back from the file: `"id": "x"` in JSON, `id = "x"` in TOML.
fn id_at(path: &Path, line: u32, col: u32, sources: &mut Sources) -> Option<String> {
    let rest = sources.from(path, line as usize, col as usize)?;
    let rest = rest
        .trim_start_matches('"')
        .strip_prefix("id")?
        .trim_start_matches('"')
        .trim_start();
    let value = rest.strip_prefix([':', '='])?.trim_start();
    let mut json = serde_json::Deserializer::from_str(value).into_iter::<String>();
    if let Some(Ok(id)) = json.next() {
        return Some(crate::text::one_line(&id));
    }
    // A TOML literal string ends at the next quote: the rest of a long
    // line (inline tables) is not parsed again for every id.
    if let Some(literal) = value.strip_prefix('\'').filter(|v| !v.starts_with("''")) {
        return Some(crate::text::one_line(literal.split('\'').next()?))
            .filter(|_| literal.contains('\''));
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
