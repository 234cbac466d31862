//! RSS 2.0, written with the `rss` crate.
//!
//! Choices made for the W3C validator and for readers: dates in RFC 2822 with
//! the site's numeric offset (`+0800`, never a zone name); guids from article
//! ids with `isPermaLink="false"`; the author's name in `dc:creator` (RSS's
//! `<author>` must be an email address); the lead image as `media:content`
//! (an `<enclosure>` needs a byte length we do not know).

use std::collections::BTreeMap;

use ::rss::extension::atom::{AtomExtension, Link};
use ::rss::extension::dublincore::DublinCoreExtension;
use ::rss::extension::{Extension, ExtensionMap};
use ::rss::{Category, Channel, Guid, Image, Item};

use super::{FeedInfo, RSS_FILE, media_elements};
use crate::model::Article;

const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";

pub(super) fn render(info: &FeedInfo<'_>, items: &[&Article]) -> Vec<u8> {
    let site = info.site;
    let mut channel = Channel {
        title: info.title.clone(),
        link: info.home.to_string(),
        description: info.description.clone(),
        language: Some(site.language.clone()),
        generator: Some(format!("bulletin {}", env!("CARGO_PKG_VERSION"))),
        last_build_date: Some(site.zone.local(info.updated).to_rfc2822()),
        atom_ext: Some(AtomExtension {
            links: std::iter::once(Link {
                href: info.url(RSS_FILE),
                rel: "self".into(),
                mime_type: Some("application/rss+xml".into()),
                ..Default::default()
            })
            .chain(info.hubs.iter().map(|hub| Link {
                href: hub.to_string(),
                rel: "hub".into(),
                ..Default::default()
            }))
            .collect(),
        }),
        // The validator wants the image's title and link to be the channel's.
        image: site.logo.as_ref().map(|logo| Image {
            url: logo.to_string(),
            title: info.title.clone(),
            link: info.home.to_string(),
            ..Default::default()
        }),
        items: items.iter().map(|a| item(info, a)).collect(),
        ..Default::default()
    };
    if items.iter().any(|a| a.image.is_some()) {
        channel.namespaces = BTreeMap::from([("media".to_owned(), MEDIA_NS.to_owned())]);
    }
    let xml = channel
        .pretty_write_to(Vec::new(), b' ', 2)
        .expect("writing XML into memory cannot fail");
    rss_profile_escapes(xml)
}

/// The RSS Best Practices Profile asks for `&` and `<` in plain text as
/// hexadecimal character references, since RSS leaves open whether a title
/// is text or HTML. The writer emits `&amp;`/`&lt;`/`&gt;`; swapping them is
/// exact both in XML text and inside the HTML of CDATA sections, where
/// either form decodes to the same character.
fn rss_profile_escapes(xml: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8(xml).expect("the writer emits UTF-8");
    if !text.contains('&') {
        return text.into_bytes();
    }
    text.replace("&amp;", "&#x26;")
        .replace("&lt;", "&#x3C;")
        .replace("&gt;", "&#x3E;")
        .into_bytes()
}

/// An RSS guid must be unique beyond this feed: a bare short number (a CMS
/// row id) is not, so it is qualified with the site's domain.
fn guid(site: &crate::model::Site, id: &crate::model::ArticleId) -> String {
    let id = id.as_str();
    if id.len() < 9 && id.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}:{id}", site.domain())
    } else {
        id.to_owned()
    }
}

fn item(info: &FeedInfo<'_>, article: &Article) -> Item {
    let site = info.site;
    let section_title = site
        .section(article.section.as_str())
        .map_or(article.section.as_str(), |s| s.title.as_str());
    let categories = std::iter::once(section_title)
        .chain(article.keywords.iter().map(String::as_str))
        .map(|name| Category {
            name: name.to_owned(),
            domain: None,
        })
        .collect();
    let mut item = Item {
        title: Some(article.title.clone()),
        link: Some(article.url.to_string()),
        guid: Some(Guid {
            value: guid(site, &article.id),
            permalink: false,
        }),
        pub_date: Some(site.zone.local(article.published).to_rfc2822()),
        // `description` is HTML in RSS: the plain summary is escaped once for
        // HTML here and once more for XML by the writer.
        description: info
            .prepared
            .summary(article)
            .map(|s| html_escape::encode_text(s).into_owned()),
        content: info.prepared.content(article).map(str::to_owned),
        categories,
        ..Default::default()
    };
    if article.author.is_some() || article.source.is_some() {
        item.dublin_core_ext = Some(DublinCoreExtension {
            creators: article.author.iter().cloned().collect(),
            // dc:source: the outlet the story came from (来源).
            sources: article.source.iter().cloned().collect(),
            ..Default::default()
        });
    }
    if let Some(image) = &article.image {
        let mut media = ExtensionMap::new();
        let elements = media_elements(image, image.to_string())
            .into_iter()
            .map(|(name, attrs)| {
                let element = Extension {
                    name: format!("media:{name}"),
                    attrs,
                    ..Default::default()
                };
                (name.to_owned(), vec![element])
            })
            .collect();
        media.insert("media".into(), elements);
        item.extensions = media;
    }
    item
}
