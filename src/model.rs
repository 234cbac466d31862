//! The site and its articles as plain data.
//!
//! Everything downstream (feeds, the digest, mail) works on these types. They
//! hold validated, normalised values: absolute URLs, instants with a known
//! offset, keywords already split. No files, no clock, no environment here.

use std::collections::HashMap;

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

    /// The first instant of `date` in this zone: its midnight, or, where
    /// the clocks skip midnight (zones such as America/Santiago change at
    /// 00:00), the instant they jump to. `None` only for a day the zone
    /// skipped altogether (Pacific/Apia, 2011-12-30).
    pub fn start_of_day(&self, date: chrono::NaiveDate) -> Option<DateTime<Utc>> {
        let midnight = date.and_time(chrono::NaiveTime::MIN);
        if let Some(instant) = self.resolve_local(midnight) {
            return Some(instant);
        }
        // In a gap: find the instant the wall clock jumps past midnight by
        // bisection over whole seconds (transitions fall on whole seconds).
        // Every offset is under 16 hours: the wall clock reads before
        // midnight 16 hours before midnight UTC, and after it 16 hours after.
        let wall = |t: i64| DateTime::from_timestamp(t, 0).map(|t| self.local(t).naive_local());
        let guess = midnight.and_utc().timestamp();
        let (mut before, mut after) = (guess - 16 * 3600, guess + 16 * 3600);
        if !(wall(before)? < midnight && wall(after)? >= midnight) {
            return None;
        }
        while after - before > 1 {
            let mid = before + (after - before) / 2;
            if wall(mid)? < midnight {
                before = mid;
            } else {
                after = mid;
            }
        }
        let first = DateTime::from_timestamp(after, 0)?;
        (self.local(first).date_naive() == date).then_some(first)
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

/// A string newtype for an id that records and the config give: compared,
/// hashed and serialized as its text (a `HashMap` keyed by it is searched
/// with a `&str`), but not interchangeable with other strings or ids.
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> $name {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> $name {
                $name(id.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> $name {
                $name(id)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// As the text: messages quote an id as `"later"`.
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.0, f)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

text_id!(
    /// An article's `id`: unique on the site, stable across edits (it
    /// becomes the feed item's guid and the key of what a subscriber was sent).
    ArticleId
);

text_id!(
    /// A section's `id` from the config: a slug, safe as a folder name and
    /// in a URL. Articles and subscribers name sections by it.
    SectionId
);

/// A section of the site, as declared in the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub id: SectionId,
    pub title: String,
    pub description: Option<String>,
    /// The section's HTML page.
    pub url: Url,
    pub parent: Option<SectionId>,
}

/// A subject followed across sections (`[[topics]]`): its feeds carry every
/// article with any of its keywords.
#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    /// A slug, like a section id: it names the feed's folder.
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    /// As written (one line each, no repeats); matched without regard to
    /// case.
    pub keywords: Vec<String>,
    /// The HTML page the topic's feeds link to (the site's home page unless
    /// the config names one).
    pub url: Url,
}

/// The site's sections in config order (a slice: `sections[i]`, `.iter()`),
/// indexed once: a section is looked up by id for every article and every
/// subscriber, and a site may have thousands. Read-only once made, so the
/// index cannot go stale.
#[derive(Debug, Clone, Default)]
pub struct Sections {
    list: Vec<Section>,
    /// Asked for every record loaded: a fast hash.
    by_id: HashMap<SectionId, usize, xxhash_rust::xxh3::Xxh3DefaultBuilder>,
    /// Each section's parent and children, by position.
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
}

impl Sections {
    /// Indexes `list`. An id declared twice is found at its first place; a
    /// parent that is not declared is no parent (the config refuses both).
    pub fn new(list: Vec<Section>) -> Sections {
        let mut by_id: HashMap<SectionId, usize, _> =
            HashMap::with_capacity_and_hasher(list.len(), Default::default());
        for (i, section) in list.iter().enumerate() {
            by_id.entry(section.id.clone()).or_insert(i);
        }
        let parent: Vec<Option<usize>> = list
            .iter()
            .map(|s| s.parent.as_ref().and_then(|p| by_id.get(p).copied()))
            .collect();
        let mut children = vec![Vec::new(); list.len()];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = *p {
                children[p].push(i);
            }
        }
        Sections {
            list,
            by_id,
            parent,
            children,
        }
    }

    /// Where the section `id` is in config order.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The positions of section `i` and of every section above it, nearest
    /// first (bounded by the number of sections, should a cycle ever get
    /// here): followed when needed, never stored per section (a chain of
    /// thousands would be millions of entries).
    pub fn lineage(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let mut next = Some(i).filter(|&i| i < self.list.len());
        let mut left = self.list.len();
        std::iter::from_fn(move || {
            let current = next.filter(|_| left > 0)?;
            left -= 1;
            next = self.parent[current];
            Some(current)
        })
    }
}

impl std::ops::Deref for Sections {
    type Target = [Section];

    fn deref(&self) -> &[Section] {
        &self.list
    }
}

impl<'a> IntoIterator for &'a Sections {
    type Item = &'a Section;
    type IntoIter = std::slice::Iter<'a, Section>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl PartialEq for Sections {
    fn eq(&self, other: &Sections) -> bool {
        self.list == other.list
    }
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
    pub sections: Sections,
    /// Topic feeds in config order; ids unique.
    pub topics: Vec<Topic>,
    /// The site's logo (RSS `<image>`, Atom `<logo>`, JSON Feed `icon`).
    pub logo: Option<Url>,
    /// A small square icon (Atom `<icon>`, JSON Feed `favicon`).
    pub icon: Option<Url>,
}

impl Site {
    pub fn section(&self, id: &str) -> Option<&Section> {
        self.sections.position(id).map(|i| &self.sections[i])
    }

    /// The sections `ids` and every section below them (their children,
    /// grandchildren...), each once, in no particular order: what a
    /// subscriber to `ids` gets. Unknown ids are skipped.
    pub fn with_descendants<'a, 'i>(
        &'a self,
        ids: impl IntoIterator<Item = &'i str>,
    ) -> impl Iterator<Item = &'a Section> + 'a {
        let mut seen = vec![false; self.sections.len()];
        let mut stack: Vec<usize> = ids
            .into_iter()
            .filter_map(|id| self.sections.position(id))
            .collect();
        std::iter::from_fn(move || {
            loop {
                let i = stack.pop()?;
                if std::mem::replace(&mut seen[i], true) {
                    continue;
                }
                stack.extend(&self.sections.children[i]);
                return Some(&self.sections[i]);
            }
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
    pub id: ArticleId,
    pub title: String,
    pub section: SectionId,
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
    pub related: Vec<ArticleId>,
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
    /// `None` means every section.
    pub sections: Option<Vec<SectionId>>,
    /// The subscriber file says this address left (a CSV `status` such as
    /// `unsubscribed`): it gets nothing and goes on the suppression list.
    pub left: Option<SuppressionReason>,
}

impl Subscriber {
    /// The ids of the sections whose articles are for this subscriber: the
    /// ones they named and every section below those (a subscriber of a
    /// parent gets its children's articles too); `None` for every section.
    /// Found downwards from the named ones: the cost is what they get.
    pub fn wanted<'a>(&self, site: &'a Site) -> Option<std::collections::HashSet<&'a str>> {
        let ids = self.sections.as_ref()?;
        Some(
            site.with_descendants(ids.iter().map(SectionId::as_str))
                .map(|s| s.id.as_str())
                .collect(),
        )
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

/// One part of the recipients (`digest --shard K/N`): the recipients whose
/// address hashes to part `K` of `N`. The `N` parts are disjoint and
/// together hold every recipient, whatever the addresses.
///
/// The function, stable across versions and platforms so that any program
/// can reproduce it: take the address lower-cased (Unicode lower case, as
/// [`RecipientKey`] keys it; for ASCII addresses, ASCII lower case), hash
/// its UTF-8 bytes with SHA-256, read the first 8 bytes of the digest as a
/// big-endian unsigned 64-bit number `h`; the address is in part
/// `h mod N + 1`. In Python:
/// `int.from_bytes(hashlib.sha256(a.lower().encode()).digest()[:8], "big") % n + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// `K`, from 1.
    index: u64,
    /// `N`, at least 1.
    count: u64,
}

impl Shard {
    /// Part `index` (from 1) of `count`; `None` unless 1 ≤ index ≤ count.
    pub fn new(index: u64, count: u64) -> Option<Shard> {
        (1..=count)
            .contains(&index)
            .then_some(Shard { index, count })
    }

    /// The part (from 1) of `count` that `address` belongs to.
    pub fn of(address: &str, count: u64) -> u64 {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(RecipientKey::of(address).as_str().as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % count.max(1) + 1
    }

    /// Whether `address` is in this part.
    pub fn contains(&self, address: &str) -> bool {
        Shard::of(address, self.count) == self.index
    }

    pub fn index(&self) -> u64 {
        self.index
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Where the ledger lives (`digest.state`): an SQLite file, or a
/// PostgreSQL database several machines share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Sqlite(std::path::PathBuf),
    Postgres(PgTarget),
}

/// A PostgreSQL database as `digest.state` names it
/// (`postgres://user@host:port/db`). Never a password: that comes from the
/// environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    /// TLS to the database (`sslmode`).
    pub tls: PgTls,
    /// `sslrootcert`: the certificates (PEM) that the server's must chain
    /// to, resolved against the config's folder; `None`: Mozilla's roots.
    pub root_cert: Option<std::path::PathBuf>,
}

/// When the connection to PostgreSQL uses TLS. Whenever it does, the
/// server's certificate is verified, chain and host name (libpq's
/// `verify-full`): `require` and `verify-ca` mean that here too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTls {
    /// `sslmode=disable`: never.
    Disable,
    /// `sslmode=prefer` (the default, as libpq's): when the server offers
    /// it.
    Prefer,
    /// `sslmode=require`, `verify-ca`, `verify-full`: always; a server
    /// without TLS is refused.
    Require,
}

impl std::fmt::Display for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "postgres://{}@{}:{}/{}",
            self.user, self.host, self.port, self.dbname
        )
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Sqlite(path) => write!(f, "{}", path.display()),
            State::Postgres(target) => target.fmt(f),
        }
    }
}

