//! DKIM: messages signed at compose time, as a real SMTP server received
//! them, verified by an independent verifier (dkimpy, through
//! `tests/support/dkim_verify.py`, its DNS answered with the test key's TXT
//! record); an altered copy fails. `check` refuses a missing or weak key and
//! a domain not aligned with From; EHLO carries `smtp.helo_name`.

use std::fs;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;

use crate::support::{Site, repo_root};

/// A subject long enough, and CJK enough, that it is folded over lines.
const LONG_SUBJECT: &str = "{{site.title}} · {{date}} 要闻：基层干部深入基层调研走访群众，倾听民声解决实际困难，推动乡村振兴与城市更新协调发展";

/// Runs `openssl ARGS`, panicking with its stderr when it fails.
fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (apt-get install openssl): {e}"));
    assert!(
        output.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[derive(Clone, Copy, Debug)]
enum KeyKind {
    /// `openssl genrsa -traditional`: `BEGIN RSA PRIVATE KEY`.
    RsaPkcs1(u32),
    /// `openssl genpkey -algorithm RSA`: `BEGIN PRIVATE KEY`.
    RsaPkcs8,
    Ed25519,
}

/// Makes a key of `kind` at `path`; returns its DNS TXT record.
fn make_key(kind: KeyKind, path: &Path) -> String {
    let out = path.to_str().expect("a UTF-8 path");
    match kind {
        KeyKind::RsaPkcs1(bits) => {
            openssl(&["genrsa", "-traditional", "-out", out, &bits.to_string()]);
            let pem = fs::read_to_string(path).unwrap();
            assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{pem}");
        }
        KeyKind::RsaPkcs8 => {
            openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                out,
            ]);
            let pem = fs::read_to_string(path).unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        }
        KeyKind::Ed25519 => {
            openssl(&["genpkey", "-algorithm", "ed25519", "-out", out]);
        }
    }
    let der = openssl(&["pkey", "-in", out, "-pubout", "-outform", "DER"]);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    match kind {
        // RFC 8463: the bare 32-byte public key, not its SubjectPublicKeyInfo.
        KeyKind::Ed25519 => format!("v=DKIM1; k=ed25519; p={}", b64(&der[der.len() - 32..])),
        _ => format!("v=DKIM1; k=rsa; p={}", b64(&der)),
    }
}

