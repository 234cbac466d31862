//! `feeds.toml`: parsing and validating the site configuration.
//!
//! [`Config::parse`] is pure (text in, config or problems out) so it can be
//! tested without files; [`Config::from_file`] adds the path and resolves the
//! paths inside the config against the config file's folder. Every problem is
//! reported with the key at fault; nothing here touches the articles.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

pub use crate::diag::parse_toml;
use crate::diag::{LineIndex, Location, Problem, Problems, Suggest};
use crate::model::{Section, SectionId, Sections, Site, SiteZone, State, Topic};

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file itself, for messages.
    pub path: PathBuf,
    /// A hash of the config text: results cached under another config are
    /// never reused.
    pub fingerprint: u128,
    pub site: Site,
    /// Input files and folders, resolved against the config's folder.
    pub inputs: Vec<PathBuf>,
    pub output: Output,
    pub digest: Option<DigestConfig>,
    /// `[smtp]`, or the first `[[smtp]]` table: its `from` and `transport`
    /// are the list's.
    pub smtp: Option<SmtpConfig>,
    /// Every relay, in the order written: the one `[smtp]` table, or each
    /// `[[smtp]]` table (the first is [`Config::smtp`]); empty without.
    pub relays: Vec<SmtpConfig>,
    pub dkim: Option<DkimConfig>,
    /// `[websub]`: the hubs told about changed feeds.
    pub websub: Option<WebSubConfig>,
}

/// `[websub]`, validated.
#[derive(Debug, Clone)]
pub struct WebSubConfig {
    /// Absolute http(s) URLs, each once.
    pub hubs: Vec<Url>,
    /// How long one request to a hub may take.
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct Output {
    pub dir: PathBuf,
    /// Newest items per feed.
    pub items: usize,
    /// The feed formats to write, each once, in [`FeedFormat`] order.
    pub formats: Vec<FeedFormat>,
    /// Where `build` keeps what it learned about unchanged inputs.
    pub cache: PathBuf,
    /// A feed file larger than this carries fewer items; 0: no limit.
    pub max_feed_bytes: usize,
}

/// A feed format `output.formats` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FeedFormat {
    Rss,
    Atom,
    Json,
}

impl FeedFormat {
    pub const ALL: [FeedFormat; 3] = [FeedFormat::Rss, FeedFormat::Atom, FeedFormat::Json];

    /// The name `output.formats` gives it.
    pub fn name(self) -> &'static str {
        match self {
            FeedFormat::Rss => "rss",
            FeedFormat::Atom => "atom",
            FeedFormat::Json => "json",
        }
    }

    fn named(name: &str) -> Option<FeedFormat> {
        FeedFormat::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl Output {
    /// Whether `format` is written.
    pub fn writes(&self, format: FeedFormat) -> bool {
        self.formats.contains(&format)
    }
}

/// `[digest]`, paths resolved. Used by the `digest` command.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    pub subject: String,
    /// Template files; `None` means the built-in default.
    pub html: Option<PathBuf>,
    pub text: Option<PathBuf>,
    pub subscribers: PathBuf,
    /// Where the ledger lives: an SQLite file or a PostgreSQL database.
    pub state: State,
    pub window: chrono::Duration,
    pub related: usize,
    pub max_items: usize,
    pub unsubscribe_url: Option<String>,
    /// The envelope sender of each message, with the recipient's token
    /// (VERP); `None`: `smtp.from`'s address.
    pub bounce_address: Option<BounceAddress>,
    /// Soft bounces (4.x.x) of one address within `soft_bounce_window`
    /// that suppress it.
    pub soft_bounce_limit: u32,
    pub soft_bounce_window: chrono::Duration,
    /// The `Feedback-ID` header's value (printable ASCII).
    pub feedback_id: Option<String>,
    /// The public archive of issues, a folder under `output.dir`.
    pub archive: Option<ArchiveFolder>,
}

/// `digest.archive`: the folder under `output.dir` that holds the public
/// page of every issue ("view in browser"). It becomes part of URLs and
/// folder names, so it is checked like a path of slugs: relative, each
/// segment ASCII letters, digits, `-`, `_` and `.` (never first), so no
/// `..` and no hidden folder; and never the feeds' own folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFolder(String);

impl ArchiveFolder {
    pub fn parse(text: &str) -> Result<ArchiveFolder, String> {
        let folder = text.trim().strip_suffix('/').unwrap_or(text.trim());
        if folder.is_empty() {
            return Err(format!(
                "{text:?} names no folder; use a folder under output.dir, like \"digest\""
            ));
        }
        if folder.starts_with('/') || folder.starts_with('\\') {
            return Err(format!(
                "{text:?} is an absolute path; it must be a folder inside output.dir, like \"digest\""
            ));
        }
        for segment in folder.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(format!(
                    "{text:?} must stay inside output.dir: no empty, `.` or `..` parts"
                ));
            }
            if segment.starts_with('.')
                || !segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(format!(
                    "{text:?}: {segment:?} may hold only ASCII letters, digits, '-', '_' and '.' \
                     (not first): it becomes a folder name and part of every issue's URL"
                ));
            }
        }
        let first = folder.split('/').next().unwrap_or_default();
        if first.eq_ignore_ascii_case(FEEDS_FOLDER) {
            return Err(format!(
                "{text:?} is inside the feeds' folder {FEEDS_FOLDER}/ under output.dir; \
                 the archive needs its own, like \"digest\""
            ));
        }
        Ok(ArchiveFolder(folder.to_owned()))
    }

    /// The folder, relative to `output.dir`, without a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The folder under `output.dir` that `build` writes the feeds into
/// (`feed::render`'s paths).
const FEEDS_FOLDER: &str = "feeds";

/// `digest.bounce_address`: an envelope sender with `{{token}}` in its
/// local part (`bounces+{{token}}@news.example.cn`). Each message's
/// sender carries its recipient's token, so a bounce names whom it is
/// about whatever the remote server writes in it (VERP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceAddress {
    /// The local part before and after `{{token}}`.
    prefix: String,
    suffix: String,
    domain: String,
}

/// A token as `token::make` writes it (29 base32 characters), for checks.
const SAMPLE_TOKEN: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

impl BounceAddress {
    /// Parses and checks a pattern: one `{{token}}` in the local part, and
    /// with a token in place a valid address whose local part is at most
    /// 64 octets (RFC 5321 §4.5.3.1.1).
    pub fn parse(pattern: &str) -> Result<BounceAddress, String> {
        let Some((local, domain)) = pattern.rsplit_once('@') else {
            return Err(format!(
                "{pattern:?} is not an address like \"bounces+{{{{token}}}}@news.example.cn\""
            ));
        };
        if domain.contains("{{token}}") || local.matches("{{token}}").count() != 1 {
            return Err(format!(
                "{pattern:?} must have {{{{token}}}} once, in the local part (before the @)"
            ));
        }
        let (prefix, suffix) = local.split_once("{{token}}").expect("counted above");
        let address = BounceAddress {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            domain: domain.to_owned(),
        };
        let local_len = prefix.len() + SAMPLE_TOKEN.len() + suffix.len();
        if local_len > 64 {
            return Err(format!(
                "{pattern:?} makes a local part of {local_len} octets with a token; at most 64 are allowed"
            ));
        }
        let sample = address.with_token(SAMPLE_TOKEN);
        if let Err(e) = sample.parse::<lettre::Address>() {
            return Err(format!(
                "{pattern:?} does not make a valid address ({sample}): {e}"
            ));
        }
        Ok(address)
    }

    /// The envelope sender for a recipient whose token is `token`.
    pub fn with_token(&self, token: &str) -> String {
        format!("{}{token}{}@{}", self.prefix, self.suffix, self.domain)
    }

    /// The token in `address` when it is one of this pattern's addresses
    /// (compared case-insensitively: mail systems fold case).
    pub fn token_in<'a>(&self, address: &'a str) -> Option<&'a str> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, domain) = address.rsplit_once('@')?;
        if !domain.eq_ignore_ascii_case(&self.domain)
            || local.len() < self.prefix.len() + self.suffix.len()
        {
            return None;
        }
        let (head, rest) = local.split_at_checked(self.prefix.len())?;
        let (token, tail) = rest.split_at_checked(rest.len() - self.suffix.len())?;
        let fits = head.eq_ignore_ascii_case(&self.prefix)
            && tail.eq_ignore_ascii_case(&self.suffix)
            && !token.is_empty()
            && token.chars().all(|c| c.is_ascii_alphanumeric());
        fits.then_some(token)
    }
}

/// `[dkim]`: who signs the digest's messages, `key_file` resolved. The key
/// itself is read and checked with the digest's other inputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    /// `d=`: the From address's domain or a parent of it.
    pub domain: String,
    /// `s=`: the key is published at `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// A PEM private key: RSA (2048 bits or more) or Ed25519.
    pub key_file: PathBuf,
}

