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

/// Runs each listed test — a `fn(Pipelining)` of the module — twice:
/// against a fault server that announces and honours PIPELINING
/// (`…::pipelining::name`), and one that does not and refuses a client
/// that sends ahead anyway (`…::lockstep::name`).
macro_rules! both_ways {
    ($($test:ident),* $(,)?) => {
        mod pipelining {
            $(#[test]
            fn $test() {
                super::$test(crate::support::Pipelining::On)
            })*
        }
        mod lockstep {
            $(#[test]
            fn $test() {
                super::$test(crate::support::Pipelining::Off)
            })*
        }
    };
}

mod crash;
mod faults;
mod happy;
mod postgres;
mod relays;
mod round2;
mod security;
mod sendmail;
