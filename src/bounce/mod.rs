//! Bounces and complaints: what `bulletin bounces` reads.
//!
//! A report is a delivery status notification (RFC 3464:
//! `multipart/report; report-type=delivery-status`, one block of
//! `Final-Recipient`, `Action`, `Status` per recipient) or an abuse report
//! (ARF, RFC 5965: `multipart/report; report-type=feedback-report`,
//! `Feedback-Type: abuse`). [`parse`] turns the bytes of one message into a
//! [`Report`] (MIME by `mail-parser`; the report fields are read here), and
//! [`Finder::events`] decides whom it is about and what it means, as
//! ledger [`BounceEvent`]s:
//!
//! - whom: the token in the address the report was sent to, when it is a
//!   `digest.bounce_address` (VERP: `X-Original-To`, `Delivered-To`, `To`,
//!   and the returned message's `Return-Path`), resolved like an
//!   unsubscribe token; else the report's `Final-Recipient` /
//!   `Original-Recipient` (or ARF `Original-Rcpt-To`, the returned
//!   message's `To`) — but only an address bulletin sends to;
//! - what: `5.x.x` with `Action: failed` is a hard bounce, `4.x.x` or
//!   `Action: delayed` a soft one, an ARF report a complaint; `delivered`,
//!   `relayed` and `expanded` are nothing.
//!
//! A report is keyed by its Message-ID (else a hash of its bytes), so
//! reading it again counts it once. Any bytes may come in (a mailbox holds
//! whatever was sent to it): nothing here panics on input, and what is not
//! a report is said so, never guessed at.

pub mod read;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use mail_parser::{MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

use crate::config::BounceAddress;
use crate::ledger::{BounceEvent, BounceKind};
use crate::model::RecipientKey;
use crate::token::Resolver;

/// One recipient block of a delivery status notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientStatus {
    /// `Final-Recipient`'s address (after `rfc822;`).
    pub final_recipient: Option<String>,
    pub original_recipient: Option<String>,
    /// `Action`, lower-cased (`failed`, `delayed`, `delivered`, ...).
    pub action: String,
    /// `Status` (`5.1.1`).
    pub status: String,
}

/// What a report reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A delivery status notification.
    Delivery(Vec<RecipientStatus>),
    /// An abuse report; `recipients` from `Original-Rcpt-To` and the
    /// returned message's `To`.
    Complaint {
        feedback_type: String,
        recipients: Vec<String>,
    },
}

/// One report, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Its Message-ID (`<...>`), else `sha256:` and a hash of its bytes.
    pub id: String,
    /// Its `Date:`, when it has a sensible one.
    pub date: Option<DateTime<Utc>>,
    pub kind: Kind,
    /// Addresses that may be the VERP envelope sender: where the report was
    /// delivered to, and the returned message's `Return-Path`.
    pub envelope: Vec<String>,
}

/// Why a message is not a report bulletin reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAReport(pub String);

impl std::fmt::Display for NotAReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads one message.
pub fn parse(bytes: &[u8]) -> Result<Report, NotAReport> {
    let not = |why: &str| NotAReport(why.to_owned());
    let message = MessageParser::default()
        .parse(bytes)
        .ok_or_else(|| not("not a mail message"))?;
    let id = match message
        .message_id()
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        Some(id) => format!("<{}>", id.trim_start_matches('<').trim_end_matches('>')),
        None => format!(
            "sha256:{}",
            data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
        ),
    };
    let date = message
        .date()
        .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0));
    let mut envelope = addresses_in(
        message.headers_raw(),
        &[
            "x-original-to",
            "delivered-to",
            "envelope-to",
            "x-envelope-to",
            "to",
        ],
    );
    let mut delivery = None;
    let mut feedback = None;
    let mut returned_to = Vec::new();
    for part in &message.parts {
        let Some(ctype) = part.content_type() else {
            continue;
        };
        let subtype = ctype.subtype().unwrap_or("").to_ascii_lowercase();
        match (
            ctype.ctype().to_ascii_lowercase().as_str(),
            subtype.as_str(),
        ) {
            ("message", "delivery-status" | "global-delivery-status") if delivery.is_none() => {
                delivery = Some(String::from_utf8_lossy(part.contents()).into_owned());
            }
            ("message", "feedback-report") if feedback.is_none() => {
                feedback = Some(String::from_utf8_lossy(part.contents()).into_owned());
            }
            ("message", "rfc822" | "global") => {
                if let Some(original) = part.message() {
                    envelope.extend(addresses_in(original.headers_raw(), &["return-path"]));
                    returned_to.extend(addresses_in(original.headers_raw(), &["to"]));
                }
            }
            ("text", "rfc822-headers") => {
                if let Some(original) = MessageParser::default().parse_headers(part.contents()) {
                    envelope.extend(addresses_in(original.headers_raw(), &["return-path"]));
                    returned_to.extend(addresses_in(original.headers_raw(), &["to"]));
                }
            }
            _ => {}
        }
    }
    let kind = if let Some(text) = delivery {
        let blocks = blocks(&text);
        let recipients: Vec<RecipientStatus> = blocks
            .iter()
            .filter(|b| field(b, "final-recipient").is_some() || field(b, "action").is_some())
            .map(|b| RecipientStatus {
                final_recipient: field(b, "final-recipient").and_then(typed_address),
                original_recipient: field(b, "original-recipient").and_then(typed_address),
                action: field(b, "action").unwrap_or("").trim().to_ascii_lowercase(),
                status: field(b, "status")
                    .and_then(|s| s.split_whitespace().next())
                    .unwrap_or("")
                    .to_owned(),
            })
            .collect();
        if recipients.is_empty() {
            return Err(not("a delivery status notification without any recipient"));
        }
        Kind::Delivery(recipients)
    } else if let Some(text) = feedback {
        let fields: Vec<(String, String)> = blocks(&text).into_iter().flatten().collect();
        let Some(feedback_type) = field(&fields, "feedback-type") else {
            return Err(not("a feedback report without Feedback-Type"));
        };
        let mut recipients: Vec<String> = fields
            .iter()
            .filter(|(name, _)| name == "original-rcpt-to")
            .filter_map(|(_, value)| typed_address(value).or_else(|| bare_address(value)))
            .collect();
        recipients.extend(returned_to);
        Kind::Complaint {
            feedback_type: feedback_type.trim().to_ascii_lowercase(),
            recipients,
        }
    } else {
        return Err(not(
            "not a delivery status notification (RFC 3464) or an abuse report (RFC 5965)",
        ));
    };
    Ok(Report {
        id,
        date,
        kind,
        envelope,
    })
}

