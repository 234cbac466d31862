//! DKIM signatures (RFC 6376; Ed25519 from RFC 8463) over finished messages.
//!
//! Owns the key formats it accepts (PEM: PKCS#1 or PKCS#8 RSA of 2048 bits
//! or more, PKCS#8 Ed25519), relaxed/relaxed canonicalization and the
//! `DKIM-Signature` header. It is pure: it reads no file and no clock (the
//! caller passes the key's text and the signing time), and it signs exactly
//! the bytes it is given, so the signed message can be stored and resent
//! byte for byte. It knows nothing of digests, configs or transports.

use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::sha2::{Digest as _, Sha256};
use rsa::signature::Signer as _;
use rsa::traits::PublicKeyParts as _;

/// RSA keys shorter than this are refused (RFC 8301).
pub const MIN_RSA_BITS: usize = 2048;

/// The headers signed when present, in this order. Each is also signed once
/// more than it occurs ("over-signed"), so a copy added on the way (a second
/// `From` or `Subject`) breaks the signature.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
    "Auto-Submitted",
];

/// A private signing key.
pub enum Key {
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Key::Rsa(_) => "Key::Rsa(..)",
            Key::Ed25519(_) => "Key::Ed25519(..)",
        })
    }
}

impl Key {
    /// Parses a PEM private key: `BEGIN RSA PRIVATE KEY` (PKCS#1) or
    /// `BEGIN PRIVATE KEY` (PKCS#8, RSA or Ed25519). The error says what is
    /// wrong in words a person can act on.
    pub fn from_pem(pem: &str) -> Result<Key, String> {
        let rsa = if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            rsa::PrivateKey::from_pkcs1_pem(pem)
                .map_err(|e| format!("is not a readable PKCS#1 RSA private key: {e}"))?
        } else if pem.contains("-----BEGIN PRIVATE KEY-----") {
            match rsa::PrivateKey::from_pkcs8_pem(pem) {
                Ok(key) => key,
                Err(rsa_error) => {
                    return ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                        .map(|key| Key::Ed25519(Box::new(key)))
                        .map_err(|e| {
                            format!(
                                "is neither an RSA ({rsa_error}) nor an Ed25519 ({e}) PKCS#8 private key"
                            )
                        });
                }
            }
        } else if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err("is encrypted; give an unencrypted PEM key (keep the file readable only by the sender)".into());
        } else {
            return Err(
                "is not a PEM private key (expected \"-----BEGIN PRIVATE KEY-----\" or \"-----BEGIN RSA PRIVATE KEY-----\")"
                    .into(),
            );
        };
        let bits = rsa.n().bit_width() as usize;
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "is a {bits}-bit RSA key; DKIM needs at least {MIN_RSA_BITS} bits (RFC 8301): make one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`"
            ));
        }
        Ok(Key::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(rsa))))
    }

    /// `rsa-sha256` or `ed25519-sha256`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        }
    }

    /// Signs the canonicalized header data: RSASSA-PKCS1-v1_5 over its
    /// SHA-256, or Ed25519 over its SHA-256 (RFC 8463 §3).
    fn sign(&self, data: &[u8]) -> Vec<u8> {
        match self {
            Key::Rsa(key) => {
                let signature: rsa::pkcs1v15::Signature = key.sign(data);
                Box::<[u8]>::from(signature).into_vec()
            }
            Key::Ed25519(key) => {
                let digest = Sha256::digest(data);
                key.sign(&digest).to_bytes().to_vec()
            }
        }
    }
}

/// Who signs: `d=`, `s=` and the key.
#[derive(Debug)]
pub struct Signer {
    pub domain: String,
    pub selector: String,
    pub key: Key,
}

