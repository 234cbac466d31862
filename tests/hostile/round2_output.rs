//! Issue #17, second round: what bulletin writes and where.
//!
//! - temporary files are created exclusively beside their targets: a link
//!   planted at a temporary name is never written through (feeds, dry-run
//!   previews, build cache);
//! - an interrupted `build` or dry run removes its temporary files, and the
//!   next run removes those of runs that died;
//! - templates that would recurse without end or nest deeper than the
//!   stack allows are refused by `check` with file and line;
//! - the unsubscribe URL and the sender go out in their ASCII form
//!   (percent-encoding, punycode), so `List-Unsubscribe` keeps its `<URI>`;
//! - every header line stays within 998 octets (78 where it can be folded),
//!   whatever the length of a title or a name.

use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use crate::support::{DryRun, Email, NOW, Run, Site, digest_article};

// ---------------------------------------------------------------------------
// Temporary files are never written through a link planted at their name.

/// Runs `bulletin ARGS` from a shell that first plants, for every file
/// already under each of `folders`, a symlink to `victim` at the names the
/// old code used for that file's temporary copy (`.<name>.<pid>.tmp` beside
/// it, and for cache entries `<key>.<pid>.tmp` and `<key>.ids.<pid>.tmp`),
/// with the pid the command will have (`exec` keeps the shell's).
fn run_with_links_at_temp_names(
    site: &Site,
    folders: &[&str],
    victim: &Path,
    args: &[&str],
) -> Run {
    let script = r#"
victim="$1"; shift
folders="$1"; shift
for folder in $folders; do
  find "$folder" -type f ! -name '*.tmp' | while read -r f; do
    dir=$(dirname "$f"); base=$(basename "$f")
    ln -s "$victim" "$dir/.$base.$$.tmp" && echo "planted a link" >&2
    case "$base" in *.json) key="${base%.json}"
      ln -s "$victim" "$dir/$key.$$.tmp" && echo "planted a link" >&2
      ln -s "$victim" "$dir/$key.ids.$$.tmp" && echo "planted a link" >&2;;
    esac
  done
done
exec "$@"
"#;
    site.cmd(args)
        .wrapped_in([
            "sh".into(),
            "-c".into(),
            script.into(),
            "sh".into(),
            victim.as_os_str().to_owned(),
            folders.join(" ").into(),
        ])
        .run()
}

/// How many links the shell of [`run_with_links_at_temp_names`] planted.
fn planted_links(run: &Run) -> usize {
    run.stderr.matches("planted a link").count()
}

#[test]
fn a_symlink_at_a_feed_temp_name_is_not_written_through() {
    // Regression: `Staging::add` wrote `.<name>.<pid>.tmp` with
    // `fs::write`, which follows a link already there, then renamed the
    // link over the feed: anyone who can create a file in the output
    // folder could make `build` overwrite any file the user can write.
    let site = Site::with_digest();
    site.build().assert_success();
    let victim = site.path("victim.txt");
    fs::write(&victim, "precious").unwrap();
    site.write_jsonl(
        "articles/a.jsonl",
        &[digest_article("a1", "news"), digest_article("a2", "yushi")],
    );
    let run = run_with_links_at_temp_names(&site, &["public"], &victim, &["build", "--now", NOW]);
    assert!(planted_links(&run) > 5, "no links planted\n{run}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    run.assert_success();
    for feed in [
        "feeds/rss.xml",
        "feeds/news/atom.xml",
        "feeds/yushi/feed.json",
    ] {
        let path = site.path(&format!("public/{feed}"));
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file(), "{feed} is not a plain file");
        assert!(
            fs::read_to_string(&path).unwrap().contains("a2"),
            "{feed} was not rewritten"
        );
    }
}

