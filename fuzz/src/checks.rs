//! Properties the fuzz targets assert, shared between them.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Utc};
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

use crate::config::Config;
use crate::feed::{self, Selection};
use crate::load::record::LongText;
use crate::load::{Offer, Sink};
use crate::model::{Article, Site};
use crate::output::OutputFile;
use crate::text;

/// Site timezones the targets pick from: fixed offsets at the extremes,
/// zones with daylight saving, China time.
pub const ZONES: [&str; 6] = [
    "+08:00",
    "-05:00",
    "America/New_York",
    "Asia/Shanghai",
    "+00:00",
    "-23:59",
];

/// A folder private to this process (in /dev/shm when there is one: the
/// loaders read files, and a RAM disk keeps that cheap).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("bulletin-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch folder");
        dir
    })
}

/// Whether findings already reported (with a failing test in
/// tests/hostile) should be stepped around so fuzzing can go deeper:
/// `BULLETIN_FUZZ_SKIP_KNOWN=1`.
pub fn skip_known() -> bool {
    static SKIP: OnceLock<bool> = OnceLock::new();
    *SKIP.get_or_init(|| std::env::var_os("BULLETIN_FUZZ_SKIP_KNOWN").is_some())
}

/// The site every target runs: markup and entities in titles, a child
/// section, all three formats. `input` is relative to [`scratch`].
pub fn config(input: &str, zone: &str) -> Config {
    let text = format!(
        r#"[site]
title = "测试站 <b>&amp; \"q\""
base_url = "https://news.example.cn/base/"
language = "zh-CN"
timezone = "{zone}"
description = "a < b & c"

[input]
paths = ["{input}"]

[output]
items = 50
formats = ["rss", "atom", "json"]

[[sections]]
id = "news"
title = "新闻 & <中心>"

[[sections]]
id = "yushi"
title = "豫事说事"
parent = "news"
url = "/news/yushi/"

[[sections]]
id = "tech"
title = "Tech ]]> x"
"#
    );
    Config::parse(&text, &scratch().join("feeds.toml"), scratch())
        .unwrap_or_else(|e| panic!("the fuzz config is valid: {e}"))
}

/// A loading sink that keeps every article (for the properties below).
#[derive(Default)]
pub struct Keep(pub Vec<Article>);

impl Sink for Keep {
    fn accept<L: LongText>(&mut self, offer: Offer<'_, '_, L>) {
        self.0.push(offer.article(true));
    }

    fn merge(&mut self, other: Self) {
        self.0.extend(other.0);
    }
}

/// Every article of the config's inputs, or the problems: the real loader
/// (`load::scan`), without the build cache.
pub fn load_all(config: &Config) -> Result<Vec<Article>, crate::diag::Problems> {
    crate::load::scan(config, Keep::default, None).map(|loaded| loaded.sink.0)
}

/// The feeds a build at `now` writes, loading through the build cache in
/// `cache_dir` (stored on a miss, reused on a hit).
pub fn build_with_cache(
    config: &Config,
    cache_dir: &Path,
    now: DateTime<Utc>,
) -> Result<Vec<OutputFile>, crate::diag::Problems> {
    let site = &config.site;
    let items = config.output.items;
    let cache = crate::cache::BuildCache::new(cache_dir, config.fingerprint, site, now, items);
    let selection = crate::load::scan(
        config,
        || Selection::new(site, now, items),
        Some(&cache as &dyn crate::load::Reuse<Selection>),
    )?
    .sink;
    let hubs = config.websub.as_ref().map_or(&[][..], |w| &w.hubs[..]);
    Ok(feed::render(site, &selection.feeds(), &config.output, hubs).files)
}

