//! Server faults: temporary and permanent refusals, 421, dropped connections
//! (before and after the server kept the message), no server at all.

use crate::support::{Pipelining, Site, assert_one_each, copies, free_port};

both_ways!(
    temporary_451_on_every_third_message_is_retried_within_the_run,
    temporary_failures_left_pending_are_finished_by_reruns,
    permanent_550_is_reported_recorded_and_never_retried,
    permanent_554_after_data_is_recorded_as_failed_and_not_resent,
    server_421_and_close_after_two_messages_per_connection,
    connection_dropped_mid_data_is_resent,
    connection_dropped_after_store_gives_at_most_one_duplicate_with_the_same_id,
    slow_reply_after_data_does_not_multiply_copies,
    unreachable_server_exits_2_and_a_rerun_delivers_everything,
    a_refused_sender_stops_the_run_with_everything_pending,
);

fn temporary_451_on_every_third_message_is_retried_within_the_run(pipelining: Pipelining) {
    let site = Site::smtp(12);
    let server = site.serve_with(pipelining, &["--fail-every", "3", "--fail-code", "451"]);
    let runs = site.send_until_done(4);
    println!(
        "451 on every third message: {} refusals, {} run(s)",
        server.log_count("451 (injected)"),
        runs.len()
    );
    assert!(
        server.log_count("451 (injected)") > 0,
        "the fault never fired:\n{}",
        server.log()
    );
    assert_one_each(&server.stored(), &site.recipients());
    site.state().assert_all(&site.recipients(), "sent");
    // `retries = 3`: one run suffices unless a message hit the fault four times.
    assert!(
        runs.len() <= 2,
        "{} runs needed despite retries",
        runs.len()
    );
}

fn temporary_failures_left_pending_are_finished_by_reruns(pipelining: Pipelining) {
    let site = Site::smtp(12);
    site.set("smtp.retries", 0);
    let server = site.serve_with(pipelining, &["--fail-every", "3", "--fail-code", "451"]);

    let first = site.send();
    first.assert_code(2); // a run that leaves messages pending
    let refused = server.log_count("451 (injected)");
    assert_eq!(refused, 4, "every third of 12 messages:\n{}", server.log());
    let state = site.state();
    assert_eq!(
        state.count("pending"),
        refused,
        "pending after the first run"
    );
    assert_eq!(state.count("sent"), 12 - refused);
    assert_eq!(state.count("failed"), 0, "a 451 is not a permanent failure");
    assert!(
        first.stderr.contains("again"),
        "stderr should say to run again:\n{first}"
    );
    drop(state);

    let runs = site.send_until_done(10);
    println!("451 with retries = 0: {} more run(s) to finish", runs.len());
    assert!(runs.len() >= 2, "the 451 fired again, so reruns are needed");
    assert_one_each(&server.stored(), &site.recipients());
    site.state().assert_all(&site.recipients(), "sent");
}

fn permanent_550_is_reported_recorded_and_never_retried(pipelining: Pipelining) {
    let site = Site::smtp(8);
    let refused = "reader0003@example.com";
    let server = site.serve_with(pipelining, &["--reject", refused]);

    let first = site.send();
    first.assert_code(2); // one recipient refused
    assert!(
        first.stderr.contains(refused),
        "stderr should name the refused recipient:\n{first}"
    );
    let others: Vec<String> = site
        .recipients()
        .iter()
        .filter(|r| *r != refused)
        .cloned()
        .collect();
    assert_one_each(&server.stored(), &others);
    let state = site.state();
    state.assert_all(&others, "sent");
    assert_eq!(
        state.statuses().get(refused).map(String::as_str),
        Some("failed")
    );
    let error = state.last_error(refused).unwrap_or_default();
    assert!(
        error.contains("550"),
        "last_error {error:?} should hold the 550"
    );
    drop(state);

    let rerun = site.send();
    rerun.assert_code(2); // a rerun while a recipient stays failed
    assert_eq!(server.stored().len(), others.len(), "the rerun sent again");
    assert_eq!(
        server.log_count("550 for RCPT"),
        1,
        "the refused recipient was tried again:\n{}",
        server.log()
    );
    assert_eq!(
        site.state().statuses().get(refused).map(String::as_str),
        Some("failed")
    );
}

fn permanent_554_after_data_is_recorded_as_failed_and_not_resent(pipelining: Pipelining) {
    let site = Site::smtp(8);
    let server = site.serve_with(pipelining, &["--fail-every", "4", "--fail-code", "554"]);
    site.send().assert_code(2); // two messages refused for good
    assert_eq!(server.log_count("554 (injected)"), 2, "{}", server.log());
    let state = site.state();
    assert_eq!(state.count("failed"), 2);
    assert_eq!(state.count("sent"), 6);
    assert_eq!(state.count("pending"), 0, "a 554 is not temporary");
    let sent: Vec<String> = state
        .statuses()
        .into_iter()
        .filter(|(_, s)| s == "sent")
        .map(|(r, _)| r)
        .collect();
    drop(state);
    assert_one_each(&server.stored(), &sent);

    site.send().assert_code(2); // a rerun while two recipients stay failed
    assert_eq!(
        server.log_count("554 (injected)"),
        2,
        "a refused message was sent again"
    );
    assert_one_each(&server.stored(), &sent);
}

fn server_421_and_close_after_two_messages_per_connection(pipelining: Pipelining) {
    let site = Site::smtp(12);
    let server = site.serve_with(pipelining, &["--close-after", "2"]);
    let runs = site.send_until_done(4);
    println!(
        "421 after two messages: {} closes, {} run(s)",
        server.log_count("421 after"),
        runs.len()
    );
    assert!(
        server.log_count("421 after") > 0,
        "the fault never fired:\n{}",
        server.log()
    );
    assert_one_each(&server.stored(), &site.recipients());
    site.state().assert_all(&site.recipients(), "sent");
}

