//! The kinds of [`Site`] the suites start from, and the records they hold:
//!
//! - [`Site::new`] / [`Site::with_config`]: feeds only ([`DEFAULT_CONFIG`]),
//!   an empty `articles/`; `build` and `check` name the config;
//! - [`Site::example`]: a copy of the repository's example site
//!   (`feeds.toml`, `examples/`, `templates/`), so the repository's own
//!   `.bulletin/` is never touched;
//! - [`Site::with_digest`]: feeds and a digest to one subscriber, sent
//!   through a fake `sendmail` that keeps what it is handed ([`Site::sent`]);
//! - [`Site::smtp`]: the example articles, generated subscribers and the
//!   repository's templates, sending over SMTP (see `smtp`);
//! - [`Small`]: a tiny digest site whose plain-text template is [`LISTING`],
//!   a machine-readable list of what each email carries.

use std::fs;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::files::{copy_dir, set_mode};
use super::site::{Site, set_key};
use super::{NOW, repo_root};

/// The config of [`Site::new`]: sections news, yushi (child of news) and
/// tech, in China time.
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

/// The config of [`Site::with_digest`]: sections `news`, `yushi` (child of
/// news) and `tech`; a digest to the subscribers in `subscribers.toml`,
/// state in `state/`, sent through the fake `sendmail` (SENDMAIL).
const DIGEST_CONFIG: &str = r#"[site]
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

/// A fake `sendmail` that keeps each message it is handed in `sent/`, like
/// a local MTA's queue.
const FAKE_SENDMAIL: &str = "#!/bin/sh\n# Keeps each message it is handed, like a local MTA's queue.\n\
                             dir=\"$(dirname \"$0\")/sent\"\nmkdir -p \"$dir\"\n\
                             cat > \"$dir/$(date +%s%N).$$.eml\"\n";

/// A valid record with every required field: title `标题 <id>`, url
/// `/<section>/<id>.html`. Tests change fields with `value["x"] = json!(...)`.
pub fn article(id: &str, section: &str, published: &str) -> Value {
    json!({
        "id": id,
        "title": format!("标题 {id}"),
        "section": section,
        "url": format!("/{section}/{id}.html"),
        "published": published,
    })
}

impl Site {
    /// [`DEFAULT_CONFIG`] and an empty `articles/` folder.
    pub fn new() -> Site {
        Site::with_config(DEFAULT_CONFIG)
    }

    /// `config` as `feeds.toml` and an empty `articles/` folder.
    pub fn with_config(config: &str) -> Site {
        let site = Site::empty().naming_config();
        site.write("feeds.toml", config);
        fs::create_dir_all(site.path("articles")).expect("create articles/");
        site
    }

    /// A copy of the repository's example site: `feeds.toml`, `examples/`,
    /// `templates/`; every command gets [`super::SECRET`].
    pub fn example() -> Site {
        let site = Site::empty().with_secret();
        let root = repo_root();
        fs::copy(root.join("feeds.toml"), site.path("feeds.toml")).expect("copy feeds.toml");
        copy_dir(&root.join("examples"), &site.path("examples"));
        copy_dir(&root.join("templates"), &site.path("templates"));
        site
    }

    /// Feeds and a digest (see the config) with one subscriber
    /// (`reader@example.com`) and one article (`a1` in `news`, in
    /// `articles/a.jsonl`), sent through the fake sendmail. Every command
    /// gets `NO_COLOR=1` and [`super::SECRET`].
    pub fn with_digest() -> Site {
        let site = Site::empty().with_env("NO_COLOR", "1").with_secret();
        site.write("fake-sendmail", FAKE_SENDMAIL);
        set_mode(&site.path("fake-sendmail"), 0o755);
        let sendmail = site.path("fake-sendmail").display().to_string();
        site.write("feeds.toml", DIGEST_CONFIG.replace("SENDMAIL", &sendmail));
        site.write(
            "subscribers.toml",
            "[[subscribers]]\nemail = \"reader@example.com\"\nname = \"读者\"\n",
        );
        site.write_jsonl("articles/a.jsonl", &[digest_article("a1", "news")]);
        site
    }

