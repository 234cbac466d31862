//! One function per command. A command reads its flags and the environment,
//! calls the library (config, load, feed, digest, ledger, deliver, output)
//! and says what happened. Only these functions and `main` see the clock and
//! the environment; everything below them gets both as values.

pub mod bounces;
pub mod build;
pub mod check;
pub mod digest;
pub mod init;
pub mod list;
pub mod secrets;
pub mod serve;

use chrono::{DateTime, Utc};

use crate::Failure;
use crate::cli::Command;
use crate::config::Config;
use crate::diag::{Location, Problem};
use crate::report::{self, Verbosity};

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Complete,
    /// Delivery left messages pending (exit 2).
    Incomplete,
}

/// The real clock, or a fixed one in tests.
pub type Clock = fn() -> DateTime<Utc>;

/// Runs one command; what it learns that helps explain a failure (the
/// declared sections) goes into `context`.
pub fn run(
    command: &Command,
    say: Verbosity,
    clock: Clock,
    context: &mut report::Context,
) -> Result<Done, Failure> {
    let mut load = |path: &std::path::Path| -> Result<Config, Failure> {
        let config = Config::from_file(path)?;
        context.sections = config
            .site
            .sections
            .iter()
            .map(|s| s.id.to_string())
            .collect();
        Ok(config)
    };
    match command {
        Command::Build {
            config,
            out,
            now,
            no_cache,
            no_ping,
        } => {
            let config = load(&config.path)?;
            let now = run_time(now.now, clock, &config)?;
            crate::signals::remove_temp_files_on_termination();
            let options = build::Options {
                use_cache: !*no_cache,
                ping: !*no_ping,
            };
            build::run(&config, out.as_deref(), now, options, say)?;
        }
        Command::Check { config } => {
            let config = load(&config.path)?;
            check::run(&config, clock(), say)?;
        }
        Command::Unsubscribe {
            config,
            token,
            addresses,
        } => {
            let config = load(&config.path)?;
            list::unsubscribe(&config, token.as_deref(), addresses, clock(), say)?;
        }
        Command::Suppressions { config, action } => {
            let config = load(&config.path)?;
            list::suppressions(&config, action, clock(), say)?;
        }
        Command::Bounces { config, paths } => {
            let config = load(&config.path)?;
            bounces::run(&config, paths, clock(), say)?;
        }
        Command::Serve { config, listen } => {
            let config = load(&config.path)?;
            serve::run(&config, *listen, clock, say)?;
        }
        Command::Init { dir } => init::run(dir, clock(), say)?,
        Command::Completions { shell } => print(&crate::cli::completions(*shell))?,
        Command::Man { command } => {
            let page = crate::cli::man(command.as_deref()).expect("clap checked the command");
            print(page.as_bytes())?;
        }
        Command::Digest {
            config,
            mode,
            now,
            shard,
        } => {
            let config = load(&config.path)?;
            let given = now.now.is_some();
            let now = run_time(now.now, clock, &config)?;
            let shard = shard.map(|s| {
                crate::model::Shard::new(s.index, s.count).expect("the command line checked K/N")
            });
            if let Some(dir) = &mode.dry_run {
                crate::signals::remove_temp_files_on_termination();
                digest::dry_run(&config, dir, now, given, shard, say)?;
            } else if mode.send {
                return digest::send(&config, now, given, shard, clock, say);
            }
        }
    }
    Ok(Done::Complete)
}

/// The run's time: `--now`, or the clock. A `--now` whose date cannot be
/// written in the site's timezone is a usage error.
fn run_time(
    now: Option<DateTime<Utc>>,
    clock: Clock,
    config: &Config,
) -> Result<DateTime<Utc>, Failure> {
    let now = now.unwrap_or_else(clock);
    if config.site.zone.representable(now) {
        Ok(now)
    } else {
        let location = Location::file(std::path::Path::new("--now"));
        Err(Problem::new(
            location,
            None,
            "is outside the years 1 to 9999 in the site's timezone",
        )
        .into())
    }
}

/// Writes generated text to stdout; a reader that stopped early (`| head`)
/// is no error.
fn print(bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(anyhow::Error::new(e)
            .context("cannot write to stdout")
            .into()),
        _ => Ok(()),
    }
}
