//! [`Site`]: a site in a temporary folder (`feeds.toml`, its inputs, what
//! bulletin writes there), and the commands run in it. The kinds of site
//! the suites start from are made in `sites`; the readers of what a
//! command left behind are here (files, feeds) and in `email`, `smtp` and
//! `state`.
//!
//! Every command runs with the site's folder as its working folder and
//! with the site's environment (see [`Site::cmd`]). `build`, `check`,
//! `digest --dry-run` and `digest --send` let bulletin find `feeds.toml`
//! there, as someone in the folder would, except on sites made with
//! [`Site::new`] or [`Site::with_config`], where they name it by its
//! absolute path (`--config <site>/feeds.toml`): the command-line suite
//! checks paths as given, read back relative with [`Run::errors`].

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

use super::email::DryRun;
use super::files::{files_under, read};
use super::run::{Cmd, Run};
use super::xml::{assert_all_feeds_valid, parse_feed};
use super::{NOW, SECRET, SECRET_VAR};

/// A site in a temporary folder, removed when dropped.
pub struct Site {
    dir: TempDir,
    /// Set (`Some`) or removed (`None`) for every command, in order.
    env: Vec<(&'static str, Option<&'static str>)>,
    /// Whether `build`, `check` and `digest` get `--config <absolute path>`.
    names_config: bool,
}

impl Site {
    /// An empty site folder; commands get no variable beyond a clean
    /// environment (see `run`).
    pub fn empty() -> Site {
        let dir = tempfile::Builder::new()
            .prefix("bulletin-test-")
            .tempdir()
            .expect("create a temporary folder");
        Site {
            dir,
            env: Vec::new(),
            names_config: false,
        }
    }

    /// Gives every command [`SECRET_VAR`] = [`SECRET`].
    pub fn with_secret(mut self) -> Site {
        self.env.push((SECRET_VAR, Some(SECRET)));
        self
    }

    /// Sets `name` for every command.
    pub(super) fn with_env(mut self, name: &'static str, value: &'static str) -> Site {
        self.env.push((name, Some(value)));
        self
    }

    /// `build`, `check` and `digest` name the config by its absolute path.
    pub(super) fn naming_config(mut self) -> Site {
        self.names_config = true;
        self
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

    // ---- writing the site ------------------------------------------------

    /// Writes a file (folders created as needed).
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Site {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("a file has a folder")).expect("create folder");
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self
    }

