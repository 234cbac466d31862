//! Everything the digest needs besides the articles, loaded and validated
//! together so `check`, a dry run and a send report the same problems.

use lettre::message::Mailbox;

use super::render::{Language, Source, Templates};
use crate::config::{Config, DigestConfig, DkimConfig};
use crate::diag::{Location, Problem, Problems};
use crate::dkim::{Key, Signer};
use crate::load::subscribers::load_subscribers;
use crate::model::Subscriber;

/// `[digest]`, the sender, the subscribers and the compiled templates.
pub struct Setup {
    pub digest: DigestConfig,
    pub from: Mailbox,
    pub subscribers: Vec<Subscriber>,
    pub templates: Templates,
    /// Signs every message when `[dkim]` is set.
    pub dkim: Option<Signer>,
}

impl Setup {
    /// Reads the subscribers and templates the config names; every problem
    /// found, not the first.
    pub fn load(config: &Config) -> Result<Setup, Problems> {
        let mut problems = Problems::default();
        let at_config = || Location::file(&config.path);
        let Some(digest) = config.digest.clone() else {
            return Err(Problem::new(
                at_config(),
                Some("digest"),
                "the config has no [digest] table",
            )
            .into());
        };
        let from = match &config.smtp {
            Some(smtp) => smtp.from.parse::<Mailbox>().ok(),
            None => {
                problems.push(Problem::new(
                    at_config(),
                    Some("smtp.from"),
                    "the digest needs [smtp] from = \"Name <address>\"",
                ));
                None
            }
        };
        if let Some(url) = &digest.unsubscribe_url {
            problems.extend(check_unsubscribe_url(url, &config.path));
        }
        let subscribers = load_subscribers(&digest.subscribers, &config.site).unwrap_or_else(|p| {
            problems.extend(p);
            Vec::new()
        });
        fn source<'p>(path: &'p Option<std::path::PathBuf>, builtin: &'static str) -> Source<'p> {
            match path {
                Some(p) => Source::File(p),
                None => Source::Builtin(builtin),
            }
        }
        // Without a file, the built-in template in the site's language.
        let builtin = Language::of(&config.site.language).builtin();
        let templates = Templates::load(
            source(&digest.html, builtin.html),
            source(&digest.text, builtin.text),
            &digest.subject,
            &config.path,
            config.site.zone,
        );
        let templates = templates.map_err(|p| problems.extend(p)).ok();
        let dkim = match (&config.dkim, &from) {
            (Some(dkim), Some(from)) => load_signer(dkim, from, &config.path)
                .map_err(|p| problems.extend(p))
                .ok(),
            _ => None,
        };
        match (from, templates, problems.is_empty()) {
            (Some(from), Some(templates), true) => Ok(Setup {
                digest,
                from,
                subscribers,
                templates,
                dkim,
            }),
            _ => Err(problems),
        }
    }

    /// Whether the unsubscribe URL or the bounce address needs a
    /// per-recipient token (and so the secret).
    pub fn needs_secret(&self) -> bool {
        self.digest.bounce_address.is_some()
            || self
                .digest
                .unsubscribe_url
                .as_deref()
                .is_some_and(|u| u.contains("{{token}}"))
    }
}

/// The `[dkim]` signer: its key read and checked (PEM, RSA of 2048 bits or
/// more or Ed25519) and its domain aligned with the From address's.
fn load_signer(
    dkim: &DkimConfig,
    from: &Mailbox,
    config: &std::path::Path,
) -> Result<Signer, Problems> {
    let mut problems = Problems::default();
    let mut say = |key: &str, message: String| {
        problems.push(Problem::new(Location::file(config), Some(key), message));
    };
    let from_domain = from.email.domain();
    let from_ascii = idna::domain_to_ascii(from_domain).unwrap_or_else(|_| from_domain.into());
    if !crate::dkim::aligned(&dkim.domain, &from_ascii) {
        say(
            "dkim.domain",
            format!(
                "{:?} is neither the From address's domain {from_ascii:?} nor a parent of it: receivers would not count the signature for DMARC",
                dkim.domain
            ),
        );
    }
    let path = dkim.key_file.display();
    let key = match std::fs::read_to_string(&dkim.key_file) {
        Ok(pem) => Key::from_pem(&pem)
            .map_err(|e| say("dkim.key_file", format!("{path} {e}")))
            .ok(),
        Err(e) => {
            say("dkim.key_file", format!("cannot read {path}: {e}"));
            None
        }
    };
    match key {
        Some(key) if problems.is_empty() => Ok(Signer {
            domain: dkim.domain.to_ascii_lowercase(),
            selector: dkim.selector.clone(),
            key,
        }),
        _ => Err(problems),
    }
}

/// A web `unsubscribe_url` must be what one-click unsubscribe (RFC 8058)
/// needs: HTTPS, and a `{{token}}` that says who is leaving. (`mailto:`
/// URLs carry no one-click header and need neither.)
fn check_unsubscribe_url(url: &str, config: &std::path::Path) -> Problems {
    let mut problems = Problems::default();
    let lower = url.trim().to_ascii_lowercase();
    let mut say = |message: &str| {
        problems.push(Problem::new(
            Location::file(config),
            Some("digest.unsubscribe_url"),
            message,
        ));
    };
    if lower.starts_with("http://") {
        say(
            "must be https:// (one-click unsubscribe, RFC 8058, is a POST to an HTTPS URL; mail providers ignore it otherwise)",
        );
    }
    if (lower.starts_with("http://") || lower.starts_with("https://")) && !url.contains("{{token}}")
    {
        say(
            "has no {{token}}: the link cannot say who unsubscribes (add e.g. \"?token={{token}}\" and serve it with `bulletin serve`)",
        );
    }
    problems
}
