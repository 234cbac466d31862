//! What the user reads on stderr: problems with the offending source line
//! and a caret under the column (rustc style), error lines, and the
//! `tracing` set-up behind `warning:` lines and `-v` detail.
//!
//! Everything is written with ANSI styles through `anstream`, which drops
//! them unless stderr is a terminal that takes colour (and `NO_COLOR` is
//! unset; `CLICOLOR_FORCE` forces them).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, Write as _};
use std::path::{Path, PathBuf};

use anstyle::{AnsiColor, Style};
use unicode_width::UnicodeWidthChar;

use crate::diag::{Hints, LineIndex, Problem, Problems};

const ERROR: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const LOCATION: Style = Style::new().bold();
const GUTTER: Style = AnsiColor::Blue.on_default().bold();
const HELP: Style = Style::new().bold();

/// At most this many characters of a source line are shown, around the column.
const SHOWN_CHARS: usize = 200;
/// A line longer than this (in bytes) is not shown at all.
const MAX_LINE_BYTES: usize = 1 << 20;

/// What the command learned that helps explain its problems.
#[derive(Default)]
pub struct Context {
    /// The section ids the config declares, once it was read.
    pub sections: Vec<String>,
}

/// Prints every problem as `error: path:line:col: field: message`, followed
/// (when the file has that line) by the line and a caret, and a hint.
pub fn problems(problems: &Problems, cx: &Context) {
    let sources = Sources::read(&problems.0);
    let mut hints = Hints::new(&cx.sections);
    let mut stderr = anstream::stderr().lock();
    for problem in &problems.0 {
        let block = render(problem, sources.line(problem), hints.of(problem));
        let _ = stderr.write_all(block.as_bytes());
    }
}

/// Prints `error: message`.
pub fn error(message: &str) {
    // Paths and server replies may carry control characters: never raw.
    let message = crate::diag::escape_controls(message);
    let _ = writeln!(anstream::stderr(), "{ERROR}error{ERROR:#}: {message}");
}

/// One problem's block: its line (exactly [`Problem`]'s `Display`), then the
/// source line with a caret, then the hint; a blank line ends a block that
/// has more than the first line.
fn render(problem: &Problem, source: Option<&SourceLine>, hint: Option<String>) -> String {
    let mut out = format!(
        "{ERROR}error{ERROR:#}: {LOCATION}{}{LOCATION:#}: ",
        problem.location
    );
    if let Some(field) = &problem.field {
        let _ = write!(out, "{field}: ");
    }
    let _ = writeln!(out, "{}", problem.message);

    let snippet = problem.location.line.zip(source);
    let width = snippet.map_or(1, |(line, _)| line.to_string().len());
    let pad = " ".repeat(width);
    if let Some((line, text)) = snippet {
        let shown = Shown::new(text, problem.location.col);
        let _ = writeln!(out, "{pad} {GUTTER}|{GUTTER:#}");
        let _ = writeln!(
            out,
            "{}",
            format!("{GUTTER}{line} |{GUTTER:#} {}", shown.text).trim_end()
        );
        if let Some(caret) = shown.caret {
            let _ = writeln!(
                out,
                "{pad} {GUTTER}|{GUTTER:#} {}{ERROR}^{ERROR:#}",
                " ".repeat(caret)
            );
        }
    }
    if let Some(hint) = &hint {
        let _ = writeln!(out, "{pad} {GUTTER}={GUTTER:#} {HELP}help{HELP:#}: {hint}");
    }
    if snippet.is_some() || hint.is_some() {
        out.push('\n');
    }
    out
}

/// A source line to show under problems, with what cutting it around
/// each problem's column takes: its length in characters, counted once, and
/// an index that finds a column from the one shown before (a one-line JSON
/// file of a megabyte can have thousands of problems, in column order).
struct SourceLine {
    text: String,
    chars: usize,
    index: LineIndex,
}

impl SourceLine {
    fn new(text: String) -> SourceLine {
        SourceLine {
            chars: text.chars().count(),
            index: LineIndex::new(&text),
            text,
        }
    }
}

/// A source line as shown: tabs expanded, control characters replaced, cut
/// to [`SHOWN_CHARS`] around the column; and the caret's distance from the
/// start, in terminal columns (CJK characters take two).
struct Shown {
    text: String,
    caret: Option<usize>,
}

