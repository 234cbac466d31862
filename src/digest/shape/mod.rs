//! One rendering shared by every recipient of the same content.
//!
//! Recipients who get the same articles (same sections, same history: most
//! of a list, on a daily digest) differ in three template values only: their
//! address, their name and their unsubscribe link ([`Personal`]). Rendering
//! the templates is most of a message's cost, so when a template uses those
//! values only as text or as a condition ([`shareable`]), the content is
//! rendered once with a placeholder character in each value's place, and
//! each recipient's message is that rendering with their values written in
//! ([`Shape::fill`]) — the same text a rendering of their own gives, which
//! [`cache::Shapes`] checks on the first recipient of every shape.
//!
//! The placeholders are Unicode noncharacters (U+FDD0…U+FDD2, "for internal
//! use"); the HTML registry used for shapes marks the escaped ones by moving
//! them to U+FDE0…U+FDE2, so a value is escaped exactly where the template
//! escapes it.

pub mod cache;
mod shareable;

pub use shareable::shareable;

use super::render::Rendered;
use crate::model::Subscriber;

/// What differs between recipients of the same content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Personal<'a> {
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub unsubscribe_url: Option<&'a str>,
}

/// A personal value, as a placeholder stands for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Email,
    Name,
    Unsubscribe,
}

impl Value {
    const ALL: [Value; 3] = [Value::Email, Value::Name, Value::Unsubscribe];

    /// The placeholder in the context (and, unescaped, in the output).
    fn text(self) -> &'static str {
        match self {
            Value::Email => "\u{FDD0}",
            Value::Name => "\u{FDD1}",
            Value::Unsubscribe => "\u{FDD2}",
        }
    }

    fn placeholder(self) -> char {
        self.text().chars().next().expect("one character")
    }

    /// The placeholder as the shape registry's escape function leaves it.
    fn escaped(self) -> char {
        match self {
            Value::Email => '\u{FDE0}',
            Value::Name => '\u{FDE1}',
            Value::Unsubscribe => '\u{FDE2}',
        }
    }

    fn of<'p>(personal: &Personal<'p>, value: Value) -> &'p str {
        match value {
            Value::Email => personal.email,
            Value::Name => personal.name.unwrap_or_default(),
            Value::Unsubscribe => personal.unsubscribe_url.unwrap_or_default(),
        }
    }
}

/// How a name looks to a template: absent (null), empty, or a name. The
/// first two are falsy and rendered as they are; only a name is a
/// placeholder, so `{{#if recipient.name}}` takes the same branch in the
/// shape as for every recipient that shares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    Absent,
    Empty,
    Given,
}

impl NameKind {
    pub fn of(name: Option<&str>) -> NameKind {
        match name {
            None => NameKind::Absent,
            Some("") => NameKind::Empty,
            Some(_) => NameKind::Given,
        }
    }
}

impl Personal<'static> {
    /// The values a shape is rendered with: placeholders where the
    /// recipients' values will go.
    pub fn placeholders(name: NameKind, unsubscribe: bool) -> Personal<'static> {
        Personal {
            email: Value::Email.text(),
            name: match name {
                NameKind::Absent => None,
                NameKind::Empty => Some(""),
                NameKind::Given => Some(Value::Name.text()),
            },
            unsubscribe_url: unsubscribe.then_some(Value::Unsubscribe.text()),
        }
    }
}

impl<'a> Personal<'a> {
    /// A subscriber's values, with their unsubscribe link (if any).
    pub fn of(subscriber: &'a Subscriber, unsubscribe_url: Option<&'a str>) -> Personal<'a> {
        Personal {
            email: &subscriber.email,
            name: subscriber.name.as_deref(),
            unsubscribe_url,
        }
    }
}

