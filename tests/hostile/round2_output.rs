//! Issue #17, second round: what bulletin writes and where.
//!
//! - temporary files are created exclusively beside their targets: a link
//!   planted at a temporary name is never written through (feeds, dry-run
//!   previews, build cache).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BIN, NOW, SECRET, SECRET_VAR, Site, only_eml};

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
) -> crate::harness::Run {
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
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(victim)
        .arg(folders.join(" "))
        .arg(BIN)
        .args(args)
        .current_dir(site.root())
        .env("NO_COLOR", "1")
        .env(SECRET_VAR, SECRET);
    crate::harness::Run::of(&mut command)
}

/// How many links the shell of [`run_with_links_at_temp_names`] planted.
fn planted_links(run: &crate::harness::Run) -> usize {
    run.stderr.matches("planted a link").count()
}

#[test]
fn a_symlink_at_a_feed_temp_name_is_not_written_through() {
    // Regression: `Staging::add` wrote `.<name>.<pid>.tmp` with
    // `fs::write`, which follows a link already there, then renamed the
    // link over the feed: anyone who can create a file in the output
    // folder could make `build` overwrite any file the user can write.
    let site = Site::new();
    site.build().expect(0);
    let victim = site.path("victim.txt");
    fs::write(&victim, "precious").unwrap();
    site.write_jsonl(
        "articles/a.jsonl",
        &[
            crate::harness::article("a1", "news"),
            crate::harness::article("a2", "yushi"),
        ],
    );
    let run = run_with_links_at_temp_names(&site, &["public"], &victim, &["build", "--now", NOW]);
    assert!(planted_links(&run) > 5, "no links planted\n{run}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    run.expect(0);
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
    let site = Site::new();
    site.dry_run("out").expect(0);
    let victim = site.path("victim.txt");
    fs::write(&victim, "precious").unwrap();
    site.write_jsonl(
        "articles/a.jsonl",
        &[
            crate::harness::article("a1", "news"),
            crate::harness::article("a2", "news"),
        ],
    );
    let run = run_with_links_at_temp_names(
        &site,
        &["out"],
        &victim,
        &["digest", "--dry-run", "out", "--now", NOW],
    );
    assert!(planted_links(&run) >= 4, "no links planted\n{run}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    run.expect(0);
    for file in [
        "reader@example.com.eml",
        "preview/reader@example.com.html",
        "index.html",
    ] {
        let meta = fs::symlink_metadata(site.path(&format!("out/{file}"))).unwrap();
        assert!(meta.is_file(), "{file} is not a plain file");
    }
    assert!(only_eml(&site, "out").text.contains("a2"));
}

#[test]
fn a_symlink_at_a_cache_temp_name_is_not_written_through() {
    // Regression: the build cache wrote `<key>.ids.<pid>.tmp` with
    // `File::create` and `<key>.<pid>.tmp` with `fs::write`, both
    // following a link already there (the key is a hash of the input path).
    let site = Site::new();
    site.build().expect(0);
    let victim = site.path("victim.txt");
    fs::write(&victim, "precious").unwrap();
    site.write_jsonl(
        "articles/a.jsonl",
        &[
            crate::harness::article("a1", "news"),
            crate::harness::article("a2", "news"),
        ],
    );
    let run = run_with_links_at_temp_names(
        &site,
        &[".bulletin/cache"],
        &victim,
        &["build", "--now", NOW],
    );
    assert!(planted_links(&run) >= 3, "no links planted\n{run}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    run.expect(0);
    // The entry written this time is used by the next build.
    site.build().expect(0);
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
    let site = Site::new();
    site.build().expect(0);
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
        &[
            crate::harness::article("a1", "news"),
            crate::harness::article("a2", "news"),
        ],
    );
    let mut child = site
        .command(&["build", "--now", NOW])
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
    let site = Site::bare();
    fs::create_dir_all(site.path("new/templates")).unwrap();
    let target = site.path("created-by-init.txt");
    symlink(&target, site.path("new/templates/digest.txt.hbs")).unwrap();
    let run = site.run(&["init", "new"]);
    run.expect(1).stderr_has(&["refusing to overwrite"]);
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
