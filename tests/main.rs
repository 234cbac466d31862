//! The integration tests: one binary (`cargo test --test integration`), one
//! module per area, each running the real `bulletin` binary.
//!
//! - `cli`: the command line — build, check, init, help, diagnostics — and
//!   the example site's feeds compared with golden files;
//! - `digest`: the email digest (`digest --dry-run`, the digest half of
//!   `check`), the example's messages compared with golden files;
//! - `delivery`: `digest --send` against real SMTP servers and sendmail;
//! - `feeds`: topic feeds, WebSub pings, the size guard, logos and media
//!   read back by feedparser and newsboat;
//! - `list`: unsubscribing and the suppression list;
//! - `hostile`: hostile input and failure: nothing crashes, nothing
//!   half-written, nothing leaks.
//!
//! Bless the golden files with `BULLETIN_BLESS=1 cargo test --test
//! integration golden`.

mod cli;
mod delivery;
mod digest;
mod feeds;
mod hostile;
mod list;
mod support;
