//! Where a valid record is, and reading it back from there.
//!
//! A sink that may keep a record (a feed's newest, an old article the
//! digest may show as a related read) keeps only its keys and its
//! [`Place`]; the few it finally keeps are decoded at the end by
//! [`Records::read`]. So a record that is dropped later costs the same as
//! one never kept, whatever the order of the input (a chronological export
//! makes every record the newest for a moment).
//!
//! While a file is read, each 4 KiB page of it is hashed ([`Pages`]; the
//! build cache's content hash is made of those too, so a cached build
//! hashes nothing twice). Reading a record back checks the pages it lies
//! on: a file changed in between is an error, never a mix of two versions.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::diag::{Location, Problem, Problems};
use crate::model::{Article, Site};

use super::record::{JsonText, RawRecord, RecordContext};

/// Where a valid record is in its input: the file (its index among the
/// scan's files) and the byte range. 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Place {
    pub(crate) file: u32,
    pub(crate) len: u32,
    pub(crate) offset: u64,
}

/// Bytes per hashed page.
const PAGE: usize = 4096;

/// The XXH3-64 of each 4 KiB page of a file, and its length: 0.2 % of the
/// file's size.
#[derive(Debug, Default, Clone)]
pub struct Pages {
    hashes: Vec<u64>,
    len: u64,
}

impl Pages {
    /// Hashes the next bytes of the file; all but the last call must give
    /// whole pages.
    pub(crate) fn add(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        debug_assert!(self.len.is_multiple_of(PAGE as u64), "pages stay aligned");
        self.hashes
            .extend(bytes.chunks(PAGE).map(xxhash_rust::xxh3::xxh3_64));
        self.len += bytes.len() as u64;
    }

    /// The pages of `bytes`, a whole file.
    pub(crate) fn of(bytes: &[u8]) -> Pages {
        let mut pages = Pages::default();
        pages.add(bytes);
        pages
    }

    /// The file's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The hash that identifies the file's content for the build cache
    /// (XXH3-128 of its length and page hashes).
    pub fn content_hash(&self) -> u128 {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(&self.len.to_le_bytes());
        for hash in &self.hashes {
            hasher.update(&hash.to_le_bytes());
        }
        hasher.digest128()
    }

    /// Whether `bytes`, read from offset `start` (a page boundary), are the
    /// pages as they were hashed.
    fn matches(&self, start: u64, bytes: &[u8]) -> bool {
        let first = (start / PAGE as u64) as usize;
        bytes
            .chunks(PAGE)
            .enumerate()
            .all(|(i, page)| self.hashes.get(first + i) == Some(&xxhash_rust::xxh3::xxh3_64(page)))
    }
}

/// The pages of the file at `path`, read in large blocks (the build cache
/// checks an input with this).
pub fn hash_file(path: &Path) -> std::io::Result<Pages> {
    let mut file = std::fs::File::open(path)?;
    let mut pages = Pages::default();
    let mut buffer = Vec::with_capacity(1 << 20);
    loop {
        buffer.clear();
        // Whole pages but at the end; `read_to_end` on a `Take` fills the
        // spare capacity without zeroing it.
        let n = (&mut file).take(1 << 20).read_to_end(&mut buffer)?;
        if n == 0 {
            return Ok(pages);
        }
        pages.add(&buffer);
    }
}

/// The files one scan read, to read records back from their places.
pub struct Records {
    files: Vec<PathBuf>,
    /// Per file, its pages as the scan read them.
    pages: Vec<Pages>,
    site: Site,
}

impl Records {
    pub(crate) fn new(files: Vec<PathBuf>, pages: Vec<Pages>, site: Site) -> Records {
        Records { files, pages, site }
    }

