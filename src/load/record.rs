//! One article record as written in an input file, and its validation into a
//! [`model::Article`](crate::model::Article).
//!
//! The same [`RawRecord`] is deserialized from TOML, JSON and JSON Lines; the
//! format modules only find where each record starts so problems can name
//! the line of the field at fault.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use url::Url;

use crate::model::{Article, SiteZone};
use crate::text::{dedup_keywords, one_line, split_keywords, strip_unsafe};

/// A record as deserialized: required fields are optional here so that every
/// missing one can be reported, not only the first.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecord {
    id: Option<String>,
    title: Option<String>,
    section: Option<String>,
    url: Option<String>,
    published: Option<DateText>,
    updated: Option<DateText>,
    author: Option<String>,
    editor: Option<String>,
    source: Option<String>,
    keywords: Option<Keywords>,
    summary: Option<String>,
    content_html: Option<String>,
    image: Option<String>,
    related: Option<Vec<String>>,
    views: Option<u64>,
}

impl RawRecord {
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

impl RawRecord {
    /// Validates and normalises the record, or lists every field at fault.
    pub fn into_article(self, cx: &RecordContext<'_>) -> Result<Article, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut required =
            |field: &'static str, value: Option<String>| match value.map(|v| one_line(&v)) {
                Some(v) if !v.is_empty() => Some(v),
                Some(_) => {
                    errors.push(field_error(field, "must not be empty"));
                    None
                }
                None => {
                    errors.push(field_error(field, "is missing (required)"));
                    None
                }
            };
        let id = required("id", self.id);
        let title = required("title", self.title);
        let section = required("section", self.section);
        let url = required("url", self.url);
        // A headline is plain text; exports often carry markup or entities in it.
        let title = title.map(|t| crate::text::plain_title(&t)).and_then(|t| {
            if t.is_empty() {
                errors.push(field_error("title", "holds nothing but markup"));
                None
            } else {
                Some(t)
            }
        });
        if self.published.is_none() {
            errors.push(field_error("published", "is missing (required)"));
        }

        if let Some(section) = &section
            && !(cx.section_exists)(section)
        {
            errors.push(field_error(
                "section",
                format!("{section:?} is not a section declared in the config"),
            ));
        }
        let url = url.and_then(|u| match web_url(&u, cx.base_url) {
            Ok(url) => Some(url),
            Err(why) => {
                errors.push(field_error("url", why));
                None
            }
        });
        let image = self
            .image
            .and_then(|u| match web_url(&one_line(&u), cx.base_url) {
                Ok(url) => Some(url),
                Err(why) => {
                    errors.push(field_error("image", why));
                    None
                }
            });
        let mut date = |field: &'static str, value: Option<DateText>| {
            value.and_then(|d| match parse_datetime(&d.0, cx.zone) {
                Ok(t) => Some(t),
                Err(why) => {
                    errors.push(field_error(field, why));
                    None
                }
            })
        };
        let published = date("published", self.published);
        let updated = date("updated", self.updated);

        let (Some(id), Some(title), Some(section), Some(url), Some(published), true) =
            (id, title, section, url, published, errors.is_empty())
        else {
            return Err(errors);
        };
        let optional = |v: Option<String>| v.map(|v| one_line(&v)).filter(|v| !v.is_empty());
        let keywords = match self.keywords {
            Some(Keywords(list)) => {
                dedup_keywords(list.iter().flat_map(|k| split_keywords(k)).collect())
            }
            None => Vec::new(),
        };
        let mut related: Vec<String> = self
            .related
            .unwrap_or_default()
            .iter()
            .map(|r| one_line(r))
            .collect();
        related.retain(|r| !r.is_empty());
        Ok(Article {
            id,
            title,
            section,
            url,
            published,
            // A record "updated" before it was published is a CMS quirk, not news.
            updated: updated.map_or(published, |u| u.max(published)),
            author: optional(self.author),
            editor: optional(self.editor),
            source: optional(self.source),
            keywords,
            summary: self
                .summary
                .map(|s| strip_unsafe(s.trim()).into_owned())
                .filter(|s| !s.is_empty()),
            content_html: self.content_html.filter(|h| !h.trim().is_empty()),
            image,
            related,
            views: self.views,
        })
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
    let text = text.trim();
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
struct DateText(String);

impl<'de> Deserialize<'de> for DateText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DateVisitor;
        impl<'de> Visitor<'de> for DateVisitor {
            type Value = DateText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a date: RFC 3339 or \"YYYY-MM-DD HH:MM[:SS]\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DateText, E> {
                Ok(DateText(v.to_owned()))
            }
            // toml hands its native datetimes over as a one-entry map.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DateText, A::Error> {
                match map.next_entry::<String, String>()? {
                    Some((_, value)) => Ok(DateText(value)),
                    None => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
                }
            }
        }
        deserializer.deserialize_any(DateVisitor)
    }
}

/// `keywords`: a list of strings or one string to split.
#[derive(Debug)]
struct Keywords(Vec<String>);

impl<'de> Deserialize<'de> for Keywords {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeywordsVisitor;
        impl<'de> Visitor<'de> for KeywordsVisitor {
            type Value = Keywords;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings or one string separated by ; or ,")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Keywords, E> {
                Ok(Keywords(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Keywords, A::Error> {
                let mut list = Vec::new();
                while let Some(k) = seq.next_element::<String>()? {
                    list.push(k);
                }
                Ok(Keywords(list))
            }
        }
        deserializer.deserialize_any(KeywordsVisitor)
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
        let raw: RawRecord = serde_json::from_str(
            r#"{"id":"a","section":"world","url":"ftp://x/y","published":"soon"}"#,
        )
        .unwrap();
        let errors = raw.into_article(&cx).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["title", "section", "url", "published"]);
    }

    #[test]
    fn toml_native_datetime_and_keyword_string() {
        let raw: RawRecord = toml::from_str(
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
        let article = raw.into_article(&cx).unwrap();
        assert_eq!(article.published.to_rfc3339(), "2017-03-22T01:10:00+00:00");
        assert_eq!(article.keywords, ["基层干部", "群众路线"]);
        assert_eq!(article.url.as_str(), "https://news.example.cn/a.html");
    }
}
