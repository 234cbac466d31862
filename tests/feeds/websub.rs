//! WebSub: feeds name their hubs, and after a build each hub gets one
//! form-encoded `hub.mode=publish` request per feed whose bytes changed —
//! checked against a real HTTP server on loopback (`websub_hub.py`), which
//! logs every request it gets. A hub that answers 500, never answers, or is
//! not there is a warning and the build exits 0.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Site, Snapshot, article, free_port, repo_root, xml_doc};

/// `websub_hub.py` running on a free loopback port; killed on drop.
struct Hub {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Hub {
    /// A hub that answers every request as `mode` says (`ok`, `fail`, `slow`).
    fn start(mode: &str) -> Hub {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let log = dir.path().join("requests.jsonl");
        let mut child = Command::new("python3")
            .arg(repo_root().join("tests/support/websub_hub.py"))
            .arg(&log)
            .arg(mode)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e}): install Python 3"));
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut first)
            .expect("the hub's port");
        let port = first
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("websub_hub.py printed {first:?}, not a port"));
        Hub {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    /// The hub's URL; `path` tells hubs on one server apart.
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Every request so far: one JSON object each.
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `feeds.toml` of [`Site::new`] with three formats, a topic and the hubs.
fn site_with_hubs(hubs: &[String], timeout: &str) -> Site {
    let site = Site::new();
    let hubs: Vec<String> = hubs.iter().map(|h| format!("{h:?}")).collect();
    site.append_config(&format!(
        "[output]\nformats = [\"rss\", \"atom\", \"json\"]\n\n\
         [[topics]]\nid = \"jiceng\"\ntitle = \"基层干部\"\nkeywords = [\"基层干部\"]\n\n\
         [websub]\nhubs = [{}]\ntimeout = \"{timeout}\"\n",
        hubs.join(", ")
    ));
    let mut tech = article("t1", "tech", "2017-03-22 08:00");
    tech["keywords"] = json!(["基层干部"]);
    site.write_jsonl(
        "articles/a.jsonl",
        &[article("n1", "news", "2017-03-20 08:00"), tech],
    );
    site
}

/// The feed URL of every feed file among `paths` (not the OPML).
fn feed_urls<'a>(paths: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    paths
        .into_iter()
        .filter(|p| !p.ends_with(".opml"))
        .map(|p| format!("https://news.example.cn/{p}"))
        .collect()
}

/// The `hub.url` of each request to `path`, checking each is a
/// form-encoded publish request; repeats kept.
fn published(hub: &Hub, path: &str) -> Vec<String> {
    hub.requests()
        .iter()
        .filter(|r| r["path"] == format!("/{path}"))
        .map(|r| {
            assert_eq!(r["method"], "POST", "{r}");
            assert_eq!(
                r["content_type"], "application/x-www-form-urlencoded",
                "{r}"
            );
            let body = r["body"].as_str().unwrap();
            let fields: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
            assert_eq!(fields.len(), 2, "{body}");
            assert_eq!(fields[0], ("hub.mode".into(), "publish".into()), "{body}");
            assert_eq!(fields[1].0, "hub.url", "{body}");
            // Encoded as a form encodes it: ':' and '/' escaped.
            assert!(
                body.starts_with("hub.mode=publish&hub.url=https%3A%2F%2F"),
                "{body}"
            );
            fields[1].1.clone()
        })
        .collect()
}

