//! `bulletin`: feeds and an email digest for news sites.
//!
//! This is the edge of the program: it parses the command line, reads the
//! clock and the environment, runs one command and picks the exit code
//! (0 success, 1 invalid usage or input, 2 delivery incomplete).

/// `writeln!` that ignores a closed pipe (`bulletin build | head`): the
/// reader going away is no reason to panic.
macro_rules! ignore_closed {
    ($out:expr, $($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

mod cache;
mod cli;
mod commands;
mod config;
mod diag;
mod digest;
mod feed;
mod load;
mod mail;
mod model;
mod output;
mod parallel;
mod progress;
mod report;
mod signals;
mod state;
mod temp;
mod text;

use std::process::ExitCode;

use chrono::Utc;
use clap::Parser;

use cli::{Cli, Command};
use commands::{Failure, Verbosity};
use config::Config;

/// The run's clock: `--now`, or the real one. A `--now` whose date cannot
/// be written in the site's timezone is a usage error.
fn clock(
    now: Option<chrono::DateTime<Utc>>,
    config: &Config,
) -> Result<chrono::DateTime<Utc>, Failure> {
    let now = now.unwrap_or_else(Utc::now);
    if config.site.zone.representable(now) {
        Ok(now)
    } else {
        let location = diag::Location::file(std::path::Path::new("--now"));
        Err(Failure::Invalid(
            diag::Problem::new(
                location,
                None,
                "is outside the years 1 to 9999 in the site's timezone",
            )
            .into(),
        ))
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    report::init_tracing(cli.quiet, cli.verbose);
    let mut context = report::Context::default();
    match run(&cli, &mut context) {
        Ok(code) => code,
        Err(Failure::Invalid(problems)) => {
            report::problems(&problems, &context);
            let n = problems.len();
            ignore_closed!(
                std::io::stderr(),
                "bulletin: {n} problem{} found; nothing was written or sent",
                if n == 1 { "" } else { "s" }
            );
            ExitCode::from(1)
        }
        Err(Failure::Error(e)) => {
            report::error(&format!("{e:#}"));
            ExitCode::from(1)
        }
        Err(Failure::Busy(why)) => {
            ignore_closed!(std::io::stderr(), "bulletin: {why}");
            ExitCode::from(2)
        }
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

/// Runs the command; what it learns that helps explain a failure (the
/// declared sections) goes into `context`.
fn run(cli: &Cli, context: &mut report::Context) -> Result<ExitCode, Failure> {
    let say = Verbosity {
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    let mut load = |path: &std::path::Path| -> Result<Config, Failure> {
        let config = Config::from_file(path)?;
        context.sections = config.site.sections.iter().map(|s| s.id.clone()).collect();
        Ok(config)
    };
    match &cli.command {
        Command::Build {
            config,
            out,
            now,
            no_cache,
        } => {
            let config = load(&config.path)?;
            signals::remove_temp_files_on_termination();
            commands::build::run(
                &config,
                out.clone(),
                clock(now.now, &config)?,
                !*no_cache,
                say,
            )?;
        }
        Command::Check { config } => {
            let config = load(&config.path)?;
            commands::check::run(&config, say)?;
        }
        Command::Init { dir } => commands::init::run(dir, Utc::now(), say)?,
        Command::Completions { shell } => print(&cli::completions(*shell))?,
        Command::Man { command } => {
            let page = cli::man(command.as_deref()).expect("clap checked the command");
            print(page.as_bytes())?;
        }
        Command::Digest { config, mode, now } => {
            let config = load(&config.path)?;
            let now = clock(now.now, &config)?;
            if let Some(dir) = &mode.dry_run {
                signals::remove_temp_files_on_termination();
                commands::digest::dry_run(&config, dir, now, say)?;
            } else if mode.send {
                let summary = commands::digest::send(&config, now, say)?;
                if !summary.complete {
                    return Ok(ExitCode::from(2));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
