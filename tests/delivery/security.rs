//! TLS (STARTTLS and implicit) with a self-signed certificate, and AUTH.

use std::fs;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::support::{
    PASSWORD_VAR, Run, Site, SmtpServer, assert_one_each, check_digest, contains_bytes,
    self_signed_cert,
};

/// A site and a TLS server (`security` = "starttls" or "tls") with a fresh
/// self-signed certificate for localhost, trusted through `ca_file`.
fn tls_site(security: &str) -> (Site, SmtpServer) {
    let site = Site::smtp(5);
    let (cert, key) = self_signed_cert(site.root());
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let mut args = vec!["--tls-cert", cert, "--tls-key", key];
    if security == "tls" {
        args.push("--implicit-tls");
    }
    let server = site.serve(&args);
    site.set("smtp.host", "localhost")
        .set("smtp.security", security)
        .set("smtp.ca_file", cert);
    (site, server)
}

fn delivers_over_tls(security: &str) {
    let (site, server) = tls_site(security);
    site.send().assert_success(); // with ca_file
    let stored = server.stored();
    assert_one_each(&stored, &site.recipients());
    for message in &stored {
        check_digest(message);
    }
    site.state().assert_all(&site.recipients(), "sent");
}

/// Without `ca_file` the self-signed certificate is not trusted: the send
/// fails (exit 2), nothing reaches the server, nobody is marked sent or
/// failed for good, and there is no silent fallback to plain text.
fn untrusted_certificate_fails(security: &str) {
    let (site, server) = tls_site(security);
    site.unset("smtp.ca_file");
    let run = site.send_cmd().arg("-v").run();
    run.assert_code(2); // the certificate is not trusted
    assert_eq!(server.stored_count(), 0, "a message got through:\n{run}");
    assert!(
        run.stderr.to_lowercase().contains("certificate"),
        "stderr should say the certificate is not trusted:\n{run}"
    );
    let state = site.state();
    assert_eq!(state.count("sent"), 0);
    assert_eq!(state.count("failed"), 0, "a TLS problem is not a refusal");
}

#[test]
fn starttls_with_the_certificate_in_ca_file_delivers() {
    delivers_over_tls("starttls");
}

#[test]
fn implicit_tls_with_the_certificate_in_ca_file_delivers() {
    delivers_over_tls("tls");
}

#[test]
fn starttls_without_ca_file_refuses_the_self_signed_certificate() {
    untrusted_certificate_fails("starttls");
}

#[test]
fn implicit_tls_without_ca_file_refuses_the_self_signed_certificate() {
    untrusted_certificate_fails("tls");
}

const USER: &str = "digest-sender";
const PASSWORD: &str = "c0rrect-H0rse-Battery";

fn auth_site() -> (Site, SmtpServer) {
    let site = Site::smtp(5);
    let server = site.serve(&["--auth-user", USER, "--auth-password", PASSWORD]);
    site.set("smtp.username", USER);
    (site, server)
}

/// Every byte of the state database (with its WAL and shared memory files).
fn state_bytes(site: &Site) -> Vec<u8> {
    let base = site.state_path();
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .filter_map(|suffix| fs::read(format!("{}{suffix}", base.display())).ok())
        .flatten()
        .collect()
}

/// Panics if `secret` shows in the output or the state database, as is or
/// as sent in AUTH PLAIN / LOGIN.
fn assert_not_leaked(site: &Site, run: &Run, secret: &str) {
    let plain = STANDARD.encode(format!("\0{USER}\0{secret}"));
    let login = STANDARD.encode(secret);
    for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        for form in [secret, plain.as_str(), login.as_str()] {
            assert!(!text.contains(form), "the password shows in {what}:\n{run}");
        }
    }
    let db = state_bytes(site);
    assert!(!db.is_empty(), "no state database to check");
    for form in [secret, plain.as_str(), login.as_str()] {
        assert!(
            !contains_bytes(&db, form.as_bytes()),
            "the password is stored in the state database"
        );
    }
}

#[test]
fn auth_with_the_password_from_the_environment_delivers() {
    let (site, server) = auth_site();
    let run = site.send_cmd().arg("-v").env(PASSWORD_VAR, PASSWORD).run();
    run.assert_success(); // AUTH with the right password
    assert!(server.log_count("AUTH") > 0, "the server saw no AUTH");
    assert_one_each(&server.stored(), &site.recipients());
    site.state().assert_all(&site.recipients(), "sent");
    assert_not_leaked(&site, &run, PASSWORD);
}

#[test]
fn auth_with_a_wrong_password_exits_2_and_never_shows_it() {
    let (site, server) = auth_site();
    let wrong = "Wr0ng-Pa55word-XYZZY";
    let run = site.send_cmd().arg("-v").env(PASSWORD_VAR, wrong).run();
    run.assert_code(2); // AUTH with a wrong password
    assert!(
        server.log_count("refused") > 0,
        "the server refused no AUTH:\n{}",
        server.log()
    );
    assert_eq!(server.stored_count(), 0);
    let state = site.state();
    assert_eq!(state.count("sent"), 0);
    assert_eq!(
        state.count("failed"),
        0,
        "a login problem is not a refusal of the recipient"
    );
    drop(state);
    assert_not_leaked(&site, &run, wrong);
}

#[test]
fn a_refused_password_is_not_tried_once_per_recipient() {
    // With 60 recipients, 4 connections and 3 retries, the run gives up
    // after 4 failed logins in a row (workers failing together count once),
    // not after 60 × 4 of them: a server that refuses the password would
    // otherwise see a brute-force attack.
    let site = Site::smtp(60);
    let server = site.serve(&["--auth-user", USER, "--auth-password", PASSWORD]);
    site.set("smtp.username", USER);
    let run = site.send_cmd().env(PASSWORD_VAR, "not-the-password").run();
    run.assert_code(2); // AUTH refused
    let attempts = server.log_count("refused");
    assert!(
        (4..=16).contains(&attempts),
        "{attempts} logins tried (expected 4 rounds of at most 4 connections):\n{}",
        server.log()
    );
    assert!(
        run.stderr.contains("authentication") && run.stderr.contains("gave up after 4 attempts"),
        "stderr should say why it stopped:\n{run}"
    );
    let state = site.state();
    assert_eq!(state.count("failed"), 0);
    assert_eq!(state.count("pending"), site.recipients().len());
}

#[test]
fn username_without_the_password_variable_is_a_config_error() {
    let (site, server) = auth_site();
    let run = site.send();
    run.assert_code(1); // username set, BULLETIN_SMTP_PASSWORD unset
    assert!(
        run.stderr.contains(PASSWORD_VAR),
        "stderr should name {PASSWORD_VAR}:\n{run}"
    );
    assert_eq!(server.stored_count(), 0);
    if site.state_path().exists() {
        assert_eq!(site.state().count("sent"), 0);
    }
}
