//! The hostile suite's harness: a throw-away site (feeds, digest, a fake
//! `sendmail` that keeps what it is given), the real binary run against it,
//! and snapshots of folders to prove that nothing was written.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde_json::{Value, json};
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_bulletin");

/// The clock of every run: after every article the tests write.
pub const NOW: &str = "2017-03-25T08:00:00+08:00";

/// The unsubscribe-token key every run gets unless a test says otherwise.
pub const SECRET_VAR: &str = "BULLETIN_UNSUBSCRIBE_SECRET";
pub const SECRET: &str = "unsub-KEY-7f3a9c1e-do-not-leak";

/// The SMTP password variable.
pub const PASSWORD_VAR: &str = "BULLETIN_SMTP_PASSWORD";

/// Sections `news`, `yushi` (child of news) and `tech`; a digest to the
/// subscribers in `subscribers.toml`, state in `state/`, sent through the
/// fake `sendmail` (which writes each message into `sent/`).
pub const CONFIG: &str = r#"[site]
title = "测试站"
base_url = "https://news.example.cn/"
language = "zh-CN"
timezone = "+08:00"

[input]
paths = ["articles"]

[output]
dir = "public"
formats = ["rss", "atom", "json"]

[[sections]]
id = "news"
title = "新闻中心"

[[sections]]
id = "yushi"
title = "豫事说事"
parent = "news"

[[sections]]
id = "tech"
title = "科技"

[digest]
subject = "{{site.title}} · {{date}} 要闻"
subscribers = "subscribers.toml"
state = "state/state.sqlite"
window = "7d"
unsubscribe_url = "https://news.example.cn/unsubscribe?token={{token}}"

[smtp]
transport = "sendmail"
sendmail = "SENDMAIL"
from = "测试站 <digest@news.example.cn>"
"#;

/// One subscriber.
pub const SUBSCRIBERS: &str = r#"[[subscribers]]
email = "reader@example.com"
name = "读者"
"#;

/// A valid article record in `section`, published a day before [`NOW`].
pub fn article(id: &str, section: &str) -> Value {
    json!({
        "id": id,
        "title": format!("标题 {id}"),
        "section": section,
        "url": format!("/{section}/{id}.html"),
        "published": "2017-03-24 10:00",
        "summary": format!("摘要 {id}"),
    })
}

/// A site in a temporary folder.
pub struct Site {
    dir: TempDir,
}

impl Site {
    /// [`CONFIG`], [`SUBSCRIBERS`], the fake sendmail, one article (`a1` in
    /// `news`) in `articles/a.jsonl`.
    pub fn new() -> Site {
        let site = Site::bare();
        site.write("feeds.toml", site.config_text(CONFIG));
        site.write("subscribers.toml", SUBSCRIBERS);
        site.write_jsonl("articles/a.jsonl", &[article("a1", "news")]);
        site
    }

    /// An empty folder with the fake sendmail.
    pub fn bare() -> Site {
        let dir = tempfile::Builder::new()
            .prefix("bulletin-hostile-")
            .tempdir()
            .expect("create a temporary folder");
        let site = Site { dir };
        let script = "#!/bin/sh\n# Keeps each message it is handed, like a local MTA's queue.\n\
                      dir=\"$(dirname \"$0\")/sent\"\nmkdir -p \"$dir\"\n\
                      cat > \"$dir/$(date +%s%N).$$.eml\"\n";
        site.write("fake-sendmail", script);
        set_mode(&site.path("fake-sendmail"), 0o755);
        site
    }

    /// `text` with the fake sendmail's absolute path filled in.
    pub fn config_text(&self, text: &str) -> String {
        text.replace(
            "SENDMAIL",
            &self.path("fake-sendmail").display().to_string(),
        )
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// Writes a file, creating folders.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Site {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("a file has a folder")).expect("create folder");
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self
    }

    /// Replaces `from` by `to` in `feeds.toml` (which must contain it).
    pub fn edit_config(&self, from: &str, to: &str) -> &Site {
        let config = fs::read_to_string(self.path("feeds.toml")).expect("read feeds.toml");
        assert!(config.contains(from), "feeds.toml lacks {from:?}");
        self.write("feeds.toml", config.replacen(from, to, 1))
    }

    /// Records as JSON Lines.
    pub fn write_jsonl(&self, rel: &str, records: &[Value]) -> &Site {
        let text: String = records.iter().map(|r| format!("{r}\n")).collect();
        self.write(rel, text)
    }

    /// `bulletin ARGS` in the site's folder, with [`SECRET_VAR`] set and
    /// no other bulletin variable inherited.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(self.root())
            .env_remove(PASSWORD_VAR)
            .env_remove("RUST_BACKTRACE")
            .env_remove("CLICOLOR_FORCE")
            .env("NO_COLOR", "1")
            .env(SECRET_VAR, SECRET);
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(&mut self.command(args))
    }

    pub fn build(&self) -> Run {
        self.run(&["build", "--now", NOW])
    }

    pub fn dry_run(&self, out: &str) -> Run {
        self.run(&["digest", "--dry-run", out, "--now", NOW])
    }

    pub fn send(&self) -> Run {
        self.run(&["digest", "--send", "--now", NOW])
    }

    /// What the fake sendmail was handed, in order.
    pub fn sent(&self) -> Vec<Vec<u8>> {
        let dir = self.path("sent");
        let Ok(entries) = fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("an entry").path()).collect();
        paths.sort();
        paths
            .iter()
            .map(|p| fs::read(p).expect("read a sent message"))
            .collect()
    }
}