impl Shown {
    fn new(line: &SourceLine, col: Option<usize>) -> Shown {
        let len = line.chars;
        // 0-based; one past the end points just after the last character.
        let at = col.map(|c| c.saturating_sub(1).min(len));
        let (start, end) = if len <= SHOWN_CHARS {
            (0, len)
        } else {
            let end = (at.unwrap_or(0) + SHOWN_CHARS / 2)
                .max(SHOWN_CHARS)
                .min(len);
            (end - SHOWN_CHARS, end)
        };
        // Only the characters shown are visited.
        let from = line
            .index
            .offset(&line.text, 1, start + 1)
            .unwrap_or(line.text.len());
        let chars = line.text[from..].chars().take(end - start);
        let mut text = String::new();
        let mut width = 0;
        let mut caret = None;
        if start > 0 {
            text.push_str("...");
            width += 3;
        }
        for (i, c) in (start..).zip(chars) {
            if at == Some(i) {
                caret = Some(width);
            }
            match c {
                '\t' => {
                    text.push_str("    ");
                    width += 4;
                }
                c if c.is_control() || is_bidi_control(c) => {
                    text.push('\u{fffd}');
                    width += 1;
                }
                c => {
                    text.push(c);
                    width += c.width().unwrap_or(0);
                }
            }
        }
        if at.is_some() && caret.is_none() {
            caret = Some(width);
        }
        if end < len {
            text.push_str("...");
        }
        Shown { text, caret }
    }
}

/// Characters that reorder the text around them on a terminal.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// The source lines the problems point at, each file read once, as a
/// stream (a large JSON Lines export is not held in memory).
struct Sources {
    lines: HashMap<PathBuf, HashMap<usize, SourceLine>>,
}

impl Sources {
    fn read(problems: &[Problem]) -> Sources {
        let mut wanted: BTreeMap<&Path, BTreeSet<usize>> = BTreeMap::new();
        for problem in problems {
            if let Some(line) = problem.location.line {
                wanted
                    .entry(problem.location.path.as_path())
                    .or_default()
                    .insert(line);
            }
        }
        let lines = wanted
            .into_iter()
            .filter_map(|(path, lines)| {
                let lines = read_lines(path, &lines)?
                    .into_iter()
                    .map(|(number, text)| (number, SourceLine::new(text)))
                    .collect();
                Some((path.to_path_buf(), lines))
            })
            .collect();
        Sources { lines }
    }

    fn line(&self, problem: &Problem) -> Option<&SourceLine> {
        let line = problem.location.line?;
        self.lines.get(&problem.location.path)?.get(&line)
    }
}

/// The `wanted` lines (1-based) of a regular file, without line ends (and
/// without a byte-order mark); lines over [`MAX_LINE_BYTES`] are left out.
/// `None` when the file cannot be read.
fn read_lines(path: &Path, wanted: &BTreeSet<usize>) -> Option<HashMap<usize, String>> {
    // Never a FIFO or a device: reading one again could block or consume.
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, file);
    let last = *wanted.last()?;
    let mut found = HashMap::new();
    let (mut number, mut current, mut too_long) = (1usize, Vec::new(), false);
    let mut keep = |number: usize, bytes: &[u8], too_long: bool| {
        if wanted.contains(&number) && !too_long {
            let text = String::from_utf8_lossy(bytes);
            let text = text.strip_suffix('\r').unwrap_or(&text);
            let text = if number == 1 {
                text.strip_prefix('\u{feff}').unwrap_or(text)
            } else {
                text
            };
            found.insert(number, text.to_owned());
        }
    };
    loop {
        let buf = reader.fill_buf().ok()?;
        if buf.is_empty() {
            keep(number, &current, too_long);
            break;
        }
        let newline = memchr::memchr(b'\n', buf);
        let piece = &buf[..newline.unwrap_or(buf.len())];
        if wanted.contains(&number) && !too_long {
            if current.len() + piece.len() > MAX_LINE_BYTES {
                too_long = true;
                current = Vec::new();
            } else {
                current.extend_from_slice(piece);
            }
        }
        let used = newline.map_or(buf.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            keep(number, &current, too_long);
            current.clear();
            too_long = false;
            number += 1;
            if number > last {
                break;
            }
        }
    }
    Some(found)
}

// ---- what the user asked to hear --------------------------------------------

/// What the user asked to hear (`-q`, `-v`). Warnings and detail are
/// `tracing` events, which [`init_tracing`] shows on stderr according to
/// the same choice; summaries go to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// Summaries and warnings.
    #[default]
    Normal,
    /// `-v`: detail too (each file built, each message sent).
    Verbose,
}

impl Verbosity {
    pub fn from_flags(quiet: bool, verbose: bool) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, true) => Verbosity::Verbose,
            (false, false) => Verbosity::Normal,
        }
    }

    pub fn is_quiet(self) -> bool {
        self == Verbosity::Quiet
    }

    /// The closing summary of a command, on stdout unless `-q`.
    pub fn summary(self, line: impl AsRef<str>) {
        if !self.is_quiet() {
            stdout_line(line.as_ref());
        }
    }

    /// A warning about the data: `warning: ...` on stderr unless `-q`.
    pub fn warn(self, line: impl AsRef<str>) {
        if !self.is_quiet() {
            tracing::warn!("{}", line.as_ref());
        }
    }

    /// Detail shown only with `-v`.
    pub fn detail(self, line: impl AsRef<str>) {
        if self == Verbosity::Verbose {
            tracing::info!("{}", line.as_ref());
        }
    }
}

