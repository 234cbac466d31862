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

use crate::diag::{LineIndex, Location, Problem, Problems};
use crate::model::{Section, Sections, Site, SiteZone};

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
    pub smtp: Option<SmtpConfig>,
}

#[derive(Debug, Clone)]
pub struct Output {
    pub dir: PathBuf,
    /// Newest items per feed.
    pub items: usize,
    pub rss: bool,
    pub atom: bool,
    pub json: bool,
    /// Where `build` keeps what it learned about unchanged inputs.
    pub cache: PathBuf,
}

/// `[digest]`, paths resolved. Used by the `digest` command.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    pub subject: String,
    /// Template files; `None` means the built-in default.
    pub html: Option<PathBuf>,
    pub text: Option<PathBuf>,
    pub subscribers: PathBuf,
    pub state: PathBuf,
    pub window: chrono::Duration,
    pub related: usize,
    pub max_items: usize,
    pub unsubscribe_url: Option<String>,
}

/// `[smtp]`. The password is never here: it comes from the environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
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
    pub from: String,
    #[serde(default = "default_connections")]
    pub connections: usize,
    #[serde(default)]
    pub max_rate: f64,
    /// A PEM file of extra trusted CA certificates (self-signed relays).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Seconds before a stalled SMTP exchange is abandoned.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Seconds to wait for the reply to the end of a message (RFC 5321
    /// suggests 10 minutes: a server may be slow to queue).
    #[serde(default = "default_data_timeout")]
    pub data_timeout: u64,
    /// Path of the sendmail binary for `transport = "sendmail"`.
    #[serde(default)]
    pub sendmail: Option<PathBuf>,
    /// Attempts after the first for a temporary failure, within one run.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Pause before the first retry; doubled for each further one.
    #[serde(default = "default_retry_delay")]
    pub retry_delay: String,
}