/// The report fields of a `message/delivery-status` or
/// `message/feedback-report` body: blocks separated by blank lines, each a
/// list of (lower-cased name, unfolded value).
fn blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut block: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = block.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            block.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}

fn field<'a>(block: &'a [(String, String)], name: &str) -> Option<&'a str> {
    block
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The address of an `rfc822; a@b` field (other address types: `None`).
fn typed_address(value: &str) -> Option<String> {
    let (kind, address) = value.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("rfc822") && !kind.trim().eq_ignore_ascii_case("utf-8") {
        return None;
    }
    bare_address(address)
}

/// `a@b`, `<a@b>`: the address, lower-cased, when it looks like one.
fn bare_address(text: &str) -> Option<String> {
    let address = text
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let (local, domain) = address.rsplit_once('@')?;
    let fine = !local.is_empty()
        && !domain.is_empty()
        && !address.chars().any(|c| c.is_whitespace() || c.is_control());
    fine.then(|| address.to_lowercase())
}

/// Every address in the named headers (raw values, any syntax).
fn addresses_in<'a>(
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    names: &[&str],
) -> Vec<String> {
    let mut found = Vec::new();
    for (name, value) in headers {
        if !names.iter().any(|n| name.eq_ignore_ascii_case(n)) {
            continue;
        }
        found.extend(
            value
                .split(|c: char| {
                    matches!(c, '<' | '>' | ',' | ';' | '"' | '(' | ')') || c.is_whitespace()
                })
                .filter_map(bare_address),
        );
    }
    found
}

/// What a report's recipient status means; `None`: nothing to record.
fn kind_of(status: &RecipientStatus) -> Option<BounceKind> {
    let class = status.status.chars().next();
    match (status.action.as_str(), class) {
        ("delivered" | "relayed" | "expanded", _) => None,
        ("delayed", _) | (_, Some('4')) => Some(BounceKind::Soft),
        ("failed", Some('5')) => Some(BounceKind::Hard),
        // `Action: failed` with no usable status: refused all the same.
        ("failed", _) => Some(BounceKind::Hard),
        (_, Some('5')) => Some(BounceKind::Hard),
        _ => None,
    }
}

/// Finds whom reports are about: by VERP token, else among known
/// recipients.
pub struct Finder<'a> {
    /// `digest.bounce_address`, when set.
    pub bounce_address: Option<&'a BounceAddress>,
    /// Resolves VERP tokens (needs the secret).
    pub resolver: Option<&'a Resolver>,
    /// Every address bulletin sends to (lower-cased): the subscribers and
    /// the ledger's recipients.
    pub known: &'a HashSet<String>,
}

/// Why a report records nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nothing {
    /// It names no address bulletin sends to.
    NoKnownRecipient,
    /// It reports a delivery (delivered, relayed, expanded) or a feedback
    /// type other than abuse.
    NotAFailure(String),
}

impl std::fmt::Display for Nothing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Nothing::NoKnownRecipient => {
                f.write_str("names no recipient of this site (no bounce token, no known address)")
            }
            Nothing::NotAFailure(what) => write!(f, "reports no failure ({what})"),
        }
    }
}

