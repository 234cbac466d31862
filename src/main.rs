//! `bulletin`: feeds and an email digest for news sites.
//!
//! This is the edge of the program: it parses the command line, reads the
//! clock and the environment, runs one command and picks the exit code
//! (0 success, 1 invalid usage or input, 2 delivery incomplete).

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
mod state;
mod text;

use std::process::ExitCode;

use chrono::Utc;
use clap::Parser;

use cli::{Cli, Command};
use commands::{Failure, Verbosity};
use config::Config;

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
    match run(&cli) {
        Ok(code) => code,
        Err(Failure::Invalid(problems)) => {
            for problem in &problems.0 {
                eprintln!("error: {problem}");
            }
            let n = problems.len();
            eprintln!(
                "bulletin: {n} problem{} found; nothing was written or sent",
                if n == 1 { "" } else { "s" }
            );
            ExitCode::from(1)
        }
        Err(Failure::Error(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
        Err(Failure::Busy(why)) => {
            eprintln!("bulletin: {why}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, Failure> {
    let say = Verbosity {
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    match &cli.command {
        Command::Build { config, out, now } => {
            let config = Config::from_file(&config.path)?;
            commands::build::run(&config, out.clone(), now.now.unwrap_or_else(Utc::now), say)?;
        }
        Command::Check { config } => {
            let config = Config::from_file(&config.path)?;
            commands::check::run(&config, say)?;
        }
        Command::Init { dir } => commands::init::run(dir, Utc::now(), say)?,
        Command::Digest { config, mode, now } => {
            let config = Config::from_file(&config.path)?;
            let now = now.now.unwrap_or_else(Utc::now);
            if let Some(dir) = &mode.dry_run {
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
