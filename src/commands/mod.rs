//! One function per command. Each reads what it needs through `config`,
//! `load` and `state`, calls the pure parts (feeds, digest), and hands the
//! results to the edge (files, SMTP). Only these functions and `main` see the
//! clock and the environment.

pub mod build;
pub mod check;
pub mod digest;
pub mod init;

use crate::diag::Problems;

/// How a command failed, which decides the exit code.
pub enum Failure {
    /// Bad usage, config, input or template: exit 1, nothing written or sent.
    Invalid(Problems),
    /// Anything else that stopped the command (I/O, state): exit 1.
    Error(anyhow::Error),
    /// Another run holds the lock: exit 2, nothing sent by this one.
    Busy(String),
}

impl From<Problems> for Failure {
    fn from(p: Problems) -> Self {
        Failure::Invalid(p)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Error(e)
    }
}

/// What the user asked to hear (`-q`, `-v`). Warnings and detail are
/// `tracing` events, which `main` shows on stderr according to the same
/// flags (see `report::init_tracing`); summaries go to stdout.
#[derive(Clone, Copy)]
pub struct Verbosity {
    pub quiet: bool,
    pub verbose: bool,
}

impl Verbosity {
    /// The closing summary of a command, on stdout unless `-q`.
    pub fn summary(&self, line: impl AsRef<str>) {
        if !self.quiet {
            ignore_closed!(std::io::stdout(), "{}", line.as_ref());
        }
    }

    /// A warning about the data: `warning: ...` on stderr unless `-q`.
    pub fn warn(&self, line: impl AsRef<str>) {
        if !self.quiet {
            tracing::warn!("{}", line.as_ref());
        }
    }

    /// Detail shown only with `-v`.
    pub fn detail(&self, line: impl AsRef<str>) {
        if self.verbose {
            tracing::info!("{}", line.as_ref());
        }
    }
}