impl State {
    /// `digest.state` as written: a `postgres://` or `postgresql://` URL,
    /// else a file path (relative to `folder`, the config's). Says what is
    /// wrong with a URL that cannot be used.
    pub fn parse(text: &str, folder: &std::path::Path) -> Result<State, String> {
        let lower = text.to_ascii_lowercase();
        if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
            return Ok(State::Sqlite(folder.join(text)));
        }
        let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        if url.password().is_some() {
            return Err(
                "must not hold a password: set PGPASSWORD or BULLETIN_STATE_PASSWORD \
                 in the environment instead"
                    .into(),
            );
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("names no host: write postgres://user@host:port/database")?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let user = percent_decoded(url.username());
        if user.is_empty() {
            return Err("names no user: write postgres://user@host:port/database".into());
        }
        let dbname = percent_decoded(url.path().trim_start_matches('/'));
        if dbname.is_empty() || dbname.contains('/') {
            return Err("names no database: write postgres://user@host:port/database".into());
        }
        let (mut tls, mut root_cert) = (PgTls::Prefer, None);
        for (key, value) in url.query_pairs() {
            match &*key {
                "sslmode" => {
                    tls = match &*value {
                        "disable" => PgTls::Disable,
                        "prefer" | "allow" => PgTls::Prefer,
                        "require" | "verify-ca" | "verify-full" => PgTls::Require,
                        other => {
                            return Err(format!(
                                "sslmode={other:?}: use disable, prefer, require, verify-ca or verify-full"
                            ));
                        }
                    }
                }
                "sslrootcert" => root_cert = Some(folder.join(&*value)),
                other => {
                    return Err(format!(
                        "unknown parameter {other:?} (only sslmode and sslrootcert)"
                    ));
                }
            }
        }
        Ok(State::Postgres(PgTarget {
            host,
            port: url.port().unwrap_or(5432),
            user,
            dbname,
            tls,
            root_cert,
        }))
    }
}

