//! Delivery tests for `bulletin digest --send`: the real binary against real
//! SMTP servers run as child processes — `tests/support/fault_server.py`
//! (aiosmtpd, scriptable faults, TLS, AUTH) and Postfix's `smtp-sink` — plus
//! the sendmail hand-off. Every test counts what the server actually stored
//! per recipient and reads the state database.
//!
//! Needs `python3` with `aiosmtpd`, Postfix's `smtp-sink` and the `openssl`
//! CLI; a missing one fails the test that needs it, saying what to install.
//! The crash drill prints its duplicate counts: see them with
//! `cargo test --test integration delivery::crash -- --nocapture`.

mod crash;
mod faults;
mod happy;
mod round2;
mod security;
mod sendmail;
