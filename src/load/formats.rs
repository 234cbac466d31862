//! The three input formats: where each record is, and its position for
//! messages. Syntax errors stop only the file they are in.

use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::record::RawRecord;
use super::{Collector, Format, Locate};
use crate::diag::{Location, Problem, line_col};

pub(super) fn read_file(path: &Path, format: Format, out: &mut Collector<'_>) {
    if format == Format::JsonLines {
        return read_json_lines(path, out);
    }
    let text = match std::fs::read(path).map(String::from_utf8) {
        Ok(Ok(text)) => text,
        Ok(Err(e)) => {
            let (line, col) = line_col(
                &String::from_utf8_lossy(e.as_bytes()),
                e.utf8_error().valid_up_to(),
            );
            return out.problem(Problem::new(
                Location::at(path, line, col),
                None,
                "is not valid UTF-8",
            ));
        }
        Err(e) => {
            return out.problem(Problem::new(
                Location::file(path),
                None,
                format!("cannot read: {e}"),
            ));
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    match format {
        Format::Toml => read_toml(path, text, out),
        Format::Json => read_json(path, text, out),
        Format::JsonLines => unreachable!("handled above"),
    }
}

/// A record inside a text: the file's text (or one line of it) and the span.
struct Span<'a> {
    path: &'a Path,
    text: &'a str,
    range: Range<usize>,
    /// Line number of `text`'s first line in the file.
    first_line: usize,
    json: bool,
}

impl Span<'_> {
    fn location(&self, offset: usize) -> Location {
        let (line, col) = line_col(self.text, offset);
        Location::at(self.path, line + self.first_line - 1, col)
    }
}

impl Locate for Span<'_> {
    fn record(&self) -> Location {
        self.location(self.range.start)
    }

    fn field(&self, field: &str) -> Location {
        let body = &self.text[self.range.clone()];
        match find_key(body, field, self.json) {
            Some(at) => self.location(self.range.start + at),
            None => self.record(),
        }
    }
}

/// Offset of `key` where it is assigned in a JSON object (`"key":`) or a TOML
/// table (`key =` at the start of a line, or quoted).
fn find_key(body: &str, key: &str, json: bool) -> Option<usize> {
    body.match_indices(key).find_map(|(at, _)| {
        let before = &body[..at];
        let after = &body[at + key.len()..];
        let quoted = before.ends_with('"') && after.starts_with('"');
        let (start, after) = if quoted {
            (at - 1, &after[1..])
        } else {
            (at, after)
        };
        let assign =
            after
                .trim_start_matches([' ', '\t'])
                .starts_with(if json { ':' } else { '=' });
        let line_start = body[..start].trim_end_matches([' ', '\t']);
        let key_position = if json {
            quoted && !body[..start].ends_with('\\')
        } else {
            line_start.is_empty() || line_start.ends_with('\n') || line_start.ends_with(['{', ','])
        };
        (assign && key_position).then_some(start)
    })
}

fn read_toml(path: &Path, text: &str, out: &mut Collector<'_>) {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TomlFile {
        #[serde(default)]
        articles: Vec<toml::Spanned<toml::Table>>,
    }
    let file: TomlFile = match crate::config::parse_toml(text, path) {
        Ok(file) => file,
        Err(problem) => return out.problem(problem),
    };
    for table in file.articles {
        let span = Span {
            path,
            text,
            range: toml_record_range(text, table.span()),
            first_line: 1,
            json: false,
        };
        let value = toml::Value::Table(table.into_inner());
        match serde_path_to_error::deserialize::<_, RawRecord>(value) {
            Ok(raw) => out.record(raw, &span),
            Err(e) => {
                let field = top_field(&e.path().to_string());
                let location = field
                    .as_deref()
                    .map_or_else(|| span.record(), |f| span.field(f));
                out.problem(Problem::new(
                    location,
                    field.as_deref(),
                    e.inner().message().trim_end().to_owned(),
                ));
            }
        }
    }
}

