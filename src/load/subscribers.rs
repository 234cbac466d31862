//! The digest's subscriber list: `[[subscribers]]` in TOML, a JSON array,
//! or CSV with a header row (`subscribers_csv`).
//!
//! Anything here ends up in a mail header, so control characters (CR/LF
//! above all: header injection) are refused, not cleaned. Duplicate
//! addresses (compared case-insensitively) are an error naming both places.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::diag::{LineIndex, Location, Problem, Problems, Suggest};
use crate::model::{Site, Subscriber, SuppressionReason};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSubscriber {
    pub(super) email: Option<String>,
    pub(super) name: Option<String>,
    pub(super) sections: Option<Vec<String>>,
    /// `unsubscribed`, `blocklisted`, `cleaned` or `bounced`: the address
    /// left (see [`left`]); `subscribed`, `enabled` or none: it gets the digest.
    #[serde(default)]
    pub(super) status: Option<String>,
}

/// The `status` values a message names (more are read: `left`).
const STATUSES: &[&str] = &[
    "subscribed",
    "enabled",
    "unsubscribed",
    "blocklisted",
    "cleaned",
    "bounced",
];

/// `"a", "b" or "c"`.
fn quoted_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// What a subscriber file's `status` says: `Ok(None)` for an address that
/// gets the digest, `Ok(Some(reason))` for one that left; the status when
/// it is none of the known ones.
fn left(status: Option<&str>) -> Result<Option<SuppressionReason>, String> {
    let Some(status) = status.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    Ok(match status.to_ascii_lowercase().as_str() {
        "subscribed" | "enabled" | "confirmed" | "active" => None,
        "unsubscribed" => Some(SuppressionReason::Unsubscribed),
        "cleaned" | "bounced" => Some(SuppressionReason::Bounced),
        "blocklisted" | "blacklisted" | "disabled" => Some(SuppressionReason::Manual),
        "complained" => Some(SuppressionReason::Complained),
        _ => return Err(status.to_owned()),
    })
}

/// Reads and validates the subscribers file.
pub fn load_subscribers(path: &Path, site: &Site) -> Result<Vec<Subscriber>, Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problem::new(
            Location::file(path),
            None,
            format!("cannot read the subscribers: {e}"),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let extension = |ext: &str| {
        path.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case(ext))
    };
    // Positions of every entry, in order: one index (a JSON array on one
    // line is one line of megabytes).
    let lines = LineIndex::new(text);
    // Each entry with the offset where it starts, for messages.
    let entries: Vec<(RawSubscriber, usize)> = if extension("json") {
        parse_json(text, path, &lines)?
    } else if extension("csv") {
        super::subscribers_csv::parse(text, path)?
    } else {
        parse_toml(text, path)?
    };

    let mut problems = Problems::default();
    let mut seen: HashMap<String, Location> = HashMap::new();
    let mut subscribers = Vec::new();
    for (raw, offset) in entries {
        let (line, col) = lines.position(text, offset);
        let here = Location::at(path, line, col);
        let at = |field: &str, message: String| Problem::new(here.clone(), Some(field), message);
        for (field, value) in [
            ("email", raw.email.as_deref()),
            ("name", raw.name.as_deref()),
        ] {
            if value.is_some_and(|v| v.chars().any(char::is_control)) {
                problems.push(at(
                    field,
                    format!(
                        "{:?} contains a control character (line breaks are not allowed in mail headers)",
                        value.unwrap_or_default()
                    ),
                ));
            }
        }
        let Some(email) = raw.email.as_deref().map(str::trim) else {
            problems.push(at("email", "is missing (required)".into()));
            continue;
        };
        if email.chars().any(char::is_control) {
            continue;
        }
        let email = match ascii_address(email) {
            Ok(address) => address,
            Err(why) => {
                problems.push(at("email", why));
                continue;
            }
        };
        let email = email.as_str();
        if let Some(sections) = &raw.sections {
            for id in sections {
                if site.section(id).is_none() {
                    problems.push(Problem::unknown_section(here.clone(), "sections", id));
                }
            }
        }
        let key = email.to_lowercase();
        if let Some(first) = seen.get(&key) {
            problems.push(at(
                "email",
                format!("{email:?} is already subscribed at {first}"),
            ));
            continue;
        }
        seen.insert(key, here.clone());
        let left = match left(raw.status.as_deref()) {
            Ok(left) => left,
            Err(status) => {
                let message = format!(
                    "unknown status {status:?}; expected {}",
                    quoted_list(STATUSES)
                );
                let problem = Problem::new(here.clone(), Some("status"), message);
                problems.push(problem.suggesting(Suggest::name(&status, STATUSES)));
                continue;
            }
        };
        let name = raw
            .name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty() && !n.chars().any(char::is_control));
        subscribers.push(Subscriber {
            email: email.to_owned(),
            name,
            sections: raw.sections,
            left,
        });
    }
    problems.into_result(subscribers)
}

