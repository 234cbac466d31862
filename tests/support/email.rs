//! Messages as a mail reader sees them: [`Email`] (parsed with
//! mail-parser, plus its raw bytes), and [`DryRun`], what one
//! `digest --dry-run` did and wrote.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use mail_parser::{MessageParser, MimeHeaders, PartType};

use super::files::read_files;
use super::run::Run;
use super::sites::Listing;

/// What one dry run did and wrote.
pub struct DryRun {
    pub run: Run,
    /// The dry run's folder.
    pub dir: PathBuf,
}

impl DryRun {
    /// Asserts the run succeeded.
    #[track_caller]
    pub fn ok(self) -> DryRun {
        self.run.assert_success();
        self
    }

    /// Every file written, by path relative to the folder (`/`-separated).
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        read_files(&self.dir)
    }

    /// The `.eml` files, by address (file name without `.eml`).
    pub fn emls(&self) -> BTreeMap<String, Vec<u8>> {
        self.files()
            .into_iter()
            .filter_map(|(name, bytes)| {
                let address = name.strip_suffix(".eml")?;
                (!address.contains('/')).then(|| (address.to_owned(), bytes))
            })
            .collect()
    }

    pub fn has_email(&self, address: &str) -> bool {
        self.dir.join(format!("{address}.eml")).exists()
    }

    /// The email to `address`.
    #[track_caller]
    pub fn email(&self, address: &str) -> Email {
        let path = self.dir.join(format!("{address}.eml"));
        let raw = fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "no email for {address} ({e}); written: {:?}\n--- stderr\n{}",
                self.files().keys().collect::<Vec<_>>(),
                self.run.stderr
            )
        });
        Email::parse(raw)
    }

    /// The one email the dry run wrote.
    #[track_caller]
    pub fn only_email(&self) -> Email {
        let emls = self.emls();
        assert_eq!(
            emls.len(),
            1,
            "expected one .eml in {}: {:?}",
            self.dir.display(),
            emls.keys()
        );
        Email::parse(emls.into_values().next().expect("one"))
    }

    /// The listing of the email to `address` (sites using
    /// [`super::LISTING`]).
    #[track_caller]
    pub fn listing(&self, address: &str) -> Listing {
        Listing::parse(&self.email(address).text)
    }

    pub fn index(&self) -> String {
        fs::read_to_string(self.dir.join("index.html")).expect("index.html")
    }
}

/// One message, parsed with mail-parser, plus its raw bytes.
#[derive(Debug)]
pub struct Email {
    pub raw: Vec<u8>,
    pub subject: String,
    /// (display name, address)
    pub from: (Option<String>, String),
    /// Every `To` mailbox: (display name, address).
    pub to: Vec<(Option<String>, String)>,
    /// `List-Id` as mail-parser reads it: (phrase, list id) per entry.
    pub list_id: Vec<(Option<String>, Option<String>)>,
    /// The top-level content type, `type/subtype`.
    pub content_type: String,
    /// The content type and charset of each part of the top-level multipart, in order.
    pub parts: Vec<(String, Option<String>)>,
    pub text: String,
    pub html: String,
}

