//! One article record as written in an input file, and its validation into a
//! [`model::Article`](crate::model::Article).
//!
//! The same [`RawRecord`] is deserialized from TOML, JSON and JSON Lines; the
//! format modules only find where each record starts so problems can name
//! the line of the field at fault.
//!
//! Validation and normalisation are split for speed on large archives:
//! [`RawRecord::check`] validates every field while borrowing the input
//! (strings without escapes are never copied), and only a record a sink
//! keeps is turned into an owned, normalised `Article`.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use url::Url;

use crate::model::{Article, SiteZone};
use crate::text::{dedup_keywords, is_unsafe_char, one_line, split_keywords, strip_unsafe};

type Text<'a> = Option<Cow<'a, str>>;

/// A record as deserialized: required fields are optional here so that every
/// missing one can be reported, not only the first.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecord<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    title: Text<'a>,
    #[serde(borrow)]
    section: Text<'a>,
    #[serde(borrow)]
    url: Text<'a>,
    #[serde(borrow)]
    published: Option<DateText<'a>>,
    #[serde(borrow)]
    updated: Option<DateText<'a>>,
    #[serde(borrow)]
    author: Text<'a>,
    #[serde(borrow)]
    editor: Text<'a>,
    #[serde(borrow)]
    source: Text<'a>,
    #[serde(borrow)]
    keywords: Option<Keywords<'a>>,
    #[serde(borrow)]
    summary: Text<'a>,
    #[serde(borrow)]
    content_html: Text<'a>,
    #[serde(borrow)]
    image: Text<'a>,
    #[serde(borrow)]
    related: Option<Vec<BorrowedText<'a>>>,
    views: Option<u64>,
}

impl RawRecord<'_> {
    /// The id as written, for duplicate detection even when other fields fail.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

/// What a record's fields are checked against.
pub struct RecordContext<'a> {
    pub base_url: &'a Url,
    pub zone: SiteZone,
    pub section_exists: &'a (dyn Fn(&str) -> bool + Sync),
}

/// A field-level problem: the field and what is wrong with it.
#[derive(Debug, PartialEq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn field_error(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// A record whose every field is valid, still borrowing its input.
pub struct Checked<'a> {
    raw: RawRecord<'a>,
    url: Url,
    image: Option<Url>,
    published: DateTime<Utc>,
    updated: DateTime<Utc>,
}

/// True when `text` holds something visible once cleaned.
fn has_visible(text: &str) -> bool {
    text.chars()
        .any(|c| !c.is_whitespace() && !is_unsafe_char(c))
}

impl<'a> RawRecord<'a> {
    /// Validates every field, or lists every field at fault. Copies nothing.
    pub fn check(self, cx: &RecordContext<'_>) -> Result<Checked<'a>, Vec<FieldError>> {
        let mut errors = Vec::new();
        for (field, value) in [
            ("id", &self.id),
            ("title", &self.title),
            ("section", &self.section),
            ("url", &self.url),
        ] {
            match value.as_deref() {
                Some(v) if has_visible(v) => {}
                Some(_) => errors.push(field_error(field, "must not be empty")),
                None => errors.push(field_error(field, "is missing (required)")),
            }
        }
        if let Some(title) = self.title.as_deref()
            && title.contains(['<', '&'])
            && has_visible(title)
            && crate::text::plain_title(title).is_empty()
        {
            errors.push(field_error("title", "holds nothing but markup"));
        }
        if self.published.is_none() {
            errors.push(field_error("published", "is missing (required)"));
        }
        if let Some(section) = self.section.as_deref().filter(|s| has_visible(s)) {
            let section = clean(section);
            if !(cx.section_exists)(&section) {
                errors.push(field_error(
                    "section",
                    format!("{section:?} is not a section declared in the config"),
                ));
            }
        }
        let mut url_of = |field: &'static str, value: Option<&str>| {
            value
                .filter(|v| has_visible(v))
                .and_then(|u| match web_url(&clean(u), cx.base_url) {
                    Ok(url) => Some(url),
                    Err(why) => {
                        errors.push(field_error(field, why));
                        None
                    }
                })
        };
        let url = url_of("url", self.url.as_deref());
        let image = url_of("image", self.image.as_deref());
        let mut date = |field: &'static str, value: Option<&DateText>| {
            value.and_then(|d| match parse_datetime(&d.0, cx.zone) {
                Ok(t) => Some(t),
                Err(why) => {
                    errors.push(field_error(field, why));
                    None
                }
            })
        };
        let published = date("published", self.published.as_ref());
        let updated = date("updated", self.updated.as_ref());
        match (url, published, errors.is_empty()) {
            (Some(url), Some(published), true) => Ok(Checked {
                url,
                image,
                published,
                // A record "updated" before it was published is a CMS quirk, not news.
                updated: updated.map_or(published, |u| u.max(published)),
                raw: self,
            }),
            _ => Err(errors),
        }
    }
}

