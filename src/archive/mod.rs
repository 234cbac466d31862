//! The public archive of the digest (`digest.archive`): every issue's page
//! under `output.dir`, the list of issues and a feed of them.
//!
//! ```text
//! <archive>/<issue>/index.html   the issue: every section, nothing personal
//! <archive>/<issue>/issue.json   what the page carries (record), for later runs
//! <archive>/index.html           every issue, newest first
//! <archive>/atom.xml             the newest `output.items` issues
//! ```
//!
//! What an issue's page carries is planned with the emails
//! (`digest::plan`, [`crate::digest::Digest::public`]): what a subscriber of
//! every section would get whose history is the earlier issues' pages —
//! so each article is on one issue's page, the one where it was first news.
//!
//! The past comes from the archive folder itself, not from the ledger: a
//! dry run writes the archive too but never the ledger; the folder is what
//! readers see, so an issue someone removed from it is gone from the list
//! and the feed as well; and it works the same with any state store. Each
//! run writes only its own issue's page and record (and the list and the
//! feed); an earlier issue's files are never rewritten. Everything is
//! rendered before anything is written, and written through
//! `output::Staging`: all files or none, unchanged ones untouched, the
//! same inputs giving the same bytes.

mod atom;
mod page;
mod record;

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::digest::Group;
use crate::model::{IssueKey, Site};
use crate::output::{OutputFile, Staging, WriteReport};
use record::{RECORD_FILE, Record};

const PAGE_FILE: &str = "index.html";
const FEED_FILE: &str = "atom.xml";

/// The archive a config asks for: where it lies and how it is reached.
pub struct Archive<'a> {
    site: &'a Site,
    /// `output.dir`.
    out: &'a Path,
    /// The folder under `out`, without a trailing `/`.
    folder: &'a str,
    /// Issues in the feed at most.
    feed_items: usize,
}

/// The earlier issues, as their records on disk say.
pub struct Past {
    /// Newest first.
    records: Vec<Record>,
    /// Issue folders whose record could not be trusted (skipped).
    pub warnings: Vec<String>,
}

/// One run's archive files, rendered and not yet written.
pub struct Publication {
    /// This issue's page, when the archive has one ("view in browser").
    pub page_url: Option<String>,
    /// Issues listed.
    pub issues: usize,
    files: Vec<OutputFile>,
}