/// Whether dkimpy verifies `message` against `record`.
fn verifies(dir: &Path, message: &[u8], record: &str) -> bool {
    let file = dir.join("to-verify.eml");
    fs::write(&file, message).unwrap();
    let output = Command::new("python3")
        .arg(repo_root().join("tests/support/dkim_verify.py"))
        .arg(&file)
        .arg(record)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
    match output.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!(
            "dkim_verify.py could not run (pip install dkimpy pynacl):\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// The example site with its digest signed by a new key of `kind` for
/// `news.example.cn`, a long CJK subject and a Feedback-ID; returns the
/// key's TXT record.
fn signed_site(kind: KeyKind) -> (Site, String) {
    let site = Site::smtp_with_examples(0);
    let record = make_key(kind, &site.path("dkim.pem"));
    site.set("dkim.domain", "news.example.cn")
        .set("dkim.selector", "bulletin2026")
        .set("dkim.key_file", "dkim.pem")
        .set("digest.subject", LONG_SUBJECT)
        .set("digest.feedback_id", "digest:news.example.cn");
    (site, record)
}

/// `message` with CRLF line ends: smtp-sink stores LF, DKIM is defined
/// over the wire form.
fn crlf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 40);
    for (i, &b) in message.iter().enumerate() {
        if b == b'\n' && (i == 0 || message[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn header_block(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    text[..text.find("\r\n\r\n").expect("a header block")].to_owned()
}

/// Sends the signed digest through smtp-sink; every message received
/// verifies, and altering one byte of its body or of its Subject breaks it.
fn received_messages_verify(kind: KeyKind) {
    let (site, record) = signed_site(kind);
    let sink = site.serve_sink();
    site.send().assert_success();
    let stored = sink.stored();
    assert_eq!(stored.len(), site.recipients().len(), "one message each");
    let scratch = site.path("verify");
    fs::create_dir_all(&scratch).unwrap();
    for message in &stored {
        let bytes = crlf(&message.bytes);
        let head = header_block(&bytes);
        assert!(head.contains("DKIM-Signature: v=1; a="), "{head}");
        assert!(head.contains("d=news.example.cn;"), "{head}");
        assert!(head.contains("s=bulletin2026;"), "{head}");
        assert!(
            head.contains("Feedback-ID: digest:news.example.cn"),
            "{head}"
        );
        // The subject was long enough to be folded.
        let subject_lines = head
            .split("\r\n")
            .skip_while(|l| !l.starts_with("Subject:"))
            .skip(1)
            .take_while(|l| l.starts_with(' ') || l.starts_with('\t'))
            .count();
        assert!(subject_lines > 0, "the Subject is not folded:\n{head}");
        for name in [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
            "Content-Type",
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "Feedback-ID",
        ] {
            let signed: String = head
                .split("h=")
                .nth(1)
                .and_then(|h| h.split(';').next())
                .unwrap_or("")
                .split(':')
                .map(|n| n.trim().to_owned())
                .filter(|n| n == name)
                .collect::<Vec<_>>()
                .join(",");
            assert!(!signed.is_empty(), "{name} is not signed (h=):\n{head}");
        }
        assert!(
            verifies(&scratch, &bytes, &record),
            "{} does not verify ({kind:?}):\n{head}",
            message.file.display()
        );

        // One byte of the body changed: the body hash no longer matches.
        let body_at = bytes.len() - 40;
        let mut body = bytes.clone();
        body[body_at] = if body[body_at] == b'A' { b'B' } else { b'A' };
        assert!(
            !verifies(&scratch, &body, &record),
            "{}: a changed body still verifies",
            message.file.display()
        );
        // One byte of the Subject changed: the header signature fails.
        let at = head.find("Subject: ").expect("a Subject") + "Subject: =?utf-8?b?".len() + 2;
        let mut subject = bytes.clone();
        subject[at] = if subject[at] == b'A' { b'B' } else { b'A' };
        assert!(
            !verifies(&scratch, &subject, &record),
            "{}: a changed Subject still verifies",
            message.file.display()
        );
        // A second From added on the way: over-signing rejects it.
        let mut added = b"From: someone@evil.example\r\n".to_vec();
        let first_from = head.find("\r\nFrom:").expect("a From") + 2;
        added.splice(0..0, bytes[..first_from].iter().copied());
        added.extend_from_slice(&bytes[first_from..]);
        assert!(
            !verifies(&scratch, &added, &record),
            "{}: an added From still verifies",
            message.file.display()
        );
    }
}

#[test]
fn rsa_pkcs1_signatures_verify_as_received() {
    received_messages_verify(KeyKind::RsaPkcs1(2048));
}

#[test]
fn rsa_pkcs8_signatures_verify_as_received() {
    received_messages_verify(KeyKind::RsaPkcs8);
}

#[test]
fn ed25519_signatures_verify_as_received() {
    received_messages_verify(KeyKind::Ed25519);
}

#[test]
fn the_dry_run_shows_the_signed_message() {
    let (site, record) = signed_site(KeyKind::Ed25519);
    let run = site.dry_run("out").ok();
    let emls = run.emls();
    assert!(!emls.is_empty());
    let scratch = site.path("verify");
    fs::create_dir_all(&scratch).unwrap();
    for (address, raw) in emls {
        assert!(
            raw.starts_with(b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;"),
            "{address}: {}",
            header_block(&raw)
        );
        assert!(
            verifies(&scratch, &raw, &record),
            "{address} does not verify"
        );
    }
}

/// `check` and a dry run both refuse, naming the key; nothing is written.
#[track_caller]
fn refused(site: &Site, key: &str, needle: &str) {
    let check = site.check();
    check.assert_code(1);
    let errors = check.errors();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&format!("feeds.toml: {key}: ")) && e.contains(needle)),
        "no error on {key} saying {needle:?}:\n{check}"
    );
    let run = site.dry_run_with("out", |cmd| cmd);
    run.run.assert_code(1).assert_stderr_has(&[key, needle]);
    assert!(!run.dir.exists(), "a dry run wrote files");
}

#[test]
fn check_refuses_a_missing_key_file() {
    let (site, _) = signed_site(KeyKind::Ed25519);
    site.set("dkim.key_file", "keys/missing.pem");
    refused(&site, "dkim.key_file", "cannot read");
}

#[test]
fn check_refuses_a_1024_bit_rsa_key() {
    let (site, _) = signed_site(KeyKind::Ed25519);
    make_key(KeyKind::RsaPkcs1(1024), &site.path("weak.pem"));
    site.set("dkim.key_file", "weak.pem");
    refused(&site, "dkim.key_file", "1024-bit RSA key");
}

#[test]
fn check_refuses_a_key_that_does_not_parse() {
    let (site, _) = signed_site(KeyKind::Ed25519);
    site.write(
        "dkim.pem",
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    );
    refused(&site, "dkim.key_file", "PKCS#8");
}

#[test]
fn check_refuses_a_domain_not_aligned_with_from() {
    let (site, _) = signed_site(KeyKind::Ed25519);
    // From is digest@news.example.cn: a sibling or a child does not align.
    for domain in ["mail.example.cn", "mail.news.example.cn", "example.com"] {
        site.set("dkim.domain", domain);
        refused(&site, "dkim.domain", "is neither the From address's domain");
    }
    // The parent domain does (relaxed DMARC alignment).
    site.set("dkim.domain", "example.cn");
    site.check().assert_success();
}

#[test]
fn ehlo_carries_helo_name() {
    let site = Site::smtp_with_examples(0);
    site.set("smtp.helo_name", "mail.news.example.cn");
    let server = site.serve(&[]);
    site.send().assert_success();
    assert!(
        server.log_count("EHLO mail.news.example.cn") > 0,
        "{}",
        server.log()
    );
}

#[test]
fn ehlo_defaults_to_the_from_domain() {
    let site = Site::smtp_with_examples(0);
    let server = site.serve(&[]);
    site.send().assert_success();
    let log = server.log();
    let hellos: Vec<&str> = log.lines().filter(|l| l.contains(": EHLO ")).collect();
    assert!(!hellos.is_empty(), "no EHLO logged:\n{log}");
    for line in hellos {
        assert!(
            line.ends_with(": EHLO news.example.cn"),
            "EHLO is not the From domain: {line}"
        );
    }
}

#[test]
fn check_refuses_a_bad_helo_name_and_feedback_id() {
    let site = Site::smtp_with_examples(0);
    site.set("smtp.helo_name", "mail server")
        .set("digest.feedback_id", "digest:\r\nBcc: x@example.com");
    let check = site.check();
    check.assert_code(1);
    let errors = check.errors().join("\n");
    assert!(errors.contains("smtp.helo_name"), "{check}");
    assert!(errors.contains("digest.feedback_id"), "{check}");
}
