//! `bulletin init DIR`: a working starter site.
//!
//! Writes a commented config, the default digest templates, one article per
//! input format (dated an hour before now, so the first `build` and `digest
//! --dry-run` show it) and a subscriber list. Never overwrites a file.

use std::path::Path;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

use crate::Failure;
use crate::digest::render::Language;
use crate::report::Verbosity;

pub fn run(dir: &Path, now: DateTime<Utc>, say: Verbosity) -> Result<(), Failure> {
    // Distinct times an hour or more back, so every feed entry has its own
    // `updated` and the first digest has something new.
    let at = |hours: i64| {
        (now - chrono::Duration::hours(hours))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let naive = (now - chrono::Duration::hours(3))
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let fill = |text: &str| {
        text.replace("{{PUBLISHED}}", &at(1))
            .replace("{{PUBLISHED_RFC3339}}", &at(2))
            .replace("{{PUBLISHED_NAIVE}}", &naive)
    };
    // The starter site is English (`language = "en"`): its templates are
    // the English built-in ones, written out to be edited.
    let templates = Language::En.builtin();
    let files: [(&str, String); 7] = [
        ("feeds.toml", include_str!("starter/feeds.toml").to_owned()),
        ("templates/digest.html.hbs", templates.html.to_owned()),
        ("templates/digest.txt.hbs", templates.text.to_owned()),
        (
            "articles/articles.toml",
            fill(include_str!("starter/articles.toml")),
        ),
        (
            "articles/articles.json",
            fill(include_str!("starter/articles.json")),
        ),
        (
            "articles/articles.jsonl",
            fill(include_str!("starter/articles.jsonl")),
        ),
        (
            "subscribers.toml",
            include_str!("starter/subscribers.toml").to_owned(),
        ),
    ];
    let existing: Vec<String> = files
        .iter()
        .map(|(p, _)| dir.join(p))
        // A dangling symlink counts: writing would follow it.
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        return Err(Failure::Error(anyhow::anyhow!(
            "refusing to overwrite existing files: {}; nothing was written",
            existing.join(", ")
        )));
    }
    for (path, _) in &files {
        crate::output::no_symlink_between(dir, Path::new(path)).map_err(Failure::Error)?;
    }
    for (path, text) in &files {
        let target = dir.join(path);
        let folder = target.parent().expect("joined path");
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        write_new(&target, text.as_bytes())?;
        say.detail(format!("created {}", target.display()));
    }
    say.summary(format!(
        "created a starter site in {d}\nnext: cd {d} && bulletin check && bulletin build\n      export BULLETIN_UNSUBSCRIBE_SECRET=\"$(openssl rand -hex 32)\"   # the key of unsubscribe links; keep it\n      bulletin digest --dry-run preview",
        d = dir.display()
    ));
    Ok(())
}

/// Creates `path`, failing if it appeared in the meantime.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("refusing to overwrite {}", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}
