//! The archive's HTML: one issue's page and the list of issues, from the
//! built-in templates `templates/archive-issue.html.hbs` and
//! `templates/archive-index.html.hbs` (Handlebars, strict, every value
//! HTML-escaped for element text and double-quoted attributes).
//!
//! The context has no recipient in it — no name, address, token or
//! unsubscribe link — so no template could leak one. The few words of
//! boilerplate come in the site's language: Chinese for `zh*`, English for
//! everything else.

use handlebars::Handlebars;
use serde::Serialize;

use super::record::Record;
use crate::digest::{Group, Item};
use crate::model::{Article, Site};

const ISSUE_TEMPLATE: &str = include_str!("../../templates/archive-issue.html.hbs");
const INDEX_TEMPLATE: &str = include_str!("../../templates/archive-index.html.hbs");

/// Characters of an item's summary on the page (the email shows 120).
const SUMMARY_CHARS: usize = 160;

/// Headlines per issue on the list of issues.
const HEADLINES: usize = 3;

/// The boilerplate of the pages and the feed, in one language.
#[derive(Serialize)]
pub(super) struct Words {
    /// What one issue is called ("要闻", "Digest").
    digest: &'static str,
    /// The list of issues.
    archive: &'static str,
    related: &'static str,
    /// Before a source and an author ("来源：", "Source: ").
    source: &'static str,
    author: &'static str,
    feed: &'static str,
    #[serde(skip)]
    language: Language,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Language {
    Chinese,
    English,
}

const CHINESE: Words = Words {
    digest: "要闻",
    archive: "往期要闻",
    related: "相关阅读",
    source: "来源：",
    author: "作者：",
    feed: "Atom 订阅",
    language: Language::Chinese,
};

const ENGLISH: Words = Words {
    digest: "Digest",
    archive: "Past issues",
    related: "Related",
    source: "Source: ",
    author: "By ",
    feed: "Atom feed",
    language: Language::English,
};

impl Words {
    /// The words for a site's language tag (`zh-CN`, `en`, `fr-FR`...).
    pub(super) fn of(language: &str) -> &'static Words {
        let primary = language.split('-').next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("zh") {
            &CHINESE
        } else {
            &ENGLISH
        }
    }

    /// "12 条", "12 articles".
    fn count(&self, n: usize) -> String {
        match (self.language, n) {
            (Language::Chinese, n) => format!("{n} 条"),
            (Language::English, 1) => "1 article".to_owned(),
            (Language::English, n) => format!("{n} articles"),
        }
    }

    /// One issue's name: "2017-03-25 要闻", "Digest 2017-03-25".
    fn issue_label(&self, issue: &str) -> String {
        match self.language {
            Language::Chinese => format!("{issue} {}", self.digest),
            Language::English => format!("{} {issue}", self.digest),
        }
    }

    /// One issue's title: "映象网 · 2017-03-25 要闻", "Site · Digest 2017-03-25".
    pub(super) fn issue_title(&self, site: &str, issue: &str) -> String {
        format!("{site} · {}", self.issue_label(issue))
    }

    /// The archive's title: "映象网 · 往期要闻", "Site · Past issues".
    pub(super) fn archive_title(&self, site: &str) -> String {
        format!("{site} · {}", self.archive)
    }
}

/// Where the pages link to, absolute (like the feeds: a page may be read
/// from a copy, a cache or an aggregator).
pub(super) struct Links<'a> {
    pub index: &'a str,
    pub feed: &'a str,
}

#[derive(Serialize)]
struct SiteContext<'a> {
    title: &'a str,
    url: &'a str,
    description: &'a str,
}

#[derive(Serialize)]
struct IssuePage<'a> {
    lang: &'a str,
    title: String,
    site: SiteContext<'a>,
    words: &'a Words,
    issue: &'a str,
    /// "2017-03-25 要闻", "Digest 2017-03-25".
    label: String,
    count: String,
    page_url: &'a str,
    index_url: &'a str,
    feed_url: &'a str,
    feed_title: String,
    sections: Vec<PageSection<'a>>,
}

#[derive(Serialize)]
struct PageSection<'a> {
    title: &'a str,
    url: &'a str,
    items: Vec<PageItem<'a>>,
}

