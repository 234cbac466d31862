//! The SMTP transport: one lettre `SmtpConnection` per session (lettre's
//! low-level client; the queue, retries and pacing are ours), replies
//! classified into [`Failure`]s:
//!
//! - 2xx: sent;
//! - 5xx on RCPT: the address is refused for good ([`Failure::Recipient`]:
//!   it goes on the suppression list);
//! - 5xx on the message (after DATA): permanent for that message, not the
//!   address (it is about the content);
//! - 5xx on MAIL: the sender is refused ([`Failure::Sender`]);
//! - 4xx: temporary;
//! - 421, a lost connection, a timeout: the connection is dropped;
//! - no reply after the whole message went out: ambiguous;
//! - no session at all (unreachable, TLS, login): [`Failure::Connect`].
//!
//! lettre 0.11 writes a message body and its final `.` in two writes and
//! never sets TCP_NODELAY, so every message would wait on Nagle's algorithm
//! for the server's delayed ACK (~40 ms). We send the dot-stuffed body and
//! the terminator as one command write through lettre's public API instead.

use std::fmt;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use super::transport::{Envelope, Failure, ReplyCode, Session, Transport};
use crate::config::{Security, SmtpConfig};

/// An SMTP relay, as `[smtp]` and the environment describe it.
pub struct Smtp {
    pub config: SmtpConfig,
    /// From `BULLETIN_SMTP_PASSWORD`; never logged.
    pub password: Option<String>,
    /// Extra trusted CA certificates (PEM), from `smtp.ca_file`.
    pub tls_roots: Option<Vec<u8>>,
}

impl Transport for Smtp {
    fn sessions(&self) -> usize {
        self.config.connections.max(1)
    }

    fn session(&self) -> Box<dyn Session + '_> {
        Box::new(SmtpSession {
            relay: self,
            connection: None,
        })
    }

    /// `text` without the password, plain or as AUTH PLAIN / LOGIN sent it.
    fn redact(&self, text: &str) -> String {
        use base64::Engine as _;
        let Some(password) = self.password.as_deref().filter(|p| !p.is_empty()) else {
            return text.to_owned();
        };
        let engine = base64::engine::general_purpose::STANDARD;
        let forms = [
            engine.encode(format!("\0{}\0{password}", self.config.username)),
            engine.encode(password),
            password.to_owned(),
        ];
        forms.iter().fold(text.to_owned(), |text, form| {
            text.replace(form.as_str(), "[redacted]")
        })
    }
}

struct SmtpSession<'a> {
    relay: &'a Smtp,
    connection: Option<SmtpConnection>,
}

impl Session for SmtpSession<'_> {
    fn is_open(&self) -> bool {
        self.connection.as_ref().is_some_and(|c| !c.has_broken())
    }

    fn open(&mut self) -> Result<(), Failure> {
        self.connection = None;
        self.connection = Some(connect(self.relay)?);
        Ok(())
    }

    fn send(&mut self, envelope: &Envelope<'_>, message: &[u8]) -> Result<(), Failure> {
        let Some(conn) = self.connection.as_mut() else {
            return Err(Failure::Connection("not connected".into()));
        };
        let result = transaction(conn, envelope, message, &self.relay.config);
        match &result {
            Err(Failure::Connection(_) | Failure::Ambiguous(_)) => {
                if let Some(mut c) = self.connection.take() {
                    c.abort();
                }
            }
            Err(_) => {
                // Clear the transaction so the connection can carry the next one.
                if conn.command(Rset).is_err() {
                    self.connection = None;
                }
            }
            Ok(()) => {}
        }
        result
    }

    fn close(&mut self) {
        if let Some(mut conn) = self.connection.take() {
            let _ = conn.command(Quit);
        }
    }
}

/// The name given in EHLO: `helo_name`, else the From address's domain (in
/// ASCII) — never the machine's short host name, which receivers that check
/// EHLO names hold against the sender.
fn helo_name(smtp: &SmtpConfig) -> String {
    if let Some(name) = &smtp.helo_name {
        return name.clone();
    }
    smtp.from
        .parse::<lettre::message::Mailbox>()
        .ok()
        .map(|from| {
            let domain = from.email.domain();
            idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_owned())
        })
        .unwrap_or_else(|| "localhost".into())
}

