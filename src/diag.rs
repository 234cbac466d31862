//! Problems found in user input, reported all at once.
//!
//! Loading and validation never stop at the first mistake: each step pushes
//! [`Problem`]s into a list and the command prints them together, one line
//! each, as `path:line:col: field: message`. This module owns that format,
//! the helpers that turn byte offsets into line and column, and the
//! did-you-mean hints; `report` shows them with the offending source line.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in an input file a problem sits. Line and column are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub col: Option<usize>,
}

impl Location {
    pub fn file(path: &Path) -> Self {
        Location {
            path: path.to_path_buf(),
            line: None,
            col: None,
        }
    }

    pub fn at(path: &Path, line: usize, col: usize) -> Self {
        Location {
            path: path.to_path_buf(),
            line: Some(line),
            col: Some(col),
        }
    }

    /// The location of byte `offset` in `text`.
    pub fn at_offset(path: &Path, text: &str, offset: usize) -> Self {
        let (line, col) = line_col(text, offset);
        Location::at(path, line, col)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", escape_controls(&self.path.display().to_string()))?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.col {
                write!(f, ":{col}")?;
            }
        }
        Ok(())
    }
}

/// One thing wrong with the input, with enough context to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: Location,
    /// The field (or config key) at fault, when there is one.
    pub field: Option<String>,
    pub message: String,
    /// What a did-you-mean hint is made from, set where the problem is made
    /// (boxed: most problems have none, and a `Result<_, Problem>` stays small).
    pub suggest: Option<Box<Suggest>>,
}

/// What a hint can be made from: a misspelled name and the names expected
/// in its place, or a section id the config does not declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suggest {
    Name { word: String, expected: Vec<String> },
    Section(String),
}

impl Suggest {
    /// The names of an unknown name among `expected`.
    pub fn name(word: &str, expected: &[&str]) -> Suggest {
        Suggest::Name {
            word: word.to_owned(),
            expected: expected.iter().map(|&e| e.to_owned()).collect(),
        }
    }

    /// The unknown name of a decoder's error message: serde reports an
    /// unknown field or variant only as text (`unknown field `x`, expected
    /// one of `a`, `b``), so this is read once, where its error becomes a
    /// problem.
    pub fn from_decoder(message: &str) -> Option<Suggest> {
        let (word, expected) = unknown_name(message)?;
        Some(Suggest::name(word, &expected))
    }
}

impl Problem {
    /// Control characters from the input (a key named with an escape
    /// sequence, say) are shown escaped: a problem is one line, and never
    /// drives the terminal.
    pub fn new(location: Location, field: Option<&str>, message: impl Into<String>) -> Self {
        Problem {
            location,
            field: field.map(escape_controls),
            message: escape_controls(&message.into()),
            suggest: None,
        }
    }

    /// A problem whose message comes from a decoder (serde): an unknown
    /// field or variant in it gets its hint.
    pub fn decoding(location: Location, field: Option<&str>, message: impl Into<String>) -> Self {
        let message = message.into();
        let suggest = Suggest::from_decoder(&message).map(Box::new);
        Problem {
            suggest,
            ..Problem::new(location, field, message)
        }
    }

    /// A section id that the config does not declare.
    pub fn unknown_section(location: Location, field: &str, id: &str) -> Self {
        Problem::new(location, Some(field), unknown_section_message(id))
            .suggesting(Suggest::Section(id.to_owned()))
    }

    /// The problem with a hint to be made from `suggest`.
    pub fn suggesting(self, suggest: Suggest) -> Self {
        Problem {
            suggest: Some(Box::new(suggest)),
            ..self
        }
    }
}

/// The message of an undeclared section id.
pub fn unknown_section_message(id: &str) -> String {
    format!("{id:?} is not a section declared in the config")
}

/// `text` with control characters written as `\u{1b}` escapes.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

impl Problem {
    /// A suggestion for fixing the problem, without a budget (see [`Hints`]).
    #[cfg(test)]
    pub fn hint(&self, sections: &[String]) -> Option<String> {
        let mut unlimited = usize::MAX;
        self.hint_within(sections, &mut unlimited)
    }

