//! The command line, as clap definitions.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "bulletin",
    version,
    about = "RSS, Atom and JSON feeds and an email digest for news sites"
)]
pub struct Cli {
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail (warnings about data, each file written).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write every feed (site-wide and per section) into the output folder.
    ///
    /// Reads every input and validates it first: when any record is invalid,
    /// nothing is written. Files whose bytes would not change are left alone.
    ///
    /// Example: bulletin build --config feeds.toml --now 2017-03-24T20:00:00+08:00
    Build {
        #[command(flatten)]
        config: ConfigArg,
        /// Output folder (default: `output.dir` from the config).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        now: NowArg,
    },
    /// Validate the config, every record and the templates; write nothing.
    ///
    /// Lists every problem found, each as `file:line:column: field: what is wrong`.
    ///
    /// Example: bulletin check --config feeds.toml
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Compose the email digest of what is new, and preview or send it.
    ///
    /// `--dry-run DIR` writes one .eml per recipient (exactly as it would be
    /// sent) plus DIR/index.html linking an HTML preview of each, and changes
    /// no state. `--send` delivers over SMTP and records every outcome;
    /// running it again sends nothing twice and completes an interrupted run.
    ///
    /// Example: bulletin digest --dry-run /tmp/digest --now 2017-03-25T08:00:00+08:00
    Digest {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        mode: DigestMode,
        #[command(flatten)]
        now: NowArg,
    },
    /// Write a working starter site (config, templates, articles, subscribers) into DIR.
    ///
    /// Refuses to overwrite existing files.
    ///
    /// Example: bulletin init mysite && cd mysite && bulletin build
    Init {
        /// The folder to create the site in (created if missing).
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct DigestMode {
    /// Write the messages into DIR instead of sending them.
    #[arg(long, value_name = "DIR")]
    pub dry_run: Option<PathBuf>,
    /// Send the messages over SMTP (or to sendmail) and record what was sent.
    #[arg(long)]
    pub send: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The site configuration.
    #[arg(long = "config", value_name = "FILE", default_value = "feeds.toml")]
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct NowArg {
    /// Fix the clock (RFC 3339), for reruns and tests.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    pub now: Option<DateTime<Utc>>,
}

fn parse_now(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|e| {
            format!("{text:?} is not an RFC 3339 time like 2017-03-24T20:00:00+08:00 ({e})")
        })
}
