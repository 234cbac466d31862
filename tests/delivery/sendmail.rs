//! `transport = "sendmail"`: each message handed to the local MTA once.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::{FROM, Site, Stored, assert_one_each, check_digest, parse_stored, set_mode};

const END: &str = "=== end of message ===";

/// A sendmail stand-in that appends its arguments, the envelope recipient
/// (its last argument) and its stdin to `sendmail.out` beside it; it exits
/// 75 (EX_TEMPFAIL) without keeping anything for `refuse`.
fn fake_sendmail(site: &Site, refuse: Option<&str>) -> PathBuf {
    let path = site.path("bin/sendmail");
    let out = site.path("sendmail.out");
    let refuse = refuse.map_or(String::new(), |r| {
        format!("case \"$*\" in *{r}*) cat >/dev/null; echo 'mailbox busy' >&2; exit 75;; esac\n")
    });
    let script = format!(
        "#!/bin/sh\n\
         {refuse}\
         for last in \"$@\"; do :; done\n\
         {{ printf 'X-Test-Rcpt-To: %s\\r\\nX-Test-Mail-From: %s\\r\\n' \"$last\" \"$*\"; cat; printf '\\r\\n{END}\\r\\n'; }} >> '{}'\n",
        out.display()
    );
    site.write("bin/sendmail", script);
    set_mode(&path, 0o755);
    path
}

/// The messages in `sendmail.out`.
fn handed_over(site: &Site) -> Vec<Stored> {
    let out = site.path("sendmail.out");
    let text = fs::read(&out).unwrap_or_default();
    let text = String::from_utf8(text).expect("ASCII messages");
    text.split(&format!("\r\n{END}\r\n"))
        .filter(|chunk| !chunk.trim().is_empty())
        .enumerate()
        .map(|(i, chunk)| {
            parse_stored(
                Path::new(&format!("sendmail.out#{i}")).to_path_buf(),
                chunk.as_bytes().to_vec(),
            )
        })
        .collect()
}

#[test]
fn sendmail_transport_hands_each_message_over_once() {
    let site = Site::smtp_with_examples(4);
    let sendmail = fake_sendmail(&site, None);
    site.set("smtp.transport", "sendmail")
        .set("smtp.sendmail", sendmail.to_str().unwrap());
    site.send().assert_success();
    let messages = handed_over(&site);
    assert_one_each(&messages, &site.recipients());
    for message in &messages {
        check_digest(message);
    }
    let args = fs::read_to_string(site.path("sendmail.out")).unwrap();
    assert!(
        args.contains(&format!("X-Test-Mail-From: -i -f {FROM} -- ")),
        "sendmail should get -i -f {FROM} -- RCPT"
    );
    site.state().assert_all(&site.recipients(), "sent");

    site.send().assert_success();
    assert_eq!(
        handed_over(&site).len(),
        messages.len(),
        "the rerun handed over again"
    );
}

#[test]
fn failing_sendmail_leaves_the_message_pending_for_the_next_run() {
    let site = Site::smtp(4);
    let busy = "reader0002@example.com";
    let sendmail = fake_sendmail(&site, Some(busy));
    site.set("smtp.transport", "sendmail")
        .set("smtp.sendmail", sendmail.to_str().unwrap());
    site.send().assert_code(2); // sendmail exits 75 for one recipient
    let others: Vec<String> = site
        .recipients()
        .iter()
        .filter(|r| *r != busy)
        .cloned()
        .collect();
    assert_one_each(&handed_over(&site), &others);
    assert_eq!(
        site.state().statuses().get(busy).map(String::as_str),
        Some("pending")
    );

    fake_sendmail(&site, None);
    site.send().assert_success(); // rerun with a working sendmail
    assert_one_each(&handed_over(&site), &site.recipients());
    site.state().assert_all(&site.recipients(), "sent");
}
