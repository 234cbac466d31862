//! The digest templates: loading, checking and rendering.
//!
//! Two Handlebars registries in strict mode: the HTML one escapes, the
//! plain-text one (also used for the subject) does not, so a URL with `&` or
//! `=` stays intact. The built-in templates are compiled in, one pair per
//! [`Language`] (`site.language` picks it), and replaced by the files the
//! config names. The rendered text part is wrapped at 78 columns
//! ([`super::wrap`]), whatever template made it. Helpers:
//!
//! - `{{format_date value "FORMAT"}}`: an RFC 3339 value as wall-clock time in the
//!   site's timezone (chrono `strftime` format, default `%Y-%m-%d %H:%M`);
//! - `{{truncate text N}}`: at most N characters (not bytes), `…` when cut.
//!
//! Templates that could exhaust the stack (recursive partials, nesting
//! deeper than `guard::MAX_DEPTH`) are refused when loaded, with file and
//! line (`guard`).

use std::path::Path;

use handlebars::template::Template;
use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason,
    ScopedJson,
};
use serde_json::Value;

use super::guard;
use super::shape::{self, Shape};
use crate::diag::{Location, Problem, Problems};
use crate::model::SiteZone;

/// The languages of the built-in templates (and of the dry run's index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Zh,
    En,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::Zh, Language::En];

    /// `site.language`: `zh`, `zh-CN`, `zh-Hant-TW`… are Chinese; every
    /// other language gets English (the more widely read of the two).
    pub fn of(tag: &str) -> Language {
        let primary = tag.split('-').next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("zh") {
            Language::Zh
        } else {
            Language::En
        }
    }

    /// The built-in digest templates in this language.
    pub fn builtin(self) -> Builtin {
        match self {
            Language::Zh => Builtin {
                html: include_str!("../../templates/digest.zh.html.hbs"),
                text: include_str!("../../templates/digest.zh.txt.hbs"),
            },
            Language::En => Builtin {
                html: include_str!("../../templates/digest.en.html.hbs"),
                text: include_str!("../../templates/digest.en.txt.hbs"),
            },
        }
    }
}

/// One language's built-in templates (`templates/digest.<lang>.*.hbs`).
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    pub html: &'static str,
    pub text: &'static str,
}

const HTML: &str = "html";
const TEXT: &str = "text";
const SUBJECT: &str = "subject";

/// A rendered email body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Rendered {
    /// The templates' output as an email carries it: the subject on one
    /// line, the text part wrapped.
    pub fn finish(subject: String, text: String, html: String) -> Rendered {
        Rendered {
            subject: crate::text::one_line(&subject),
            text: super::wrap::wrap(&text, super::wrap::WIDTH),
            html,
        }
    }
}