/// What `load` promises about every article it returns.
pub fn check_article(a: &Article) {
    for (field, value) in [
        ("id", a.id.as_str()),
        ("title", a.title.as_str()),
        ("section", a.section.as_str()),
    ] {
        assert!(!value.is_empty(), "{field} is empty: {a:?}");
        assert!(
            text::is_one_line(value),
            "{field} is not one line: {value:?}"
        );
    }
    for (field, value) in [
        ("author", &a.author),
        ("editor", &a.editor),
        ("source", &a.source),
    ] {
        if let Some(value) = value {
            assert!(!value.is_empty(), "{field} is Some(\"\")");
            assert!(
                text::is_one_line(value),
                "{field} is not one line: {value:?}"
            );
        }
    }
    for (i, k) in a.keywords.iter().enumerate() {
        assert!(!k.is_empty(), "empty keyword in {:?}", a.keywords);
        assert!(text::is_one_line(k), "keyword not one line: {k:?}");
        assert!(
            !k.contains([';', '；', ',', '，', '、']),
            "keyword holds a separator: {k:?}"
        );
        assert!(!a.keywords[..i].contains(k), "repeated keyword {k:?}");
    }
    for r in &a.related {
        assert!(
            !r.as_str().is_empty() && text::is_one_line(r.as_str()),
            "related {r:?}"
        );
    }
    if let Some(summary) = &a.summary {
        assert!(!summary.is_empty());
        assert!(
            !summary.chars().any(text::is_unsafe_char),
            "unsafe character in summary {summary:?}"
        );
    }
    for url in std::iter::once(&a.url).chain(a.image.as_ref()) {
        assert!(
            matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|h| !h.is_empty()),
            "not a web URL: {url}"
        );
    }
    assert!(a.updated >= a.published, "updated before published");
}

/// True when a date of `a` cannot be written as RFC 2822 in the site's
/// timezone (a year outside 0..=9999): reported and fixed, see
/// tests/hostile `a_year_outside_rfc_2822_is_an_error_not_a_panic`.
pub fn known_rfc2822_crash(site: &Site, a: &Article) -> bool {
    [a.published, a.updated]
        .iter()
        .any(|t| !(0..=9999).contains(&site.zone.local(*t).year()))
}

/// True when cleaning `a`'s body yields a character XML forbids: numeric
/// character references (`&#1;`, `&#xFFFE;`) are decoded by the cleaner
/// after `strip_unsafe` ran. Reported and fixed, see tests/hostile
/// `numeric_character_references_never_put_forbidden_characters_in_feeds`.
pub fn known_entity_leak(a: &Article) -> bool {
    a.content_html.as_deref().is_some_and(|html| {
        text::HtmlCleaner::default()
            .clean(html, &a.url)
            .chars()
            .any(text::is_unsafe_char)
    })
}

/// True when a date of `a` has a leap second (`:60`) that feeds would
/// carry as is. Reported and fixed, see tests/hostile
/// `a_leap_second_never_reaches_the_feeds_as_second_60`.
pub fn known_leap_second(a: &Article) -> bool {
    [a.published, a.updated]
        .iter()
        .any(|t| chrono::Timelike::nanosecond(t) >= 1_000_000_000)
}

/// True when an address has a quoted local part, which lettre accepts as
/// an address but not in a message. Reported and fixed, see tests/hostile
/// `a_quoted_local_part_is_refused_at_load_or_delivered`.
pub fn known_quoted_local_part(email: &str) -> bool {
    email.starts_with('"')
}

