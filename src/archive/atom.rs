//! `<archive>/atom.xml`: the issues as an Atom 1.0 feed, newest first,
//! written with `atom_syndication` like the site's feeds, to the rules of
//! the W3C validator (`shared/FEEDS.md`): a self link equal to where the
//! file is served, an alternate link to the list of issues, permanent
//! absolute ids, a feed-level author, RFC 3339 times with an offset, the
//! headlines as `type="html"` content with absolute links only.

use atom_syndication::{Content, Entry, Feed, Link, Text, WriteConfig};

use super::page::Words;
use super::record::Record;
use crate::model::Site;

/// Where the feed and its entries point.
pub(super) struct FeedLinks<'a> {
    /// The URL `atom.xml` is served from (its id and self link).
    pub feed: &'a str,
    /// The list of issues.
    pub index: &'a str,
}

/// The feed of `records` (newest first, at least one); `page` gives an
/// issue's page URL.
pub(super) fn render(
    site: &Site,
    records: &[&Record],
    page: impl Fn(&str) -> String,
    links: &FeedLinks<'_>,
) -> Vec<u8> {
    let words = Words::of(&site.language);
    let updated = records
        .iter()
        .map(|r| r.updated)
        .max()
        .expect("a feed of at least one issue");
    let feed = Feed {
        title: Text::plain(words.archive_title(&site.title)),
        id: links.feed.to_owned(),
        updated,
        authors: vec![crate::feed::atom::site_author(site)],
        generator: Some(crate::feed::atom::generator()),
        links: vec![
            Link {
                href: links.feed.to_owned(),
                rel: "self".into(),
                mime_type: Some("application/atom+xml".into()),
                ..Default::default()
            },
            Link {
                href: links.index.to_owned(),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                ..Default::default()
            },
        ],
        subtitle: Some(Text::plain(site.description.clone())),
        lang: Some(site.language.clone()),
        entries: records
            .iter()
            .map(|r| entry(site, words, r, &page(&r.issue)))
            .collect(),
        ..Default::default()
    };
    let config = WriteConfig {
        write_document_declaration: true,
        indent_size: Some(2),
    };
    feed.write_with_config(Vec::new(), config)
        .expect("writing XML into memory cannot fail")
}

fn entry(site: &Site, words: &Words, record: &Record, page: &str) -> Entry {
    Entry {
        title: Text::plain(words.issue_title(&site.title, &record.issue)),
        id: entry_id(page),
        updated: record.updated,
        links: vec![Link {
            href: page.to_owned(),
            rel: "alternate".into(),
            mime_type: Some("text/html".into()),
            ..Default::default()
        }],
        content: Some(Content {
            value: Some(headlines(record)),
            content_type: Some("html".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A permanent, absolute id for an issue: derived from its page's URL,
/// never from the run.
fn entry_id(page: &str) -> String {
    format!(
        "urn:uuid:{}",
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, page.as_bytes())
    )
}

/// The issue's sections and headlines as HTML (escaped here; the writer
/// escapes the whole once more for XML).
fn headlines(record: &Record) -> String {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
    let mut html = String::new();
    for section in &record.sections {
        html.push_str(&format!(
            "<h2><a href=\"{}\">{}</a></h2><ul>",
            attr(section.url.as_str()),
            text(&section.title)
        ));
        for item in &section.items {
            html.push_str(&format!(
                "<li><a href=\"{}\">{}</a></li>",
                attr(item.url.as_str()),
                text(&item.title)
            ));
        }
        html.push_str("</ul>");
    }
    html
}