/// A line on stdout; a reader that went away (`bulletin build | head`) is
/// no reason to panic.
pub fn stdout_line(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// A line on stderr, as it is (for summaries of an incomplete run).
pub fn stderr_line(line: &str) {
    let _ = writeln!(crate::progress::stderr(), "{line}");
}

// ---- tracing: warnings and detail -----------------------------------------

/// Routes `tracing` events of this crate to stderr: errors only with `-q`,
/// warnings by default, detail too with `-v`. Other crates' events (lettre's
/// SMTP traces) are not shown.
pub fn init_tracing(say: Verbosity) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::{Layer as _, fmt};

    let level = match say {
        Verbosity::Quiet => LevelFilter::ERROR,
        Verbosity::Normal => LevelFilter::WARN,
        Verbosity::Verbose => LevelFilter::INFO,
    };
    let layer = fmt::layer()
        .event_format(Plain)
        .with_writer(crate::progress::stderr)
        .with_filter(Targets::new().with_target(env!("CARGO_CRATE_NAME"), level));
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
}

/// `warning: message` and `error: message`; detail as it is. No time stamps.
struct Plain;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Plain
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing_subscriber::fmt::FormatFields as _;
        match *event.metadata().level() {
            tracing::Level::ERROR => write!(writer, "{ERROR}error{ERROR:#}: ")?,
            tracing::Level::WARN => write!(writer, "{WARNING}warning{WARNING:#}: ")?,
            _ => {}
        }
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Location;

    fn plain(text: &str) -> String {
        let mut out = Vec::new();
        let mut stream = anstream::StripStream::new(&mut out);
        stream.write_all(text.as_bytes()).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn line(text: &str) -> SourceLine {
        SourceLine::new(text.to_owned())
    }

    fn problem(line: usize, col: usize, message: &str) -> Problem {
        Problem::new(
            Location::at(Path::new("a.toml"), line, col),
            Some("f"),
            message,
        )
    }

    #[test]
    fn the_first_line_is_the_problem_and_the_caret_sits_under_the_column() {
        let block = render(&problem(12, 5, "bad"), Some(&line("x = \"y\"")), None);
        assert_eq!(
            plain(&block),
            "error: a.toml:12:5: f: bad\n   |\n12 | x = \"y\"\n   |     ^\n\n"
        );
        assert!(
            block.contains("\u{1b}["),
            "styled before anstream strips it"
        );
    }

    #[test]
    fn without_a_source_line_only_the_problem_is_shown() {
        let block = render(&problem(3, 1, "bad"), None, None);
        assert_eq!(plain(&block), "error: a.toml:3:1: f: bad\n");
    }

    #[test]
    fn wide_characters_and_tabs_move_the_caret() {
        let shown = Shown::new(&line("标题\t= x"), Some(6));
        assert_eq!(shown.text, "标题    = x");
        assert_eq!(shown.caret, Some(10));
        let shown = Shown::new(&line("a\u{1b}[31mb"), Some(6));
        assert_eq!(shown.text, "a\u{fffd}[31mb");
        assert_eq!(shown.caret, Some(5));
        assert_eq!(Shown::new(&line("ab"), Some(9)).caret, Some(2));
        assert_eq!(Shown::new(&line("ab"), None).caret, None);
    }

    #[test]
    fn a_long_line_is_cut_around_the_column() {
        let long = line(&format!("{}é{}", "a".repeat(1000), "b".repeat(1000)));
        let shown = Shown::new(&long, Some(1001));
        assert!(shown.text.starts_with("...a") && shown.text.ends_with("b..."));
        assert_eq!(shown.text.chars().count(), SHOWN_CHARS + 6);
        assert_eq!(shown.text.chars().nth(shown.caret.unwrap()), Some('é'));
        let start = Shown::new(&long, Some(1));
        assert_eq!((start.caret, start.text.starts_with('a')), (Some(0), true));
        let end = Shown::new(&long, Some(2002));
        assert_eq!(end.caret, Some(3 + SHOWN_CHARS));
    }

    #[test]
    fn lines_are_read_once_per_file_and_only_those_wanted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let long = "x".repeat(MAX_LINE_BYTES + 1);
        std::fs::write(&path, format!("\u{feff}one\r\ntwo\n{long}\nfour")).unwrap();
        let lines = read_lines(&path, &BTreeSet::from([1, 3, 4, 5])).unwrap();
        assert_eq!(lines.get(&1).map(String::as_str), Some("one"));
        assert_eq!(lines.get(&2), None);
        assert_eq!(lines.get(&3), None, "too long to show");
        assert_eq!(lines.get(&4).map(String::as_str), Some("four"));
        assert_eq!(lines.get(&5), None);
        assert!(read_lines(dir.path(), &BTreeSet::from([1])).is_none());
    }
}
