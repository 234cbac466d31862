//! `digest --dry-run DIR`: every message written as the `.eml` it would be
//! on the wire, an HTML preview of each, and `index.html` linking them (a
//! built-in template in the site's language). Everything is staged beside its target and moved into
//! place only when every message rendered: an error leaves the folder as it
//! was, and a later dry run there removes only files an earlier one wrote.

use std::collections::HashSet;
use std::path::Path;

use handlebars::Handlebars;
use serde::Serialize;

use super::Digest;
use super::compose::Composer;
use super::render::Language;
use crate::Failure;
use crate::output::Staging;

/// Lists the files a dry run wrote into its folder, so the next dry run
/// there removes those it does not write again (and nothing else).
const MANIFEST: &str = ".bulletin-dry-run";

/// The index page's template in `language`.
fn index_template(language: Language) -> &'static str {
    match language {
        Language::Zh => include_str!("../../templates/dry-run.zh.html.hbs"),
        Language::En => include_str!("../../templates/dry-run.en.html.hbs"),
    }
}

/// What a dry run wrote.
pub struct Preview {
    pub emails: usize,
    pub items: usize,
}

#[derive(Serialize)]
struct Index<'a> {
    issue: &'a str,
    emails: usize,
    items: usize,
    nothing_new: usize,
    already_sent: usize,
    suppressed: usize,
    rows: Vec<Row>,
}

#[derive(Serialize)]
struct Row {
    email: String,
    name: String,
    subject: String,
    /// The file name both files share, without extension.
    file: String,
}

/// Composes every planned message and writes the preview folder `dir`.
pub fn write(dir: &Path, plan: &Digest<'_>, composer: &Composer<'_>) -> Result<Preview, Failure> {
    let mut staging = Staging::scratch(dir);
    let mut rows = Vec::new();
    let mut used = HashSet::new();
    let mut items = 0;
    composer.each(Ok, |c| {
        let mut file = file_name(&c.subscriber.email);
        while !used.insert(file.clone()) {
            file.push('_');
        }
        staging.add(&format!("{file}.eml"), &c.bytes)?;
        staging.add(&format!("preview/{file}.html"), c.html.as_bytes())?;
        items += c.article_ids.len();
        rows.push(Row {
            email: c.subscriber.email.clone(),
            name: c.subscriber.name.clone().unwrap_or_default(),
            subject: c.subject,
            file,
        });
        Ok(())
    })?;
    let emails = rows.len();
    let index = Index {
        issue: plan.issue.as_str(),
        emails,
        items,
        nothing_new: plan.nothing_new,
        already_sent: plan.already_sent,
        suppressed: plan.suppressed,
        rows,
    };
    let language = Language::of(&composer.site().language);
    staging.add("index.html", render_index(language, &index).as_bytes())?;
    staging.commit_owned_set(MANIFEST)?;
    Ok(Preview { emails, items })
}

fn render_index(language: Language, index: &Index<'_>) -> String {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    // Text is escaped as in element content: `&`, `<`, `>`.
    registry.register_escape_fn(|s| html_escape::encode_text(s).into_owned());
    registry
        .render_template(index_template(language), index)
        .expect("the built-in index template renders")
}

/// A file name a person recognises: the address, with anything unsafe replaced.
fn file_name(email: &str) -> String {
    email
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.+-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_renders_in_each_language_with_every_branch() {
        for (language, words) in [
            (Language::Zh, ["试运行", "位在停发名单上", "收件人"]),
            (
                Language::En,
                ["dry run", "on the suppression list", "subject"],
            ),
        ] {
            let index = Index {
                issue: "2017-03-25",
                emails: 1,
                items: 2,
                nothing_new: 3,
                already_sent: 4,
                suppressed: 5,
                rows: vec![Row {
                    email: "a&b@example.com".into(),
                    name: "<A>".into(),
                    subject: "S".into(),
                    file: "a_b@example.com".into(),
                }],
            };
            let page = render_index(language, &index);
            for word in words {
                assert!(page.contains(word), "{language:?}: {word}\n{page}");
            }
            assert!(page.contains("a&amp;b@example.com") && page.contains("&lt;A&gt;"));
        }
    }
}
