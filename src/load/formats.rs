//! The three input formats: where each record is, and its position for
//! messages. Syntax errors stop only the file (or JSON line) they are in.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::record::{JsonText, RawRecord};
use super::{Collector, Format, Locate, Pages, Sink};
use crate::diag::{LineIndex, Location, Problem, line_col};

/// Reads a whole TOML or JSON file; returns the hashes of its pages
/// (`None` when it could not be read).
pub(super) fn read_file<S: Sink>(
    path: &Path,
    format: Format,
    out: &mut Collector<'_, S>,
) -> Option<Pages> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            out.problem(Problem::new(
                Location::file(path),
                None,
                format!("cannot read: {e}"),
            ));
            return None;
        }
    };
    let pages = Pages::of(&bytes);
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let (line, col) = line_col(
                &String::from_utf8_lossy(e.as_bytes()),
                e.utf8_error().valid_up_to(),
            );
            out.problem(Problem::new(
                Location::at(path, line, col),
                None,
                "is not valid UTF-8",
            ));
            return Some(pages);
        }
    };
    let whole = text.as_str();
    let text = whole.strip_prefix('\u{feff}').unwrap_or(whole);
    // Byte offset of `text` in the file (after a byte order mark).
    let base = (whole.len() - text.len()) as u64;
    let lines = LineIndex::new(text);
    match format {
        Format::Toml => read_toml(path, text, &lines, out),
        Format::Json => read_json(path, text, base, &lines, out),
        Format::JsonLines => unreachable!("JSON Lines are read in blocks"),
    }
    Some(pages)
}

/// A record inside a text: the text (a file, or one line of a JSON Lines
/// block), the record's byte range, and how to number its lines.
struct Span<'a> {
    path: &'a Path,
    text: &'a str,
    range: Range<usize>,
    lines: Option<&'a LineIndex>,
    /// Line number of `text`'s first line.
    first_line: usize,
    json: bool,
    /// Byte offset of `text` in the file, when records can be read again
    /// from there (JSON); `None` for TOML.
    base: Option<u64>,
}

impl Span<'_> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let (line, col) = match self.lines {
            Some(index) => index.position(self.text, offset),
            None => line_col(self.text, offset),
        };
        (line + self.first_line - 1, col)
    }
}

impl Locate for Span<'_> {
    fn path(&self) -> &Path {
        self.path
    }

    fn record(&self) -> (usize, usize) {
        self.position(self.range.start)
    }

    fn field(&self, field: &str) -> (usize, usize) {
        let body = &self.text[self.range.clone()];
        match find_key(body, field, self.json) {
            Some(at) => self.position(self.range.start + at),
            None => self.record(),
        }
    }

    fn id_place(&self) -> (usize, usize) {
        match self.lines {
            // A JSON Lines record is its line: the column is found only if
            // the id turns out to be a duplicate (most never do).
            None => (self.first_line, 0),
            Some(_) => self.field("id"),
        }
    }

    fn source(&self) -> Option<(u64, &str)> {
        let base = self.base?;
        Some((
            base + self.range.start as u64,
            &self.text[self.range.clone()],
        ))
    }
}

