//! Text hygiene shared by every output: characters XML cannot carry, one-line
//! fields, keyword splitting, and HTML cleaning for feed content.
//!
//! Input from real newsroom exports holds stray control characters and
//! page-relative links; feeds and mail must never carry either.

use std::borrow::Cow;

use url::Url;

/// True for characters XML 1.0 forbids or discourages (C0 controls other than
/// TAB/LF/CR, DEL and C1 controls, non-characters). A single one makes a feed
/// unreadable for strict parsers.
pub fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}'
        | '\u{7F}'..='\u{9F}'
        | '\u{FDD0}'..='\u{FDEF}' | '\u{FFFE}' | '\u{FFFF}')
}

/// `text` without the characters of [`is_unsafe_char`].
pub fn strip_unsafe(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_unsafe_char) {
        Cow::Owned(text.chars().filter(|&c| !is_unsafe_char(c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// True when [`one_line`] would return `text` unchanged: no unsafe
/// characters, no whitespace but single inner spaces. A byte scan; the
/// multi-byte characters that need a closer look all start with 0xC2, 0xE1,
/// 0xE2, 0xE3 or 0xEF.
pub fn is_one_line(text: &str) -> bool {
    let bytes = text.as_bytes();
    // Ids, slugs and links are mostly printable ASCII without spaces: one
    // branch-free pass (it vectorizes) settles those.
    let printable = |chunk: &[u8]| {
        chunk
            .iter()
            .fold(true, |ok, &b| ok & (0x21..=0x7e).contains(&b))
    };
    if bytes.chunks(32).all(printable) {
        return true;
    }
    if bytes.first() == Some(&b' ') || bytes.last() == Some(&b' ') {
        return false;
    }
    let mut previous_space = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            if b < 0x20 || b == 0x7f || (b == b' ' && previous_space) {
                return false;
            }
            previous_space = b == b' ';
            i += 1;
            continue;
        }
        previous_space = false;
        if matches!(b, 0xC2 | 0xE1 | 0xE2 | 0xE3 | 0xEF) {
            let width = if b == 0xC2 { 2 } else { 3 };
            let c = text[i..].chars().next().expect("a char starts here");
            if c.is_whitespace() || is_unsafe_char(c) {
                return false;
            }
            i += width;
        } else {
            i += 1;
        }
    }
    true
}

/// A one-line field (title, name, keyword): unsafe characters dropped, runs
/// of whitespace (line breaks included) folded to one space, ends trimmed.
pub fn one_line(text: &str) -> String {
    one_line_cow(text).into_owned()
}

/// [`one_line`], borrowing `text` when it is one line already.
pub fn one_line_cow(text: &str) -> Cow<'_, str> {
    if is_one_line(text) {
        return Cow::Borrowed(text);
    }
    let text = strip_unsafe(text);
    let mut out = String::with_capacity(text.len());
    for word in text.split(char::is_whitespace) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    Cow::Owned(out)
}

/// Splits a keyword line such as `基层干部;群众路线；干部素质、深入基层;` on
/// `;` `；` `,` `，` `、`, trimming each piece and dropping empty ones.
pub fn split_keywords(line: &str) -> Vec<String> {
    keyword_pieces(line)
        .map(one_line)
        .filter(|k| !k.is_empty())
        .collect()
}

/// What separates the keywords of a keyword line.
pub const KEYWORD_SEPARATORS: [char; 5] = [';', '；', ',', '，', '、'];

/// The pieces of a keyword line split at [`KEYWORD_SEPARATORS`], not
/// cleaned. Most lines are one keyword (a list's entry): a byte scan for
/// the bytes a separator starts with (`;` `,`, and 0xEF / 0xE3, the first
/// bytes of the full-width ones; Chinese characters start with 0xE4–0xE9)
/// returns those whole without matching characters.
pub fn keyword_pieces(line: &str) -> impl Iterator<Item = &str> {
    let may_split = line.bytes().any(|b| matches!(b, b';' | b',' | 0xEF | 0xE3));
    let (whole, split) = if may_split {
        (None, Some(line.split(KEYWORD_SEPARATORS)))
    } else {
        (Some(line), None)
    };
    whole.into_iter().chain(split.into_iter().flatten())
}

/// Keywords without repeats, first occurrence kept. (Short lists, the usual
/// case, by a scan; long ones by hashing.)
pub fn dedup_keywords(keywords: Vec<String>) -> Vec<String> {
    if keywords.len() > 16 {
        // Input decides the length: stay linear for long lists.
        let mut seen = std::collections::HashSet::with_capacity(keywords.len());
        return keywords
            .into_iter()
            .filter(|k| seen.insert(k.clone()))
            .collect();
    }
    let mut unique: Vec<String> = Vec::with_capacity(keywords.len());
    for keyword in keywords {
        if !unique.contains(&keyword) {
            unique.push(keyword);
        }
    }
    unique
}

/// Article HTML made safe to publish: scripts, frames, styles and event
/// handlers removed; every `href`/`src` absolute against the article's own
/// URL (so `../img/a.jpg` resolves like a browser would); only http, https
/// and mailto links kept. Building the sanitizer is costly: keep one and
/// clean many documents with it.
pub struct HtmlCleaner {
    builder: ammonia::Builder<'static>,
}

impl Default for HtmlCleaner {
    fn default() -> Self {
        let mut builder = ammonia::Builder::default();
        builder
            .url_schemes(["http", "https", "mailto"].into_iter().collect())
            .link_rel(None);
        HtmlCleaner { builder }
    }
}

impl HtmlCleaner {
    pub fn clean(&mut self, html: &str, base: &Url) -> String {
        let html = strip_unsafe(html);
        let cleaned = self
            .builder
            .url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()))
            .clean(&html)
            .to_string();
        // html5ever writes U+00A0 as `&nbsp;`; a named entity is fine inside the
        // escaped HTML of a feed but not for consumers that decode only XML's five.
        // Character references (`&#1;`) come out of the sanitizer decoded:
        // strip what XML cannot carry once more.
        strip_unsafe(&cleaned.replace("&nbsp;", "\u{a0}")).into_owned()
    }
}

