//! `bulletin build`: every feed into the output folder.

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::Failure;
use crate::config::Config;
use crate::feed::cache::BuildCache;
use crate::report::Verbosity;
use crate::{feed, load, output};

pub fn run(
    config: &Config,
    out: Option<&Path>,
    now: DateTime<Utc>,
    use_cache: bool,
    say: Verbosity,
) -> Result<(), Failure> {
    let started = Instant::now();
    let cache = BuildCache::new(
        &config.output.cache,
        config.fingerprint,
        &config.site,
        now,
        config.output.items,
    );
    let reuse: Option<&dyn load::Reuse<feed::Selection>> =
        if use_cache { Some(&cache) } else { None };
    let load::Loaded {
        sink: selection,
        count,
        ..
    } = load::scan(
        config,
        || feed::Selection::new(&config.site, now, config.output.items),
        reuse,
    )?;
    let loaded = started.elapsed();
    let feeds = selection.feeds();
    let files = feed::render(&config.site, &feeds, &config.output);
    let rendered = started.elapsed();
    let dir = out.unwrap_or(&config.output.dir);
    let report = output::write_files(dir, &files)?;
    say.detail(format!(
        "read {count} articles in {:.2} s, rendered in {:.2} s, wrote in {:.2} s",
        loaded.as_secs_f64(),
        (rendered - loaded).as_secs_f64(),
        (started.elapsed() - rendered).as_secs_f64()
    ));
    for file in &files {
        say.detail(format!(
            "{} ({} bytes)",
            dir.join(&file.path).display(),
            file.bytes.len()
        ));
    }
    say.summary(format!(
        "built {} files ({} changed, {} unchanged) from {} articles into {} in {:.2} s",
        files.len(),
        report.changed,
        report.unchanged,
        count,
        dir.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
