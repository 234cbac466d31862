//! The digest suite's harness: throw-away sites on disk, the real `bulletin`
//! binary run against them, and readers for what a dry run wrote.
//!
//! Two kinds of site:
//!
//! - [`Site::example`]: a copy of the repository's example site (`feeds.toml`,
//!   `examples/`, `templates/`) in a temporary folder, so the repository's own
//!   `.bulletin/` is never touched;
//! - [`Small`]: a tiny site written by the test, whose plain-text template is
//!   [`LISTING`], a machine-readable list of what each email carries.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_bulletin");

/// The clock of the example digest.
pub const NOW: &str = "2017-03-25T08:00:00+08:00";

/// The issue (date in the site's timezone) of a run at [`NOW`].
pub const ISSUE: &str = "2017-03-25";

/// The environment variable holding the unsubscribe-token key.
pub const SECRET_VAR: &str = "BULLETIN_UNSUBSCRIBE_SECRET";

/// The key every run uses unless a test says otherwise.
pub const SECRET: &str = "test-secret";

/// The repository's top-level folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How one run of the binary ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn assert_ok(&self) -> &Run {
        assert_eq!(
            self.code, 0,
            "expected success\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_invalid(&self) -> &Run {
        assert_eq!(
            self.code, 1,
            "expected exit 1\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "a panic is not an error message:\n{}",
            self.stderr
        );
        self
    }

    /// Asserts stderr contains every one of `needles`.
    #[track_caller]
    pub fn assert_stderr_has(&self, needles: &[&str]) -> &Run {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?}:\n{}",
                self.stderr
            );
        }
        self
    }
}

/// A site in a temporary folder. Commands run with the folder as their
/// working directory and with [`SECRET_VAR`] set to [`SECRET`].
pub struct Site {
    dir: TempDir,
}

impl Site {
    /// An empty site folder.
    pub fn empty() -> Site {
        let dir = tempfile::Builder::new()
            .prefix("bulletin-digest-test-")
            .tempdir()
            .expect("create a temporary folder");
        Site { dir }
    }

