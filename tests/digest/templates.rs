//! Template mistakes are caught by `bulletin check` (and stop `digest`)
//! with the template's file and line; the built-in templates are the ones
//! in `templates/` (the example site names the Chinese pair).

use crate::support::{Run, Site};

const TEXT: &str = "templates/digest.zh.txt.hbs";
const HTML: &str = "templates/digest.zh.html.hbs";

/// The 1-based number of the first line of `file` in `site` containing `needle`.
fn line_of(site: &Site, file: &str, needle: &str) -> usize {
    site.read(file)
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {file}"))
        + 1
}

/// The `error:` lines of a run that point into `file`, as (line, rest).
fn errors_in(run: &Run, file: &str) -> Vec<(Option<usize>, String)> {
    let name = file.rsplit('/').next().unwrap();
    run.stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .filter_map(|l| {
            let at = l.find(&format!("{name}:"))?;
            let rest = &l[at + name.len() + 1..];
            let line = rest
                .split(':')
                .next()
                .and_then(|n| n.trim().parse::<usize>().ok());
            Some((line, rest.to_owned()))
        })
        .collect()
}

/// `check` fails naming `file` and `line`, and so does `digest`, which writes nothing.
#[track_caller]
fn assert_template_error(site: &Site, file: &str, line: Option<usize>, words: &[&str]) {
    for run in [site.check(), site.dry_run("out").run] {
        run.assert_code(1).assert_stderr_has(words);
        let errors = errors_in(&run, file);
        assert!(!errors.is_empty(), "no error names {file}:\n{}", run.stderr);
        match line {
            Some(line) => assert!(
                errors.iter().any(|(l, _)| *l == Some(line)),
                "no error at {file}:{line}:\n{}",
                run.stderr
            ),
            None => assert!(
                errors.iter().all(|(l, _)| l.is_some()),
                "an error without a line:\n{}",
                run.stderr
            ),
        }
    }
    assert!(!site.path("out").exists(), "digest wrote files");
}

#[test]
fn the_example_site_checks_clean() {
    let site = Site::example();
    let run = site.check();
    run.assert_success();
    assert!(run.stdout.contains("no problems"), "{}", run.stdout);
}

#[test]
fn a_misspelled_variable_is_reported_with_file_and_line() {
    let site = Site::example();
    site.edit(TEXT, |t| {
        let mut lines: Vec<&str> = t.lines().collect();
        lines.insert(2, "{{sectons}}");
        lines.join("\n") + "\n"
    });
    assert_template_error(&site, TEXT, Some(3), &["sectons"]);
}

#[test]
fn a_misspelled_variable_inside_each_is_reported_with_file_and_line() {
    let site = Site::example();
    site.edit(HTML, |t| {
        t.replacen(
            "font-weight:bold;\">{{title}}</a>",
            "font-weight:bold;\">{{artcle.title}}</a>",
            1,
        )
    });
    let line = line_of(&site, HTML, "artcle.title");
    assert!(
        site.read(HTML)
            .lines()
            .take(line)
            .any(|l| l.contains("{{#each items}}")),
        "the edit is inside {{{{#each items}}}}"
    );
    assert_template_error(&site, HTML, Some(line), &["artcle"]);
}

#[test]
fn a_misspelled_variable_in_a_related_read_is_reported() {
    let site = Site::example();
    site.edit(TEXT, |t| t.replace("  · {{title}}", "  · {{titel}}"));
    let line = line_of(&site, TEXT, "{{titel}}");
    assert_template_error(&site, TEXT, Some(line), &["titel"]);
}

#[test]
fn an_unclosed_block_is_a_syntax_error_with_a_line() {
    let site = Site::example();
    site.edit(TEXT, |t| {
        let mut lines: Vec<&str> = t.lines().collect();
        lines.insert(2, "{{#each sections}}");
        lines.join("\n") + "\n"
    });
    assert_template_error(&site, TEXT, None, &["syntax"]);
}

#[test]
fn a_stray_closing_tag_in_the_html_template_is_a_syntax_error_with_a_line() {
    let site = Site::example();
    site.edit(HTML, |t| t.replacen("</head>", "</head>\n{{/if}}", 1));
    assert_template_error(&site, HTML, None, &["syntax"]);
}

#[test]
fn a_misspelled_variable_in_the_subject_names_the_setting() {
    let site = Site::example();
    site.edit("feeds.toml", |c| {
        c.replace("subject = \"{{site.title}}", "subject = \"{{site.titel}}")
    });
    for run in [site.check(), site.dry_run("out").run] {
        run.assert_code(1)
            .assert_stderr_has(&["feeds.toml", "digest.subject", "site.titel"]);
    }
}

#[test]
fn a_missing_template_file_is_reported() {
    let site = Site::example();
    std::fs::remove_file(site.path(HTML)).unwrap();
    site.check()
        .assert_code(1)
        .assert_stderr_has(&["digest.zh.html.hbs"]);
}

