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

use super::place::Place;
use crate::diag::{Suggest, unknown_section_message};
use crate::model::{Article, ArticleId, SectionId, SiteZone};
use crate::text::{dedup_keywords, is_unsafe_char, one_line, one_line_cow, strip_unsafe};

/// A short text field, borrowed from the input when it holds no escapes.
/// (serde borrows a bare `Cow<str>` field, but copies one inside an
/// `Option`: that was eight allocations a record.)
type Text<'a> = Option<BorrowedText<'a>>;

/// A record as deserialized: required fields are optional here so that every
/// missing one can be reported, not only the first.
///
/// `L` holds the two long fields, `summary` and `content_html`: JSON input
/// leaves them as validated but undecoded [`JsonText`] (most records never
/// reach a feed, and decoding ~1.5 KB of escaped body each is most of the
/// cost of loading a large archive); TOML gives them as text.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "L: Deserialize<'de>"))]
pub struct RawRecord<'a, L = Cow<'a, str>> {
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
    summary: Option<L>,
    content_html: Option<L>,
    #[serde(borrow)]
    image: Text<'a>,
    #[serde(borrow)]
    related: Option<Vec<BorrowedText<'a>>>,
    views: Option<u64>,
}

impl<L> RawRecord<'_, L> {
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
    /// What the problem's hint is made from.
    pub suggest: Option<Suggest>,
}

fn field_error(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
        suggest: None,
    }
}

/// A record whose every field is valid, still borrowing its input.
pub struct Checked<'a, L> {
    raw: RawRecord<'a, L>,
    url: Link,
    image: Option<Link>,
    published: DateTime<Utc>,
    updated: DateTime<Utc>,
}

/// True when `text` holds something visible once cleaned.
fn has_visible(text: &str) -> bool {
    text.chars()
        .any(|c| !c.is_whitespace() && !is_unsafe_char(c))
}

impl<'a, L: LongText> RawRecord<'a, L> {
    /// Validates every field, or lists every field at fault. Copies nothing.
    pub fn check(self, cx: &RecordContext<'_>) -> Result<Checked<'a, L>, Vec<FieldError>> {
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
            let section = one_line_cow(section);
            if !(cx.section_exists)(&section) {
                errors.push(FieldError {
                    suggest: Some(Suggest::Section(section.clone().into_owned())),
                    ..field_error("section", unknown_section_message(&section))
                });
            }
        }
        let mut url_of = |field: &'static str, value: Option<&str>| {
            let text = one_line_cow(value.filter(|v| has_visible(v))?);
            if plainly_on_site(text.trim(), cx.base_url) {
                return Some(Link::Plain);
            }
            match web_url(&text, cx.base_url) {
                Ok(url) => Some(Link::Parsed(url)),
                Err(why) => {
                    errors.push(field_error(field, why));
                    None
                }
            }
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

/// A link found valid. Most are plain paths on the site, and most records
/// are never kept: those are parsed only when their record is.
enum Link {
    Parsed(Url),
    Plain,
}

impl Link {
    fn into_url(self, text: Option<&str>, base: &Url) -> Url {
        match self {
            Link::Parsed(url) => url,
            Link::Plain => {
                let text = one_line_cow(text.unwrap_or_default());
                web_url(&text, base).expect("a plain path on the site is a valid link")
            }
        }
    }
}

/// Whether `text` is a link [`web_url`] surely accepts: a path (`/a/b.html`)
/// on the site, or the same after the base URL's scheme and host, made only
/// of characters that need no encoding.
fn plainly_on_site(text: &str, base: &Url) -> bool {
    let origin = &base[..url::Position::BeforePath];
    let path = text.strip_prefix(origin).unwrap_or(text);
    path.starts_with('/')
        && !path.starts_with("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
}

impl<L: LongText> Checked<'_, L> {
    pub fn published(&self) -> DateTime<Utc> {
        self.published
    }

    pub fn id(&self) -> Cow<'_, str> {
        one_line_cow(self.raw.id.as_deref().unwrap_or_default())
    }

    pub fn section(&self) -> Cow<'_, str> {
        one_line_cow(self.raw.section.as_deref().unwrap_or_default())
    }

