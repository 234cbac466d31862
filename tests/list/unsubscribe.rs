//! `bulletin unsubscribe`: the next dry run and send skip the address.

use crate::support::Site;

/// The token of `address`'s unsubscribe link in a dry run of `site`.
fn token_of(site: &Site, address: &str) -> String {
    let dry = site.dry_run("tokens").ok();
    let url = dry.email(address).unsubscribe_url();
    url.split("token=")
        .nth(1)
        .expect("a token in the URL")
        .to_owned()
}

#[test]
fn an_unsubscribed_address_gets_no_dry_run_email_and_no_message() {
    let site = Site::smtp(3);
    let before = site.dry_run("before").ok();
    assert!(before.has_email("reader0001@example.com"));

    site.run(&["unsubscribe", "Reader0001@Example.com"])
        .assert_success();
    let after = site.dry_run("after").ok();
    assert!(!after.has_email("reader0001@example.com"));
    assert!(after.has_email("reader0000@example.com"));
    assert!(
        after.run.stdout.contains("1 suppressed"),
        "{}",
        after.run.stdout
    );

    let server = site.serve_sink();
    site.send().assert_success();
    let recipients: Vec<String> = server.stored().into_iter().map(|s| s.rcpt).collect();
    assert_eq!(recipients.len(), 2, "{recipients:?}");
    assert!(!recipients.iter().any(|r| r == "reader0001@example.com"));
}

#[test]
fn a_token_from_the_message_unsubscribes_its_recipient_and_a_forged_one_nothing() {
    let site = Site::smtp(3);
    let token = token_of(&site, "reader0002@example.com");

    // A forged or truncated token is refused, and changes nothing.
    let mut forged = token.clone().into_bytes();
    forged[5] = if forged[5] == b'a' { b'b' } else { b'a' };
    for bad in [
        String::from_utf8(forged).unwrap(),
        token[..token.len() - 3].to_owned(),
        "0123456789abcdef0123456789abcdef".to_owned(),
        String::new(),
    ] {
        site.run(&["unsubscribe", "--token", &bad]).assert_code(1);
    }
    assert_eq!(site.run(&["suppressions", "list"]).stdout, "");

    let run = site.run(&["unsubscribe", "--token", &token]);
    run.assert_success();
    assert!(
        run.stdout.contains("unsubscribed reader0002@example.com"),
        "{run}"
    );
    // Again: idempotent.
    let again = site.run(&["unsubscribe", "--token", &token]);
    again.assert_success();
    assert!(again.stdout.contains("already"), "{again}");

    let list = site.run(&["suppressions", "list"]).stdout;
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(
        list.starts_with("reader0002@example.com\tunsubscribed\t"),
        "{list}"
    );
    assert!(
        !site
            .dry_run("after")
            .ok()
            .has_email("reader0002@example.com")
    );
}

#[test]
fn tokens_made_with_the_previous_secret_work_during_a_rotation() {
    let site = Site::smtp(2);
    let token = token_of(&site, "reader0000@example.com");
    let rotated =
        |cmd: crate::support::Cmd| cmd.env("BULLETIN_UNSUBSCRIBE_SECRET", "the-new-secret");
    rotated(site.cmd(&["unsubscribe", "--token", &token]))
        .run()
        .assert_code(1);
    rotated(site.cmd(&["unsubscribe", "--token", &token]))
        .env("BULLETIN_UNSUBSCRIBE_SECRET_PREVIOUS", "test-secret")
        .run()
        .assert_success();
    assert!(
        !site
            .dry_run("after")
            .ok()
            .has_email("reader0000@example.com")
    );
}

#[test]
fn a_token_needs_the_secret_and_a_bad_address_changes_nothing() {
    let site = Site::smtp(2);
    let run = site
        .cmd(&["unsubscribe", "--token", "abc"])
        .env_remove("BULLETIN_UNSUBSCRIBE_SECRET")
        .run();
    run.assert_code(1);
    assert!(run.stderr.contains("BULLETIN_UNSUBSCRIBE_SECRET"), "{run}");
    site.run(&["unsubscribe", "reader0000@example.com", "not an address"])
        .assert_code(1);
    assert_eq!(site.run(&["suppressions", "list"]).stdout, "");
}