    /// A copy of the repository's example site: `feeds.toml`, `examples/`,
    /// `templates/`.
    pub fn example() -> Site {
        let site = Site::empty();
        let root = repo_root();
        fs::copy(root.join("feeds.toml"), site.path("feeds.toml")).expect("copy feeds.toml");
        copy_dir(&root.join("examples"), &site.path("examples"));
        copy_dir(&root.join("templates"), &site.path("templates"));
        site
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create folder");
        }
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    pub fn read(&self, rel: &str) -> String {
        let path = self.path(rel);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Rewrites a file through `edit`, asserting the edit changed something.
    #[track_caller]
    pub fn edit(&self, rel: &str, edit: impl FnOnce(&str) -> String) {
        let before = self.read(rel);
        let after = edit(&before);
        assert_ne!(before, after, "the edit of {rel} changed nothing");
        self.write(rel, &after);
    }

    /// Runs `bulletin ARGS` in the site folder with the default environment.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Runs `bulletin ARGS` with environment changes: `Some` sets a
    /// variable, `None` removes it.
    pub fn run_env(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Run {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(self.root())
            .env(SECRET_VAR, SECRET)
            .env_remove("BULLETIN_SMTP_PASSWORD")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LOG");
        for (name, value) in env {
            match value {
                Some(v) => command.env(name, v),
                None => command.env_remove(name),
            };
        }
        let out = command.output().expect("run the bulletin binary");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `bulletin check --config feeds.toml`.
    pub fn check(&self) -> Run {
        self.run(&["check", "--config", "feeds.toml"])
    }

    /// `bulletin digest --config feeds.toml --dry-run OUT --now NOW` into the
    /// site's folder `out`.
    pub fn dry_run(&self, out: &str, now: &str) -> DryRun {
        self.dry_run_env(out, now, &[])
    }

    pub fn dry_run_env(&self, out: &str, now: &str, env: &[(&str, Option<&str>)]) -> DryRun {
        let dir = self.path(out);
        let run = self.run_env(
            &[
                "digest",
                "--config",
                "feeds.toml",
                "--dry-run",
                dir.to_str().expect("a UTF-8 temporary path"),
                "--now",
                now,
            ],
            env,
        );
        DryRun { run, dir }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create folder");
    for entry in fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("read folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// What one dry run did and wrote.
pub struct DryRun {
    pub run: Run,
    pub dir: PathBuf,
}

impl DryRun {
    #[track_caller]
    pub fn ok(self) -> DryRun {
        self.run.assert_ok();
        self
    }

    /// Every file written, by path relative to the output folder (`/`-separated).
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        if self.dir.exists() {
            collect(&self.dir, "", &mut files);
        }
        files
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

    /// The listing of the email to `address` (sites using [`LISTING`]).
    #[track_caller]
    pub fn listing(&self, address: &str) -> Listing {
        Listing::parse(&self.email(address).text)
    }

    pub fn index(&self) -> String {
        fs::read_to_string(self.dir.join("index.html")).expect("index.html")
    }
}

fn collect(dir: &Path, prefix: &str, files: &mut BTreeMap<String, Vec<u8>>) {
    for entry in fs::read_dir(dir).expect("read folder") {
        let entry = entry.expect("read folder entry");
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_type().expect("file type").is_dir() {
            collect(&entry.path(), &format!("{name}/"), files);
        } else {
            files.insert(name, fs::read(entry.path()).expect("read file"));
        }
    }
}

/// One `.eml`, parsed with mail-parser, plus its raw bytes.
#[derive(Debug)]
pub struct Email {
    pub raw: Vec<u8>,
    pub subject: String,
    /// (display name, address)
    pub from: (Option<String>, String),
    pub to: (Option<String>, String),
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
    #[track_caller]
    pub fn parse(raw: Vec<u8>) -> Email {
        let message = MessageParser::default()
            .parse(&raw)
            .expect("mail-parser reads the message");
        let mailbox = |a: Option<&mail_parser::Address<'_>>| {
            let a = a.and_then(|a| a.first()).expect("an address");
            (
                a.name().map(str::to_owned),
                a.address().expect("an address").to_owned(),
            )
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
            from: mailbox(message.from()),
            to: mailbox(message.to()),
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

    /// The header section of the raw message (up to the first empty line).
    pub fn raw_headers(&self) -> &str {
        let text = std::str::from_utf8(&self.raw).expect("an ASCII message");
        let end = text.find("\r\n\r\n").expect("a header section");
        &text[..end]
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

// ---- small sites --------------------------------------------------------

/// The plain-text template of small sites: one line per section (`S id`),
/// item (`I id`) and related read (`R id`), in the order the email has them.
pub const LISTING: &str = "\
{{#each sections}}
S {{id}}
{{#each items}}
I {{id}}
{{#each related}}
R {{id}}
{{/each}}
{{/each}}
{{/each}}
{{#if unsubscribe_url}}
U {{unsubscribe_url}}
{{/if}}
";

/// What one email carries, read from a [`LISTING`] text part.
#[derive(Debug, Default, PartialEq)]
pub struct Listing {
    /// Section ids, in order.
    pub sections: Vec<String>,
    /// (section id, article id), in order.
    pub items: Vec<(String, String)>,
    /// (item id, related id), in order.
    pub related: Vec<(String, String)>,
    pub unsubscribe: Option<String>,
}

impl Listing {
    #[track_caller]
    pub fn parse(text: &str) -> Listing {
        let mut listing = Listing::default();
        for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
            let (kind, id) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("not a listing line: {line:?} in\n{text}"));
            match kind {
                "S" => listing.sections.push(id.to_owned()),
                "I" => {
                    let section = listing.sections.last().expect("an item in a section");
                    listing.items.push((section.clone(), id.to_owned()));
                }
                "R" => {
                    let (_, item) = listing.items.last().expect("a read under an item");
                    listing.related.push((item.clone(), id.to_owned()));
                }
                "U" => listing.unsubscribe = Some(id.to_owned()),
                _ => panic!("not a listing line: {line:?} in\n{text}"),
            }
        }
        listing
    }

    /// Item ids, in order.
    pub fn item_ids(&self) -> Vec<&str> {
        self.items.iter().map(|(_, id)| id.as_str()).collect()
    }

    /// The related reads of `item`, in order.
    pub fn related_of(&self, item: &str) -> Vec<&str> {
        self.related
            .iter()
            .filter(|(i, _)| i == item)
            .map(|(_, r)| r.as_str())
            .collect()
    }

    /// Every article id in the email, items and related reads.
    pub fn all_ids(&self) -> Vec<&str> {
        self.items
            .iter()
            .chain(&self.related)
            .map(|(_, id)| id.as_str())
            .collect()
    }
}

/// One article record of a small site (JSON).
pub struct A(Value);

impl A {
    /// An article with a title and URL derived from its id.
    pub fn new(id: &str, section: &str, published: &str) -> A {
        A(json!({
            "id": id,
            "title": format!("标题 {id}"),
            "section": section,
            "url": format!("/{section}/{id}.html"),
            "published": published,
        }))
    }

    pub fn keywords(self, keywords: &[&str]) -> A {
        self.set("keywords", json!(keywords))
    }

    pub fn related(self, ids: &[&str]) -> A {
        self.set("related", json!(ids))
    }

    pub fn set(mut self, key: &str, value: Value) -> A {
        self.0[key] = value;
        self
    }
}

/// A small site: sections news, yushi (child of news), finance and tech in
/// China time; the digest with [`LISTING`] as its text template and the
/// built-in HTML template.
pub struct Small {
    digest: Vec<(String, String)>,
    site_title: String,
    articles: Vec<Value>,
    subscribers: String,
}

impl Small {
    pub fn new() -> Small {
        Small {
            digest: [
                ("subject", "\"{{site.title}} · {{date}}\""),
                ("text", "\"listing.txt.hbs\""),
                ("subscribers", "\"subscribers.toml\""),
                ("window", "\"7d\""),
                ("related", "3"),
                (
                    "unsubscribe_url",
                    "\"https://news.example.cn/unsubscribe?token={{token}}\"",
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            site_title: "测试站".into(),
            articles: Vec::new(),
            subscribers: String::new(),
        }
    }

    /// Sets `[digest] key = value` (`value` in TOML syntax).
    pub fn digest(mut self, key: &str, value: &str) -> Small {
        match self.digest.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_owned(),
            None => self.digest.push((key.to_owned(), value.to_owned())),
        }
        self
    }

    /// Removes `[digest] key`.
    pub fn without(mut self, key: &str) -> Small {
        self.digest.retain(|(k, _)| k != key);
        self
    }

    pub fn title(mut self, title: &str) -> Small {
        self.site_title = title.to_owned();
        self
    }

    pub fn article(mut self, article: A) -> Small {
        self.articles.push(article.0);
        self
    }

    /// Adds a subscriber; `sections` `None` means every section.
    pub fn subscriber(mut self, email: &str, name: &str, sections: Option<&[&str]>) -> Small {
        self.subscribers.push_str(&format!(
            "[[subscribers]]\nemail = {email:?}\nname = {name:?}\n"
        ));
        if let Some(sections) = sections {
            self.subscribers
                .push_str(&format!("sections = {}\n", json!(sections)));
        }
        self.subscribers.push('\n');
        self
    }

    pub fn build(self) -> Site {
        let site = Site::empty();
        let digest: String = self
            .digest
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        site.write(
            "feeds.toml",
            &format!(
                r#"[site]
title = {title:?}
base_url = "https://news.example.cn/"
language = "zh-CN"
timezone = "+08:00"

[input]
paths = ["articles"]

[[sections]]
id = "news"
title = "新闻中心"

[[sections]]
id = "yushi"
title = "豫事说事"
parent = "news"

[[sections]]
id = "finance"
title = "财经"

[[sections]]
id = "tech"
title = "科技"

[digest]
{digest}
[smtp]
from = "测试站 <digest@news.example.cn>"
"#,
                title = self.site_title
            ),
        );
        site.write("listing.txt.hbs", LISTING);
        site.write(
            "articles/articles.json",
            &serde_json::to_string_pretty(&self.articles).expect("JSON"),
        );
        site.write("subscribers.toml", &self.subscribers);
        site
    }
}

/// An instant `hours` after (negative: before) [`NOW`], as RFC 3339 in China time.
pub fn at(hours: f64) -> String {
    let now = chrono::DateTime::parse_from_rfc3339(NOW).expect("NOW");
    let minutes = (hours * 60.0).round() as i64;
    (now + chrono::Duration::minutes(minutes)).to_rfc3339()
}
