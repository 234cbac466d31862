//! Subscribers from CSV: the exports of listmonk and Mailchimp load as
//! they are; a status that says the address left puts it on the
//! suppression list; bad rows are located like any other input.

use crate::support::Site;

/// A listmonk subscriber export (Subscribers → Export), as it writes it.
const LISTMONK: &str = "uuid,email,name,attributes,status,created_at,updated_at
5f0b3f4e-3c2a-4a8e-9d7e-1b2c3d4e5f60,li.ming@example.com,李明,\"{\"\"city\"\": \"\"郑州\"\"}\",enabled,2024-01-02 03:04:05.123456+08:00,2024-01-02 03:04:05.123456+08:00
6a1c4e5f-4d3b-4b9f-8e8f-2c3d4e5f6a71,wang.fang@example.org,Wang Fang,{},blocklisted,2024-01-03 03:04:05+08:00,2024-02-03 03:04:05+08:00
7b2d5f6a-5e4c-4caf-9f9a-3d4e5f6a7b82,zhao.lei@example.org,,{},enabled,2024-01-04 03:04:05+08:00,2024-01-04 03:04:05+08:00
";

/// A Mailchimp audience export (the subscribed file), as it writes it.
const MAILCHIMP: &str = "\"Email Address\",\"First Name\",\"Last Name\",Address,\"Phone Number\",MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS
chen.jing@example.com,Jing,Chen,,,2,\"2024-01-02 03:04:05\",,\"2024-01-02 03:04:05\",1.2.3.4,,,,,,CN,,\"2024-01-02 03:04:05\",123456789,abc123def4,,\"\"
liu.yang@example.org,Yang,Liu,,,3,\"2024-01-02 03:04:05\",,\"2024-01-02 03:04:05\",1.2.3.4,,,,,,CN,,\"2024-01-02 03:04:05\",123456790,abc123def5,,\"\"
";

fn site_with(file: &str, text: &str) -> Site {
    let site = Site::smtp(0);
    site.write(file, text);
    site.set("digest.subscribers", file);
    site
}

#[test]
fn a_listmonk_export_loads_and_its_blocklisted_address_is_suppressed() {
    let site = site_with("subscribers.csv", LISTMONK);
    let check = site.check();
    check.assert_success();
    assert!(
        check.stdout.contains("3 subscribers (1 suppressed)"),
        "{check}"
    );
    let dry = site.dry_run("out").ok();
    assert!(dry.has_email("li.ming@example.com"));
    assert!(dry.has_email("zhao.lei@example.org"));
    assert!(!dry.has_email("wang.fang@example.org"));
    let email = dry.email("li.ming@example.com");
    assert_eq!(email.to[0].0.as_deref(), Some("李明"), "{:?}", email.to);

    // A send records the address that left, for good: it stays suppressed
    // even when the CMS later drops the row.
    let server = site.serve_sink();
    site.send().assert_success();
    assert_eq!(server.stored_count(), 2);
    let list = site.run(&["suppressions", "list"]).stdout;
    assert!(
        list.starts_with("wang.fang@example.org\tmanual\t"),
        "{list}"
    );
    assert!(list.contains("subscribers file subscribers.csv"), "{list}");
}

#[test]
fn a_mailchimp_export_loads_with_first_and_last_names() {
    let site = site_with("audience.csv", MAILCHIMP);
    site.check().assert_success();
    let dry = site.dry_run("out").ok();
    let email = dry.email("chen.jing@example.com");
    assert_eq!(
        email.to[0].0.as_deref(),
        Some("Jing Chen"),
        "{:?}",
        email.to
    );
    assert!(dry.has_email("liu.yang@example.org"));
}

#[test]
fn sections_split_on_semicolons_or_bars_and_bad_rows_are_located() {
    let site = site_with(
        "subscribers.csv",
        "email,name,sections,status\n\
         a@example.com,A,news;yushi,\n\
         b@example.com,B,news|nosuch,subscribed\n\
         not-an-address,C,,\n\
         d@example.com,D,,moved\n\
         a@example.com,A again,,\n",
    );
    let run = site.check();
    run.assert_code(1);
    let errors = run.errors();
    assert_eq!(
        errors,
        [
            "./subscribers.csv:3:1: sections: \"nosuch\" is not a section declared in the config",
            "./subscribers.csv:4:1: email: \"not-an-address\" is not an email address",
            "./subscribers.csv:5:1: status: unknown status \"moved\"; expected \"subscribed\", \"enabled\", \"unsubscribed\", \"blocklisted\", \"cleaned\" or \"bounced\"",
            "./subscribers.csv:6:1: email: \"a@example.com\" is already subscribed at ./subscribers.csv:2:1",
        ],
        "{run}"
    );
    site.dry_run("out").run.assert_code(1);

    let no_email = site_with("people.csv", "name,sections\nA,news\n");
    let run = no_email.check();
    run.assert_code(1);
    assert_eq!(
        run.errors(),
        ["./people.csv:1:1: email: the header row has no `email` (or `Email Address`) column"]
    );
}
