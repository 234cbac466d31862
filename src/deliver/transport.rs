//! What delivery needs from a way of handing over mail: sessions that send
//! one message at a time and say, for each failure, what kind it is. The
//! workers decide what to do about each kind (retry, record, stop); a
//! transport only classifies.
//!
//! A session may be told the message that comes next on it, so it can begin
//! that one's transaction in the same flight as this one's content (SMTP
//! PIPELINING): it may send the next message's *envelope* early, never its
//! content.

use lettre::Address;

/// An SMTP reply code (RFC 5321 §4.2), as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyCode(pub u16);

impl ReplyCode {
    /// 421: the service is closing the transmission channel.
    pub const CLOSING: ReplyCode = ReplyCode(421);

    pub fn is_permanent(self) -> bool {
        (500..600).contains(&self.0)
    }
}

impl std::fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who a message is from and to, on the envelope (not in its headers).
pub struct Envelope<'a> {
    pub from: &'a Address,
    pub to: &'a Address,
}

/// One message on its way: its envelope and its exact bytes.
pub struct Letter<'a> {
    pub envelope: Envelope<'a>,
    pub message: &'a [u8],
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Refused for good (5xx) for this message (after DATA, or before
    /// anything was sent: the content, its size).
    Permanent(String),
    /// The recipient's address refused for good (5xx to RCPT TO): the
    /// address is put on the suppression list.
    Recipient(String),
    /// Try again later (4xx, a local hiccup).
    Temporary(String),
    /// No session: the server cannot be reached, TLS or authentication
    /// failed. Nothing about this message; counted by the breaker.
    Connect(String),
    /// The server refuses the sender (5xx to MAIL FROM): it would refuse
    /// every message, so the run stops with everything left pending.
    Sender(String),
    /// 421, or the connection broke: drop it and reconnect.
    Connection(String),
    /// The message went out in full but no reply came back: the server may
    /// have it. Not retried in this run (each retry could add a copy); the
    /// next run sends it again, with the same Message-ID.
    Ambiguous(String),
}

/// One worker's line to the server (an SMTP connection, a sendmail
/// command). Used from one thread.
pub trait Session {
    /// Whether a message can be sent now without opening the session first.
    fn is_open(&self) -> bool;

    /// Opens the session; a failure is [`Failure::Connect`].
    fn open(&mut self) -> Result<(), Failure>;

    /// Sends one message on the open session. After a `Connection` or
    /// `Ambiguous` failure the session is closed; after any other failure
    /// it is ready for the next message (or closed, if it could not be).
    ///
    /// `next`, when given, is the message the caller sends next on this
    /// session (unless the session breaks or the run stops): the session
    /// may begin its transaction now, sending its envelope — never its
    /// content — with this message's content. The caller must then pass
    /// exactly that letter to the next `send`, or `close` the session.
    fn send(&mut self, letter: &Letter<'_>, next: Option<&Letter<'_>>) -> Result<(), Failure>;

    /// Ends the session: politely (QUIT), or, with a transaction begun for
    /// a message that will not be sent after all, by dropping the
    /// connection (the server then discards the unfinished message).
    fn close(&mut self);
}

/// A way of handing over mail.
pub trait Transport: Sync {
    /// How many sessions may send at once.
    fn sessions(&self) -> usize;

    /// A new, unopened session (made on the worker's own thread).
    fn session(&self) -> Box<dyn Session + '_>;

    /// `text` (a reply to record or show) without any secret the transport
    /// sent: a server may quote what it was sent.
    fn redact(&self, text: &str) -> String {
        text.to_owned()
    }
}