/// For a `[[articles]]` table toml gives the span of its header only: the
/// record runs from there to the next table header (or the end of the file).
/// An inline table's span already covers it.
fn toml_record_range(text: &str, span: Range<usize>) -> Range<usize> {
    if !text[span.clone()].trim_start().starts_with("[[") {
        return span;
    }
    let mut end = text.len();
    let mut offset = span.end;
    for line in text[span.end..].split_inclusive('\n') {
        if offset > span.end && line.trim_start().starts_with('[') {
            end = offset;
            break;
        }
        offset += line.len();
    }
    span.start..end
}

fn read_json(path: &Path, text: &str, out: &mut Collector<'_>) {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct JsonObject<'a> {
        #[serde(borrow)]
        articles: Vec<&'a RawValue>,
    }
    let records = if text.trim_start().starts_with('{') {
        serde_json::from_str::<JsonObject>(text).map(|o| o.articles)
    } else {
        serde_json::from_str::<Vec<&RawValue>>(text)
    };
    let records = match records {
        Ok(records) => records,
        Err(e) => return out.problem(json_problem(path, 1, &e, None)),
    };
    for raw in records {
        // RawValue borrows from `text`: its address gives its offset.
        let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        let span = Span {
            path,
            text,
            range: start..start + raw.get().len(),
            first_line: 1,
            json: true,
        };
        read_json_record(raw.get(), &span, out);
    }
}

fn read_json_lines(path: &Path, out: &mut Collector<'_>) {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) => {
            return out.problem(Problem::new(
                Location::file(path),
                None,
                format!("cannot read: {e}"),
            ));
        }
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buffer = Vec::new();
    let mut number = 0;
    loop {
        buffer.clear();
        number += 1;
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                return out.problem(Problem::new(
                    Location::at(path, number, 1),
                    None,
                    format!("cannot read: {e}"),
                ));
            }
        }
        let Ok(line) = std::str::from_utf8(&buffer) else {
            out.problem(Problem::new(
                Location::at(path, number, 1),
                None,
                "is not valid UTF-8",
            ));
            continue;
        };
        let line = if number == 1 {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        } else {
            line
        };
        if line.trim().is_empty() {
            continue;
        }
        let span = Span {
            path,
            text: line,
            range: 0..line.len(),
            first_line: number,
            json: true,
        };
        read_json_record(line, &span, out);
    }
}

fn read_json_record(json: &str, span: &Span<'_>, out: &mut Collector<'_>) {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let result = serde_path_to_error::deserialize::<_, RawRecord>(&mut deserializer)
        .map_err(|e| (top_field(&e.path().to_string()), e.into_inner()))
        .and_then(|raw| deserializer.end().map(|()| raw).map_err(|e| (None, e)));
    match result {
        Ok(raw) => out.record(raw, span),
        Err((field, e)) => {
            let (line, col) = line_col(span.text, span.range.start);
            let mut problem =
                json_problem(span.path, line + span.first_line - 1, &e, field.as_deref());
            // Columns inside the record's first line are shifted by its start.
            if e.line() == 1 {
                problem.location.col = Some(col + e.column().saturating_sub(1));
            }
            out.problem(problem)
        }
    }
}

/// A serde_json error as a problem; `first_line` is the line of the text's start.
fn json_problem(
    path: &Path,
    first_line: usize,
    e: &serde_json::Error,
    field: Option<&str>,
) -> Problem {
    let message = e.to_string();
    // serde_json appends " at line L column C", which the location already says.
    let message = match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message,
    };
    let location = if e.line() == 0 {
        Location::file(path)
    } else {
        Location::at(path, e.line() + first_line - 1, e.column().max(1))
    };
    Problem::new(location, field, message)
}

/// The record field a serde path points into (`keywords[2]` → `keywords`).
fn top_field(path: &str) -> Option<String> {
    let first = path.split(['.', '[']).next()?.trim();
    (!first.is_empty() && first != "?").then(|| first.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_in_json_and_toml() {
        let json = r#"{"title": "id: \"x\"", "id" : "a"}"#;
        assert_eq!(
            find_key(json, "id", true),
            Some(json.find("\"id\" :").unwrap())
        );
        let toml = "title = \"id = 1\"\n  id = \"a\"\n";
        assert_eq!(
            find_key(toml, "id", false),
            Some(toml.find("id = \"a\"").unwrap())
        );
        assert_eq!(find_key("{ id = 'a' }", "id", false), Some(2));
    }
}