    /// A suggestion for fixing the problem, when it was made with one: the
    /// closest known name to a misspelled field, key, value or section id.
    /// `sections` are the section ids the config declares (may be empty).
    /// An unknown section is compared with the declared ones only while
    /// `budget` (comparisons) lasts, and spends it; past it, the hint lists
    /// the declared sections.
    fn hint_within(&self, sections: &[String], budget: &mut usize) -> Option<String> {
        let section = match self.suggest.as_deref()? {
            Suggest::Name { word, expected } => {
                let expected = || expected.iter().map(String::as_str);
                return closest(word, expected())
                    .or_else(|| alias(word).filter(|a| expected().any(|e| e == *a)))
                    .map(|name| format!("did you mean `{name}`?"));
            }
            Suggest::Section(section) => section,
        };
        if sections.is_empty() {
            return None;
        }
        if *budget >= sections.len() {
            *budget -= sections.len();
            if let Some(name) = closest(section, sections.iter().map(String::as_str)) {
                return Some(format!("did you mean `{name}`?"));
            }
        }
        const SHOWN: usize = 12;
        let mut list: Vec<String> = sections
            .iter()
            .take(SHOWN)
            .map(|s| format!("`{s}`"))
            .collect();
        if sections.len() > SHOWN {
            list.push(format!("and {} more", sections.len() - SHOWN));
        }
        Some(format!("the declared sections are {}", list.join(", ")))
    }
}

/// The hints of many problems (a `check` of a large site can find
/// thousands). Each distinct message's hint is found once, and unknown
/// sections are compared with the declared ones for at most
/// [`Hints::BUDGET`] comparisons in all: each compares with every declared
/// section, and thousands of distinct unknown ids against thousands of
/// sections took over a minute. Past the budget a hint lists the sections.
pub struct Hints<'a> {
    sections: &'a [String],
    found: std::collections::HashMap<String, Option<String>>,
    budget: usize,
}

impl<'a> Hints<'a> {
    /// Comparisons of an unknown section id with a declared one, in all:
    /// a fraction of a second.
    pub const BUDGET: usize = 200_000;

    pub fn new(sections: &'a [String]) -> Hints<'a> {
        Hints {
            sections,
            found: std::collections::HashMap::new(),
            budget: Self::BUDGET,
        }
    }

    /// The hint of `problem`, within the budget.
    pub fn of(&mut self, problem: &Problem) -> Option<String> {
        if let Some(hint) = self.found.get(&problem.message) {
            return hint.clone();
        }
        let hint = problem.hint_within(self.sections, &mut self.budget);
        self.found.insert(problem.message.clone(), hint.clone());
        hint
    }
}

/// The name and the expected names of serde's `unknown field `x`, expected
/// one of `a`, `b`` (also `expected `a` or `b``, and `unknown variant`;
/// names quoted with `"` are read the same way).
fn unknown_name(message: &str) -> Option<(&str, Vec<&str>)> {
    let (_kind, rest) = message.strip_prefix("unknown ")?.split_once(' ')?;
    let quote = rest.chars().next().filter(|&c| c == '`' || c == '"')?;
    let (word, rest) = rest[1..].split_once(quote)?;
    let (_, list) = rest.split_once("expected")?;
    let expected = list.split(quote).skip(1).step_by(2).collect();
    Some((word, expected))
}

/// The candidate closest to `word` by edit distance (a swap of two letters
/// counts once, case is ignored), when close enough to be a typo of it: at
/// most one edit per three characters. The first of equally close ones.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_lowercase();
    let length = word.chars().count();
    let limit = (length / 3).max(1);
    candidates
        .into_iter()
        .filter_map(|c| {
            let lower = c.to_lowercase();
            // Each edit changes the length by one at most: a candidate whose
            // length differs more is never close enough.
            (lower.chars().count().abs_diff(length) <= limit)
                .then(|| (strsim::damerau_levenshtein(&word, &lower), c))
        })
        .filter(|&(distance, _)| distance <= limit)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| c)
}