/// [`HtmlCleaner::clean`] for a single document.
#[cfg(test)]
pub fn clean_html(html: &str, base: &Url) -> String {
    HtmlCleaner::default().clean(html, base)
}

/// Plain text of an HTML fragment: tags dropped, script/style bodies dropped,
/// entities decoded, whitespace folded.
pub fn html_to_text(html: &str) -> String {
    let mut html = strip_unsafe(html).into_owned();
    // Block boundaries separate words once the tags are gone.
    for tag in [
        "</p>", "<br", "</div>", "</li>", "</h1>", "</h2>", "</h3>", "</td>", "</tr>",
    ] {
        html = html.replace(tag, &format!(" {tag}"));
    }
    let without_tags = ammonia::Builder::empty().clean(&html).to_string();
    one_line(&html_escape::decode_html_entities(&without_tags))
}

/// A headline as plain text: tags dropped and entities decoded when it holds
/// any (`<b>快讯</b>` → `快讯`, `AT&amp;T` → `AT&T`), else unchanged.
pub fn plain_title(title: &str) -> String {
    if title.contains(['<', '&']) {
        html_to_text(title)
    } else {
        title.to_owned()
    }
}

/// Splits a byline written as `Name <address>` into its parts.
pub fn split_mailbox(byline: &str) -> (&str, Option<&str>) {
    if let Some(open) = byline.rfind('<')
        && let Some(address) = byline[open + 1..].strip_suffix('>')
        && address.contains('@')
        && !address.contains([' ', '<'])
    {
        let name = byline[..open].trim().trim_matches('"').trim();
        return (if name.is_empty() { address } else { name }, Some(address));
    }
    (byline, None)
}

