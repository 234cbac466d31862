//! `bulletin check`: validate everything, write nothing.

use chrono::{DateTime, Utc};

use crate::Failure;
use crate::config::Config;
use crate::diag::Problems;
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