/// `[smtp]`, or one `[[smtp]]` table: one relay. The password is never
/// here: it comes from the environment (see [`SmtpConfig::password_var`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The relay's name (letters, digits, `-`, `_`): in the summary, and in
    /// the name of its password variable. Required with several relays.
    #[serde(default)]
    pub name: Option<String>,
    /// With several relays: this relay's share of the messages (a relay of
    /// weight 3 gets three messages for every one of a relay of weight 1).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// The environment variable holding this relay's password, instead of
    /// the default one (see [`SmtpConfig::password_var`]).
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default = "default_transport")]
    pub transport: Transport,
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub security: Security,
    #[serde(default)]
    pub username: String,
    /// The digest's From; with `[[smtp]]`, written in the first table (the
    /// others may leave it out, or repeat it).
    #[serde(default)]
    pub from: String,
    /// The name given in EHLO; `None`: the From address's domain.
    #[serde(default)]
    pub helo_name: Option<String>,
    #[serde(default = "default_connections")]
    pub connections: usize,
    #[serde(default)]
    pub max_rate: f64,
    /// A PEM file of extra trusted CA certificates (self-signed relays).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `timeout` as written: seconds, or a duration like `"90s"`.
    #[serde(default = "default_timeout", rename = "timeout")]
    timeout_given: Given,
    /// `data_timeout` as written.
    #[serde(default = "default_data_timeout", rename = "data_timeout")]
    data_timeout_given: Given,
    /// How long a stalled SMTP exchange is waited for before it is
    /// abandoned. Parsed from `timeout` when the config is validated.
    #[serde(skip)]
    pub timeout: std::time::Duration,
    /// How long to wait for the reply to the end of a message (RFC 5321
    /// suggests 10 minutes: a server may be slow to queue).
    #[serde(skip)]
    pub data_timeout: std::time::Duration,
    /// Path of the sendmail binary for `transport = "sendmail"`.
    #[serde(default)]
    pub sendmail: Option<PathBuf>,
    /// Attempts after the first for a temporary failure, within one run.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Pause before the first retry, as written (`"2s"`).
    #[serde(default = "default_retry_delay", rename = "retry_delay")]
    retry_delay_text: String,
    /// Pause before the first retry; doubled for each further one. Parsed
    /// from `retry_delay` when the config is validated.
    #[serde(skip)]
    pub retry_delay: std::time::Duration,
}

/// The password variable of a relay that names no `password_env`:
/// `BULLETIN_SMTP_PASSWORD`, or for a relay with a `name`,
/// `BULLETIN_SMTP_PASSWORD_<NAME>` (the name upper-cased, `-` as `_`).
pub const PASSWORD_VAR: &str = "BULLETIN_SMTP_PASSWORD";

impl SmtpConfig {
    /// The environment variable this relay's password is read from:
    /// `password_env`, else [`PASSWORD_VAR`] with the relay's name
    /// (`eu-west` → `BULLETIN_SMTP_PASSWORD_EU_WEST`), else [`PASSWORD_VAR`].
    pub fn password_var(&self) -> String {
        match (&self.password_env, &self.name) {
            (Some(var), _) => var.clone(),
            (None, Some(name)) => format!(
                "{PASSWORD_VAR}_{}",
                name.to_ascii_uppercase().replace('-', "_")
            ),
            (None, None) => PASSWORD_VAR.to_owned(),
        }
    }

    /// What the summary calls this relay: its name, else `host:port`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("{}:{}", self.host, self.port),
        }
    }
}

/// `smtp` as written: one table (`[smtp]`) or an array of them
/// (`[[smtp]]`). Deserialized by hand so that a mistake inside a table
/// keeps its own message and position (an untagged enum would say only
/// that neither form matched).
enum Relays {
    One(Box<SmtpConfig>),
    Many(Vec<SmtpConfig>),
}

