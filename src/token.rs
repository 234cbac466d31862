//! Unsubscribe tokens: the `{{token}}` of `unsubscribe_url` and of
//! `bounce_address`.
//!
//! A token is 18 bytes, written in lower-case base32 (29 characters: safe
//! in a URL path or query and in the local part of an address, whatever
//! case a mail system folds it to):
//!
//! - 8 bytes of id: HMAC-SHA256(secret, "id\0" + address), a lookup key;
//! - 10 bytes of tag: HMAC-SHA256(secret, "tag\0" + id + address), checked
//!   in constant time once the id has found its address.
//!
//! The address cannot be read from a token, and no token can be made or
//! altered without the secret (80 bits of tag). A token is resolved against
//! the addresses bulletin knows (the subscribers, the ledger's recipients)
//! with the current secret and, during a rotation, the previous one. The
//! same address and secret always give the same token, so a message's
//! bytes do not change between a dry run, a send and a resend.
//!
//! Messages sent before this format carried a 32-hex-digit HMAC of the
//! address; those tokens still resolve ([`Resolver`] checks them in
//! constant time too).

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const ID_BYTES: usize = 8;
const TAG_BYTES: usize = 10;
const LEGACY_BYTES: usize = 16;

/// The keys tokens are made and checked with.
#[derive(Clone)]
pub struct Keys {
    /// Makes new tokens; checks them.
    pub current: Vec<u8>,
    /// Only checks tokens (after a rotation, until every message made with
    /// it is old).
    pub previous: Option<Vec<u8>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

impl Keys {
    fn all(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.current.as_slice()).chain(self.previous.as_deref())
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

fn id(key: &[u8], address: &str) -> [u8; ID_BYTES] {
    let full = mac(key, &[b"id\0", address.as_bytes()])
        .finalize()
        .into_bytes();
    full[..ID_BYTES].try_into().expect("8 of 32 bytes")
}

fn tag_mac(key: &[u8], id: &[u8], address: &str) -> HmacSha256 {
    mac(key, &[b"tag\0", id, address.as_bytes()])
}

/// The token of `address` (compared lower-cased) under `key`.
pub fn make(key: &[u8], address: &str) -> String {
    let address = address.to_lowercase();
    let id = id(key, &address);
    let tag = tag_mac(key, &id, &address).finalize().into_bytes();
    let mut bytes = Vec::with_capacity(ID_BYTES + TAG_BYTES);
    bytes.extend_from_slice(&id);
    bytes.extend_from_slice(&tag[..TAG_BYTES]);
    data_encoding::BASE32_DNSSEC.encode(&bytes)
}

/// Turns tokens back into the addresses they were made for.
pub struct Resolver {
    keys: Keys,
    /// Id → (address, index of the key that made it).
    by_id: HashMap<[u8; ID_BYTES], (String, usize)>,
    /// Addresses, for the tokens of earlier releases.
    addresses: Vec<String>,
}

impl Resolver {
    /// A resolver for tokens of any of `addresses`.
    pub fn new(keys: Keys, addresses: impl IntoIterator<Item = String>) -> Resolver {
        let mut addresses: Vec<String> = addresses.into_iter().map(|a| a.to_lowercase()).collect();
        addresses.sort_unstable();
        addresses.dedup();
        let mut by_id = HashMap::with_capacity(addresses.len() * 2);
        for (k, key) in keys.all().enumerate() {
            for address in &addresses {
                by_id.insert(id(key, address), (address.clone(), k));
            }
        }
        Resolver {
            keys,
            by_id,
            addresses,
        }
    }

