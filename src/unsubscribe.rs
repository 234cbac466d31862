//! Unsubscribing: a token or an address becomes an entry on the ledger's
//! suppression list. Shared by `bulletin unsubscribe` and `bulletin serve`
//! (the one-click endpoint), so both resolve and record alike.

use chrono::{DateTime, Utc};

use crate::Failure;
use crate::config::Config;
use crate::ledger::{Ledger, Reason, Suppression};
use crate::load::subscribers::load_subscribers;
use crate::model::RecipientKey;
use crate::token::{Keys, Resolver};

/// Every address this site mails or has mailed: the subscribers and every
/// recipient in the ledger, lower-cased.
pub fn known_addresses(config: &Config, ledger: &dyn Ledger) -> Result<Vec<String>, Failure> {
    let mut addresses: Vec<String> = match &config.digest {
        Some(digest) => load_subscribers(&digest.subscribers, &config.site)?
            .into_iter()
            .map(|s| s.email.to_lowercase())
            .collect(),
        None => Vec::new(),
    };
    addresses.extend(ledger.recipients()?);
    Ok(addresses)
}

/// A resolver for every address a token of this site can stand for: the
/// subscribers, every recipient in the ledger, and the addresses already
/// suppressed (a second click still finds its address).
pub fn resolver(config: &Config, ledger: &dyn Ledger, keys: Keys) -> Result<Resolver, Failure> {
    resolver_over(known_addresses(config, ledger)?, ledger, keys)
}

/// [`resolver`] over `known` (from [`known_addresses`]), read already.
pub fn resolver_over(
    mut known: Vec<String>,
    ledger: &dyn Ledger,
    keys: Keys,
) -> Result<Resolver, Failure> {
    known.extend(
        ledger
            .suppressions()?
            .into_iter()
            .map(|s| s.address.as_str().to_owned()),
    );
    Ok(Resolver::new(keys, known))
}

/// What an unsubscribe did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// The address was put on the list.
    Added(RecipientKey),
    /// It was already there (nothing changed).
    Already(RecipientKey),
}

/// Suppresses the address `token` stands for; `None` when the token is not
/// genuine (nothing changes).
pub fn by_token(
    ledger: &mut dyn Ledger,
    resolver: &Resolver,
    token: &str,
    source: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Done>> {
    let Some(address) = resolver.resolve(token) else {
        return Ok(None);
    };
    let address = RecipientKey::of(address);
    by_address(ledger, address, Reason::Unsubscribed, source, now).map(Some)
}

/// Suppresses `address` for `reason`.
pub fn by_address(
    ledger: &mut dyn Ledger,
    address: RecipientKey,
    reason: Reason,
    source: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Done> {
    let added = ledger.suppress(&[Suppression {
        address: address.clone(),
        reason,
        at: now,
        source: source.to_owned(),
    }])?;
    Ok(if added > 0 {
        Done::Added(address)
    } else {
        Done::Already(address)
    })
}
