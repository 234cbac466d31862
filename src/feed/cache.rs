//! The build cache: what an unchanged input file contributed last time.
//!
//! For each input file parsed without problems, `build` keeps the articles
//! that file placed in any feed (plus its scheduled ones), the fingerprints
//! and places of its ids, and its article count, keyed on a hash of the
//! file's bytes (XXH3-128), the config's text and bulletin's version. A later
//! build re-reads and hashes every file — never trusting sizes or mtimes —
//! and reuses an entry only when the hash matches and the clock has not gone
//! backwards (an earlier clock could bring back articles the entry dropped).
//! Anything unexpected in an entry makes it a miss, never an error.
//! Entries are written to temporary files (`temp`: created exclusively,
//! removed if the run is interrupted) and renamed into place.

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::feed::Selection;
use crate::load::{FileResult, IdPlace, Reuse};
use crate::model::{Article, Site};
use crate::temp::Temp;

/// 2: the content hash is made of page hashes (`load::Pages`).
const FORMAT: u32 = 2;

#[derive(Serialize, Deserialize)]
struct Entry {
    format: u32,
    version: String,
    /// Hex of the config fingerprint.
    config: String,
    /// Hex of the content hash.
    content: String,
    size: u64,
    now: DateTime<Utc>,
    count: usize,
    /// How many id places the companion `.ids` file holds, packed
    /// little-endian (u64, u32, u32): 16 bytes each.
    ids: usize,
    /// XXH3-64 of the `.ids` file, so it is never paired with another entry.
    ids_hash: u64,
    articles: Vec<Article>,
}

pub struct BuildCache<'s> {
    dir: PathBuf,
    /// Stale temporary files of dead runs are removed before the first store.
    swept: std::sync::Once,
    config: u128,
    site: &'s Site,
    now: DateTime<Utc>,
    per_feed: usize,
}

impl<'s> BuildCache<'s> {
    pub fn new(
        dir: &Path,
        config: u128,
        site: &'s Site,
        now: DateTime<Utc>,
        per_feed: usize,
    ) -> Self {
        BuildCache {
            dir: dir.to_path_buf(),
            swept: std::sync::Once::new(),
            config,
            site,
            now,
            per_feed,
        }
    }

    fn entry_path(&self, input: &Path) -> PathBuf {
        let key = xxhash_rust::xxh3::xxh3_64(input.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{key:016x}.json"))
    }

    /// Removes what interrupted runs left in the cache folder (once a run).
    fn sweep(&self) {
        self.swept
            .call_once(|| crate::temp::sweep_stale(&self.dir, true));
    }

    fn read_entry(&self, input: &Path) -> Option<Entry> {
        self.sweep();
        let text = std::fs::read(self.entry_path(input)).ok()?;
        let entry: Entry = serde_json::from_slice(&text).ok()?;
        let current = entry.format == FORMAT
            && entry.version == env!("CARGO_PKG_VERSION")
            && entry.config == format!("{:032x}", self.config)
            && entry.now <= self.now;
        current.then_some(entry)
    }
}

/// The content hash of a file (as loading computes it) and its size.
fn hash_file(path: &Path) -> Option<(u128, u64)> {
    let pages = crate::load::hash_file(path).ok()?;
    Some((pages.content_hash(), pages.len()))
}

/// Whether a cached article has the shape validation gives fresh ones:
/// http(s) links, a declared section, clean one-line text, no characters
/// XML cannot carry.
fn plausible(article: &Article, site: &Site) -> bool {
    use crate::text::{is_one_line, is_unsafe_char};
    let web = |url: &url::Url| {
        matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty())
    };
    let line = |text: &str| !text.is_empty() && is_one_line(text);
    let clean = |text: &str| !text.chars().any(is_unsafe_char);
    web(&article.url)
        && article.image.as_ref().is_none_or(web)
        && site.section(article.section.as_str()).is_some()
        && line(article.id.as_str())
        && line(&article.title)
        && [&article.author, &article.editor, &article.source]
            .iter()
            .all(|t| t.as_deref().is_none_or(line))
        && article.keywords.iter().all(|k| line(k))
        && article.related.iter().all(|r| line(r.as_str()))
        && article.summary.as_deref().is_none_or(clean)
        && article.content_html.as_deref().is_none_or(clean)
        && article.updated >= article.published
}

const ID_BYTES: usize = 16;