    /// The articles at `places`, in the same order, decoded as
    /// [`Offer::article`](super::Offer::article) would have; on every
    /// core. Fails when a file changed since it was read.
    pub fn read(&self, places: &[Place], body: bool) -> Result<Vec<Article>, Problems> {
        let section_exists = |id: &str| self.site.sections.position(id).is_some();
        let cx = RecordContext {
            base_url: &self.site.base_url,
            zone: self.site.zone,
            section_exists: &section_exists,
        };
        // In file order, so each thread reads forward through its files.
        let mut order: Vec<usize> = (0..places.len()).collect();
        order.sort_unstable_by_key(|&i| (places[i].file, places[i].offset));
        let threads = crate::parallel::cores()
            .min(order.len().div_ceil(256))
            .max(1);
        let decoded = crate::parallel::map_with(&order, threads, Reader::default, |reader, &i| {
            reader.article(self, places[i], &cx, body)
        });
        let mut articles: Vec<Option<Article>> = (0..places.len()).map(|_| None).collect();
        let mut problems = Problems::default();
        for (i, result) in order.into_iter().zip(decoded) {
            match result {
                Ok(article) => articles[i] = Some(article),
                Err(problem) => problems.push(problem),
            }
        }
        if !problems.is_empty() {
            problems
                .0
                .sort_by(|a, b| a.location.path.cmp(&b.location.path));
            problems
                .0
                .dedup_by(|a, b| a.location.path == b.location.path);
            return Err(problems);
        }
        Ok(articles.into_iter().flatten().collect())
    }
}

/// One thread's open file and buffer.
#[derive(Default)]
struct Reader {
    open: Option<(u32, std::fs::File)>,
    buffer: Vec<u8>,
}

impl Reader {
    fn article(
        &mut self,
        records: &Records,
        place: Place,
        cx: &RecordContext<'_>,
        body: bool,
    ) -> Result<Article, Problem> {
        let path = &records.files[place.file as usize];
        let changed = || changed(path);
        let pages = records.pages.get(place.file as usize).ok_or_else(changed)?;
        if self
            .open
            .as_ref()
            .is_none_or(|(file, _)| *file != place.file)
        {
            let file = std::fs::File::open(path).map_err(|e| cannot_read(path, &e))?;
            self.open = Some((place.file, file));
        }
        let (_, file) = self.open.as_ref().expect("opened above");
        // The whole pages the record lies on, checked against their hashes.
        let page = PAGE as u64;
        let end = place.offset + u64::from(place.len);
        let start = place.offset / page * page;
        let stop = end.div_ceil(page).saturating_mul(page).min(pages.len);
        if end > stop {
            return Err(changed());
        }
        self.buffer.resize((stop - start) as usize, 0);
        file.read_exact_at(&mut self.buffer, start)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => changed(),
                _ => cannot_read(path, &e),
            })?;
        if !pages.matches(start, &self.buffer) {
            return Err(changed());
        }
        let record = &self.buffer[(place.offset - start) as usize..(end - start) as usize];
        // The same bytes as before: they parse and check as they did.
        let text = std::str::from_utf8(record).map_err(|_| changed())?;
        let fast = serde_json::from_str::<RawRecord<JsonText>>(text)
            .ok()
            .and_then(|raw| raw.check(cx).ok())
            .map(|checked| checked.into_article(cx, body));
        match fast {
            Some(article) => Ok(article),
            None => serde_json::from_str::<RawRecord>(text)
                .ok()
                .and_then(|raw| raw.check(cx).ok())
                .map(|checked| checked.into_article(cx, body))
                .ok_or_else(changed),
        }
    }
}

fn changed(path: &Path) -> Problem {
    Problem::new(
        Location::file(path),
        None,
        "changed while bulletin was reading it; nothing was written: run again",
    )
}

