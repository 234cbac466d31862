//! JSON Feed 1.1 (<https://jsonfeed.org/version/1.1>), serialized with serde.

use serde::Serialize;

use super::{FeedInfo, JSON_FILE, entry_id};
use crate::model::Article;

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: &'a str,
    feed_url: String,
    description: &'a str,
    /// The site's logo (the spec asks for a square 512×512 image).
    #[serde(skip_serializing_if = "Option::is_none")]
    icon: Option<&'a str>,
    /// The site's small icon (64×64).
    #[serde(skip_serializing_if = "Option::is_none")]
    favicon: Option<&'a str>,
    language: &'a str,
    authors: Vec<Author<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub<'a>>,
    items: Vec<JsonItem<'a>>,
}

/// A WebSub hub (JSON Feed 1.1 `hubs`).
#[derive(Serialize)]
struct Hub<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    url: &'a str,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonItem<'a> {
    id: String,
    url: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    date_published: String,
    date_modified: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Author<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
}

pub(super) fn render(info: &FeedInfo<'_>, items: &[&Article]) -> Vec<u8> {
    let site = info.site;
    let feed = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: &info.title,
        home_page_url: info.home.as_str(),
        feed_url: info.url(JSON_FILE),
        description: &info.description,
        icon: site.logo.as_ref().map(|u| u.as_str()),
        favicon: site.icon.as_ref().map(|u| u.as_str()),
        language: &site.language,
        authors: vec![Author {
            name: &site.title,
            url: Some(site.base_url.as_str()),
        }],
        hubs: info
            .hubs
            .iter()
            .map(|hub| Hub {
                kind: "WebSub",
                url: hub.as_str(),
            })
            .collect(),
        items: items
            .iter()
            .map(|a| {
                let summary = info.prepared.summary(a).map(str::to_owned);
                JsonItem {
                    id: entry_id(site, a),
                    url: a.url.as_str(),
                    title: &a.title,
                    content_html: info.prepared.content(a).map(str::to_owned),
                    // An item needs content: the summary stands in when there is no body.
                    content_text: if a.content_html.is_none() {
                        Some(summary.clone().unwrap_or_else(|| a.title.clone()))
                    } else {
                        None
                    },
                    summary,
                    image: a.image.as_ref().map(|u| u.as_str()),
                    date_published: site.zone.local(a.published).to_rfc3339(),
                    date_modified: site.zone.local(a.updated).to_rfc3339(),
                    authors: a
                        .author
                        .iter()
                        .map(|name| Author { name, url: None })
                        .collect(),
                    tags: &a.keywords,
                }
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&feed).expect("a feed serializes");
    bytes.push(b'\n');
    bytes
}
