//! The text part's line wrapping: every line at most [`WIDTH`] columns
//! (RFC 5322 §2.1.1 recommends 78), counted as a terminal shows them — a
//! CJK character, and a character of ambiguous width such as `·` or `■`,
//! takes two — with three rules a reader notices when they are broken:
//!
//! - a URL is never cut (a link a mail client cannot follow is worse than a
//!   long line): it goes whole on a line of its own when it does not fit;
//! - continuation lines keep the line's indentation and hang under the text
//!   after a bullet (`■ `, `· `, `* `, `- `), so the shape of the list stays;
//! - Chinese and Japanese text breaks between characters, but never before
//!   closing punctuation (`，` `。` `）` `」`…) or after opening punctuation
//!   (`（` `「`…); other text breaks only at spaces.
//!
//! Lines that fit are left exactly as they are (the signature separator
//! `-- ` keeps its space).

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// The longest line written, in columns.
pub const WIDTH: usize = 78;

/// Continuation lines are indented at most this far, so a deeply indented
/// line still has room for text.
const MAX_HANG: usize = 40;

/// `text` with every line longer than `width` columns wrapped.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        if columns(line) <= width {
            out.push_str(line);
        } else {
            wrap_line(line, width, &mut out);
        }
    }
    out
}

/// The columns `text` takes, ambiguous-width characters counted as two
/// (as a CJK terminal or mail client shows them).
pub fn columns(text: &str) -> usize {
    text.width_cjk()
}

/// One line too long for `width`, wrapped into `out` (lines joined by `\n`).
fn wrap_line(line: &str, width: usize, out: &mut String) {
    let (lead, body) = line.split_at(lead_len(line));
    let hang = " ".repeat(columns(lead).min(MAX_HANG));

    out.push_str(lead);
    let mut used = columns(lead);
    let mut empty = true;
    for piece in pieces(body) {
        let need = columns(piece.text);
        if empty {
            // A line holds at least one piece, however long.
        } else if !piece.glued && used + columns(piece.space) + need > width {
            out.push('\n');
            out.push_str(&hang);
            used = hang.len();
        } else {
            out.push_str(piece.space);
            used += columns(piece.space);
        }
        out.push_str(piece.text);
        used += need;
        empty = false;
    }
}

/// The length in bytes of the line's lead: its indentation, and a bullet
/// (one character that is not a letter, digit or closing punctuation, then
/// a space) when one follows.
fn lead_len(line: &str) -> usize {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let mut rest = line[indent..].chars();
    match (rest.next(), rest.next()) {
        (Some(bullet), Some(' '))
            if !bullet.is_alphanumeric() && !bullet.is_whitespace() && !is_closing(bullet) =>
        {
            indent + bullet.len_utf8() + 1
        }
        _ => indent,
    }
}

/// A piece of a line that is never cut: a word, a URL, or one CJK
/// character with the punctuation that may not be parted from it.
#[derive(Debug, PartialEq)]
struct Piece<'a> {
    /// The spaces before it (empty inside a word).
    space: &'a str,
    text: &'a str,
    /// No break is allowed before it (a closing mark, or after an opening one).
    glued: bool,
}

/// The pieces of `body`, in order; concatenated with their spaces they are
/// `body` without its trailing spaces.
fn pieces(body: &str) -> Vec<Piece<'_>> {
    let mut out: Vec<Piece<'_>> = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let word_start = rest.len() - rest.trim_start_matches(' ').len();
        let (space, after) = rest.split_at(word_start);
        if after.is_empty() {
            break;
        }
        let word_len = after.find(' ').unwrap_or(after.len());
        let (word, tail) = after.split_at(word_len);
        split_word(space, word, &mut out);
        rest = tail;
    }
    out
}

/// The pieces of one space-free word: whole, unless it has wide
/// characters, which may be parted from their neighbours; a URL in it is
/// one piece to the word's end.
fn split_word<'a>(space: &'a str, word: &'a str, out: &mut Vec<Piece<'a>>) {
    let url_at = url_start(word).unwrap_or(word.len());
    let (text, url) = word.split_at(url_at);
    let mut space = space;
    // Byte offset in `text` where the current piece began.
    let mut start = 0;
    let mut previous: Option<char> = None;
    for (at, c) in text.char_indices() {
        if let Some(p) = previous
            && at > start
            && (is_wide(p) || is_wide(c))
            && !is_closing(c)
            && !is_opening(p)
        {
            out.push(Piece {
                space,
                text: &text[start..at],
                glued: false,
            });
            space = "";
            start = at;
        }
        previous = Some(c);
    }
    let last = &text[start..];
    if !last.is_empty() {
        out.push(Piece {
            space,
            text: last,
            glued: false,
        });
        space = "";
    }
    if !url.is_empty() {
        // Glued to plain text before it ("see:https://…" stays whole),
        // breakable after a wide character ("退订：" then the URL).
        let glued = previous.is_some_and(|p| !is_wide(p));
        out.push(Piece {
            space,
            text: url,
            glued,
        });
    }
}

/// Where a URL begins in `word`: a scheme (`https://`, `http://`,
/// `mailto:`) or `www.` at the start or after a character that cannot be
/// part of a scheme.
fn url_start(word: &str) -> Option<usize> {
    const STARTS: [&str; 4] = ["https://", "http://", "mailto:", "www."];
    word.char_indices()
        .filter(|&(at, _)| {
            let before = word[..at].chars().next_back();
            before.is_none_or(|b| !b.is_ascii_alphanumeric())
        })
        .map(|(at, _)| at)
        .find(|&at| {
            let rest = &word[at..];
            STARTS.iter().any(|s| {
                rest.len() >= s.len()
                    && rest.as_bytes()[..s.len()].eq_ignore_ascii_case(s.as_bytes())
            })
        })
}

