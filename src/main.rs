//! `bulletin`: feeds and an email digest for news sites.
//!
//! This is the edge of the program: it parses the command line, reads the
//! clock and the environment, runs one command and picks the exit code
//! (0 success, 1 invalid usage or input, 2 delivery incomplete).

mod cli;
mod config;
mod diag;
mod feed;
mod load;
mod model;
mod output;
mod text;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use chrono::Utc;
use clap::Parser;

use cli::{Cli, Command};
use config::Config;
use diag::Problems;

/// How a command failed, which decides the exit code.
enum Failure {
    /// Bad usage, config, input or template: exit 1, nothing written or sent.
    Invalid(Problems),
    /// Anything else that stopped the command (I/O, ...): exit 1.
    Error(anyhow::Error),
}

impl From<Problems> for Failure {
    fn from(p: Problems) -> Self {
        Failure::Invalid(p)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Error(e)
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
    };
    match run(&cli) {
        Ok(code) => code,
        Err(Failure::Invalid(problems)) => {
            for problem in &problems.0 {
                eprintln!("error: {problem}");
            }
            let n = problems.len();
            eprintln!("bulletin: {n} problem{} found; nothing was written", if n == 1 { "" } else { "s" });
            ExitCode::from(1)
        }
        Err(Failure::Error(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let say = |line: String| {
        if !cli.quiet {
            println!("{line}");
        }
    };
    match &cli.command {
        Command::Build { config, out, now } => {
            let config = Config::from_file(&config.path)?;
            let articles = load::load_articles(&config)?;
            let now = now.now.unwrap_or_else(Utc::now);
            let feeds = feed::plan(&config.site, &articles, now, config.output.items);
            let files = feed::render(&config.site, &feeds, &config.output);
            let dir = out.clone().unwrap_or_else(|| config.output.dir.clone());
            let report = output::write_files(&dir, &files)?;
            say(format!(
                "built {} files ({} changed, {} unchanged) from {} articles into {} in {:.2} s",
                files.len(),
                report.changed,
                report.unchanged,
                articles.len(),
                dir.display(),
                started.elapsed().as_secs_f64()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => {
            let config = Config::from_file(&config.path)?;
            let articles = load::load_articles(&config)?;
            say(format!("checked {} articles and {} sections: no problems", articles.len(), config.site.sections.len()));
            Ok(ExitCode::SUCCESS)
        }
    }
}
