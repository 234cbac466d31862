//! The command line, as clap definitions. The help, the shell completions
//! (`bulletin completions SHELL`) and the man pages (`bulletin man`) are all
//! generated from these.

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

/// The first steps, in `bulletin --help` and the man page.
const FIRST_STEPS: &str = "  bulletin init mysite && cd mysite    # a working starter site
  bulletin check                       # validate config, articles, subscribers, templates
  bulletin build                       # write public/feeds/...
  bulletin digest --dry-run preview    # the digest emails, as files to look at";

/// The exit codes, in `bulletin --help` and the man page.
const EXIT_STATUS: &str = "\
0  success
1  invalid usage, config, input or template: nothing written, nothing sent
2  delivery incomplete (run `bulletin digest --send` again), or another
   `digest --send` is running";

/// Shown under `bulletin --help`.
fn getting_started() -> String {
    format!(
        "Get started:\n{FIRST_STEPS}\n\nExit status:\n{}\n\nMore: `bulletin help COMMAND`, `bulletin man`, README.md.",
        EXIT_STATUS
            .lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

#[derive(Debug, Parser)]
#[command(
    name = "bulletin",
    version,
    about = "RSS, Atom and JSON feeds and an email digest for news sites",
    long_about = "RSS, Atom and JSON feeds and an email digest for news sites.\n\n\
        Reads article records (TOML, JSON, JSON Lines) listed in a site config \
        (feeds.toml), writes RSS 2.0, Atom 1.0 and JSON Feed 1.1 feeds for the \
        whole site and for every section, and sends subscribers a daily digest \
        of what is new over SMTP, exactly once each.",
    after_help = getting_started()
)]
pub struct Cli {
    /// Print only errors.
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Global options"
    )]
    pub quiet: bool,
    /// Print more detail (each file built, each message sent).
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write every feed (site-wide, per section, per topic) into the output folder.
    ///
    /// Reads every input and validates it first: when any record is invalid,
    /// nothing is written. Files whose bytes would not change are left alone.
    /// With `[websub]`, each hub is then told about every feed whose bytes
    /// changed; a hub that fails is a warning, not a failed build.
    #[command(after_help = "\
Examples:
  bulletin build
  bulletin build --config site/feeds.toml --out /var/www/html
  bulletin build --now 2017-03-24T20:00:00+08:00    # as if it were that time
  bulletin build --no-ping                          # write, but tell no WebSub hub")]
    Build {
        #[command(flatten)]
        config: ConfigArg,
        /// Output folder (default: `output.dir` from the config).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        now: NowArg,
        /// Parse every input again instead of reusing results for inputs
        /// whose bytes did not change (`output.cache`).
        #[arg(long)]
        no_cache: bool,
        /// Do not tell the `[websub]` hubs which feeds changed.
        #[arg(long)]
        no_ping: bool,
    },
    /// Validate the config, every record and the templates; write nothing.
    ///
    /// Lists every problem found, each as `file:line:column: field: what is
    /// wrong`, followed by the offending line of the file.
    #[command(after_help = "\
Examples:
  bulletin check
  bulletin check --config site/feeds.toml")]
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
    #[command(after_help = "\
Examples:
  bulletin digest --dry-run /tmp/digest && xdg-open /tmp/digest/index.html
  bulletin digest --dry-run /tmp/digest --now 2017-03-25T08:00:00+08:00
  BULLETIN_SMTP_PASSWORD=... bulletin digest --send
  bulletin digest --send --shard 2/4 --config shard2.toml

Environment: BULLETIN_SMTP_PASSWORD (when smtp.username is set; with
[[smtp]], BULLETIN_SMTP_PASSWORD_<NAME> per relay, or its password_env),
BULLETIN_UNSUBSCRIBE_SECRET (when digest.unsubscribe_url uses {{token}}).")]
    Digest {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        mode: DigestMode,
        #[command(flatten)]
        now: NowArg,
        /// Only the recipients whose address hashes to part K of N (1 ≤ K ≤
        /// N): the N parts are disjoint and together are every recipient.
        #[arg(long, value_name = "K/N", value_parser = parse_shard)]
        shard: Option<ShardArg>,
    },
    /// Put addresses on the suppression list: they get no digest again.
    ///
    /// With `--token`, the address the token in an unsubscribe link stands
    /// for (the site's own scripts); otherwise the addresses given.
    /// Idempotent: an address already on the list keeps its entry.
    #[command(after_help = "\
Examples:
  bulletin unsubscribe li.ming@example.com
  BULLETIN_UNSUBSCRIBE_SECRET=... bulletin unsubscribe --token 0v4ktq2s7u9m1f3ebq8h2m5n6c

