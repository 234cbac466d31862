//! `bulletin bounces`: reads its flags and the secret, opens the ledger and
//! hands the paths to `bounce::read::Reader` (`bounce::parse` reads each
//! message, `bounce::Finder` says whom it is about,
//! `Ledger::record_bounces` counts and suppresses).

use std::collections::HashSet;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::list::state_path;
use super::secrets;
use crate::Failure;
use crate::bounce::Finder;
use crate::bounce::read::Reader;
use crate::config::Config;
use crate::ledger::{self, SoftRule};
use crate::report::{self, Verbosity};
use crate::unsubscribe;

pub fn run(
    config: &Config,
    paths: &[PathBuf],
    now: DateTime<Utc>,
    say: Verbosity,
) -> Result<(), Failure> {
    let state = state_path(config)?;
    let digest = config.digest.as_ref().expect("state_path checked [digest]");
    let mut ledger = ledger::open(state, secrets::state_password().as_deref())?;
    let addresses = unsubscribe::known_addresses(config, ledger.as_ref())?;
    let known: HashSet<String> = addresses.iter().cloned().collect();
    let keys = secrets::unsubscribe_keys()?;
    if digest.bounce_address.is_some() && keys.is_none() {
        say.warn(format!(
            "{} is not set: the tokens of digest.bounce_address cannot be read, so recipients are found from the reports' recipient fields only",
            secrets::SECRET_VAR
        ));
    }
    let resolver = match keys {
        Some(keys) => Some(unsubscribe::resolver_over(
            addresses,
            ledger.as_ref(),
            keys,
        )?),
        None => None,
    };
    let finder = Finder {
        bounce_address: digest.bounce_address.as_ref(),
        resolver: resolver.as_ref(),
        known: &known,
    };
    let rule = SoftRule {
        limit: digest.soft_bounce_limit,
        window: digest.soft_bounce_window,
    };
    let (counts, unreadable) =
        Reader::new(ledger.as_mut(), finder, rule, now, say).read_all(paths)?;
    for why in &unreadable {
        report::error(why);
    }
    say.summary(counts.summary());
    let unreadable = unreadable.len();
    if unreadable > 0 {
        return Err(anyhow::anyhow!(
            "{unreadable} of {} paths could not be read (what could be read is recorded)",
            paths.len()
        )
        .into());
    }
    Ok(())
}
