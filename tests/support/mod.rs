//! The one harness of the integration tests: throw-away sites on disk, the
//! real `bulletin` binary run against them, and readers for what it wrote,
//! sent or recorded. There is one of each thing a test needs:
//!
//! - `site`: [`Site`], a temporary folder with a config, and the commands
//!   run in it; `sites` holds the kinds of site the suites start from
//!   ([`Site::new`], [`Site::example`], [`Site::with_digest`],
//!   [`Site::smtp`], the small digest sites of [`Small`]);
//! - `run`: [`Cmd`], one invocation built up (arguments, environment), and
//!   [`Run`], how it ended (exit code, output, the `error:` lines);
//! - `files`: folders read back ([`files_under`], [`Snapshot`]);
//! - `xml`: feeds read by a strict XML 1.0 parser and by feed-rs;
//! - `email`: a message as a mail reader sees it ([`Email`]) and what a
//!   dry run wrote ([`DryRun`]);
//! - `smtp`: real SMTP servers run as child processes ([`SmtpServer`]:
//!   `fault_server.py` on aiosmtpd, or Postfix's `smtp-sink`) and what they
//!   stored ([`Stored`]);
//! - `state`: the state database, read;
//! - `pg_cluster`: a private PostgreSQL cluster for the process, one
//!   database per test ([`pg_database`]), stopped when the process ends;
//! - `golden`: generated files compared byte for byte with
//!   `tests/golden/<name>/`, rewritten with `BULLETIN_BLESS=1`.
//!
//! Nothing here skips a test: a missing tool (`python3` with `aiosmtpd` or
//! `feedparser`, `smtp-sink`, `openssl`) fails the test that needs it with
//! a message saying what to install.

mod email;
mod files;
mod golden;
mod pg_cluster;
mod run;
mod site;
mod sites;
mod smtp;
mod state;
mod xml;

use std::path::PathBuf;

pub use email::{DryRun, Email, html_unescape, links};
pub use files::{Snapshot, age_files, contains_bytes, files_under, read, read_files, set_mode};
pub use golden::{assert_golden, first_difference};
pub(crate) use pg_cluster::database as pg_database;
pub use run::{Cmd, Run, Running};
pub use site::Site;
pub use sites::{A, DEFAULT_CONFIG, Listing, Small, article, at, digest_article};
pub use smtp::{
    FROM, Pipelining, SmtpServer, Stored, assert_one_each, check_digest, copies, free_port,
    parse_stored, self_signed_cert,
};
pub use state::legacy_state;
pub use xml::{
    assert_all_feeds_valid, check_strict_xml, child_text, elements, parse_feed, strict_xml, xml_doc,
};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_bulletin");

/// The clock most runs use: after every article the tests and the example
/// site write.
pub const NOW: &str = "2017-03-25T08:00:00+08:00";

/// The issue (the date in the site's timezone) of a digest at [`NOW`].
pub const ISSUE: &str = "2017-03-25";

/// The environment variable holding the unsubscribe-token key.
pub const SECRET_VAR: &str = "BULLETIN_UNSUBSCRIBE_SECRET";

/// The key the sites with a digest give every command unless a test says
/// otherwise (the golden messages' tokens are made with it).
pub const SECRET: &str = "test-secret";

/// The environment variable holding the SMTP password.
pub const PASSWORD_VAR: &str = "BULLETIN_SMTP_PASSWORD";

/// The repository's top-level folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
