//! How a command fails, which decides the exit code: the one error type the
//! library's commands return, so `main` maps it to 1 or 2 in one place.

use crate::diag::Problems;

/// How a command failed.
#[derive(Debug)]
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

impl From<crate::diag::Problem> for Failure {
    fn from(p: crate::diag::Problem) -> Self {
        Failure::Invalid(p.into())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Error(e)
    }
}
