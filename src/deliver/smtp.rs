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
//! With PIPELINING (RFC 2920) announced, each message costs one round trip:
//! its content goes out in one flight with the *next* message's MAIL, RCPT
//! and DATA (RFC 2920 §3.1 lets content start a group), and the replies are
//! read in the order the commands went out — the content's, then 250, 250,
//! 354 for the next. So a refusal of one RCPT, a 421 in the middle or a
//! connection lost after the content is each told apart exactly as in
//! lockstep (which is what a server without PIPELINING gets). Only
//! envelopes go ahead: a message's content is written only when the worker
//! sends it, after the previous outcome on the connection is recorded. A
//! transaction begun for a message that is then not sent is ended by
//! dropping the connection: the server discards a message whose content
//! never ended. (CHUNKING/BDAT would allow the same single round trip for
//! one message in lockstep order, but Postfix's smtp-sink, the reference
//! here, does not offer it, and with the content in the first flight every
//! lost connection would become ambiguous.)
//!
//! Each flight is one write. lettre 0.11 never sets TCP_NODELAY (and gives
//! no access to its socket), and it writes a body and its final `.` in two
//! writes, so every message would wait on Nagle's algorithm for the
//! server's delayed ACK (~40 ms); the dot-stuffed body, the terminator and
//! the commands after them go through lettre's public API as one command
//! instead. As we always read a reply before writing again, Linux's Nagle
//! (which holds a small segment only while an earlier small one is
//! unacknowledged) never holds a flight's last segment back.

use std::fmt;

use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use super::transport::{Envelope, Failure, Letter, ReplyCode, Session, Transport};
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
            line: None,
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
    line: Option<Line>,
}

impl Session for SmtpSession<'_> {
    fn is_open(&self) -> bool {
        self.line.as_ref().is_some_and(|l| !l.broken)
    }

    fn open(&mut self) -> Result<(), Failure> {
        self.close();
        self.line = Some(connect(self.relay)?);
        Ok(())
    }

    fn send(&mut self, letter: &Letter<'_>, next: Option<&Letter<'_>>) -> Result<(), Failure> {
        let Some(line) = self.line.as_mut() else {
            return Err(Failure::Connection("not connected".into()));
        };
        let result = line.send(letter, next, &self.relay.config);
        if matches!(result, Err(Failure::Connection(_) | Failure::Ambiguous(_))) {
            line.broken = true;
        }
        if line.broken {
            // Hung up without QUIT: lettre's `abort` would send one and
            // wait for a reply that a broken conversation may never give.
            self.line = None;
        }
        result
    }

    fn close(&mut self) {
        if let Some(mut line) = self.line.take() {
            // Broken, or the server waits for the content of a message that
            // will not come (a QUIT now would be taken for content): hang
            // up, and the server discards the unfinished message.
            let waiting = line.begun.as_ref().is_some_and(|b| b.answer.is_ok());
            if !line.broken && !waiting {
                let _ = line.conn.command(Quit);
            }
        }
    }
}

/// An open SMTP connection and where its conversation stands.
struct Line {
    conn: SmtpConnection,
    /// The server announced PIPELINING (RFC 2920): commands go in flights.
    pipelining: bool,
    eight_bit: bool,
    /// A transaction was refused part-way (say, MAIL accepted and RCPT
    /// refused): the next one starts with RSET.
    dirty: bool,
    /// The next message's transaction, begun in the flight of the
    /// previous message's content.
    begun: Option<Begun>,
    /// The conversation cannot go on (no reply, 421, out of step).
    broken: bool,
}

