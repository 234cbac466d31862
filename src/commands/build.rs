//! `bulletin build`: every feed into the output folder, then the WebSub
//! hubs told which of them changed.

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::Failure;
use crate::config::Config;
use crate::feed::cache::BuildCache;
use crate::report::Verbosity;
use crate::{feed, load, output, websub};

/// How `build` runs, from its flags.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Reuse what unchanged inputs gave last time (`--no-cache` turns it off).
    pub use_cache: bool,
    /// Tell the `[websub]` hubs about changed feeds (`--no-ping` turns it off).
    pub ping: bool,
}

pub fn run(
    config: &Config,
    out: Option<&Path>,
    now: DateTime<Utc>,
    options: Options,
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
    let reuse: Option<&dyn load::Reuse<feed::Selection>> = if options.use_cache {
        Some(&cache)
    } else {
        None
    };
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
    let hubs = config.websub.as_ref().map_or(&[][..], |w| &w.hubs[..]);
    let rendered = feed::render(&config.site, &feeds, &config.output, hubs);
    let rendered_at = started.elapsed();
    for trim in &rendered.trimmed {
        say.warn(format!(
            "{}: {} bytes with {} items is over output.max_feed_bytes ({}): it carries the newest {} ({} bytes)",
            trim.path,
            trim.planned_bytes,
            trim.planned,
            config.output.max_feed_bytes,
            trim.kept,
            trim.bytes
        ));
    }
    let files = &rendered.files;
    let dir = out.unwrap_or(&config.output.dir);
    let report = output::write_files(dir, files)?;
    say.detail(format!(
        "read {count} articles in {:.2} s, rendered in {:.2} s, wrote in {:.2} s",
        loaded.as_secs_f64(),
        (rendered_at - loaded).as_secs_f64(),
        (started.elapsed() - rendered_at).as_secs_f64()
    ));
    for file in files {
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
    if let Some(websub) = &config.websub {
        // Only now: the feeds are in place, so a hub that fetches at once
        // gets the new bytes. Only feeds whose bytes changed.
        let changed: Vec<String> = report
            .written
            .iter()
            .filter(|path| feed::is_feed_file(path))
            .map(|path| format!("{}{path}", config.site.base_url))
            .collect();
        if !options.ping {
            say.detail(format!(
                "--no-ping: {} changed feeds not published to WebSub hubs",
                changed.len()
            ));
        } else if changed.is_empty() {
            say.detail("no feed changed: no WebSub hub to tell");
        } else {
            ping(websub, &changed, say);
        }
    }
    Ok(())
}

/// Tells each hub about each changed feed; failures are warnings only.
fn ping(websub: &crate::config::WebSubConfig, feeds: &[String], say: Verbosity) {
    let started = Instant::now();
    // The command decides that the environment's proxy settings apply.
    let http = websub::Http::new(websub.timeout, true);
    let report = websub::publish(&http, &websub.hubs, feeds);
    for failed in &report.failed {
        say.warn(format!(
            "WebSub hub {} was not told that {} changed: {}",
            failed.hub, failed.feed, failed.why
        ));
    }
    for (hub, skipped) in &report.abandoned {
        say.warn(format!(
            "WebSub hub {hub} failed {} times in a row: {skipped} more changed feeds were not published to it",
            websub::ABANDON_AFTER
        ));
    }
    let hubs = websub.hubs.len();
    let not_sent = report.failed.len() + report.abandoned.iter().map(|(_, n)| n).sum::<usize>();
    say.summary(format!(
        "published {} changed feeds to {hubs} WebSub hub{}: {} requests taken, {not_sent} failed, in {:.2} s",
        feeds.len(),
        if hubs == 1 { "" } else { "s" },
        report.sent,
        started.elapsed().as_secs_f64()
    ));
}