impl Finder<'_> {
    /// The address the VERP token of `report` stands for.
    fn by_token(&self, report: &Report) -> Option<String> {
        let (pattern, resolver) = (self.bounce_address?, self.resolver?);
        report
            .envelope
            .iter()
            .filter_map(|a| pattern.token_in(a))
            .find_map(|token| resolver.resolve(token))
            .map(str::to_owned)
    }

    fn known(&self, address: Option<&String>) -> Option<String> {
        address.filter(|a| self.known.contains(a.as_str())).cloned()
    }

    /// The events `report` makes (one per recipient); `now` dates a report
    /// without a sensible `Date:`.
    pub fn events(&self, report: &Report, now: DateTime<Utc>) -> Result<Vec<BounceEvent>, Nothing> {
        let at = report.date.filter(|d| *d <= now).unwrap_or(now);
        let event = |address: String, kind, status: &str| BounceEvent {
            report: report.id.clone(),
            address: RecipientKey::of(&address),
            kind,
            status: status.to_owned(),
            at,
        };
        let verp = self.by_token(report);
        match &report.kind {
            Kind::Complaint {
                feedback_type,
                recipients,
            } => {
                if feedback_type != "abuse" {
                    return Err(Nothing::NotAFailure(format!(
                        "feedback type {feedback_type}"
                    )));
                }
                let address = verp
                    .or_else(|| recipients.iter().find_map(|r| self.known(Some(r))))
                    .ok_or(Nothing::NoKnownRecipient)?;
                Ok(vec![event(address, BounceKind::Complaint, feedback_type)])
            }
            Kind::Delivery(statuses) => {
                let failures: Vec<(BounceKind, &RecipientStatus)> = statuses
                    .iter()
                    .filter_map(|s| kind_of(s).map(|k| (k, s)))
                    .collect();
                if failures.is_empty() {
                    let actions: Vec<&str> = statuses.iter().map(|s| s.action.as_str()).collect();
                    return Err(Nothing::NotAFailure(format!(
                        "action {}",
                        actions.join(", ")
                    )));
                }
                if let Some(address) = verp {
                    // A VERP message has one recipient: the worst status counts.
                    let (kind, status) = failures
                        .iter()
                        .find(|(k, _)| *k == BounceKind::Hard)
                        .unwrap_or(&failures[0]);
                    return Ok(vec![event(address, *kind, &status.status)]);
                }
                let mut events: Vec<BounceEvent> = Vec::new();
                for (kind, status) in failures {
                    let address = self
                        .known(status.final_recipient.as_ref())
                        .or_else(|| self.known(status.original_recipient.as_ref()));
                    if let Some(address) = address
                        && !events.iter().any(|e| e.address.as_str() == address)
                    {
                        events.push(event(address, kind, &status.status));
                    }
                }
                if events.is_empty() {
                    return Err(Nothing::NoKnownRecipient);
                }
                Ok(events)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@mx.example.net\r
To: bounces+TOKEN@news.example.cn\r
Message-ID: <dsn-1@mx.example.net>\r
Date: Mon, 7 Dec 2026 05:00:00 +0000\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary=b\r
\r
--b\r
Content-Type: text/plain\r
\r
Sorry.\r
--b\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.net\r
\r
Final-Recipient: rfc822; Gone@Example.net\r
Action: failed\r
Status: 5.1.1 (unknown user)\r
\r
Final-Recipient: rfc822; full@example.net\r
Action: delayed\r
Status: 4.2.2\r
--b--\r
";

    #[test]
    fn reads_recipients_of_a_dsn_and_finds_known_ones() {
        let report = parse(DSN.as_bytes()).unwrap();
        assert_eq!(report.id, "<dsn-1@mx.example.net>");
        let Kind::Delivery(statuses) = &report.kind else {
            panic!("{report:?}")
        };
        assert_eq!(statuses.len(), 2);
        assert_eq!(
            statuses[0].final_recipient.as_deref(),
            Some("gone@example.net")
        );
        assert_eq!(statuses[0].status, "5.1.1");
        let known: HashSet<String> =
            ["gone@example.net".to_owned(), "full@example.net".to_owned()].into();
        let finder = Finder {
            bounce_address: None,
            resolver: None,
            known: &known,
        };
        let events = finder.events(&report, Utc::now()).unwrap();
        let kinds: Vec<(&str, BounceKind)> = events
            .iter()
            .map(|e| (e.address.as_str(), e.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("gone@example.net", BounceKind::Hard),
                ("full@example.net", BounceKind::Soft)
            ]
        );
        let nobody = HashSet::new();
        let finder = Finder {
            known: &nobody,
            ..finder
        };
        assert_eq!(
            finder.events(&report, Utc::now()),
            Err(Nothing::NoKnownRecipient)
        );
    }

    #[test]
    fn a_plain_message_is_not_a_report_and_garbage_is_no_panic() {
        let err = parse(b"From: a@b\r\nSubject: hi\r\n\r\nhello\r\n").unwrap_err();
        assert!(
            err.0.contains("not a delivery status notification"),
            "{err}"
        );
        for junk in [
            &b""[..],
            b"\xff\xfe\x00",
            b"Content-Type: multipart/report\r\n\r\n--",
        ] {
            let _ = parse(junk);
        }
    }
}