/// A transaction begun ahead: for which envelope, and the server's answer
/// (`Ok`: it accepted MAIL and RCPT and waits for the content).
struct Begun {
    from: Address,
    to: Address,
    answer: Result<(), Failure>,
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

fn connect(relay: &Smtp) -> Result<Line, Failure> {
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
    let extensions = extensions(&mut conn, &hello)?;
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
    Ok(Line {
        eight_bit: conn.server_info().supports_feature(Extension::EightBitMime),
        conn,
        pipelining: extensions.iter().any(|e| e == "PIPELINING"),
        dirty: false,
        begun: None,
        broken: false,
    })
}

/// The extensions the server announces (upper-cased keywords). lettre keeps
/// only those it knows, and PIPELINING is not among them, so EHLO is asked
/// once more (RFC 5321 §4.1.4 allows it at any time; it resets nothing we
/// hold), before AUTH.
fn extensions(conn: &mut SmtpConnection, hello: &ClientId) -> Result<Vec<String>, Failure> {
    let reply = conn.command(Ehlo::new(hello.clone())).map_err(|e| {
        conn.abort();
        Failure::Connect(format!("EHLO refused: {e}"))
    })?;
    Ok(reply
        .message()
        .skip(1) // the server's name
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_ascii_uppercase)
        .collect())
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

/// A message that can go on this connection: its content as text, and the
/// parameters of its MAIL command.
fn prepare<'m>(
    letter: &Letter<'m>,
    eight_bit: bool,
) -> Result<(&'m str, Vec<MailParameter>), Failure> {
    let body = std::str::from_utf8(letter.message)
        .map_err(|_| Failure::Permanent("the message is not UTF-8".into()))?;
    if body.is_ascii() {
        return Ok((body, Vec::new()));
    }
    if !eight_bit {
        return Err(Failure::Permanent(
            "the message is 8-bit and the server lacks 8BITMIME".into(),
        ));
    }
    Ok((
        body,
        vec![MailParameter::Body(MailBodyParameter::EightBitMime)],
    ))
}

/// The commands that open a transaction, each with what a refusal of it
/// means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// RSET, when the last transaction was refused part-way.
    Reset,
    Mail,
    Rcpt,
    Data,
}

/// RSET (when the last transaction was refused part-way), MAIL, RCPT, DATA.
fn opening(
    reset: bool,
    envelope: &Envelope<'_>,
    parameters: Vec<MailParameter>,
) -> Vec<(Step, Box<dyn fmt::Display>)> {
    let mut commands: Vec<(Step, Box<dyn fmt::Display>)> = Vec::with_capacity(4);
    if reset {
        commands.push((Step::Reset, Box::new(Rset)));
    }
    commands.push((
        Step::Mail,
        Box::new(Mail::new(Some(envelope.from.clone()), parameters)),
    ));
    commands.push((
        Step::Rcpt,
        Box::new(Rcpt::new(envelope.to.clone(), Vec::new())),
    ));
    commands.push((Step::Data, Box::new(Data)));
    commands
}

/// What a refusal of `step` means: a 5xx to MAIL refuses the sender, a 5xx
/// to RCPT the recipient's address; 421 or no reply at all loses the
/// connection (see [`classify`]).
fn refusal(step: Step, e: lettre::transport::smtp::Error) -> Failure {
    match (step, classify(e)) {
        (Step::Mail, Failure::Permanent(why)) => Failure::Sender(why),
        (Step::Rcpt, Failure::Permanent(why)) => Failure::Recipient(why),
        (Step::Reset, Failure::Permanent(why) | Failure::Temporary(why)) => {
            Failure::Connection(format!("RSET refused: {why}"))
        }
        (_, failure) => failure,
    }
}

/// A server's reply as lettre reads it (an error for 4xx and 5xx).
type Reply = Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>;

/// Several commands written at once: one flight, one write (so Nagle's
/// algorithm never holds a part of it back waiting for an ACK).
struct Flight<'a>(Vec<&'a dyn fmt::Display>);

impl fmt::Display for Flight<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|part| part.fmt(f))
    }
}