/// Renders every feed of `articles` (all published: the clock is at the end
/// of time) and checks each file: XML parses strictly (roxmltree), JSON
/// parses, and every article's title and keywords come back out exactly.
pub fn render_and_check(config: &Config, articles: Vec<Article>) -> Vec<OutputFile> {
    let site = &config.site;
    let articles: Vec<Article> = if skip_known() {
        articles
            .into_iter()
            .filter(|a| !known_rfc2822_crash(site, a) && !known_entity_leak(a))
            .collect()
    } else {
        articles
    };
    let mut selection = Selection::new(site, DateTime::<Utc>::MAX_UTC, config.output.items);
    for a in articles.iter().cloned() {
        selection.add(a);
    }
    let feeds = selection.feeds();
    let hubs = config.websub.as_ref().map_or(&[][..], |w| &w.hubs[..]);
    let files = feed::render(site, &feeds, &config.output, hubs).files;
    for file in &files {
        if file.path.ends_with(".json") {
            serde_json::from_slice::<serde_json::Value>(&file.bytes)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.path));
            continue;
        }
        let text = std::str::from_utf8(&file.bytes).expect("feeds are UTF-8");
        let doc = roxmltree::Document::parse(text)
            .unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}\n{text}", file.path));
        if file.path == "feeds/rss.xml" {
            check_rss_round_trip(&doc, site, &articles);
        } else if file.path == "feeds/atom.xml" {
            check_atom_round_trip(&doc, &articles);
        }
    }
    files
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn text_of(node: Option<roxmltree::Node<'_, '_>>) -> String {
    node.map(|n| n.text().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// Every RSS item's title and categories read back equal to the article's.
fn check_rss_round_trip(doc: &roxmltree::Document<'_>, site: &Site, articles: &[Article]) {
    for item in doc.descendants().filter(|n| n.has_tag_name("item")) {
        let guid = text_of(child(item, "guid"));
        let Some(a) = articles
            .iter()
            .find(|a| a.id == guid.as_str() || format!("{}:{}", site.domain(), a.id) == guid)
        else {
            panic!("RSS guid {guid:?} matches no article");
        };
        assert_eq!(text_of(child(item, "title")), a.title, "RSS title");
        let categories: Vec<String> = item
            .children()
            .filter(|c| c.has_tag_name("category"))
            .map(|c| c.text().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(&categories[1..], a.keywords.as_slice(), "RSS categories");
    }
}

/// Every Atom entry's title and link read back equal to the article's.
fn check_atom_round_trip(doc: &roxmltree::Document<'_>, articles: &[Article]) {
    for entry in doc.descendants().filter(|n| n.has_tag_name("entry")) {
        let title = text_of(child(entry, "title"));
        let link = child(entry, "link")
            .and_then(|l| l.attribute("href"))
            .unwrap_or_default();
        assert!(
            articles
                .iter()
                .any(|a| a.title == title && a.url.as_str() == link),
            "Atom entry {title:?} {link:?} matches no article"
        );
    }
}

/// Every start tag's attributes in an HTML fragment, as (tag, name, value),
/// by html5ever's tokenizer (what a browser would see).
pub fn html_attributes(html: &str) -> Vec<(String, String, String)> {
    struct Collect(RefCell<Vec<(String, String, String)>>);
    impl TokenSink for Collect {
        type Handle = ();
        fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
            if let Token::TagToken(tag) = token
                && tag.kind == TagKind::StartTag
            {
                for attr in tag.attrs {
                    self.0.borrow_mut().push((
                        tag.name.to_string(),
                        attr.name.local.to_string(),
                        attr.value.to_string(),
                    ));
                }
            }
            TokenSinkResult::Continue
        }
    }
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let tokenizer = Tokenizer::new(Collect(RefCell::new(Vec::new())), TokenizerOpts::default());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    tokenizer.sink.0.take()
}

/// Every start tag name in an HTML fragment.
pub fn html_tags(html: &str) -> Vec<String> {
    struct Collect(RefCell<Vec<String>>);
    impl TokenSink for Collect {
        type Handle = ();
        fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
            if let Token::TagToken(tag) = token
                && tag.kind == TagKind::StartTag
            {
                self.0.borrow_mut().push(tag.name.to_string());
            }
            TokenSinkResult::Continue
        }
    }
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let tokenizer = Tokenizer::new(Collect(RefCell::new(Vec::new())), TokenizerOpts::default());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    tokenizer.sink.0.take()
}

// ---- the digest: templates and the message on the wire ----------------------

use crate::digest::{self, message, render};
use crate::model::Subscriber;

/// An HTML template that shows every field a record or subscriber brings.
const PROBE_HTML: &str = "<html><body><b>{{#if recipient.name}}{{recipient.name}}{{/if}}</b>\
{{#each sections}}<h2>{{title}}</h2>{{#each items}}<div><a href=\"{{url}}\">{{title}}</a>\
<p>{{#if summary}}{{summary}}{{/if}}</p><p>{{#if author}}{{author}}{{/if}}</p>\
<p>{{#if editor}}{{editor}}{{/if}}</p><p>{{#if source}}{{source}}{{/if}}</p>\
<p>{{section_title}}</p>{{#each keywords}}<i>{{this}}</i>{{/each}}</div>{{/each}}{{/each}}\
</body></html>";

/// The same fields as plain text, one per line, each between markers.
const PROBE_TEXT: &str = "name[{{#if recipient.name}}{{recipient.name}}{{/if}}]\n\
{{#each sections}}{{#each items}}title[{{title}}]\nsummary[{{#if summary}}{{summary}}{{/if}}]\n\
author[{{#if author}}{{author}}{{/if}}]\neditor[{{#if editor}}{{editor}}{{/if}}]\n\
source[{{#if source}}{{source}}{{/if}}]\n{{#each keywords}}keyword[{{this}}]\n{{/each}}{{/each}}{{/each}}";

const PROBE_SUBJECT: &str = "{{site.title}} {{#if recipient.name}}{{recipient.name}}{{/if}} {{#each sections}}{{#each items}}{{title}} {{#if author}}{{author}}{{/if}}{{/each}}{{/each}}";

/// Headers a digest message may carry; anything else got in by injection.
const HEADERS: [&str; 11] = [
    "From",
    "To",
    "Subject",
    "Message-ID",
    "Date",
    "List-Id",
    "Auto-Submitted",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
];

/// The issue every probe message belongs to.
fn issue() -> crate::model::IssueKey {
    crate::model::IssueKey::stored("2017-03-25".to_owned())
}

/// The probe templates, compiled once per thread and timezone (compiling
/// Handlebars costs more than a whole fuzz iteration).
fn with_probe_templates<R>(config: &Config, f: impl FnOnce(&render::Templates) -> R) -> R {
    thread_local! {
        static CACHE: RefCell<Vec<(crate::model::SiteZone, std::rc::Rc<render::Templates>)>> =
            const { RefCell::new(Vec::new()) };
    }
    let zone = config.site.zone;
    let templates = CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, t)) = cache.iter().find(|(z, _)| *z == zone) {
            return t.clone();
        }
        let t = std::rc::Rc::new(probe_templates(config));
        cache.push((zone, t.clone()));
        t
    });
    f(&templates)
}

