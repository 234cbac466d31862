//! Which articles go into which feed, and the feeds as bytes.
//!
//! [`Selection`] picks, for the whole site and for every section (with its
//! sub-sections), the newest published articles. [`render`] turns the plan
//! into files (RSS, Atom, JSON Feed, and an OPML index) as relative paths and
//! bytes; writing them is the caller's job. Rendering is pure and
//! deterministic: the same articles and clock give the same bytes.

pub(crate) mod atom;
pub mod cache;
mod jsonfeed;
mod limit;
mod opml;
mod rss;
mod topics;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use url::Url;

use crate::load::record::LongText;
use crate::load::{Offer, Place, Sink};

use crate::config::{FeedFormat, Output};
use crate::model::{Article, ArticleId, Section, Site, Topic};
use crate::output::OutputFile;

/// One feed: whose it is and what it holds, newest first.
pub struct Feed<'a> {
    /// `None` for the whole site (and for a topic).
    pub section: Option<&'a Section>,
    /// `Some` for a topic's feed (`[[topics]]`).
    pub topic: Option<&'a Topic>,
    pub items: Vec<&'a Article>,
}

/// The newest `per_feed` articles published by `now`, for the site and for
/// each section (a section's feed also carries its descendants'). A loading
/// sink: it keeps a bounded list per feed, never the whole archive, and
/// each candidate in it only as its date, id and place in the input; the
/// articles finally kept are decoded at the end of loading. So a record
/// that is the newest only for a while (every record of a chronological
/// export is) costs little more than one never kept.
pub struct Selection<'s> {
    site: &'s Site,
    now: DateTime<Utc>,
    per_feed: usize,
    /// Feed 0 is the site's; feed `i + 1` is section `i`'s. An article of
    /// section `i` goes to feed 0 and to the feeds of `i`'s lineage
    /// (followed for each article, not stored per section: the loader makes
    /// a selection per file, and a chain of 8,000 sections stored 32 million
    /// targets in each).
    /// After them, feed `1 + sections + t` is topic `t`'s: an article goes
    /// there too when one of its keywords is one of the topic's.
    tops: Vec<Top>,
    topics: topics::TopicIndex,
    /// The oldest date every topic feed would still take an article of;
    /// `None` while one has not been cut yet (it takes anything). Older
    /// articles' keywords are not looked at.
    topic_floor: Option<Key>,
    /// Articles scheduled after `now`: not in any feed, but kept (up to a
    /// limit) so a cached result stays right for a later clock.
    future: Vec<Entry>,
    future_overflow: bool,
}

/// Scheduled articles kept per selection; past this, results are not cached.
const FUTURE_LIMIT: usize = 10_000;

/// When an article was published, as a key that orders like the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    seconds: i64,
    nanos: u32,
}

impl Key {
    fn of(time: DateTime<Utc>) -> Key {
        Key {
            seconds: time.timestamp(),
            nanos: time.timestamp_subsec_nanos(),
        }
    }
}

/// A candidate: its sort key, and the article or where to read it. Ordered
/// best first: newer first, the smaller id breaking a tie (as
/// `Article::newest_first`).
#[derive(Clone)]
struct Entry {
    key: Key,
    id: Id,
    item: Item,
}

#[derive(Clone)]
enum Item {
    Article(Arc<Article>),
    /// Not decoded yet: [`load::scan`](crate::load::scan) decodes what is
    /// still here at the end (see [`Sink::pending`]).
    Later(Place),
}

impl Entry {
    fn article(&self) -> &Article {
        match &self.item {
            Item::Article(article) => article,
            Item::Later(_) => unreachable!("loading decodes every kept article"),
        }
    }