impl<'a> Archive<'a> {
    /// The archive of `config`, when `digest.archive` is set.
    pub fn of(config: &'a Config) -> Option<Archive<'a>> {
        let folder = config.digest.as_ref()?.archive.as_ref()?;
        Some(Archive {
            site: &config.site,
            out: &config.output.dir,
            folder: folder.as_str(),
            feed_items: config.output.items,
        })
    }

    /// The URL of `rel` inside the archive folder.
    fn url(&self, rel: &str) -> String {
        format!("{}{}/{rel}", self.site.base_url, self.folder)
    }

    /// The URL of an issue's page (its folder: servers answer `index.html`).
    pub fn page_url(&self, issue: &str) -> String {
        self.url(&format!("{issue}/"))
    }

    /// The archive folder on disk.
    pub fn dir(&self) -> std::path::PathBuf {
        self.out.join(self.folder)
    }

    /// Reads the records of the issues already in the archive folder. A
    /// folder named like an issue whose record cannot be trusted is skipped
    /// with a warning; an archive folder reached through a link (it could
    /// lead anywhere) or that cannot be listed is an error.
    pub fn past(&self) -> anyhow::Result<Past> {
        let dir = self.dir();
        // The folder itself and every folder above it (the writes refuse
        // them too).
        crate::output::no_symlink_between(self.out, &Path::new(self.folder).join(PAGE_FILE))?;
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Past {
                    records: Vec::new(),
                    warnings: Vec::new(),
                });
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot list the archive folder {}", dir.display()));
            }
        };
        let mut records = Vec::new();
        let mut warnings = Vec::new();
        for entry in entries {
            let entry =
                entry.with_context(|| format!("cannot list the archive folder {}", dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|n| record::is_issue_name(n)) else {
                continue;
            };
            // `file_type` does not follow links: a linked folder is skipped.
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            match Record::read(&entry.path(), name) {
                Ok(record) => records.push(record),
                Err(why) => warnings.push(format!(
                    "the archive's issue {name} is left out of the list and the feed: {} {why}",
                    entry.path().join(RECORD_FILE).display()
                )),
            }
        }
        records.sort_by(|a, b| b.issue.cmp(&a.issue));
        warnings.sort();
        Ok(Past { records, warnings })
    }

    /// Renders this run's files: `groups`' page and record for `issue`
    /// (none when it carries nothing), the list and the feed of every issue.
    pub fn render(&self, past: &Past, issue: &IssueKey, groups: &[Group<'_>]) -> Publication {
        let mut files = Vec::new();
        let current = Record::of(self.site, issue, groups);
        let index_url = self.url("");
        let feed_url = self.url(FEED_FILE);
        if let Some(record) = &current {
            let page = page::issue_page(
                self.site,
                issue.as_str(),
                groups,
                &self.page_url(issue.as_str()),
                &page::Links {
                    index: &index_url,
                    feed: &feed_url,
                },
            );
            let folder = format!("{}/{}", self.folder, issue.as_str());
            files.push(OutputFile {
                path: format!("{folder}/{PAGE_FILE}"),
                bytes: page.into_bytes(),
            });
            files.push(OutputFile {
                path: format!("{folder}/{RECORD_FILE}"),
                bytes: record.to_bytes(),
            });
        }
        // Every issue, newest first: this run's record in place of the one
        // on disk for the same issue; an earlier run's stays if this run
        // has nothing to add.
        let records: Vec<&Record> = match &current {
            Some(record) => {
                let mut all: Vec<&Record> = past
                    .records
                    .iter()
                    .filter(|r| r.issue != record.issue)
                    .chain([record])
                    .collect();
                all.sort_by(|a, b| b.issue.cmp(&a.issue));
                all
            }
            None => past.records.iter().collect(),
        };
        let page_url = records
            .iter()
            .any(|r| r.issue == issue.as_str())
            .then(|| self.page_url(issue.as_str()));
        if !records.is_empty() {
            let links = page::Links {
                index: &index_url,
                feed: &feed_url,
            };
            let index = page::index_page(self.site, &records, |i| self.page_url(i), &links);
            files.push(OutputFile {
                path: format!("{}/{PAGE_FILE}", self.folder),
                bytes: index.into_bytes(),
            });
            let newest = &records[..records.len().min(self.feed_items)];
            let feed = atom::render(
                self.site,
                newest,
                |i| self.page_url(i),
                &atom::FeedLinks {
                    feed: &feed_url,
                    index: &index_url,
                },
            );
            files.push(OutputFile {
                path: format!("{}/{FEED_FILE}", self.folder),
                bytes: feed,
            });
        }
        Publication {
            page_url,
            issues: records.len(),
            files,
        }
    }

    /// Writes a publication: every file or none, unchanged ones untouched.
    pub fn publish(&self, publication: &Publication) -> anyhow::Result<WriteReport> {
        let mut staging = Staging::new(self.out);
        for file in &publication.files {
            staging
                .add(&file.path, &file.bytes)
                .context("nothing was changed in the archive")?;
        }
        staging.commit()
    }
}

impl Past {
    /// The article ids the pages of issues before `issue` carried: the
    /// history of the archive's reader.
    pub fn carried_before(&self, issue: &IssueKey) -> HashSet<String> {
        self.records
            .iter()
            .filter(|r| r.issue.as_str() < issue.as_str())
            .flat_map(|r| r.item_ids().map(str::to_owned))
            .collect()
    }
}
