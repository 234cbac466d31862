//! `feeds/index.opml`: every feed, for a reader to subscribe to all at once.
//!
//! One folder per format, so a reader can import just the RSS or just the
//! Atom feeds instead of every story twice.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::{ATOM_FILE, FeedInfo, JSON_FILE, RSS_FILE};
use crate::config::{FeedFormat, Output};
use crate::model::Site;

pub(super) fn render(site: &Site, feeds: &[FeedInfo<'_>], output: &Output) -> Vec<u8> {
    let mut formats = Vec::new();
    if output.writes(FeedFormat::Rss) {
        formats.push(("RSS 2.0", RSS_FILE, Some("RSS2")));
    }
    if output.writes(FeedFormat::Atom) {
        formats.push(("Atom 1.0", ATOM_FILE, None));
    }
    if output.writes(FeedFormat::Json) {
        formats.push(("JSON Feed 1.1", JSON_FILE, None));
    }

    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let result: std::io::Result<()> = (|| {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.write_event(Event::Start(
            BytesStart::new("opml").with_attributes([("version", "2.0")]),
        ))?;
        w.write_event(Event::Start(BytesStart::new("head")))?;
        w.create_element("title")
            .write_text_content(BytesText::new(&format!("{} feeds", site.title)))?;
        w.write_event(Event::End(BytesEnd::new("head")))?;
        w.write_event(Event::Start(BytesStart::new("body")))?;
        for (label, file, version) in &formats {
            w.write_event(Event::Start(
                BytesStart::new("outline").with_attributes([("text", *label)]),
            ))?;
            for feed in feeds {
                let xml_url = feed.url(file);
                let mut outline = BytesStart::new("outline").with_attributes([
                    ("text", feed.title.as_str()),
                    ("title", feed.title.as_str()),
                    ("type", "rss"),
                    ("xmlUrl", xml_url.as_str()),
                    ("htmlUrl", feed.home.as_str()),
                ]);
                if let Some(version) = version {
                    outline.push_attribute(("version", *version));
                }
                w.write_event(Event::Empty(outline))?;
            }
            w.write_event(Event::End(BytesEnd::new("outline")))?;
        }
        w.write_event(Event::End(BytesEnd::new("body")))?;
        w.write_event(Event::End(BytesEnd::new("opml")))?;
        Ok(())
    })();
    result.expect("writing XML into memory cannot fail");
    let mut bytes = w.into_inner();
    bytes.push(b'\n');
    bytes
}