impl<'de> Deserialize<'de> for Relays {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Relays;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table [smtp] or tables [[smtp]]")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Relays, A::Error> {
                SmtpConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|s| Relays::One(Box::new(s)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Relays, A::Error> {
                Vec::<SmtpConfig>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(Relays::Many)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Limits of the `[smtp]` numbers: beyond them a value means nothing (a
/// pause of years within one run) and the arithmetic of the backoff
/// (`retry_delay` doubled `retries` times) would overflow.
const MAX_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
const MAX_RETRIES: u32 = 20;
/// One thread and one connection each.
const MAX_CONNECTIONS: usize = 1000;
/// The slowest pace that is a pace: one message an hour.
const MIN_RATE: f64 = 1.0 / 3600.0;
/// `related` and `max_items` above this mean "all": the same, and safe to
/// multiply together.
const ALL_ITEMS: usize = u32::MAX as usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Smtp,
    Sendmail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    #[default]
    None,
    Starttls,
    Tls,
}

fn default_weight() -> u32 {
    1
}
fn default_transport() -> Transport {
    Transport::Smtp
}
fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    25
}
fn default_connections() -> usize {
    4
}
fn default_timeout() -> Given {
    Given::Seconds(60)
}
fn default_data_timeout() -> Given {
    Given::Seconds(600)
}

/// A length of time as the config may write it: a whole number of seconds
/// (`timeout = 60`, as earlier versions read it) or a duration with its
/// unit, like `retry_delay` (`timeout = "90s"`, `"10m"`).
#[derive(Debug, Clone)]
enum Given {
    Seconds(u64),
    Text(String),
}

impl Given {
    fn parse(&self) -> Result<std::time::Duration, String> {
        match self {
            Given::Seconds(0) => Err("must be at least 1 second".into()),
            Given::Seconds(n) => Ok(std::time::Duration::from_secs(*n)),
            Given::Text(text) => parse_duration(text)
                .map_err(|e| duration_problem(e, text, "\"60s\" or \"10m\""))?
                .to_std()
                .map_err(|_| format!("{text:?} is not a duration: it must be longer than 0")),
        }
    }
}

impl<'de> Deserialize<'de> for Given {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Given;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of seconds or a duration like \"60s\"")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Given, E> {
                u64::try_from(n)
                    .map(Given::Seconds)
                    .map_err(|_| E::custom("must be at least 1 second"))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Given, E> {
                Ok(Given::Seconds(n))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Given, E> {
                Ok(Given::Text(text.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}
fn default_retries() -> u32 {
    3
}
fn default_retry_delay() -> String {
    "2s".into()
}

// ---- the file as written -------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    site: RawSite,
    input: RawInput,
    #[serde(default)]
    output: RawOutput,
    #[serde(default)]
    sections: Vec<RawSection>,
    digest: Option<RawDigest>,
    smtp: Option<Relays>,
    dkim: Option<DkimConfig>,
    #[serde(default)]
    topics: Vec<RawTopic>,
    websub: Option<RawWebSub>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    id: String,
    title: String,
    keywords: Vec<String>,
    #[serde(default)]
    description: Option<String>,
    /// The topic's HTML page; defaults to the site's home page.
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebSub {
    hubs: Vec<String>,
    #[serde(default = "default_websub_timeout")]
    timeout: String,
}

fn default_websub_timeout() -> String {
    "10s".into()
}

/// A hub that takes longer than this is down, whatever it says.
const MAX_WEBSUB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    title: String,
    base_url: String,
    #[serde(default = "default_language")]
    language: String,
    #[serde(default = "default_timezone")]
    timezone: String,
    #[serde(default)]
    description: Option<String>,
    /// Absolute, or relative to `base_url`.
    #[serde(default)]
    logo: Option<String>,
    #[serde(default)]
    icon: Option<String>,
}

fn default_language() -> String {
    "en".into()
}
fn default_timezone() -> String {
    "+00:00".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    paths: Vec<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    #[serde(default = "default_dir")]
    dir: PathBuf,
    #[serde(default = "default_items")]
    items: usize,
    #[serde(default = "default_formats")]
    formats: Vec<String>,
    #[serde(default = "default_cache")]
    cache: PathBuf,
    #[serde(default = "default_max_feed_bytes")]
    max_feed_bytes: usize,
}

impl Default for RawOutput {
    fn default() -> Self {
        RawOutput {
            dir: default_dir(),
            items: default_items(),
            formats: default_formats(),
            cache: default_cache(),
            max_feed_bytes: default_max_feed_bytes(),
        }
    }
}

/// Google News reads at most 2 MB of a feed.
fn default_max_feed_bytes() -> usize {
    2_000_000
}

fn default_dir() -> PathBuf {
    "public".into()
}
fn default_items() -> usize {
    50
}
/// The sender as it goes into `From` and `MAIL FROM`: ASCII only. An
/// internationalised domain is rewritten in its `xn--` form (`Some`, the
/// mailbox to use instead); a non-ASCII local part would need SMTPUTF8 end
/// to end and is refused.
fn ascii_mailbox(mailbox: lettre::message::Mailbox) -> Result<Option<String>, String> {
    let (user, domain) = (mailbox.email.user(), mailbox.email.domain());
    if !user.is_ascii() {
        return Err("has a non-ASCII local part, which needs SMTPUTF8; not supported".into());
    }
    if domain.is_ascii() {
        return Ok(None);
    }
    let ascii = idna::domain_to_ascii(domain)
        .map_err(|_| "has a domain that is not a valid internationalised name".to_owned())?;
    let address = lettre::Address::new(user, ascii).map_err(|e| e.to_string())?;
    Ok(Some(
        lettre::message::Mailbox::new(mailbox.name, address).to_string(),
    ))
}

fn default_cache() -> PathBuf {
    ".bulletin/cache".into()
}
fn default_formats() -> Vec<String> {
    vec!["rss".into(), "atom".into()]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    id: String,
    title: String,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    description: Option<String>,
    /// The section's HTML page; defaults to `base_url` + `id` + `/`.
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDigest {
    #[serde(default = "default_subject")]
    subject: String,
    #[serde(default)]
    html: Option<PathBuf>,
    #[serde(default)]
    text: Option<PathBuf>,
    subscribers: PathBuf,
    #[serde(default = "default_state")]
    state: String,
    #[serde(default = "default_window")]
    window: String,
    #[serde(default = "default_related")]
    related: usize,
    /// Items per email at most, so a digest stays under Gmail's clipping size.
    #[serde(default = "default_max_items")]
    max_items: usize,
    #[serde(default)]
    unsubscribe_url: Option<String>,
    #[serde(default)]
    bounce_address: Option<String>,
    #[serde(default = "default_soft_bounce_limit")]
    soft_bounce_limit: u32,
    #[serde(default = "default_soft_bounce_window")]
    soft_bounce_window: String,
    feedback_id: Option<String>,
    #[serde(default)]
    archive: Option<String>,
}

fn default_subject() -> String {
    "{{site.title}} · {{date}}".into()
}
fn default_state() -> String {
    ".bulletin/state.sqlite".into()
}
fn default_window() -> String {
    "7d".into()
}
fn default_related() -> usize {
    3
}
fn default_max_items() -> usize {
    30
}
fn default_soft_bounce_limit() -> u32 {
    3
}
fn default_soft_bounce_window() -> String {
    "14d".into()
}

// ---- parsing and validation ----------------------------------------------

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn from_file(path: &Path) -> Result<Config, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problem::new(
                Location::file(path),
                None,
                format!("cannot read the config: {e}"),
            )
        })?;
        let folder = path.parent().unwrap_or(Path::new("."));
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        Config::parse(&text, path, folder)
    }

    /// Parses config `text`; `path` is used in messages, relative paths are
    /// resolved against `folder`.
    // One validator per table (site, output, digest, smtp, dkim) is the
    // split this wants; until then it is one long, flat list of checks.
    #[allow(clippy::too_many_lines)]
    pub fn parse(text: &str, path: &Path, folder: &Path) -> Result<Config, Problems> {
        let raw = parse_toml::<RawConfig>(text, path)?;
        let mut problems = Problems::default();
        // Made on the first problem: most configs have none.
        let tables = std::cell::OnceCell::new();
        let at_key =
            |key: &str| key_location(text, path, key, tables.get_or_init(|| Tables::new(text)));

        // Formats first: an unknown one carries its own suggestion.
        let mut formats = Vec::new();
        for name in &raw.output.formats {
            match FeedFormat::named(name) {
                Some(format) => formats.push(format),
                None => {
                    let key = "output.formats";
                    let message =
                        format!("unknown format {name:?}; expected \"rss\", \"atom\" or \"json\"");
                    let known = FeedFormat::ALL.map(FeedFormat::name);
                    problems.push(
                        Problem::new(at_key(key), Some(key), message)
                            .suggesting(Suggest::name(name, &known)),
                    );
                }
            }
        }
        formats.sort_unstable();
        formats.dedup();

        // A `digest.state` URL holding a password: said without its line
        // (which would print the password into logs and cron mail).
        let state_secret = raw
            .digest
            .as_ref()
            .is_some_and(|d| Url::parse(&d.state).is_ok_and(|u| u.password().is_some()));
        if state_secret {
            problems.push(Problem::new(
                Location::file(path),
                Some("digest.state"),
                "must not hold a password: set PGPASSWORD or BULLETIN_STATE_PASSWORD in the \
                 environment instead",
            ));
        }
        let mut report = |key: &str, message: String| {
            problems.push(Problem::new(at_key(key), Some(key), message));
        };

        let base_url = match Url::parse(&raw.site.base_url) {
            // The host names the list in Message-ID and List-Id, which
            // cannot be folded: a DNS name is at most 253 characters.
            Ok(url) if url.host_str().is_some_and(|h| h.len() > 253) => {
                report(
                    "site.base_url",
                    format!(
                        "{:?} has a host longer than the 253 characters a domain name can have",
                        raw.site.base_url
                    ),
                );
                None
            }
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                Some(with_trailing_slash(url))
            }
            Ok(_) => {
                report(
                    "site.base_url",
                    format!(
                        "{:?} must be an absolute http or https URL",
                        raw.site.base_url
                    ),
                );
                None
            }
            Err(e) => {
                report(
                    "site.base_url",
                    format!("{:?} is not a URL: {e}", raw.site.base_url),
                );
                None
            }
        };
        let zone = SiteZone::parse(&raw.site.timezone);
        if zone.is_none() {
            report(
                "site.timezone",
                format!(
                    "{:?} is neither an offset like \"+08:00\" nor an IANA zone like \"Asia/Shanghai\"",
                    raw.site.timezone
                ),
            );
        }
        if !is_language_tag(&raw.site.language) {
            report(
                "site.language",
                format!(
                    "{:?} is not a language tag like \"zh-CN\" (use '-', not '_')",
                    raw.site.language
                ),
            );
        }
        let texts = std::iter::once(("site.title".to_owned(), raw.site.title.as_str()))
            .chain(
                raw.site
                    .description
                    .as_deref()
                    .map(|d| ("site.description".to_owned(), d)),
            )
            .chain(raw.sections.iter().enumerate().flat_map(|(i, s)| {
                std::iter::once((format!("sections[{i}].title"), s.title.as_str())).chain(
                    s.description
                        .as_deref()
                        .map(|d| (format!("sections[{i}].description"), d)),
                )
            }))
            .chain(raw.topics.iter().enumerate().flat_map(|(i, t)| {
                std::iter::once((format!("topics[{i}].title"), t.title.as_str())).chain(
                    t.description
                        .as_deref()
                        .map(|d| (format!("topics[{i}].description"), d)),
                )
            }));
        for (key, value) in texts {
            if value.chars().any(|c| c.is_control() && c != '\t')
                || value.chars().any(crate::text::is_unsafe_char)
            {
                report(&key, format!("{value:?} contains a control character"));
            }
        }
        if raw.site.title.trim().is_empty() {
            report("site.title", "must not be empty".into());
        }
        if raw.input.paths.is_empty() {
            report(
                "input.paths",
                "lists no input; name at least one file or folder".into(),
            );
        }
        if raw.output.items == 0 {
            report("output.items", "must be at least 1".into());
        }

        let sections = validate_sections(&raw.sections, base_url.as_ref(), &mut report);
        let topics = validate_topics(&raw.topics, base_url.as_ref(), &mut report);
        let websub = raw.websub.as_ref().map(|w| validate_websub(w, &mut report));
        let mut site_url = |key: &str, value: Option<&String>| {
            let (value, base) = (value?, base_url.as_ref()?);
            web_link(value, base)
                .map_err(|why| report(key, format!("{why}; it must be an http(s) URL")))
                .ok()
        };
        let logo = site_url("site.logo", raw.site.logo.as_ref());
        let icon = site_url("site.icon", raw.site.icon.as_ref());

        if let Some(id) = raw.digest.as_ref().and_then(|d| d.feedback_id.as_deref())
            && (id.trim().is_empty() || !id.bytes().all(|b| (b' '..=b'~').contains(&b)))
        {
            report(
                "digest.feedback_id",
                format!(
                    "{id:?} must be printable ASCII on one line, like \"digest:news.example.cn\""
                ),
            );
        }
        let digest = raw.digest.map(|d| {
            // Both end up in mail headers: a line break there is an attack or
            // a mistake, never something to fold away quietly.
            for (key, value) in [("digest.subject", Some(d.subject.as_str())), ("digest.unsubscribe_url", d.unsubscribe_url.as_deref())] {
                if let Some(value) = value.filter(|v| v.chars().any(char::is_control)) {
                    report(key, format!("{value:?} contains a control character (line breaks are not allowed in mail headers)"));
                }
            }
            // A window longer than the calendar takes everything (the
            // digest saturates at the earliest date), never an overflow.
            let window = parse_duration(&d.window).unwrap_or_else(|e| {
                report(
                    "digest.window",
                    duration_problem(e, &d.window, "\"7d\", \"36h\" or \"90m\""),
                );
                chrono::Duration::zero()
            });
            if let Some(url) = d
                .unsubscribe_url
                .as_deref()
                .filter(|u| !u.trim().is_empty())
            {
                match Url::parse(&url.replace("{{token}}", "token")) {
                    Ok(u) if matches!(u.scheme(), "http" | "https" | "mailto") => {
                        // It goes out in its ASCII form (percent-encoded,
                        // punycode host), on one header line: a URI cannot
                        // be folded. Tokens are 32 characters.
                        const LINE: usize = 998 - "List-Unsubscribe: <>".len();
                        let written = Url::parse(&url.replace("{{token}}", &"0".repeat(32)))
                            .map_or(0, |u| u.as_str().len());
                        if written > LINE {
                            report(
                                "digest.unsubscribe_url",
                                format!(
                                    "{url:?} is {written} characters written as ASCII (percent-encoded); \
                                     a List-Unsubscribe header line holds at most 998: use a shorter URL"
                                ),
                            );
                        }
                    }
                    _ => report(
                        "digest.unsubscribe_url",
                        format!("{url:?} is not an absolute http(s) or mailto: URL"),
                    ),
                }
            }
            if d.max_items == 0 {
                report("digest.max_items", "must be at least 1".into());
            }
            let bounce_address = d
                .bounce_address
                .as_deref()
                .filter(|a| !a.trim().is_empty())
                .and_then(|a| {
                    BounceAddress::parse(a.trim())
                        .map_err(|e| report("digest.bounce_address", e))
                        .ok()
                });
            if d.soft_bounce_limit == 0 {
                report("digest.soft_bounce_limit", "must be at least 1".into());
            }
            let soft_bounce_window = parse_duration(&d.soft_bounce_window).unwrap_or_else(|e| {
                report(
                    "digest.soft_bounce_window",
                    duration_problem(e, &d.soft_bounce_window, "\"14d\" or \"72h\""),
                );
                chrono::Duration::zero()
            });
            let state = State::parse(&d.state, folder).unwrap_or_else(|e| {
                if !state_secret {
                    report("digest.state", e);
                }
                State::Sqlite(folder.join(".bulletin/state.sqlite"))
            });
            let archive = d.archive.as_deref().and_then(|a| {
                ArchiveFolder::parse(a)
                    .map_err(|e| report("digest.archive", e))
                    .ok()
            });
            DigestConfig {
                subject: d.subject,
                html: d.html.map(|p| folder.join(p)),
                text: d.text.map(|p| folder.join(p)),
                subscribers: folder.join(d.subscribers),
                state,
                window,
                related: d.related.min(ALL_ITEMS),
                max_items: d.max_items.min(ALL_ITEMS),
                unsubscribe_url: d.unsubscribe_url.filter(|u| !u.trim().is_empty()),
                bounce_address,
                soft_bounce_limit: d.soft_bounce_limit,
                soft_bounce_window,
                feedback_id: d.feedback_id,
                archive,
            }
        });
        let relays = validate_relays(raw.smtp, folder, &mut report);
        let smtp = relays.first().cloned();
        let dkim = raw.dkim.map(|mut d| {
            for (key, value) in [("dkim.domain", &d.domain), ("dkim.selector", &d.selector)] {
                if !is_dns_name(value) {
                    report(
                        key,
                        format!("{value:?} is not a DNS name of letters, digits, '-' and '.'"),
                    );
                }
            }
            d.key_file = folder.join(&d.key_file);
            d
        });

        let (Some(base_url), Some(zone), true) = (base_url, zone, problems.is_empty()) else {
            return Err(problems);
        };
        let description = raw
            .site
            .description
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| raw.site.title.clone());
        Ok(Config {
            path: path.to_path_buf(),
            fingerprint: xxhash_rust::xxh3::xxh3_128(text.as_bytes()),
            site: Site {
                title: raw.site.title,
                base_url,
                language: raw.site.language,
                zone,
                description,
                sections: Sections::new(sections),
                topics,
                logo,
                icon,
            },
            inputs: raw.input.paths.iter().map(|p| folder.join(p)).collect(),
            output: Output {
                dir: folder.join(raw.output.dir),
                items: raw.output.items,
                formats,
                cache: folder.join(raw.output.cache),
                max_feed_bytes: raw.output.max_feed_bytes,
            },
            digest,
            smtp,
            relays,
            dkim,
            websub,
        })
    }
}

