//! One digest email as it goes on the wire (RFC 5322, built with lettre).
//!
//! Everything in a message is derived from the issue, the recipient and the
//! rendered templates, never from randomness or the hostname: the
//! `Message-ID` is stable for (issue, recipient) so a re-send after an
//! ambiguous failure carries the same id, and the MIME boundary is derived
//! too, so a dry run and the real send produce the same bytes.

use anyhow::{Context, Result};
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use super::render::Rendered;
use crate::model::{IssueKey, Site, Subscriber};

/// The unsubscribe URL of one recipient, as it goes into `List-Unsubscribe`
/// and the templates: `{{token}}` filled in (when there is a token), then
/// written as an ASCII URI (RFC 3986): a non-ASCII path, query or fragment
/// percent-encoded as UTF-8, an internationalised host in its punycode
/// (`xn--`) form, the scheme in lower case. `List-Unsubscribe` must hold
/// `<URI>` (RFC 2369), which a mail header can only carry in ASCII: lettre
/// would otherwise write RFC 2047 encoded words, and one-click unsubscribe
/// breaks. The config is validated with the same parse.
pub fn unsubscribe_url(configured: &str, token: Option<&str>) -> String {
    let filled = match token {
        Some(token) => configured.replace("{{token}}", token),
        None => configured.to_owned(),
    };
    match url::Url::parse(&filled) {
        Ok(url) => url.into(),
        Err(_) => filled,
    }
}

/// `<digest.2017-03-25.3f2a…@news.example.cn>`
pub fn message_id(site: &Site, issue: &IssueKey, email: &str) -> String {
    let digest = Sha256::digest(format!("{issue}\n{}", email.to_lowercase()));
    format!("<digest.{issue}.{}@{}>", hex(&digest[..12]), site.domain())
}

/// What every message of the list shares.
pub struct Envelope<'a> {
    pub site: &'a Site,
    pub from: &'a Mailbox,
    pub issue: &'a IssueKey,
    /// `Date`, already in the site's timezone.
    pub date: chrono::DateTime<chrono::FixedOffset>,
}

/// One recipient's message. `unsubscribe_url` is as [`unsubscribe_url`]
/// writes it (an ASCII URI): it goes into `List-Unsubscribe` as it is.
pub fn build(
    envelope: &Envelope<'_>,
    subscriber: &Subscriber,
    rendered: &Rendered,
    unsubscribe_url: Option<&str>,
) -> Result<Message> {
    let site = envelope.site;
    let to: Mailbox = Mailbox::new(
        subscriber.name.clone(),
        subscriber
            .email
            .parse()
            .with_context(|| format!("{:?} is not an email address", subscriber.email))?,
    );
    let id = message_id(site, envelope.issue, &subscriber.email);
    let header = |name: &'static str, value: String| {
        HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
    };

    let mut builder = Message::builder()
        .from(envelope.from.clone())
        .to(to.clone())
        .subject(rendered.subject.clone())
        .message_id(Some(id.clone()))
        .date(envelope.date.into())
        .raw_header(list_id(&site.title, site.domain()))
        .raw_header(header("Auto-Submitted", "auto-generated".into()));
    if let Some(url) = unsubscribe_url {
        builder = builder.raw_header(header("List-Unsubscribe", format!("<{url}>")));
        // One-click unsubscribe (RFC 8058) is a POST to an HTTPS URI.
        if url.starts_with("https://") || url.starts_with("http://") {
            builder = builder.raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".into(),
            ));
        }
    }
    let boundary = format!("bulletin-{}", hex(&Sha256::digest(id.as_bytes())[..12]));
    let body = MultiPart::alternative()
        .boundary(boundary)
        .singlepart(text_part(ContentType::TEXT_PLAIN, &rendered.text))
        .singlepart(text_part(ContentType::TEXT_HTML, &rendered.html));
    let mut message = builder
        .multipart(body)
        .context("cannot build the message")?;
    // lettre writes `Date` in UTC; readers show the site's own offset better.
    message
        .headers_mut()
        .insert_raw(header("Date", envelope.date.to_rfc2822()));
    // lettre folds only between words, and writes a long run of plain ASCII
    // (a title without spaces) on one line: those headers are written here
    // as encoded words instead (RFC 5322 allows 998 octets a line).
    if needs_encoded_words(&rendered.subject) {
        let value = encoded_words(&rendered.subject, "Subject: ".len());
        message
            .headers_mut()
            .insert_raw(pre_encoded("Subject", &rendered.subject, value));
    }
    for (name, mailbox) in [("From", envelope.from), ("To", &to)] {
        let too_long = |n: &&str| name_too_long(name, n, mailbox.email.as_ref());
        if let Some(display) = mailbox.name.as_deref().filter(too_long) {
            let value = with_address(
                encoded_words(display, name.len() + 2),
                &format!("<{}>", mailbox.email),
            );
            message
                .headers_mut()
                .insert_raw(pre_encoded(name, &mailbox.to_string(), value));
        }
    }
    Ok(message)
}