impl Signer {
    /// `message` (CRLF line ends, headers, a blank line, the body) with a
    /// `DKIM-Signature` header put in front. `time` becomes `t=`.
    pub fn sign(&self, message: &[u8], time: i64) -> Vec<u8> {
        let (head, body) = split(message);
        let headers = headers(head);
        let body_hash = base64(&Sha256::digest(relaxed_body(body)));

        let mut names = Vec::new();
        for name in SIGNED_HEADERS {
            let count = headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .count();
            if count > 0 {
                names.extend(std::iter::repeat_n(*name, count + 1));
            }
        }
        // Bottom-up: the n-th occurrence of a name in h= signs the n-th
        // instance of that header counted from the bottom (RFC 6376 §5.4.2).
        let mut data = Vec::new();
        let mut used: Vec<(&str, usize)> = Vec::new();
        for name in &names {
            let lower = name.to_ascii_lowercase();
            let seen = match used.iter_mut().find(|(n, _)| *n == *name) {
                Some((_, seen)) => {
                    *seen += 1;
                    *seen
                }
                None => {
                    used.push((name, 1));
                    1
                }
            };
            if let Some((_, raw)) = headers
                .iter()
                .rev()
                .filter(|(n, _)| n.eq_ignore_ascii_case(&lower))
                .nth(seen - 1)
            {
                data.extend_from_slice(&relaxed_header(raw));
                data.extend_from_slice(b"\r\n");
            }
        }

        let tags = [
            "v=1".to_owned(),
            format!("a={}", self.key.algorithm()),
            "c=relaxed/relaxed".to_owned(),
            format!("d={}", self.domain),
            format!("s={}", self.selector),
            format!("t={time}"),
        ];
        let mut header = String::from("DKIM-Signature:");
        let mut line = header.len();
        for tag in tags.iter().map(|t| format!("{t};")) {
            push_folded(&mut header, &mut line, &tag);
        }
        // h= folded between names (RFC 6376 allows FWS around the colons).
        for (i, name) in names.iter().enumerate() {
            let piece = match (i == 0, i + 1 == names.len()) {
                (true, true) => format!("h={name};"),
                (true, false) => format!("h={name}"),
                (false, true) => format!(":{name};"),
                (false, false) => format!(":{name}"),
            };
            if i == 0 || line + piece.len() > 76 {
                push_folded(&mut header, &mut line, &piece);
            } else {
                header.push_str(&piece);
                line += piece.len();
            }
        }
        push_folded(&mut header, &mut line, &format!("bh={body_hash};"));
        push_folded(&mut header, &mut line, "b=");
        data.extend_from_slice(&relaxed_header(header.as_bytes()));
        let signature = base64(&self.key.sign(&data));
        // b= in pieces that keep each line under 78 characters; the folding
        // whitespace is ignored by verifiers.
        let mut rest = signature.as_str();
        while !rest.is_empty() {
            if line >= 76 {
                header.push_str("\r\n\t");
                line = 1;
            }
            let take = (76 - line).min(rest.len());
            header.push_str(&rest[..take]);
            line += take;
            rest = &rest[take..];
        }
        header.push_str("\r\n");
        let mut out = header.into_bytes();
        out.extend_from_slice(message);
        out
    }
}

/// Appends ` tag`, or a fold and `tag` when the line would pass 76 columns.
fn push_folded(header: &mut String, line: &mut usize, tag: &str) {
    if *line + 1 + tag.len() > 76 && *line > 1 {
        header.push_str("\r\n\t");
        *line = 1;
    } else {
        header.push(' ');
        *line += 1;
    }
    header.push_str(tag);
    *line += tag.len();
}

/// Whether `d=` `domain` may sign for mail from `from_domain`: the same
/// domain or a parent of it (relaxed DMARC alignment), compared without
/// case and a trailing dot. A bare top-level domain never aligns.
pub fn aligned(domain: &str, from_domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let from = from_domain.trim_end_matches('.').to_ascii_lowercase();
    domain.contains('.')
        && (from == domain
            || from
                .strip_suffix(&domain)
                .is_some_and(|rest| rest.ends_with('.')))
}

/// The public key's DNS TXT value (`v=DKIM1; k=…; p=…`), to publish at
/// `<selector>._domainkey.<domain>`.
pub fn dns_record(key: &Key) -> String {
    match key {
        Key::Rsa(key) => {
            use rsa::pkcs8::EncodePublicKey as _;
            let public = rsa::PublicKey::from(key.as_ref().as_ref());
            let der = public
                .to_public_key_der()
                .expect("an RSA public key encodes");
            format!("v=DKIM1; k=rsa; p={}", base64(der.as_bytes()))
        }
        Key::Ed25519(key) => format!(
            "v=DKIM1; k=ed25519; p={}",
            base64(key.verifying_key().as_bytes())
        ),
    }
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The header block (with its final CRLF) and the body.
fn split(message: &[u8]) -> (&[u8], &[u8]) {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&message[..at + 2], &message[at + 4..]),
        None => (message, &[]),
    }
}