/// A one-line field without copying when it is already clean.
fn clean(text: &str) -> Cow<'_, str> {
    if crate::text::is_one_line(text) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(one_line(text))
    }
}

impl Checked<'_> {
    pub fn published(&self) -> DateTime<Utc> {
        self.published
    }

    pub fn id(&self) -> Cow<'_, str> {
        clean(self.raw.id.as_deref().unwrap_or_default())
    }

    pub fn section(&self) -> Cow<'_, str> {
        clean(self.raw.section.as_deref().unwrap_or_default())
    }

    /// The owned, normalised article.
    pub fn into_article(self) -> Article {
        let raw = self.raw;
        let text = |v: Text<'_>| v.map(|v| one_line(&v)).unwrap_or_default();
        let optional = |v: Text<'_>| v.map(|v| one_line(&v)).filter(|v| !v.is_empty());
        let keywords = match raw.keywords {
            Some(Keywords(list)) => {
                dedup_keywords(list.iter().flat_map(|k| split_keywords(k)).collect())
            }
            None => Vec::new(),
        };
        let related: Vec<String> = raw
            .related
            .unwrap_or_default()
            .iter()
            .map(|r| one_line(&r.0))
            .filter(|r| !r.is_empty())
            .collect();
        Article {
            id: text(raw.id),
            // A headline is plain text; exports often carry markup or entities in it.
            title: crate::text::plain_title(&text(raw.title)),
            section: text(raw.section),
            url: self.url,
            published: self.published,
            updated: self.updated,
            author: optional(raw.author),
            editor: optional(raw.editor),
            source: optional(raw.source),
            keywords,
            summary: raw
                .summary
                .map(|s| strip_unsafe(s.trim()).into_owned())
                .filter(|s| !s.is_empty()),
            content_html: raw
                .content_html
                .filter(|h| !h.trim().is_empty())
                .map(Cow::into_owned),
            image: self.image,
            related,
            views: raw.views,
        }
    }
}

/// An absolute http(s) URL, or a path relative to the site's base URL.
pub fn web_url(text: &str, base: &Url) -> Result<Url, String> {
    let text = text.trim();
    let url = base
        .join(text)
        .map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(url),
        "http" | "https" => Err(format!("{text:?} has no host")),
        scheme => Err(format!(
            "{text:?} uses the {scheme}: scheme; only http and https links are allowed"
        )),
    }
}

/// Reads `published`/`updated`: RFC 3339 with an offset, or a wall-clock time
/// `YYYY-MM-DD HH:MM[:SS]` (or a bare date) in the site's timezone.
pub fn parse_datetime(text: &str, zone: SiteZone) -> Result<DateTime<Utc>, String> {
    let instant = parse_any_datetime(text.trim(), zone)?;
    if chrono::Timelike::nanosecond(&instant) >= 1_000_000_000 {
        // chrono keeps second 60 as a leap second; feeds and readers refuse it.
        return Err(format!(
            "{:?} has second 60 (a leap second); use :59",
            text.trim()
        ));
    }
    if !zone.representable(instant) {
        return Err(format!("{:?} is outside the years 1 to 9999", text.trim()));
    }
    Ok(instant)
}

fn parse_any_datetime(text: &str, zone: SiteZone) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.to_utc());
    }
    // RFC 3339 allows a space for the `T`; chrono wants the `T`.
    if let Some((date, time)) = text.split_once(' ')
        && let Ok(t) = DateTime::parse_from_rfc3339(&format!("{date}T{time}"))
    {
        return Ok(t.to_utc());
    }
    const NAIVE: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ];
    let naive = NAIVE
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        });
    match naive {
        Some(naive) => zone.resolve_local(naive).ok_or_else(|| {
            format!("{text:?} does not exist in the site's timezone (a daylight-saving gap)")
        }),
        None => Err(format!(
            "{text:?} is not a date; expected RFC 3339 like \"2017-03-23T11:03:00+08:00\" \
             or \"2017-03-23 11:03[:SS]\" in the site's timezone"
        )),
    }
}