    /// A text file of the site.
    pub fn read(&self, rel: &str) -> String {
        let path = self.path(rel);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Rewrites a file through `edit`, asserting the edit changed something.
    #[track_caller]
    pub fn edit(&self, rel: &str, edit: impl FnOnce(&str) -> String) -> &Site {
        let before = self.read(rel);
        let after = edit(&before);
        assert_ne!(before, after, "the edit of {rel} changed nothing");
        self.write(rel, after)
    }

    /// Replaces the first `from` by `to` in `feeds.toml` (which must contain
    /// it; `to` may be `from`).
    #[track_caller]
    pub fn edit_config(&self, from: &str, to: &str) -> &Site {
        let config = self.read("feeds.toml");
        assert!(config.contains(from), "feeds.toml lacks {from:?}");
        self.write("feeds.toml", config.replacen(from, to, 1))
    }

    /// Adds text at the end of `feeds.toml` (e.g. an `[output]` table).
    pub fn append_config(&self, extra: &str) -> &Site {
        self.edit("feeds.toml", |config| format!("{config}\n{extra}"))
    }

    /// Sets a config key (`"smtp.port"`), rewriting `feeds.toml` from its
    /// parsed table.
    pub fn set(&self, key: &str, value: impl Into<toml::Value>) -> &Site {
        let mut config = self.config_table();
        set_key(&mut config, key, value.into());
        self.write_config_table(&config)
    }

    /// Removes a config key (`"smtp.ca_file"`), likewise.
    pub fn unset(&self, key: &str) -> &Site {
        let mut config = self.config_table();
        let (table, leaf) = key.rsplit_once('.').expect("a dotted key");
        config[table].as_table_mut().expect("a table").remove(leaf);
        self.write_config_table(&config)
    }

    /// `feeds.toml`, parsed.
    pub fn config_table(&self) -> toml::Table {
        self.read("feeds.toml").parse().expect("feeds.toml parses")
    }

    pub fn write_config_table(&self, config: &toml::Table) -> &Site {
        let text = toml::to_string(config).expect("the config serializes");
        self.write("feeds.toml", text)
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
        let text: String = records.iter().map(|r| format!("{r}\n")).collect();
        self.write(rel, text)
    }

    /// Every address in the site's `subscribers.toml`, as written.
    pub fn recipients(&self) -> Vec<String> {
        let parsed: toml::Table = self
            .read("subscribers.toml")
            .parse()
            .expect("subscribers parse as TOML");
        parsed["subscribers"]
            .as_array()
            .expect("[[subscribers]]")
            .iter()
            .map(|s| s["email"].as_str().expect("email").to_owned())
            .collect()
    }

    // ---- commands -----------------------------------------------------------

    /// `bulletin ARGS` in the site's folder, with the site's environment.
    pub fn cmd(&self, args: &[&str]) -> Cmd {
        let mut cmd = Cmd::in_dir(self.root()).args(args);
        for (name, value) in &self.env {
            cmd = match value {
                Some(value) => cmd.env(name, value),
                None => cmd.env_remove(name),
            };
        }
        cmd
    }

    /// [`Site::cmd`], run.
    pub fn run(&self, args: &[&str]) -> Run {
        self.cmd(args).run()
    }

    /// [`Site::cmd`], naming the config on the sites that do.
    fn site_cmd(&self, args: &[&str]) -> Cmd {
        let cmd = self.cmd(args);
        if self.names_config {
            cmd.config(&self.config_path())
        } else {
            cmd
        }
    }

    /// `bulletin build --now NOW`.
    pub fn build(&self) -> Run {
        self.build_at(NOW)
    }

    /// `bulletin build --now <now>`.
    pub fn build_at(&self, now: &str) -> Run {
        self.site_cmd(&["build", "--now", now]).run()
    }

    /// `bulletin check`.
    pub fn check(&self) -> Run {
        self.site_cmd(&["check"]).run()
    }

    /// `bulletin digest --send --now NOW`, not yet run.
    pub fn send_cmd(&self) -> Cmd {
        self.site_cmd(&["digest", "--send", "--now", NOW])
    }

    /// `bulletin digest --send --now NOW`.
    pub fn send(&self) -> Run {
        self.send_cmd().run()
    }

    /// `bulletin digest --dry-run OUT --now NOW`; `out` is relative to the site.
    pub fn dry_run(&self, out: &str) -> DryRun {
        self.dry_run_with(out, |cmd| cmd)
    }

    /// [`Site::dry_run`], the command changed by `change` first (its
    /// environment, more arguments).
    pub fn dry_run_with(&self, out: &str, change: impl FnOnce(Cmd) -> Cmd) -> DryRun {
        self.dry_run_of(out, change(self.dry_run_cmd(out, NOW)))
    }

    /// `bulletin digest --dry-run OUT --now <now>`.
    pub fn dry_run_at(&self, out: &str, now: &str) -> DryRun {
        self.dry_run_of(out, self.dry_run_cmd(out, now))
    }

    fn dry_run_cmd(&self, out: &str, now: &str) -> Cmd {
        self.site_cmd(&["digest", "--dry-run", out, "--now", now])
    }

    fn dry_run_of(&self, out: &str, cmd: Cmd) -> DryRun {
        DryRun {
            run: cmd.run(),
            dir: self.path(out),
        }
    }

    // ---- what a build wrote ---------------------------------------------------

    /// A generated file, relative to the output folder.
    pub fn read_out(&self, rel: &str) -> Vec<u8> {
        read(&self.out_dir().join(rel))
    }

    /// A generated file as text.
    pub fn read_out_text(&self, rel: &str) -> String {
        String::from_utf8(self.read_out(rel)).unwrap_or_else(|e| panic!("{rel} is not UTF-8: {e}"))
    }

    /// A generated RSS or Atom feed parsed with feed-rs, after checking it
    /// is strict XML 1.0.
    pub fn feed(&self, rel: &str) -> feed_rs::model::Feed {
        parse_feed(rel, &self.read_out(rel))
    }

    /// Every file under the output folder, as sorted relative paths.
    pub fn out_files(&self) -> Vec<String> {
        files_under(&self.out_dir())
    }

    /// Panics unless the output folder does not exist at all.
    #[track_caller]
    pub fn assert_nothing_written(&self) {
        let out = self.out_dir();
        assert!(
            !out.exists(),
            "the output folder {} was created: {:?}",
            out.display(),
            files_under(&out)
        );
    }

    /// [`assert_all_feeds_valid`] on the output folder.
    pub fn assert_all_feeds_valid(&self) -> usize {
        assert_all_feeds_valid(&self.out_dir())
    }
}

/// Sets `table.leaf` (`key` is `"table.leaf"`), creating the table.
pub(super) fn set_key(config: &mut toml::Table, key: &str, value: toml::Value) {
    let (table, leaf) = key.split_once('.').expect("a dotted key");
    config
        .entry(table)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap_or_else(|| panic!("{table} is a table"))
        .insert(leaf.into(), value);
}
