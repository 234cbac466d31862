//! The sendmail transport: each message handed to a local `sendmail`
//! command (`sendmail -i -f FROM -- TO`, through lettre), one at a time.

use std::path::PathBuf;

use lettre::Transport as _;

use super::transport::{Envelope, Failure, Session, Transport};

/// `transport = "sendmail"`.
pub struct Sendmail {
    /// The command; `None` is lettre's default (`sendmail` on the PATH).
    pub command: Option<PathBuf>,
}

impl Transport for Sendmail {
    fn sessions(&self) -> usize {
        1
    }

    fn session(&self) -> Box<dyn Session + '_> {
        Box::new(SendmailSession { transport: self })
    }
}

struct SendmailSession<'a> {
    transport: &'a Sendmail,
}

impl Session for SendmailSession<'_> {
    fn is_open(&self) -> bool {
        true
    }

    fn open(&mut self) -> Result<(), Failure> {
        Ok(())
    }

    fn send(&mut self, envelope: &Envelope<'_>, message: &[u8]) -> Result<(), Failure> {
        let transport = match &self.transport.command {
            Some(path) => lettre::SendmailTransport::new_with_command(path.as_os_str()),
            None => lettre::SendmailTransport::new(),
        };
        let envelope =
            lettre::address::Envelope::new(Some(envelope.from.clone()), vec![envelope.to.clone()])
                .map_err(|e| Failure::Permanent(e.to_string()))?;
        transport
            .send_raw(&envelope, message)
            .map_err(|e| Failure::Temporary(format!("sendmail: {e}")))
    }

    fn close(&mut self) {}
}