/// The longest header line written (RFC 5322 recommends 78 characters,
/// requires at most 998).
const LINE: usize = 78;

/// A header value already encoded and folded: ASCII, lines of at most
/// [`LINE`] characters.
fn pre_encoded(name: &'static str, raw: &str, encoded: String) -> HeaderValue {
    debug_assert!(encoded.is_ascii());
    HeaderValue::dangerous_new_pre_encoded(
        HeaderName::new_from_ascii_str(name),
        raw.to_owned(),
        encoded,
    )
}

/// Whether lettre would write `text` (unstructured, like a subject) with a
/// line longer than [`LINE`]: it writes runs of plain ASCII as they are,
/// folding only at spaces, and encodes (and folds) the rest.
fn needs_encoded_words(text: &str) -> bool {
    text.split(' ')
        .any(|word| word.len() > LINE - "Subject: ".len() - 2 && word.is_ascii())
}

/// Whether lettre would write the header `header: "display" <address>`
/// with a line longer than [`LINE`]: it writes an ASCII display name as one
/// atom or quoted string, on one line with the address (a non-ASCII one
/// as encoded words, folded).
fn name_too_long(header: &str, display: &str, address: &str) -> bool {
    let quoted = display.len() + 2 + display.matches(['"', '\\']).count();
    display.is_ascii() && header.len() + ": ".len() + quoted + " <>".len() + address.len() > LINE
}

/// `words` then `address` (`<…>`), on a new line when the last one has no
/// room for it.
fn with_address(mut words: String, address: &str) -> String {
    let last = words.rsplit("\r\n").next().unwrap_or_default().len();
    words.push_str(if last + 1 + address.len() > LINE {
        "\r\n "
    } else {
        " "
    });
    words.push_str(address);
    words
}

/// `text` as RFC 2047 encoded words (UTF-8, base64), each of whole
/// characters, joined by folds, every line at most [`LINE`] characters
/// (the first already holds `used`). Decoders join adjacent encoded words
/// without the folding space, so this decodes to `text` exactly.
fn encoded_words(text: &str, used: usize) -> String {
    use base64::Engine as _;
    const WRAP: usize = "=?utf-8?b?".len() + "?=".len();
    let mut out = String::with_capacity(text.len() * 2);
    let mut rest = text;
    // Characters already on the current line.
    let mut start = used;
    while !rest.is_empty() {
        let room = LINE.saturating_sub(start + WRAP) / 4 * 3;
        let mut cut = room.min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 && start > 1 {
            // Not one character fits on this line: go on to the next (a
            // character is at most 4 bytes, 8 characters of base64).
            out.push_str("\r\n ");
            start = 1;
            continue;
        }
        let cut = cut.max(rest.chars().next().map_or(0, char::len_utf8));
        let encoded = base64::engine::general_purpose::STANDARD.encode(&rest.as_bytes()[..cut]);
        out.push_str("=?utf-8?b?");
        out.push_str(&encoded);
        out.push_str("?=");
        rest = &rest[cut..];
        if !rest.is_empty() {
            out.push_str("\r\n ");
        }
        start = 1;
    }
    out
}

/// One text part, UTF-8 with CRLF line ends. Text that is not plain ASCII
/// goes out quoted-printable: markup and ASCII stay readable, the encoding
/// survives any relay (8bit needs 8BITMIME on every hop, and a relay that
/// downgrades it breaks the DKIM signature), and base64 text parts are a
/// spam signal (rspamd's `MIME_BASE64_TEXT`). The cost is size: a CJK
/// character takes 9 bytes instead of base64's 4 (the example site's
/// 30-item email is 72 KB, 47 KB in base64; Gmail clips above ~102 KB).
fn text_part(content_type: ContentType, text: &str) -> SinglePart {
    let text = crlf_line_ends(text);
    let part = SinglePart::builder().header(content_type);
    if text.is_ascii() {
        return part.body(text);
    }
    part.body(Body::dangerous_pre_encoded(
        quoted_printable(text.as_bytes()),
        ContentTransferEncoding::QuotedPrintable,
    ))
}

/// The longest line of quoted-printable output, its soft break `=` included
/// (RFC 2045 §6.7).
const QP_LINE: usize = 76;

