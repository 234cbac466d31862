//! The sendmail transport: each message handed to a local `sendmail`
//! command (`sendmail -i -f FROM -- TO`), one at a time, on its standard
//! input; exit status 0 is accepted, anything else a temporary failure.
//!
//! The command is run with an environment of its own: only the variables
//! in [`ENVIRONMENT`], whose values the caller passes in. Never bulletin's
//! secrets — the SMTP password, or the unsubscribe key with which anyone
//! could forge unsubscribe tokens — nor anything else a child has no need
//! of. (lettre's `SendmailTransport` passes the whole environment on.)

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::transport::{Failure, Letter, Session, Transport};

/// The variables a sendmail command may need to run and find its
/// configuration: `PATH`, the user and locale, a temporary folder, and
/// Postfix's `MAIL_CONFIG`.
pub const ENVIRONMENT: [&str; 10] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "MAIL_CONFIG",
];

/// The command when `smtp.sendmail` is not set (looked up on `PATH`).
const DEFAULT_COMMAND: &str = "sendmail";

/// `transport = "sendmail"`.
pub struct Sendmail {
    /// The command; `None` is `sendmail` on the `PATH`.
    pub command: Option<PathBuf>,
    /// The command's whole environment: the variables of [`ENVIRONMENT`]
    /// that are set, with their values.
    pub environment: Vec<(OsString, OsString)>,
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

    fn send(&mut self, letter: &Letter<'_>, _next: Option<&Letter<'_>>) -> Result<(), Failure> {
        let (envelope, message) = (&letter.envelope, letter.message);
        let transport = self.transport;
        let program = transport
            .command
            .as_deref()
            .map_or_else(|| DEFAULT_COMMAND.into(), |p| p.as_os_str().to_owned());
        let mut command = Command::new(&program);
        command
            .arg("-i")
            .arg("-f")
            .arg(envelope.from)
            .arg("--")
            .arg(envelope.to)
            .env_clear()
            .envs(transport.environment.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let shown = PathBuf::from(&program);
        let failed =
            |what: String| Failure::Temporary(format!("sendmail ({}): {what}", shown.display()));
        let mut child = command
            .spawn()
            .map_err(|e| failed(format!("cannot run it: {e}")))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // Written on its own thread while this one collects stderr: a
        // command that writes much before it reads cannot block both.
        let (written, output) = std::thread::scope(|scope| {
            let writer = scope.spawn(move || stdin.write_all(message));
            let output = child.wait_with_output();
            (writer.join().expect("the writer does not panic"), output)
        });
        let output = output.map_err(|e| failed(format!("cannot wait for it: {e}")))?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr);
            let said = crate::text::one_line_cow(said.trim());
            let said: String = said.chars().take(300).collect();
            return Err(failed(match output.status.code() {
                Some(code) => format!("exit status {code}: {said}"),
                None => format!("killed ({}): {said}", output.status),
            }));
        }
        // It says it took the message, but did it read all of it?
        written.map_err(|e| failed(format!("it did not read the whole message: {e}")))
    }

    fn close(&mut self) {}
}