    /// The keywords as the article will have them, repeats included (the
    /// article keeps the first of each).
    pub fn keywords(&self) -> impl Iterator<Item = Cow<'_, str>> {
        keywords_of(&self.raw)
    }

    /// The keywords as written: split at the separators, not yet cleaned
    /// ([`crate::text::one_line`] of each, empty ones dropped, is what
    /// [`Checked::into_article`] keeps).
    pub fn raw_keywords(&self) -> impl Iterator<Item = &str> {
        self.raw
            .keywords
            .iter()
            .flat_map(|Keywords(list)| list.iter())
            .flat_map(|line| crate::text::keyword_pieces(line))
    }

    /// The owned, normalised article; without `content_html` and `related`
    /// unless `body`.
    pub fn into_article(self, cx: &RecordContext<'_>, body: bool) -> Article {
        let raw = self.raw;
        let url = self.url.into_url(raw.url.as_deref(), cx.base_url);
        let image = self
            .image
            .map(|link| link.into_url(raw.image.as_deref(), cx.base_url));
        let text = |v: Text<'_>| v.map(|v| one_line(&v)).unwrap_or_default();
        let optional = |v: Text<'_>| v.map(|v| one_line(&v)).filter(|v| !v.is_empty());
        let keywords = dedup_keywords(keywords_of(&raw).map(Cow::into_owned).collect());
        let related: Vec<ArticleId> = raw
            .related
            .filter(|_| body)
            .unwrap_or_default()
            .iter()
            .map(|r| one_line(&r.0))
            .filter(|r| !r.is_empty())
            .map(ArticleId::from)
            .collect();
        Article {
            id: ArticleId::from(text(raw.id)),
            // A headline is plain text; exports often carry markup or entities in it.
            title: crate::text::plain_title(&text(raw.title)),
            section: SectionId::from(text(raw.section)),
            url,
            published: self.published,
            updated: self.updated,
            author: optional(raw.author),
            editor: optional(raw.editor),
            source: optional(raw.source),
            keywords,
            summary: raw
                .summary
                .map(|s| strip_unsafe(s.text().trim()).into_owned())
                .filter(|s| !s.is_empty()),
            content_html: raw
                .content_html
                .filter(|_| body)
                .map(|h| h.text().into_owned())
                .filter(|h| !h.trim().is_empty()),
            image,
            related,
            views: raw.views,
        }
    }
}

/// A record's keywords split, one-lined and non-empty, in order, repeats
/// included; borrowed from the input where they need no change.
fn keywords_of<'r, L>(raw: &'r RawRecord<'_, L>) -> impl Iterator<Item = Cow<'r, str>> {
    raw.keywords
        .iter()
        .flat_map(|Keywords(list)| list)
        .flat_map(|k| split_keywords_cow(k))
}

/// [`split_keywords`](crate::text::split_keywords), borrowing.
fn split_keywords_cow(line: &str) -> impl Iterator<Item = Cow<'_, str>> {
    crate::text::keyword_pieces(line)
        .map(one_line_cow)
        .filter(|k| !k.is_empty())
}

/// A valid record offered to a sink, still borrowing its input. The sink
/// takes what it keeps: nothing, its keys and the [`Place`] to read it
/// again from, or the whole article decoded now. Nothing is copied out of
/// the input until it asks.
pub struct Offer<'o, 'a, L> {
    checked: Checked<'a, L>,
    cx: &'o RecordContext<'o>,
    source: Option<Source<'o>>,
}

/// Where a record's text is: its file (by index in the scan) and offset.
#[derive(Clone, Copy)]
pub(crate) struct Source<'o> {
    pub file: u32,
    pub offset: u64,
    pub text: &'o str,
}

impl<'o, 'a, L: LongText> Offer<'o, 'a, L> {
    pub(crate) fn new(
        checked: Checked<'a, L>,
        cx: &'o RecordContext<'o>,
        source: Option<Source<'o>>,
    ) -> Self {
        Offer {
            checked,
            cx,
            source,
        }
    }

