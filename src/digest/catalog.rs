//! The catalog of the archive (the articles of every input) as the digest
//! needs it, built while loading.
//!
//! Articles new enough for this run (inside the window) are decoded in
//! full. Every other article published by the run's clock can only be a
//! related read, and ranking related reads needs only its id, keywords,
//! section and time: that is all the catalog keeps of it, in columns
//! (ids in one string, keywords interned to integers), with the place of
//! its record in the input. The few that some email shows are decoded
//! from there once the plan is made ([`Catalog::decode`]), without their
//! body and their own related list, as before: shown by title, link and
//! their record's `summary`, with no summary derived from a body. Scheduled
//! articles are not kept at all. About 100 bytes an old article, where a
//! decoded one took ~1.4 KB.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};

use crate::diag::Problems;
use crate::load::record::LongText;
use crate::load::{Offer, Place, Records};
use crate::model::Article;

/// Hash maps over keywords and sections, looked up ~5 times a record: XXH3
/// in one shot per key (a batch tool, no flooding concern; the streaming
/// XXH3 hasher costs more than the hash of a short key).
type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<OneShot>>;

/// A `Hasher` that hashes each `write` whole with XXH3, seeded by what came
/// before.
#[derive(Default)]
struct OneShot(u64);

impl std::hash::Hasher for OneShot {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Strings interned to dense integers (keywords, sections).
#[derive(Default)]
struct Interner {
    ids: FastMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// `other`'s ids as ids of this interner (which learns its names).
    fn absorb(&mut self, other: &Interner) -> Vec<u32> {
        other.names.iter().map(|name| self.intern(name)).collect()
    }
}

/// Every article published by `now`, compact; those after `since` in full.
pub struct Catalog {
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    /// Article `i`'s id is `ids[id_ends[i - 1]..id_ends[i]]`.
    ids: String,
    id_ends: Vec<usize>,
    /// Article `i`'s keywords (interned, each once, in the record's order)
    /// are `keywords[keyword_ends[i - 1]..keyword_ends[i]]`.
    keywords: Vec<u32>,
    keyword_ends: Vec<usize>,
    keyword_names: Interner,
    sections: Vec<u32>,
    section_names: Interner,
    /// Publication time as seconds and nanoseconds (12 bytes, where a
    /// `DateTime` column would be 12 with padding rules of its own).
    seconds: Vec<i64>,
    nanos: Vec<u32>,
    /// Where each old article's record is; meaningless for the articles
    /// decoded while loading (they are in `slots` already).
    places: Vec<Place>,
    /// Articles decoded while loading (new ones with their body, and any
    /// that cannot be read again), by index; moved into `slots` by
    /// [`finish`](Self::finish).
    loaded: Vec<(u32, Article)>,
    /// Each article once decoded: filled for the new ones, and for the old
    /// ones an email shows.
    slots: Vec<OnceLock<Box<Article>>>,
    records: Option<Records>,
    /// Keyword ids of the record being taken (scratch).
    scratch: Vec<u32>,
}

/// A place for articles that have none (kept decoded).
const NOWHERE: Place = Place {
    file: u32::MAX,
    len: 0,
    offset: 0,
};

impl Catalog {
    /// An empty catalog for a digest at `now` whose window is `window`.
    pub fn new(now: DateTime<Utc>, window: Duration) -> Self {
        Catalog {
            since: super::window_start(now, window),
            now,
            ids: String::new(),
            id_ends: Vec::new(),
            keywords: Vec::new(),
            keyword_ends: Vec::new(),
            keyword_names: Interner::default(),
            sections: Vec::new(),
            section_names: Interner::default(),
            seconds: Vec::new(),
            nanos: Vec::new(),
            places: Vec::new(),
            loaded: Vec::new(),
            slots: Vec::new(),
            records: None,
            scratch: Vec::new(),
        }
    }

    /// A catalog of articles at hand (tests, samples): all kept decoded,
    /// the new ones with their body.
    pub fn of(articles: Vec<Article>, now: DateTime<Utc>, window: Duration) -> Self {
        let mut catalog = Catalog::new(now, window);
        for article in articles {
            if article.published > now {
                continue;
            }
            catalog.push(
                article.id.as_str(),
                article.keywords.iter(),
                article.section.as_str(),
                article.published,
                NOWHERE,
            );
            let index = catalog.len() as u32 - 1;
            catalog.loaded.push((index, article));
        }
        catalog.finish(None)
    }

    /// Makes the catalog ready for planning: the articles decoded while
    /// loading go into their slots; `records` reads the others later.
    pub fn finish(mut self, records: Option<Records>) -> Self {
        self.slots = (0..self.len()).map(|_| OnceLock::new()).collect();
        for (index, article) in std::mem::take(&mut self.loaded) {
            let _ = self.slots[index as usize].set(Box::new(article));
        }
        self.records = records;
        self.scratch = Vec::new();
        self
    }

    /// How many articles it holds.
    pub fn len(&self) -> usize {
        self.id_ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id_ends.is_empty()
    }

    /// The window's start: articles after it are new, and decoded in full.
    pub fn since(&self) -> DateTime<Utc> {
        self.since
    }

    pub fn id(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.id_ends[i - 1] };
        &self.ids[start..self.id_ends[i]]
    }