    /// The address `token` was made for, when it is genuine.
    pub fn resolve(&self, token: &str) -> Option<&str> {
        let token = token.trim();
        if token.len() == 2 * LEGACY_BYTES {
            return self.resolve_legacy(token);
        }
        let bytes = data_encoding::BASE32_DNSSEC
            .decode(token.to_ascii_lowercase().as_bytes())
            .ok()?;
        if bytes.len() != ID_BYTES + TAG_BYTES {
            return None;
        }
        let (id, tag) = bytes.split_at(ID_BYTES);
        let (address, k) = self.by_id.get(id)?;
        let key = self.keys.all().nth(*k)?;
        // Constant time: a wrong guess learns nothing about the right tag.
        tag_mac(key, id, address)
            .verify_truncated_left(tag)
            .ok()
            .map(|()| address.as_str())
    }

    /// A token of an earlier release: the first 16 bytes, in hex, of
    /// HMAC-SHA256(secret, address). Checked against every address (there
    /// is no id to look up), in constant time each.
    fn resolve_legacy(&self, token: &str) -> Option<&str> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(token.as_bytes())
            .ok()?;
        for key in self.keys.all() {
            for address in &self.addresses {
                if mac(key, &[address.as_bytes()])
                    .verify_truncated_left(&bytes)
                    .is_ok()
                {
                    return Some(address);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(current: &str, previous: Option<&str>) -> Keys {
        Keys {
            current: current.as_bytes().to_vec(),
            previous: previous.map(|p| p.as_bytes().to_vec()),
        }
    }

    #[test]
    fn tokens_are_stable_short_and_do_not_show_the_address() {
        let a = make(b"secret", "Li.Ming@Example.com");
        assert_eq!(a, make(b"secret", "li.ming@example.com"));
        assert_ne!(a, make(b"other", "li.ming@example.com"));
        assert_eq!(a.len(), 29);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{a}"
        );
        assert!(!a.contains("li") || !a.contains("ming"));
    }

    #[test]
    fn resolves_genuine_tokens_and_refuses_forged_ones() {
        let addresses = ["a@example.com".to_owned(), "b@example.com".to_owned()];
        let resolver = Resolver::new(keys("secret", None), addresses.clone());
        let token = make(b"secret", "B@example.com");
        assert_eq!(resolver.resolve(&token), Some("b@example.com"));
        assert_eq!(
            resolver.resolve(&token.to_uppercase()),
            Some("b@example.com")
        );
        // Every single-character change is refused.
        for i in 0..token.len() {
            let mut forged = token.clone().into_bytes();
            forged[i] = if forged[i] == b'0' { b'1' } else { b'0' };
            let forged = String::from_utf8(forged).unwrap();
            assert_eq!(resolver.resolve(&forged), None, "{forged}");
        }
        assert_eq!(resolver.resolve(&token[..20]), None);
        assert_eq!(resolver.resolve(""), None);
        assert_eq!(resolver.resolve(&make(b"guess", "a@example.com")), None);
        assert_eq!(resolver.resolve(&make(b"secret", "c@example.com")), None);
    }

    #[test]
    fn the_previous_secret_still_resolves_during_a_rotation() {
        let addresses = ["a@example.com".to_owned()];
        let old = make(b"old", "a@example.com");
        let rotated = Resolver::new(keys("new", Some("old")), addresses.clone());
        assert_eq!(rotated.resolve(&old), Some("a@example.com"));
        assert_eq!(
            rotated.resolve(&make(b"new", "a@example.com")),
            Some("a@example.com")
        );
        let after = Resolver::new(keys("new", None), addresses);
        assert_eq!(after.resolve(&old), None);
    }

    #[test]
    fn tokens_of_the_earlier_format_resolve() {
        let legacy = {
            let full = mac(b"secret", &[b"a@example.com"]).finalize().into_bytes();
            data_encoding::HEXLOWER.encode(&full[..16])
        };
        let resolver = Resolver::new(keys("secret", None), ["A@example.com".to_owned()]);
        assert_eq!(resolver.resolve(&legacy), Some("a@example.com"));
        let mut wrong = legacy.clone().into_bytes();
        wrong[0] = if wrong[0] == b'a' { b'b' } else { b'a' };
        assert_eq!(resolver.resolve(&String::from_utf8(wrong).unwrap()), None);
    }
}