/// Writes id places packed, without building a copy of them all; returns
/// the hash of what it wrote.
fn write_ids(file: std::fs::File, ids: &[IdPlace]) -> std::io::Result<u64> {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for id in ids {
        let mut packed = [0u8; ID_BYTES];
        packed[..8].copy_from_slice(&id.hash.to_le_bytes());
        packed[8..12].copy_from_slice(&id.line.to_le_bytes());
        packed[12..].copy_from_slice(&id.col.to_le_bytes());
        hasher.update(&packed);
        out.write_all(&packed)?;
    }
    out.flush()?;
    Ok(hasher.digest())
}

/// Reads `count` packed id places, in small blocks, if they hash to `hash`.
fn read_ids(path: &Path, count: usize, hash: u64) -> Option<Vec<IdPlace>> {
    let mut file = std::fs::File::open(path).ok()?;
    if file.metadata().ok()?.len() != (count * ID_BYTES) as u64 {
        return None;
    }
    let mut ids = Vec::with_capacity(count);
    let mut block = vec![0u8; ID_BYTES * 4096];
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    while ids.len() < count {
        let n = (count - ids.len()).min(4096) * ID_BYTES;
        file.read_exact(&mut block[..n]).ok()?;
        hasher.update(&block[..n]);
        ids.extend(block[..n].chunks_exact(ID_BYTES).map(|c| IdPlace {
            hash: u64::from_le_bytes(c[..8].try_into().expect("8 bytes")),
            line: u32::from_le_bytes(c[8..12].try_into().expect("4 bytes")),
            col: u32::from_le_bytes(c[12..].try_into().expect("4 bytes")),
        }));
    }
    (hasher.digest() == hash).then_some(ids)
}

impl<'s> Reuse<Selection<'s>> for BuildCache<'s> {
    fn lookup(&self, path: &Path) -> Option<FileResult<Selection<'s>>> {
        let entry = self.read_entry(path)?;
        let size = std::fs::metadata(path).ok()?.len();
        if size != entry.size {
            return None;
        }
        let (content, size) = hash_file(path)?;
        if format!("{content:032x}") != entry.content || size != entry.size {
            return None;
        }
        let ids = read_ids(
            &self.entry_path(path).with_extension("ids"),
            entry.ids,
            entry.ids_hash,
        )?;
        // Entries are keyed on hashes anyone can recompute: what they hold is
        // checked like fresh input, and one article that would not pass
        // makes the whole entry a miss.
        if !entry.articles.iter().all(|a| plausible(a, self.site)) {
            return None;
        }
        let mut sink = Selection::new(self.site, self.now, self.per_feed);
        for article in entry.articles {
            sink.add(article);
        }
        Some(FileResult {
            sink,
            ids,
            count: entry.count,
        })
    }

    fn store(&self, path: &Path, content: u128, result: &FileResult<Selection<'s>>) {
        let Some(articles) = result.sink.kept() else {
            return;
        };
        let Ok(size) = std::fs::metadata(path).map(|m| m.len()) else {
            return;
        };
        let target = self.entry_path(path);
        let ids_target = target.with_extension("ids");
        // Not synced to disk: a torn entry fails to parse, a torn or foreign
        // id file fails its hash, and either is a miss. A cache that cannot
        // be written only costs the next build time; temporary files that
        // were not moved into place remove themselves.
        self.sweep();
        let _ = std::fs::create_dir_all(&self.dir)
            .and_then(|()| Temp::beside(&ids_target))
            .and_then(|(ids_temp, file)| Ok((ids_temp, write_ids(file, &result.ids)?)))
            .and_then(|(mut ids_temp, ids_hash)| {
                let entry = Entry {
                    format: FORMAT,
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    config: format!("{:032x}", self.config),
                    content: format!("{content:032x}"),
                    size,
                    now: self.now,
                    count: result.count,
                    ids: result.ids.len(),
                    ids_hash,
                    articles: articles.into_iter().cloned().collect(),
                };
                let bytes = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
                let (mut entry_temp, mut file) = Temp::beside(&target)?;
                std::io::Write::write_all(&mut file, &bytes)?;
                ids_temp.persist(&ids_target)?;
                entry_temp.persist(&target)
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_places_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.ids");
        let ids: Vec<IdPlace> = (0..10_000u32)
            .map(|i| IdPlace {
                hash: u64::MAX - i as u64,
                line: i,
                col: 3,
            })
            .collect();
        let hash = write_ids(std::fs::File::create(&path).unwrap(), &ids).unwrap();
        assert_eq!(read_ids(&path, ids.len(), hash).unwrap(), ids);
        assert!(read_ids(&path, ids.len() + 1, hash).is_none());
        assert!(read_ids(&path, ids.len(), hash ^ 1).is_none());
    }
}