impl Line {
    /// One message: its transaction (unless begun ahead), then its content
    /// — with, when pipelining, the next message's envelope in the same
    /// flight. Replies are matched to the commands in the order they went
    /// out, so every failure means what it means in lockstep.
    fn send(
        &mut self,
        letter: &Letter<'_>,
        next: Option<&Letter<'_>>,
        smtp: &SmtpConfig,
    ) -> Result<(), Failure> {
        let envelope = &letter.envelope;
        match self.begun.take() {
            Some(begun) if begun.from == *envelope.from && begun.to == *envelope.to => {
                begun.answer?;
            }
            Some(_) => {
                return Err(Failure::Connection(
                    "out of step: a transaction was begun for another message".into(),
                ));
            }
            None => {
                let (_, parameters) = prepare(letter, self.eight_bit)?;
                self.begin(opening(self.dirty, envelope, parameters))?;
            }
        }
        let (body, _) = prepare(letter, self.eight_bit)?;
        let ahead = next
            .filter(|_| self.pipelining)
            .and_then(|n| Some((n, prepare(n, self.eight_bit).ok()?.1)));
        let content = DataBody(body);
        let mut flight: Vec<&dyn fmt::Display> = vec![&content];
        let next_opening = ahead
            .as_ref()
            .map(|(n, parameters)| opening(false, &n.envelope, parameters.clone()))
            .unwrap_or_default();
        flight.extend(next_opening.iter().map(|(_, c)| c.as_ref()));
        // RFC 5321 §4.5.3.2.6: wait long for the reply to the final dot;
        // giving up early is what turns a slow server into a duplicate.
        let _ = self
            .conn
            .set_timeout(Some(smtp.data_timeout.max(smtp.timeout)));
        let reply = self.conn.command(Flight(flight));
        let _ = self.conn.set_timeout(Some(smtp.timeout));
        let sent = reply.map(|_| ()).map_err(|e| match reply_code(&e) {
            // The message went out whole and no reply came: the server may have it.
            None => Failure::Ambiguous(e.to_string()),
            Some(_) => classify(e),
        });
        if let Some((n, _)) = ahead
            && !matches!(sent, Err(Failure::Ambiguous(_) | Failure::Connection(_)))
        {
            let steps: Vec<Step> = next_opening.iter().map(|(step, _)| *step).collect();
            let first = self.conn.read_response();
            let answer = self.answers(&steps, first);
            self.begun = Some(Begun {
                from: n.envelope.from.clone(),
                to: n.envelope.to.clone(),
                answer,
            });
        }
        sent
    }

    /// Opens a transaction: the commands in one flight when pipelining,
    /// else one at a time up to the first refusal.
    fn begin(&mut self, commands: Vec<(Step, Box<dyn fmt::Display>)>) -> Result<(), Failure> {
        if self.pipelining {
            let flight = Flight(commands.iter().map(|(_, c)| c.as_ref()).collect());
            let first = self.conn.command(flight);
            let steps: Vec<Step> = commands.iter().map(|(step, _)| *step).collect();
            return self.answers(&steps, first);
        }
        for (step, command) in &commands {
            if let Err(e) = self.conn.command(command) {
                return Err(self.refused(refusal(*step, e)));
            }
        }
        self.dirty = false;
        Ok(())
    }

    /// The answer to commands sent in one flight (`first`: the reply to the
    /// first, already read): the first refusal in the order they were
    /// sent, or `Ok` once DATA is answered 354. Every reply is read, so the
    /// conversation stays in step.
    fn answers(&mut self, steps: &[Step], first: Reply) -> Result<(), Failure> {
        let mut answer = Ok(());
        let mut first = Some(first);
        for step in steps {
            let reply = match first.take() {
                Some(reply) => reply,
                None => self.conn.read_response(),
            };
            match reply {
                Ok(_) if *step == Step::Data && answer.is_err() => {
                    // A server that takes DATA after refusing MAIL or RCPT
                    // now waits for content we will not send.
                    self.broken = true;
                }
                Ok(_) => {}
                Err(e) => {
                    let failure = self.refused(refusal(*step, e));
                    if answer.is_ok() {
                        answer = Err(failure);
                    }
                    if self.broken {
                        break; // nothing more will come
                    }
                }
            }
        }
        if answer.is_ok() {
            self.dirty = false;
        }
        answer
    }

    /// Notes what a refusal leaves behind: a lost connection, or a
    /// transaction to reset before the next.
    fn refused(&mut self, failure: Failure) -> Failure {
        if matches!(failure, Failure::Connection(_)) {
            self.broken = true;
        } else {
            self.dirty = true;
        }
        failure
    }
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
