//! One digest email as it goes on the wire (RFC 5322, built with lettre).
//!
//! Everything in a message is derived from the issue, the recipient and the
//! rendered templates, never from randomness or the hostname: the
//! `Message-ID` is stable for (issue, recipient) so a re-send after an
//! ambiguous failure carries the same id, and the MIME boundary is derived
//! too, so a dry run and the real send produce the same bytes.

use anyhow::{Context, Result};
use hmac::{Hmac, Mac};
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use super::render::Rendered;
use crate::model::{Site, Subscriber};

/// The per-recipient unsubscribe token: an HMAC of the lower-cased address
/// keyed with a secret, so it cannot be guessed from the address alone.
pub fn unsubscribe_token(secret: &[u8], email: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(email.to_lowercase().as_bytes());
    hex(&mac.finalize().into_bytes()[..16])
}

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
pub fn message_id(site: &Site, issue: &str, email: &str) -> String {
    let digest = Sha256::digest(format!("{issue}\n{}", email.to_lowercase()));
    format!("<digest.{issue}.{}@{}>", hex(&digest[..12]), site.domain())
}

/// What every message of the list shares.
pub struct Envelope<'a> {
    pub site: &'a Site,
    pub from: &'a Mailbox,
    pub issue: &'a str,
    /// `Date`, already in the site's timezone.
    pub date: chrono::DateTime<chrono::FixedOffset>,
}

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
        .to(to)
        .subject(rendered.subject.clone())
        .message_id(Some(id.clone()))
        .date(envelope.date.into())
        .raw_header(list_id(&site.title, site.domain()))
        .raw_header(header("Auto-Submitted", "auto-generated".into()));
    if let Some(url) = unsubscribe_url {
        // Already in this form when it comes from `unsubscribe_url`; made
        // sure of here, where the header is written.
        let url = self::unsubscribe_url(url, None);
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
    Ok(message)
}

/// One text part, UTF-8 with CRLF line ends. Text that is not plain ASCII
/// goes out as base64 in 76-column lines, encoded here in one pass: for CJK
/// it is the smaller encoding (lettre would pick quoted-printable for
/// markup-heavy HTML, and insert each CR with a copy of the rest).
fn text_part(content_type: ContentType, text: &str) -> SinglePart {
    let text = crlf_line_ends(text);
    let part = SinglePart::builder().header(content_type);
    if text.is_ascii() {
        return part.body(text);
    }
    let encoded = base64_lines(text.as_bytes());
    part.body(Body::dangerous_pre_encoded(
        encoded,
        ContentTransferEncoding::Base64,
    ))
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

/// Base64 (RFC 2045) in lines of 76 characters joined by CRLF.
fn base64_lines(bytes: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    const LINE_INPUT: usize = 57; // 76 characters of output
    let mut out = Vec::with_capacity(bytes.len().div_ceil(LINE_INPUT) * 78);
    let mut line = [0u8; 76];
    for (i, chunk) in bytes.chunks(LINE_INPUT).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        let n = base64::engine::general_purpose::STANDARD
            .encode_slice(chunk, &mut line)
            .expect("76 bytes hold the base64 of 57");
        out.extend_from_slice(&line[..n]);
    }
    out
}

/// `List-Id: <phrase> <digest.domain>` (RFC 2919). The phrase is written
/// as is when it is plain ASCII words, else as RFC 2047 encoded-words, so
/// quotes, `<`, `,` or CJK in a site title can never break the header.
fn list_id(title: &str, domain: &str) -> HeaderValue {
    const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~ ";
    let plain = title
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c));
    let phrase = if plain {
        title.trim().to_owned()
    } else {
        use base64::Engine as _;
        // Encoded-words of at most 75 characters: 45 bytes of UTF-8 each.
        let mut words = Vec::new();
        let mut chunk = String::new();
        for c in title.chars() {
            if chunk.len() + c.len_utf8() > 45 {
                words.push(std::mem::take(&mut chunk));
            }
            chunk.push(c);
        }
        words.push(chunk);
        words
            .iter()
            .map(|w| {
                format!(
                    "=?utf-8?b?{}?=",
                    base64::engine::general_purpose::STANDARD.encode(w)
                )
            })
            .collect::<Vec<_>>()
            .join("\r\n ")
    };
    let value = format!("{phrase} <digest.{domain}>");
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
}
