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
        }
    }
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
    /// A suggestion for fixing the problem, when one can be read from it: the
    /// closest known name to a misspelled field, key, value or section id.
    /// `sections` are the section ids the config declares (may be empty).
    pub fn hint(&self, sections: &[String]) -> Option<String> {
        let message = self.message.as_str();
        if let Some((word, expected)) = unknown_name(message) {
            return closest(word, expected.iter().copied())
                .or_else(|| alias(word).filter(|a| expected.contains(a)))
                .map(|name| format!("did you mean `{name}`?"));
        }
        let section = message.strip_suffix(" is not a section declared in the config")?;
        let section: String = serde_json::from_str(section).ok()?;
        if sections.is_empty() {
            return None;
        }
        if let Some(name) = closest(&section, sections.iter().map(String::as_str)) {
            return Some(format!("did you mean `{name}`?"));
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

/// The name and the expected names of serde's `unknown field `x`, expected
/// one of `a`, `b`` (also `expected `a` or `b``, and `unknown variant`),
/// and of the config's `unknown format "x"; expected "a" or "b"`.
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
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&word, &c.to_lowercase()), c))
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
    Problem::new(location, key, e.message().trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let text = "a = 1\n标题 = x\n";
        let offset = text.find('x').unwrap();
        assert_eq!(line_col(text, offset), (2, 6));
        assert_eq!(line_col(text, 0), (1, 1));
    }

    fn problem(message: &str) -> Problem {
        Problem::new(Location::at(Path::new("a.toml"), 1, 1), None, message)
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
        let hint = |id: &str| {
            problem(&format!("{id:?} is not a section declared in the config")).hint(&sections)
        };
        assert_eq!(hint("nwes").as_deref(), Some("did you mean `news`?"));
        assert_eq!(hint("yushì").as_deref(), Some("did you mean `yushi`?"));
        assert_eq!(
            hint("world").as_deref(),
            Some("the declared sections are `news`, `yushi`, `tech`")
        );
        let unknown = problem("\"world\" is not a section declared in the config");
        assert_eq!(unknown.hint(&[]), None);
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