pub struct Templates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    /// The HTML registry that renders shapes (placeholders marked where
    /// escaped), when all three templates are [`shape::shareable`].
    shapes: Option<Handlebars<'static>>,
    /// Where each template came from, for messages.
    sources: [(&'static str, String); 3],
}

/// Where a template comes from: a file, or the built-in default (its text,
/// [`Builtin`]; tests give other text here).
pub enum Source<'a> {
    File(&'a Path),
    Builtin(&'a str),
}

impl Templates {
    /// Compiles the templates, reporting syntax errors with file and line.
    pub fn load(
        html: Source<'_>,
        text: Source<'_>,
        subject: &str,
        config: &Path,
        zone: SiteZone,
    ) -> Result<Templates, Problems> {
        let mut problems = Problems::default();
        let mut read = |source: Source<'_>| -> (String, String) {
            match source {
                Source::Builtin(text) => (text.to_owned(), "(built-in template)".to_owned()),
                Source::File(path) => match std::fs::read_to_string(path) {
                    Ok(text) => (text, path.display().to_string()),
                    Err(e) => {
                        problems.push(Problem::new(
                            Location::file(path),
                            None,
                            format!("cannot read the template: {e}"),
                        ));
                        (String::new(), path.display().to_string())
                    }
                },
            }
        };
        let (html_source, html_name) = read(html);
        let (text_source, text_name) = read(text);

        let mut html_registry = registry(zone);
        let mut text_registry = registry(zone);
        text_registry.register_escape_fn(handlebars::no_escape);
        let sources = [
            (HTML, html_name),
            (TEXT, text_name),
            (SUBJECT, config.display().to_string()),
        ];
        let mut shareable = true;
        // Compiled here rather than by the registry, so that templates
        // that would exhaust the stack are refused first (`guard`).
        let mut compile = |registry: &mut Handlebars<'static>,
                           name: &str,
                           source: &str,
                           file: &str,
                           field: Option<&str>| {
            let at = |pos: Option<(usize, usize)>| match (pos, field) {
                (Some((line, col)), None) => Location::at(Path::new(file), line, col),
                _ => Location::file(Path::new(file)),
            };
            if let Some(found) = guard::nesting(source) {
                let location = at(Some((found.line, found.col)));
                problems.push(Problem::new(location, field, found.message));
                return;
            }
            let template = match Template::compile_with_name(source, name.to_owned()) {
                Ok(template) => template,
                Err(e) => {
                    problems.push(Problem::new(
                        at(e.pos()),
                        field,
                        format!("template syntax: {}", e.reason()),
                    ));
                    return;
                }
            };
            let findings = guard::partials(&template, &[HTML, TEXT, SUBJECT]);
            shareable &= shape::shareable(&template);
            if findings.is_empty() {
                registry.register_template(name, template);
            }
            for found in findings {
                let location = at(Some((found.line, found.col)));
                problems.push(Problem::new(location, field, found.message));
            }
        };
        compile(&mut html_registry, HTML, &html_source, &sources[0].1, None);
        compile(&mut text_registry, TEXT, &text_source, &sources[1].1, None);
        compile(
            &mut text_registry,
            SUBJECT,
            subject,
            &sources[2].1,
            Some("digest.subject"),
        );
        let shapes = shareable.then(|| {
            let mut registry = html_registry.clone();
            registry.register_escape_fn(shape::escape_marking);
            registry
        });
        problems.into_result(Templates {
            html: html_registry,
            text: text_registry,
            shapes,
            sources,
        })
    }

    /// Renders one email. An error here is a template mistake (strict mode:
    /// an unknown variable), reported with the template and its line.
    pub fn render(&self, context: Value) -> Result<Rendered, Problems> {
        let mut problems = Problems::default();
        // One context for the three templates: `render` would copy the data
        // into a new context on every call.
        let context = Context::from(context);
        let mut run = |registry: &Handlebars<'static>, name: &str| match registry
            .render_with_context(name, &context)
        {
            Ok(out) => out,
            Err(e) => {
                problems.push(self.problem(name, &e));
                String::new()
            }
        };
        let subject = run(&self.text, SUBJECT);
        let text = run(&self.text, TEXT);
        let html = run(&self.html, HTML);
        problems.into_result(Rendered::finish(subject, text, html))
    }

    /// Whether emails may share one rendering ([`shape`]).
    pub fn shareable(&self) -> bool {
        self.shapes.is_some()
    }

    /// The shape of the emails whose context this is (rendered with
    /// placeholders: [`shape::Personal::placeholders`]); none when the
    /// templates are not shareable or fail (a rendering of one's own then
    /// reports why).
    pub fn render_shape(&self, context: Value) -> Option<Shape> {
        let shapes = self.shapes.as_ref()?;
        let context = Context::from(context);
        let subject = self.text.render_with_context(SUBJECT, &context).ok()?;
        let text = self.text.render_with_context(TEXT, &context).ok()?;
        let html = shapes.render_with_context(HTML, &context).ok()?;
        Some(Shape::new(subject, text, html))
    }

    fn problem(&self, name: &str, e: &RenderError) -> Problem {
        let file = self
            .sources
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(name, |(_, f)| f.as_str());
        let field = (name == SUBJECT).then_some("digest.subject");
        let location = match (e.line_no, e.column_no, field) {
            (Some(line), Some(col), None) => Location::at(Path::new(file), line, col),
            _ => Location::file(Path::new(file)),
        };
        let message = match e.reason() {
            RenderErrorReason::MissingVariable(Some(var)) => {
                format!("unknown variable `{var}` (see the template variables in the README)")
            }
            other => other.to_string(),
        };
        Problem::new(location, field, message)
    }
}

fn registry(zone: SiteZone) -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_helper("format_date", Box::new(DateHelper(zone)));
    registry.register_helper("truncate", Box::new(TruncateHelper));
    registry
}

struct DateHelper(SiteZone);

impl HelperDef for DateHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let value = h
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("format_date", 0))?;
        let text = value
            .value()
            .as_str()
            .ok_or(RenderErrorReason::InvalidParamType("an RFC 3339 string"))?;
        let format = h
            .param(1)
            .and_then(|f| f.value().as_str())
            .unwrap_or("%Y-%m-%d %H:%M");
        let instant = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| {
            RenderErrorReason::Other(format!("format_date: {text:?} is not an RFC 3339 time"))
        })?;
        let local = self.0.local(instant.to_utc());
        let items: Vec<_> = chrono::format::StrftimeItems::new(format).collect();
        if items
            .iter()
            .any(|i| matches!(i, chrono::format::Item::Error))
        {
            return Err(RenderErrorReason::Other(format!(
                "format_date: {format:?} is not a valid date format"
            ))
            .into());
        }
        Ok(ScopedJson::Derived(Value::String(
            local.format_with_items(items.into_iter()).to_string(),
        )))
    }
}

struct TruncateHelper;

impl HelperDef for TruncateHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let text = h
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("truncate", 0))?;
        let text = text.value().as_str().unwrap_or_default();
        let max = h.param(1).and_then(|n| n.value().as_u64()).ok_or(
            RenderErrorReason::InvalidParamType("a number of characters"),
        )?;
        Ok(ScopedJson::Derived(Value::String(
            crate::text::truncate_chars(text, max as usize).into_owned(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Their emails share renderings ([`shape`]): composing costs a
    /// fraction of rendering each.
    #[test]
    fn the_built_in_templates_are_shareable() {
        for language in Language::ALL {
            let builtin = language.builtin();
            let templates = Templates::load(
                Source::Builtin(builtin.html),
                Source::Builtin(builtin.text),
                "{{site.title}} {{date}}",
                Path::new("feeds.toml"),
                SiteZone::Named(chrono_tz::Asia::Shanghai),
            )
            .expect("the built-in templates load");
            assert!(templates.shareable(), "{language:?}");
        }
    }

    #[test]
    fn chinese_for_zh_and_english_for_everything_else() {
        for (tag, language) in [
            ("zh", Language::Zh),
            ("zh-CN", Language::Zh),
            ("ZH-Hant-TW", Language::Zh),
            ("en", Language::En),
            ("en-GB", Language::En),
            ("fr", Language::En),
            ("ja", Language::En),
            ("zhx", Language::En),
            ("", Language::En),
        ] {
            assert_eq!(Language::of(tag), language, "{tag:?}");
        }
    }
}