impl Email {
    /// Parses a message that must have a subject, a sender and exactly a
    /// text/plain and a text/html part, each decoding cleanly.
    #[track_caller]
    pub fn parse(raw: impl Into<Vec<u8>>) -> Email {
        let raw = raw.into();
        let message = MessageParser::default()
            .parse(&raw)
            .expect("mail-parser reads the message");
        let mailboxes = |a: Option<&mail_parser::Address<'_>>| -> Vec<(Option<String>, String)> {
            a.map(|list| {
                list.iter()
                    .map(|a| {
                        (
                            a.name().map(str::to_owned),
                            a.address().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
        };
        let type_of = |ct: Option<&mail_parser::ContentType<'_>>| {
            let ct = ct.expect("a Content-Type");
            format!(
                "{}/{}",
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or("").to_ascii_lowercase()
            )
        };
        let root = message.root_part();
        let mut parts = Vec::new();
        let (mut text, mut html) = (None, None);
        for &id in root.sub_parts().unwrap_or(&[]) {
            let part = message.part(id).expect("a part");
            let ctype = type_of(part.content_type());
            let charset = part
                .content_type()
                .and_then(|c| c.attribute("charset"))
                .map(str::to_ascii_lowercase);
            assert!(
                !part.is_encoding_problem,
                "part {ctype} does not decode cleanly"
            );
            match &part.body {
                PartType::Text(t) if ctype == "text/plain" => text = Some(t.to_string()),
                PartType::Html(t) if ctype == "text/html" => html = Some(t.to_string()),
                other => panic!("unexpected part {ctype}: {other:?}"),
            }
            parts.push((ctype, charset));
        }
        Email {
            subject: message.subject().expect("a Subject").to_owned(),
            from: mailboxes(message.from())
                .into_iter()
                .next()
                .expect("a From address"),
            to: mailboxes(message.to()),
            list_id: message
                .list_id()
                .as_address()
                .map(|a| {
                    a.iter()
                        .map(|e| (e.name().map(str::to_owned), e.address().map(str::to_owned)))
                        .collect()
                })
                .unwrap_or_default(),
            content_type: type_of(root.content_type()),
            parts,
            text: text.expect("a text/plain part"),
            html: html.expect("a text/html part"),
            raw,
        }
    }

    /// The header section of the raw message (up to the first empty line),
    /// as written.
    pub fn raw_headers(&self) -> &str {
        let text = std::str::from_utf8(&self.raw).expect("an ASCII message");
        let end = text.find("\r\n\r\n").expect("a header section");
        &text[..end]
    }

    /// Names of the top-level header fields, in order.
    pub fn header_names(&self) -> Vec<String> {
        self.raw_headers()
            .split("\r\n")
            .filter(|l| !l.starts_with([' ', '\t']))
            .map(|l| l.split(':').next().unwrap_or_default().to_owned())
            .collect()
    }

    /// The raw value of top-level header `name` (case-insensitive), unfolded
    /// and trimmed; `None` when absent. Panics when it occurs twice.
    #[track_caller]
    pub fn header(&self, name: &str) -> Option<String> {
        let mut found = Vec::new();
        let mut current: Option<String> = None;
        for line in self.raw_headers().split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(value) = current.as_mut() {
                    value.push_str(line);
                }
                continue;
            }
            if let Some(value) = current.take() {
                found.push(value);
            }
            if let Some((field, value)) = line.split_once(':')
                && field.eq_ignore_ascii_case(name)
            {
                current = Some(value.to_owned());
            }
        }
        found.extend(current);
        assert!(
            found.len() <= 1,
            "header {name} occurs {} times",
            found.len()
        );
        found.pop().map(|v| v.trim().to_owned())
    }

    /// The unsubscribe URL from `List-Unsubscribe: <URL>`.
    #[track_caller]
    pub fn unsubscribe_url(&self) -> String {
        let value = self.header("List-Unsubscribe").expect("List-Unsubscribe");
        value
            .strip_prefix('<')
            .and_then(|v| v.strip_suffix('>'))
            .unwrap_or_else(|| panic!("List-Unsubscribe is not <URL>: {value}"))
            .to_owned()
    }
}

/// Undoes the HTML escaping Handlebars (and common HTML writers) apply.
pub fn html_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x60;", "`")
        .replace("&#x3D;", "=")
        .replace("&#61;", "=")
        .replace("&amp;", "&")
}

/// Every `href` value in `html`, unescaped, with the text of its link.
pub fn links(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<a href=\"") {
        rest = &rest[start + 9..];
        let end = rest.find('"').expect("a closed href");
        let href = html_unescape(&rest[..end]);
        let text_start = rest.find('>').expect("a closed tag") + 1;
        let text_end = rest.find("</a>").expect("a closed link");
        out.push((href, rest[text_start..text_end].trim().to_owned()));
        rest = &rest[text_end..];
    }
    out
}