/// `bytes` (CRLF line ends) as quoted-printable (RFC 2045 §6.7): printable
/// ASCII but `=` as it is, spaces and tabs too unless they end a line, every
/// other byte as `=XX`, lines cut by a soft break `=` at 76 characters
/// (never inside an `=XX`), the CRLF line ends kept. Written here because it
/// runs on every message of every send: runs of plain bytes are copied
/// whole, and it takes half the instructions of a byte-by-byte encoder and
/// a quarter of the `quoted_printable` crate's (through lettre) on CJK text
/// (callgrind), where that crate took a quarter of the time of composing a
/// message.
fn quoted_printable(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 2 + bytes.len() / 16);
    let mut lines = bytes.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last_line = lines.peek().is_none();
        // The CR of a CRLF is the line end, not a character of the line.
        let line = match line.split_last() {
            Some((b'\r', rest)) if !last_line => rest,
            _ => line,
        };
        quoted_printable_line(line, &mut out);
        if !last_line {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Bytes written as they are inside a line (white space at a line's end is
/// encoded, see [`quoted_printable_line`]).
const QP_PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = matches!(b as u8, b'!'..=b'<' | b'>'..=b'~' | b' ' | b'\t');
        b += 1;
    }
    table
};

/// One line (without its line end) as quoted-printable, soft breaks
/// included, into `out`.
fn quoted_printable_line(line: &[u8], out: &mut Vec<u8>) {
    fn escape(byte: u8, out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        out.extend_from_slice(&[
            b'=',
            HEX[usize::from(byte >> 4)],
            HEX[usize::from(byte & 15)],
        ]);
    }
    let plain = |b: u8| QP_PLAIN[usize::from(b)];
    let Some((&end, mut rest)) = line.split_last() else {
        return;
    };
    // Characters on the output line; a soft break needs one more.
    let mut used = 0;
    while let Some(&first) = rest.first() {
        let room = QP_LINE - 1 - used;
        if plain(first) && room > 0 {
            // As much of the run of plain bytes as the line has room for.
            let run = rest.iter().position(|&b| !plain(b)).unwrap_or(rest.len());
            let take = run.min(room);
            out.extend_from_slice(&rest[..take]);
            used += take;
            rest = &rest[take..];
        } else if !plain(first) && room >= 3 {
            escape(first, out);
            used += 3;
            rest = &rest[1..];
        } else {
            out.extend_from_slice(b"=\r\n");
            used = 0;
        }
    }
    // The last byte needs no room for a soft break after it; white space
    // there is encoded (a relay may strip it from a line's end).
    let plain_end = plain(end) && end != b' ' && end != b'\t';
    if used + if plain_end { 1 } else { 3 } > QP_LINE {
        out.extend_from_slice(b"=\r\n");
    }
    if plain_end {
        out.push(end);
    } else {
        escape(end, out);
    }
}