/// A date as text: a string, or a native TOML datetime.
#[derive(Debug)]
struct DateText<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for DateText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DateVisitor;
        impl<'de> Visitor<'de> for DateVisitor {
            type Value = DateText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a date: RFC 3339 or \"YYYY-MM-DD HH:MM[:SS]\"")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<DateText<'de>, E> {
                Ok(DateText(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DateText<'de>, E> {
                Ok(DateText(Cow::Owned(v.to_owned())))
            }
            // toml hands its native datetimes over as a one-entry map.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DateText<'de>, A::Error> {
                match map.next_entry::<String, String>()? {
                    Some((_, value)) => Ok(DateText(Cow::Owned(value))),
                    None => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
                }
            }
        }
        deserializer.deserialize_any(DateVisitor)
    }
}

/// `keywords`: a list of strings or one string to split.
#[derive(Debug)]
struct Keywords<'a>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Keywords<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeywordsVisitor;
        impl<'de> Visitor<'de> for KeywordsVisitor {
            type Value = Keywords<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings or one string separated by ; or ,")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Keywords<'de>, E> {
                Ok(Keywords(vec![Cow::Borrowed(v)]))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Keywords<'de>, E> {
                Ok(Keywords(vec![Cow::Owned(v.to_owned())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Keywords<'de>, A::Error> {
                let mut list = Vec::new();
                while let Some(k) = seq.next_element::<BorrowedText<'de>>()? {
                    list.push(k.0);
                }
                Ok(Keywords(list))
            }
        }
        deserializer.deserialize_any(KeywordsVisitor)
    }
}

/// A string borrowed from the input when it holds no escapes.
#[derive(Debug)]
struct BorrowedText<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = BorrowedText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedText(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedText(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(BorrowedText(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn china() -> SiteZone {
        SiteZone::Fixed(FixedOffset::east_opt(8 * 3600).unwrap())
    }

    #[test]
    fn dates_in_every_accepted_form() {
        let expect = "2017-03-23T03:03:00+00:00";
        for text in [
            "2017-03-23T11:03:00+08:00",
            "2017-03-23 11:03:00+08:00",
            "2017-03-23 11:03",
            "2017-03-23 11:03:00",
            "2017-03-23T11:03:00",
            "2017-03-23T03:03:00Z",
        ] {
            assert_eq!(
                parse_datetime(text, china()).unwrap().to_rfc3339(),
                expect,
                "{text}"
            );
        }
        assert_eq!(
            parse_datetime("2017-03-23", china()).unwrap().to_rfc3339(),
            "2017-03-22T16:00:00+00:00"
        );
        let err = parse_datetime("2017-13-01", china()).unwrap_err();
        assert!(err.starts_with("\"2017-13-01\" is not a date"), "{err}");
    }

    #[test]
    fn urls_resolve_against_the_base_and_refuse_other_schemes() {
        let base = Url::parse("https://news.example.cn/").unwrap();
        assert_eq!(
            web_url("/a/b.html", &base).unwrap().as_str(),
            "https://news.example.cn/a/b.html"
        );
        assert!(
            web_url("javascript:alert(1)", &base)
                .unwrap_err()
                .contains("javascript: scheme")
        );
        assert!(
            web_url("data:text/html,x", &base)
                .unwrap_err()
                .contains("data: scheme")
        );
    }

    #[test]
    fn reports_every_bad_field_of_one_record() {
        let base = Url::parse("https://news.example.cn/").unwrap();
        let exists = |s: &str| s == "news";
        let cx = RecordContext {
            base_url: &base,
            zone: china(),
            section_exists: &exists,
        };
        let raw: RawRecord<'_> = serde_json::from_str(
            r#"{"id":"a","section":"world","url":"ftp://x/y","published":"soon"}"#,
        )
        .unwrap();
        let errors = raw.check(&cx).err().unwrap();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["title", "section", "url", "published"]);
    }

    #[test]
    fn toml_native_datetime_and_keyword_string() {
        let raw: RawRecord<'static> = toml::from_str(
            "id = 'a'\ntitle = 't'\nsection = 'news'\nurl = '/a.html'\npublished = 2017-03-22T09:10:00+08:00\nkeywords = '基层干部;群众路线；基层干部;'",
        )
        .unwrap();
        let base = Url::parse("https://news.example.cn/").unwrap();
        let exists = |_: &str| true;
        let cx = RecordContext {
            base_url: &base,
            zone: china(),
            section_exists: &exists,
        };
        let article = raw.check(&cx).unwrap().into_article();
        assert_eq!(article.published.to_rfc3339(), "2017-03-22T01:10:00+00:00");
        assert_eq!(article.keywords, ["基层干部", "群众路线"]);
        assert_eq!(article.url.as_str(), "https://news.example.cn/a.html");
    }
}