/// The escape function of the HTML registry that renders shapes: HTML
/// escaping, and placeholders marked as escaped.
pub fn escape_marking(text: &str) -> String {
    let escaped = handlebars::html_escape(text);
    if !escaped.contains(|c| Value::ALL.iter().any(|v| v.placeholder() == c)) {
        return escaped;
    }
    escaped
        .chars()
        .map(|c| {
            Value::ALL
                .into_iter()
                .find(|v| v.placeholder() == c)
                .map_or(c, Value::escaped)
        })
        .collect()
}

/// The three rendered templates of one content, placeholders in place.
#[derive(Debug)]
pub struct Shape {
    subject: Pieces,
    text: Pieces,
    html: Pieces,
}

impl Shape {
    /// A shape from the raw output of the templates (before wrapping).
    pub fn new(subject: String, text: String, html: String) -> Shape {
        Shape {
            subject: Pieces::new(subject),
            text: Pieces::new(text),
            html: Pieces::new(html),
        }
    }

    /// The bytes it keeps (for the cache's budget).
    pub fn size(&self) -> usize {
        self.subject.text.len() + self.text.text.len() + self.html.text.len()
    }

    /// One recipient's email.
    pub fn fill(&self, personal: &Personal<'_>) -> Rendered {
        Rendered::finish(
            self.subject.fill(personal),
            self.text.fill(personal),
            self.html.fill(personal),
        )
    }
}

/// A rendered template split at its placeholders.
#[derive(Debug)]
struct Pieces {
    text: String,
    /// Where each placeholder is (byte offset, its length), and what it
    /// stands for, escaped or not.
    holes: Vec<(usize, usize, Value, bool)>,
}

impl Pieces {
    fn new(text: String) -> Pieces {
        let holes = text
            .char_indices()
            .filter_map(|(at, c)| {
                let found = Value::ALL.into_iter().find_map(|v| {
                    if v.placeholder() == c {
                        Some((v, false))
                    } else if v.escaped() == c {
                        Some((v, true))
                    } else {
                        None
                    }
                })?;
                Some((at, c.len_utf8(), found.0, found.1))
            })
            .collect();
        Pieces { text, holes }
    }

    fn fill(&self, personal: &Personal<'_>) -> String {
        let mut out = String::with_capacity(self.text.len() + 64 * self.holes.len());
        let mut from = 0;
        for &(at, len, value, escaped) in &self.holes {
            out.push_str(&self.text[from..at]);
            let value = Value::of(personal, value);
            if escaped {
                out.push_str(&handlebars::html_escape(value));
            } else {
                out.push_str(value);
            }
            from = at + len;
        }
        out.push_str(&self.text[from..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_each_placeholder_escaped_where_it_was_escaped() {
        let html = format!(
            "<a href=\"{}\">{}</a> {} {}",
            escape_marking("\u{FDD2}"),
            escape_marking("\u{FDD1}"),
            "\u{FDD1}",
            escape_marking("<\u{FDD0}>"),
        );
        let shape = Shape::new("Hi \u{FDD1}".into(), "\u{FDD0}\n".into(), html);
        let personal = Personal {
            email: "a&b@example.com",
            name: Some("<Li & \"Wang\">"),
            unsubscribe_url: Some("https://x.example/u?a=1&b=2"),
        };
        let rendered = shape.fill(&personal);
        assert_eq!(rendered.subject, "Hi <Li & \"Wang\">");
        assert_eq!(rendered.text, "a&b@example.com\n");
        assert_eq!(
            rendered.html,
            "<a href=\"https://x.example/u?a&#x3D;1&amp;b&#x3D;2\">&lt;Li &amp; &quot;Wang&quot;&gt;</a> \
             <Li & \"Wang\"> &lt;a&amp;b@example.com&gt;"
        );
    }

    #[test]
    fn text_without_placeholders_is_escaped_as_handlebars_does() {
        for text in ["", "plain", "<b>&'`=\"", "标题，正文"] {
            assert_eq!(escape_marking(text), handlebars::html_escape(text));
        }
    }
}
