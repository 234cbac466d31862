//! Several relays (`[[smtp]]`): messages spread by weight, a relay that is
//! down from the start or goes down mid-run hands its share to the others,
//! never a second copy; per-relay counts in the summary; config mistakes
//! named by file, line and field.

use crate::support::{Pipelining, Site, SmtpServer, Stored, assert_one_each, copies, free_port};

both_ways!(
    a_dead_relay_and_one_going_down_mid_run_leave_the_rest_to_the_healthy_one,
    a_relay_refusing_the_login_hands_everything_to_the_other,
    a_message_that_may_have_arrived_is_not_sent_through_another_relay,
);

/// The number in "relay NAME: N sent" of the run's summary.
fn sent_by(output: &str, name: &str) -> usize {
    let prefix = format!("relay {name}: ");
    let line = output
        .lines()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no line for relay {name} in:\n{output}"));
    line.split(' ').next().unwrap().parse().unwrap()
}

fn a_dead_relay_and_one_going_down_mid_run_leave_the_rest_to_the_healthy_one(
    pipelining: Pipelining,
) {
    let site = Site::smtp(40);
    let closed = free_port(); // refuses every connection
    let flaky = site.serve_with(pipelining, &["--down-after", "6"]);
    let healthy = site.serve_sink();
    site.relays(&[
        ("closed", closed, 1),
        ("flaky", flaky.port, 1),
        ("healthy", healthy.port, 1),
    ]);
    let run = site.send();
    run.assert_success();
    let output = format!("{}\n{}", run.stdout, run.stderr);
    println!("{output}");

    // Every recipient exactly once, across both servers that took mail.
    let mut stored: Vec<Stored> = flaky.stored();
    stored.extend(healthy.stored());
    assert_one_each(&stored, &site.recipients());
    assert!(
        flaky.log_count("421 down") > 0,
        "the flaky relay never went down:\n{}",
        flaky.log()
    );
    // Up to one more per connection (4) whose content was on its way when
    // the sixth was stored.
    assert!(
        (1..=9).contains(&flaky.stored_count()),
        "{} stored before going down",
        flaky.stored_count()
    );
    site.state().assert_all(&site.recipients(), "sent");

    // The summary counts each relay's messages, and says which were down.
    assert_eq!(sent_by(&output, "closed"), 0);
    assert_eq!(sent_by(&output, "flaky"), flaky.stored_count());
    assert_eq!(sent_by(&output, "healthy"), healthy.stored_count());
    assert_eq!(flaky.stored_count() + healthy.stored_count(), 40);
    for name in ["closed", "flaky"] {
        assert!(
            output
                .lines()
                .any(|l| l.contains(&format!("relay {name}:")) && l.contains("down")),
            "relay {name} is not said to be down:\n{output}"
        );
    }
    let healthy_line = output
        .lines()
        .find(|l| l.contains("relay healthy:"))
        .unwrap();
    assert!(!healthy_line.contains("down"), "{healthy_line}");
}

fn a_relay_refusing_the_login_hands_everything_to_the_other(pipelining: Pipelining) {
    let site = Site::smtp(12);
    let locked = site.serve_with(
        pipelining,
        &["--auth-user", "bulletin", "--auth-password", "right"],
    );
    let open = site.serve_sink();
    site.relays(&[("locked", locked.port, 5), ("open", open.port, 1)]);
    each_relay(&site, |i, table| {
        if i == 0 {
            table.insert("username".into(), "bulletin".into());
        }
    });
    let run = site
        .send_cmd()
        .env("BULLETIN_SMTP_PASSWORD_LOCKED", "wrong")
        .run();
    run.assert_success();
    assert!(locked.log_count(": refused") > 0, "{}", locked.log());
    assert_eq!(locked.stored_count(), 0);
    assert_one_each(&open.stored(), &site.recipients());
    assert_eq!(sent_by(&run.stdout, "open"), 12);
    assert!(
        !run.stdout.contains("wrong"),
        "the password was shown:\n{run}"
    );
}

fn a_message_that_may_have_arrived_is_not_sent_through_another_relay(pipelining: Pipelining) {
    let site = Site::smtp(10);
    // The 2nd message it gets: stored, then the connection dropped before
    // the 250 (the client cannot know it arrived).
    let unsure = site.serve_with(pipelining, &["--drop-after-store", "2"]);
    let sure = site.serve_sink();
    site.relays(&[("unsure", unsure.port, 1), ("sure", sure.port, 1)]);
    let first = site.send();
    first.assert_code(2);
    let dropped = dropped_after_store(&unsure);
    assert_eq!(site.state().count("pending"), 1, "{first}");
    assert_eq!(
        site.state().statuses().get(&dropped).map(String::as_str),
        Some("pending")
    );
    assert!(
        !sure.stored().iter().any(|s| s.rcpt == dropped),
        "{dropped} was sent through the other relay in the same run"
    );
    // The next run sends it again (same Message-ID): at most one duplicate.
    site.send().assert_success();
    let mut stored = unsure.stored();
    stored.extend(sure.stored());
    let map = copies(&stored);
    for r in site.recipients() {
        let n = map.get(&r).map_or(0, Vec::len);
        let most = if r == dropped { 2 } else { 1 };
        assert!((1..=most).contains(&n), "{r}: {n} copies");
    }
    let ids: Vec<&str> = map[&dropped]
        .iter()
        .map(|s| s.message_id.as_str())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
}

