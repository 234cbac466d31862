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
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
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
        .singlepart(SinglePart::plain(rendered.text.clone()))
        .singlepart(SinglePart::html(rendered.html.clone()));
    let mut message = builder
        .multipart(body)
        .context("cannot build the message")?;
    // lettre writes `Date` in UTC; readers show the site's own offset better.
    message
        .headers_mut()
        .insert_raw(header("Date", envelope.date.to_rfc2822()));
    Ok(message)
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
