//! Subscribers from CSV with a header row, so the exports of other tools
//! load as they are: listmonk (`email,name,attributes,status,…`) and
//! Mailchimp (`"Email Address","First Name","Last Name",…`).
//!
//! Columns (by name, any case): `email` or `Email Address` (required),
//! `name` or `First Name` + `Last Name`, `sections` (ids separated by `;`
//! or `|`), `status`. Other columns are ignored. Each row becomes the same
//! raw entry a TOML or JSON file gives, so every check (and message) is the
//! same.

use std::path::Path;

use super::subscribers::RawSubscriber;
use crate::diag::{Location, Problem, Problems};

/// The rows of `text`, each with the byte offset where it starts.
pub(super) fn parse(text: &str, path: &Path) -> Result<Vec<(RawSubscriber, usize)>, Problems> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .cloned()
        .map_err(|e| csv_problem(path, text, &e))?;
    let column = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
    };
    let Some(email) = column(&["email", "email address", "e-mail"]) else {
        return Err(Problem::new(
            Location::at(path, 1, 1),
            Some("email"),
            "the header row has no `email` (or `Email Address`) column",
        )
        .into());
    };
    let name = column(&["name"]);
    let (first, last) = (
        column(&["first name", "fname"]),
        column(&["last name", "lname"]),
    );
    let sections = column(&["sections"]);
    let status = column(&["status"]);

    let mut problems = Problems::default();
    let mut entries = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                problems.push(csv_problem(path, text, &e));
                continue;
            }
        };
        let offset = record.position().map_or(0, |p| p.byte() as usize);
        let cell = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let name = cell(name).or_else(|| {
            let full = [cell(first), cell(last)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!full.is_empty()).then_some(full)
        });
        let sections = cell(sections).map(|list| {
            list.split([';', '|'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        });
        entries.push((
            RawSubscriber {
                email: cell(Some(email)),
                name,
                sections,
                status: cell(status),
            },
            offset,
        ));
    }
    problems.into_result(entries)
}

fn csv_problem(path: &Path, text: &str, e: &csv::Error) -> Problem {
    let location = match e.position() {
        Some(p) => Location::at_offset(path, text, (p.byte() as usize).min(text.len())),
        None => Location::file(path),
    };
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "is not UTF-8".to_owned(),
        _ => format!("not a CSV row: {e}"),
    };
    Problem::new(location, None, message)
}