#[test]
fn a_symlink_at_a_dry_run_temp_name_is_not_written_through() {
    // Regression: as above, for `digest --dry-run DIR`: the .eml, the
    // preview and the index are staged at predictable names in DIR.
    let site = Site::with_digest();
    site.dry_run("out").ok();
    let victim = site.path("victim.txt");
    fs::write(&victim, "precious").unwrap();
    site.write_jsonl(
        "articles/a.jsonl",
        &[digest_article("a1", "news"), digest_article("a2", "news")],
    );
    let run = run_with_links_at_temp_names(
        &site,
        &["out"],
        &victim,
        &["digest", "--dry-run", "out", "--now", NOW],
    );
    assert!(planted_links(&run) >= 4, "no links planted\n{run}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    run.assert_success();
    for file in [
        "reader@example.com.eml",
        "preview/reader@example.com.html",
        "index.html",
    ] {
        let meta = fs::symlink_metadata(site.path(&format!("out/{file}"))).unwrap();
        assert!(meta.is_file(), "{file} is not a plain file");
    }
    let dry_run = DryRun {
        run,
        dir: site.path("out"),
    };
    assert!(dry_run.only_email().text.contains("a2"));
}

#[test]
fn a_symlink_at_a_cache_temp_name_is_not_written_through() {
    // Regression: the build cache wrote `<key>.ids.<pid>.tmp` with
    // `File::create` and `<key>.<pid>.tmp` with `fs::write`, both
    // following a link already there (the key is a hash of the input path).
    let site = Site::with_digest();
    site.build().assert_success();
    let victim = site.path("victim.txt");
    fs::write(&victim, "precious").unwrap();
    site.write_jsonl(
        "articles/a.jsonl",
        &[digest_article("a1", "news"), digest_article("a2", "news")],
    );
    let run = run_with_links_at_temp_names(
        &site,
        &[".bulletin/cache"],
        &victim,
        &["build", "--now", NOW],
    );
    assert!(planted_links(&run) >= 3, "no links planted\n{run}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    run.assert_success();
    // The entry written this time is used by the next build.
    site.build().assert_success();
    assert!(
        fs::read_to_string(site.path("public/feeds/rss.xml"))
            .unwrap()
            .contains("a2")
    );
}

/// A FIFO or a link to a device at a feed's name is replaced, never read
/// (reading a FIFO waits for a writer forever; `/dev/zero` never ends).
#[test]
fn a_fifo_or_a_device_link_at_a_feed_name_does_not_hang_the_build() {
    // Regression: `Staging::add` compared the new bytes with
    // `fs::read(target)`, which follows links and blocks on a FIFO.
    let site = Site::with_digest();
    site.build().assert_success();
    fs::remove_file(site.path("public/feeds/rss.xml")).unwrap();
    let status = Command::new("mkfifo")
        .arg(site.path("public/feeds/rss.xml"))
        .status()
        .unwrap();
    assert!(status.success());
    fs::remove_file(site.path("public/feeds/atom.xml")).unwrap();
    symlink("/dev/zero", site.path("public/feeds/atom.xml")).unwrap();
    site.write_jsonl(
        "articles/a.jsonl",
        &[digest_article("a1", "news"), digest_article("a2", "news")],
    );
    let mut child = site
        .cmd(&["build", "--now", NOW])
        .into_command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_for(&mut child, Duration::from_secs(30));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "the build hung or failed"
    );
    for feed in ["rss.xml", "atom.xml"] {
        let meta = fs::symlink_metadata(site.path(&format!("public/feeds/{feed}"))).unwrap();
        assert!(meta.is_file(), "{feed} was not replaced by a plain file");
    }
}

/// `init` creates each file exclusively: a dangling link at a starter
/// file's name is refused, and its target is not created.
#[test]
fn init_does_not_follow_a_dangling_symlink() {
    let site = Site::empty();
    fs::create_dir_all(site.path("new/templates")).unwrap();
    let target = site.path("created-by-init.txt");
    symlink(&target, site.path("new/templates/digest.txt.hbs")).unwrap();
    let run = site.run(&["init", "new"]);
    run.assert_code(1)
        .assert_stderr_has(&["refusing to overwrite"]);
    assert!(!target.exists(), "init wrote through the link");
}

/// Waits for `child` to end, at most `limit`; kills it after that.
fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------
// Interrupted runs clean up; the next run removes what dead runs left.

/// Every path under `dir`, folders included.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

/// Temporary files (names starting with `.` and ending in `.tmp`) under `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with('.') && name.ends_with(".tmp")
        })
        .collect()
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// Starts `args`, stops the process (SIGSTOP) as soon as a temporary file
/// appears under `watch`, sends `sig`, lets it continue and waits. Returns
/// the temporary files seen while it was stopped and how it ended; `None`
/// when the run ended before it could be caught with temporary files.
fn interrupt_while_staging(
    site: &Site,
    args: &[&str],
    watch: &Path,
    sig: &str,
) -> Option<(Vec<PathBuf>, std::process::ExitStatus)> {
    let mut child = site
        .cmd(args)
        .into_command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "the run hangs");
        if !temp_files(watch).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    signal(pid, "STOP");
    let seen = temp_files(watch);
    if seen.is_empty() {
        signal(pid, "CONT");
        let _ = child.wait();
        return None;
    }
    signal(pid, sig);
    signal(pid, "CONT");
    let status = wait_for(&mut child, Duration::from_secs(60)).expect("the run ended");
    Some((seen, status))
}