#[test]
fn the_built_in_templates_render_like_the_repository_templates() {
    let site = Site::example();
    let with_files = site.dry_run("with-files").ok().files();
    site.edit("feeds.toml", |c| {
        c.replace(&format!("html = \"{HTML}\"\n"), "")
            .replace(&format!("text = \"{TEXT}\"\n"), "")
    });
    // Without the folder too: the built-in templates need no file.
    std::fs::remove_dir_all(site.path("templates")).unwrap();
    site.check().assert_success();
    let built_in = site.dry_run("built-in").ok().files();
    assert_eq!(
        with_files.keys().collect::<Vec<_>>(),
        built_in.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &with_files {
        assert!(
            bytes == &built_in[name],
            "{name}: the built-in templates render differently"
        );
    }
}

/// `check` renders the templates once, for a sample recipient who has a
/// name; a misspelled variable in the branch for recipients without one
/// passes `check` and then stops the digest of every recipient.
#[test]
fn check_catches_a_misspelled_variable_in_the_nameless_greeting() {
    let site = Site::example();
    site.edit(TEXT, |t| {
        t.replace(
            "{{else}}您好：{{/if}}",
            "{{else}}{{recipent.email}} 您好：{{/if}}",
        )
    });
    // A subscriber without a name exercises that branch.
    let mut subscribers = site.read("examples/subscribers.toml");
    subscribers.push_str("\n[[subscribers]]\nemail = \"noname@example.com\"\n");
    site.write("examples/subscribers.toml", &subscribers);

    let digest = site.dry_run("out").run;
    digest.assert_code(1).assert_stderr_has(&["recipent.email"]);

    let check = site.check();
    assert_eq!(
        check.code,
        Some(1),
        "`check` passed a template that `digest` then refused:\n--- check stdout\n{}\n--- digest stderr\n{}",
        check.stdout,
        digest.stderr
    );
    check.assert_stderr_has(&["digest.zh.txt.hbs", "recipent.email"]);
}

/// Recipients of the same articles share one rendering with their address,
/// name and unsubscribe link filled in (`digest::shape`): every message is
/// byte for byte what a rendering of its own gives — escaped where the
/// template escapes, the text part wrapped after the name is in.
#[test]
fn emails_filled_in_from_a_shared_rendering_are_the_ones_rendered_alone() {
    let site = Site::example().with_secret();
    let long = "Alexandria Konstantinopoulou-Featherstonehaugh the Third of Her Name";
    let mut subscribers = String::new();
    for (i, name) in [
        Some("<Li & \"Wang\">"),
        Some(""),
        None,
        Some(long),
        Some("欧阳 娜娜"),
        Some("a'b`c=d"),
        Some("李明华"),
        Some("{{recipient.email}}"),
    ]
    .into_iter()
    .enumerate()
    {
        // Two sections' worth and everything: two contents, each shared.
        for sections in ["", "sections = [\"news\"]\n"] {
            subscribers.push_str(&format!(
                "[[subscribers]]\nemail = \"r{i}+{}&x@example.com\"\n",
                sections.len()
            ));
            if let Some(name) = name {
                subscribers.push_str(&format!("name = {}\n", toml::Value::from(name)));
            }
            subscribers.push_str(sections);
            subscribers.push('\n');
        }
    }
    site.write("examples/subscribers.toml", &subscribers);
    let verbose = |cmd: crate::support::Cmd| cmd.arg("-v");
    let shared = site.dry_run_with("shared", verbose);
    shared.run.assert_success();
    let said = format!("{}{}", shared.run.stdout, shared.run.stderr);
    let filled: usize = said
        .split("composing: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("-v says nothing of shared renderings:\n{said}"));
    // Four contents (a name or none — an empty name is none — × two
    // section sets) for 16 emails: each made once, then filled in (an email
    // composed while its shape is being made on another thread is rendered
    // on its own).
    assert!((1..=16 - 4).contains(&filled), "{said}");

    // The same templates, made unshareable by a condition on the name that
    // renders nothing: every email rendered on its own.
    for file in [HTML, TEXT] {
        site.edit(file, |t| {
            format!("{t}{{{{#if (eq recipient.name \"nobody\")}}}}{{{{/if}}}}")
        });
    }
    let alone = site.dry_run_with("alone", verbose);
    alone.run.assert_success();
    assert!(!format!("{}{}", alone.run.stdout, alone.run.stderr).contains("composing: "));

    let (shared, alone) = (shared.ok().files(), alone.ok().files());
    assert_eq!(
        shared.keys().collect::<Vec<_>>(),
        alone.keys().collect::<Vec<_>>()
    );
    let emails = shared.keys().filter(|n| n.ends_with(".eml")).count();
    assert_eq!(emails, 16);
    for (name, bytes) in &shared {
        assert!(
            bytes == &alone[name],
            "{name} differs:\n--- shared\n{}\n--- alone\n{}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&alone[name])
        );
    }
}
