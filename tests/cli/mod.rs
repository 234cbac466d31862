//! Integration tests for the `bulletin` command line: the real binary run on
//! throw-away sites (see `crate::support`), its feeds read back by strict parsers,
//! and the example site compared with golden files.
//!
//! Bless the golden files with `BULLETIN_BLESS=1 cargo test --test integration golden`.

mod build;
mod check;
mod diagnostics;
mod golden;
mod help;
mod init;
mod order;