/// Each header field as (name, the whole field without its final CRLF).
fn headers(head: &[u8]) -> Vec<(String, &[u8])> {
    let mut fields: Vec<(String, &[u8])> = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at < head.len() {
        let end = head[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(head.len(), |p| at + p);
        let next = (end + 2).min(head.len());
        let continues = head.get(next).is_some_and(|&b| b == b' ' || b == b'\t');
        if !continues {
            let field = &head[start..end];
            let name = field
                .iter()
                .position(|&b| b == b':')
                .map_or(field, |c| &field[..c]);
            fields.push((String::from_utf8_lossy(name).trim().to_owned(), field));
            start = next;
        }
        at = next;
    }
    fields
}

/// Relaxed header canonicalization (RFC 6376 §3.4.2): the name in lower
/// case, unfolded, runs of whitespace made one space, none around the colon
/// or at the end.
fn relaxed_header(field: &[u8]) -> Vec<u8> {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    let name = String::from_utf8_lossy(&field[..colon])
        .trim()
        .to_ascii_lowercase();
    let mut out = name.into_bytes();
    out.push(b':');
    let value = field.get(colon + 1..).unwrap_or(&[]);
    let mut space = false;
    for &b in value {
        match b {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => space = true,
            _ => {
                if space && out.last() != Some(&b':') {
                    out.push(b' ');
                }
                space = false;
                out.push(b);
            }
        }
    }
    out
}

/// Relaxed body canonicalization (RFC 6376 §3.4.4): whitespace runs made
/// one space, none at line ends, no empty lines at the end; a non-empty
/// body ends with CRLF.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut blank = 0;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut canon = Vec::with_capacity(line.len());
        let mut space = false;
        for &b in line {
            if b == b' ' || b == b'\t' {
                space = true;
            } else {
                if space {
                    canon.push(b' ');
                }
                space = false;
                canon.push(b);
            }
        }
        if canon.is_empty() {
            blank += 1;
            continue;
        }
        for _ in 0..blank {
            out.extend_from_slice(b"\r\n");
        }
        blank = 0;
        out.extend_from_slice(&canon);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_header_unfolds_and_squeezes() {
        assert_eq!(
            relaxed_header(b"Subject \t:  A  b\r\n\t c \t"),
            b"subject:A b c".to_vec()
        );
        assert_eq!(relaxed_header(b"X:"), b"x:".to_vec());
    }

    #[test]
    fn relaxed_body_drops_trailing_space_and_empty_lines() {
        assert_eq!(
            relaxed_body(b" a  b \r\n\r\nc\t\r\n\r\n\r\n"),
            b" a b\r\n\r\nc\r\n"
        );
        assert_eq!(relaxed_body(b"x"), b"x\r\n");
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
    }

    #[test]
    fn headers_keep_folded_lines_together() {
        let head = b"From: a\r\nSubject: x\r\n y\r\nTo: b\r\n";
        let fields = headers(head);
        let names: Vec<_> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["From", "Subject", "To"]);
        assert_eq!(fields[1].1, b"Subject: x\r\n y");
    }

    #[test]
    fn alignment_is_the_domain_or_a_parent() {
        assert!(aligned("news.example.cn", "news.example.cn"));
        assert!(aligned("example.cn", "news.example.cn"));
        assert!(aligned("Example.CN.", "news.example.cn"));
        assert!(!aligned("ws.example.cn", "news.example.cn"));
        assert!(!aligned("other.cn", "news.example.cn"));
        assert!(!aligned("cn", "news.example.cn"));
        assert!(!aligned("mail.news.example.cn", "news.example.cn"));
    }

    #[test]
    fn ed25519_signature_is_stable_and_oversigns() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHHbZ1aXOAglGt++jSz7bILpu5/48v7xd2LtHOZ8rffd\n-----END PRIVATE KEY-----\n";
        let signer = Signer {
            domain: "example.com".into(),
            selector: "s1".into(),
            key: Key::from_pem(pem).unwrap(),
        };
        let message = b"From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n";
        let signed = signer.sign(message, 1);
        assert_eq!(signed, signer.sign(message, 1));
        let text = String::from_utf8(signed).unwrap();
        assert!(text.starts_with("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;"));
        assert!(text.contains("h=From:From:Subject:Subject;"), "{text}");
        assert!(text.ends_with("\r\n\r\nbody\r\n"));
        assert!(text.lines().all(|l| l.len() <= 78), "{text}");
        assert!(dns_record(&signer.key).starts_with("v=DKIM1; k=ed25519; p="));
    }

    #[test]
    fn not_a_key_is_said_so() {
        assert!(Key::from_pem("hello").unwrap_err().contains("not a PEM"));
        let bad = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(Key::from_pem(bad).unwrap_err().contains("neither"));
    }
}
