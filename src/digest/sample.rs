//! The digest part of `check`: the templates rendered on sample emails that
//! take every branch a real one can (a named and a nameless recipient, an
//! item with every field and related reads and one with none, with and
//! without an unsubscribe link and an archive page), so a misspelled
//! variable is caught here, not in an inbox.

use chrono::{DateTime, Utc};

use super::setup::Setup;
use super::{ArticleFields, Email, Group, Item, context};
use crate::config::Config;
use crate::diag::Problems;
use crate::model::{Article, IssueKey, Section, Site, Subscriber};

/// Checks the digest's subscribers and templates (nothing when the config
/// has no `[digest]`); `now` dates the sample articles and the issue.
/// Returns what it loaded, for the caller's summary.
pub fn check(config: &Config, now: DateTime<Utc>) -> Result<Option<Setup>, Problems> {
    if config.digest.is_none() {
        return Ok(None);
    }
    let setup = Setup::load(config)?;
    let site = &config.site;
    let fallback = fallback_section(site);
    let section = site.sections.first().unwrap_or(&fallback);
    let (full, bare) = sample_articles(site, section, now);
    let named = Subscriber {
        email: "check@example.invalid".into(),
        name: Some("check".into()),
        sections: None,
        left: None,
    };
    let nameless = Subscriber {
        name: None,
        ..named.clone()
    };
    let groups = || {
        vec![Group {
            section,
            items: vec![
                Item {
                    article: &full,
                    related: vec![&bare, &full],
                },
                Item {
                    article: &bare,
                    related: Vec::new(),
                },
            ],
        }]
    };
    let fields = ArticleFields::new(site, [&full, &bare]);
    let unsubscribe = setup
        .digest
        .unsubscribe_url
        .as_deref()
        .map(|u| super::message::unsubscribe_url(u, Some("0123456789abcdefghijklmnopqrs")));
    let issue = IssueKey::of(site, now);
    // `{{archive_url}}` set once and absent once, whatever the config says:
    // a template must take both branches.
    let archive = format!("{}digest/{}/", site.base_url, issue.as_str());
    let samples = [
        (&named, unsubscribe.as_deref(), Some(archive.as_str())),
        (&nameless, None, None),
    ];
    for (subscriber, unsubscribe, archive) in samples {
        let email = Email {
            subscriber,
            groups: groups(),
        };
        setup
            .templates
            .render(context(site, &issue, &email, unsubscribe, archive, &fields))?;
    }
    Ok(Some(setup))
}

/// A section for a site that declares none.
fn fallback_section(site: &Site) -> Section {
    Section {
        id: "news".into(),
        title: "News".into(),
        description: None,
        url: site.base_url.clone(),
        parent: None,
    }
}

/// An article with every field, and one with only the required ones.
fn sample_articles(site: &Site, section: &Section, now: DateTime<Utc>) -> (Article, Article) {
    let full = Article {
        id: "sample-full".into(),
        title: "Sample".into(),
        section: section.id.clone(),
        url: site.base_url.clone(),
        published: now,
        updated: now,
        author: Some("author".into()),
        editor: Some("editor".into()),
        source: Some("source".into()),
        keywords: vec!["keyword".into()],
        summary: Some("summary".into()),
        content_html: Some("<p>body</p>".into()),
        image: Some(site.base_url.clone()),
        related: Vec::new(),
        views: Some(1),
    };
    let bare = Article {
        id: "sample-bare".into(),
        author: None,
        editor: None,
        source: None,
        keywords: Vec::new(),
        summary: None,
        content_html: None,
        image: None,
        views: None,
        ..full.clone()
    };
    (full, bare)
}
