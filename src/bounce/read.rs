//! Reading reports from where mail systems leave them — Maildir folders,
//! mbox files, one message on stdin — and recording what they say in the
//! ledger, batch by batch: each batch one transaction, so a run killed
//! midway leaves whole batches behind, and a rerun reads everything again
//! and records only what is new (events are keyed on the report).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::Finder;
use crate::Failure;
use crate::ledger::{BounceEvent, BounceKind, Ledger, Recorded, SoftRule};
use crate::report::Verbosity;

/// Messages whose events are committed together.
const BATCH: usize = 200;

/// What the run read and did.
#[derive(Debug, Default)]
pub struct Counts {
    pub messages: usize,
    pub hard: usize,
    pub complaints: usize,
    pub soft: usize,
    /// Addresses the soft-bounce rule suppressed in this run.
    pub soft_suppressed: usize,
    pub skipped: usize,
    /// Reports (per recipient) read before.
    pub already: usize,
}

impl Counts {
    /// The closing line of `bulletin bounces`.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "read {} messages: {} hard bounces, {} complaints, {} soft ({} now suppressed), {} skipped",
            self.messages,
            self.hard,
            self.complaints,
            self.soft,
            self.soft_suppressed,
            self.skipped
        );
        if self.already > 0 {
            line.push_str(&format!("; {} already recorded", self.already));
        }
        line
    }
}

/// Reads, classifies and records, batch by batch.
pub struct Reader<'a> {
    ledger: &'a mut dyn Ledger,
    finder: Finder<'a>,
    rule: SoftRule,
    now: DateTime<Utc>,
    say: Verbosity,
    counts: Counts,
    batch: Vec<BounceEvent>,
    batched_messages: usize,
}

impl<'a> Reader<'a> {
    pub fn new(
        ledger: &'a mut dyn Ledger,
        finder: Finder<'a>,
        rule: SoftRule,
        now: DateTime<Utc>,
        say: Verbosity,
    ) -> Reader<'a> {
        Reader {
            ledger,
            finder,
            rule,
            now,
            say,
            counts: Counts::default(),
            batch: Vec::new(),
            batched_messages: 0,
        }
    }

    /// Reads every path (`-` is stdin) and records the last batch; returns
    /// what was read, and a line for each path that could not be read (what
    /// could be read is recorded all the same).
    pub fn read_all(mut self, paths: &[PathBuf]) -> Result<(Counts, Vec<String>), Failure> {
        let mut unreadable = Vec::new();
        for path in paths {
            if let Err(why) = self.path(path)? {
                unreadable.push(why);
            }
        }
        self.flush()?;
        Ok((self.counts, unreadable))
    }

    fn message(&mut self, name: &str, bytes: &[u8]) -> Result<(), Failure> {
        self.counts.messages += 1;
        let events = super::parse(bytes)
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
