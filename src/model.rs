//! The site and its articles as plain data.
//!
//! Everything downstream (feeds, the digest, mail) works on these types. They
//! hold validated, normalised values: absolute URLs, instants with a known
//! offset, keywords already split. No files, no clock, no environment here.

use chrono::{DateTime, FixedOffset, Offset, TimeZone, Utc};
use url::Url;

/// The site's timezone: a fixed offset (`+08:00`) or an IANA zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SiteZone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl SiteZone {
    /// `+08:00`, `-05:30`, `Z`/`UTC`, or an IANA name such as `Asia/Shanghai`.
    pub fn parse(text: &str) -> Option<SiteZone> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("z") || text.eq_ignore_ascii_case("utc") {
            return Some(SiteZone::Fixed(FixedOffset::east_opt(0)?));
        }
        if let Some(rest) = text.strip_prefix(['+', '-']) {
            let sign = if text.starts_with('-') { -1 } else { 1 };
            let (h, m) = rest.split_once(':').unwrap_or((rest, "00"));
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            return FixedOffset::east_opt(sign * (h * 3600 + m * 60)).map(SiteZone::Fixed);
        }
        text.parse::<chrono_tz::Tz>().ok().map(SiteZone::Named)
    }

    /// `instant` as wall-clock time in this zone, with its numeric offset.
    pub fn local(&self, instant: DateTime<Utc>) -> DateTime<FixedOffset> {
        match self {
            SiteZone::Fixed(offset) => instant.with_timezone(offset),
            SiteZone::Named(tz) => {
                let local = instant.with_timezone(tz);
                local.with_timezone(&local.offset().fix())
            }
        }
    }

    /// Whether `instant` has a year from 1 to 9999 both in UTC and in this
    /// zone: what feed and mail dates (RFC 2822) can carry.
    pub fn representable(&self, instant: DateTime<Utc>) -> bool {
        use chrono::Datelike;
        (1..=9999).contains(&instant.year()) && (1..=9999).contains(&self.local(instant).year())
    }

    /// Reads a wall-clock time in this zone. In a daylight-saving overlap the
    /// earlier instant wins; a time inside a gap does not exist and is `None`.
    pub fn resolve_local(&self, naive: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
        let mapped = match self {
            SiteZone::Fixed(offset) => offset.from_local_datetime(&naive).earliest()?.to_utc(),
            SiteZone::Named(tz) => tz.from_local_datetime(&naive).earliest()?.to_utc(),
        };
        Some(mapped)
    }
}

/// A section of the site, as declared in the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// A slug: safe as a folder name and in a URL.
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    /// The section's HTML page.
    pub url: Url,
    pub parent: Option<String>,
}

/// Site-wide settings every renderer needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub title: String,
    pub base_url: Url,
    pub language: String,
    pub zone: SiteZone,
    pub description: String,
    /// Sections in config order; parents are guaranteed to exist, no cycles.
    pub sections: Vec<Section>,
}

impl Site {
    pub fn section(&self, id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.id == id)
    }

    /// `id` and every section above it, nearest first.
    pub fn ancestry<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        let mut next = self.section(id);
        std::iter::from_fn(move || {
            let current = next?;
            next = current.parent.as_deref().and_then(|p| self.section(p));
            Some(current)
        })
    }

    /// The host name of `base_url`, used in ids that must be globally unique.
    pub fn domain(&self) -> &str {
        self.base_url.host_str().unwrap_or("localhost")
    }
}

/// One article, validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Article {
    pub id: String,
    pub title: String,
    pub section: String,
    pub url: Url,
    pub published: DateTime<Utc>,
    /// Never earlier than `published`.
    pub updated: DateTime<Utc>,
    pub author: Option<String>,
    pub editor: Option<String>,
    pub source: Option<String>,
    pub keywords: Vec<String>,
    pub summary: Option<String>,
    pub content_html: Option<String>,
    pub image: Option<Url>,
    pub related: Vec<String>,
    pub views: Option<u64>,
}

impl Article {
    /// `articles` with each id once (the first), in order.
    pub fn unique<'a>(articles: impl IntoIterator<Item = &'a Article>) -> Vec<&'a Article> {
        let mut seen = std::collections::HashSet::new();
        articles
            .into_iter()
            .filter(|a| seen.insert(a.id.as_str()))
            .collect()
    }

    /// Feed order: newest first, ties broken by id so output is deterministic.
    pub fn newest_first(a: &Article, b: &Article) -> std::cmp::Ordering {
        b.published.cmp(&a.published).then_with(|| a.id.cmp(&b.id))
    }
}

