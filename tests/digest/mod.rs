//! Integration tests of the email digest (`bulletin digest --dry-run`, and
//! the digest half of `bulletin check`), run against the real binary.
//!
//! - `golden`: the example site's messages, byte for byte
//!   (`BULLETIN_BLESS=1` rewrites `tests/golden/digest/`);
//! - `message`: headers, MIME structure, tokens, escaping, line rules;
//! - `selection`: sections, window, clock, caps, related reads;
//! - `history`: what the state database says was already sent;
//! - `templates`, `subscribers`, `secret`: mistakes refused before anything
//!   is written;
//! - `archive`: the public archive's pages and feed (`digest.archive`),
//!   checked by strict parsers, feedparser and Tidy, free of recipients;
//! - `reading`: what a reader sees in either language: boilerplate, lead
//!   images, preheader, WCAG contrast, the text part's links and lines,
//!   HTML Tidy;
//! - `dkim`: signatures verified by dkimpy as a real server received them,
//!   keys and alignment refused by `check`, the EHLO name.

mod archive;
mod dkim;
mod golden;
mod history;
mod message;
mod reading;
mod secret;
mod selection;
mod shards;
mod subscribers;
mod templates;