impl SmtpConfig {
    pub fn retry_delay(&self) -> std::time::Duration {
        parse_duration(&self.retry_delay)
            .ok()
            .and_then(|d| d.to_std().ok())
            .unwrap_or_default()
            .min(MAX_RETRY_DELAY)
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
fn default_timeout() -> u64 {
    60
}
fn default_data_timeout() -> u64 {
    600
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
    smtp: Option<SmtpConfig>,
}

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
}

impl Default for RawOutput {
    fn default() -> Self {
        RawOutput {
            dir: default_dir(),
            items: default_items(),
            formats: default_formats(),
            cache: default_cache(),
        }
    }
}

fn default_dir() -> PathBuf {
    "public".into()
}
fn default_items() -> usize {
    50
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
    state: PathBuf,
    #[serde(default = "default_window")]
    window: String,
    #[serde(default = "default_related")]
    related: usize,
    /// Items per email at most, so a digest stays under Gmail's clipping size.
    #[serde(default = "default_max_items")]
    max_items: usize,
    #[serde(default)]
    unsubscribe_url: Option<String>,
}

fn default_subject() -> String {
    "{{site.title}} · {{date}}".into()
}
fn default_state() -> PathBuf {
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
    pub fn parse(text: &str, path: &Path, folder: &Path) -> Result<Config, Problems> {
        let raw = parse_toml::<RawConfig>(text, path)?;
        let mut problems = Problems::default();
        // Made on the first problem: most configs have none.
        let tables = std::cell::OnceCell::new();
        let at_key =
            |key: &str| key_location(text, path, key, tables.get_or_init(|| Tables::new(text)));

        let mut report = |key: &str, message: String| {
            problems.push(Problem::new(at_key(key), Some(key), message));
        };

        let base_url = match Url::parse(&raw.site.base_url) {
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
        let mut formats = (false, false, false);
        for format in &raw.output.formats {
            match format.as_str() {
                "rss" => formats.0 = true,
                "atom" => formats.1 = true,
                "json" => formats.2 = true,
                other => report(
                    "output.formats",
                    format!("unknown format {other:?}; expected \"rss\", \"atom\" or \"json\""),
                ),
            }
        }

        let sections = validate_sections(&raw.sections, base_url.as_ref(), &mut report);

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
                    Ok(u) if matches!(u.scheme(), "http" | "https" | "mailto") => {}
                    _ => report(
                        "digest.unsubscribe_url",
                        format!("{url:?} is not an absolute http(s) or mailto: URL"),
                    ),
                }
            }
            if d.max_items == 0 {
                report("digest.max_items", "must be at least 1".into());
            }
            DigestConfig {
                subject: d.subject,
                html: d.html.map(|p| folder.join(p)),
                text: d.text.map(|p| folder.join(p)),
                subscribers: folder.join(d.subscribers),
                state: folder.join(d.state),
                window,
                related: d.related.min(ALL_ITEMS),
                max_items: d.max_items.min(ALL_ITEMS),
                unsubscribe_url: d.unsubscribe_url.filter(|u| !u.trim().is_empty()),
            }
        });
        let smtp = raw.smtp.map(|mut s| {
            if s.port == 0 {
                report("smtp.port", "must be from 1 to 65535".into());
            }
            if !(1..=MAX_CONNECTIONS).contains(&s.connections) {
                report(
                    "smtp.connections",
                    format!(
                        "must be from 1 to {MAX_CONNECTIONS} (a thread and an SMTP connection each)"
                    ),
                );
            }
            if !(s.max_rate >= 0.0 && s.max_rate.is_finite()) {
                report(
                    "smtp.max_rate",
                    "must be a number of messages per second, 0 for no limit".into(),
                );
            } else if s.max_rate > 0.0 && s.max_rate < MIN_RATE {
                report(
                    "smtp.max_rate",
                    format!(
                        "{} messages per second is less than one an hour: use 0 for no limit, \
                         or at least 1/3600 ({MIN_RATE:.6})",
                        s.max_rate
                    ),
                );
            }
            // Zero seconds is no time to wait; a huge one waits forever
            // (the socket calls saturate), which is what it says.
            for (key, seconds) in [
                ("smtp.timeout", s.timeout),
                ("smtp.data_timeout", s.data_timeout),
            ] {
                if seconds == 0 {
                    report(key, "must be at least 1 (seconds)".into());
                }
            }
            if s.retries > MAX_RETRIES {
                report(
                    "smtp.retries",
                    format!(
                        "must be at most {MAX_RETRIES} (the pause doubles with each: \
                         the last would be retry_delay × 2^{})",
                        MAX_RETRIES - 1
                    ),
                );
            }
            match parse_duration(&s.retry_delay) {
                Err(e) => report(
                    "smtp.retry_delay",
                    duration_problem(e, &s.retry_delay, "\"2s\""),
                ),
                Ok(d) if d.to_std().map_or(true, |d| d > MAX_RETRY_DELAY) => report(
                    "smtp.retry_delay",
                    format!(
                        "{:?} is longer than a day: the run waits out each pause before it ends",
                        s.retry_delay
                    ),
                ),
                Ok(_) => {}
            }
            if let Err(e) = s.from.parse::<lettre::message::Mailbox>() {
                report(
                    "smtp.from",
                    format!(
                        "{:?} is not a mailbox like \"映象网 <digest@news.example.cn>\": {e}",
                        s.from
                    ),
                );
            }
            s.ca_file = s.ca_file.map(|p| folder.join(p));
            s
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
            },
            inputs: raw.input.paths.iter().map(|p| folder.join(p)).collect(),
            output: Output {
                dir: folder.join(raw.output.dir),
                items: raw.output.items,
                rss: formats.0,
                atom: formats.1,
                json: formats.2,
                cache: folder.join(raw.output.cache),
            },
            digest,
            smtp,
        })
    }
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
            id: s.id.clone(),
            title: s.title.clone(),
            description: s.description.clone().filter(|d| !d.trim().is_empty()),
            url,
            parent: s.parent.clone(),
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
            next = index.get(p).and_then(|&k| sections[k].parent.as_deref());
        }
    }
    sections
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
            .map(|s| s.parent.as_deref().and_then(|p| index.get(p).copied()))
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

fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Deserializes TOML, turning a syntax or type error into one problem with
/// its line, column and key path.
pub fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, Problem> {
    let deserializer =
        toml::Deserializer::parse(text).map_err(|e| toml_problem(&e, text, path, None))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let key = (key != "." && !key.is_empty()).then_some(key);
        toml_problem(e.inner(), text, path, key.as_deref())
    })
}

fn toml_problem(e: &toml::de::Error, text: &str, path: &Path, key: Option<&str>) -> Problem {
    let location = match e.span() {
        Some(span) => Location::at_offset(path, text, span.start),
        None => Location::file(path),
    };
    Problem::new(location, key, e.message().trim_end().to_owned())
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
    fn resolves_paths_and_defaults() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.site.base_url.as_str(), "https://news.example.cn/");
        assert_eq!(config.inputs, vec![PathBuf::from("/site/articles")]);
        assert_eq!(config.output.dir, PathBuf::from("/site/public"));
        assert!(config.output.rss && config.output.atom && !config.output.json);
        assert_eq!(
            config.site.sections[1].url.as_str(),
            "https://news.example.cn/yushi/"
        );
        assert_eq!(config.site.description, "映象网");
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
