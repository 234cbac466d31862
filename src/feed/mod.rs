//! Which articles go into which feed, and the feeds as bytes.
//!
//! [`plan`] picks, for the whole site and for every section (with its
//! sub-sections), the newest published articles. [`render`] turns the plan
//! into files (RSS, Atom, JSON Feed, and an OPML index) as relative paths and
//! bytes; writing them is the caller's job. Rendering is pure and
//! deterministic: the same articles and clock give the same bytes.

mod atom;
mod jsonfeed;
mod opml;
mod rss;

use chrono::{DateTime, Utc};
use url::Url;

use crate::config::Output;
use crate::model::{Article, Section, Site};

/// One feed: whose it is and what it holds, newest first.
pub struct Feed<'a> {
    /// `None` for the whole site.
    pub section: Option<&'a Section>,
    pub items: Vec<&'a Article>,
}

/// A generated file, relative to the output folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Selects the newest `per_feed` articles published by `now` for the site
/// and for each section; a section's feed also carries its descendants'.
pub fn plan<'a>(
    site: &'a Site,
    articles: &'a [Article],
    now: DateTime<Utc>,
    per_feed: usize,
) -> Vec<Feed<'a>> {
    let mut published: Vec<&Article> = articles.iter().filter(|a| a.published <= now).collect();
    published.sort_by(|a, b| Article::newest_first(a, b));

    let mut site_feed = Feed {
        section: None,
        items: Vec::new(),
    };
    let mut section_feeds: Vec<Feed> = site
        .sections
        .iter()
        .map(|s| Feed {
            section: Some(s),
            items: Vec::new(),
        })
        .collect();
    let index_of = |id: &str| site.sections.iter().position(|s| s.id == id);
    for article in published {
        if site_feed.items.len() < per_feed {
            site_feed.items.push(article);
        }
        for section in site.ancestry(&article.section) {
            if let Some(feed) = index_of(&section.id).map(|i| &mut section_feeds[i])
                && feed.items.len() < per_feed
            {
                feed.items.push(article);
            }
        }
    }
    std::iter::once(site_feed).chain(section_feeds).collect()
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
}

impl FeedInfo<'_> {
    /// The URL a file of this feed is served from.
    pub fn url(&self, file: &str) -> String {
        format!("{}{}{}", self.site.base_url, self.folder, file)
    }
}

pub(crate) const RSS_FILE: &str = "rss.xml";
pub(crate) const ATOM_FILE: &str = "atom.xml";
pub(crate) const JSON_FILE: &str = "feed.json";

/// Renders every planned feed in the configured formats plus the OPML index.
pub fn render(site: &Site, feeds: &[Feed<'_>], output: &Output) -> Vec<OutputFile> {
    // An empty feed still needs an `updated`: the site's newest change, or the
    // epoch for an empty site (never the wall clock, so output is stable).
    let site_updated = feeds
        .iter()
        .flat_map(|f| f.items.iter().map(|a| a.updated))
        .max()
        .unwrap_or(DateTime::UNIX_EPOCH);
    let infos: Vec<FeedInfo> = feeds
        .iter()
        .map(|feed| feed_info(site, feed, site_updated))
        .collect();

    let mut files = Vec::new();
    for (feed, info) in feeds.iter().zip(&infos) {
        if output.rss {
            files.push(OutputFile {
                path: format!("{}{RSS_FILE}", info.folder),
                bytes: rss::render(info, &feed.items),
            });
        }
        if output.atom {
            files.push(OutputFile {
                path: format!("{}{ATOM_FILE}", info.folder),
                bytes: atom::render(info, &feed.items),
            });
        }
        if output.json {
            files.push(OutputFile {
                path: format!("{}{JSON_FILE}", info.folder),
                bytes: jsonfeed::render(info, &feed.items),
            });
        }
    }
    files.push(OutputFile {
        path: "feeds/index.opml".into(),
        bytes: opml::render(site, &infos, output),
    });
    files
}

fn feed_info<'a>(site: &'a Site, feed: &Feed<'a>, fallback: DateTime<Utc>) -> FeedInfo<'a> {
    let updated = feed
        .items
        .iter()
        .map(|a| a.updated)
        .max()
        .unwrap_or(fallback);
    match feed.section {
        None => FeedInfo {
            site,
            title: site.title.clone(),
            description: site.description.clone(),
            home: &site.base_url,
            folder: "feeds/".into(),
            updated,
        },
        Some(section) => FeedInfo {
            site,
            title: format!("{} · {}", site.title, section.title),
            description: section
                .description
                .clone()
                .unwrap_or_else(|| format!("{} · {}", section.title, site.description)),
            home: &section.url,
            folder: format!("feeds/{}/", section.id),
            updated,
        },
    }
}

/// The plain-text summary of an article: its own, or the start of its body.
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
