//! The `bulletin` binary: the edge of the program. It parses the command
//! line, reads the clock, runs one command through the library and picks
//! the exit code (0 success, 1 invalid usage or input, 2 delivery
//! incomplete or another run busy).

use std::process::ExitCode;

use clap::Parser;

use bulletin::Failure;
use bulletin::cli::Cli;
use bulletin::commands::{self, Done};
use bulletin::report::{self, Verbosity};

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
    let say = Verbosity::from_flags(cli.quiet, cli.verbose);
    report::init_tracing(say);
    let mut context = report::Context::default();
    match commands::run(&cli.command, say, chrono::Utc::now, &mut context) {
        Ok(Done::Complete) => ExitCode::SUCCESS,
        Ok(Done::Incomplete) => ExitCode::from(2),
        Err(Failure::Invalid(problems)) => {
            report::problems(&problems, &context);
            let n = problems.len();
            report::stderr_line(&format!(
                "bulletin: {n} problem{} found; nothing was written or sent",
                if n == 1 { "" } else { "s" }
            ));
            ExitCode::from(1)
        }
        Err(Failure::Error(e)) => {
            report::error(&format!("{e:#}"));
            ExitCode::from(1)
        }
        Err(Failure::Busy(why)) => {
            report::stderr_line(&format!("bulletin: {why}"));
            ExitCode::from(2)
        }
    }
}