/// `[smtp]` or every `[[smtp]]` table, validated, each on its own and
/// together: with several relays each has a unique `name`, the same
/// `from` (messages are composed before a relay is chosen) and speaks
/// SMTP.
fn validate_relays(
    raw: Option<Relays>,
    folder: &Path,
    report: &mut impl FnMut(&str, String),
) -> Vec<SmtpConfig> {
    let (tables, many) = match raw {
        None => return Vec::new(),
        Some(Relays::One(s)) => (vec![*s], false),
        Some(Relays::Many(tables)) => (tables, true),
    };
    let Some(first_from) = tables.first().map(|s| s.from.clone()) else {
        report(
            "smtp",
            "lists no relay: write at least one [[smtp]] table".into(),
        );
        return Vec::new();
    };
    let several = tables.len() > 1;
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut relays = Vec::with_capacity(tables.len());
    for (i, mut s) in tables.into_iter().enumerate() {
        let key = if many {
            format!("smtp[{i}]")
        } else {
            "smtp".to_owned()
        };
        let at = |field: &str| format!("{key}.{field}");
        if i == 0 && s.from.trim().is_empty() {
            report(
                &at("from"),
                "is missing: the digest's sender, like \"映象网 <digest@news.example.cn>\"".into(),
            );
        } else if i > 0 && s.from.is_empty() {
            s.from.clone_from(&first_from);
        } else if i > 0 && s.from != first_from {
            report(
                &at("from"),
                format!(
                    "{:?} differs from smtp[0].from ({first_from:?}): every relay sends the same \
                     messages, composed before a relay is chosen; leave `from` out here",
                    s.from
                ),
            );
        }
        match s.name.as_deref() {
            Some(name)
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                report(
                    &at("name"),
                    format!("{name:?} must be letters, digits, '-' and '_', like \"eu-west\""),
                );
            }
            Some(name) => {
                if let Some(j) = names.insert(name.to_ascii_uppercase().replace('-', "_"), i) {
                    report(
                        &at("name"),
                        format!(
                            "{name:?} is also the name of smtp[{j}] (names are compared \
                             ignoring case, '-' as '_', as in their password variables)"
                        ),
                    );
                }
            }
            None if several => report(
                &at("name"),
                "is missing: with several relays each needs a name, like \"eu-west\" (in the \
                 summary, and its password variable BULLETIN_SMTP_PASSWORD_EU_WEST)"
                    .into(),
            ),
            None => {}
        }
        if s.weight == 0 {
            report(
                &at("weight"),
                "must be at least 1 (to send nothing through a relay, leave its table out)".into(),
            );
        }
        if let Some(var) = s.password_env.as_deref()
            && (var.is_empty()
                || var.starts_with(|c: char| c.is_ascii_digit())
                || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            report(
                &at("password_env"),
                format!(
                    "{var:?} is not an environment variable name (letters, digits and '_', \
                     not starting with a digit)"
                ),
            );
        }
        if several && s.transport == Transport::Sendmail {
            report(
                &at("transport"),
                "\"sendmail\" hands every message to one local command: with several relays, \
                 each is transport = \"smtp\""
                    .into(),
            );
        }
        relays.push(validate_relay(s, &key, i == 0, folder, report));
    }
    let from = relays[0].from.clone();
    for relay in &mut relays[1..] {
        relay.from.clone_from(&from);
    }
    relays
}

/// One relay's table (`key`: `smtp` or `smtp[2]`), validated; paths
/// resolved against `folder`.
#[allow(clippy::too_many_lines)]
fn validate_relay(
    mut s: SmtpConfig,
    key: &str,
    check_from: bool,
    folder: &Path,
    report: &mut impl FnMut(&str, String),
) -> SmtpConfig {
    let at = |field: &str| format!("{key}.{field}");
    if let Some(name) = s.helo_name.as_deref()
        && !is_helo_name(name)
    {
        report(
            &at("helo_name"),
            format!(
                "{name:?} is not a host name like \"mail.news.example.cn\" (nor an address literal like \"[192.0.2.1]\")"
            ),
        );
    }
    if s.port == 0 {
        report(&at("port"), "must be from 1 to 65535".into());
    }
    if !(1..=MAX_CONNECTIONS).contains(&s.connections) {
        report(
            &at("connections"),
            format!("must be from 1 to {MAX_CONNECTIONS} (a thread and an SMTP connection each)"),
        );
    }
    if !(s.max_rate >= 0.0 && s.max_rate.is_finite()) {
        report(
            &at("max_rate"),
            "must be a number of messages per second, 0 for no limit".into(),
        );
    } else if s.max_rate > 0.0 && s.max_rate < MIN_RATE {
        report(
            &at("max_rate"),
            format!(
                "{} messages per second is less than one an hour: use 0 for no limit, \
                     or at least 1/3600 ({MIN_RATE:.6})",
                s.max_rate
            ),
        );
    }
    // Zero is no time to wait; a huge one waits forever (the
    // socket calls saturate), which is what it says.
    for (key, given, parsed) in [
        (at("timeout"), &s.timeout_given, &mut s.timeout),
        (
            at("data_timeout"),
            &s.data_timeout_given,
            &mut s.data_timeout,
        ),
    ] {
        match given.parse() {
            Ok(duration) => *parsed = duration,
            Err(why) => report(&key, why),
        }
    }
    if s.retries > MAX_RETRIES {
        report(
            &at("retries"),
            format!(
                "must be at most {MAX_RETRIES} (the pause doubles with each: \
                     the last would be retry_delay × 2^{})",
                MAX_RETRIES - 1
            ),
        );
    }
    match parse_duration(&s.retry_delay_text) {
        Err(e) => report(
            &at("retry_delay"),
            duration_problem(e, &s.retry_delay_text, "\"2s\""),
        ),
        Ok(d) => match d.to_std() {
            Ok(delay) if delay <= MAX_RETRY_DELAY => s.retry_delay = delay,
            _ => report(
                &at("retry_delay"),
                format!(
                    "{:?} is longer than a day: the run waits out each pause before it ends",
                    s.retry_delay_text
                ),
            ),
        },
    }
    match s.from.parse::<lettre::message::Mailbox>() {
        _ if !check_from => {}
        Err(e) => report(
            &at("from"),
            format!(
                "{:?} is not a mailbox like \"映象网 <digest@news.example.cn>\": {e}",
                s.from
            ),
        ),
        Ok(mailbox) => match ascii_mailbox(mailbox) {
            Ok(Some(ascii)) => s.from = ascii,
            Ok(None) => {}
            Err(why) => report(&at("from"), format!("{:?} {why}", s.from)),
        },
    }
    s.ca_file = s.ca_file.map(|p| folder.join(p));
    // A path is relative to the config's folder, like every path
    // here; a bare command name (no `/`) is looked up on PATH, as a
    // shell would.
    s.sendmail = s.sendmail.map(|p| {
        if p.components().count() > 1 {
            folder.join(p)
        } else {
            p
        }
    });
    s
}

