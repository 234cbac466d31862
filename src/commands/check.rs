//! `bulletin check`: validate everything, write nothing.

use chrono::{DateTime, Utc};

use crate::Failure;
use crate::config::Config;
use crate::diag::{Location, Problem, Problems};
use crate::digest;
use crate::ledger::{self, Ledger};
use crate::load;
use crate::report::Verbosity;

pub fn run(config: &Config, now: DateTime<Utc>, say: Verbosity) -> Result<(), Failure> {
    let mut problems = Problems::default();
    let count = load::validate(config).unwrap_or_else(|p| {
        problems.extend(p);
        0
    });
    let setup = digest::sample::check(config, now).unwrap_or_else(|p| {
        problems.extend(p);
        None
    });
    let verp = config
        .digest
        .as_ref()
        .is_some_and(|d| d.bounce_address.is_some());
    if verp && super::secrets::var(super::secrets::SECRET_VAR).is_none() {
        problems.push(Problem::new(
            Location::file(&config.path),
            Some("digest.bounce_address"),
            format!(
                "uses {{{{token}}}}, but the environment variable {} (the key for its tokens) is not set",
                super::secrets::SECRET_VAR
            ),
        ));
    }
    // Each relay's password, when it has a username (sendmail has none).
    let several = config.relays.len() > 1;
    for (i, smtp) in config.relays.iter().enumerate() {
        if smtp.transport == crate::config::Transport::Smtp
            && let Err(message) = super::digest::missing_password(smtp)
        {
            let key = if several {
                format!("smtp[{i}].username")
            } else {
                "smtp.username".to_owned()
            };
            problems.push(Problem::new(
                Location::file(&config.path),
                Some(&key),
                message,
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Failure::Invalid(problems));
    }
    let subscribers = match &setup {
        Some(setup) => {
            let ledger = ledger::open_read_only(
                &setup.digest.state,
                super::secrets::state_password().as_deref(),
            )?;
            let suppressed = digest::suppressed(ledger.as_deref().map(|l| l as &dyn Ledger))?;
            let leaving = setup
                .subscribers
                .iter()
                .filter(|s| digest::is_suppressed(s, &suppressed))
                .count();
            format!(
                ", {} subscribers ({leaving} suppressed) and templates",
                setup.subscribers.len()
            )
        }
        None => String::new(),
    };
    say.summary(format!(
        "checked {} articles, {} sections{subscribers}: no problems",
        count,
        config.site.sections.len(),
    ));
    Ok(())
}
