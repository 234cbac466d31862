//! A small fluent harness: a throw-away site on disk, the real `bulletin`
//! binary run against it, and helpers to read and check what it wrote.
//!
//! Every XML file a test looks at goes through [`strict_xml`] (roxmltree,
//! which enforces XML 1.0's character rules) as well as `feed-rs`, because
//! `feed-rs` alone accepts documents that strict readers refuse.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_bulletin");

/// The clock most tests run with: after every article they write.
pub const NOW: &str = "2017-03-25T08:00:00+08:00";

/// The config a [`Site`] starts with: sections news, yushi (child of news)
/// and tech, in China time.
pub const DEFAULT_CONFIG: &str = r#"[site]
title = "测试站"
base_url = "https://news.example.cn/"
language = "zh-CN"
timezone = "+08:00"
description = "测试用的新闻站"

[input]
paths = ["articles"]

[[sections]]
id = "news"
title = "新闻中心"
url = "/news/"

[[sections]]
id = "yushi"
title = "豫事说事"
parent = "news"
url = "/news/yushi/"

[[sections]]
id = "tech"
title = "科技"
"#;

/// The repository's top-level folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A site in a temporary folder: `feeds.toml`, `articles/`, output in `public/`.
pub struct Site {
    dir: TempDir,
}

impl Site {
    /// A site with [`DEFAULT_CONFIG`] and an empty `articles/` folder.
    pub fn new() -> Site {
        Site::with_config(DEFAULT_CONFIG)
    }

    pub fn with_config(config: &str) -> Site {
        let dir = tempfile::Builder::new()
            .prefix("bulletin-test-")
            .tempdir()
            .expect("create a temporary folder");
        let site = Site { dir };
        site.write("feeds.toml", config);
        fs::create_dir_all(site.path("articles")).expect("create articles/");
        site
    }

    /// The site's folder.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the site.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("feeds.toml")
    }

    /// The default output folder (`output.dir` is `public`).
    pub fn out_dir(&self) -> PathBuf {
        self.path("public")
    }

    /// Writes a file (folders created as needed).
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Site {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("a file has a folder")).expect("create folder");
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self
    }

    /// Adds text at the end of `feeds.toml` (e.g. an `[output]` table).
    pub fn append_config(&self, extra: &str) -> &Site {
        let config = fs::read_to_string(self.config_path()).expect("read feeds.toml");
        self.write("feeds.toml", format!("{config}\n{extra}"))
    }

    /// Writes records as a TOML file of `[[articles]]` tables.
    pub fn write_toml(&self, rel: &str, records: &[Value]) -> &Site {
        let doc = serde_json::json!({ "articles": records });
        let text = toml::to_string(&doc).expect("records serialize as TOML");
        self.write(rel, text)
    }

    /// Writes records as a pretty-printed JSON array.
    pub fn write_json(&self, rel: &str, records: &[Value]) -> &Site {
        let text = serde_json::to_string_pretty(records).expect("records serialize as JSON");
        self.write(rel, text)
    }

    /// Writes records as JSON Lines, one record per line.
    pub fn write_jsonl(&self, rel: &str, records: &[Value]) -> &Site {
        let mut text = String::new();
        for record in records {
            text.push_str(&serde_json::to_string(record).expect("a record serializes"));
            text.push('\n');
        }
        self.write(rel, text)
    }

    /// `bulletin ARGS...` run in the site's folder.
    pub fn cmd(&self, subcommand: &str) -> Run {
        Run {
            root: self.root().to_path_buf(),
            args: vec![subcommand.into()],
        }
    }

    /// `bulletin build --config <site>/feeds.toml --now <now>` (output in `public/`).
    pub fn build_at(&self, now: &str) -> Output {
        self.cmd("build")
            .config(&self.config_path())
            .args(["--now", now])
            .run()
    }

    /// [`Site::build_at`] with [`NOW`].
    pub fn build(&self) -> Output {
        self.build_at(NOW)
    }

    /// `bulletin check --config <site>/feeds.toml`.
    pub fn check(&self) -> Output {
        self.cmd("check").config(&self.config_path()).run()
    }

    /// Reads a generated file, relative to the output folder.
    pub fn read_out(&self, rel: &str) -> Vec<u8> {
        read(&self.out_dir().join(rel))
    }

    /// Reads a generated file as text.
    pub fn read_out_text(&self, rel: &str) -> String {
        String::from_utf8(self.read_out(rel)).unwrap_or_else(|e| panic!("{rel} is not UTF-8: {e}"))
    }

    /// Parses a generated RSS or Atom feed with feed-rs, after checking it is
    /// strict XML 1.0.
    pub fn feed(&self, rel: &str) -> feed_rs::model::Feed {
        parse_feed(rel, &self.read_out(rel))
    }

    /// Every file under the output folder, as sorted relative paths.
    pub fn out_files(&self) -> Vec<String> {
        files_under(&self.out_dir())
    }

    /// Panics unless the output folder does not exist at all.
    pub fn assert_nothing_written(&self) {
        let out = self.out_dir();
        assert!(
            !out.exists(),
            "the output folder {} was created: {:?}",
            out.display(),
            files_under(&out)
        );
    }

    /// Checks every generated `.xml` with strict_xml and feed-rs, every
    /// `.json` with serde_json and `index.opml` with strict_xml; returns
    /// how many files it checked.
    pub fn assert_all_feeds_valid(&self) -> usize {
        assert_all_feeds_valid(&self.out_dir())
    }
}

