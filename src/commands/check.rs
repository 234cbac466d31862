//! `bulletin check`: validate everything, write nothing.

use chrono::{DateTime, Utc};

use crate::Failure;
use crate::config::Config;
use crate::diag::{Location, Problem, Problems};
use crate::load;
use crate::report::Verbosity;

pub fn run(config: &Config, now: DateTime<Utc>, say: Verbosity) -> Result<(), Failure> {
    let mut problems = Problems::default();
    let count = load::validate(config).unwrap_or_else(|p| {
        problems.extend(p);
        0
    });
    if let Err(p) = crate::digest::sample::check(config, now) {
        problems.extend(p);
    }
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
    if !problems.is_empty() {
        return Err(Failure::Invalid(problems));
    }
    say.summary(format!(
        "checked {} articles, {} sections{}: no problems",
        count,
        config.site.sections.len(),
        if config.digest.is_some() {
            ", subscribers and templates"
        } else {
            ""
        }
    ));
    Ok(())
}
