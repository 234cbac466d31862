//! The suppression list as files: `suppressions export` writes it as CSV
//! or JSON Lines, `suppressions import` reads either back (and the
//! `email` / `Email Address` columns of other tools' exports), so a CMS can
//! sync the list both ways. Storing it is the ledger's job.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::diag::{Location, Problem, Problems, Suggest};
use crate::ledger::{Reason, Suppression};
use crate::model::RecipientKey;

/// One row of an export.
#[derive(Serialize)]
struct Row<'a> {
    address: &'a str,
    reason: &'a str,
    created_at: String,
    source: &'a str,
}

fn rows(list: &[Suppression]) -> impl Iterator<Item = Row<'_>> {
    list.iter().map(|s| Row {
        address: s.address.as_str(),
        reason: s.reason.as_str(),
        created_at: s.at.to_rfc3339(),
        source: &s.source,
    })
}

/// The list as CSV with a header row.
pub fn to_csv(list: &[Suppression]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows(list) {
        writer.serialize(row).expect("a CSV row serializes");
    }
    if list.is_empty() {
        writer
            .write_record(["address", "reason", "created_at", "source"])
            .expect("a CSV header");
    }
    writer.into_inner().expect("writing to memory")
}

/// The list as JSON Lines.
pub fn to_jsonl(list: &[Suppression]) -> Vec<u8> {
    let mut out = Vec::new();
    for row in rows(list) {
        serde_json::to_writer(&mut out, &row).expect("a row serializes");
        out.push(b'\n');
    }
    out
}

/// One row as a file gives it; unknown columns are ignored (other tools'
/// exports carry many).
#[derive(Deserialize)]
struct Imported {
    #[serde(alias = "email", alias = "Email Address", alias = "Email")]
    address: Option<String>,
    reason: Option<String>,
    #[serde(alias = "at")]
    created_at: Option<String>,
    source: Option<String>,
}

/// A cell's text, when it has any.
fn given(cell: &Option<String>) -> Option<&str> {
    cell.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Reads a file of suppressions: JSON Lines (`.jsonl`, `.ndjson`) or CSV
/// with a header row. Every problem is reported, with its line.
pub fn read(path: &Path, now: DateTime<Utc>) -> Result<Vec<Suppression>, Problems> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Problem::new(Location::file(path), None, format!("cannot read: {e}")))?;
    let default_source = format!(
        "import:{}",
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    let json = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "ndjson");
    let mut problems = Problems::default();
    let mut list = Vec::new();
    let mut take = |row: Imported, line: usize, problems: &mut Problems| {
        let at = |field: &str, message: String| {
            Problem::new(Location::at(path, line, 1), Some(field), message)
        };
        let Some(address) = row.address.filter(|a| !a.trim().is_empty()) else {
            problems.push(at("address", "is missing".into()));
            return;
        };
        let address = address.trim();
        if address.parse::<lettre::Address>().is_err() {
            problems.push(at(
                "address",
                format!("{address:?} is not an email address"),
            ));
            return;
        }
        let reason = match given(&row.reason) {
            None => Reason::Manual,
            Some(name) => match Reason::named(name) {
                Some(reason) => reason,
                None => {
                    let known = Reason::ALL.map(Reason::as_str);
                    let message = format!(
                        "unknown reason {name:?}; expected \"unsubscribed\", \"bounced\", \"complained\" or \"manual\""
                    );
                    problems.push(at("reason", message).suggesting(Suggest::name(name, &known)));
                    return;
                }
            },
        };
        let when = match given(&row.created_at) {
            None => now,
            Some(text) => match DateTime::parse_from_rfc3339(text) {
                Ok(t) => t.to_utc(),
                Err(e) => {
                    problems.push(at(
                        "created_at",
                        format!("{text:?} is not an RFC 3339 time: {e}"),
                    ));
                    return;
                }
            },
        };
        list.push(Suppression {
            address: RecipientKey::of(address),
            reason,
            at: when,
            source: row
                .source
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| default_source.clone()),
        });
    };
    if json {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Imported>(line) {
                Ok(row) => take(row, i + 1, &mut problems),
                Err(e) => problems.push(Problem::new(
                    Location::at(path, i + 1, e.column().max(1)),
                    None,
                    format!("not a JSON object: {e}"),
                )),
            }
        }
    } else {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(text.as_bytes());
        let has_address = reader.headers().is_ok_and(|h| {
            h.iter()
                .any(|c| ["address", "email", "email address"].contains(&c.to_lowercase().as_str()))
        });
        if !has_address {
            return Err(Problem::new(
                Location::at(path, 1, 1),
                None,
                "needs a header row with an `address` (or `email`, `Email Address`) column",
            )
            .into());
        }
        let headers = reader.headers().cloned().unwrap_or_default();
        for record in reader.records() {
            let result = record.and_then(|r| {
                let line = r.position().map_or(1, |p| p.line() as usize);
                r.deserialize::<Imported>(Some(&headers))
                    .map(|row| (row, line))
            });
            match result {
                Ok((row, line)) => take(row, line, &mut problems),
                Err(e) => {
                    let line = e.position().map_or(1, |p| p.line() as usize);
                    problems.push(Problem::new(
                        Location::at(path, line, 1),
                        None,
                        format!("not a CSV row: {e}"),
                    ));
                }
            }
        }
    }
    problems.into_result(list)
}