/// One digest subscriber, validated: no control characters anywhere, a
/// syntactically valid address, only declared sections.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    pub email: String,
    pub name: Option<String>,
    /// Section ids; `None` means every section.
    pub sections: Option<Vec<String>>,
    /// The subscriber file says this address left (a CSV `status` such as
    /// `unsubscribed`): it gets nothing and goes on the suppression list.
    pub left: Option<SuppressionReason>,
}

impl Subscriber {
    /// Whether an article of `section` is for this subscriber: a subscriber
    /// of a parent section gets its children's articles too.
    pub fn wants(&self, site: &Site, section: &str) -> bool {
        match &self.sections {
            None => true,
            Some(ids) => site.ancestry(section).any(|s| ids.contains(&s.id)),
        }
    }
}

/// Why an address gets no digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SuppressionReason {
    /// The recipient asked (one-click, the page's button, `unsubscribe`).
    Unsubscribed,
    /// Their server refused the address for good (a 5xx, a hard bounce,
    /// repeated soft bounces).
    Bounced,
    /// They reported the digest as spam (an ARF report).
    Complained,
    /// Someone put it on the list by hand (`suppressions import`).
    Manual,
}

impl SuppressionReason {
    pub const ALL: [SuppressionReason; 4] = [
        SuppressionReason::Unsubscribed,
        SuppressionReason::Bounced,
        SuppressionReason::Complained,
        SuppressionReason::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::Unsubscribed => "unsubscribed",
            SuppressionReason::Bounced => "bounced",
            SuppressionReason::Complained => "complained",
            SuppressionReason::Manual => "manual",
        }
    }

    pub fn named(name: &str) -> Option<SuppressionReason> {
        SuppressionReason::ALL
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for SuppressionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string newtype for a key the ledger stores: `as_str`, `Display`, and
/// `stored` for a key read back.
macro_rules! stored_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// A key as the ledger stored it.
            pub fn stored(key: String) -> $name {
                $name(key)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

stored_key!(
    /// Which issue of the digest a run sends: the run's date in the site's
    /// timezone, `YYYY-MM-DD`. At most one issue per subscriber and key.
    IssueKey
);

impl IssueKey {
    /// The issue of a run at `now`.
    pub fn of(site: &Site, now: DateTime<Utc>) -> IssueKey {
        IssueKey(site.zone.local(now).format("%Y-%m-%d").to_string())
    }
}

stored_key!(
    /// Who a delivery is for, as the ledger keys it: the address lower-cased
    /// (`Li@Example.com` and `li@example.com` are one recipient). Not an
    /// address to send to: that stays as the subscriber wrote it.
    RecipientKey
);

impl RecipientKey {
    pub fn of(address: &str) -> RecipientKey {
        RecipientKey(address.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixed_offsets_and_iana_names() {
        assert_eq!(
            SiteZone::parse("+08:00"),
            Some(SiteZone::Fixed(FixedOffset::east_opt(8 * 3600).unwrap()))
        );
        assert_eq!(
            SiteZone::parse("-05:30"),
            Some(SiteZone::Fixed(
                FixedOffset::west_opt(5 * 3600 + 1800).unwrap()
            ))
        );
        assert_eq!(
            SiteZone::parse("Asia/Shanghai"),
            Some(SiteZone::Named(chrono_tz::Asia::Shanghai))
        );
        assert_eq!(SiteZone::parse("+25:00"), None);
        assert_eq!(SiteZone::parse("Mars/Olympus"), None);
    }

    #[test]
    fn daylight_saving_gap_is_none_and_overlap_takes_the_earlier() {
        let ny = SiteZone::parse("America/New_York").unwrap();
        let gap = chrono::NaiveDate::from_ymd_opt(2024, 3, 10)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(ny.resolve_local(gap), None);
        let overlap = chrono::NaiveDate::from_ymd_opt(2024, 11, 3)
            .unwrap()
            .and_hms_opt(1, 30, 0)
            .unwrap();
        assert_eq!(
            ny.resolve_local(overlap).unwrap().to_rfc3339(),
            "2024-11-03T05:30:00+00:00"
        );
    }
}
