//! `bulletin bounces`: reads bounce and complaint reports from Maildir
//! folders, mbox files or stdin, and records what they say in the ledger
//! (`bounce::parse` reads each message, `bounce::Finder` says whom it is
//! about, `Ledger::record_bounces` counts and suppresses).
//!
//! Reports are recorded in batches, each one transaction: a run killed
//! midway leaves whole batches behind, and a rerun reads everything again
//! and records only what is new (events are keyed on the report).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::list::state_path;
use super::secrets;
use crate::Failure;
use crate::bounce::{self, Finder};
use crate::config::Config;
use crate::ledger::{BounceEvent, BounceKind, Ledger, Recorded, SoftRule, Sqlite};
use crate::load::subscribers::load_subscribers;
use crate::report::{self, Verbosity};
use crate::unsubscribe;

/// Messages whose events are committed together.
const BATCH: usize = 200;

/// What the run read and did.
#[derive(Debug, Default)]
struct Counts {
    messages: usize,
    hard: usize,
    complaints: usize,
    soft: usize,
    /// Addresses the soft-bounce rule suppressed in this run.
    soft_suppressed: usize,
    skipped: usize,
    /// Reports (per recipient) read before.
    already: usize,
}

/// Reads, classifies and records, batch by batch.
struct Reader<'a> {
    ledger: &'a mut Sqlite,
    finder: Finder<'a>,
    rule: SoftRule,
    now: DateTime<Utc>,
    say: Verbosity,
    counts: Counts,
    batch: Vec<BounceEvent>,
    batched_messages: usize,
}

impl Reader<'_> {
    fn message(&mut self, name: &str, bytes: &[u8]) -> Result<(), Failure> {
        self.counts.messages += 1;
        let events = bounce::parse(bytes)
            .map_err(|e| e.to_string())
            .and_then(|report| {
                self.finder
                    .events(&report, self.now)
                    .map_err(|e| format!("{} {e}", report.id))
            });
        match events {
            Ok(events) => self.batch.extend(events),
            Err(why) => {
                self.counts.skipped += 1;
                self.say.warn(format!("{name}: skipped: {why}"));
            }
        }
        self.batched_messages += 1;
        if self.batched_messages >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Failure> {
        let events = std::mem::take(&mut self.batch);
        self.batched_messages = 0;
        if events.is_empty() {
            return Ok(());
        }
        let results = self.ledger.record_bounces(&events, self.rule, self.now)?;
        for (event, result) in events.iter().zip(results) {
            let suppressed = match result {
                Recorded::Duplicate => {
                    self.counts.already += 1;
                    continue;
                }
                Recorded::New { suppressed } => suppressed,
            };
            match event.kind {
                BounceKind::Hard => self.counts.hard += 1,
                BounceKind::Complaint => self.counts.complaints += 1,
                BounceKind::Soft => {
                    self.counts.soft += 1;
                    if suppressed {
                        self.counts.soft_suppressed += 1;
                    }
                }
            }
            if suppressed {
                self.say.detail(format!(
                    "suppressed {} ({} {}, report {})",
                    event.address,
                    event.kind.as_str(),
                    event.status,
                    event.report
                ));
            }
        }
        Ok(())
    }

    /// Reads one path; `Err` when it cannot be read (the run goes on).
    fn path(&mut self, path: &Path) -> Result<Result<(), String>, Failure> {
        if path == Path::new("-") {
            let mut bytes = Vec::new();
            if let Err(e) = std::io::stdin().lock().read_to_end(&mut bytes) {
                return Ok(Err(format!("stdin: cannot read: {e}")));
            }
            self.message("stdin", &bytes)?;
            return Ok(Ok(()));
        }
        let shown = path.display();
        let metadata = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => return Ok(Err(format!("{shown}: cannot read: {e}"))),
        };
        if metadata.is_dir() {
            return self.maildir(path);
        }
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => return Ok(Err(format!("{shown}: cannot read: {e}"))),
        };
        let mut reader = BufReader::new(file);
        let is_mbox = match reader.fill_buf() {
            Ok(start) => start.starts_with(b"From "),
            Err(e) => return Ok(Err(format!("{shown}: cannot read: {e}"))),
        };
        if !is_mbox {
            // One message in a file (an .eml).
            let mut bytes = Vec::new();
            if let Err(e) = reader.read_to_end(&mut bytes) {
                return Ok(Err(format!("{shown}: cannot read: {e}")));
            }
            self.message(&shown.to_string(), &bytes)?;
            return Ok(Ok(()));
        }
        for (i, message) in mail_parser::mailbox::mbox::MessageIterator::new(reader).enumerate() {
            match message {
                Ok(m) => self.message(&format!("{shown} (message {})", i + 1), m.contents())?,
                Err(e) => return Ok(Err(format!("{shown}: cannot read: {e}"))),
            }
        }
        Ok(Ok(()))
    }

    /// A Maildir: every file in `cur/` and `new/`, in name order.
    fn maildir(&mut self, path: &Path) -> Result<Result<(), String>, Failure> {
        let shown = path.display();
        let folders = [path.join("cur"), path.join("new")];
        if !folders.iter().any(|f| f.is_dir()) {
            return Ok(Err(format!(
                "{shown}: is a folder but not a Maildir (it has no cur/ or new/)"
            )));
        }
        let mut files: Vec<PathBuf> = Vec::new();
        for folder in folders.iter().filter(|f| f.is_dir()) {
            let entries = match std::fs::read_dir(folder) {
                Ok(e) => e,
                Err(e) => return Ok(Err(format!("{}: cannot read: {e}", folder.display()))),
            };
            for entry in entries {
                match entry {
                    Ok(entry) if entry.path().is_file() => files.push(entry.path()),
                    Ok(_) => {}
                    Err(e) => return Ok(Err(format!("{}: cannot read: {e}", folder.display()))),
                }
            }
        }
        files.sort();
        let mut unreadable = Vec::new();
        for file in files {
            match std::fs::read(&file) {
                Ok(bytes) => self.message(&file.display().to_string(), &bytes)?,
                Err(e) => unreadable.push(format!("{}: cannot read: {e}", file.display())),
            }
        }
        Ok(if unreadable.is_empty() {
            Ok(())
        } else {
            Err(unreadable.join("\n"))
        })
    }
}