Environment: BULLETIN_UNSUBSCRIBE_SECRET (and BULLETIN_UNSUBSCRIBE_SECRET_PREVIOUS
during a rotation) for --token.")]
    Unsubscribe {
        #[command(flatten)]
        config: ConfigArg,
        /// The token of an unsubscribe link (`{{token}}`).
        #[arg(
            long,
            value_name = "TOKEN",
            conflicts_with = "addresses",
            required_unless_present = "addresses"
        )]
        token: Option<String>,
        /// Addresses to unsubscribe.
        #[arg(value_name = "ADDRESS")]
        addresses: Vec<String>,
    },
    /// Show, export, import or edit the suppression list.
    ///
    /// Addresses on the list get no digest, whatever the subscriber file
    /// says: unsubscribed, bounced, complained or put there by hand. Every
    /// change is idempotent, so a CMS can sync both ways.
    #[command(after_help = "\
Examples:
  bulletin suppressions list
  bulletin suppressions export --format csv > suppressed.csv
  bulletin suppressions import suppressed.csv
  bulletin suppressions remove li.ming@example.com")]
    Suppressions {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        action: SuppressionAction,
    },
    /// Read bounces and complaints, and suppress the addresses they name.
    ///
    /// Reads delivery status notifications (RFC 3464) and abuse reports
    /// (ARF, RFC 5965) from Maildir folders (cur/ and new/), mbox files, or
    /// one message on stdin (`-`). A hard bounce (5.x.x) or a complaint
    /// suppresses its address at once; soft bounces (4.x.x) after
    /// `digest.soft_bounce_limit` within `digest.soft_bounce_window`. The
    /// same report read twice counts once; a message that is not a report is
    /// skipped with a warning. Exit 1 when a path cannot be read.
    #[command(after_help = "\
Examples:
  bulletin bounces ~/Maildir/.Bounces
  bulletin bounces /var/mail/bounces
  # /etc/aliases, for Postfix (then run newaliases):
  bounces: \"|bulletin bounces --config /srv/news/feeds.toml -\"

Environment: BULLETIN_UNSUBSCRIBE_SECRET (and BULLETIN_UNSUBSCRIBE_SECRET_PREVIOUS
during a rotation) to read the token of digest.bounce_address.")]
    Bounces {
        #[command(flatten)]
        config: ConfigArg,
        /// Maildir folders, mbox files, or `-` for one message on stdin.
        #[arg(value_name = "PATH", required = true)]
        paths: Vec<PathBuf>,
    },
    /// Answer unsubscribe links over HTTP: the endpoint of `digest.unsubscribe_url`.
    ///
    /// `POST` with `List-Unsubscribe=One-Click` (RFC 8058), or from the
    /// page's button, puts the token's address on the suppression list; `GET`
    /// shows a page in the site's language with that button and changes
    /// nothing. A bad token gets 400. Runs beside `digest --send`; put it
    /// behind the site's reverse proxy. Stops on SIGTERM or Ctrl-C.
    #[command(after_help = "\
Examples:
  bulletin serve                                     # ./feeds.toml, 127.0.0.1:8025
  bulletin serve --config /srv/news/feeds.toml --listen 127.0.0.1:8025
  curl -d List-Unsubscribe=One-Click 'http://127.0.0.1:8025/unsubscribe?token=...'

Environment: BULLETIN_UNSUBSCRIBE_SECRET (required; and
BULLETIN_UNSUBSCRIBE_SECRET_PREVIOUS during a rotation).")]
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// The address and port to listen on (keep it on loopback behind a
        /// reverse proxy).
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8025")]
        listen: std::net::SocketAddr,
    },
    /// Write a working starter site (config, templates, articles, subscribers) into DIR.
    ///
    /// Refuses to overwrite existing files.
    #[command(after_help = "\
Example:
  bulletin init mysite && cd mysite && bulletin check && bulletin build")]
    Init {
        /// The folder to create the site in (created if missing).
        dir: PathBuf,
    },
    /// Print a shell completion script for bulletin to stdout.
    #[command(after_help = "\
Examples:
  bulletin completions bash > ~/.local/share/bash-completion/completions/bulletin
  bulletin completions zsh > ~/.zfunc/_bulletin     # with fpath+=~/.zfunc in .zshrc
  bulletin completions fish > ~/.config/fish/completions/bulletin.fish
  bulletin completions powershell >> $PROFILE")]
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print a man page (roff) to stdout: bulletin's, or one command's.
    #[command(after_help = "\
Examples:
  bulletin man | man -l -
  bulletin man > ~/.local/share/man/man1/bulletin.1
  bulletin man digest > ~/.local/share/man/man1/bulletin-digest.1")]
    Man {
        /// The command whose page to print (default: the main page).
        #[arg(value_name = "COMMAND", value_parser = COMMANDS)]
        command: Option<String>,
    },
}

/// The commands' names, for `bulletin man COMMAND` (a test keeps the list whole).
const COMMANDS: [&str; 10] = [
    "build",
    "check",
    "digest",
    "unsubscribe",
    "suppressions",
    "bounces",
    "serve",
    "init",
    "completions",
    "man",
];