#[derive(Serialize)]
struct PageItem<'a> {
    title: &'a str,
    url: &'a str,
    published: String,
    source: Option<&'a str>,
    author: Option<&'a str>,
    summary: Option<String>,
    image: Option<&'a str>,
    related: Vec<PageLink<'a>>,
}

#[derive(Serialize)]
struct PageLink<'a> {
    title: &'a str,
    url: &'a str,
}

#[derive(Serialize)]
struct IndexPage<'a> {
    lang: &'a str,
    title: String,
    site: SiteContext<'a>,
    words: &'a Words,
    index_url: &'a str,
    feed_url: &'a str,
    issues: Vec<IndexIssue<'a>>,
}

#[derive(Serialize)]
struct IndexIssue<'a> {
    issue: &'a str,
    label: String,
    url: String,
    count: String,
    headlines: Vec<&'a str>,
}

fn site_context(site: &Site) -> SiteContext<'_> {
    SiteContext {
        title: &site.title,
        url: site.base_url.as_str(),
        description: &site.description,
    }
}

/// One issue's page.
pub(super) fn issue_page(
    site: &Site,
    issue: &str,
    groups: &[Group<'_>],
    page_url: &str,
    links: &Links<'_>,
) -> String {
    let words = Words::of(&site.language);
    let page = IssuePage {
        lang: &site.language,
        title: words.issue_title(&site.title, issue),
        site: site_context(site),
        words,
        issue,
        label: words.issue_label(issue),
        count: words.count(groups.iter().map(|g| g.items.len()).sum()),
        page_url,
        index_url: links.index,
        feed_url: links.feed,
        feed_title: words.archive_title(&site.title),
        sections: groups
            .iter()
            .map(|g| PageSection {
                title: &g.section.title,
                url: g.section.url.as_str(),
                items: g.items.iter().map(|i| page_item(site, i)).collect(),
            })
            .collect(),
    };
    render(ISSUE_TEMPLATE, &page)
}

fn page_item<'a>(site: &Site, item: &'a Item<'a>) -> PageItem<'a> {
    let a: &Article = item.article;
    PageItem {
        title: &a.title,
        url: a.url.as_str(),
        published: site
            .zone
            .local(a.published)
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        source: a.source.as_deref(),
        author: a.author.as_deref(),
        summary: crate::feed::summary_text(a)
            .map(|s| crate::text::truncate_chars(&s, SUMMARY_CHARS).into_owned()),
        image: a.image.as_ref().map(url::Url::as_str),
        related: item
            .related
            .iter()
            .map(|r| PageLink {
                title: &r.title,
                url: r.url.as_str(),
            })
            .collect(),
    }
}

/// The list of issues, `records` newest first; `url` gives each issue's page.
pub(super) fn index_page(
    site: &Site,
    records: &[&Record],
    url: impl Fn(&str) -> String,
    links: &Links<'_>,
) -> String {
    let words = Words::of(&site.language);
    let page = IndexPage {
        lang: &site.language,
        title: words.archive_title(&site.title),
        site: site_context(site),
        words,
        index_url: links.index,
        feed_url: links.feed,
        issues: records
            .iter()
            .map(|r| IndexIssue {
                issue: &r.issue,
                label: words.issue_label(&r.issue),
                url: url(&r.issue),
                count: words.count(r.item_count()),
                headlines: r
                    .sections
                    .iter()
                    .flat_map(|s| &s.items)
                    .map(|i| i.title.as_str())
                    .take(HEADLINES)
                    .collect(),
            })
            .collect(),
    };
    render(INDEX_TEMPLATE, &page)
}

fn render(template: &str, data: &impl Serialize) -> String {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    // Element text and double-quoted attributes (every attribute in the
    // templates is double-quoted): `&`, `<`, `>`, `"`.
    registry.register_escape_fn(|s| html_escape::encode_double_quoted_attribute(s).into_owned());
    registry
        .render_template(template, data)
        .expect("the built-in archive templates render")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_follow_the_site_language() {
        assert_eq!(Words::of("zh-CN").digest, "要闻");
        assert_eq!(Words::of("zh-Hant-TW").digest, "要闻");
        assert_eq!(Words::of("en").digest, "Digest");
        assert_eq!(Words::of("fr-FR").digest, "Digest");
        assert_eq!(Words::of("en").count(1), "1 article");
        assert_eq!(Words::of("en-GB").count(2), "2 articles");
        assert_eq!(Words::of("zh").count(2), "2 条");
    }
}