/// East Asian Wide and Fullwidth characters: between two of them, or one
/// of them and anything, a line may break.
fn is_wide(c: char) -> bool {
    c.width() == Some(2)
}

/// Marks a line may not begin with.
fn is_closing(c: char) -> bool {
    "，。、；：！？）］｝〕〉》」』】〙〗〟’”｠»…‥・ー々ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ〜～,.;:!?)]}%"
        .contains(c)
}

/// Marks a line may not end with.
fn is_opening(c: char) -> bool {
    "（［｛〔〈《「『【〘〖〝‘“｟«([{".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `text` fits `width`, unless it is one piece that
    /// cannot be cut.
    #[track_caller]
    fn assert_fits(text: &str, width: usize) {
        for line in text.lines() {
            assert!(
                columns(line) <= width || pieces(line.trim_start()).len() == 1,
                "{} columns: {line:?}",
                columns(line)
            );
        }
    }

    #[test]
    fn short_lines_are_left_alone() {
        let text = "a\n-- \n  indented  \n\n";
        assert_eq!(wrap(text, 78), text);
    }

    #[test]
    fn english_breaks_at_spaces_and_hangs_under_the_bullet() {
        let line = format!("  - {}", "word ".repeat(30).trim_end());
        let wrapped = wrap(&line, 30);
        assert_fits(&wrapped, 30);
        let lines: Vec<&str> = wrapped.lines().collect();
        assert!(lines[0].starts_with("  - word"));
        for line in &lines[1..] {
            assert!(line.starts_with("    word"), "{line:?}");
        }
        // Nothing lost or added but the breaks.
        assert_eq!(
            wrapped.split_whitespace().collect::<Vec<_>>(),
            line.split_whitespace().collect::<Vec<_>>()
        );
    }

    #[test]
    fn cjk_counts_two_columns_and_breaks_between_characters() {
        let text = "  全省基层干部脱贫攻坚专题培训班今日开班，学员来自各地驻村第一书记和乡镇干部，培训为期五天，内容涵盖产业扶贫、金融扶贫和电商扶贫。";
        let wrapped = wrap(text, 78);
        assert_fits(&wrapped, 78);
        let lines: Vec<&str> = wrapped.lines().collect();
        assert!(lines.len() >= 2, "{wrapped}");
        assert!(
            columns(lines[0]) >= 76,
            "the first line is filled: {wrapped}"
        );
        for line in &lines {
            assert!(
                line.starts_with("  ") && !line.starts_with("   "),
                "{line:?}"
            );
            // No line starts with closing punctuation.
            let first = line.trim_start().chars().next().unwrap();
            assert!(!is_closing(first), "{line:?}");
        }
        assert_eq!(wrapped.replace("\n  ", ""), text);
    }

    #[test]
    fn closing_punctuation_stays_with_the_character_before_it() {
        // 38 characters fill 76 columns; the 39th would end the line at 78,
        // and the comma after it may not begin the next.
        let text = format!("{}甲，乙丙", "字".repeat(38));
        let wrapped = wrap(&text, 78);
        let lines: Vec<&str> = wrapped.lines().collect();
        assert_eq!(lines[1], "甲，乙丙", "{wrapped}");
        // An opening bracket stays with what follows it.
        let text = format!("{}「引」", "字".repeat(38));
        let wrapped = wrap(&text, 78);
        assert!(
            wrapped.lines().nth(1).unwrap().starts_with("「引"),
            "{wrapped}"
        );
    }

    #[test]
    fn urls_are_never_cut() {
        let url = format!("https://news.example.cn/{}?token=abc", "a".repeat(100));
        for line in [
            format!("  {url}"),
            format!("退订：{url}"),
            format!("Unsubscribe: {url}"),
            format!("{} {url} tail", "lead ".repeat(12)),
        ] {
            let wrapped = wrap(&line, 78);
            assert!(
                wrapped
                    .lines()
                    .any(|l| l.trim_start() == url || l.ends_with(&url)),
                "{wrapped}"
            );
            assert_fits(&wrapped, 78);
        }
        // After a wide character, the URL moves to its own line.
        let wrapped = wrap(&format!("退订：{url}"), 78);
        assert_eq!(wrapped, format!("退订：\n{url}"));
    }

    #[test]
    fn a_url_inside_cjk_text_keeps_its_cjk_path() {
        let url =
            "https://新闻.example.cn/退订/很长的路径名称很长的路径名称很长的路径名称很长的路径名称";
        let wrapped = wrap(&format!("请访问：{url}"), 40);
        assert!(wrapped.lines().any(|l| l == url), "{wrapped}");
    }

    #[test]
    fn mixed_text_and_line_ends() {
        let text = "■ 建业备战中超第三轮 主帅强调防守细节 Henan Jianye prepare for round three of the Super League\r\nnext\n";
        let wrapped = wrap(text, 40);
        assert_fits(&wrapped, 40);
        assert!(wrapped.ends_with("\nnext\n"), "{wrapped:?}");
        assert!(!wrapped.contains('\r'));
        for line in wrapped.lines().skip(1).take_while(|l| *l != "next") {
            assert!(
                line.starts_with("   ") && !line.starts_with("    "),
                "{line:?}"
            );
        }
    }

    #[test]
    fn deep_indentation_still_makes_progress() {
        let line = format!("{}{}", " ".repeat(90), "word ".repeat(40));
        let wrapped = wrap(&line, 78);
        assert_eq!(
            wrapped.split_whitespace().count(),
            40,
            "every word kept: {wrapped}"
        );
        for line in wrapped.lines().skip(1) {
            assert_eq!(line.len() - line.trim_start().len(), MAX_HANG);
        }
    }
}