#[derive(Debug, Subcommand)]
pub enum SuppressionAction {
    /// Every suppressed address, with its reason, time and source.
    List,
    /// The list as CSV (with a header row) or JSON Lines, on stdout.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
    },
    /// Add the addresses of a CSV or JSON Lines file (as `export` writes
    /// them; `email` or `Email Address` columns are taken too). The reason
    /// defaults to `manual`. Nothing is added if any row is wrong.
    Import {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Take addresses off the list (they get the digest again).
    Remove {
        #[arg(value_name = "ADDRESS", required = true)]
        addresses: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
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

/// `--shard K/N` as given: whole numbers, 1 ≤ K ≤ N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardArg {
    pub index: u64,
    pub count: u64,
}

fn parse_shard(text: &str) -> Result<ShardArg, String> {
    let usage = || format!("{text:?} is not K/N with 1 ≤ K ≤ N, like 2/4 (the second of four)");
    let (k, n) = text.split_once('/').ok_or_else(usage)?;
    let (Ok(index), Ok(count)) = (k.trim().parse::<u64>(), n.trim().parse::<u64>()) else {
        return Err(usage());
    };
    if index == 0 || index > count {
        return Err(usage());
    }
    Ok(ShardArg { index, count })
}

fn parse_now(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|e| {
            format!("{text:?} is not an RFC 3339 time like 2017-03-24T20:00:00+08:00 ({e})")
        })
}

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "bulletin", &mut script);
    script
}

/// The man page (roff) of bulletin, or of one of its commands (`None` when
/// there is no such command): the sections clap_mangen renders from the
/// definitions above, plus examples (each command's `after_help`), and for
/// the main page the environment and files.
pub fn man(command: Option<&str>) -> Option<String> {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let (cmd, examples) = match command {
        None => (cli.clone(), FIRST_STEPS.to_owned()),
        Some(name) => {
            let sub = cli.find_subcommand(name)?;
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            // The page's heading says "EXAMPLES" already.
            let examples = match help.split_once('\n') {
                Some((first, rest)) if first.starts_with("Example") => rest.to_owned(),
                _ => help,
            };
            (sub.clone(), examples)
        }
    };
    let page = clap_mangen::Man::new(cmd.clone())
        .source(format!("bulletin {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    let mut render = || -> std::io::Result<()> {
        let out: &mut dyn Write = &mut out;
        page.render_title(out)?;
        page.render_name_section(out)?;
        page.render_synopsis_section(out)?;
        page.render_description_section(out)?;
        if cmd.get_arguments().any(|a| !a.is_hide_set()) {
            page.render_options_section(out)?;
        }
        if cmd.has_subcommands() {
            page.render_subcommands_section(out)?;
        }
        if !examples.is_empty() {
            roff_section(out, "EXAMPLES", &examples)?;
        }
        if command.is_none() {
            roff_section(out, "EXIT STATUS", EXIT_STATUS)?;
            roff_section(
                out,
                "ENVIRONMENT",
                "BULLETIN_SMTP_PASSWORD       the SMTP password, when smtp.username is set
BULLETIN_SMTP_PASSWORD_<NAME> with [[smtp]]: the password of the relay of
                             that name (upper-cased, - as _), unless its
                             password_env names another variable
BULLETIN_UNSUBSCRIBE_SECRET  the key of the unsubscribe tokens, when
                             digest.unsubscribe_url uses {{token}}
NO_COLOR                     set to anything: no colour in messages",
            )?;
            roff_section(
                out,
                "FILES",
                "feeds.toml                   the site configuration (--config)
<output.dir>/feeds/          the feeds that build writes",
            )?;
            page.render_version_section(out)?;
        }
        Ok(())
    };
    render().expect("writing to memory");
    let text = String::from_utf8(out).expect("roff is UTF-8");
    // Each section clap_mangen renders starts with the definition of the
    // apostrophe string; keep one, after the title, so the page starts with `.TH`.
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    let text = text.replace(PREAMBLE, "");
    let (title, rest) = text.split_once('\n').unwrap_or((&text, ""));
    Some(format!("{title}\n{PREAMBLE}{rest}"))
}

/// A man page section whose text is kept as laid out (no filling).
fn roff_section(out: &mut dyn Write, heading: &str, text: &str) -> std::io::Result<()> {
    if heading.contains(' ') {
        writeln!(out, ".SH \"{heading}\"\n.nf")?;
    } else {
        writeln!(out, ".SH {heading}\n.nf")?;
    }
    for line in text.lines() {
        let line = line.replace('\\', "\\e").replace('-', "\\-");
        let guard = if line.starts_with(['.', '\'']) {
            "\\&"
        } else {
            ""
        };
        writeln!(out, "{guard}{line}")?;
    }
    writeln!(out, ".fi")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn man_knows_every_command() {
        let cli = Cli::command();
        let names: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
        assert_eq!(names, COMMANDS);
    }

    #[test]
    fn every_man_page_renders() {
        for command in std::iter::once(None).chain(COMMANDS.map(Some)) {
            let page = man(command).unwrap();
            assert!(page.starts_with(".TH "), "{page}");
            assert_eq!(page.matches(".ds Aq").count(), 2, "{page}");
            assert!(page.contains("\n.SH EXAMPLES\n"), "{command:?}: {page}");
        }
        assert_eq!(man(Some("nope")), None);
    }
}