fn probe_templates(config: &Config) -> render::Templates {
    render::Templates::load(
        render::Source::Builtin(PROBE_HTML),
        render::Source::Builtin(PROBE_TEXT),
        PROBE_SUBJECT,
        &config.path,
        config.site.zone,
    )
    .unwrap_or_else(|e| panic!("the probe templates compile: {e}"))
}

fn render_one(
    config: &Config,
    templates: &render::Templates,
    article: &Article,
    subscriber: &Subscriber,
) -> render::Rendered {
    let site = &config.site;
    let section = site
        .section(article.section.as_str())
        .expect("a loaded article's section exists");
    let email = digest::Email {
        subscriber,
        groups: vec![digest::Group {
            section,
            items: vec![digest::Item {
                article,
                related: Vec::new(),
            }],
        }],
    };
    let fields = digest::ArticleFields::new(site, [article]);
    let personal = digest::shape::Personal::of(subscriber, None);
    let context = digest::context(site, &issue(), &email, &personal, None, &fields);
    templates
        .render(context)
        .unwrap_or_else(|e| panic!("the probe templates render: {e}"))
}

/// `article` and `subscriber` with every text replaced by a plain word, the
/// shape (which fields are set, how many keywords) kept.
fn benign(article: &Article, subscriber: &Subscriber) -> (Article, Subscriber) {
    let word = |o: &Option<String>| o.as_ref().map(|_| "x".to_owned());
    let article = Article {
        id: "x".into(),
        title: "x".into(),
        author: word(&article.author),
        editor: word(&article.editor),
        source: word(&article.source),
        keywords: (0..article.keywords.len())
            .map(|i| format!("k{i}"))
            .collect(),
        summary: Some("x".into()),
        content_html: None,
        ..article.clone()
    };
    let subscriber = Subscriber {
        email: "x@example.com".into(),
        name: word(&subscriber.name),
        sections: None,
        left: None,
    };
    (article, subscriber)
}