/// The record field that other systems' exports call `word`.
fn alias(word: &str) -> Option<&'static str> {
    Some(match word.to_lowercase().as_str() {
        "date" | "pubdate" | "pub_date" | "published_at" | "publish_date" | "datetime" | "time"
        | "created" | "created_at" => "published",
        "modified" | "updated_at" | "last_modified" | "lastmod" => "updated",
        "link" | "href" | "permalink" => "url",
        "tags" | "tag" | "keyword" => "keywords",
        "body" | "content" | "html" | "text" => "content_html",
        "category" | "channel" | "column" => "section",
        "description" | "excerpt" | "abstract" | "lead" => "summary",
        "byline" | "writer" | "creator" => "author",
        "headline" => "title",
        "guid" => "id",
        "img" | "thumbnail" | "cover" | "picture" => "image",
        _ => return None,
    })
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.location)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Every problem found by one command; an error when not empty.
#[derive(Debug, Default, Clone)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn extend(&mut self, other: Problems) {
        self.0.extend(other.0);
    }

    /// `Ok(value)` when nothing was found, the problems otherwise.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl From<Problem> for Problems {
    fn from(problem: Problem) -> Self {
        Problems(vec![problem])
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
/// Counts from the start of the text: for one position. Many positions in
/// one text go through a [`LineIndex`].
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
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
    Problem::decoding(location, key, e.message().trim_end().to_owned())
}

