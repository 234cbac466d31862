//! The command line, as clap definitions.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "bulletin", version, about = "RSS, Atom and JSON feeds and an email digest for news sites")]
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
        .map_err(|e| format!("{text:?} is not an RFC 3339 time like 2017-03-24T20:00:00+08:00 ({e})"))
}