fn validate_sections(
    raw: &[RawSection],
    base_url: Option<&Url>,
    report: &mut impl FnMut(&str, String),
) -> Vec<Section> {
    let mut seen = HashSet::new();
    let mut sections = Vec::new();
    // Whether each raw section is the one declared (kept) under its id.
    let mut declared = vec![false; raw.len()];
    for (i, s) in raw.iter().enumerate() {
        let key = format!("sections[{i}].id");
        if let Err(why) = check_slug(&s.id) {
            report(&key, format!("{:?} {why}", s.id));
            continue;
        }
        if !seen.insert(s.id.as_str()) {
            report(&key, format!("section {:?} is declared twice", s.id));
            continue;
        }
        if s.title.trim().is_empty() {
            report(&format!("sections[{i}].title"), "must not be empty".into());
        }
        let url = match (&s.url, base_url) {
            (Some(u), Some(base)) => match base.join(u) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => url,
                _ => {
                    report(
                        &format!("sections[{i}].url"),
                        format!("{u:?} is not an http or https URL"),
                    );
                    continue;
                }
            },
            (None, Some(base)) => base
                .join(&format!("{}/", s.id))
                .expect("a slug joins onto a URL"),
            (_, None) => continue,
        };
        declared[i] = true;
        sections.push(Section {
            id: SectionId::new(s.id.as_str()),
            title: s.title.clone(),
            description: s.description.clone().filter(|d| !d.trim().is_empty()),
            url,
            parent: s.parent.as_deref().map(SectionId::from),
        });
    }

    // Parents must exist, and following them must end at a root.
    let index: HashMap<&str, usize> = sections
        .iter()
        .enumerate()
        .map(|(j, s)| (s.id.as_str(), j))
        .collect();
    let chains = Chains::new(&sections, &index);
    for (i, s) in raw.iter().enumerate() {
        let Some(parent) = s.parent.as_deref() else {
            continue;
        };
        let Some(&j) = index.get(s.id.as_str()) else {
            continue;
        };
        let key = format!("sections[{i}].parent");
        if !index.contains_key(parent) {
            report(
                &key,
                format!(
                    "section {:?} names parent {parent:?}, which is not a declared section",
                    s.id
                ),
            );
            continue;
        }
        if declared[i] {
            if let Some(path) = chains.cycle_path(j, &sections) {
                report(&key, format!("parents form a cycle: {path}"));
            }
            continue;
        }
        // A second declaration of an id (reported already) is walked from
        // its own parent through the first one's.
        let mut path = vec![s.id.as_str()];
        let mut on_path: HashSet<&str> = HashSet::from([s.id.as_str()]);
        let mut next = Some(parent);
        while let Some(p) = next {
            path.push(p);
            if !on_path.insert(p) {
                report(&key, format!("parents form a cycle: {}", cycle_path(&path)));
                break;
            }
            next = index
                .get(p)
                .and_then(|&k| sections[k].parent.as_ref().map(SectionId::as_str));
        }
    }
    sections
}

/// `[[topics]]`: ids like section ids and each once, a title, keywords that
/// can match an article's (one line, no separator inside).
fn validate_topics(
    raw: &[RawTopic],
    base_url: Option<&Url>,
    report: &mut impl FnMut(&str, String),
) -> Vec<Topic> {
    let mut seen = HashSet::new();
    let mut topics = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let at = |field: &str| format!("topics[{i}].{field}");
        let mut fine = true;
        if let Err(why) = check_slug(&t.id) {
            report(
                &at("id"),
                format!("{:?} {}", t.id, why.replace("a section id", "a topic id")),
            );
            fine = false;
        } else if !seen.insert(t.id.as_str()) {
            report(&at("id"), format!("topic {:?} is declared twice", t.id));
            fine = false;
        }
        if t.title.trim().is_empty() {
            report(&at("title"), "must not be empty".into());
            fine = false;
        }
        let mut keywords: Vec<String> = Vec::new();
        for (k, keyword) in t.keywords.iter().enumerate() {
            let one = crate::text::one_line(keyword);
            if one.is_empty() {
                report(&at("keywords"), format!("keyword {} is empty", k + 1));
                fine = false;
            } else if crate::text::split_keywords(&one).len() != 1 {
                // Articles' keyword lines are split at these: no keyword of
                // an article ever holds one.
                report(
                    &at("keywords"),
                    format!(
                        "keyword {} ({keyword:?}) holds a separator (; , 、 ；，): list each keyword on its own",
                        k + 1
                    ),
                );
                fine = false;
            } else if !keywords.contains(&one) {
                keywords.push(one);
            }
        }
        if t.keywords.is_empty() {
            report(
                &at("keywords"),
                "lists no keyword; the topic's feeds carry the articles with any of them".into(),
            );
            fine = false;
        }
        let url = match (&t.url, base_url) {
            (_, None) => continue,
            (None, Some(base)) => base.clone(),
            (Some(u), Some(base)) => match web_link(u, base) {
                Ok(url) => url,
                Err(why) => {
                    report(&at("url"), format!("{why}; it must be an http(s) URL"));
                    continue;
                }
            },
        };
        if fine {
            topics.push(Topic {
                id: t.id.clone(),
                title: t.title.clone(),
                description: t.description.clone().filter(|d| !d.trim().is_empty()),
                keywords,
                url,
            });
        }
    }
    topics
}

/// `[websub]`: at least one hub, each an absolute http(s) URL, and a
/// timeout a person would wait.
fn validate_websub(raw: &RawWebSub, report: &mut impl FnMut(&str, String)) -> WebSubConfig {
    let mut hubs: Vec<Url> = Vec::new();
    if raw.hubs.is_empty() {
        report(
            "websub.hubs",
            "lists no hub; name one like \"https://pubsubhubbub.appspot.com/\" or remove [websub]"
                .into(),
        );
    }
    for hub in &raw.hubs {
        match Url::parse(hub.trim()) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some_and(|h| !h.is_empty()) =>
            {
                if !hubs.contains(&url) {
                    hubs.push(url);
                }
            }
            Ok(_) => report(
                "websub.hubs",
                format!("{hub:?} is not an absolute http or https URL"),
            ),
            Err(e) => report("websub.hubs", format!("{hub:?} is not a URL: {e}")),
        }
    }
    let timeout = match parse_duration(&raw.timeout).map(|d| d.to_std()) {
        Ok(Ok(t)) if t <= MAX_WEBSUB_TIMEOUT => t,
        Ok(_) => {
            report(
                "websub.timeout",
                format!("{:?} is longer than 5 minutes", raw.timeout),
            );
            MAX_WEBSUB_TIMEOUT
        }
        Err(e) => {
            report(
                "websub.timeout",
                duration_problem(e, &raw.timeout, "\"10s\" or \"500ms\""),
            );
            MAX_WEBSUB_TIMEOUT
        }
    };
    WebSubConfig { hubs, timeout }
}

/// Where following the parents of each section leads: to a root (or to a
/// parent that is not declared, reported on its own), or into a cycle. Made
/// in one pass that visits each section once; a walk over the whole chain
/// from every section, each step searching the path, was cubic (a
/// 4,000-deep chain took 12 s), and still quadratic for a long cycle.
struct Chains {
    rooted: Vec<bool>,
    /// Each section's parent, by position, when declared.
    next: Vec<Option<usize>>,
    /// For a section whose parents run into a cycle: how many steps to it,
    /// and the section where they enter it.
    dist: Vec<usize>,
    entry: Vec<usize>,
    /// For a section on a cycle: the cycle's length, and the section whose
    /// parent it is on the cycle.
    cycle: Vec<(usize, usize)>,
}

impl Chains {
    fn new(sections: &[Section], index: &HashMap<&str, usize>) -> Chains {
        let n = sections.len();
        let next: Vec<Option<usize>> = sections
            .iter()
            .map(|s| {
                s.parent
                    .as_ref()
                    .and_then(|p| index.get(p.as_str()).copied())
            })
            .collect();
        let mut chains = Chains {
            rooted: vec![false; n],
            next,
            dist: vec![0; n],
            entry: vec![usize::MAX; n],
            cycle: vec![(0, usize::MAX); n],
        };
        // 0: not seen, 1: on the current walk (at `on_walk[j]`), 2: known.
        let mut state = vec![0u8; n];
        let mut on_walk = vec![0usize; n];
        let mut walk: Vec<usize> = Vec::new();
        for start in 0..n {
            walk.clear();
            let mut at = Some(start);
            while let Some(j) = at.filter(|&j| state[j] == 0) {
                state[j] = 1;
                on_walk[j] = walk.len();
                walk.push(j);
                at = chains.next[j];
            }
            // The walk ends at a root, at a section already known, or on
            // itself (a cycle).
            match at {
                Some(j) if state[j] == 1 => {
                    let cycle = &walk[on_walk[j]..];
                    for (k, &c) in cycle.iter().enumerate() {
                        let before = cycle[(k + cycle.len() - 1) % cycle.len()];
                        chains.cycle[c] = (cycle.len(), before);
                        chains.entry[c] = c;
                    }
                    chains.lead(&walk[..on_walk[j]], 1, j);
                }
                Some(j) if !chains.rooted[j] => {
                    chains.lead(&walk, chains.dist[j] + 1, chains.entry[j]);
                }
                _ => walk.iter().for_each(|&j| chains.rooted[j] = true),
            }
            walk.iter().for_each(|&j| state[j] = 2);
        }
        chains
    }

    /// `walk` leads, last first, `dist` steps and more into the cycle at
    /// `entry`.
    fn lead(&mut self, walk: &[usize], dist: usize, entry: usize) {
        for (k, &j) in walk.iter().rev().enumerate() {
            self.dist[j] = dist + k;
            self.entry[j] = entry;
        }
    }