    /// Article `i`'s keyword ids.
    pub fn keywords(&self, i: u32) -> &[u32] {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.keyword_ends[i - 1] };
        &self.keywords[start..self.keyword_ends[i]]
    }

    /// How many keywords there are (ids are below this).
    pub fn keyword_count(&self) -> usize {
        self.keyword_names.names.len()
    }

    /// The id of keyword `name`, if any article carries it.
    pub fn keyword(&self, name: &str) -> Option<u32> {
        self.keyword_names.get(name)
    }

    /// Article `i`'s section, as an integer equal for equal sections.
    pub fn section(&self, i: u32) -> u32 {
        self.sections[i as usize]
    }

    pub fn section_name(&self, i: u32) -> &str {
        &self.section_names.names[self.section(i) as usize]
    }

    /// Article `i`'s publication time in whole seconds.
    pub fn seconds(&self, i: u32) -> i64 {
        self.seconds[i as usize]
    }

    /// Article `i`'s publication time.
    pub fn published(&self, i: u32) -> (i64, u32) {
        (self.seconds[i as usize], self.nanos[i as usize])
    }

    /// The new articles (after the window's start), decoded with their body.
    pub fn fresh(&self) -> impl Iterator<Item = &Article> {
        let since = (self.since.timestamp(), self.since.timestamp_subsec_nanos());
        (0..self.len() as u32)
            .filter(move |&i| self.published(i) > since)
            .filter_map(|i| self.slots[i as usize].get().map(|a| a.as_ref()))
    }

    /// Article `i`, decoded: new ones always are; old ones once
    /// [`decode`](Self::decode) has read them.
    pub fn article(&self, i: u32) -> &Article {
        self.slots[i as usize]
            .get()
            .expect("an old article is decoded before it is shown")
    }

    /// Reads the articles `indexes` that are not decoded yet from their
    /// records (without their body), on every core.
    pub fn decode(&self, indexes: &[u32]) -> Result<(), Problems> {
        let mut missing: Vec<u32> = indexes
            .iter()
            .copied()
            .filter(|&i| self.slots[i as usize].get().is_none())
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let records = self
            .records
            .as_ref()
            .expect("a catalog with undecoded articles knows its records");
        let places: Vec<Place> = missing.iter().map(|&i| self.places[i as usize]).collect();
        let articles = records.read(&places, false)?;
        for (i, article) in missing.into_iter().zip(articles) {
            let _ = self.slots[i as usize].set(Box::new(article));
        }
        Ok(())
    }

    /// Appends one article's columns.
    fn push<K: AsRef<str>>(
        &mut self,
        id: &str,
        keywords: impl Iterator<Item = K>,
        section: &str,
        published: DateTime<Utc>,
        place: Place,
    ) {
        self.ids.push_str(id);
        self.id_ends.push(self.ids.len());
        let mut ids = std::mem::take(&mut self.scratch);
        ids.clear();
        ids.extend(keywords.map(|k| self.keyword_names.intern(k.as_ref())));
        self.push_keywords(&ids);
        self.scratch = ids;
        let section = self.section_names.intern(section);
        self.sections.push(section);
        self.seconds.push(published.timestamp());
        self.nanos.push(published.timestamp_subsec_nanos());
        self.places.push(place);
    }

    /// Appends keyword ids, each once (the first kept, like
    /// `text::dedup_keywords`: a scan for short lists, a set for long ones).
    fn push_keywords(&mut self, ids: &[u32]) {
        let start = self.keywords.len();
        if ids.len() > 16 {
            let mut seen = HashSet::with_capacity(ids.len());
            self.keywords
                .extend(ids.iter().copied().filter(|id| seen.insert(*id)));
        } else {
            for &id in ids {
                if !self.keywords[start..].contains(&id) {
                    self.keywords.push(id);
                }
            }
        }
        self.keyword_ends.push(self.keywords.len());
    }
}

impl crate::load::Sink for Catalog {
    fn accept<L: LongText>(&mut self, offer: Offer<'_, '_, L>) {
        let published = offer.published();
        if published > self.now {
            return;
        }
        let index = self.len() as u32;
        let fresh = published > self.since;
        // A new article is decoded now; an old one is kept by place.
        let place = if fresh { None } else { offer.place() };
        self.push(
            &offer.id(),
            offer.keywords(),
            &offer.section(),
            published,
            place.unwrap_or(NOWHERE),
        );
        if place.is_none() {
            self.loaded.push((index, offer.article(fresh)));
        }
    }

    fn merge(&mut self, mut other: Self) {
        if self.is_empty() {
            // Take the other's columns instead of copying them (the larger
            // part of a million-article archive).
            std::mem::swap(self, &mut other);
            return;
        }
        let base = self.len() as u32;
        let (id_base, keyword_base) = (self.ids.len(), self.keywords.len());
        self.ids.push_str(&other.ids);
        self.id_ends
            .extend(other.id_ends.iter().map(|end| end + id_base));
        let keywords = self.keyword_names.absorb(&other.keyword_names);
        self.keywords
            .extend(other.keywords.iter().map(|&k| keywords[k as usize]));
        self.keyword_ends
            .extend(other.keyword_ends.iter().map(|end| end + keyword_base));
        let sections = self.section_names.absorb(&other.section_names);
        self.sections
            .extend(other.sections.iter().map(|&s| sections[s as usize]));
        self.seconds.extend(other.seconds);
        self.nanos.extend(other.nanos);
        self.places.extend(other.places);
        self.loaded.extend(
            other
                .loaded
                .into_iter()
                .map(|(index, article)| (index + base, article)),
        );
    }
}