/// Start tags and attribute names, in order: the markup of a document
/// without its text.
fn markup_shape(html: &str) -> Vec<String> {
    let mut shape = html_tags(html);
    shape.extend(
        html_attributes(html)
            .into_iter()
            .map(|(t, a, _)| format!("{t}@{a}")),
    );
    shape
}

/// One digest email for `article` to `subscriber`: the HTML part has
/// exactly the template's markup (fields escaped, no injection), the text
/// part carries every field verbatim, and the header section holds only the
/// digest's own headers, each once, ASCII, with no bare CR or LF.
pub fn check_digest(config: &Config, article: &Article, subscriber: &Subscriber) {
    let (plain_article, plain_subscriber) = benign(article, subscriber);
    let (rendered, expected) = with_probe_templates(config, |templates| {
        (
            render_one(config, templates, article, subscriber),
            render_one(config, templates, &plain_article, &plain_subscriber),
        )
    });
    let mut got = markup_shape(&rendered.html);
    let mut want = markup_shape(&expected.html);
    got.sort();
    want.sort();
    assert_eq!(
        got, want,
        "field text changed the HTML markup:\n{}",
        rendered.html
    );

    let text = &rendered.text;
    let mut fields = vec![("title", Some(&article.title))];
    fields.push(("author", article.author.as_ref()));
    fields.push(("editor", article.editor.as_ref()));
    fields.push(("source", article.source.as_ref()));
    for (field, value) in fields {
        if let Some(value) = value {
            assert!(
                text.contains(&format!("{field}[{value}]\n")),
                "text part lacks {field} {value:?} verbatim:\n{text}"
            );
        }
    }
    for k in &article.keywords {
        assert!(text.contains(&format!("keyword[{k}]\n")), "keyword {k:?}");
    }
    if let Some(name) = &subscriber.name {
        assert!(
            text.starts_with(&format!("name[{name}]\n")),
            "name {name:?}"
        );
    }
    assert!(
        text::is_one_line(&rendered.subject),
        "subject is not one line: {:?}",
        rendered.subject
    );

    let from: lettre::message::Mailbox = "测试站 <digest@news.example.cn>".parse().unwrap();
    let issue = issue();
    let envelope = message::Envelope {
        site: &config.site,
        from: &from,
        issue: &issue,
        date: config
            .site
            .zone
            .local(DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(17250)),
    };
    let message = message::build(
        &envelope,
        subscriber,
        &rendered,
        Some("https://news.example.cn/unsubscribe?token=0123&x=1"),
    )
    .unwrap_or_else(|e| panic!("a loaded subscriber gets a message: {e:#}"));
    check_headers(&message.formatted());
}

/// The header section of a message: only [`HEADERS`], each once, ASCII,
/// lines ending in CRLF, continuation lines starting with white space.
pub fn check_headers(bytes: &[u8]) {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a message has a header section");
    let head = std::str::from_utf8(&bytes[..end]).expect("headers are UTF-8");
    assert!(head.is_ascii(), "non-ASCII header:\n{head}");
    let mut seen: Vec<&str> = Vec::new();
    for line in head.split("\r\n") {
        assert!(
            !line.contains(['\r', '\n', '\0']),
            "bare CR/LF/NUL in a header line {line:?}"
        );
        if line.starts_with([' ', '\t']) {
            assert!(!seen.is_empty(), "continuation before any header");
            continue;
        }
        let name = line.split(':').next().unwrap_or_default();
        assert!(
            HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)),
            "unexpected header {name:?} (injection?):\n{head}"
        );
        assert!(!seen.contains(&name), "header {name:?} twice:\n{head}");
        seen.push(name);
    }
}