/// `n` articles in `news` with bodies of `kb` kilobytes.
fn big_articles(site: &Site, n: usize, kb: usize) {
    let body = format!("<p>{}</p>", "新闻内容。".repeat(kb * 1024 / 15));
    let records: Vec<_> = (0..n)
        .map(|i| {
            let mut record = digest_article(&format!("big{i}"), "yushi");
            record["content_html"] = json!(body);
            record
        })
        .collect();
    site.write_jsonl("articles/a.jsonl", &records);
}

#[test]
fn sigterm_during_build_removes_its_temp_files() {
    // Regression: a build stopped by SIGTERM left its `.<name>.<pid>.tmp`
    // files (80 MB in one case) in the served folder, never cleaned.
    for attempt in 0..8 {
        let site = Site::with_digest();
        big_articles(&site, 50, 200 + attempt * 200);
        let Some((seen, status)) = interrupt_while_staging(
            &site,
            &["build", "--now", NOW],
            &site.path("public"),
            "TERM",
        ) else {
            continue;
        };
        assert!(!seen.is_empty());
        assert_eq!(
            status.signal(),
            Some(15),
            "the build did not end by SIGTERM (shell status 143): {status:?}"
        );
        let left = temp_files(&site.path("public"));
        assert!(left.is_empty(), "temporary files left: {left:?}");
        let cache_left = temp_files(&site.path(".bulletin"));
        assert!(
            cache_left.is_empty(),
            "cache temporary files left: {cache_left:?}"
        );
        return;
    }
    panic!("never caught the build while it had temporary files");
}

#[test]
fn sigint_during_a_dry_run_removes_its_temp_files() {
    // Regression: as above for `digest --dry-run` (Ctrl-C while previews
    // are being written).
    for attempt in 0..8 {
        let site = Site::with_digest();
        let subscribers: String = (0..1000 * (attempt + 1))
            .map(|i| format!("[[subscribers]]\nemail = \"reader{i}@example.com\"\n\n"))
            .collect();
        site.write("subscribers.toml", subscribers);
        let Some((seen, status)) = interrupt_while_staging(
            &site,
            &["digest", "--dry-run", "out", "--now", NOW],
            &site.path("out"),
            "INT",
        ) else {
            continue;
        };
        assert!(!seen.is_empty());
        assert_eq!(
            status.signal(),
            Some(2),
            "the dry run did not end by SIGINT (shell status 130): {status:?}"
        );
        let left = temp_files(&site.path("out"));
        assert!(left.is_empty(), "temporary files left: {left:?}");
        return;
    }
    panic!("never caught the dry run while it had temporary files");
}

/// A pid no process has: above the kernel's largest.
fn dead_pid() -> u64 {
    let max: u64 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    max + 1000
}

#[test]
fn stale_temp_files_of_dead_runs_are_removed_by_the_next_run() {
    // Regression: temporary files of killed runs stayed forever (each run
    // has a new pid, so none of them ever reused one).
    let site = Site::with_digest();
    site.build().assert_success();
    site.dry_run("out").ok();
    let dead = dead_pid();
    let alive = std::process::id();
    let day_old = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    let stale = [
        format!("public/feeds/.rss.xml.{dead}.Ab3dE9.tmp"),
        // The name the old code used.
        format!("public/feeds/news/.atom.xml.{dead}.tmp"),
        format!("out/.reader@example.com.eml.{dead}.x1Y2z3.tmp"),
        format!("out/preview/.reader@example.com.html.{dead}.tmp"),
        format!(".bulletin/cache/.0123456789abcdef.json.{dead}.qwErty.tmp"),
        // The cache's old names.
        format!(".bulletin/cache/0123456789abcdef.{dead}.tmp"),
        format!(".bulletin/cache/0123456789abcdef.ids.{dead}.tmp"),
        // A live pid, but a day old: not this run's, whoever has the pid now.
        format!("public/feeds/.feed.json.{alive}.Zz9Zz9.tmp"),
    ];
    let kept = [
        // A live run's file (this test process stands for it).
        format!("public/feeds/.index.opml.{alive}.AbCdEf.tmp"),
        // Not names bulletin makes.
        "public/feeds/notes.tmp".to_owned(),
        format!("public/feeds/.rss.xml.{dead}.tmp.bak"),
        "public/feeds/.rss.xml.tmp".to_owned(),
        format!("out/.x.{dead}.toolongrandom.tmp"),
    ];
    for path in stale.iter().chain(&kept) {
        site.write(path, "left over");
    }
    let old = fs::File::options()
        .write(true)
        .open(site.path(&stale[7]))
        .unwrap();
    old.set_modified(day_old).unwrap();
    // A folder with a temporary name is never touched.
    fs::create_dir_all(site.path(&format!("public/feeds/.dir.{dead}.tmp"))).unwrap();

    site.build().assert_success();
    site.dry_run("out").ok();
    for path in &stale {
        assert!(!site.path(path).exists(), "{path} was not removed");
    }
    for path in &kept {
        assert!(site.path(path).exists(), "{path} was removed");
    }
    assert!(site.path(&format!("public/feeds/.dir.{dead}.tmp")).is_dir());
}