/// Offset of `key` where it is assigned in a JSON object (`"key":`) or a TOML
/// table (`key =` at the start of a line, or quoted).
pub(super) fn find_key(body: &str, key: &str, json: bool) -> Option<usize> {
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

fn read_toml<S: Sink>(path: &Path, text: &str, lines: &LineIndex, out: &mut Collector<'_, S>) {
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
        let range = toml_record_range(text, table.span());
        let span = Span {
            path,
            text,
            range,
            lines: Some(lines),
            first_line: 1,
            json: false,
            base: None,
        };
        let value = toml::Value::Table(table.into_inner());
        match serde_path_to_error::deserialize::<_, RawRecord>(value) {
            Ok(raw) => out.record(raw, &span),
            Err(e) => {
                let field = top_field(&e.path().to_string());
                let (line, col) = field
                    .as_deref()
                    .map_or_else(|| span.record(), |f| span.field(f));
                let message = e.inner().message().trim_end().to_owned();
                out.problem(Problem::decoding(
                    Location::at(path, line, col),
                    field.as_deref(),
                    message,
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

fn read_json<S: Sink>(
    path: &Path,
    text: &str,
    base: u64,
    lines: &LineIndex,
    out: &mut Collector<'_, S>,
) {
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
        Err(e) => {
            return out.problem(json_problem(path, text, &e, None, |at| {
                lines.position(text, at)
            }));
        }
    };
    for raw in records {
        // RawValue borrows from `text`: its address gives its offset.
        let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        let range = start..start + raw.get().len();
        let span = Span {
            path,
            text,
            range,
            lines: Some(lines),
            first_line: 1,
            json: true,
            base: Some(base),
        };
        read_json_record(raw.get(), &span, out);
    }
}

/// Reads one block of a JSON Lines file (whole lines), which starts at byte
/// `start` of the file; returns the number of lines in it. Line numbers are
/// relative to the block until the loader knows where each block starts.
pub(super) fn read_json_lines<S: Sink>(
    path: &Path,
    block: &[u8],
    start: u64,
    file_start: bool,
    out: &mut Collector<'_, S>,
) -> usize {
    // One SIMD check of the whole block (small enough to stay in cache);
    // line by line only to find a bad one.
    let whole = simdutf8::basic::from_utf8(block).ok();
    let mut count = 0;
    let mut line_start = 0;
    let ends = memchr::memchr_iter(b'\n', block)
        .map(|i| i + 1)
        .chain((block.last() != Some(&b'\n')).then_some(block.len()));
    for (index, end) in ends.enumerate() {
        let line = &block[line_start..end];
        line_start = end;
        if line.is_empty() {
            break;
        }
        count += 1;
        let number = index + 1;
        let line = match whole {
            // A '\n' byte is always a character boundary.
            Some(text) => Ok(&text[end - line.len()..end]),
            None => std::str::from_utf8(line).map_err(|_| ()),
        };
        let Ok(line) = line else {
            out.problem(Problem::new(
                Location::at(path, number, 1),
                None,
                "is not valid UTF-8",
            ));
            continue;
        };
        let line = if file_start && index == 0 {
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
            lines: None,
            first_line: number,
            json: true,
            // After a byte order mark, the line starts 3 bytes later.
            base: Some(start + (end - line.len()) as u64),
        };
        read_json_record(line, &span, out);
    }
    count
}

fn read_json_record<S: Sink>(json: &str, span: &Span<'_>, out: &mut Collector<'_, S>) {
    // The fast path parses plainly, leaving long texts undecoded; only a
    // record that fails is parsed again, decoding everything and tracking
    // the path, to name the field at fault.
    let raw = serde_json::from_str::<RawRecord<JsonText>>(json);
    if let Ok(raw) = raw {
        return out.record(raw, span);
    }
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let result = serde_path_to_error::deserialize::<_, RawRecord>(&mut deserializer)
        .map_err(|e| (top_field(&e.path().to_string()), e.into_inner()))
        .and_then(|raw| deserializer.end().map(|()| raw).map_err(|e| (None, e)));
    match result {
        Ok(raw) => out.record(raw, span),
        Err((field, e)) => {
            let problem = json_problem(span.path, json, &e, field.as_deref(), |at| {
                span.position(span.range.start + at)
            });
            out.problem(problem)
        }
    }
}

/// A serde_json error in `text` as a problem. serde_json counts columns in
/// bytes; `position` turns a byte offset in `text` into the file's line and
/// column (in characters).
fn json_problem(
    path: &Path,
    text: &str,
    e: &serde_json::Error,
    field: Option<&str>,
    position: impl Fn(usize) -> (usize, usize),
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
        let line_start = text
            .split_inclusive('\n')
            .take(e.line() - 1)
            .map(str::len)
            .sum::<usize>();
        let mut offset = (line_start + e.column().saturating_sub(1)).min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let (line, col) = position(offset);
        Location::at(path, line, col)
    };
    Problem::decoding(location, field, message)
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
