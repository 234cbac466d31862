//! Atom 1.0, written with the `atom_syndication` crate.
//!
//! Entry ids are `urn:uuid:` names derived from the site URL and the article
//! id: absolute, permanent, and stable across rebuilds. The site is the feed's
//! author so every entry has one; the article's byline is the entry author and
//! the editor (责编) a contributor. Every URL is absolute: readers handle
//! `xml:base` badly.

use std::collections::BTreeMap;

use atom_syndication::extension::{Extension, ExtensionMap};
use atom_syndication::{
    Category, Content, Entry, Feed, Generator, Link, Person, Text, WriteConfig,
};

use super::{ATOM_FILE, FeedInfo, entry_id, media_elements};
use crate::model::Article;

const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";

pub(super) fn render(info: &FeedInfo<'_>, items: &[&Article]) -> Vec<u8> {
    let site = info.site;
    let mut feed = Feed {
        title: Text::plain(info.title.clone()),
        id: info.url(ATOM_FILE),
        updated: site.zone.local(info.updated),
        authors: vec![site_author(site)],
        generator: Some(generator()),
        links: vec![
            Link {
                href: info.url(ATOM_FILE),
                rel: "self".into(),
                mime_type: Some("application/atom+xml".into()),
                ..Default::default()
            },
            Link {
                href: info.home.to_string(),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                ..Default::default()
            },
        ]
        .into_iter()
        .chain(info.hubs.iter().map(|hub| Link {
            href: hub.to_string(),
            rel: "hub".into(),
            ..Default::default()
        }))
        .collect(),
        subtitle: Some(Text::plain(info.description.clone())),
        logo: site.logo.as_ref().map(ToString::to_string),
        icon: site.icon.as_ref().map(ToString::to_string),
        lang: Some(site.language.clone()),
        entries: items.iter().map(|a| entry(info, a)).collect(),
        ..Default::default()
    };
    if items.iter().any(|a| a.image.is_some()) {
        feed.namespaces = BTreeMap::from([("media".to_owned(), MEDIA_NS.to_owned())]);
    }
    let config = WriteConfig {
        write_document_declaration: true,
        indent_size: Some(2),
    };
    feed.write_with_config(Vec::new(), config)
        .expect("writing XML into memory cannot fail")
}

fn entry(info: &FeedInfo<'_>, article: &Article) -> Entry {
    let site = info.site;
    let person = |byline: &String| {
        let (name, email) = crate::text::split_mailbox(byline);
        Person {
            name: name.to_owned(),
            email: email.map(str::to_owned),
            ..Default::default()
        }
    };
    let section = site.section(article.section.as_str());
    let categories = section
        .map(|s| Category {
            term: s.id.to_string(),
            scheme: None,
            label: Some(s.title.clone()),
        })
        .into_iter()
        .chain(article.keywords.iter().map(|k| Category {
            term: k.clone(),
            scheme: None,
            label: None,
        }))
        .collect();
    let mut entry = Entry {
        title: Text::plain(article.title.clone()),
        id: entry_id(site, article),
        updated: site.zone.local(article.updated),
        published: Some(site.zone.local(article.published)),
        authors: article.author.iter().map(person).collect(),
        contributors: article.editor.iter().map(person).collect(),
        categories,
        links: vec![Link {
            href: article.url.to_string(),
            rel: "alternate".into(),
            mime_type: Some("text/html".into()),
            ..Default::default()
        }],
        // Readers (and the validator) expect some text in every entry.
        summary: info
            .prepared
            .summary(article)
            .map(str::to_owned)
            .or_else(|| {
                article
                    .content_html
                    .is_none()
                    .then(|| article.title.clone())
            })
            .map(Text::plain),
        content: info.prepared.content(article).map(|html| Content {
            value: Some(html.to_owned()),
            content_type: Some("html".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    if let Some(image) = &article.image {
        // The Atom writer copies attribute values verbatim: escape them here.
        let url = quick_xml::escape::escape(image.as_str()).into_owned();
        let mut media = ExtensionMap::new();
        let elements = media_elements(image, url)
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
        entry.extensions = media;
    }
    entry
}

/// The site as a feed's author: Atom asks one per feed or per entry.
pub(crate) fn site_author(site: &crate::model::Site) -> Person {
    Person {
        name: site.title.clone(),
        email: None,
        uri: Some(site.base_url.to_string()),
        ..Default::default()
    }
}

/// `<generator>`: bulletin and its version.
pub(crate) fn generator() -> Generator {
    Generator {
        value: "bulletin".into(),
        uri: None,
        version: Some(env!("CARGO_PKG_VERSION").into()),
    }
}