#[test]
fn two_healthy_relays_share_the_messages_by_weight() {
    let site = Site::smtp(80);
    let heavy = site.serve_sink();
    let light = site.serve_sink();
    site.relays(&[("heavy", heavy.port, 3), ("light", light.port, 1)]);
    let run = site.send();
    run.assert_success();
    let mut stored = heavy.stored();
    stored.extend(light.stored());
    assert_one_each(&stored, &site.recipients());
    let (h, l) = (heavy.stored_count(), light.stored_count());
    println!("weights 3:1 over 80 messages: {h} and {l}");
    // Smooth weighted round-robin gives 60 and 20; a little slack for
    // retries should a connection hiccup.
    assert!(
        (56..=64).contains(&h) && (16..=24).contains(&l),
        "{h} : {l}"
    );
    assert_eq!(sent_by(&run.stdout, "heavy"), h);
    assert_eq!(sent_by(&run.stdout, "light"), l);
    assert!(
        copies(&heavy.stored())
            .keys()
            .all(|r| !copies(&light.stored()).contains_key(r))
    );
}

#[test]
fn every_relay_down_leaves_everything_pending_and_exits_2() {
    let site = Site::smtp(5);
    site.relays(&[("a", free_port(), 1), ("b", free_port(), 2)]);
    each_relay(&site, |_, table| {
        table.insert("retries".into(), 1.into());
    });
    let run = site.send();
    run.assert_code(2);
    assert_eq!(site.state().count("pending"), 5, "{run}");
    assert_eq!(site.state().count("sent"), 0);
}

/// The site's `[[smtp]]` tables replaced by `tables` (TOML text); returns
/// the 1-based line of `needle` in the new config.
fn with_tables(site: &Site, tables: &str, needle: &str) -> usize {
    let mut config = site.config_table();
    config.remove("smtp");
    site.write_config_table(&config);
    site.append_config(tables);
    site.read("feeds.toml")
        .lines()
        .position(|l| l.contains(needle))
        .expect("the needle is in the config")
        + 1
}

#[test]
fn bad_relay_tables_are_named_by_line_and_field() {
    let site = Site::smtp(2);
    let tables = r#"
[[smtp]]
name = "eu"
from = "映象网 <digest@news.example.cn>"
port = 2525

[[smtp]]
name = "EU"
port = 2526
weight = 0

[[smtp]]
from = "other@news.example.cn"
port = 2527
password_env = "2BAD"
"#;
    let weight = with_tables(&site, tables, "weight = 0");
    let run = site.check();
    run.assert_code(1);
    let name = weight - 2;
    site.check()
        .assert_error_line(&format!(
            "feeds.toml:{name}:1: smtp[1].name: \"EU\" is also the name of smtp[0] (names are \
             compared ignoring case, '-' as '_', as in their password variables)"
        ))
        .assert_error_line(&format!(
            "feeds.toml:{weight}:1: smtp[1].weight: must be at least 1 (to send nothing \
             through a relay, leave its table out)"
        ));
    let errors = run.errors().join("\n");
    for field in ["smtp[2].name", "smtp[2].from", "smtp[2].password_env"] {
        assert!(errors.contains(field), "no problem with {field}:\n{errors}");
    }
}

#[test]
fn check_and_send_name_each_relays_missing_password() {
    let site = Site::smtp(2);
    let sink = site.serve_sink();
    site.relays(&[("eu-west", sink.port, 1), ("us", sink.port, 1)]);
    each_relay(&site, |i, table| {
        table.insert("username".into(), "bulletin".into());
        if i == 1 {
            table.insert("password_env".into(), "US_RELAY_PASSWORD".into());
        }
    });
    for run in [site.check(), site.send()] {
        run.assert_code(1);
        let errors = run.errors().join("\n");
        assert!(
            errors.contains(
                "smtp[0].username: is set, but the environment variable \
                 BULLETIN_SMTP_PASSWORD_EU_WEST (the SMTP password of relay \"eu-west\") is not"
            ),
            "{run}"
        );
        assert!(errors.contains("US_RELAY_PASSWORD"), "{run}");
    }
    assert_eq!(sink.stored_count(), 0);
    site.cmd(&["check"])
        .config(&site.config_path())
        .env("BULLETIN_SMTP_PASSWORD_EU_WEST", "a")
        .env("US_RELAY_PASSWORD", "b")
        .run()
        .assert_success();
}

/// Changes each `[[smtp]]` table of the site's config (index, table).
fn each_relay(site: &Site, mut change: impl FnMut(usize, &mut toml::Table)) {
    let mut config = site.config_table();
    let tables = config["smtp"].as_array_mut().expect("[[smtp]] tables");
    for (i, table) in tables.iter_mut().enumerate() {
        change(i, table.as_table_mut().expect("a table"));
    }
    site.write_config_table(&config);
}

/// The recipient of the message `--drop-after-store` stored and then
/// dropped the connection on, from the server's log (with several
/// connections, the order messages are stored in is not the order they
/// were numbered in).
fn dropped_after_store(server: &SmtpServer) -> String {
    let log = server.log();
    let message = log
        .lines()
        .find_map(|l| {
            l.split(": message ")
                .nth(1)?
                .strip_suffix(": stored, dropping before 250")
        })
        .unwrap_or_else(|| panic!("the fault did not fire:\n{log}"))
        .to_owned();
    log.lines()
        .find_map(|l| {
            let rest = l.split(&format!(": message {message} stored as ")).nth(1)?;
            let rcpt = rest.split(" for ['").nth(1)?.strip_suffix("']")?;
            Some(rcpt.to_owned())
        })
        .unwrap_or_else(|| panic!("message {message} was not stored:\n{log}"))
}