fn connection_dropped_mid_data_is_resent(pipelining: Pipelining) {
    let site = Site::smtp(8);
    let server = site.serve_with(pipelining, &["--drop-mid-data", "3"]);
    site.send_until_done(4);
    assert_eq!(
        server.log_count("dropping mid-DATA"),
        1,
        "the fault did not fire once:\n{}",
        server.log()
    );
    assert_one_each(&server.stored(), &site.recipients());
    site.state().assert_all(&site.recipients(), "sent");
}

fn connection_dropped_after_store_gives_at_most_one_duplicate_with_the_same_id(
    pipelining: Pipelining,
) {
    let site = Site::smtp(8);
    let server = site.serve_with(pipelining, &["--drop-after-store", "3"]);
    site.send_until_done(4);
    assert_eq!(
        server.log_count("dropping before 250"),
        1,
        "the fault did not fire once:\n{}",
        server.log()
    );
    let stored = server.stored();
    let copies = copies(&stored);
    for r in &site.recipients() {
        assert!(copies.contains_key(r.as_str()), "{r}: no copy");
    }
    let duplicated: Vec<_> = copies.iter().filter(|(_, c)| c.len() > 1).collect();
    assert!(
        duplicated.len() <= 1,
        "more than one recipient got a duplicate: {:?}",
        duplicated
            .iter()
            .map(|(r, c)| (r, c.len()))
            .collect::<Vec<_>>()
    );
    for (r, c) in &duplicated {
        assert_eq!(c.len(), 2, "{r}: {} copies", c.len());
        assert_eq!(
            c[0].message_id, c[1].message_id,
            "{r}: the resend changed Message-ID"
        );
        assert!(
            c[0].bytes == c[1].bytes,
            "{r}: the resend changed the bytes"
        );
    }
    assert_eq!(
        copies.len(),
        site.recipients().len(),
        "mail for a non-subscriber"
    );
    site.state().assert_all(&site.recipients(), "sent");
}

/// The server keeps each message and takes 2.5 s to say 250, longer than
/// `timeout = 1`. Each timed-out attempt is the ambiguous case (the server
/// has the message), so resending it on every retry multiplies copies:
/// within one run a recipient may get at most one duplicate (RFC 5321
/// §4.5.3.2.6 even asks clients to wait 10 minutes for the reply to the
/// final dot, to avoid exactly this).
fn slow_reply_after_data_does_not_multiply_copies(pipelining: Pipelining) {
    let site = Site::smtp(2);
    site.set("smtp.timeout", 1).set("smtp.retries", 3);
    let server = site.serve_with(pipelining, &["--delay", "2.5"]);
    let run = site.send();
    let stored = server.stored();
    let counts: Vec<(String, usize)> = copies(&stored)
        .into_iter()
        .map(|(r, c)| (r, c.len()))
        .collect();
    println!("slow 250 after DATA: copies per recipient after one run {counts:?}");
    for r in &site.recipients() {
        let n = counts.iter().find(|(x, _)| x == r).map_or(0, |(_, n)| *n);
        assert!(
            (1..=2).contains(&n),
            "{r}: {n} copies after one run against a server slow to answer the final dot\n{run}"
        );
    }
}

fn unreachable_server_exits_2_and_a_rerun_delivers_everything(pipelining: Pipelining) {
    let site = Site::smtp(6);
    let port = free_port();
    site.point_at(port);

    let first = site.send();
    first.assert_code(2); // no server listening
    let address = format!("127.0.0.1:{port}");
    assert!(
        first.stderr.contains(&address) || first.stderr.contains("cannot connect"),
        "stderr should say the server at {address} cannot be reached, not only that delivery is incomplete:\n{first}"
    );
    all_pending_then_a_rerun_delivers(&site, pipelining, "an unreachable server is not a refusal");
}

/// Nobody was sent the digest or marked failed (`why` says why that is
/// right); a rerun against a working server delivers one copy to each.
fn all_pending_then_a_rerun_delivers(site: &Site, pipelining: Pipelining, why: &str) {
    let state = site.state();
    assert_eq!(state.count("sent"), 0, "nothing can have been sent");
    assert_eq!(state.count("failed"), 0, "{why}");
    assert_eq!(state.count("pending"), site.recipients().len());
    drop(state);

    let server = site.serve_with(pipelining, &[]);
    site.send().assert_success(); // rerun with a working server
    assert_one_each(&server.stored(), &site.recipients());
    site.state().assert_all(&site.recipients(), "sent");
}

fn a_refused_sender_stops_the_run_with_everything_pending(pipelining: Pipelining) {
    // A 5xx to MAIL FROM is about the sender (a wrong `from`, a quota, a
    // policy), not about anyone on the list: nobody may be marked failed,
    // and the server is not asked once per recipient.
    let site = Site::smtp(30);
    let refusing = site.serve_with(pipelining, &["--mail-from-code", "553"]);
    let first = site.send();
    first.assert_code(2); // the server refuses the sender
    assert!(
        first.stderr.contains("refuses the sender"),
        "stderr should say the sender was refused:\n{first}"
    );
    assert_eq!(refusing.stored_count(), 0);
    let tries = refusing.log_count("553 for MAIL");
    assert!(
        (1..=4).contains(&tries),
        "MAIL FROM tried {tries} times (at most once per connection):\n{}",
        refusing.log()
    );
    all_pending_then_a_rerun_delivers(
        &site,
        pipelining,
        "a refused sender is not a refused recipient",
    );
}
