//! The happy paths: aiosmtpd and Postfix's smtp-sink accept every digest.

use std::collections::BTreeSet;
use std::fs;

use crate::support::{Pipelining, Site, assert_one_each, check_digest, free_port};

/// The bytes of a message without the line break the SMTP terminator adds.
fn body(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b"\r\n").unwrap_or(bytes)
}

#[test]
fn every_subscriber_gets_one_checked_digest_and_a_rerun_sends_nothing() {
    let site = Site::smtp_with_examples(10);
    let preview = site.path("preview");
    site.dry_run("preview").ok();
    let server = site.serve(&[]);

    let run = site.send();
    run.assert_success();
    let stored = server.stored();
    assert_one_each(&stored, &site.recipients());
    for message in &stored {
        check_digest(message);
    }
    let ids: BTreeSet<&str> = stored.iter().map(|s| s.message_id.as_str()).collect();
    assert_eq!(
        ids.len(),
        stored.len(),
        "Message-IDs must differ per recipient"
    );
    // The dry run shows exactly what goes on the wire.
    for message in &stored {
        let eml = preview.join(format!("{}.eml", message.rcpt));
        let eml = fs::read(&eml).unwrap_or_else(|e| panic!("{}: {e}", eml.display()));
        assert!(
            body(&message.bytes) == body(&eml),
            "{}: the sent message differs from the dry run's .eml",
            message.rcpt
        );
    }
    site.state().assert_all(&site.recipients(), "sent");
    assert_eq!(
        site.state().stored_bytes(),
        0,
        "sent messages keep their bytes in the state database"
    );
    assert!(
        run.stdout
            .contains(&format!("{} sent", site.recipients().len())),
        "the summary should count the messages sent:\n{run}"
    );

    let again = site.send();
    again.assert_success();
    assert_eq!(
        server.stored_count(),
        stored.len(),
        "the second run sent again:\n{again}"
    );
    site.state().assert_all(&site.recipients(), "sent");
}

#[test]
fn postfix_smtp_sink_accepts_every_digest() {
    let site = Site::smtp_with_examples(20);
    let sink = site.serve_sink();
    site.send().assert_success();
    let stored = sink.stored();
    assert_one_each(&stored, &site.recipients());
    for message in &stored {
        check_digest(message);
    }
    site.state().assert_all(&site.recipients(), "sent");
    site.send().assert_success();
    assert_eq!(
        sink.stored().len(),
        stored.len(),
        "the second run sent again"
    );
}

/// A server that announces PIPELINING gets each transaction's MAIL, RCPT
/// and DATA in one flight, and (mostly) the next message's envelope behind
/// the content of the one before; a server that does not gets one command
/// at a time (it refuses and disconnects a client that sends ahead, and
/// every delivery then fails). The messages are fixed by a run while the
/// relay is down, so every next message is ready when its sender gets to
/// it (while composing overlaps sending, whether it is depends on timing).
#[test]
fn pipelining_when_the_server_offers_it_lockstep_when_not() {
    for pipelining in [Pipelining::On, Pipelining::Off] {
        let site = Site::smtp(12);
        site.set("smtp.connections", 2).point_at(free_port());
        site.send().assert_code(2);
        let server = site.serve_with(pipelining, &[]);
        site.send().assert_success();
        assert_one_each(&server.stored(), &site.recipients());
        let (mails, pipelined) = server.mail_commands();
        let behind_content = server.log_count("next envelope behind the content");
        println!(
            "{pipelining:?}: {mails} MAIL, {pipelined} pipelined, {behind_content} behind content"
        );
        assert_eq!(mails, 12, "{}", server.log());
        match pipelining {
            Pipelining::On => {
                assert_eq!(pipelined, 12, "{}", server.log());
                assert!(behind_content > 0, "{}", server.log());
            }
            Pipelining::Off => assert_eq!((pipelined, behind_content), (0, 0)),
        }
    }
}