    pub fn published(&self) -> DateTime<Utc> {
        self.checked.published()
    }

    pub fn id(&self) -> Cow<'_, str> {
        self.checked.id()
    }

    pub fn section(&self) -> Cow<'_, str> {
        self.checked.section()
    }

    pub fn keywords(&self) -> impl Iterator<Item = Cow<'_, str>> {
        self.checked.keywords()
    }

    /// The keywords as written, not yet cleaned: see [`Checked::raw_keywords`].
    pub fn raw_keywords(&self) -> impl Iterator<Item = &str> {
        self.checked.raw_keywords()
    }

    /// Where to read the record again, to decode it later; `None` when it
    /// cannot be (records from TOML, which a sink must decode now).
    pub fn place(&self) -> Option<Place> {
        let source = self.source?;
        Some(Place {
            file: source.file,
            len: u32::try_from(source.text.len()).ok()?,
            offset: source.offset,
        })
    }

    /// The owned, normalised article, decoded now; without `content_html`
    /// and `related` unless `body`.
    pub fn article(self, body: bool) -> Article {
        self.checked.into_article(self.cx, body)
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
    if let Some(naive) = NAIVE
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    {
        // A wall-clock time the clocks skipped names no instant: an error,
        // not a guess.
        return zone.resolve_local(naive).ok_or_else(|| {
            format!("{text:?} does not exist in the site's timezone (a daylight-saving gap)")
        });
    }
    // A date means the first instant of that day, even where the clocks
    // skip its midnight.
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => zone.start_of_day(date).ok_or_else(|| {
            format!("{text:?} does not exist in the site's timezone (the day was skipped)")
        }),
        Err(_) => Err(format!(
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

/// A long text field, decoded only when its record is kept.
pub trait LongText {
    fn text(&self) -> Cow<'_, str>;
}

impl LongText for Cow<'_, str> {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

/// A JSON string as it is written in the input, quotes and escapes
/// included. Deserializing checks that it is a string that decodes, without
/// decoding it.
#[derive(Debug)]
pub struct JsonText<'a>(&'a str);

impl LongText for JsonText<'_> {
    fn text(&self) -> Cow<'_, str> {
        let inner = &self.0[1..self.0.len() - 1];
        if !inner.contains('\\') {
            return Cow::Borrowed(inner);
        }
        // Checked to decode when it was deserialized.
        Cow::Owned(serde_json::from_str(self.0).unwrap_or_default())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The loader reads a record that fails here again with decoded
        // strings, for serde's own message and position: these errors only
        // need to fail.
        let raw = <&'de serde_json::value::RawValue>::deserialize(deserializer)?.get();
        if !raw.starts_with('"') {
            return Err(de::Error::custom("expected a string"));
        }
        // Skipping a string checks its escapes but not that `\u` escapes
        // pair up into characters: decode those (rare) to be sure.
        let bytes = raw.as_bytes();
        if memchr::memchr_iter(b'\\', bytes).any(|i| bytes.get(i + 1) == Some(&b'u')) {
            serde_json::from_str::<String>(raw).map_err(de::Error::custom)?;
        }
        Ok(JsonText(raw))
    }
}

/// A string borrowed from the input when it holds no escapes.
#[derive(Debug)]
struct BorrowedText<'a>(Cow<'a, str>);