#[test]
fn each_hub_hears_once_of_each_changed_feed_and_of_nothing_unchanged() {
    let hub = Hub::start("ok");
    let site = site_with_hubs(&[hub.url("a"), hub.url("b")], "10s");
    let run = site.build();
    run.assert_success();
    assert!(
        run.stdout_utf8()
            .contains("published 15 changed feeds to 2 WebSub hubs: 30 requests taken, 0 failed"),
        "{run}"
    );
    // First build: every feed is new. 3 formats × (site, 3 sections, a topic).
    let everything = Snapshot::of(&site.out_dir());
    let all_feeds = feed_urls(everything.paths());
    assert_eq!(all_feeds.len(), 15);
    for path in ["a", "b"] {
        let urls = published(&hub, path);
        assert_eq!(urls.len(), 15, "one request per feed: {urls:?}");
        assert_eq!(urls.into_iter().collect::<BTreeSet<_>>(), all_feeds);
    }

    // Every feed names the hubs.
    let rss = site.read_out_text("feeds/tech/rss.xml");
    let doc = xml_doc(&rss);
    let hubs: Vec<&str> = doc
        .descendants()
        .filter(|n| n.attribute("rel") == Some("hub"))
        .filter_map(|n| n.attribute("href"))
        .collect();
    assert_eq!(hubs, [hub.url("a"), hub.url("b")]);
    let json: Value =
        serde_json::from_slice(&site.read_out("feeds/topics/jiceng/feed.json")).unwrap();
    assert_eq!(
        json["hubs"],
        json!([{"type": "WebSub", "url": hub.url("a")}, {"type": "WebSub", "url": hub.url("b")}])
    );

    // Nothing changed: no request at all.
    site.build().assert_success();
    assert_eq!(hub.requests().len(), 30);

    // A new tech article: only the feeds whose bytes changed.
    let before = Snapshot::of(&site.out_dir());
    site.write_jsonl(
        "articles/b.jsonl",
        &[article("t2", "tech", "2017-03-23 08:00")],
    );
    site.build().assert_success();
    let changed = before.changed(&Snapshot::of(&site.out_dir()));
    let expected = feed_urls(changed.iter().map(String::as_str));
    // The site's and tech's feeds, not news's nor the topic's.
    for feed in [
        "feeds/rss.xml",
        "feeds/tech/atom.xml",
        "feeds/tech/feed.json",
    ] {
        assert!(
            expected.contains(&format!("https://news.example.cn/{feed}")),
            "{changed:?}"
        );
    }
    for feed in ["feeds/news/rss.xml", "feeds/topics/jiceng/rss.xml"] {
        assert!(
            !expected.contains(&format!("https://news.example.cn/{feed}")),
            "{changed:?}"
        );
    }
    for path in ["a", "b"] {
        let urls = published(&hub, path);
        let new: BTreeSet<String> = urls[15..].iter().cloned().collect();
        assert_eq!(urls.len(), 15 + expected.len());
        assert_eq!(new, expected);
    }

    // --no-ping: written, nobody told.
    site.write_jsonl(
        "articles/b.jsonl",
        &[article("t3", "tech", "2017-03-24 08:00")],
    );
    let sent = hub.requests().len();
    let before = Snapshot::of(&site.out_dir());
    site.run(&["build", "--no-ping", "--now", crate::support::NOW])
        .assert_success();
    assert!(!before.changed(&Snapshot::of(&site.out_dir())).is_empty());
    assert_eq!(hub.requests().len(), sent);
}

#[test]
fn a_failed_build_pings_no_hub() {
    let hub = Hub::start("ok");
    let site = site_with_hubs(&[hub.url("a")], "10s");
    site.write("articles/bad.jsonl", "{\"id\": \"x\", \"title\": \"t\"}\n");
    site.build().assert_code(1);
    site.assert_nothing_written();
    assert!(hub.requests().is_empty());
}

#[test]
fn a_hub_that_fails_is_a_warning_and_the_build_succeeds() {
    let failing = Hub::start("fail");
    let fine = Hub::start("ok");
    let absent = format!("http://127.0.0.1:{}/", free_port());
    let site = site_with_hubs(
        &[failing.url("hub"), absent.clone(), fine.url("hub")],
        "10s",
    );
    let run = site.build();
    run.assert_success();
    let stderr = run.stderr_rel();
    assert!(
        stderr.contains(&format!(
            "WebSub hub {} was not told that https://news.example.cn/feeds/",
            failing.url("hub")
        )) && stderr.contains("changed: HTTP 500"),
        "{run}"
    );
    assert!(
        stderr.contains(&format!("WebSub hub {absent} was not told that")),
        "{run}"
    );
    // After three failures in a row a hub is left alone, and says so.
    assert!(
        stderr.contains(&format!(
            "WebSub hub {} failed 3 times in a row:",
            failing.url("hub")
        )),
        "{run}"
    );
    // Each failed request was tried twice; far fewer than 15 feeds × 2.
    let tried = failing.requests().len();
    assert!(
        tried.is_multiple_of(2) && (6..=12).contains(&tried),
        "{tried}"
    );
    // The working hub heard of every feed all the same.
    assert_eq!(published(&fine, "hub").len(), 15);
    site.assert_all_feeds_valid();
}

#[test]
fn a_hub_that_never_answers_times_out_with_a_warning() {
    let slow = Hub::start("slow");
    let site = site_with_hubs(&[slow.url("hub")], "300ms");
    let started = Instant::now();
    let run = site
        .cmd(&["build", "--now", crate::support::NOW])
        .config(&site.config_path())
        .run_within(Duration::from_secs(60));
    run.assert_success();
    assert!(
        run.stderr_rel().contains("changed: no answer within 0.3 s"),
        "{run}"
    );
    // Three failures of two attempts, four at a time: seconds, not 15 × 30 s.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(slow.requests().len() <= 12);
}

#[test]
fn hub_urls_must_be_http() {
    for (hub, problem) in [
        (
            "ftp://hub.example/",
            "\"ftp://hub.example/\" is not an absolute http or https URL",
        ),
        ("/hub", "\"/hub\" is not a URL: relative URL without a base"),
    ] {
        let site = site_with_hubs(&[hub.to_owned()], "10s");
        let run = site.build();
        run.assert_code(1);
        let line = run.error_line();
        assert!(
            line.starts_with("feeds.toml:") && line.ends_with(&format!("websub.hubs: {problem}")),
            "{line}"
        );
        site.assert_nothing_written();
    }
    let site = site_with_hubs(&["https://hub.example/".to_owned()], "soon");
    let line = site.build().error_line();
    assert!(
        line.ends_with("websub.timeout: \"soon\" is not a duration like \"10s\" or \"500ms\""),
        "{line}"
    );
}