fn cannot_read(path: &Path, e: &std::io::Error) -> Problem {
    Problem::new(
        Location::file(path),
        None,
        format!("cannot read again: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::load::record::LongText;
    use crate::load::{Offer, Sink, scan};

    /// Keeps every record both ways: decoded at once, and by place.
    #[derive(Default)]
    struct Both(Vec<(Article, Place)>);

    impl Sink for Both {
        fn accept<L: LongText>(&mut self, offer: Offer<'_, '_, L>) {
            let place = offer.place().expect("JSON records have a place");
            self.0.push((offer.article(true), place));
        }

        fn merge(&mut self, other: Self) {
            self.0.extend(other.0);
        }

        // Nothing pending: the test reads the places back itself.
        fn decoded(&mut self, _: &HashMap<Place, Arc<Article>>) {}
    }

    fn site(dir: &Path, input: &str) -> Config {
        let text = format!(
            "[site]\ntitle = \"t\"\nbase_url = \"https://news.example.cn/\"\nlanguage = \"zh-CN\"\n\
             timezone = \"+08:00\"\n\n[input]\npaths = [\"{input}\"]\n\n[[sections]]\nid = \"news\"\ntitle = \"n\"\n"
        );
        Config::parse(&text, &dir.join("feeds.toml"), dir).expect("a valid config")
    }

    /// `n` records, each a few hundred bytes (so they straddle pages), with
    /// escapes in their long fields.
    fn records(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                serde_json::json!({
                    "id": format!("a{i:05}"),
                    "title": format!("标题 \"{i}\""),
                    "section": "news",
                    "url": format!("/news/{i}.html"),
                    "published": format!("2017-03-{:02} 10:{:02}", 1 + i % 28, i % 60),
                    "keywords": ["基层干部", format!("k{}", i % 7)],
                    "summary": format!("摘要\t{i}"),
                    "content_html": format!("<p>{}</p>\n<p>\"{i}\"</p>", "正文".repeat(40 + i % 50)),
                    "related": [format!("a{:05}", i / 2)],
                })
                .to_string()
            })
            .collect()
    }

    #[test]
    fn records_read_back_from_their_places_are_the_articles_decoded_at_once() {
        let dir = tempfile::tempdir().unwrap();
        // A byte order mark, CRLF line ends and a blank line: the places
        // must still point at the records.
        let lines = records(300);
        let text = format!("\u{feff}{}\r\n\n", lines.join("\r\n"));
        std::fs::write(dir.path().join("a.jsonl"), &text).unwrap();
        let array = format!("\u{feff}[\n  {}\n]", lines.join(",\n  "));
        std::fs::write(dir.path().join("b.json"), &array).unwrap();
        for input in ["a.jsonl", "b.json"] {
            let loaded = scan(&site(dir.path(), input), Both::default, None).unwrap();
            let (articles, places): (Vec<Article>, Vec<Place>) = loaded.sink.0.into_iter().unzip();
            assert_eq!(articles.len(), 300);
            let again = loaded.records.read(&places, true).unwrap();
            assert_eq!(again, articles, "{input}");
            let bare = loaded.records.read(&places[..3], false).unwrap();
            assert!(
                bare.iter()
                    .all(|a| a.content_html.is_none() && a.related.is_empty())
            );
            assert_eq!(bare[0].summary, articles[0].summary);
        }
    }

    #[test]
    fn a_file_changed_after_it_was_read_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, records(50).join("\n")).unwrap();
        let loaded = scan(&site(dir.path(), "a.jsonl"), Both::default, None).unwrap();
        let places: Vec<Place> = loaded.sink.0.iter().map(|(_, p)| *p).collect();
        // The same length, one character of the last record's body changed.
        let text = std::fs::read_to_string(&path).unwrap();
        let at = text.rfind("正文").unwrap();
        std::fs::write(&path, format!("{}文正{}", &text[..at], &text[at + 6..])).unwrap();
        let problems = loaded.records.read(&places, true).unwrap_err();
        assert_eq!(problems.0.len(), 1, "{problems}");
        let problem = &problems.0[0];
        assert_eq!(problem.location.path, path);
        assert!(problem.message.contains("changed while"), "{problem}");
        // Records on pages that did not change still read back (the first:
        // threads may have handed the records over in any order).
        let first = *places.iter().min_by_key(|p| p.offset).unwrap();
        assert!(loaded.records.read(&[first], true).is_ok());
        // A file cut short is refused too.
        std::fs::write(&path, &text.as_bytes()[..text.len() / 2]).unwrap();
        assert!(loaded.records.read(&places, true).is_err());
    }
}