// ---------------------------------------------------------------------------
// Templates that would exhaust the stack are refused, with file and line.

/// A site whose text template is `text` (in `t.txt.hbs`).
fn site_with_text_template(text: &str) -> Site {
    let site = Site::with_digest();
    site.edit_config("[digest]\n", "[digest]\ntext = \"t.txt.hbs\"\n");
    site.write("t.txt.hbs", text);
    site
}

/// `check`, the dry run and the send all refuse the site with an error line
/// starting with `prefix` and containing `needle`; nothing is written, sent
/// or recorded.
#[track_caller]
fn refused(site: &Site, prefix: &str, needle: &str) {
    for args in [
        &["check"][..],
        &["digest", "--dry-run", "out", "--now", NOW][..],
        &["digest", "--send", "--now", NOW][..],
    ] {
        let run = site.run(args);
        run.assert_code(1);
        assert!(
            run.errors()
                .iter()
                .any(|l| l.starts_with(prefix) && l.contains(needle)),
            "{args:?}: no error line {prefix}…{needle}\n{run}"
        );
        run.assert_stderr_has(&["nothing was written or sent"]);
    }
    assert!(!site.path("out").exists(), "the dry run wrote its folder");
    assert!(site.sent().is_empty(), "something was sent");
}

#[test]
fn a_recursive_inline_partial_is_refused_with_file_and_line() {
    // Regression: handlebars recursed until the stack overflowed: `check`,
    // the dry run and the send aborted with exit 134.
    let site = site_with_text_template(
        "{{site.title}}\n{{#*inline \"x\"}}\n  a{{> x}}\n{{/inline}}\n{{> x}}\n",
    );
    refused(
        &site,
        "./t.txt.hbs:3:4: ",
        "partial \"x\" includes itself (x > x)",
    );
}

#[test]
fn mutually_recursive_partials_are_refused_with_file_and_line() {
    let site = site_with_text_template(
        "{{#*inline \"a\"}}[{{> b}}]{{/inline}}\n\
         {{#*inline \"b\"}}({{#if site}}{{> c}}{{/if}}){{/inline}}\n\
         {{#*inline \"c\"}}{{#> a}}fallback{{/a}}{{/inline}}\n\
         {{> a}}\n",
    );
    refused(
        &site,
        "./t.txt.hbs:",
        "partial \"a\" includes itself (a > b > c > a)",
    );
}

#[test]
fn templates_that_include_each_other_are_refused() {
    // Regression: the subject template includes the text template, which
    // includes the subject: handlebars only refuses a template including
    // itself directly, so this recursed until the stack overflowed.
    let site = site_with_text_template("{{site.title}}\n{{> subject}}\n");
    site.edit_config(
        "subject = \"{{site.title}} · {{date}} 要闻\"",
        "subject = \"{{> text}}\"",
    );
    refused(&site, "./t.txt.hbs:2:1: ", "\"subject\" is not a partial");
    let site = site_with_text_template("{{site.title}}\n");
    site.edit_config(
        "subject = \"{{site.title}} · {{date}} 要闻\"",
        "subject = \"{{> text}}\"",
    );
    refused(
        &site,
        "feeds.toml: digest.subject: ",
        "\"text\" is not a partial",
    );
}

