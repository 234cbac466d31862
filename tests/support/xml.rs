//! Feeds read back. Every XML file a test looks at goes through
//! [`strict_xml`] (roxmltree, which enforces XML 1.0's character rules) as
//! well as `feed-rs`, because `feed-rs` alone accepts documents that strict
//! readers refuse.

use std::path::Path;

use serde_json::Value;

use super::files::{files_under, read};

/// Checks that `bytes` is a well-formed XML 1.0 document by a strict parser:
/// UTF-8, `<?xml` as the very first bytes, and no character XML forbids
/// (roxmltree refuses U+000B, U+FFFE and the like).
pub fn check_strict_xml(bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    if !text.starts_with("<?xml") {
        return Err(format!(
            "does not start with `<?xml`: {:?}",
            &text[..text.len().min(40)]
        ));
    }
    roxmltree::Document::parse(text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// [`check_strict_xml`], panicking with the reason.
#[track_caller]
pub fn strict_xml(bytes: &[u8]) {
    if let Err(e) = check_strict_xml(bytes) {
        panic!("not strict XML 1.0: {e}");
    }
}

/// Parses XML text that must be strict; panics otherwise.
#[track_caller]
pub fn xml_doc(text: &str) -> roxmltree::Document<'_> {
    strict_xml(text.as_bytes());
    roxmltree::Document::parse(text).expect("checked above")
}

/// A feed read back: strict XML first, then feed-rs.
#[track_caller]
pub fn parse_feed(name: &str, bytes: &[u8]) -> feed_rs::model::Feed {
    if let Err(e) = check_strict_xml(bytes) {
        panic!("{name} is not strict XML 1.0: {e}");
    }
    feed_rs::parser::parse(bytes).unwrap_or_else(|e| panic!("feed-rs cannot parse {name}: {e}"))
}

/// Checks every `.xml` under `out` with [`parse_feed`], every `.json` with
/// serde_json and every `.opml` with [`check_strict_xml`]; any other file
/// fails. Returns how many files it checked.
pub fn assert_all_feeds_valid(out: &Path) -> usize {
    let files = files_under(out);
    for rel in &files {
        let bytes = read(&out.join(rel));
        if rel.ends_with(".xml") {
            parse_feed(rel, &bytes);
        } else if rel.ends_with(".opml") {
            if let Err(e) = check_strict_xml(&bytes) {
                panic!("{rel} is not strict XML 1.0: {e}");
            }
        } else if rel.ends_with(".json") {
            serde_json::from_slice::<Value>(&bytes)
                .unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"));
        } else {
            panic!("unexpected file in the output: {rel}");
        }
    }
    files.len()
}

/// The text of the first child element of `node` named `name` (any namespace).
pub fn child_text<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .and_then(|c| c.text())
}

/// Every element named `name` (local name, any namespace) under `doc`.
pub fn elements<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    name: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
    doc.descendants()
        .filter(move |n| n.is_element() && n.tag_name().name() == name)
}
