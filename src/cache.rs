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

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::feed::Selection;
use crate::load::{FileResult, IdPlace, Reuse, Sink};
use crate::model::{Article, Site};

const FORMAT: u32 = 1;

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
    /// Id fingerprints and places, packed little-endian (u64, u32, u32).
    ids: String,
    articles: Vec<Article>,
}

pub struct BuildCache<'s> {
    dir: PathBuf,
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

    fn read_entry(&self, input: &Path) -> Option<Entry> {
        let text = std::fs::read(self.entry_path(input)).ok()?;
        let entry: Entry = serde_json::from_slice(&text).ok()?;
        let current = entry.format == FORMAT
            && entry.version == env!("CARGO_PKG_VERSION")
            && entry.config == format!("{:032x}", self.config)
            && entry.now <= self.now;
        current.then_some(entry)
    }
}

/// The hash of a file's bytes, read in large blocks.
fn hash_file(path: &Path) -> Option<(u128, u64)> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).ok()?;
        if n == 0 {
            return Some((hasher.digest128(), size));
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
}

fn pack(ids: &[IdPlace]) -> String {
    let mut bytes = Vec::with_capacity(ids.len() * 16);
    for id in ids {
        bytes.extend_from_slice(&id.hash.to_le_bytes());
        bytes.extend_from_slice(&id.line.to_le_bytes());
        bytes.extend_from_slice(&id.col.to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unpack(text: &str) -> Option<Vec<IdPlace>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    if bytes.len() % 16 != 0 {
        return None;
    }
    let ids = bytes
        .chunks_exact(16)
        .map(|c| IdPlace {
            hash: u64::from_le_bytes(c[..8].try_into().expect("8 bytes")),
            line: u32::from_le_bytes(c[8..12].try_into().expect("4 bytes")),
            col: u32::from_le_bytes(c[12..].try_into().expect("4 bytes")),
        })
        .collect();
    Some(ids)
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
        let ids = unpack(&entry.ids)?;
        let mut sink = Selection::new(self.site, self.now, self.per_feed);
        for article in entry.articles {
            sink.accept(article);
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
        let entry = Entry {
            format: FORMAT,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            config: format!("{:032x}", self.config),
            content: format!("{content:032x}"),
            size,
            now: self.now,
            count: result.count,
            ids: pack(&result.ids),
            articles: articles.into_iter().cloned().collect(),
        };
        // Not synced to disk: a torn entry fails to parse and is a miss. A
        // cache that cannot be written only costs the next build time.
        if let Ok(bytes) = serde_json::to_vec(&entry) {
            let target = self.entry_path(path);
            let temp = target.with_extension(format!("{}.tmp", std::process::id()));
            let written = std::fs::create_dir_all(&self.dir)
                .and_then(|()| std::fs::write(&temp, bytes))
                .and_then(|()| std::fs::rename(&temp, &target));
            if written.is_err() {
                let _ = std::fs::remove_file(&temp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_places_round_trip() {
        let ids = vec![
            IdPlace {
                hash: u64::MAX,
                line: 7,
                col: 3,
            },
            IdPlace {
                hash: 1,
                line: 1,
                col: 1,
            },
        ];
        assert_eq!(unpack(&pack(&ids)).unwrap(), ids);
        assert!(unpack("AAAA").is_none());
    }
}