/// At most `max` characters (not bytes) of `text`, with `…` when cut.
pub fn truncate_chars(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => {
            let head = text[..cut].trim_end();
            Cow::Owned(format!("{head}…"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_pieces_split_like_the_separators_say() {
        for line in [
            "基层干部",
            "基层干部;群众路线；干部素质、深入基层;",
            "a,b，c",
            " 空 格 ",
            "ＡＩ（人工智能）",
            "",
            "「引号」",
        ] {
            let fast: Vec<&str> = keyword_pieces(line).collect();
            let plain: Vec<&str> = line.split(KEYWORD_SEPARATORS).collect();
            assert_eq!(fast, plain, "{line:?}");
        }
    }

    #[test]
    fn strips_controls_but_keeps_tabs_newlines_and_cjk() {
        assert_eq!(
            strip_unsafe("a\u{B}b\u{FFFE}c\u{85}\t\n标题"),
            "abc\t\n标题"
        );
        assert!(matches!(strip_unsafe("clean 标题"), Cow::Borrowed(_)));
    }

    #[test]
    fn one_line_drops_unsafe_characters_and_folds_whitespace() {
        assert_eq!(
            one_line(" 映\u{FFFE}象网\n 新闻\u{B}中心\t"),
            "映象网 新闻中心"
        );
    }

    #[test]
    fn is_one_line_agrees_with_one_line() {
        for text in [
            "俯下身子深入基层 倾听群众呼声",
            "“四心”好干部，、。",
            "a  b",
            " a",
            "a\u{3000}b",
            "a\u{a0}b",
            "a\u{85}b",
            "x\u{FFFE}",
            "x\u{FDD0}",
            "tab\there",
            "全角：；（）",
            "",
            // The printable-ASCII fast path and its edges.
            "https://news.example.cn/s030/2025/0105/393889.html",
            &"a".repeat(100),
            &format!("{} b", "a".repeat(40)),
            &format!("{}\u{7f}", "a".repeat(33)),
            &format!("{}\n", "a".repeat(31)),
            "~!",
        ] {
            assert_eq!(is_one_line(text), one_line(text) == text, "{text:?}");
        }
    }

    #[test]
    fn splits_the_seed_keyword_line() {
        let line = "基层干部;群众路线;干部素质;实干奉献;深入基层;群众呼声;";
        assert_eq!(
            split_keywords(line),
            [
                "基层干部",
                "群众路线",
                "干部素质",
                "实干奉献",
                "深入基层",
                "群众呼声"
            ]
        );
        assert_eq!(split_keywords(" a ；b，c、 d ,, "), ["a", "b", "c", "d"]);
    }

    #[test]
    fn clean_html_absolutises_and_removes_scripts() {
        let base = Url::parse("https://news.example.cn/news/yushi/2017/0323/5034.html").unwrap();
        let html = r#"<p onclick="x()">正文<img src="../img/a.jpg"><a href="/a.html">链接</a><script>alert(1)</script><iframe src="//x"></iframe></p>"#;
        let clean = clean_html(html, &base);
        assert!(
            clean.contains(r#"src="https://news.example.cn/news/yushi/2017/img/a.jpg""#),
            "{clean}"
        );
        assert!(
            clean.contains(r#"href="https://news.example.cn/a.html""#),
            "{clean}"
        );
        assert!(
            !clean.contains("script") && !clean.contains("iframe") && !clean.contains("onclick"),
            "{clean}"
        );
        assert!(!clean.contains("javascript"));
    }

    #[test]
    fn html_to_text_decodes_entities_and_drops_scripts() {
        assert_eq!(
            html_to_text("<p>a &amp; b</p>\n<script>x</script><p>c&nbsp;d</p>"),
            "a & b c d"
        );
    }

    #[test]
    fn titles_lose_markup_but_keep_text() {
        assert_eq!(plain_title("<b>快讯</b>：A < B & C"), "快讯：A < B & C");
        assert_eq!(plain_title("AT&amp;T 5G"), "AT&T 5G");
        assert_eq!(plain_title("plain"), "plain");
    }

    #[test]
    fn bylines_with_addresses_split() {
        assert_eq!(
            split_mailbox("Jane Doe <jane@example.org>"),
            ("Jane Doe", Some("jane@example.org"))
        );
        assert_eq!(split_mailbox("杜鹃花"), ("杜鹃花", None));
        assert_eq!(split_mailbox("a <b>"), ("a <b>", None));
    }

    #[test]
    fn truncates_by_characters() {
        assert_eq!(truncate_chars("俯下身子深入基层", 4), "俯下身子…");
        assert_eq!(truncate_chars("短", 4), "短");
    }
}