    /// Whether an article with `key` and `id` goes before this one.
    fn beaten_by(&self, key: Key, id: &[u8]) -> bool {
        key > self.key || (key == self.key && id < self.id.as_bytes())
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .cmp(&self.key)
            .then_with(|| self.id.as_bytes().cmp(other.id.as_bytes()))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

/// An article id, stored inline when short (ids mostly are), so that
/// keeping a candidate allocates nothing.
#[derive(Clone)]
enum Id {
    Inline(u8, [u8; INLINE_ID]),
    Long(Box<str>),
}

const INLINE_ID: usize = 22;

impl Id {
    fn new(id: &str) -> Id {
        match id.len() {
            n if n <= INLINE_ID => {
                let mut bytes = [0; INLINE_ID];
                bytes[..n].copy_from_slice(id.as_bytes());
                Id::Inline(n as u8, bytes)
            }
            _ => Id::Long(id.into()),
        }
    }

    /// The id's bytes: compared as bytes, ids order as strings do.
    fn as_bytes(&self) -> &[u8] {
        match self {
            Id::Inline(n, bytes) => &bytes[..*n as usize],
            Id::Long(id) => id.as_bytes(),
        }
    }
}

/// The best `n` candidates of one feed, kept cheaply in any input order: a
/// list of up to `2n`, cut back to the best `n` when full (a quickselect,
/// a few comparisons per candidate where a heap of `n` takes ~2 log n). A
/// newcomer must beat the worst candidate kept at the last cut.
#[derive(Default)]
struct Top {
    entries: Vec<Entry>,
    /// The worst kept at the last cut; none before the first.
    bar: Option<Entry>,
}

impl Top {
    fn takes(&self, n: usize, key: Key, id: &[u8]) -> bool {
        n > 0 && self.bar.as_ref().is_none_or(|bar| bar.beaten_by(key, id))
    }

    /// Adds a candidate; says whether the list was cut (the bar moved).
    fn push(&mut self, n: usize, entry: Entry) -> bool {
        self.entries.push(entry);
        if self.entries.len() < 2 * n {
            return false;
        }
        self.entries.select_nth_unstable(n - 1);
        self.entries.truncate(n);
        // The n-th best is in place at n - 1, every better one before it.
        self.bar = Some(self.entries[n - 1].clone());
        true
    }

    /// The best `n`, best first.
    fn best(&self, n: usize) -> Vec<&Entry> {
        let mut best: Vec<&Entry> = self.entries.iter().collect();
        best.sort_unstable();
        best.truncate(n);
        best
    }
}

impl<'s> Selection<'s> {
    pub fn new(site: &'s Site, now: DateTime<Utc>, per_feed: usize) -> Self {
        Selection {
            site,
            now,
            per_feed,
            tops: (0..=site.sections.len() + site.topics.len())
                .map(|_| Top::default())
                .collect(),
            topics: topics::TopicIndex::new(&site.topics),
            topic_floor: None,
            future: Vec::new(),
            future_overflow: false,
        }
    }

    /// The feeds an article of section position `section` goes to.
    /// (It borrows the site, not the selection, which takes the articles.)
    fn targets(&self, section: usize) -> impl Iterator<Item = usize> + use<'s> {
        let site: &'s Site = self.site;
        std::iter::once(0).chain(site.sections.lineage(section).map(|i| i + 1))
    }

    /// The topic feeds an article with (cleaned) `keywords` goes to.
    fn topic_feeds<'k>(&self, keywords: impl IntoIterator<Item = &'k str>) -> Vec<usize> {
        if self.topics.is_empty() {
            return Vec::new();
        }
        let first = 1 + self.site.sections.len();
        let mut feeds = self.topics.of_all(keywords);
        feeds.iter_mut().for_each(|t| *t += first);
        feeds
    }