    /// The cycle section `j`'s parents run into, as [`cycle_path`] writes
    /// it from `j`; `None` when they end at a root.
    fn cycle_path(&self, j: usize, sections: &[Section]) -> Option<String> {
        if self.rooted[j] {
            return None;
        }
        let entry = self.entry[j];
        let (length, _) = self.cycle[entry];
        // From `j` to the entry, around the cycle, and the entry again.
        let len = self.dist[j] + length + 1;
        let name = |k: usize| sections[k].id.as_str();
        let walk = |count: usize| {
            std::iter::successors(Some(j), |&k| self.next[k])
                .take(count)
                .map(name)
                .collect::<Vec<_>>()
        };
        if len <= CYCLE_HEAD + CYCLE_TAIL + 1 {
            return Some(walk(len).join(" → "));
        }
        let tail_len = CYCLE_TAIL.min(length + 1);
        let mut tail = vec![entry];
        while tail.len() < tail_len {
            let last = *tail.last().expect("not empty");
            tail.push(self.cycle[last].1);
        }
        let tail: Vec<&str> = tail.into_iter().rev().map(name).collect();
        Some(elided(
            &walk(CYCLE_HEAD),
            len - CYCLE_HEAD - tail.len(),
            &tail,
        ))
    }
}

const CYCLE_HEAD: usize = 8;
const CYCLE_TAIL: usize = 3;

/// `a → b → c → a`, the path of a cycle from where it starts to the
/// section that comes again; a long one with its middle left out, so a
/// cycle of thousands of sections is not thousands of lines of thousands
/// of names.
fn cycle_path(path: &[&str]) -> String {
    if path.len() <= CYCLE_HEAD + CYCLE_TAIL + 1 {
        return path.join(" → ");
    }
    let again = path[path.len() - 1];
    let length = path.len() - 1 - path.iter().position(|&p| p == again).unwrap_or(0);
    let tail = &path[path.len() - CYCLE_TAIL.min(length + 1)..];
    elided(
        &path[..CYCLE_HEAD],
        path.len() - CYCLE_HEAD - tail.len(),
        tail,
    )
}

fn elided(head: &[&str], more: usize, tail: &[&str]) -> String {
    format!(
        "{} → … ({more} more) … → {}",
        head.join(" → "),
        tail.join(" → ")
    )
}

/// Section ids become folder names and URL path segments.
pub fn check_slug(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("is empty; a section id must be a slug like \"yushi\"");
    }
    if id.len() > 100 {
        return Err("is longer than 100 characters");
    }
    let first = id.as_bytes()[0];
    if !first.is_ascii_alphanumeric() {
        return Err("must start with a letter or digit (it becomes a folder name)");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("may hold only ASCII letters, digits, '-' and '_' (it becomes a folder name)");
    }
    Ok(())
}

/// A BCP 47 language tag, loosely: `zh`, `zh-CN`, `zh-Hans-CN`, `en-US`.
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=8).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A DNS name of letter, digit, `-` and `_` labels (DKIM domains and
/// selectors; a selector may be one label).
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// An EHLO name: a host name or an address literal (RFC 5321 §4.1.1.1).
fn is_helo_name(name: &str) -> bool {
    (name.starts_with('[')
        && name.ends_with(']')
        && name.len() > 2
        && name.is_ascii()
        && !name.contains(char::is_whitespace))
        || (is_dns_name(name) && !name.contains('_'))
}

/// Why a duration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// Not a whole number with a unit.
    Syntax,
    /// Zero or negative.
    NotPositive,
}

/// `"7d"`, `"36h"`, `"90m"`, `"2w"`, `"3600s"`, `"500ms"`: a whole number
/// above zero and a unit. A number too large for the calendar
/// (`"999999999999999999999d"`) is the longest duration there is, never an
/// overflow: what that means is up to the setting.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, DurationError> {
    let text = text.trim();
    let (number, unit_ms): (&str, i64) = match text.strip_suffix("ms") {
        Some(number) => (number, 1),
        None => {
            let unit = text.chars().last().ok_or(DurationError::Syntax)?;
            let ms = match unit {
                's' => 1_000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                'w' => 604_800_000,
                _ => return Err(DurationError::Syntax),
            };
            (&text[..text.len() - unit.len_utf8()], ms)
        }
    };
    let number = number.trim();
    let (negative, digits) = match number.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DurationError::Syntax);
    }
    if negative || digits.bytes().all(|b| b == b'0') {
        return Err(DurationError::NotPositive);
    }
    let ms = digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_ms))
        .unwrap_or(i64::MAX);
    Ok(chrono::Duration::try_milliseconds(ms).unwrap_or(chrono::Duration::MAX))
}

/// What is wrong with the duration `text`; `example` shows a good one.
fn duration_problem(error: DurationError, text: &str, example: &str) -> String {
    match error {
        DurationError::Syntax => format!("{text:?} is not a duration like {example}"),
        DurationError::NotPositive => {
            format!("{text:?} is not a duration: it must be longer than 0")
        }
    }
}

/// An absolute http(s) URL, or one relative to `base` (the site's URL).
fn web_link(text: &str, base: &Url) -> Result<Url, String> {
    match base.join(text.trim()) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|h| !h.is_empty()) =>
        {
            Ok(url)
        }
        Ok(_) => Err(format!("{text:?} is not a web address")),
        Err(e) => Err(format!("{text:?} is not a URL: {e}")),
    }
}

fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// The table headers of a TOML text, and an index of its lines: where each
/// key of a config's problems is, without reading the file from the top for
/// each (a config of thousands of sections can have thousands of problems).
struct Tables {
    /// Each header: its name, whether it is an array entry (`[[x]]`), which
    /// entry of that array (1-based), and the byte range of its body.
    headers: Vec<(String, bool, usize, std::ops::Range<usize>)>,
    /// Header positions by name, in order.
    by_name: HashMap<String, Vec<usize>>,
    lines: LineIndex,
}

impl Tables {
    fn new(text: &str) -> Tables {
        let mut headers: Vec<(String, bool, usize, std::ops::Range<usize>)> = Vec::new();
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut entries: HashMap<String, usize> = HashMap::new();
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            offset += line.len();
            let trimmed = line.trim_start();
            if trimmed.starts_with('[') {
                let name = trimmed
                    .trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                let is_array = trimmed.starts_with("[[");
                let entry = if is_array {
                    let n = entries.entry(name.clone()).or_default();
                    *n += 1;
                    *n
                } else {
                    0
                };
                if let Some(last) = headers.last_mut() {
                    last.3.end = offset - line.len();
                }
                by_name.entry(name.clone()).or_default().push(headers.len());
                headers.push((name, is_array, entry, offset..text.len()));
            }
        }
        Tables {
            headers,
            by_name,
            lines: LineIndex::new(text),
        }
    }
}

