//! Problems found in user input, reported all at once.
//!
//! Loading and validation never stop at the first mistake: each step pushes
//! [`Problem`]s into a list and the command prints them together, one line
//! each, as `path:line:col: field: message`. This module owns that format and
//! the helpers that turn byte offsets into line and column.

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
        write!(f, "{}", self.path.display())?;
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
    pub fn new(location: Location, field: Option<&str>, message: impl Into<String>) -> Self {
        Problem {
            location,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
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