pub fn run(
    config: &Config,
    paths: &[PathBuf],
    now: DateTime<Utc>,
    say: Verbosity,
) -> Result<(), Failure> {
    let state = state_path(config)?;
    let digest = config.digest.as_ref().expect("state_path checked [digest]");
    let mut ledger = Sqlite::open(state)?;
    let mut known: HashSet<String> = load_subscribers(&digest.subscribers, &config.site)?
        .into_iter()
        .map(|s| s.email.to_lowercase())
        .collect();
    known.extend(ledger.recipients()?);
    let keys = secrets::unsubscribe_keys()?;
    if digest.bounce_address.is_some() && keys.is_none() {
        say.warn(format!(
            "{} is not set: the tokens of digest.bounce_address cannot be read, so recipients are found from the reports' recipient fields only",
            secrets::SECRET_VAR
        ));
    }
    let resolver = match keys {
        Some(keys) => Some(unsubscribe::resolver(config, &ledger, keys)?),
        None => None,
    };
    let mut reader = Reader {
        ledger: &mut ledger,
        finder: Finder {
            bounce_address: digest.bounce_address.as_ref(),
            resolver: resolver.as_ref(),
            known: &known,
        },
        rule: SoftRule {
            limit: digest.soft_bounce_limit,
            window: digest.soft_bounce_window,
        },
        now,
        say,
        counts: Counts::default(),
        batch: Vec::new(),
        batched_messages: 0,
    };
    let mut unreadable = 0;
    for path in paths {
        if let Err(why) = reader.path(path)? {
            unreadable += 1;
            report::error(&why);
        }
    }
    reader.flush()?;
    let c = &reader.counts;
    let mut summary = format!(
        "read {} messages: {} hard bounces, {} complaints, {} soft ({} now suppressed), {} skipped",
        c.messages, c.hard, c.complaints, c.soft, c.soft_suppressed, c.skipped
    );
    if c.already > 0 {
        summary.push_str(&format!("; {} already recorded", c.already));
    }
    say.summary(summary);
    if unreadable > 0 {
        return Err(anyhow::anyhow!(
            "{unreadable} of {} paths could not be read (what could be read is recorded)",
            paths.len()
        )
        .into());
    }
    Ok(())
}