#[test]
fn a_computed_partial_name_is_refused() {
    // Regression: a name computed while rendering can name the partial
    // being rendered (here the site title, 测试站): it recursed until the
    // stack overflowed, with nothing in the text to see.
    let site = site_with_text_template(
        "{{#*inline \"测试站\"}}{{> (lookup site \"title\")}}{{/inline}}{{> 测试站}}\n",
    );
    refused(
        &site,
        "./t.txt.hbs:1:19: ",
        "a partial's name must be written out",
    );
}

#[test]
fn deeply_nested_template_blocks_are_refused_with_file_and_line() {
    // Regression: 10,000 nested `{{#if}}` overflowed the parser's stack
    // (exit 134 in `check`); 300 were parsed but overflowed a composing
    // thread's stack in the dry run and the send.
    for depth in [300, 10_000] {
        let text = format!(
            "{{{{site.title}}}}\n{}x{}\n",
            "{{#if site}}".repeat(depth),
            "{{/if}}".repeat(depth)
        );
        let site = site_with_text_template(&text);
        // The 101st `{{#if` starts at column 1 + 100 * 12.
        refused(
            &site,
            "./t.txt.hbs:2:1201: ",
            "nested more than 100 levels deep",
        );
    }
    // Subexpressions nest on the same stack.
    let text = format!(
        "{{{{#if {}site{}}}}}x{{{{/if}}}}\n",
        "(not ".repeat(5000),
        ")".repeat(5000)
    );
    let site = site_with_text_template(&text);
    refused(&site, "./t.txt.hbs:1:", "nested more than 100 levels deep");
    // So do partials: nesting inside a partial adds to the nesting where it
    // is included.
    let mut text = String::new();
    for level in 0..5 {
        text.push_str(&format!(
            "{{{{#*inline \"p{level}\"}}}}{}{}{}{{{{/inline}}}}\n",
            "{{#if site}}".repeat(30),
            if level < 4 {
                format!("{{{{> p{}}}}}", level + 1)
            } else {
                "x".to_owned()
            },
            "{{/if}}".repeat(30),
        ));
    }
    text.push_str("{{> p0}}\n");
    let site = site_with_text_template(&text);
    refused(&site, "./t.txt.hbs:", "nested more than 100 levels deep");
}

#[test]
fn ordinary_partials_and_nesting_still_work() {
    let text = format!(
        "{{{{#*inline \"item\"}}}}* {{{{title}}}}{{{{/inline}}}}\
         {{{{#*inline \"list\"}}}}{{{{#each items}}}}{{{{> item}}}}\n{{{{/each}}}}{{{{/inline}}}}\
         {{{{#each sections}}}}{{{{> list}}}}{{{{/each}}}}{}deep{}\n",
        "{{#if site}}".repeat(90),
        "{{/if}}".repeat(90)
    );
    let site = site_with_text_template(&text);
    site.run(&["check"]).assert_success();
    let mail = site.dry_run("out").ok().only_email();
    assert!(mail.text.contains("* 标题 a1"), "{}", mail.text);
    assert!(mail.text.contains("deep"));
}

// ---------------------------------------------------------------------------
// The unsubscribe URL goes out as an ASCII URI.