/// Line starts of a text, and a cursor: positions of many offsets in one
/// text (every record of a file) without counting each column from its
/// line's start. A JSON array on one line (what `json.dumps` and
/// `JSON.stringify` write) is one line of megabytes; counting from its start
/// for every record was quadratic.
///
/// The column is in characters, so it cannot be had from the byte offset
/// alone (unless the text is ASCII): the index remembers the last position
/// it gave and counts only the characters between that one and the next.
/// Asked in increasing order (records in file order, a few fields each),
/// every byte of the text is counted about once in all; a position is
/// otherwise counted from its line's start or from the cursor, whichever
/// is nearer.
pub struct LineIndex {
    starts: Vec<usize>,
    /// Every byte is ASCII: a column is a byte difference.
    ascii: bool,
    /// The last position given: byte offset, 1-based line, 0-based column.
    cursor: std::cell::Cell<(usize, usize, usize)>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        LineIndex {
            starts,
            ascii: text.is_ascii(),
            cursor: std::cell::Cell::new((0, 1, 0)),
        }
    }

    /// Line `number` (1-based) of `text`, without its line break.
    pub fn line<'t>(&self, text: &'t str, number: usize) -> Option<&'t str> {
        let (start, end) = self.line_range(text, number)?;
        Some(text[start..end].trim_end_matches('\r'))
    }

    /// Byte range of line `number` (1-based), without its `\n`.
    fn line_range(&self, text: &str, number: usize) -> Option<(usize, usize)> {
        let start = *self.starts.get(number.checked_sub(1)?)?;
        let end = self.starts.get(number).map_or(text.len(), |&next| next - 1);
        Some((start, end))
    }

    /// 1-based line and column (in characters) of byte `offset` of `text`
    /// (the text the index was made of): the same as [`line_col`].
    pub fn position(&self, text: &str, offset: usize) -> (usize, usize) {
        self.locate(text, offset).0
    }

    /// [`LineIndex::position`], and how many bytes it counted characters in.
    fn locate(&self, text: &str, offset: usize) -> ((usize, usize), usize) {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        if self.ascii {
            return ((line, offset - start + 1), 0);
        }
        let (at, at_line, at_col) = self.cursor.get();
        let (col, counted) = if at_line == line && at.abs_diff(offset) < offset - start {
            if offset >= at {
                (at_col + text[at..offset].chars().count(), offset - at)
            } else {
                (at_col - text[offset..at].chars().count(), at - offset)
            }
        } else {
            (text[start..offset].chars().count(), offset - start)
        };
        self.cursor.set((offset, line, col));
        ((line, col + 1), counted)
    }

    /// Byte offset of 1-based `line` and `col` (in characters) in `text`;
    /// `None` when the line is shorter. The inverse of
    /// [`LineIndex::position`], with the same cursor.
    pub fn offset(&self, text: &str, line: usize, col: usize) -> Option<usize> {
        let (start, end) = self.line_range(text, line)?;
        let want = col.checked_sub(1)?;
        if self.ascii {
            return (start + want <= end).then_some(start + want);
        }
        let (at, at_line, at_col) = self.cursor.get();
        let offset = if at_line == line && at_col.abs_diff(want) < want {
            if want >= at_col {
                let chars = text[at..end].char_indices().map(|(i, _)| at + i);
                chars.chain([end]).nth(want - at_col)?
            } else {
                let mut chars = text[start..at].char_indices().rev().map(|(i, _)| start + i);
                chars.nth(at_col - want - 1)?
            }
        } else {
            let chars = text[start..end].char_indices().map(|(i, _)| start + i);
            chars.chain([end]).nth(want)?
        };
        self.cursor.set((offset, line, want));
        Some(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line of `n` records with CJK text, like `json.dumps` writes.
    fn one_line_records(n: usize) -> String {
        let records: Vec<String> = (0..n)
            .map(|i| format!("{{\"id\": \"a{i}\", \"title\": \"标题 第{i}条\"}}"))
            .collect();
        format!("[{}]\n", records.join(", "))
    }

    #[test]
    fn line_index_positions_match_line_col() {
        for text in ["ab\n标题 = x\n\nlast", "a\r\nb", "", "标题", "x\n"] {
            let index = LineIndex::new(text);
            let offsets: Vec<usize> = (0..=text.len() + 1).collect();
            // In order, backwards, and jumping about: the cursor never
            // changes an answer.
            let jumps = offsets.iter().map(|o| o * 7 % (text.len() + 2));
            for offset in offsets
                .iter()
                .copied()
                .chain(offsets.iter().rev().copied())
                .chain(jumps)
            {
                assert_eq!(
                    index.position(text, offset),
                    line_col(text, offset),
                    "{text:?} at {offset}"
                );
            }
        }
    }

    #[test]
    fn line_index_offset_inverts_position() {
        let text = "ab\n标题 = x\n\nlast标";
        let index = LineIndex::new(text);
        let boundaries: Vec<usize> = (0..=text.len())
            .filter(|&o| text.is_char_boundary(o))
            .collect();
        for &offset in boundaries.iter().chain(boundaries.iter().rev()) {
            let (line, col) = line_col(text, offset);
            assert_eq!(index.offset(text, line, col), Some(offset), "{offset}");
        }
        assert_eq!(index.offset(text, 1, 4), None, "past the line's end");
        assert_eq!(index.offset(text, 5, 1), None, "past the last line");
        assert_eq!(index.offset(text, 1, 0), None);
    }

    /// The positions of every record of a one-line JSON array (its start,
    /// then a field in it, as the loader asks) count each byte about once
    /// in all: linear, where counting each column from the line's start is
    /// quadratic.
    #[test]
    fn positions_in_one_long_line_count_each_byte_about_once() {
        let text = one_line_records(20_000);
        let index = LineIndex::new(&text);
        let starts: Vec<usize> = text.match_indices('{').map(|(i, _)| i).collect();
        let mut counted = 0;
        for (n, &start) in starts.iter().enumerate() {
            let title = start + text[start..].find("\"title\"").unwrap();
            counted += index.locate(&text, start).1;
            counted += index.locate(&text, title).1;
            // A field found before another of the same record: backwards.
            counted += index.locate(&text, start + 1).1;
            if n % 997 == 0 {
                assert_eq!(index.position(&text, title), line_col(&text, title));
            }
        }
        assert!(
            counted <= 2 * text.len(),
            "{counted} bytes counted for a text of {}",
            text.len()
        );
        // Each record read back at its position (the duplicate check):
        // columns counted here once, along the line.
        let mut col = 1;
        let mut from = 0;
        for &start in &starts {
            col += text[from..start].chars().count();
            from = start;
            assert_eq!(index.offset(&text, 1, col), Some(start));
        }
    }

    #[test]
    fn an_ascii_text_needs_no_counting() {
        let text = "[{\"id\": \"a\"}, {\"id\": \"b\"}]";
        let index = LineIndex::new(text);
        assert_eq!(index.locate(text, 17), ((1, 18), 0));
        assert_eq!(index.offset(text, 1, 18), Some(17));
    }

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let text = "a = 1\n标题 = x\n";
        let offset = text.find('x').unwrap();
        assert_eq!(line_col(text, offset), (2, 6));
        assert_eq!(line_col(text, 0), (1, 1));
    }

    fn here() -> Location {
        Location::at(Path::new("a.toml"), 1, 1)
    }

    fn problem(message: &str) -> Problem {
        Problem::decoding(here(), None, message)
    }

    fn unknown(id: &str) -> Problem {
        Problem::unknown_section(here(), "section", id)
    }

    #[test]
    fn an_unknown_field_hints_the_closest_expected_one() {
        let fields = "expected one of `id`, `title`, `section`, `url`, `published`, `author`";
        let hint = |word: &str| problem(&format!("unknown field `{word}`, {fields}")).hint(&[]);
        assert_eq!(hint("sectoin").as_deref(), Some("did you mean `section`?"));
        assert_eq!(hint("auther").as_deref(), Some("did you mean `author`?"));
        assert_eq!(hint("Title").as_deref(), Some("did you mean `title`?"));
        assert_eq!(hint("date").as_deref(), Some("did you mean `published`?"));
        assert_eq!(hint("tags"), None, "keywords is not expected here");
        assert_eq!(hint("zzzzzz"), None);
        let two = problem("unknown variant `startls`, expected `starttls` or `tls`");
        assert_eq!(two.hint(&[]).as_deref(), Some("did you mean `starttls`?"));
        assert_eq!(
            problem("unknown field `x`, there are no fields").hint(&[]),
            None
        );
    }

    #[test]
    fn an_unknown_section_hints_a_declared_one_or_lists_them() {
        let sections = ["news".to_owned(), "yushi".to_owned(), "tech".to_owned()];
        let hint = |id: &str| unknown(id).hint(&sections);
        assert_eq!(hint("nwes").as_deref(), Some("did you mean `news`?"));
        assert_eq!(hint("yushì").as_deref(), Some("did you mean `yushi`?"));
        assert_eq!(
            hint("world").as_deref(),
            Some("the declared sections are `news`, `yushi`, `tech`")
        );
        assert_eq!(unknown("world").hint(&[]), None);
        assert_eq!(
            unknown("world").message,
            "\"world\" is not a section declared in the config"
        );
        // A hint comes from how the problem was made, not from its text.
        let told = Problem::new(here(), None, unknown("nwes").message);
        assert_eq!(told.hint(&sections), None);
    }

    #[test]
    fn hints_are_found_once_per_message_and_within_a_budget() {
        let sections: Vec<String> = (0..1000).map(|i| format!("section-{i}")).collect();
        let mut hints = Hints::new(&sections);
        assert_eq!(
            hints.of(&unknown("sektion-7")).as_deref(),
            Some("did you mean `section-7`?")
        );
        // The budget allows BUDGET / 1000 searches; a repeated message is free.
        for _ in 0..1000 {
            hints.of(&unknown("sektion-7"));
        }
        for i in 100..100 + Hints::BUDGET / 1000 - 1 {
            let hint = hints.of(&unknown(&format!("sektion-{i}")));
            assert_eq!(hint, Some(format!("did you mean `section-{i}`?")));
        }
        let past = hints.of(&unknown("sektion-999")).unwrap();
        assert!(
            past.starts_with("the declared sections are `section-0`, "),
            "{past}"
        );
        assert!(past.ends_with("and 988 more"), "{past}");
        // Unknown fields (a short list each) are not counted.
        let field = problem("unknown field `titel`, expected `id` or `title`");
        assert_eq!(hints.of(&field).as_deref(), Some("did you mean `title`?"));
    }

    #[test]
    fn problem_display_has_path_line_col_field() {
        let p = Problem::new(
            Location::at(Path::new("a/b.toml"), 3, 9),
            Some("published"),
            "\"2017-13-01\" is not a date",
        );
        assert_eq!(
            p.to_string(),
            "a/b.toml:3:9: published: \"2017-13-01\" is not a date"
        );
    }
}