impl std::ops::Deref for BorrowedText<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

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

    /// Regression: a bare date whose midnight the clocks skip (Santiago
    /// springs forward at 00:00) was refused as "a daylight-saving gap",
    /// and that one record failed the whole build. A date is the first
    /// instant of its day; a wall-clock time in the gap stays an error.
    #[test]
    fn a_date_whose_midnight_is_skipped_starts_when_the_clocks_jump() {
        let santiago = SiteZone::parse("America/Santiago").unwrap();
        for (text, expect) in [
            ("2024-09-08", "2024-09-08T01:00:00-03:00"),
            ("2024-09-07", "2024-09-07T00:00:00-04:00"),
            ("2024-04-07", "2024-04-07T00:00:00-04:00"),
        ] {
            let instant = parse_datetime(text, santiago).unwrap();
            assert_eq!(santiago.local(instant).to_rfc3339(), expect, "{text}");
        }
        for text in [
            "2024-09-08 00:00",
            "2024-09-08T00:30:00",
            "2024-09-08 00:59:59",
        ] {
            let err = parse_datetime(text, santiago).unwrap_err();
            assert!(err.ends_with("(a daylight-saving gap)"), "{text}: {err}");
        }
        assert_eq!(
            parse_datetime("2024-09-08 01:00", santiago).unwrap(),
            parse_datetime("2024-09-08", santiago).unwrap()
        );
        let apia = SiteZone::parse("Pacific/Apia").unwrap();
        let err = parse_datetime("2011-12-30", apia).unwrap_err();
        assert_eq!(
            err,
            "\"2011-12-30\" does not exist in the site's timezone (the day was skipped)"
        );
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
    fn plain_links_skip_parsing_only_when_parsing_surely_succeeds() {
        let base = Url::parse("https://news.example.cn:8443/").unwrap();
        for plain in [
            "/a/b.html",
            "https://news.example.cn:8443/s030/2025/0105/393889.html",
            "/a/../b/./c~d_e-f.html",
            "/",
        ] {
            assert!(plainly_on_site(plain, &base), "{plain}");
            let url = web_url(plain, &base).unwrap();
            assert_eq!(url.host_str(), Some("news.example.cn"), "{plain}");
        }
        for other in [
            "https://news.example.cn/a.html",
            "https://news.example.cn:8443.evil.com/a",
            "https://news.example.cn:8443@evil.com/a",
            "//evil.com/a",
            "/a?b=c",
            "/a#b",
            "/a%20b",
            "/a b",
            "/标题.html",
            "a.html",
            "javascript:alert(1)",
            "",
        ] {
            assert!(!plainly_on_site(other, &base), "{other}");
        }
    }

    /// Regression: serde copies an `Option<Cow<str>>` field even when the
    /// input has no escapes; a loaded record allocated its eight short
    /// texts. They borrow now, and only an escaped one is decoded.
    #[test]
    fn short_texts_borrow_the_input_unless_escaped() {
        let json = r#"{"id":"a1","title":"标题 \"q\"","section":"news","url":"/a.html",
            "author":"作者","editor":"e","source":"s","image":"/i.jpg","related":["b"]}"#;
        let raw: RawRecord<'_, JsonText> = serde_json::from_str(json).unwrap();
        let borrowed = |t: &Text<'_>| matches!(t, Some(BorrowedText(Cow::Borrowed(_))));
        for (field, text) in [
            ("id", &raw.id),
            ("section", &raw.section),
            ("url", &raw.url),
            ("author", &raw.author),
            ("editor", &raw.editor),
            ("source", &raw.source),
            ("image", &raw.image),
        ] {
            assert!(borrowed(text), "{field} was copied");
        }
        assert!(!borrowed(&raw.title));
        assert_eq!(raw.title.as_deref(), Some("标题 \"q\""));
    }

    #[test]
    fn json_text_decodes_only_when_asked() {
        let raw = r#""<p>a\n\"b\" \u4e2d</p>""#;
        let text: JsonText = serde_json::from_str(raw).unwrap();
        assert_eq!(text.text(), "<p>a\n\"b\" 中</p>");
        let plain: JsonText = serde_json::from_str(r#""no escapes""#).unwrap();
        assert!(matches!(plain.text(), Cow::Borrowed("no escapes")));
        assert!(serde_json::from_str::<JsonText>(r#""\ud800""#).is_err());
        assert!(serde_json::from_str::<JsonText>("17").is_err());
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
        let article = raw.check(&cx).unwrap().into_article(&cx, true);
        assert_eq!(article.published.to_rfc3339(), "2017-03-22T01:10:00+00:00");
        assert_eq!(article.keywords, ["基层干部", "群众路线"]);
        assert_eq!(article.url.as_str(), "https://news.example.cn/a.html");
    }
}