/// One invocation of the binary, built up fluently.
pub struct Run {
    root: PathBuf,
    args: Vec<OsString>,
}

impl Run {
    pub fn arg(mut self, arg: impl Into<OsString>) -> Run {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn config(self, path: &Path) -> Run {
        self.arg("--config").arg(path)
    }

    pub fn out(self, path: &Path) -> Run {
        self.arg("--out").arg(path)
    }

    pub fn run(self) -> Output {
        let output = Command::new(BIN)
            .args(&self.args)
            .current_dir(&self.root)
            .env_remove("BULLETIN_SMTP_PASSWORD")
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        Output {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            root: self.root,
            args: self.args,
        }
    }
}

/// What a run printed and how it ended.
pub struct Output {
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    root: PathBuf,
    args: Vec<OsString>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bulletin {:?}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.args, self.code, self.stdout, self.stderr
        )
    }
}

impl Output {
    #[track_caller]
    pub fn assert_success(&self) -> &Output {
        assert_eq!(self.code, Some(0), "expected success:\n{self:?}");
        self
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Output {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}:\n{self:?}"
        );
        self
    }

    /// stderr with the site's folder (and the `/` after it) removed, so
    /// paths read `articles/a.toml` whatever the temporary folder is.
    pub fn stderr_rel(&self) -> String {
        let prefix = format!("{}/", self.root.display());
        self.stderr.replace(&prefix, "")
    }

    /// The `error: ` lines of stderr, without the prefix, paths relative.
    pub fn errors(&self) -> Vec<String> {
        self.stderr_rel()
            .lines()
            .filter_map(|l| l.strip_prefix("error: "))
            .map(str::to_owned)
            .collect()
    }

    /// Panics unless `line` is one of the error lines, exactly.
    #[track_caller]
    pub fn assert_error_line(&self, line: &str) -> &Output {
        let errors = self.errors();
        assert!(
            errors.iter().any(|e| e == line),
            "no error line\n  {line}\namong\n  {}\n{self:?}",
            errors.join("\n  ")
        );
        self
    }
}

pub fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every file under `dir`, as sorted `/`-separated relative paths; empty when
/// `dir` does not exist.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("read a folder entry").path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).expect("under base");
                let parts: Vec<_> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Bytes and modification time of every file under a folder.
pub type Snapshot = BTreeMap<String, (Vec<u8>, SystemTime)>;

pub fn snapshot(dir: &Path) -> Snapshot {
    files_under(dir)
        .into_iter()
        .map(|rel| {
            let path = dir.join(&rel);
            let modified = fs::metadata(&path)
                .and_then(|m| m.modified())
                .expect("mtime");
            (rel, (read(&path), modified))
        })
        .collect()
}

/// Sets every file under `dir` to an mtime far in the past, so that any
/// rewrite afterwards is visible in `modified()` whatever the file system's
/// timestamp granularity (no sleeping, no timing assumptions).
pub fn age_files(dir: &Path) {
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for rel in files_under(dir) {
        let file = fs::File::options()
            .write(true)
            .open(dir.join(&rel))
            .expect("open for set_modified");
        file.set_modified(old).expect("set mtime");
    }
}

/// The relative paths whose bytes or mtime differ between two snapshots
/// (including files present in only one of them).
pub fn changed_files(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| before.get(*n) != after.get(*n))
        .cloned()
        .collect()
}

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

/// See [`Site::assert_all_feeds_valid`].
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

/// A valid record with every required field: title `标题 <id>`, url
/// `/<section>/<id>.html`. Tests change fields with `value["x"] = json!(...)`.
pub fn article(id: &str, section: &str, published: &str) -> Value {
    serde_json::json!({
        "id": id,
        "title": format!("标题 {id}"),
        "section": section,
        "url": format!("/{section}/{id}.html"),
        "published": published,
    })
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