    /// The topic feeds that would take an article published at `key` with
    /// `id` and these keywords as written. Most keywords name no topic:
    /// the index says so before the keyword is cleaned; the keywords of an
    /// article older than every topic feed's bar are not looked at.
    fn topic_feeds_taking<'k>(
        &self,
        keywords: impl Iterator<Item = &'k str>,
        key: Key,
        id: &[u8],
    ) -> Vec<usize> {
        if self.topics.is_empty() || self.topic_floor.is_some_and(|floor| key < floor) {
            return Vec::new();
        }
        let first = 1 + self.site.sections.len();
        let mut feeds: Vec<usize> = keywords
            .filter(|k| self.topics.may_name(k))
            .flat_map(|k| self.topics.of(&crate::text::one_line_cow(k)).to_vec())
            .map(|t| first + t)
            .filter(|&f| self.tops[f].takes(self.per_feed, key, id))
            .collect();
        feeds.sort_unstable();
        feeds.dedup();
        feeds
    }

    fn insert(&mut self, feed: usize, entry: &Entry) {
        let n = self.per_feed;
        let top = &mut self.tops[feed];
        if !top.takes(n, entry.key, entry.id.as_bytes()) {
            return;
        }
        let cut = top.push(n, entry.clone());
        let first_topic = 1 + self.site.sections.len();
        if cut && feed >= first_topic {
            self.topic_floor = self.tops[first_topic..]
                .iter()
                .map(|top| top.bar.as_ref().map(|bar| bar.key))
                .collect::<Option<Vec<_>>>()
                .and_then(|bars| bars.into_iter().min());
        }
    }

    /// Places an entry: among the scheduled ones, or in every feed of its
    /// section and every topic feed in `topic_feeds` that takes it.
    fn place(
        &mut self,
        section: usize,
        published: DateTime<Utc>,
        entry: Entry,
        topic_feeds: &[usize],
    ) {
        if published > self.now {
            if self.future_overflow {
                return;
            }
            if self.future.len() < FUTURE_LIMIT {
                self.future.push(entry);
            } else {
                self.future_overflow = true;
                self.future.clear();
            }
            return;
        }
        for feed in self.targets(section).chain(topic_feeds.iter().copied()) {
            self.insert(feed, &entry);
        }
    }

    /// Whether an article of section `section` dated `published` with `id`
    /// would be kept for its section (topic feeds aside).
    fn wants(&self, section: usize, published: DateTime<Utc>, id: &str) -> bool {
        if published > self.now {
            // Scheduled: out of the feeds until its time, but remembered.
            return !self.future_overflow;
        }
        let key = Key::of(published);
        self.targets(section)
            .any(|feed| self.tops[feed].takes(self.per_feed, key, id.as_bytes()))
    }

    /// Adds an article already decoded (from the build cache).
    pub fn add(&mut self, article: Article) {
        let Some(section) = self.site.sections.position(article.section.as_str()) else {
            return;
        };
        let published = article.published;
        let (key, id) = (Key::of(published), article.id.as_str());
        let topic_feeds: Vec<usize> = if published > self.now {
            Vec::new()
        } else {
            self.topic_feeds(article.keywords.iter().map(String::as_str))
                .into_iter()
                .filter(|&f| self.tops[f].takes(self.per_feed, key, id.as_bytes()))
                .collect()
        };
        if !self.wants(section, published, id) && topic_feeds.is_empty() {
            return;
        }
        let entry = Entry {
            key,
            id: Id::new(id),
            item: Item::Article(Arc::new(article)),
        };
        self.place(section, published, entry, &topic_feeds);
    }

    /// Every candidate still in the running (each feed's best, scheduled
    /// ones), possibly several times.
    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.tops
            .iter()
            .flat_map(|top| top.best(self.per_feed))
            .chain(&self.future)
    }

    /// Every article this selection holds (feed items and scheduled ones),
    /// each once; `None` when scheduled articles were too many to keep.
    pub fn kept(&self) -> Option<Vec<&Article>> {
        if self.future_overflow {
            return None;
        }
        let mut seen = std::collections::HashSet::new();
        Some(
            self.entries()
                .map(Entry::article)
                .filter(|a| seen.insert(std::ptr::from_ref(*a)))
                .collect(),
        )
    }

    /// The feeds, items newest first.
    pub fn feeds(&self) -> Vec<Feed<'_>> {
        self.tops
            .iter()
            .enumerate()
            .map(|(i, top)| {
                let sections = self.site.sections.len();
                Feed {
                    section: (1..=sections)
                        .contains(&i)
                        .then(|| &self.site.sections[i - 1]),
                    topic: i.checked_sub(sections + 1).map(|t| &self.site.topics[t]),
                    items: top
                        .best(self.per_feed)
                        .into_iter()
                        .map(Entry::article)
                        .collect(),
                }
            })
            .collect()
    }
}

