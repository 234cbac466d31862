//! `bulletin unsubscribe` and `bulletin suppressions`: the suppression list
//! from the command line. Every change is idempotent.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::secrets;
use crate::Failure;
use crate::cli::{ExportFormat, SuppressionAction};
use crate::config::Config;
use crate::diag::{Location, Problem};
use crate::ledger::{self, Reason};
use crate::model::RecipientKey;
use crate::model::State;
use crate::report::Verbosity;
use crate::unsubscribe::{self, Done};
use crate::{report, suppression};

/// The state database of `[digest]`.
pub(super) fn state_path(config: &Config) -> Result<&State, Failure> {
    match &config.digest {
        Some(digest) => Ok(&digest.state),
        None => Err(Problem::new(
            Location::file(&config.path),
            Some("digest"),
            "the suppression list lives in the digest's state database: the config has no [digest] table",
        )
        .into()),
    }
}

/// An address as given on the command line, checked.
fn address(text: &str) -> Result<RecipientKey, Failure> {
    let text = text.trim();
    match text.parse::<lettre::Address>() {
        Ok(_) => Ok(RecipientKey::of(text)),
        Err(e) => Err(Problem::new(
            Location::file(Path::new("ADDRESS")),
            None,
            format!("{text:?} is not an email address: {e}"),
        )
        .into()),
    }
}

pub fn unsubscribe(
    config: &Config,
    token: Option<&str>,
    addresses: &[String],
    now: DateTime<Utc>,
    say: Verbosity,
) -> Result<(), Failure> {
    let path = state_path(config)?;
    // Checked before the database is touched: a typo changes nothing.
    let addresses = addresses
        .iter()
        .map(|a| address(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ledger = ledger::open(path, secrets::state_password().as_deref())?;
    let mut done = Vec::new();
    if let Some(token) = token {
        let keys = secrets::unsubscribe_keys()?.ok_or_else(|| {
            Problem::new(
                Location::file(Path::new("--token")),
                None,
                format!(
                    "needs the environment variable {} (the key the token was made with)",
                    secrets::SECRET_VAR
                ),
            )
        })?;
        let resolver = unsubscribe::resolver(config, ledger.as_ref(), keys)?;
        match unsubscribe::by_token(
            ledger.as_mut(),
            &resolver,
            token,
            "token (command line)",
            now,
        )? {
            Some(d) => done.push(d),
            None => {
                return Err(Problem::new(
                    Location::file(Path::new("--token")),
                    None,
                    "is not a token of this site (forged, truncated, or made with another secret); nothing changed",
                )
                .into());
            }
        }
    }
    for address in addresses {
        done.push(unsubscribe::by_address(
            ledger.as_mut(),
            address,
            Reason::Unsubscribed,
            "command line",
            now,
        )?);
    }
    for d in &done {
        match d {
            Done::Added(a) => say.summary(format!("unsubscribed {a}")),
            Done::Already(a) => say.summary(format!("{a} was already on the suppression list")),
        }
    }
    Ok(())
}

pub fn suppressions(
    config: &Config,
    action: &SuppressionAction,
    now: DateTime<Utc>,
    say: Verbosity,
) -> Result<(), Failure> {
    let path = state_path(config)?;
    match action {
        SuppressionAction::List => {
            let list = match ledger::open_read_only(path, secrets::state_password().as_deref())? {
                Some(ledger) => ledger.suppressions()?,
                None => Vec::new(),
            };
            for s in &list {
                report::stdout_line(&format!(
                    "{}\t{}\t{}\t{}",
                    s.address,
                    s.reason,
                    s.at.to_rfc3339(),
                    s.source
                ));
            }
            say.detail(format!("{} suppressed", list.len()));
        }
        SuppressionAction::Export { format } => {
            let list = match ledger::open_read_only(path, secrets::state_password().as_deref())? {
                Some(ledger) => ledger.suppressions()?,
                None => Vec::new(),
            };
            let bytes = match format {
                ExportFormat::Csv => suppression::to_csv(&list),
                ExportFormat::Jsonl => suppression::to_jsonl(&list),
            };
            super::print(&bytes)?;
        }
        SuppressionAction::Import { file } => {
            let list = suppression::read(file, now)?;
            let mut ledger = ledger::open(path, secrets::state_password().as_deref())?;
            let added = ledger.suppress(&list)?;
            say.summary(format!(
                "imported {} addresses from {}: {added} added, {} already suppressed",
                list.len(),
                file.display(),
                list.len() - added
            ));
        }
        SuppressionAction::Remove { addresses } => {
            let addresses = addresses
                .iter()
                .map(|a| address(a))
                .collect::<Result<Vec<_>, _>>()?;
            let mut ledger = ledger::open(path, secrets::state_password().as_deref())?;
            let removed = ledger.unsuppress(&addresses)?;
            say.summary(format!(
                "removed {removed} of {} addresses from the suppression list",
                addresses.len()
            ));
        }
    }
    Ok(())
}
