//! The help a newcomer reads: `--help` lists every command, each command's
//! help has an example, and the shell completions and man pages come from
//! the same definitions.

use crate::support::Cmd;

/// `bulletin ARGS`: must succeed with nothing on stderr; returns stdout.
fn stdout_of(args: &[&str]) -> String {
    let run = Cmd::new().args(args).run();
    assert!(
        run.code == Some(0) && run.stderr.is_empty(),
        "bulletin {args:?}: {:?}\n{}",
        run.code,
        run.stderr
    );
    run.stdout_utf8().to_owned()
}

const COMMANDS: [&str; 10] = [
    "build",
    "check",
    "digest",
    "unsubscribe",
    "suppressions",
    "bounces",
    "serve",
    "init",
    "completions",
    "man",
];

#[test]
fn help_lists_every_command() {
    let help = stdout_of(&["--help"]);
    let commands = help
        .split("\n\n")
        .find(|block| block.starts_with("Commands:"))
        .unwrap_or_else(|| panic!("no Commands: block in\n{help}"));
    assert_eq!(
        commands,
        "\
Commands:
  build         Write every feed (site-wide, per section, per topic) into the output folder
  check         Validate the config, every record and the templates; write nothing
  digest        Compose the email digest of what is new, and preview or send it
  unsubscribe   Put addresses on the suppression list: they get no digest again
  suppressions  Show, export, import or edit the suppression list
  bounces       Read bounces and complaints, and suppress the addresses they name
  serve         Answer unsubscribe links over HTTP: the endpoint of `digest.unsubscribe_url`
  init          Write a working starter site (config, templates, articles, subscribers) into DIR
  completions   Print a shell completion script for bulletin to stdout
  man           Print a man page (roff) to stdout: bulletin's, or one command's
  help          Print this message or the help of the given subcommand(s)"
    );
    // `-h` is the same list, and both end with the first steps.
    let short = stdout_of(&["-h"]);
    assert!(short.contains(commands), "{short}");
    for help in [&help, &short] {
        assert!(
            help.contains(
                "\
Get started:
  bulletin init mysite && cd mysite    # a working starter site
  bulletin check                       # validate config, articles, subscribers, templates
  bulletin build                       # write public/feeds/...
  bulletin digest --dry-run preview    # the digest emails, as files to look at
"
            ),
            "{help}"
        );
    }
}

#[test]
fn every_command_has_an_example_in_short_and_long_help() {
    for command in COMMANDS {
        for flag in ["-h", "--help"] {
            let help = stdout_of(&[command, flag]);
            assert!(
                help.contains("\nExample:\n  bulletin ")
                    || help.contains("\nExamples:\n  bulletin "),
                "bulletin {command} {flag} has no example:\n{help}"
            );
        }
    }
    assert!(stdout_of(&["help", "digest"]).contains("Examples:\n  bulletin digest --dry-run"));
}

#[test]
fn completions_are_generated_for_every_shell() {
    let bash = stdout_of(&["completions", "bash"]);
    assert!(bash.starts_with("_bulletin() {\n"), "{bash}");
    assert!(
        bash.contains("bulletin") && bash.contains("digest"),
        "{bash}"
    );
    for option in ["--dry-run", "--send", "--config", "--now"] {
        assert!(bash.contains(option), "bash completion lacks {option}");
    }
    let zsh = stdout_of(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef bulletin\n"), "{zsh}");
    for shell in ["fish", "powershell", "elvish"] {
        let script = stdout_of(&["completions", shell]);
        assert!(
            script.contains("bulletin") && script.contains("digest"),
            "{shell}: {script}"
        );
    }
    // An unknown shell is a usage error naming the ones there are.
    let output = Cmd::new().args(["completions", "tcsh"]).run();
    assert_eq!(output.code, Some(1));
    assert!(
        output
            .stderr
            .contains("[possible values: bash, elvish, fish, powershell, zsh]")
    );
}

#[test]
fn man_writes_roff_pages() {
    let version = env!("CARGO_PKG_VERSION");
    let page = stdout_of(&["man"]);
    assert!(
        page.starts_with(&format!(
            ".TH bulletin 1  \"bulletin {version}\" \n.ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.SH NAME\n\
             bulletin \\- RSS, Atom and JSON feeds and an email digest for news sites\n.SH SYNOPSIS\n"
        )),
        "{page}"
    );
    for section in [
        "OPTIONS",
        "\"GLOBAL OPTIONS\"",
        "SUBCOMMANDS",
        "EXAMPLES",
        "\"EXIT STATUS\"",
        "ENVIRONMENT",
    ] {
        assert!(
            page.contains(&format!("\n.SH {section}\n")),
            "no {section} in\n{page}"
        );
    }
    assert!(page.contains("bulletin\\-digest(1)"), "{page}");
    for command in COMMANDS {
        let page = stdout_of(&["man", command]);
        let title = format!(".TH bulletin-{command} 1  \"bulletin {version}\" \n");
        assert!(page.starts_with(&title), "{page}");
        assert!(page.contains("\n.SH EXAMPLES\n"), "{page}");
    }
}