fn connect(relay: &Smtp) -> Result<SmtpConnection, Failure> {
    let smtp = &relay.config;
    let hello = ClientId::Domain(helo_name(smtp));
    let tls = match smtp.security {
        Security::None => None,
        Security::Starttls | Security::Tls => Some(tls_parameters(relay)?),
    };
    let implicit = if smtp.security == Security::Tls {
        tls.as_ref()
    } else {
        None
    };
    let mut conn = SmtpConnection::connect(
        (smtp.host.as_str(), smtp.port),
        Some(smtp.timeout),
        &hello,
        implicit,
        None,
    )
    .map_err(|e| {
        Failure::Connect(format!(
            "cannot connect to {}:{}: {e}",
            smtp.host, smtp.port
        ))
    })?;
    if smtp.security == Security::Starttls {
        let params = tls.as_ref().expect("built above");
        if !conn.can_starttls() {
            conn.abort();
            return Err(Failure::Connect(format!(
                "{} does not offer STARTTLS",
                smtp.host
            )));
        }
        conn.starttls(params, &hello)
            .map_err(|e| Failure::Connect(format!("STARTTLS failed: {e}")))?;
    }
    if !smtp.username.is_empty() {
        let password = relay.password.clone().unwrap_or_default();
        let credentials = Credentials::new(smtp.username.clone(), password);
        conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
            .map_err(|e| {
                // Never echo the server's reply to AUTH: it may quote what we sent.
                let class = if e.is_permanent() {
                    "rejected"
                } else {
                    "failed"
                };
                Failure::Connect(format!("authentication as {:?} {class}", smtp.username))
            })?;
    }
    Ok(conn)
}

fn tls_parameters(relay: &Smtp) -> Result<TlsParameters, Failure> {
    let mut builder = TlsParameters::builder(relay.config.host.clone());
    if let Some(pem) = &relay.tls_roots {
        let certificate = Certificate::from_pem(pem)
            .map_err(|e| Failure::Connect(format!("smtp.ca_file: {e}")))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| Failure::Connect(format!("TLS setup failed: {e}")))
}

/// One MAIL / RCPT / DATA transaction on an open connection.
fn transaction(
    conn: &mut SmtpConnection,
    envelope: &Envelope<'_>,
    bytes: &[u8],
    smtp: &SmtpConfig,
) -> Result<(), Failure> {
    let mut parameters = Vec::new();
    if !bytes.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(Failure::Permanent(
                "the message is 8-bit and the server lacks 8BITMIME".into(),
            ));
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(Some(envelope.from.clone()), parameters))
        .map_err(|e| match classify(e) {
            Failure::Permanent(why) => Failure::Sender(why),
            other => other,
        })?;
    conn.command(Rcpt::new(envelope.to.clone(), Vec::new()))
        .map_err(|e| match classify(e) {
            Failure::Permanent(why) => Failure::Recipient(why),
            other => other,
        })?;
    conn.command(Data).map_err(classify)?;
    let body = std::str::from_utf8(bytes)
        .map_err(|_| Failure::Permanent("the message is not UTF-8".into()))?;
    // RFC 5321 §4.5.3.2.6: wait long for the reply to the final dot; giving
    // up early is what turns a slow server into a duplicate.
    let _ = conn.set_timeout(Some(smtp.data_timeout.max(smtp.timeout)));
    let reply = conn.command(DataBody(body));
    let _ = conn.set_timeout(Some(smtp.timeout));
    reply.map_err(|e| match reply_code(&e) {
        // The message went out whole and no reply came: the server may have it.
        None => Failure::Ambiguous(e.to_string()),
        Some(_) => classify(e),
    })?;
    Ok(())
}

/// The message with transparency dots and the final `.`, written at once.
struct DataBody<'a>(&'a str);

impl fmt::Display for DataBody<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Transparency (RFC 5321 §4.5.2): a line starting with '.' gets one
        // more. Written in runs between such lines (most messages have none);
        // a bare LF counts as a line end too, as some servers take it.
        let text = self.0;
        if text.starts_with('.') {
            f.write_str(".")?;
        }
        let mut start = 0;
        for at in memchr::memmem::find_iter(text.as_bytes(), b"\n.") {
            f.write_str(&text[start..=at])?;
            f.write_str(".")?;
            start = at + 1;
        }
        f.write_str(&text[start..])?;
        if !text.ends_with("\r\n") {
            f.write_str("\r\n")?;
        }
        f.write_str(".\r\n")
    }
}

fn reply_code(e: &lettre::transport::smtp::Error) -> Option<ReplyCode> {
    e.status().map(|code| ReplyCode(u16::from(code)))
}

fn classify(e: lettre::transport::smtp::Error) -> Failure {
    match reply_code(&e) {
        Some(ReplyCode::CLOSING) => Failure::Connection(format!("421 {e}")),
        Some(code) if code.is_permanent() => Failure::Permanent(e.to_string()),
        Some(_) => Failure::Temporary(e.to_string()),
        // No reply code: the connection broke or timed out. The server may
        // or may not have the message; it is sent again with the same id.
        None => Failure::Connection(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_and_terminator() {
        assert_eq!(
            DataBody("a\r\n.b\r\n..c\r\n").to_string(),
            "a\r\n..b\r\n...c\r\n.\r\n"
        );
        assert_eq!(DataBody("x").to_string(), "x\r\n.\r\n");
        assert_eq!(DataBody(".a\r\nb").to_string(), "..a\r\nb\r\n.\r\n");
        assert_eq!(DataBody("a\n.b\r\n").to_string(), "a\n..b\r\n.\r\n");
    }
}
