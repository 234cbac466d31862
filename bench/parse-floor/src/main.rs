//! The parse floor: the least work any JSONL-to-feeds tool must do.
//!
//! Reads the JSON Lines file line by line (one reused `String`), parses each
//! line with serde_json into an owned record, and keeps the newest 50 records
//! per section (by the `published` string) in a min-heap per section. Writes
//! only one final count line. No date parsing, no validation, no output.
//!
//! `PER_SECTION` 0 keeps nothing: a single-threaded serde_json parse of the
//! file and nothing else, whose cost does not depend on the order of the
//! lines (the heaps' does: in a chronological file every record enters
//! them, and the evicted ones are freed long after they were made).
//!
//!     parse-floor ARTICLES.jsonl [PER_SECTION]

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::io::{BufRead, BufReader};

use serde::Deserialize;

#[allow(dead_code)]
#[derive(Deserialize)]
struct Record {
    id: String,
    title: String,
    section: String,
    url: String,
    published: String,
    updated: Option<String>,
    author: Option<String>,
    editor: Option<String>,
    source: Option<String>,
    keywords: Option<Keywords>,
    summary: Option<String>,
    content_html: Option<String>,
    image: Option<String>,
    related: Option<Vec<String>>,
    views: Option<u64>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(untagged)]
enum Keywords {
    List(Vec<String>),
    One(String),
}

/// A kept record, ordered by (published, id).
struct Kept(Record);

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.0.published, &self.0.id).cmp(&(&other.0.published, &other.0.id))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: parse-floor ARTICLES.jsonl [PER_SECTION]");
    let keep: usize = args.next().map_or(50, |n| n.parse().expect("PER_SECTION"));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    let mut heaps: HashMap<String, BinaryHeap<Reverse<Kept>>> = HashMap::new();
    let mut records = 0usize;
    let mut number = 0usize;
    loop {
        line.clear();
        number += 1;
        if reader.read_line(&mut line).unwrap_or_else(|e| panic!("{path}:{number}: {e}")) == 0 {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let record: Record =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{path}:{number}: {e}"));
        records += 1;
        if keep == 0 {
            continue;
        }
        let heap = match heaps.get_mut(&record.section) {
            Some(heap) => heap,
            None => heaps.entry(record.section.clone()).or_default(),
        };
        if heap.len() < keep {
            heap.push(Reverse(Kept(record)));
        } else if heap.peek().is_some_and(|Reverse(Kept(min))| {
            (&record.published, &record.id) > (&min.published, &min.id)
        }) {
            heap.pop();
            heap.push(Reverse(Kept(record)));
        }
    }
    let kept: usize = heaps.values().map(BinaryHeap::len).sum();
    println!("{records} records, {} sections, {kept} kept", heaps.len());
}

