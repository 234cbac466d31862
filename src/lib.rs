//! `bulletin`: RSS, Atom and JSON feeds plus an email digest for news sites.
//!
//! The library behind the `bulletin` binary. Data flows one way:
//!
//! ```text
//! feeds.toml ─► config ─┐
//! inputs ─────► load ───► model::Article ─┬─► feed ─► output (files)
//!                                         └─► digest (plan, compose) ─► deliver ─► SMTP
//!                                                      ledger (what was sent) ◄──┘
//! ```
//!
//! `ARCHITECTURE.md` at the repository's root maps every module, says which
//! may use which, and lists the invariants each keeps. In short: `model`,
//! `text`, `diag` and `parallel` are the ground floor; `config`, `load`,
//! `feed` and `digest` are pure or read only their inputs; `output` writes
//! files; `ledger` owns the state database; `deliver` is the only module
//! that talks to a mail server; `commands` (with `main`) is the only place
//! that reads the clock and the environment.

pub mod cli;
pub mod commands;
pub mod config;
pub mod deliver;
pub mod diag;
pub mod digest;
pub mod error;
pub mod feed;
pub mod ledger;
pub mod load;
pub mod model;
pub mod output;
pub mod parallel;
pub mod progress;
pub mod report;
pub mod text;

pub use error::Failure;