/// The address as it goes into headers and RCPT TO: ASCII only. An
/// internationalised domain is written in its `xn--` form; a non-ASCII local
/// part would need SMTPUTF8 end to end and is refused.
fn ascii_address(email: &str) -> Result<String, String> {
    let invalid = || format!("{email:?} is not an email address");
    let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
    if local.contains(['"', ' ', '\\']) {
        return Err(format!("{email:?} has a quoted local part; not supported"));
    }
    if !local.is_ascii() {
        return Err(format!(
            "{email:?} has a non-ASCII local part, which needs SMTPUTF8; not supported"
        ));
    }
    let domain = idna::domain_to_ascii(domain).map_err(|_| invalid())?;
    let address = format!("{local}@{domain}");
    address.parse::<lettre::Address>().map_err(|_| invalid())?;
    Ok(address)
}

fn parse_toml(text: &str, path: &Path) -> Result<Vec<(RawSubscriber, usize)>, Problems> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        subscribers: Vec<toml::Spanned<RawSubscriber>>,
    }
    let file: File = crate::config::parse_toml(text, path)?;
    Ok(file
        .subscribers
        .into_iter()
        .map(|s| (s.span().start, s.into_inner()))
        .map(|(o, s)| (s, o))
        .collect())
}

fn parse_json(
    text: &str,
    path: &Path,
    lines: &LineIndex,
) -> Result<Vec<(RawSubscriber, usize)>, Problems> {
    let raw: Vec<&serde_json::value::RawValue> =
        serde_json::from_str(text).map_err(|e| json_error(path, text, lines, &e))?;
    let mut out = Vec::new();
    let mut problems = Problems::default();
    for value in raw {
        let offset = value.get().as_ptr() as usize - text.as_ptr() as usize;
        match serde_json::from_str::<RawSubscriber>(value.get()) {
            Ok(s) => out.push((s, offset)),
            Err(e) => {
                let (line, col) = lines.position(text, offset);
                let message = e.to_string();
                let message = message
                    .rfind(" at line ")
                    .map_or(message.clone(), |cut| message[..cut].to_owned());
                problems.push(Problem::decoding(
                    Location::at(path, line, col),
                    None,
                    message,
                ));
            }
        }
    }
    problems.into_result(out)
}

/// A syntax error of the whole file. serde_json counts its column in bytes;
/// the location says characters, like every other.
fn json_error(path: &Path, text: &str, lines: &LineIndex, e: &serde_json::Error) -> Problem {
    let message = e.to_string();
    let message = message
        .rfind(" at line ")
        .map_or(message.clone(), |cut| message[..cut].to_owned());
    let location = match lines.offset(text, e.line(), 1) {
        Some(line_start) => {
            let (line, col) = lines.position(text, line_start + e.column().saturating_sub(1));
            Location::at(path, line, col)
        }
        None => Location::file(path),
    };
    Problem::decoding(location, None, message)
}
