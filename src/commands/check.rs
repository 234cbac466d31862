//! `bulletin check`: validate everything, write nothing.

use super::{Failure, Verbosity, digest};
use crate::config::Config;
use crate::diag::Problems;
use crate::load;

pub fn run(config: &Config, say: Verbosity) -> Result<(), Failure> {
    let mut problems = Problems::default();
    let count = load::validate(config).unwrap_or_else(|p| {
        problems.extend(p);
        0
    });
    if let Err(p) = digest::check(config) {
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