impl Sink for Selection<'_> {
    fn accept<L: LongText>(&mut self, offer: Offer<'_, '_, L>) {
        let Some(section) = self.site.sections.position(&offer.section()) else {
            return;
        };
        let (published, id) = (offer.published(), offer.id());
        let key = Key::of(published);
        let topic_feeds = if published > self.now {
            Vec::new()
        } else {
            self.topic_feeds_taking(offer.raw_keywords(), key, id.as_bytes())
        };
        if !self.wants(section, published, &id) && topic_feeds.is_empty() {
            return;
        }
        let id = Id::new(&id);
        let item = match offer.place() {
            Some(place) => Item::Later(place),
            // Not to be read again (TOML): decoded now.
            None => Item::Article(Arc::new(offer.article(true))),
        };
        let entry = Entry { key, id, item };
        self.place(section, published, entry, &topic_feeds);
    }

    fn merge(&mut self, other: Self) {
        for (feed, top) in other.tops.into_iter().enumerate() {
            for entry in &top.entries {
                self.insert(feed, entry);
            }
        }
        self.future_overflow |= other.future_overflow;
        if self.future_overflow || self.future.len() + other.future.len() > FUTURE_LIMIT {
            self.future_overflow = true;
            self.future.clear();
        } else {
            self.future.extend(other.future);
        }
    }

    fn pending(&self) -> Vec<Place> {
        let mut places: Vec<Place> = self
            .entries()
            .filter_map(|entry| match entry.item {
                Item::Later(place) => Some(place),
                Item::Article(_) => None,
            })
            .collect();
        places.sort_unstable_by_key(|p| (p.file, p.offset));
        places.dedup();
        places
    }

    fn decoded(&mut self, articles: &HashMap<Place, Arc<Article>>) {
        let entries = self
            .tops
            .iter_mut()
            .flat_map(|top| top.entries.iter_mut().chain(top.bar.as_mut()))
            .chain(self.future.iter_mut());
        for entry in entries {
            if let Item::Later(place) = entry.item
                && let Some(article) = articles.get(&place)
            {
                entry.item = Item::Article(article.clone());
            }
        }
    }
}

/// What every format needs to know about one feed besides its items.
pub(crate) struct FeedInfo<'a> {
    pub site: &'a Site,
    pub title: String,
    pub description: String,
    /// The HTML page the feed belongs to.
    pub home: &'a Url,
    /// Folder of this feed's files under the output folder, e.g. `feeds/yushi/`.
    pub folder: String,
    /// The newest `updated` among the items, or the fallback for an empty feed.
    pub updated: DateTime<Utc>,
    pub prepared: &'a Prepared,
    /// WebSub hubs the feed names (`<atom:link rel="hub">`, JSON `hubs`).
    pub hubs: &'a [Url],
}

impl FeedInfo<'_> {
    /// The URL a file of this feed is served from.
    pub(crate) fn url(&self, file: &str) -> String {
        format!("{}{}{}", self.site.base_url, self.folder, file)
    }
}

/// Whether a path [`render`] makes is a feed (not the OPML index).
pub fn is_feed_file(path: &str) -> bool {
    [RSS_FILE, ATOM_FILE, JSON_FILE]
        .iter()
        .any(|file| path.strip_suffix(file).is_some_and(|p| p.ends_with('/')))
}

pub(crate) const RSS_FILE: &str = "rss.xml";
pub(crate) const ATOM_FILE: &str = "atom.xml";
pub(crate) const JSON_FILE: &str = "feed.json";

/// What [`render`] made: the files, and the feed files that carry fewer
/// items than planned to stay under `output.max_feed_bytes`.
pub struct Rendered {
    pub files: Vec<OutputFile>,
    pub trimmed: Vec<Trimmed>,
}

pub use limit::Trimmed;