#[test]
fn a_non_ascii_unsubscribe_url_goes_out_percent_encoded() {
    // Regression: `https://新闻.example.cn/退订?token=…` passed `check`,
    // then lettre wrote List-Unsubscribe as RFC 2047 encoded words, which
    // no longer hold a `<URI>` (RFC 2369): one-click unsubscribe broke.
    for (configured, host, path) in [
        (
            "https://news.example.cn/退订?token={{token}}&from=摘要",
            "news.example.cn",
            "/%E9%80%80%E8%AE%A2?token=",
        ),
        (
            "HTTPS://新闻.Example.cn/unsubscribe/退 订?token={{token}}",
            "xn--efvy88h.example.cn",
            "/unsubscribe/%E9%80%80%20%E8%AE%A2?token=",
        ),
    ] {
        let site = Site::with_digest();
        site.edit_config(
            "unsubscribe_url = \"https://news.example.cn/unsubscribe?token={{token}}\"",
            &format!("unsubscribe_url = \"{configured}\""),
        );
        site.run(&["check"]).assert_success();
        let mail = site.dry_run("out").ok().only_email();
        let header = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
        assert!(header.is_ascii() && !header.contains("=?"), "{header}");
        let prefix = format!("<https://{host}{path}");
        assert!(header.starts_with(&prefix), "{header} lacks {prefix}");
        assert!(header.ends_with('>'));
        let url = &header[1..header.len() - 1];
        assert!(!url.contains(' '));
        assert_eq!(
            mail.header("List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        // The link in both parts is the same URI.
        let html = mail.html.replace("&#x3D;", "=").replace("&amp;", "&");
        assert!(html.contains(&format!("href=\"{url}\"")), "{}", mail.html);
        assert!(mail.text.contains(url), "{}", mail.text);
    }
}

#[test]
fn a_non_ascii_mailto_unsubscribe_url_goes_out_percent_encoded() {
    let site = Site::with_digest();
    site.edit_config(
        "unsubscribe_url = \"https://news.example.cn/unsubscribe?token={{token}}\"",
        "unsubscribe_url = \"mailto:退订@news.example.cn?subject={{token}}\"",
    );
    let mail = site.dry_run("out").ok().only_email();
    let header = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
    assert!(
        header.starts_with("<mailto:%E9%80%80%E8%AE%A2@news.example.cn?subject="),
        "{header}"
    );
    assert!(header.is_ascii() && header.ends_with('>'));
    assert_eq!(mail.header("List-Unsubscribe-Post"), None);
}

#[test]
fn an_unsubscribe_url_too_long_for_a_header_line_is_refused() {
    let site = Site::with_digest();
    site.edit_config(
        "unsubscribe_url = \"https://news.example.cn/unsubscribe?token={{token}}\"",
        &format!(
            "unsubscribe_url = \"https://news.example.cn/{}?token={{{{token}}}}\"",
            "退".repeat(200)
        ),
    );
    let run = site.run(&["check"]);
    run.assert_code(1).assert_stderr_has(&[
        "digest.unsubscribe_url: ",
        "a List-Unsubscribe header line holds at most 998",
    ]);
}

#[test]
fn a_sender_with_an_internationalised_domain_goes_out_in_punycode() {
    // Regression: `smtp.from` with an IDN domain was written into From as
    // raw UTF-8 (an 8-bit header, and a MAIL FROM that needs SMTPUTF8).
    let site = Site::with_digest();
    site.edit_config(
        "from = \"测试站 <digest@news.example.cn>\"",
        "from = \"测试站 <digest@新闻.example.cn>\"",
    );
    site.run(&["check"]).assert_success();
    let mail = site.dry_run("out").ok().only_email();
    let from = mail.header("From").expect("From");
    assert!(from.is_ascii(), "{from}");
    assert!(from.ends_with("<digest@xn--efvy88h.example.cn>"), "{from}");
    site.send().assert_success();
    let sent = site.sent();
    assert_eq!(sent.len(), 1);
    assert!(Email::parse(sent[0].clone()).raw_headers().is_ascii());
    let site = Site::with_digest();
    site.edit_config(
        "from = \"测试站 <digest@news.example.cn>\"",
        "from = \"测试站 <摘要@news.example.cn>\"",
    );
    site.run(&["check"])
        .assert_code(1)
        .assert_stderr_has(&["smtp.from: ", "non-ASCII local part"]);
}

// ---------------------------------------------------------------------------
// Header lines stay within 998 octets, folded to 78 where they can be.

/// Every header line is at most 78 octets, except in `List-Unsubscribe`,
/// which holds one URI (it cannot be folded): at most 998 there.
#[track_caller]
fn assert_header_lines_fit(mail: &Email, what: &str) {
    let mut field = String::new();
    for line in mail.raw_headers().split("\r\n") {
        if !line.starts_with([' ', '\t']) {
            field = line.split(':').next().unwrap_or_default().to_owned();
        }
        let limit = if field.eq_ignore_ascii_case("List-Unsubscribe") {
            998
        } else {
            78
        };
        assert!(
            line.len() <= limit,
            "{what}: a header line of {} octets: {}…",
            line.len(),
            &line[..line.len().min(120)]
        );
    }
}

#[test]
fn header_lines_stay_within_limits_for_2000_character_titles_and_names() {
    // Regression: a long site title without spaces gave a List-Id line of
    // 2,035 octets and (with the subject `{{site.title}}`) a Subject line
    // of 2,009: RFC 5322 allows 998.
    for (kind, long) in [("ASCII", "A".repeat(2000)), ("CJK", "新".repeat(2000))] {
        for subject in ["{{site.title}}", "{{site.title}} · {{date}} 要闻"] {
            let site = Site::with_digest();
            site.edit_config("title = \"测试站\"", &format!("title = \"{long}\""));
            site.edit_config(
                "subject = \"{{site.title}} · {{date}} 要闻\"",
                &format!("subject = \"{subject}\""),
            );
            site.edit_config(
                "from = \"测试站 <digest@news.example.cn>\"",
                &format!("from = \"{long} <digest@news.example.cn>\""),
            );
            site.write(
                "subscribers.toml",
                format!("[[subscribers]]\nemail = \"reader@example.com\"\nname = \"{long}\"\n"),
            );
            site.run(&["check"]).assert_success();
            let mail = site.dry_run("out").ok().only_email();
            let what = format!("{kind} title, subject {subject:?}");
            assert_header_lines_fit(&mail, &what);
            let expected = subject
                .replace("{{site.title}}", &long)
                .replace("{{date}}", "2017-03-25");
            assert_eq!(mail.subject, expected, "{what}: subject");
            assert_eq!(
                mail.to,
                [(Some(long.clone()), "reader@example.com".to_owned())]
            );
            let parsed = mail_parser::MessageParser::default()
                .parse(&mail.raw[..])
                .unwrap();
            let from = parsed.from().unwrap().first().unwrap();
            assert_eq!(from.name(), Some(long.as_str()), "{what}: From");
            assert_eq!(from.address(), Some("digest@news.example.cn"));
            let list_id = parsed.header("List-Id").expect("List-Id");
            let list_id = match list_id {
                mail_parser::HeaderValue::Address(a) => a.first().map(|a| {
                    (
                        a.name().unwrap_or_default().to_owned(),
                        a.address().unwrap_or_default().to_owned(),
                    )
                }),
                other => panic!("{what}: List-Id parsed as {other:?}"),
            };
            assert_eq!(
                list_id,
                Some((long.clone(), "digest.news.example.cn".to_owned())),
                "{what}: List-Id"
            );
        }
    }
}

#[test]
fn long_titles_with_spaces_are_folded_at_the_spaces() {
    let long = "Breaking News From Henan ".repeat(80);
    let long = long.trim();
    let site = Site::with_digest();
    site.edit_config("title = \"测试站\"", &format!("title = \"{long}\""));
    site.edit_config(
        "subject = \"{{site.title}} · {{date}} 要闻\"",
        "subject = \"{{site.title}}\"",
    );
    let mail = site.dry_run("out").ok().only_email();
    assert_header_lines_fit(&mail, "ASCII title with spaces");
    assert_eq!(mail.subject, long);
    // Plain words stay plain.
    let list_id = mail.header("List-Id").unwrap();
    assert!(list_id.starts_with("Breaking News From Henan"), "{list_id}");
    assert!(!list_id.contains("=?"), "{list_id}");
}

#[test]
fn a_base_url_host_longer_than_a_domain_name_is_refused() {
    // Regression: the host names the list in Message-ID and List-Id, which
    // cannot be folded; the url crate accepts any length.
    let long_host = format!("{}.example.cn", "a".repeat(300));
    let site = Site::with_digest();
    site.edit_config(
        "base_url = \"https://news.example.cn/\"",
        &format!("base_url = \"https://{long_host}/\""),
    );
    site.run(&["check"])
        .assert_code(1)
        .assert_stderr_has(&["site.base_url: ", "longer than the 253 characters"]);
}

/// Addresses cannot be folded either: lettre already refuses a local part
/// or a domain longer than SMTP allows, in the sender and in subscribers.
#[test]
fn addresses_longer_than_smtp_allows_are_refused() {
    let site = Site::with_digest();
    site.edit_config(
        "from = \"测试站 <digest@news.example.cn>\"",
        &format!("from = \"测试站 <{}@news.example.cn>\"", "d".repeat(300)),
    );
    site.run(&["check"])
        .assert_code(1)
        .assert_stderr_has(&["smtp.from: ", "is not a mailbox"]);

    let site = Site::with_digest();
    site.write(
        "subscribers.toml",
        format!(
            "[[subscribers]]\nemail = \"reader@{}.example.com\"\n",
            "r".repeat(300)
        ),
    );
    site.run(&["check"])
        .assert_code(1)
        .assert_stderr_has(&["email: ", "is not an email address"]);
}