/// A URL part with its `%XX` escapes decoded.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_match_the_documented_function() {
        // Computed with the Python line in `Shard`'s documentation.
        for (address, n, k) in [
            ("li@example.com", 4, 1),
            ("Li@Example.COM", 4, 1),
            ("zhang@example.com", 4, 2),
            ("r1@example.com", 3, 2),
            ("r2@example.com", 5, 3),
            ("a@b.c", 1000, 179),
        ] {
            assert_eq!(Shard::of(address, n), k, "{address} in {n}");
            assert!(Shard::new(k, n).unwrap().contains(address));
        }
        assert_eq!(Shard::new(0, 3), None);
        assert_eq!(Shard::new(4, 3), None);
        assert_eq!(Shard::new(1, 0), None);
        assert_eq!(Shard::new(2, 3).unwrap().to_string(), "2/3");
    }

    /// Property: for random address sets and random N, the N shards are
    /// disjoint and complete (every address in exactly one), and an
    /// address's shard ignores case. A fixed-seed generator (xorshift), so
    /// a failure names its case and reproduces.
    #[test]
    fn shards_are_disjoint_and_complete_for_random_addresses_and_counts() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet: Vec<char> = "abcXYZ019._-+é中".chars().collect();
        for case in 0..300 {
            let n = next() % 40 + 1;
            let size = usize::try_from(next() % 200).unwrap();
            let addresses: Vec<String> = (0..size)
                .map(|_| {
                    let len = usize::try_from(next() % 12 + 1).unwrap();
                    let local: String = (0..len)
                        .map(|_| alphabet[usize::try_from(next()).unwrap() % alphabet.len()])
                        .collect();
                    format!("{local}@d{}.example", next() % 5)
                })
                .collect();
            for address in &addresses {
                let holders: Vec<u64> = (1..=n)
                    .filter(|&k| Shard::new(k, n).unwrap().contains(address))
                    .collect();
                assert_eq!(
                    holders.len(),
                    1,
                    "case {case}: {address:?} in {holders:?} of {n}"
                );
                assert_eq!(
                    Shard::of(&address.to_uppercase(), n),
                    holders[0],
                    "case {case}: {address:?}'s shard depends on case"
                );
            }
            let total: usize = (1..=n)
                .map(|k| {
                    let shard = Shard::new(k, n).unwrap();
                    addresses.iter().filter(|a| shard.contains(a)).count()
                })
                .sum();
            assert_eq!(total, addresses.len(), "case {case}");
        }
    }

    #[test]
    fn state_is_a_path_or_a_postgres_url_without_a_password() {
        let folder = std::path::Path::new("/srv/news");
        assert_eq!(
            State::parse(".bulletin/state.sqlite", folder),
            Ok(State::Sqlite("/srv/news/.bulletin/state.sqlite".into()))
        );
        let State::Postgres(t) =
            State::parse("postgresql://bull%40etin@db.internal:6543/news", folder).unwrap()
        else {
            panic!("a URL")
        };
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port, t.dbname.as_str()),
            ("bull@etin", "db.internal", 6543, "news")
        );
        assert_eq!(
            State::parse("postgres://u@h/d", folder)
                .unwrap()
                .to_string(),
            "postgres://u@h:5432/d"
        );
        let err = State::parse("postgres://u:secret@h/d", folder).unwrap_err();
        assert!(err.contains("PGPASSWORD"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let tls = |url: &str| match State::parse(url, folder) {
            Ok(State::Postgres(t)) => Ok((t.tls, t.root_cert)),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(tls("postgres://u@h/d"), Ok((PgTls::Prefer, None)));
        assert_eq!(
            tls("postgres://u@h/d?sslmode=verify-full&sslrootcert=ca.pem"),
            Ok((PgTls::Require, Some("/srv/news/ca.pem".into())))
        );
        assert_eq!(
            tls("postgres://u@h/d?sslmode=disable"),
            Ok((PgTls::Disable, None))
        );
        assert!(tls("postgres://u@h/d?sslmode=maybe").is_err());
        assert!(tls("postgres://u@h/d?application_name=x").is_err());
        assert!(State::parse("postgres://u@h/", folder).is_err());
        assert!(State::parse("postgres://h/d", folder).is_err());
    }

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

    fn section(id: &str, parent: Option<&str>) -> Section {
        Section {
            id: id.into(),
            title: id.into(),
            description: None,
            url: Url::parse(&format!("https://example.cn/{id}/")).unwrap(),
            parent: parent.map(Into::into),
        }
    }

    /// `id` and every section above it, nearest first.
    fn ancestry<'a>(site: &'a Site, id: &str) -> Vec<&'a str> {
        let start = site.sections.position(id).unwrap_or(usize::MAX);
        site.sections
            .lineage(start)
            .map(|i| site.sections[i].id.as_str())
            .collect()
    }

    fn site(sections: Vec<Section>) -> Site {
        Site {
            title: "t".into(),
            base_url: Url::parse("https://example.cn/").unwrap(),
            language: "zh".into(),
            zone: SiteZone::parse("+08:00").unwrap(),
            description: "d".into(),
            sections: Sections::new(sections),
            topics: Vec::new(),
            logo: None,
            icon: None,
        }
    }

    #[test]
    fn sections_are_found_by_id_with_their_ancestry_and_descendants() {
        // Children declared before their parents, two trees.
        let site = site(vec![
            section("c", Some("b")),
            section("b", Some("a")),
            section("a", None),
            section("x", None),
            section("y", Some("x")),
            section("b2", Some("a")),
        ]);
        assert_eq!(site.section("b").map(|s| s.id.as_str()), Some("b"));
        assert_eq!(site.section("nope"), None);
        let up = ancestry(&site, "c");
        assert_eq!(up, ["c", "b", "a"]);
        assert_eq!(ancestry(&site, "nope").len(), 0);
        let subscriber = |ids: &[&str]| Subscriber {
            email: "a@example.cn".into(),
            name: None,
            sections: Some(ids.iter().map(|&s| SectionId::from(s)).collect()),
            left: None,
        };
        let wanted = |ids: &[&str]| {
            let mut got: Vec<&str> = subscriber(ids).wanted(&site).unwrap().into_iter().collect();
            got.sort();
            got
        };
        assert_eq!(wanted(&["a"]), ["a", "b", "b2", "c"]);
        assert_eq!(wanted(&["b", "c", "y"]), ["b", "c", "y"]);
        assert_eq!(wanted(&["nope"]), Vec::<&str>::new());
        // The same as asking every section's ancestry.
        for ids in [&["a"][..], &["b", "x"], &["c"], &[]] {
            let by_ancestry: Vec<&str> = {
                let mut all: Vec<&str> = site
                    .sections
                    .iter()
                    .filter(|s| {
                        ancestry(&site, s.id.as_str())
                            .iter()
                            .any(|a| ids.contains(a))
                    })
                    .map(|s| s.id.as_str())
                    .collect();
                all.sort();
                all
            };
            assert_eq!(wanted(ids), by_ancestry, "{ids:?}");
        }
        let everyone = Subscriber {
            sections: None,
            ..subscriber(&[])
        };
        assert_eq!(everyone.wanted(&site), None);
    }

    /// A chain of 10,000 sections: every lookup by id and every walk up or
    /// down is linear in what it visits (the sections were searched one by
    /// one at every step: 10,000 sections took minutes to plan a digest).
    #[test]
    fn a_deep_chain_of_sections_is_walked_in_linear_time() {
        let n = 10_000;
        let sections: Vec<Section> = (0..n)
            .map(|i| {
                let parent = (i > 0).then(|| format!("s{}", i - 1));
                section(&format!("s{i}"), parent.as_deref())
            })
            .collect();
        let site = site(sections);
        assert_eq!(ancestry(&site, &format!("s{}", n - 1)).len(), n);
        let root = Subscriber {
            email: "a@example.cn".into(),
            name: None,
            sections: Some(vec!["s0".into()]),
            left: None,
        };
        assert_eq!(root.wanted(&site).unwrap().len(), n);
        for i in 0..n {
            assert_eq!(site.sections.position(&format!("s{i}")), Some(i));
        }
    }

    #[test]
    fn a_day_starts_at_midnight_or_where_the_clocks_skip_it() {
        let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let start = |zone: &str, date| {
            SiteZone::parse(zone)
                .unwrap()
                .start_of_day(date)
                .map(|t| t.to_rfc3339())
        };
        let shanghai = "Asia/Shanghai";
        assert_eq!(
            start(shanghai, day(2017, 3, 23)).unwrap(),
            "2017-03-22T16:00:00+00:00"
        );
        assert_eq!(
            start("-05:30", day(2017, 3, 23)).unwrap(),
            "2017-03-23T05:30:00+00:00"
        );
        // Santiago springs forward at 00:00 (to 01:00, -03:00).
        assert_eq!(
            start("America/Santiago", day(2024, 9, 8)).unwrap(),
            "2024-09-08T04:00:00+00:00"
        );
        // ...and falls back at 00:00 to 23:00 the day before (-04:00):
        // that hour comes twice, midnight once.
        assert_eq!(
            start("America/Santiago", day(2024, 4, 7)).unwrap(),
            "2024-04-07T04:00:00+00:00"
        );
        // Havana and Asunción also change at midnight; Beirut did at 00:00.
        assert_eq!(
            start("America/Havana", day(2024, 3, 10)).unwrap(),
            "2024-03-10T05:00:00+00:00"
        );
        assert_eq!(
            start("America/Asuncion", day(2023, 10, 1)).unwrap(),
            "2023-10-01T04:00:00+00:00"
        );
        // Samoa skipped 2011-12-30 altogether: that day has no first instant.
        assert_eq!(start("Pacific/Apia", day(2011, 12, 30)), None);
        assert_eq!(
            start("Pacific/Apia", day(2011, 12, 31)).unwrap(),
            "2011-12-30T10:00:00+00:00"
        );
        // The ends of the calendar do not overflow.
        assert!(start("America/Santiago", chrono::NaiveDate::MAX).is_none_or(|t| !t.is_empty()));
        assert!(start("America/Santiago", chrono::NaiveDate::MIN).is_none_or(|t| !t.is_empty()));
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