/// Renders every planned feed in the configured formats plus the OPML index;
/// every feed names the WebSub `hubs`.
pub fn render(site: &Site, feeds: &[Feed<'_>], output: &Output, hubs: &[Url]) -> Rendered {
    // An empty feed still needs an `updated`: the site's newest change, or the
    // epoch for an empty site (never the wall clock, so output is stable).
    let site_updated = feeds
        .iter()
        .flat_map(|f| f.items.iter().map(|a| a.updated))
        .max()
        .unwrap_or(DateTime::UNIX_EPOCH);
    let prepared = Prepared::new(feeds.iter().flat_map(|f| f.items.iter().copied()));
    let infos: Vec<FeedInfo> = feeds
        .iter()
        .map(|feed| feed_info(site, feed, site_updated, &prepared, hubs))
        .collect();

    type Renderer = fn(&FeedInfo<'_>, &[&Article]) -> Vec<u8>;
    let mut formats: Vec<(&str, Renderer)> = Vec::new();
    if output.writes(FeedFormat::Rss) {
        formats.push((RSS_FILE, rss::render));
    }
    if output.writes(FeedFormat::Atom) {
        formats.push((ATOM_FILE, atom::render));
    }
    if output.writes(FeedFormat::Json) {
        formats.push((JSON_FILE, jsonfeed::render));
    }
    let pairs: Vec<(&Feed, &FeedInfo)> = feeds.iter().zip(&infos).collect();
    let per_feed = crate::parallel::map(&pairs, crate::parallel::cores(), |(feed, info)| {
        formats
            .iter()
            .map(|(file, render)| {
                let path = format!("{}{file}", info.folder);
                let (bytes, trimmed) =
                    limit::fit(&path, &feed.items, output.max_feed_bytes, |items| {
                        render(info, items)
                    });
                (OutputFile { path, bytes }, trimmed)
            })
            .collect::<Vec<_>>()
    });
    let mut files = Vec::new();
    let mut trimmed = Vec::new();
    for (file, trim) in per_feed.into_iter().flatten() {
        files.push(file);
        trimmed.extend(trim);
    }
    files.push(OutputFile {
        path: "feeds/index.opml".into(),
        bytes: opml::render(site, &infos, output),
    });
    Rendered { files, trimmed }
}

fn feed_info<'a>(
    site: &'a Site,
    feed: &Feed<'a>,
    fallback: DateTime<Utc>,
    prepared: &'a Prepared,
    hubs: &'a [Url],
) -> FeedInfo<'a> {
    let updated = feed
        .items
        .iter()
        .map(|a| a.updated)
        .max()
        .unwrap_or(fallback);
    let (title, description, home, folder) = match (feed.section, feed.topic) {
        (Some(section), _) => (
            format!("{} · {}", site.title, section.title),
            section
                .description
                .clone()
                .unwrap_or_else(|| format!("{} · {}", section.title, site.description)),
            &section.url,
            format!("feeds/{}/", section.id),
        ),
        (None, Some(topic)) => (
            format!("{} · {}", site.title, topic.title),
            topic
                .description
                .clone()
                .unwrap_or_else(|| format!("{} · {}", topic.title, site.description)),
            &topic.url,
            format!("feeds/topics/{}/", topic.id),
        ),
        (None, None) => (
            site.title.clone(),
            site.description.clone(),
            &site.base_url,
            "feeds/".into(),
        ),
    };
    FeedInfo {
        site,
        title,
        description,
        home,
        folder,
        updated,
        prepared,
        hubs,
    }
}

/// Each article's cleaned HTML and plain summary, computed once however many
/// feeds show it.
#[derive(Default)]
pub(crate) struct Prepared {
    by_id: HashMap<ArticleId, (Option<String>, Option<String>)>,
}

impl Prepared {
    pub(crate) fn new<'a>(articles: impl IntoIterator<Item = &'a Article>) -> Prepared {
        let unique = Article::unique(articles);
        // Sanitizing bodies is most of rendering: on every core.
        let prepared = crate::parallel::map_with(
            &unique,
            crate::parallel::cores(),
            crate::text::HtmlCleaner::default,
            |cleaner, article| {
                let content = article
                    .content_html
                    .as_deref()
                    .map(|html| cleaner.clean(html, &article.url));
                (content, summary_text(article))
            },
        );
        let by_id = unique.iter().map(|a| a.id.clone()).zip(prepared).collect();
        Prepared { by_id }
    }

    /// The article's body, cleaned for publishing.
    pub(crate) fn content(&self, article: &Article) -> Option<&str> {
        self.by_id
            .get(article.id.as_str())
            .and_then(|(content, _)| content.as_deref())
    }

    /// The article's plain-text summary: its own, or the start of its body.
    pub(crate) fn summary(&self, article: &Article) -> Option<&str> {
        self.by_id
            .get(article.id.as_str())
            .and_then(|(_, summary)| summary.as_deref())
    }
}

