//! `digest --shard K/N`: the N shards, each run on its own state, send every
//! recipient exactly one copy; a dry run writes only its shard's messages;
//! the partition is the documented function (checked here against Python's
//! hashlib); a bad K/N is a usage error.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::support::{Site, assert_one_each};

/// Each address's shard of `n` by the function documented on
/// `model::Shard`, computed by Python (an independent implementation).
fn python_shards(addresses: &[String], n: u64) -> BTreeMap<String, u64> {
    let script = format!(
        "import hashlib, sys\n\
         for a in sys.argv[1:]:\n    \
             print(a, int.from_bytes(hashlib.sha256(a.lower().encode()).digest()[:8], 'big') % {n} + 1)"
    );
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(addresses)
        .output()
        .expect("run python3");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (a, k) = l.rsplit_once(' ').unwrap();
            (a.to_owned(), k.parse().unwrap())
        })
        .collect()
}

/// "shard K/N: M of T subscribers" in a run's output: M and T.
fn shard_line(stdout: &str, shard: &str) -> (usize, usize) {
    let rest = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("shard {shard}: ")))
        .unwrap_or_else(|| panic!("no shard line in:\n{stdout}"));
    let words: Vec<&str> = rest.split(' ').collect();
    (words[0].parse().unwrap(), words[2].parse().unwrap())
}

#[test]
fn n_shards_on_their_own_state_send_every_recipient_exactly_once() {
    let site = Site::smtp(45);
    let sink = site.serve_sink();
    let recipients = site.recipients();
    let expected = python_shards(&recipients, 3);
    let mut counted = 0;
    for k in 1..=3 {
        let shard = format!("{k}/3");
        site.set("digest.state", format!("state/shard-{k}.state"));
        let before: BTreeSet<String> = sink.stored().into_iter().map(|s| s.rcpt).collect();
        let run = site.send_cmd().args(["--shard", &shard]).run();
        run.assert_success();
        let (mine, all) = shard_line(&run.stdout, &shard);
        assert_eq!(all, 45);
        counted += mine;
        let sent: BTreeSet<String> = sink
            .stored()
            .into_iter()
            .map(|s| s.rcpt)
            .filter(|r| !before.contains(r))
            .collect();
        let wanted: BTreeSet<String> = expected
            .iter()
            .filter(|(_, shard)| **shard == k)
            .map(|(a, _)| a.clone())
            .collect();
        assert_eq!(
            sent, wanted,
            "shard {shard} sent another set than the function says"
        );
        assert_eq!(mine, wanted.len());
        // Run again: this shard's state has them all; nothing more.
        site.send_cmd()
            .args(["--shard", &shard])
            .run()
            .assert_success();
    }
    assert_eq!(counted, 45);
    assert_one_each(&sink.stored(), &recipients);
}

#[test]
fn a_dry_run_of_a_shard_writes_only_its_recipients() {
    let site = Site::smtp(20);
    let everyone: BTreeSet<String> = site.dry_run("all").ok().emls().into_keys().collect();
    let mut union = BTreeSet::new();
    for k in 1..=4 {
        let shard = format!("{k}/4");
        let out = format!("shard-{k}");
        let dry = site
            .dry_run_with(&out, |cmd| cmd.args(["--shard", &shard]))
            .ok();
        let emls: BTreeSet<String> = dry.emls().into_keys().collect();
        assert_eq!(shard_line(&dry.run.stdout, &shard).0, emls.len());
        assert!(union.is_disjoint(&emls), "shard {shard} overlaps another");
        union.extend(emls);
    }
    assert_eq!(union, everyone);
}

#[test]
fn a_bad_shard_is_a_usage_error_and_sends_nothing() {
    let site = Site::smtp(3);
    let sink = site.serve_sink();
    for bad in ["0/3", "4/3", "3", "a/b", "1/0", "2/1", "1/2/3", ""] {
        let run = site.send_cmd().args(["--shard", bad]).run();
        run.assert_code(1);
        assert!(
            run.stderr.contains("--shard") && run.stderr.contains("K/N"),
            "{bad:?}: {run}"
        );
    }
    assert_eq!(sink.stored_count(), 0);
    assert!(!site.path("state/digest.state").exists());
}

#[test]
fn shards_run_one_after_the_other_on_one_state_send_everyone_once() {
    let site = Site::smtp(24);
    let sink = site.serve_sink();
    for k in 1..=3 {
        site.send_cmd()
            .args(["--shard", &format!("{k}/3")])
            .run()
            .assert_success();
    }
    assert_one_each(&sink.stored(), &site.recipients());
    site.state().assert_all(&site.recipients(), "sent");
    // Without a shard now: everyone has it, nothing is sent.
    site.send().assert_success();
    assert_eq!(sink.stored_count(), 24);
}