    /// What the fake sendmail of [`Site::with_digest`] was handed, in order.
    pub fn sent(&self) -> Vec<Vec<u8>> {
        let Ok(entries) = fs::read_dir(self.path("sent")) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("an entry").path()).collect();
        paths.sort();
        paths
            .iter()
            .map(|p| fs::read(p).expect("read a sent message"))
            .collect()
    }

    /// The repository's feeds.toml with its paths pointed into the site: a
    /// copy of `examples/articles`, `n` generated subscribers
    /// (`reader0000@example.com`…, every section), the state database at
    /// `state/digest.state`, the repository's templates, and `[smtp]`
    /// sending to 127.0.0.1 (the port is set by `serve` or the test). Every
    /// command gets [`super::SECRET`].
    pub fn smtp(n: usize) -> Site {
        Site::smtp_with_subscribers(&generated_subscribers(n))
    }

    /// [`Site::smtp`] with the example subscribers (various sections) before
    /// the `n` generated ones.
    pub fn smtp_with_examples(n: usize) -> Site {
        let examples = fs::read_to_string(repo_root().join("examples/subscribers.toml"))
            .expect("read examples/subscribers.toml");
        Site::smtp_with_subscribers(&format!("{examples}\n{}", generated_subscribers(n)))
    }

    fn smtp_with_subscribers(subscribers: &str) -> Site {
        let site = Site::empty().with_secret();
        copy_dir(
            &repo_root().join("examples/articles"),
            &site.path("articles"),
        );
        site.write("subscribers.toml", subscribers);

        let text = fs::read_to_string(repo_root().join("feeds.toml")).expect("read feeds.toml");
        let mut config: toml::Table = text.parse().expect("feeds.toml parses");
        let templates = repo_root().join("templates");
        set_key(
            &mut config,
            "input.paths",
            toml::Value::Array(vec!["articles".into()]),
        );
        set_key(&mut config, "output.dir", "public".into());
        set_key(&mut config, "digest.subscribers", "subscribers.toml".into());
        set_key(&mut config, "digest.state", "state/digest.state".into());
        for (key, file) in [
            ("html", "digest.zh.html.hbs"),
            ("text", "digest.zh.txt.hbs"),
        ] {
            let path = templates
                .join(file)
                .to_str()
                .expect("UTF-8 path")
                .to_owned();
            set_key(&mut config, &format!("digest.{key}"), path.into());
        }
        let from = config["smtp"]["from"].clone();
        let mut smtp = toml::Table::new();
        smtp.insert("transport".into(), "smtp".into());
        smtp.insert("host".into(), "127.0.0.1".into());
        smtp.insert("port".into(), 9.into()); // set by `serve` or the test
        smtp.insert("security".into(), "none".into());
        smtp.insert("username".into(), "".into());
        smtp.insert("from".into(), from);
        smtp.insert("connections".into(), 4.into());
        smtp.insert("max_rate".into(), 0.into());
        smtp.insert("timeout".into(), 20.into());
        smtp.insert("retries".into(), 3.into());
        smtp.insert("retry_delay".into(), "100ms".into());
        config.insert("smtp".into(), toml::Value::Table(smtp));
        site.write_config_table(&config);
        site
    }
}

/// The record of [`Site::with_digest`]: [`article`] published a day before
/// [`NOW`], with a summary.
pub fn digest_article(id: &str, section: &str) -> Value {
    let mut record = article(id, section, "2017-03-24 10:00");
    record["summary"] = json!(format!("摘要 {id}"));
    record
}

fn generated_subscribers(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[subscribers]]\nemail = \"reader{i:04}@example.com\"\nname = \"读者{i:04}\"\n\n"
            )
        })
        .collect()
}

// ---- small digest sites -----------------------------------------------------

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

/// One article record of a small site: an [`article`], changed fluently.
pub struct A(Value);

impl A {
    /// An article with a title and URL derived from its id.
    pub fn new(id: &str, section: &str, published: &str) -> A {
        A(article(id, section, published))
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

/// The sections of a small site: (id, title, parent).
const SMALL_SECTIONS: [(&str, &str, Option<&str>); 4] = [
    ("news", "新闻中心", None),
    ("yushi", "豫事说事", Some("news")),
    ("finance", "财经", None),
    ("tech", "科技", None),
];

/// A small site: sections news, yushi (child of news), finance and tech in
/// China time; the digest with [`LISTING`] as its text template and the
/// built-in HTML template. Every command gets [`super::SECRET`].
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
        let site = Site::empty().with_secret();
        let digest: String = self
            .digest
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        site.write(
            "feeds.toml",
            format!(
                r#"[site]
title = {title:?}
base_url = "https://news.example.cn/"
language = "zh-CN"
timezone = "+08:00"

[input]
paths = ["articles"]

{sections}[digest]
{digest}
[smtp]
from = "测试站 <digest@news.example.cn>"
"#,
                title = self.site_title,
                sections = SMALL_SECTIONS
                    .iter()
                    .map(|(id, title, parent)| {
                        let parent = parent.map_or(String::new(), |p| format!("parent = {p:?}\n"));
                        format!("[[sections]]\nid = {id:?}\ntitle = {title:?}\n{parent}\n")
                    })
                    .collect::<String>(),
            ),
        );
        site.write("listing.txt.hbs", LISTING);
        site.write(
            "articles/articles.json",
            serde_json::to_string_pretty(&self.articles).expect("JSON"),
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