/// The article's plain-text summary: its own, or the start of its body.
pub(crate) fn summary_text(article: &Article) -> Option<String> {
    const DERIVED_SUMMARY_CHARS: usize = 200;
    match (&article.summary, &article.content_html) {
        (Some(summary), _) => Some(summary.clone()),
        (None, Some(html)) => {
            let text = crate::text::html_to_text(html);
            (!text.is_empty())
                .then(|| crate::text::truncate_chars(&text, DERIVED_SUMMARY_CHARS).into_owned())
        }
        (None, None) => None,
    }
}

/// A permanent, absolute id for an Atom entry or JSON Feed item, derived
/// from the site and the article id only (never from the build).
pub(crate) fn entry_id(site: &Site, article: &Article) -> String {
    let name = format!("{}#{}", site.base_url, article.id);
    format!(
        "urn:uuid:{}",
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes())
    )
}

/// A lead image in Media RSS (`xmlns:media="http://search.yahoo.com/mrss/"`):
/// the local name and attributes of each `media` child of an item or entry.
/// `media:content medium="image"` (a byte length, which `<enclosure>`
/// needs, is unknown) and `media:thumbnail`, which several readers and
/// Mailchimp's RSS campaigns show. `url` is the image's URL as the writer
/// wants it (the Atom writer copies attribute values verbatim).
pub(crate) fn media_elements(
    image: &Url,
    url: String,
) -> [(&'static str, std::collections::BTreeMap<String, String>); 2] {
    use std::collections::BTreeMap;
    [
        (
            "content",
            BTreeMap::from([
                ("url".to_owned(), url.clone()),
                ("medium".to_owned(), "image".to_owned()),
                ("type".to_owned(), image_type(image).to_owned()),
            ]),
        ),
        ("thumbnail", BTreeMap::from([("url".to_owned(), url)])),
    ]
}

/// A MIME type for an image URL, by its extension.
pub(crate) fn image_type(url: &Url) -> &'static str {
    let path = url.path().to_ascii_lowercase();
    match path.rsplit('.').next().unwrap_or("") {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "avif" => "image/avif",
        _ => "image/jpeg",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seconds: i64, id: &str) -> Entry {
        Entry {
            key: Key { seconds, nanos: 0 },
            id: Id::new(id),
            item: Item::Later(Place {
                file: 0,
                len: 0,
                offset: 0,
            }),
        }
    }

    /// A feed's best `n`, whatever the order candidates come in, equals
    /// sorting them all: newest first, ties by id (short and long ids).
    #[test]
    fn a_top_keeps_the_best_n_in_any_order() {
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        let all: Vec<(i64, String)> = (0..500)
            .map(|i| {
                let id = if i % 7 == 0 {
                    format!("a-very-long-article-id-{i:04}")
                } else {
                    format!("a{i:04}")
                };
                // Few distinct times: many ties broken by id.
                ((next() % 40) as i64, id)
            })
            .collect();
        let mut chronological = all.clone();
        chronological.sort();
        let mut shuffled = all.clone();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, next() as usize % (i + 1));
        }
        let reversed: Vec<_> = chronological.iter().rev().cloned().collect();
        for n in [1, 2, 3, 50, 499, 500, 501, 1000] {
            let mut expected: Vec<Entry> = all.iter().map(|(s, id)| entry(*s, id)).collect();
            expected.sort();
            expected.truncate(n);
            let expected: Vec<(i64, String)> = expected
                .iter()
                .map(|e| {
                    (
                        e.key.seconds,
                        String::from_utf8(e.id.as_bytes().to_vec()).unwrap(),
                    )
                })
                .collect();
            for order in [&chronological, &reversed, &shuffled] {
                let mut top = Top::default();
                for (seconds, id) in order.iter() {
                    if top.takes(
                        n,
                        Key {
                            seconds: *seconds,
                            nanos: 0,
                        },
                        id.as_bytes(),
                    ) {
                        top.push(n, entry(*seconds, id));
                    }
                }
                let best: Vec<(i64, String)> = top
                    .best(n)
                    .iter()
                    .map(|e| {
                        (
                            e.key.seconds,
                            String::from_utf8(e.id.as_bytes().to_vec()).unwrap(),
                        )
                    })
                    .collect();
                assert_eq!(best, expected, "n = {n}");
            }
        }
        assert!(!Top::default().takes(
            0,
            Key {
                seconds: 0,
                nanos: 0
            },
            b"a"
        ));
    }
}
