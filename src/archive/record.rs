//! `issue.json`: what one issue's page carries, kept beside the page so
//! later runs can list the issue and know which articles it carried without
//! reading HTML (the page's look may change; this does not).
//!
//! The record holds public data only (sections, article ids, titles and
//! links, a time); it is what later runs trust about the past, and the
//! archive folder is served, so perhaps writable by others: a record is
//! read only as a plain file (never through a link), and checked like any
//! input before its text goes into HTML or XML. A record that fails is
//! skipped with a warning, never a reason to stop the digest.

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::digest::Group;
use crate::model::{ArticleId, IssueKey, SectionId, Site};

/// The record's name inside the issue's folder.
pub(super) const RECORD_FILE: &str = "issue.json";

/// What `format` says: the layout below, version 1.
const FORMAT: &str = "bulletin-archive-issue/1";

/// A record longer than this is not one bulletin wrote (30 items of a
/// few hundred bytes each make a few KB).
const RECORD_BYTES: u64 = 4 << 20;

/// One issue as its page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Record {
    format: String,
    pub(super) issue: String,
    /// The newest `updated` of the issue's items: a time from the content,
    /// never the clock, so the same issue records the same bytes.
    pub(super) updated: DateTime<FixedOffset>,
    pub(super) sections: Vec<RecordSection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordSection {
    pub(super) id: SectionId,
    pub(super) title: String,
    pub(super) url: Url,
    pub(super) items: Vec<RecordItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordItem {
    pub(super) id: ArticleId,
    pub(super) title: String,
    pub(super) url: Url,
}

impl Record {
    /// The record of a planned page; `None` when it carries nothing.
    pub(super) fn of(site: &Site, issue: &IssueKey, groups: &[Group<'_>]) -> Option<Record> {
        let updated = groups
            .iter()
            .flat_map(|g| &g.items)
            .map(|item| item.article.updated)
            .max()?;
        Some(Record {
            format: FORMAT.to_owned(),
            issue: issue.as_str().to_owned(),
            updated: site.zone.local(updated),
            sections: groups
                .iter()
                .map(|g| RecordSection {
                    id: g.section.id.clone(),
                    title: g.section.title.clone(),
                    url: g.section.url.clone(),
                    items: g
                        .items
                        .iter()
                        .map(|item| RecordItem {
                            id: item.article.id.clone(),
                            title: item.article.title.clone(),
                            url: item.article.url.clone(),
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// The issue's article ids (not its related reads: those were carried
    /// as reading tips, not as news).
    pub(super) fn item_ids(&self) -> impl Iterator<Item = &ArticleId> {
        self.sections.iter().flat_map(|s| &s.items).map(|i| &i.id)
    }

    pub(super) fn item_count(&self) -> usize {
        self.sections.iter().map(|s| s.items.len()).sum()
    }

    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a record serializes");
        bytes.push(b'\n');
        bytes
    }

    /// Reads `dir/issue.json`, the record of issue `name` (the folder's
    /// name); `Err` says why it is not a record to trust.
    pub(super) fn read(dir: &Path, name: &str) -> Result<Record, String> {
        let path = dir.join(RECORD_FILE);
        let bytes = crate::output::read_plain_file(&path, RECORD_BYTES)
            .ok_or_else(|| "missing, not a plain file, or too large".to_owned())?;
        let record: Record = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        record.checked(name)
    }

    /// The record, if everything in it is what bulletin would have written
    /// for issue `name`.
    fn checked(mut self, name: &str) -> Result<Record, String> {
        if self.format != FORMAT {
            return Err(format!("format is {:?}, not {FORMAT:?}", self.format));
        }
        if self.issue != name {
            return Err(format!(
                "it says issue {:?}, but lies in the folder of {name}",
                self.issue
            ));
        }
        let mut ids = HashSet::new();
        for section in &mut self.sections {
            check_url(&section.url)?;
            section.title = one_line(&section.title);
            for item in &mut section.items {
                check_url(&item.url)?;
                if item.id.as_str().is_empty() || !ids.insert(item.id.clone()) {
                    return Err(format!("item id {:?} is empty or repeated", item.id));
                }
                item.title = one_line(&item.title);
            }
        }
        if self.item_count() == 0 {
            return Err("it lists no article".into());
        }
        Ok(self)
    }
}

/// Whether `name` is an issue key (`YYYY-MM-DD`, a real date, written as
/// `IssueKey` writes it): only such folders are issues.
pub(super) fn is_issue_name(name: &str) -> bool {
    NaiveDate::parse_from_str(name, "%Y-%m-%d")
        .is_ok_and(|date| date.format("%Y-%m-%d").to_string() == name)
}

fn check_url(url: &Url) -> Result<(), String> {
    if matches!(url.scheme(), "http" | "https") {
        Ok(())
    } else {
        Err(format!("{url} is not an http(s) URL"))
    }
}

/// Text from a file others may have written, made safe for one line of
/// HTML or XML (no control or non-character code points).
fn one_line(text: &str) -> String {
    crate::text::one_line(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            format: FORMAT.into(),
            issue: "2017-03-25".into(),
            updated: DateTime::parse_from_rfc3339("2017-03-25T07:00:00+08:00").unwrap(),
            sections: vec![RecordSection {
                id: "news".into(),
                title: "新闻".into(),
                url: Url::parse("https://news.example.cn/news/").unwrap(),
                items: vec![RecordItem {
                    id: "a1".into(),
                    title: "标题".into(),
                    url: Url::parse("https://news.example.cn/a1.html").unwrap(),
                }],
            }],
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RECORD_FILE), record().to_bytes()).unwrap();
        assert_eq!(Record::read(dir.path(), "2017-03-25").unwrap(), record());
        let moved = Record::read(dir.path(), "2017-03-26").unwrap_err();
        assert!(moved.contains("folder of 2017-03-26"), "{moved}");
    }

    #[test]
    fn untrusted_records_are_refused_or_cleaned() {
        let mut r = record();
        r.sections[0].items[0].url = Url::parse("javascript:alert(1)").unwrap();
        assert!(r.checked("2017-03-25").is_err());
        let mut r = record();
        let again = r.sections[0].items[0].clone();
        r.sections[0].items.push(again);
        assert!(r.checked("2017-03-25").is_err());
        let mut r = record();
        r.sections[0].items[0].title = "a\u{0B}b\nc\u{FFFE}".into();
        let cleaned = r.checked("2017-03-25").unwrap();
        assert_eq!(cleaned.sections[0].items[0].title, "ab c");
        let mut r = record();
        r.format = "other/2".into();
        assert!(r.checked("2017-03-25").is_err());
    }

    #[test]
    fn a_record_through_a_link_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere.json");
        std::fs::write(&elsewhere, record().to_bytes()).unwrap();
        let issue = dir.path().join("2017-03-25");
        std::fs::create_dir(&issue).unwrap();
        std::os::unix::fs::symlink(&elsewhere, issue.join(RECORD_FILE)).unwrap();
        assert!(Record::read(&issue, "2017-03-25").is_err());
    }

    #[test]
    fn only_dates_name_issues() {
        assert!(is_issue_name("2017-03-25"));
        for bad in [
            "2017-3-25",
            "2017-02-30",
            "index.html",
            "2017-03-25x",
            "+2017-03-25",
        ] {
            assert!(!is_issue_name(bad), "{bad}");
        }
    }
}
