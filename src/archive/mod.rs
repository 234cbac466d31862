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
use crate::model::{ArticleId, IssueKey, Site};
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
        let mut issues = Vec::new();
        for entry in entries {
            let entry = entry
                .with_context(|| format!("cannot list the archive folder {}", dir.display()))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            // `file_type` does not follow links: a linked folder is skipped.
            if record::is_issue_name(&name) && entry.file_type().is_ok_and(|t| t.is_dir()) {
                issues.push(name);
            }
        }
        // Years of daily issues are thousands of records: read on every core.
        let read = crate::parallel::map(&issues, crate::parallel::cores(), |name| {
            Record::read(&dir.join(name), name).map_err(|why| {
                format!(
                    "the archive's issue {name} is left out of the list and the feed: {} {why}",
                    dir.join(name).join(RECORD_FILE).display()
                )
            })
        });
        let (mut records, mut warnings) = (Vec::new(), Vec::new());
        for result in read {
            match result {
                Ok(record) => records.push(record),
                Err(warning) => warnings.push(warning),
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
    pub fn carried_before(&self, issue: &IssueKey) -> HashSet<ArticleId> {
        self.records
            .iter()
            .filter(|r| r.issue.as_str() < issue.as_str())
            .flat_map(|r| r.item_ids().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::{DateTime, Utc};

    use super::*;
    use crate::digest::Item;
    use crate::model::Article;

    fn config(dir: &Path, language: &str) -> Config {
        let text = format!(
            r#"
[site]
title = "Site <&> \"Q\""
base_url = "https://news.example.cn/"
language = "{language}"
timezone = "+08:00"

[input]
paths = ["articles"]

[[sections]]
id = "news"
title = "新闻"

[digest]
subscribers = "s.toml"
archive = "digest"
"#
        );
        Config::parse(&text, &dir.join("feeds.toml"), dir).unwrap()
    }

    fn article(id: &str, title: &str, published: &str) -> Article {
        let published: DateTime<Utc> = DateTime::parse_from_rfc3339(published).unwrap().to_utc();
        Article {
            id: id.into(),
            title: title.into(),
            section: "news".into(),
            url: url::Url::parse(&format!("https://news.example.cn/{id}.html")).unwrap(),
            published,
            updated: published,
            author: None,
            editor: None,
            source: None,
            keywords: Vec::new(),
            summary: Some("summary & more".into()),
            content_html: None,
            image: None,
            related: Vec::new(),
            views: None,
        }
    }

    fn groups<'a>(config: &'a Config, articles: &'a [Article]) -> Vec<Group<'a>> {
        vec![Group {
            section: &config.site.sections[0],
            items: articles
                .iter()
                .map(|article| Item {
                    article,
                    related: Vec::new(),
                })
                .collect(),
        }]
    }

    fn text(publication: &Publication, path: &str) -> String {
        let file = publication.files.iter().find(|f| f.path == path);
        String::from_utf8(file.unwrap_or_else(|| panic!("no {path}")).bytes.clone()).unwrap()
    }

    #[test]
    fn an_issue_makes_its_page_record_list_and_feed_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), "zh-CN");
        let archive = Archive::of(&config).unwrap();
        let past = archive.past().unwrap();
        let articles = [article(
            "a1",
            "<script>x</script> & \"q\"",
            "2017-03-24T10:00:00+08:00",
        )];
        let issue = IssueKey::stored("2017-03-25".into());
        let publication = archive.render(&past, &issue, &groups(&config, &articles));
        let paths: Vec<&str> = publication.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "digest/2017-03-25/index.html",
                "digest/2017-03-25/issue.json",
                "digest/index.html",
                "digest/atom.xml"
            ]
        );
        assert_eq!(
            publication.page_url.as_deref(),
            Some("https://news.example.cn/digest/2017-03-25/")
        );
        let page = text(&publication, "digest/2017-03-25/index.html");
        assert!(
            page.contains("&lt;script&gt;x&lt;/script&gt; &amp; &quot;q&quot;"),
            "{page}"
        );
        assert!(page.contains("Site &lt;&amp;&gt; &quot;Q&quot;"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("2017-03-25 要闻 · 1 条"), "{page}");
        let feed = text(&publication, "digest/atom.xml");
        let doc = roxmltree::Document::parse(&feed).unwrap();
        let title = doc
            .descendants()
            .find(|n| n.has_tag_name("content"))
            .and_then(|n| n.text())
            .unwrap();
        assert!(title.contains("&lt;script&gt;x&lt;/script&gt;"), "{title}");
        assert!(feed.starts_with("<?xml"));
    }

    #[test]
    fn a_later_issue_keeps_the_earlier_page_and_lists_both() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), "en");
        let archive = Archive::of(&config).unwrap();
        let first_articles = [article("a1", "First", "2017-03-24T10:00:00+08:00")];
        let first = IssueKey::stored("2017-03-25".into());
        let publication = archive.render(
            &archive.past().unwrap(),
            &first,
            &groups(&config, &first_articles),
        );
        archive.publish(&publication).unwrap();
        let first_page =
            std::fs::read(dir.path().join("public/digest/2017-03-25/index.html")).unwrap();

        let past = archive.past().unwrap();
        assert!(past.warnings.is_empty());
        let second = IssueKey::stored("2017-03-26".into());
        assert_eq!(
            past.carried_before(&second),
            HashSet::from([ArticleId::from("a1")])
        );
        assert!(past.carried_before(&first).is_empty());
        let second_articles = [article("a2", "Second", "2017-03-25T10:00:00+08:00")];
        let publication = archive.render(&past, &second, &groups(&config, &second_articles));
        assert!(
            publication
                .files
                .iter()
                .all(|f| !f.path.contains("2017-03-25"))
        );
        let index = text(&publication, "digest/index.html");
        let (newer, older) = (
            index.find("2017-03-26/").unwrap(),
            index.find("2017-03-25/").unwrap(),
        );
        assert!(newer < older, "newest first:\n{index}");
        assert!(
            index.contains(">Digest 2017-03-26</a>") && index.contains("1 article"),
            "{index}"
        );
        archive.publish(&publication).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("public/digest/2017-03-25/index.html")).unwrap(),
            first_page
        );
        assert_eq!(archive.past().unwrap().records.len(), 2);
    }

    #[test]
    fn nothing_new_writes_no_page_and_links_one_already_there() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), "zh-CN");
        let archive = Archive::of(&config).unwrap();
        let issue = IssueKey::stored("2017-03-25".into());
        let empty = archive.render(&archive.past().unwrap(), &issue, &[]);
        assert!(empty.files.is_empty() && empty.page_url.is_none());

        let articles = [article("a1", "First", "2017-03-24T10:00:00+08:00")];
        let publication = archive.render(
            &archive.past().unwrap(),
            &issue,
            &groups(&config, &articles),
        );
        archive.publish(&publication).unwrap();
        let again = archive.render(&archive.past().unwrap(), &issue, &[]);
        assert_eq!(again.page_url, publication.page_url);
        assert!(again.files.iter().all(|f| !f.path.contains("2017-03-25")));
    }

    #[test]
    fn a_folder_that_is_not_an_issue_is_skipped_and_a_bad_record_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), "zh-CN");
        let archive = Archive::of(&config).unwrap();
        let root = dir.path().join("public/digest");
        std::fs::create_dir_all(root.join("assets")).unwrap();
        std::fs::create_dir_all(root.join("2017-03-20")).unwrap();
        std::fs::write(root.join("2017-03-20/issue.json"), "{}").unwrap();
        let past = archive.past().unwrap();
        assert!(past.records.is_empty());
        assert_eq!(past.warnings.len(), 1, "{:?}", past.warnings);
        assert!(
            past.warnings[0].contains("2017-03-20"),
            "{:?}",
            past.warnings
        );
    }

    #[test]
    fn an_archive_folder_through_a_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), "zh-CN");
        let archive = Archive::of(&config).unwrap();
        std::fs::create_dir_all(dir.path().join("public")).unwrap();
        std::fs::create_dir_all(dir.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("elsewhere"),
            dir.path().join("public/digest"),
        )
        .unwrap();
        let error = archive.past().err().unwrap().to_string();
        assert!(error.contains("symlink"), "{error}");
    }
}
