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
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use url::Url;

use crate::load::Sink;

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
/// sink: it keeps a bounded heap per feed, never the whole archive.
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
    heaps: Vec<BinaryHeap<Ranked>>,
    topics: topics::TopicIndex,
    /// The oldest date every topic feed would still take an article of;
    /// `None` while one is not full (it takes anything). Older articles'
    /// keywords are not looked at.
    topic_floor: Option<DateTime<Utc>>,
    /// Articles scheduled after `now`: not in any feed, but kept (up to a
    /// limit) so a cached result stays right for a later clock.
    future: Vec<Arc<Article>>,
    future_overflow: bool,
}

/// Scheduled articles kept per selection; past this, results are not cached.
const FUTURE_LIMIT: usize = 10_000;

/// Heap order: the worst-placed (oldest) article on top, to be evicted.
struct Ranked(Arc<Article>);

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        Article::newest_first(&self.0, &other.0)
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl<'s> Selection<'s> {
    pub fn new(site: &'s Site, now: DateTime<Utc>, per_feed: usize) -> Self {
        Selection {
            site,
            now,
            per_feed,
            heaps: (0..=site.sections.len() + site.topics.len())
                .map(|_| BinaryHeap::new())
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

    /// The topic feeds an article with `keywords` goes to.
    fn topic_feeds<'k>(&self, keywords: impl IntoIterator<Item = &'k str>) -> Vec<usize> {
        if self.topics.is_empty() {
            return Vec::new();
        }
        let first = 1 + self.site.sections.len();
        let mut feeds = self.topics.of_all(keywords);
        feeds.iter_mut().for_each(|t| *t += first);
        feeds
    }

    /// Whether feed `feed` would take an article dated `published` with `id`.
    fn takes(&self, feed: usize, published: DateTime<Utc>, id: &str) -> bool {
        let heap = &self.heaps[feed];
        heap.len() < self.per_feed
            || heap.peek().is_some_and(|worst| {
                let worst = &worst.0;
                // Newer wins; the smaller id breaks a tie (see `Article::newest_first`).
                published > worst.published
                    || (published == worst.published && id < worst.id.as_str())
            })
    }

    fn insert(&mut self, feed: usize, article: &Arc<Article>) {
        if self.takes(feed, article.published, article.id.as_str()) {
            let heap = &mut self.heaps[feed];
            heap.push(Ranked(article.clone()));
            if heap.len() > self.per_feed {
                heap.pop();
            }
            if feed > self.site.sections.len() {
                self.topic_floor = self.heaps[1 + self.site.sections.len()..]
                    .iter()
                    .map(|h| h.peek().filter(|_| h.len() >= self.per_feed))
                    .map(|worst| worst.map(|w| w.0.published))
                    .collect::<Option<Vec<_>>>()
                    .and_then(|worsts| worsts.into_iter().min());
            }
        }
    }

    /// Every article this selection holds (feed items and scheduled ones),
    /// each once; `None` when scheduled articles were too many to keep.
    pub fn kept(&self) -> Option<Vec<&Article>> {
        if self.future_overflow {
            return None;
        }
        let mut seen = std::collections::HashSet::new();
        let all = self
            .heaps
            .iter()
            .flat_map(|h| h.iter().map(|r| &r.0))
            .chain(&self.future);
        Some(
            all.filter(|a| seen.insert(Arc::as_ptr(a)))
                .map(|a| a.as_ref())
                .collect(),
        )
    }

    /// The feeds, items newest first.
    pub fn feeds(&self) -> Vec<Feed<'_>> {
        self.heaps
            .iter()
            .enumerate()
            .map(|(i, heap)| {
                let mut items: Vec<&Article> = heap.iter().map(|r| r.0.as_ref()).collect();
                items.sort_by(|a, b| Article::newest_first(a, b));
                let sections = self.site.sections.len();
                Feed {
                    section: (1..=sections)
                        .contains(&i)
                        .then(|| &self.site.sections[i - 1]),
                    topic: i.checked_sub(sections + 1).map(|t| &self.site.topics[t]),
                    items,
                }
            })
            .collect()
    }
}

impl Sink for Selection<'_> {
    fn wants(&self, published: DateTime<Utc>, id: &str, section: &str) -> bool {
        let Some(section) = self.site.sections.position(section) else {
            return false;
        };
        if published > self.now {
            // Scheduled: out of the feeds until its time, but remembered.
            return !self.future_overflow;
        }
        self.targets(section)
            .any(|feed| self.takes(feed, published, id))
    }

    fn wants_keyword(&self, published: DateTime<Utc>, id: &str, keyword: &str) -> bool {
        let first = 1 + self.site.sections.len();
        // Scheduled articles are `wants`'s to decide. Most keywords name no
        // topic: the index says so before the keyword is cleaned.
        published <= self.now
            && self.topics.may_name(keyword)
            && self
                .topics
                .of(&crate::text::one_line_cow(keyword))
                .iter()
                .any(|&t| self.takes(first + t, published, id))
    }

    fn by_keyword(&self, published: DateTime<Utc>) -> bool {
        !self.topics.is_empty()
            && published <= self.now
            && self.topic_floor.is_none_or(|floor| published >= floor)
    }

    fn accept(&mut self, article: Article) {
        let topic_feeds = self.topic_feeds(article.keywords.iter().map(String::as_str));
        let for_topic = || {
            article.published <= self.now
                && topic_feeds
                    .iter()
                    .any(|&f| self.takes(f, article.published, article.id.as_str()))
        };
        if self
            .site
            .sections
            .position(article.section.as_str())
            .is_none()
            || !(self.wants(
                article.published,
                article.id.as_str(),
                article.section.as_str(),
            ) || for_topic())
        {
            return;
        }
        let article = Arc::new(article);
        if article.published > self.now {
            if self.future.len() < FUTURE_LIMIT {
                self.future.push(article);
            } else {
                self.future_overflow = true;
                self.future.clear();
            }
            return;
        }
        let Some(section) = self.site.sections.position(article.section.as_str()) else {
            return;
        };
        for feed in self.targets(section).chain(topic_feeds) {
            self.insert(feed, &article);
        }
    }

    fn merge(&mut self, other: Self) {
        for (feed, heap) in other.heaps.into_iter().enumerate() {
            for ranked in heap {
                self.insert(feed, &ranked.0);
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
