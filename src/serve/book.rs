//! The blocking side of `serve`: the ledger connection and the token
//! resolver, used one request at a time (behind a mutex, on tokio's
//! blocking threads).
//!
//! The resolver is built at the start from the subscribers, the ledger's
//! recipients and the suppression list. A token that does not resolve
//! may belong to someone added since: the resolver is rebuilt (at most
//! once per [`REBUILD_INTERVAL`]) and the token tried again, so a new
//! subscriber's link works without a restart, and forged tokens cannot
//! make the server rebuild more often than that.
//!
//! A suppression is one small SQLite transaction (WAL, 10 s busy timeout,
//! so it waits for `digest --send`'s writes rather than failing); one that
//! still fails is retried [`WRITE_ATTEMPTS`] times on a fresh connection
//! before the caller answers 503.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::limits::{REBUILD_INTERVAL, WRITE_ATTEMPTS, WRITE_BACKOFF};
use crate::Failure;
use crate::config::Config;
use crate::ledger::{self, Ledger, State};
use crate::token::{Keys, Resolver};
use crate::unsubscribe::{self, Done};

/// What a token asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Answer {
    /// Suppressed now, or already.
    Done(Done),
    /// Forged, truncated or unknown: nothing changed.
    NotGenuine,
}

/// The ledger and the resolver.
pub(super) struct Book {
    config: Config,
    keys: Keys,
    /// `None` after a failed write: reopened on the next.
    ledger: Option<Box<dyn Ledger + Send>>,
    /// A PostgreSQL ledger's password.
    password: Option<String>,
    resolver: Resolver,
    built: Instant,
}

impl Book {
    /// Opens the state database (creating or migrating it) and builds the
    /// resolver.
    pub(super) fn open(
        config: Config,
        keys: Keys,
        password: Option<String>,
    ) -> Result<Book, Failure> {
        let ledger = ledger::open(&state(&config)?, password.as_deref())?;
        let resolver = unsubscribe::resolver(&config, ledger.as_ref(), keys.clone())?;
        Ok(Book {
            config,
            keys,
            ledger: Some(ledger),
            password,
            resolver,
            built: Instant::now(),
        })
    }

    /// Opens the ledger again when a failure closed it.
    fn reopen(&mut self) -> anyhow::Result<()> {
        if self.ledger.is_none() {
            self.ledger = Some(ledger::open(
                &state(&self.config)?,
                self.password.as_deref(),
            )?);
        }
        Ok(())
    }

    /// Rebuilds the resolver when the last build is old enough; whether it
    /// did. A failure (a subscriber file being rewritten) keeps the old one.
    fn rebuild_if_due(&mut self) -> bool {
        if self.built.elapsed() < REBUILD_INTERVAL {
            return false;
        }
        self.built = Instant::now();
        let rebuilt = self.reopen().map_err(Failure::from).and_then(|()| {
            let ledger = self.ledger.as_deref().expect("reopened");
            unsubscribe::resolver(&self.config, ledger, self.keys.clone())
        });
        match rebuilt {
            Ok(resolver) => {
                self.resolver = resolver;
                true
            }
            Err(e) => {
                tracing::warn!("serve: cannot rebuild the token resolver: {e:?}");
                self.ledger = None;
                false
            }
        }
    }

    /// Whether `token` is genuine (rebuilding the resolver once if due).
    pub(super) fn check(&mut self, token: &str) -> bool {
        self.resolver.resolve(token).is_some()
            || (self.rebuild_if_due() && self.resolver.resolve(token).is_some())
    }

    /// Suppresses the address of `token`; an error only after every
    /// attempt failed.
    pub(super) fn unsubscribe(
        &mut self,
        token: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Answer> {
        if !self.check(token) {
            return Ok(Answer::NotGenuine);
        }
        let mut pause = WRITE_BACKOFF;
        let mut attempt = 1;
        loop {
            let result = self.reopen().and_then(|()| {
                let ledger = self.ledger.as_deref_mut().expect("reopened");
                unsubscribe::by_token(ledger, &self.resolver, token, source, now)
            });
            match result {
                Ok(Some(done)) => return Ok(Answer::Done(done)),
                Ok(None) => return Ok(Answer::NotGenuine),
                Err(e) if attempt < WRITE_ATTEMPTS => {
                    tracing::warn!(
                        "serve: attempt {attempt} to record an unsubscribe failed: {e:#}"
                    );
                    self.ledger = None;
                    std::thread::sleep(pause);
                    pause *= 2;
                    attempt += 1;
                }
                Err(e) => {
                    self.ledger = None;
                    return Err(e);
                }
            }
        }
    }
}

fn state(config: &Config) -> anyhow::Result<State> {
    config
        .digest
        .as_ref()
        .map(|d| d.state.clone())
        .ok_or_else(|| anyhow::anyhow!("the config has no [digest] table"))
}
