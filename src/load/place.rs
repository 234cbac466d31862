//! Where a valid record is, and reading it back from there.
//!
//! A sink that may keep a record (a feed's newest, an old article the
//! digest may show as a related read) keeps only its keys and its
//! [`Place`]; the few it finally keeps are decoded at the end by
//! [`Records::read`]. So a record that is dropped later costs the same as
//! one never kept, whatever the order of the input (a chronological export
//! makes every record the newest for a moment). Reading a record back
//! checks its bytes against the hash taken when it was first read: a file
//! changed in between is an error, never a mix of two versions.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::diag::{Location, Problem, Problems};
use crate::model::{Article, Site};

use super::record::{JsonText, RawRecord, RecordContext};

/// Where a valid record is in its input: the file (its index among the
/// scan's files), the byte range, and a hash of those bytes. 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Place {
    pub(crate) file: u32,
    pub(crate) len: u32,
    pub(crate) offset: u64,
    pub(crate) hash: u64,
}

/// The files one scan read, to read records back from their places.
pub struct Records {
    files: Vec<PathBuf>,
    site: Site,
}

impl Records {
    pub(crate) fn new(files: Vec<PathBuf>, site: Site) -> Records {
        Records { files, site }
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
            reader.article(&self.files, places[i], &cx, body)
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
        files: &[PathBuf],
        place: Place,
        cx: &RecordContext<'_>,
        body: bool,
    ) -> Result<Article, Problem> {
        let path = &files[place.file as usize];
        let changed = || changed(path);
        if self
            .open
            .as_ref()
            .is_none_or(|(file, _)| *file != place.file)
        {
            let file = std::fs::File::open(path).map_err(|e| cannot_read(path, &e))?;
            self.open = Some((place.file, file));
        }
        let (_, file) = self.open.as_ref().expect("opened above");
        self.buffer.resize(place.len as usize, 0);
        file.read_exact_at(&mut self.buffer, place.offset)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => changed(),
                _ => cannot_read(path, &e),
            })?;
        if xxhash_rust::xxh3::xxh3_64(&self.buffer) != place.hash {
            return Err(changed());
        }
        // The same bytes as before: they parse and check as they did.
        let text = std::str::from_utf8(&self.buffer).map_err(|_| changed())?;
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