/// How one run of the binary ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(command: &mut Command) -> Run {
        let output = command.output().expect("run bulletin");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, and that nothing panicked.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "expected exit {code}\n{self}");
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "a panic is not an error message:\n{self}"
        );
        self
    }

    /// Asserts stderr contains every one of `needles`.
    #[track_caller]
    pub fn stderr_has(&self, needles: &[&str]) -> &Run {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?}\n{self}"
            );
        }
        self
    }

    /// The first `error:` line of stderr, without colour (SGR) codes.
    #[track_caller]
    pub fn error_line(&self) -> String {
        self.errors()
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no error line\n{self}"))
    }

    /// Every `error:` line of stderr, without colour (SGR) codes.
    pub fn errors(&self) -> Vec<String> {
        self.stderr
            .lines()
            .map(strip_sgr)
            .filter(|l| l.starts_with("error:"))
            .collect()
    }
}

/// `line` without `ESC [ ... m` colour sequences.
fn strip_sgr(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("\u{1b}[") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        match tail.find('m') {
            Some(end) if tail[..end].bytes().all(|b| b.is_ascii_digit() || b == b';') => {
                rest = &tail[end + 1..]
            }
            _ => {
                out.push_str("\u{1b}[");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A folder's files (bytes and modification times), symlinks not followed.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot(BTreeMap<String, (Vec<u8>, Option<SystemTime>)>);

impl Snapshot {
    pub fn of(dir: &Path) -> Snapshot {
        let mut files = BTreeMap::new();
        collect(dir, "", &mut files);
        Snapshot(files)
    }

    pub fn paths(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    /// Asserts `dir` still holds exactly this.
    #[track_caller]
    pub fn assert_same(&self, dir: &Path, what: &str) {
        let now = Snapshot::of(dir);
        assert_eq!(
            now.paths(),
            self.paths(),
            "{what}: files were added or removed in {}",
            dir.display()
        );
        for (path, (bytes, mtime)) in &self.0 {
            let (now_bytes, now_mtime) = &now.0[path];
            assert!(now_bytes == bytes, "{what}: {path} was rewritten");
            assert_eq!(now_mtime, mtime, "{what}: {path} was touched");
        }
    }
}

fn collect(dir: &Path, prefix: &str, files: &mut BTreeMap<String, (Vec<u8>, Option<SystemTime>)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.expect("a folder entry");
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let meta = fs::symlink_metadata(entry.path()).expect("metadata");
        if meta.is_dir() {
            collect(&entry.path(), &format!("{name}/"), files);
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(entry.path()).expect("read a link");
            files.insert(name, (target.display().to_string().into_bytes(), None));
        } else {
            let bytes = fs::read(entry.path()).expect("read a file");
            files.insert(name, (bytes, meta.modified().ok()));
        }
    }
}

/// `chmod MODE path`.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Every occurrence of `needle` in `haystack`, as bytes.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A parsed message: decoded headers and the two parts.
pub struct Mail {
    pub raw: Vec<u8>,
    pub subject: String,
    pub to: Vec<(Option<String>, String)>,
    pub text: String,
    pub html: String,
}

impl Mail {
    pub fn parse(raw: &[u8]) -> Mail {
        let message = mail_parser::MessageParser::default()
            .parse(raw)
            .expect("a message mail-parser reads");
        let to = message
            .to()
            .map(|list| {
                list.iter()
                    .map(|a| {
                        (
                            a.name().map(str::to_owned),
                            a.address().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Mail {
            raw: raw.to_vec(),
            subject: message.subject().unwrap_or_default().to_owned(),
            to,
            text: message.body_text(0).unwrap_or_default().into_owned(),
            html: message.body_html(0).unwrap_or_default().into_owned(),
        }
    }

    /// The header section as written (unfolded lines kept as they are).
    pub fn raw_headers(&self) -> String {
        let text = String::from_utf8_lossy(&self.raw);
        text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
    }

    /// Names of the top-level header fields, in order.
    pub fn header_names(&self) -> Vec<String> {
        self.raw_headers()
            .split("\r\n")
            .filter(|l| !l.starts_with([' ', '\t']))
            .map(|l| l.split(':').next().unwrap_or_default().to_owned())
            .collect()
    }
}

/// The single `.eml` a dry run wrote into `out`.
#[track_caller]
pub fn only_eml(site: &Site, out: &str) -> Mail {
    let dir = site.path(out);
    let emls: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert_eq!(
        emls.len(),
        1,
        "expected one .eml in {}: {emls:?}",
        dir.display()
    );
    Mail::parse(&fs::read(&emls[0]).expect("read the .eml"))
}