/// `text` with every line feed preceded by a carriage return.
fn crlf_line_ends(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut rest = text;
    while let Some(at) = rest.find('\n') {
        let line = &rest[..at];
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push_str("\r\n");
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out
}

/// `List-Id: <phrase> <digest.domain>` (RFC 2919). The phrase is written
/// as is when it is plain ASCII words (folded between them), else as RFC
/// 2047 encoded words, so quotes, `<`, `,`, CJK or a word too long for a
/// line in a site title can never break the header.
fn list_id(title: &str, domain: &str) -> HeaderValue {
    const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~ ";
    let used = "List-Id: ".len();
    let title = title.trim();
    let plain = title
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c))
        && title.split(' ').all(|word| word.len() < LINE - used);
    let phrase = if plain {
        let mut phrase = String::with_capacity(title.len() + 16);
        let mut line = used;
        for (i, word) in title.split(' ').enumerate() {
            if i > 0 {
                if line + 1 + word.len() > LINE {
                    phrase.push_str("\r\n ");
                    line = 1;
                } else {
                    phrase.push(' ');
                    line += 1;
                }
            }
            phrase.push_str(word);
            line += word.len();
        }
        phrase
    } else {
        encoded_words(title, used)
    };
    let value = with_address(phrase, &format!("<digest.{domain}>"));
    HeaderValue::dangerous_new_pre_encoded(
        HeaderName::new_from_ascii_str("List-Id"),
        value.clone(),
        value,
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unsubscribe_url_goes_out_as_an_ascii_uri() {
        let url = unsubscribe_url(
            "https://新闻.example.cn/退订?token={{token}}#底",
            Some("ab12"),
        );
        assert_eq!(
            url,
            "https://xn--efvy88h.example.cn/%E9%80%80%E8%AE%A2?token=ab12#%E5%BA%95"
        );
        // Already ASCII: unchanged, and the form is stable.
        assert_eq!(unsubscribe_url(&url, None), url);
        assert_eq!(
            unsubscribe_url("https://news.example.cn/u?token={{token}}", Some("ab12")),
            "https://news.example.cn/u?token=ab12"
        );
        assert_eq!(
            unsubscribe_url("mailto:退订@news.example.cn", None),
            "mailto:%E9%80%80%E8%AE%A2@news.example.cn"
        );
    }

    fn decode(words: &str) -> String {
        use base64::Engine as _;
        let bytes: Vec<u8> = words
            .split("\r\n ")
            // No room on the first line: the words begin on the next one.
            .filter(|w| !w.is_empty())
            .flat_map(|w| {
                let inner = w
                    .strip_prefix("=?utf-8?b?")
                    .unwrap()
                    .strip_suffix("?=")
                    .unwrap();
                base64::engine::general_purpose::STANDARD
                    .decode(inner)
                    .unwrap()
            })
            .collect();
        String::from_utf8(bytes).expect("each word holds whole characters")
    }

    #[test]
    fn encoded_words_fold_to_78_and_decode_to_the_text() {
        for text in [
            "A".repeat(2000),
            "新".repeat(2000),
            "𝄞a".repeat(300),
            "短".to_owned(),
            "a b  c".to_owned(),
        ] {
            for used in [0, 4, 9, 40, 77, 78, 90] {
                let words = encoded_words(&text, used);
                assert_eq!(decode(&words), text);
                let mut lines = words.split("\r\n");
                let first = lines.next().unwrap();
                assert!(
                    used + first.len() <= LINE || first.is_empty(),
                    "{used}: {first}"
                );
                for line in lines {
                    assert!(line.len() <= LINE && line.len() > 1, "{line:?}");
                }
            }
        }
    }

    #[test]
    fn quoted_printable_round_trips_within_76_columns() {
        let long_ascii = "word ".repeat(40);
        let cjk = "全省基层干部脱贫攻坚专题培训班今日开班".repeat(5);
        for text in [
            "",
            "plain",
            "-- \r\nsignature",
            "a = b\r\n\r\nend\r\n",
            "trailing space \r\ntab\t\r\n",
            "lone\rcarriage return",
            long_ascii.as_str(),
            cjk.as_str(),
            &format!("{}={}", "x".repeat(74), "y".repeat(80)),
            &format!("{}é", "x".repeat(73)),
            &format!("{}é", "x".repeat(74)),
            "混合 text · 退订：https://news.example.cn/unsubscribe?token=abc",
        ] {
            let encoded = quoted_printable(text.as_bytes());
            assert!(encoded.is_ascii(), "{text:?}");
            let encoded_text = std::str::from_utf8(&encoded).unwrap();
            for line in encoded_text.split("\r\n") {
                assert!(line.len() <= QP_LINE, "{} in {encoded_text:?}", line.len());
                assert!(
                    !line.ends_with(' ') && !line.ends_with('\t'),
                    "white space ends {line:?}"
                );
            }
            assert!(!encoded_text.replace("\r\n", "").contains(['\r', '\n']));
            // An independent decoder gets the text back.
            let decoded =
                mail_parser::decoders::quoted_printable::quoted_printable_decode(&encoded)
                    .unwrap_or_else(|| panic!("mail-parser refuses {encoded_text:?}"));
            assert_eq!(String::from_utf8(decoded).unwrap(), text, "{encoded_text}");
        }
        // Text that needs no encoding stays as it is.
        assert_eq!(quoted_printable(b"a b\r\nc"), b"a b\r\nc");
        assert_eq!(quoted_printable("=é".as_bytes()), b"=3D=C3=A9");
    }

    #[test]
    fn list_id_folds_plain_titles_and_encodes_the_rest() {
        let value = |title: &str| {
            let header = list_id(title, "news.example.cn");
            let mut headers = lettre::message::header::Headers::new();
            headers.insert_raw(header);
            headers.to_string()
        };
        assert_eq!(
            value("My News"),
            "List-Id: My News <digest.news.example.cn>\r\n"
        );
        assert_eq!(
            value("映象网"),
            "List-Id: =?utf-8?b?5pig6LGh572R?= <digest.news.example.cn>\r\n"
        );
        let long = value(&"Henan News ".repeat(40));
        assert!(long.split("\r\n").all(|l| l.len() <= LINE));
        assert!(long.starts_with("List-Id: Henan News Henan"));
        let word = value(&"A".repeat(200));
        assert!(word.starts_with("List-Id: =?utf-8?b?"));
        assert!(word.split("\r\n").all(|l| l.len() <= LINE));
    }
}
