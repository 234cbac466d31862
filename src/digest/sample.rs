//! The digest part of `check`: the templates rendered on sample emails that
//! take every branch a real one can (a named and a nameless recipient, an
//! item with every field — a lead image, related reads — and one with none,
//! two items and one, with and without an unsubscribe link and a "view in
//! browser" link), so a misspelled variable is caught here, not in an
//! inbox. A unit test below proves the samples take every branch of both
//! languages' built-in templates.

use chrono::{DateTime, Utc};

use super::render::Templates;
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
    render_samples(
        &config.site,
        &setup.templates,
        setup.digest.unsubscribe_url.as_deref(),
        now,
    )?;
    Ok(Some(setup))
}

/// Renders `templates` on the sample emails: every branch the built-in
/// templates have is taken by one of them (a unit test below proves it).
pub fn render_samples(
    site: &Site,
    templates: &Templates,
    unsubscribe_url: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), Problems> {
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
    let groups = |items: usize| {
        let mut items_of = vec![
            Item {
                article: &full,
                related: vec![&bare, &full],
            },
            Item {
                article: &bare,
                related: Vec::new(),
            },
        ];
        items_of.truncate(items);
        vec![Group {
            section,
            items: items_of,
        }]
    };
    let fields = ArticleFields::new(site, [&full, &bare]);
    let unsubscribe = unsubscribe_url
        .map(|u| super::message::unsubscribe_url(u, Some("0123456789abcdefghijklmnopqrs")));
    let issue = IssueKey::of(site, now);
    // Two items, a link to leave and a public copy of the issue; then one
    // item (a count in the singular), no link and no copy. The public copy
    // (`archive_url`) is set here whatever the config says, so a template's
    // "view in browser" branch is checked too; the second sample has
    // whatever the real emails have.
    let archive = format!("{}digest/{issue}/", site.base_url);
    for (subscriber, unsubscribe, archive, items) in [
        (&named, unsubscribe.as_deref(), Some(&archive), 2),
        (&nameless, None, None, 1),
    ] {
        let email = Email {
            subscriber,
            groups: groups(items),
        };
        let personal = super::shape::Personal::of(subscriber, unsubscribe);
        let email_context = context(
            site,
            &issue,
            &email,
            &personal,
            archive.map(String::as_str),
            &fields,
        );
        templates.render(email_context)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::digest::render::{Language, Source};

    /// A site in `language` with one section.
    fn site(language: &str) -> Site {
        let config = format!(
            "[site]\ntitle = \"T\"\nbase_url = \"https://news.example.com/\"\nlanguage = \"{language}\"\n\
             [input]\npaths = [\"articles\"]\n[[sections]]\nid = \"news\"\ntitle = \"News\"\n"
        );
        Config::parse(&config, Path::new("feeds.toml"), Path::new("."))
            .expect("the config parses")
            .site
    }

    /// Where the content of every block and `{{else}}` of `template` begins
    /// (byte offsets), with its line.
    fn branch_starts(template: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(found) = template[at..].find("{{") {
            let start = at + found;
            let end = start + template[start..].find("}}").expect("closed") + 2;
            let tag = template[start + 2..end - 2].trim_start_matches('~');
            if tag.starts_with('#') || tag.trim() == "else" || tag.starts_with("else ") {
                out.push((end, template[..end].lines().count()));
            }
            at = end;
        }
        out
    }

    /// A misspelled variable put at the start of any branch of a built-in
    /// template is caught by the samples: each branch is rendered.
    #[test]
    fn the_samples_take_every_branch_of_the_built_in_templates() {
        let now = DateTime::parse_from_rfc3339("2017-03-25T08:00:00+08:00")
            .unwrap()
            .to_utc();
        let unsubscribe = Some("https://news.example.com/unsubscribe?token={{token}}");
        for (tag, language) in [("zh-CN", Language::Zh), ("en", Language::En)] {
            let site = site(tag);
            let load = |html: &str, text: &str| {
                Templates::load(
                    Source::Builtin(html),
                    Source::Builtin(text),
                    "{{site.title}}",
                    Path::new("feeds.toml"),
                    site.zone,
                )
                .expect("the templates compile")
            };
            let builtin = language.builtin();
            render_samples(&site, &load(builtin.html, builtin.text), unsubscribe, now)
                .expect("the built-in templates render");
            for (part, source) in [("html", builtin.html), ("text", builtin.text)] {
                let starts = branch_starts(source);
                assert!(starts.len() >= 10, "{tag} {part}: {starts:?}");
                for (n, (at, line)) in starts.into_iter().enumerate() {
                    let marker = format!("untaken_{n}");
                    let mutated = format!("{}{{{{{marker}}}}}{}", &source[..at], &source[at..]);
                    let templates = match part {
                        "html" => load(&mutated, builtin.text),
                        _ => load(builtin.html, &mutated),
                    };
                    let problems = render_samples(&site, &templates, unsubscribe, now).expect_err(
                        &format!("{tag} {part} template, line {line}: no sample takes this branch"),
                    );
                    assert!(
                        problems.to_string().contains(&marker),
                        "{tag} {part} line {line}: {problems}"
                    );
                }
            }
        }
    }
}