/// Best-effort position of `a.b.c` (or `sections[2].id`) in a TOML file:
/// the line where its last key is assigned inside the right table.
fn key_location(text: &str, path: &Path, key: &str, tables: &Tables) -> Location {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let table = key.split('.').next().unwrap_or("");
    let (table, index) = match table.split_once('[') {
        Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
        None => (table, None),
    };
    let headers = tables.by_name.get(table).map_or(&[][..], Vec::as_slice);
    for &h in headers {
        let (_, is_array, entry, body) = &tables.headers[h];
        if *is_array && index.is_some_and(|i| i + 1 != *entry) {
            continue;
        }
        let mut offset = body.start;
        for line in text[body.clone()].split_inclusive('\n') {
            let trimmed = line.trim_start();
            let name = trimmed
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            if trimmed.contains('=') && name == leaf {
                let col = line.len() - trimmed.len();
                let (line, col) = tables.lines.position(text, offset + col);
                return Location::at(path, line, col);
            }
            offset += line.len();
        }
    }
    Location::file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[site]
title = "映象网"
base_url = "https://news.example.cn"
language = "zh-CN"
timezone = "Asia/Shanghai"

[input]
paths = ["articles"]

[[sections]]
id = "news"
title = "新闻中心"

[[sections]]
id = "yushi"
title = "豫事说事"
parent = "news"
"#;

    fn parse(text: &str) -> Result<Config, Problems> {
        Config::parse(text, Path::new("feeds.toml"), Path::new("/site"))
    }

    #[test]
    fn bounce_address_patterns_are_checked_and_find_their_token() {
        let verp = BounceAddress::parse("bounces+{{token}}@news.example.cn").unwrap();
        let token = "abcdefghijklmnopqrstuvwxyz234";
        let address = verp.with_token(token);
        assert_eq!(address, format!("bounces+{token}@news.example.cn"));
        assert_eq!(verp.token_in(&address), Some(token));
        assert_eq!(
            verp.token_in(&format!("<BOUNCES+{token}@News.Example.CN>")),
            Some(token)
        );
        assert_eq!(verp.token_in("bounces@news.example.cn"), None);
        assert_eq!(verp.token_in(&format!("bounces+{token}@other.cn")), None);
        for bad in [
            "bounces@news.example.cn",
            "bounces+x@{{token}}.example.cn",
            "{{token}}{{token}}@news.example.cn",
            "no-at-sign-{{token}}",
            "bad space{{token}}@news.example.cn",
        ] {
            assert!(BounceAddress::parse(bad).is_err(), "{bad}");
        }
        let long = format!("{}{{{{token}}}}@news.example.cn", "b".repeat(36));
        let err = BounceAddress::parse(&long).unwrap_err();
        assert!(err.contains("65 octets"), "{err}");
        let fits = format!("{}{{{{token}}}}@news.example.cn", "b".repeat(35));
        assert!(BounceAddress::parse(&fits).is_ok());
    }

    #[test]
    fn one_smtp_table_is_one_relay_and_smtp_arrays_are_several() {
        let one = parse(&format!("{GOOD}\n[smtp]\nfrom = \"a@news.example.cn\"\n")).unwrap();
        assert_eq!(one.relays.len(), 1);
        assert_eq!(one.relays[0].weight, 1);
        assert_eq!(one.relays[0].password_var(), "BULLETIN_SMTP_PASSWORD");
        assert_eq!(one.relays[0].label(), "127.0.0.1:25");
        assert_eq!(one.smtp.unwrap().from, "a@news.example.cn");

        let many = parse(&format!(
            "{GOOD}\n[[smtp]]\nname = \"eu-west\"\nfrom = \"a@news.example.cn\"\nweight = 3\n\
             \n[[smtp]]\nname = \"us\"\nhost = \"relay.example.net\"\npassword_env = \"US_PW\"\n"
        ))
        .unwrap();
        let names: Vec<String> = many.relays.iter().map(SmtpConfig::label).collect();
        assert_eq!(names, ["eu-west", "us"]);
        assert_eq!(
            many.relays[1].from, "a@news.example.cn",
            "from is the first table's"
        );
        assert_eq!(many.relays[0].weight, 3);
        assert_eq!(
            many.relays[0].password_var(),
            "BULLETIN_SMTP_PASSWORD_EU_WEST"
        );
        assert_eq!(many.relays[1].password_var(), "US_PW");
        assert_eq!(many.smtp.unwrap().label(), "eu-west");

        let problems = parse(&format!(
            "{GOOD}\n[[smtp]]\nfrom = \"a@news.example.cn\"\n\n[[smtp]]\nname = \"b\"\nport = 0\n\
             transport = \"sendmail\"\nbogus = 1\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(problems.contains("bogus"), "{problems}");
        let problems = parse(&format!(
            "{GOOD}\n[[smtp]]\nfrom = \"a@news.example.cn\"\n\n[[smtp]]\nname = \"b\"\nport = 0\n\
             transport = \"sendmail\"\n"
        ))
        .unwrap_err()
        .to_string();
        for expected in [
            "smtp[0].name: is missing",
            "smtp[1].port: must be from 1 to 65535",
            "smtp[1].transport: \"sendmail\" hands every message",
        ] {
            assert!(
                problems.contains(expected),
                "{expected} not in:\n{problems}"
            );
        }
        let empty = parse(&format!("smtp = []\n{GOOD}"))
            .unwrap_err()
            .to_string();
        assert!(empty.contains("smtp: lists no relay"), "{empty}");
    }

    #[test]
    fn smtp_timeouts_are_seconds_or_durations_read_once() {
        use std::time::Duration;
        let smtp = |extra: &str| {
            parse(&format!(
                "{GOOD}\n[smtp]\nfrom = \"a@news.example.cn\"\n{extra}"
            ))
            .map(|c| c.smtp.unwrap())
        };
        let defaults = smtp("").unwrap();
        assert_eq!(defaults.timeout, Duration::from_secs(60));
        assert_eq!(defaults.data_timeout, Duration::from_secs(600));
        let given = smtp("timeout = 45\ndata_timeout = \"15m\"\n").unwrap();
        assert_eq!(given.timeout, Duration::from_secs(45));
        assert_eq!(given.data_timeout, Duration::from_secs(900));
        let ms = smtp("timeout = \"1500ms\"\n").unwrap();
        assert_eq!(ms.timeout, Duration::from_millis(1500));
        for (bad, says) in [
            ("timeout = 0", "smtp.timeout: must be at least 1 second"),
            ("timeout = -3", "must be at least 1 second"),
            ("timeout = \"0s\"", "it must be longer than 0"),
            (
                "data_timeout = \"soon\"",
                "smtp.data_timeout: \"soon\" is not a duration",
            ),
            (
                "timeout = 1.5",
                "a number of seconds or a duration like \"60s\"",
            ),
        ] {
            let problems = smtp(&format!("{bad}\n")).unwrap_err().to_string();
            assert!(problems.contains(says), "{bad}: {problems}");
        }
    }

    #[test]
    fn digest_bounce_keys_have_defaults_and_are_validated() {
        let digest = "\n[digest]\nsubscribers = \"s.toml\"\n";
        let config = parse(&format!("{GOOD}{digest}")).unwrap();
        let d = config.digest.unwrap();
        assert_eq!(d.bounce_address, None);
        assert_eq!(d.soft_bounce_limit, 3);
        assert_eq!(d.soft_bounce_window, chrono::Duration::days(14));
        let bad = format!(
            "{GOOD}{digest}bounce_address = \"bounces@news.example.cn\"\nsoft_bounce_limit = 0\nsoft_bounce_window = \"soon\"\n"
        );
        let problems = parse(&bad).unwrap_err().to_string();
        for key in [
            "digest.bounce_address",
            "digest.soft_bounce_limit",
            "digest.soft_bounce_window",
        ] {
            assert!(problems.contains(key), "{problems}");
        }
    }

    #[test]
    fn feed_settings_have_defaults_and_resolve_against_the_site() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.output.max_feed_bytes, 2_000_000);
        assert!(config.websub.is_none() && config.site.topics.is_empty());
        assert_eq!((config.site.logo, config.site.icon), (None, None));

        let text = GOOD.replace(
            "timezone = \"Asia/Shanghai\"",
            "timezone = \"Asia/Shanghai\"\nlogo = \"/img/logo.png\"\nicon = \"https://cdn.example.cn/i.png\"",
        ) + "\n[websub]\nhubs = [\"https://hub.example/\", \"https://hub.example/\"]\n\n\
             [[topics]]\nid = \"ai\"\ntitle = \"AI\"\nkeywords = [\" AI \", \"AI\", \"人工智能\"]\n";
        let config = parse(&text).unwrap();
        assert_eq!(
            config.site.logo.unwrap().as_str(),
            "https://news.example.cn/img/logo.png"
        );
        assert_eq!(
            config.site.icon.unwrap().as_str(),
            "https://cdn.example.cn/i.png"
        );
        let websub = config.websub.unwrap();
        assert_eq!(websub.hubs.len(), 1);
        assert_eq!(websub.timeout, std::time::Duration::from_secs(10));
        let topic = &config.site.topics[0];
        assert_eq!(topic.keywords, ["AI", "人工智能"]);
        assert_eq!(topic.url.as_str(), "https://news.example.cn/");

        for (extra, key) in [
            ("\n[websub]\nhubs = []\n", "websub.hubs"),
            (
                "\n[websub]\nhubs = [\"https://h/\"]\ntimeout = \"1h\"\n",
                "websub.timeout",
            ),
            (
                "\n[[topics]]\nid = \"a\"\ntitle = \" \"\nkeywords = [\"k\"]\n",
                "topics[0].title",
            ),
            (
                "\n[[topics]]\nid = \"a\"\ntitle = \"t\"\nkeywords = [\" \"]\n",
                "topics[0].keywords",
            ),
        ] {
            let problems = parse(&format!("{GOOD}{extra}")).unwrap_err().to_string();
            assert!(
                problems.contains(&format!(": {key}: ")),
                "{extra}: {problems}"
            );
        }
        let bad_logo = GOOD.replace(
            "timezone = \"Asia/Shanghai\"",
            "timezone = \"Asia/Shanghai\"\nlogo = \"javascript:alert(1)\"",
        );
        let problems = parse(&bad_logo).unwrap_err().to_string();
        assert!(
            problems.contains("site.logo: \"javascript:alert(1)\" is not a web address"),
            "{problems}"
        );
    }

    #[test]
    fn archive_folder_is_a_relative_path_of_slugs_outside_the_feeds() {
        let digest = "\n[digest]\nsubscribers = \"s.toml\"\n";
        let with = |value: &str| parse(&format!("{GOOD}{digest}archive = {value:?}\n"));
        assert_eq!(
            parse(&format!("{GOOD}{digest}"))
                .unwrap()
                .digest
                .unwrap()
                .archive,
            None
        );
        for (good, folder) in [
            ("digest", "digest"),
            ("news/letter-1/", "news/letter-1"),
            ("feeds2", "feeds2"),
        ] {
            let archive = with(good).unwrap().digest.unwrap().archive.unwrap();
            assert_eq!(archive.as_str(), folder);
        }
        for bad in [
            "",
            "/srv/digest",
            "../digest",
            "a/../b",
            "a//b",
            ".hidden",
            "./digest",
            "feeds",
            "Feeds/archive",
            "a b",
            "存档",
            "a\\b",
        ] {
            let problems = with(bad).unwrap_err().to_string();
            // The line of `archive =`: GOOD's 18 lines, the blank and `[digest]`, `subscribers`.
            assert!(
                problems.starts_with("feeds.toml:22:1: digest.archive: "),
                "{bad:?}: {problems}"
            );
        }
    }

    #[test]
    fn resolves_paths_and_defaults() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.site.base_url.as_str(), "https://news.example.cn/");
        assert_eq!(config.inputs, vec![PathBuf::from("/site/articles")]);
        assert_eq!(config.output.dir, PathBuf::from("/site/public"));
        assert_eq!(config.output.formats, [FeedFormat::Rss, FeedFormat::Atom]);
        assert_eq!(
            config.site.sections[1].url.as_str(),
            "https://news.example.cn/yushi/"
        );
        assert_eq!(config.site.description, "映象网");
    }

    /// Regression (#17): `smtp.sendmail` was resolved against the working
    /// directory, unlike every other path in the config.
    #[test]
    fn sendmail_paths_are_relative_to_the_config_and_bare_names_stay_commands() {
        for (written, resolved) in [
            ("bin/sendmail", "/site/bin/sendmail"),
            ("./sendmail", "/site/./sendmail"),
            ("/usr/sbin/sendmail", "/usr/sbin/sendmail"),
            ("sendmail", "sendmail"),
        ] {
            let text = format!(
                "{GOOD}\n[smtp]\nfrom = \"a@b.cn\"\ntransport = \"sendmail\"\nsendmail = \"{written}\"\n"
            );
            let config = parse(&text).unwrap();
            let sendmail = config.smtp.unwrap().sendmail.unwrap();
            assert_eq!(sendmail, PathBuf::from(resolved), "{written}");
        }
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let text = GOOD.replace("parent = \"news\"", "parnet = \"news\"");
        let problems = parse(&text).unwrap_err();
        let message = problems.to_string();
        assert!(
            message.starts_with("feeds.toml:18:1: sections[1].parnet: unknown field `parnet`"),
            "{message}"
        );
    }

    #[test]
    fn unsafe_section_ids_are_refused() {
        for bad in ["../x", "a/b", "", "a\u{7}b", ".hidden"] {
            let text = GOOD.replace(
                "id = \"yushi\"",
                &format!("id = {}", toml::Value::String(bad.into())),
            );
            let message = parse(&text).unwrap_err().to_string();
            assert!(message.contains("sections[1].id"), "{bad:?}: {message}");
        }
    }

    #[test]
    fn parent_cycles_and_unknown_parents_are_reported() {
        let text = GOOD.replace(
            "title = \"新闻中心\"",
            "title = \"新闻中心\"\nparent = \"yushi\"",
        );
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("parents form a cycle"), "{message}");
        let text = GOOD.replace("parent = \"news\"", "parent = \"world\"");
        let message = parse(&text).unwrap_err().to_string();
        assert!(
            message.contains(
                "feeds.toml:18:1: sections[1].parent: section \"yushi\" names parent \"world\""
            ),
            "{message}"
        );
    }

    /// The parent check, in one pass, says what walking every section's
    /// chain says: on random forests with cycles, self-parents, long tails
    /// into cycles, unknown parents and ids declared twice.
    #[test]
    fn parent_checks_match_walking_every_chain() {
        let mut seed = 7u64;
        let mut random = |below: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % below
        };
        for round in 0..300 {
            let n = 1 + random(if round % 10 == 0 { 60 } else { 14 });
            let raw: Vec<RawSection> = (0..n)
                .map(|i| {
                    // Mostly the one before (long chains), sometimes anything.
                    let parent = match random(10) {
                        0 => None,
                        1 => Some("missing".to_owned()),
                        2..=4 => Some(format!("s{}", random(n))),
                        _ => (i > 0).then(|| format!("s{}", i - 1)),
                    };
                    let id = if random(25) == 0 { random(n) } else { i };
                    RawSection {
                        id: format!("s{id}"),
                        title: "t".into(),
                        parent,
                        description: None,
                        url: None,
                    }
                })
                .collect();
            let base = Url::parse("https://example.cn/").unwrap();
            let mut got = Vec::new();
            validate_sections(&raw, Some(&base), &mut |key: &str, message: String| {
                got.push(format!("{key}: {message}"))
            });
            // What walking each chain in turn reports.
            let mut want = Vec::new();
            let mut first: HashMap<&str, &RawSection> = HashMap::new();
            for (i, s) in raw.iter().enumerate() {
                if first.contains_key(s.id.as_str()) {
                    want.push(format!(
                        "sections[{i}].id: section {:?} is declared twice",
                        s.id
                    ));
                } else {
                    first.insert(&s.id, s);
                }
            }
            for (i, s) in raw.iter().enumerate() {
                let Some(parent) = s.parent.as_deref() else {
                    continue;
                };
                if !first.contains_key(parent) {
                    want.push(format!(
                        "sections[{i}].parent: section {:?} names parent {parent:?}, which is not a declared section",
                        s.id
                    ));
                    continue;
                }
                let mut path = vec![s.id.as_str()];
                let mut next = Some(parent);
                while let Some(p) = next {
                    path.push(p);
                    if path[..path.len() - 1].contains(&p) {
                        want.push(format!(
                            "sections[{i}].parent: parents form a cycle: {}",
                            cycle_path(&path)
                        ));
                        break;
                    }
                    next = first.get(p).and_then(|s| s.parent.as_deref());
                }
            }
            got.sort();
            want.sort();
            assert_eq!(
                got,
                want,
                "round {round}: {:?}",
                raw.iter().map(|s| (&s.id, &s.parent)).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn long_cycle_paths_leave_their_middle_out() {
        let path: Vec<String> = (0..20)
            .map(|i| format!("s{i}"))
            .chain(["s5".into()])
            .collect();
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        assert_eq!(
            cycle_path(&path),
            "s0 → s1 → s2 → s3 → s4 → s5 → s6 → s7 → … (10 more) … → s18 → s19 → s5"
        );
        let mut self_loop: Vec<&str> = path[..19].to_vec();
        self_loop.push("s18");
        assert_eq!(
            cycle_path(&self_loop),
            "s0 → s1 → s2 → s3 → s4 → s5 → s6 → s7 → … (10 more) … → s18 → s18"
        );
        assert_eq!(cycle_path(&["a", "b", "a"]), "a → b → a");
    }

    /// Keys are found where reading the file from the top for each finds
    /// them (what the config did before it indexed its tables).
    #[test]
    fn keys_are_located_as_a_scan_from_the_top_locates_them() {
        fn scan(text: &str, path: &Path, key: &str) -> Location {
            let leaf = key.rsplit('.').next().unwrap_or(key);
            let table = key.split('.').next().unwrap_or("");
            let (table, index) = match table.split_once('[') {
                Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (table, None),
            };
            let (mut in_table, mut seen_index, mut offset) = (false, 0usize, 0);
            for line in text.split_inclusive('\n') {
                let trimmed = line.trim_start();
                if trimmed.starts_with('[') {
                    let name = trimmed
                        .trim_start_matches('[')
                        .split(']')
                        .next()
                        .unwrap_or("")
                        .trim();
                    in_table = name == table;
                    if in_table && trimmed.starts_with("[[") {
                        seen_index += 1;
                        in_table = index.is_none_or(|i| i + 1 == seen_index);
                    }
                } else if in_table {
                    let name = trimmed
                        .split('=')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .trim_matches('"');
                    if trimmed.contains('=') && name == leaf {
                        return Location::at_offset(
                            path,
                            text,
                            offset + line.len() - trimmed.len(),
                        );
                    }
                }
                offset += line.len();
            }
            Location::file(path)
        }
        let text = format!(
            "{GOOD}\n[digest]\n  window = \"7d\"\nsubscribers = \"s.toml\"\n\n[[sections]]\n\
             \"id\" = \"标题\"\n  title=\"x\"\n[sections.extra]\nid = 1\n[[sections]]\nparent = \"news\"\n"
        );
        let tables = Tables::new(&text);
        let path = Path::new("feeds.toml");
        for key in [
            "site.title",
            "site.timezone",
            "input.paths",
            "sections[0].id",
            "sections[1].parent",
            "sections[2].id",
            "sections[2].title",
            "sections[3].parent",
            "sections[4].id",
            "sections.id",
            "digest.window",
            "digest.subscribers",
            "digest.state",
            "smtp.port",
            "nothing",
            "",
            "sections[x].id",
        ] {
            assert_eq!(
                key_location(&text, path, key, &tables),
                scan(&text, path, key),
                "{key}"
            );
        }
    }

    #[test]
    fn reports_every_problem_at_once() {
        let text = GOOD
            .replace("zh-CN", "zh_CN")
            .replace("Asia/Shanghai", "Asia/Nowhere")
            .replace("https://news.example.cn", "ftp://x");
        let problems = parse(&text).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d"), Ok(chrono::Duration::days(7)));
        assert_eq!(parse_duration("36h"), Ok(chrono::Duration::hours(36)));
        assert_eq!(parse_duration(" 90 m "), Ok(chrono::Duration::minutes(90)));
        assert_eq!(
            parse_duration("100ms"),
            Ok(chrono::Duration::milliseconds(100))
        );
        assert_eq!(parse_duration("0d"), Err(DurationError::NotPositive));
        assert_eq!(parse_duration("-3h"), Err(DurationError::NotPositive));
        assert_eq!(parse_duration("0ms"), Err(DurationError::NotPositive));
        for bad in ["7", "", "d", "1.5h", "7y", "--1d", "1e3s", "0x10s"] {
            assert_eq!(parse_duration(bad), Err(DurationError::Syntax), "{bad:?}");
        }
    }

    /// Regression: `window = "999999999d"` passed `check`, then every
    /// digest panicked subtracting it from the clock. A number too large
    /// for the calendar saturates instead of failing or overflowing.
    #[test]
    fn huge_durations_saturate() {
        let max = chrono::Duration::MAX;
        assert_eq!(
            parse_duration("999999999d"),
            Ok(chrono::Duration::days(999_999_999))
        );
        assert_eq!(parse_duration("999999999999999d"), Ok(max));
        assert_eq!(parse_duration("99999999999999999999999999w"), Ok(max));
        assert_eq!(parse_duration("9223372036854775807ms"), Ok(max));
    }
}
