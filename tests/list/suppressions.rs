//! `bulletin suppressions`: export, import, remove, all idempotent.

use crate::support::Site;

#[test]
fn export_and_import_round_trip_in_both_formats_and_repeat_changes_nothing() {
    let site = Site::smtp(2);
    site.run(&["unsubscribe", "a@example.com", "b@example.com"])
        .assert_success();
    let csv = site.run(&["suppressions", "export"]).stdout;
    assert!(
        csv.starts_with("address,reason,created_at,source\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let jsonl = site
        .run(&["suppressions", "export", "--format", "jsonl"])
        .stdout;
    assert_eq!(jsonl.lines().count(), 2);
    for line in jsonl.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(row["reason"], "unsubscribed");
    }

    for (file, text) in [("list.csv", &csv), ("list.jsonl", &jsonl)] {
        let other = Site::smtp(2);
        other.write(file, text);
        let run = other.run(&["suppressions", "import", file]);
        run.assert_success();
        assert!(run.stdout.contains("2 added"), "{run}");
        assert!(
            other
                .run(&["suppressions", "import", file])
                .stdout
                .contains("0 added")
        );
        assert_eq!(other.run(&["suppressions", "export"]).stdout, csv, "{file}");
    }
}

#[test]
fn other_tools_columns_import_and_a_bad_row_imports_nothing() {
    let site = Site::smtp(3);
    site.write(
        "mailchimp.csv",
        "\"Email Address\",\"First Name\",\"Last Name\",MEMBER_RATING\n\
         reader0000@example.com,Li,Ming,2\n",
    );
    site.run(&["suppressions", "import", "mailchimp.csv"])
        .assert_success();
    let list = site.run(&["suppressions", "list"]).stdout;
    assert!(
        list.starts_with("reader0000@example.com\tmanual\t"),
        "{list}"
    );
    assert!(!site.dry_run("out").ok().has_email("reader0000@example.com"));

    site.write(
        "bad.csv",
        "address,reason\nreader0001@example.com,bounced\nnot-an-address,manual\nreader0002@example.com,moved away\n",
    );
    let run = site.run(&["suppressions", "import", "bad.csv"]);
    run.assert_code(1);
    let errors = run.errors();
    assert_eq!(errors.len(), 2, "{run}");
    assert!(
        errors[0].starts_with("bad.csv:3:1: address: "),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("bad.csv:4:1: reason: unknown reason \"moved away\""),
        "{errors:?}"
    );
    assert_eq!(
        site.run(&["suppressions", "list"]).stdout,
        list,
        "nothing imported"
    );
}

#[test]
fn remove_puts_an_address_back_on_the_digest() {
    let site = Site::smtp(2);
    site.run(&["unsubscribe", "reader0001@example.com"])
        .assert_success();
    assert!(!site.dry_run("one").ok().has_email("reader0001@example.com"));
    let run = site.run(&["suppressions", "remove", "READER0001@example.com"]);
    run.assert_success();
    assert!(run.stdout.contains("removed 1 of 1"), "{run}");
    assert!(
        site.run(&["suppressions", "remove", "reader0001@example.com"])
            .stdout
            .contains("removed 0 of 1")
    );
    assert!(site.dry_run("two").ok().has_email("reader0001@example.com"));
}
