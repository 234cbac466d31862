//! `bulletin digest`: compose the digest, then preview it (`--dry-run`) or
//! send it (`--send`). Reads the secrets from the environment; the rest is
//! `digest` (plan, compose, preview), `ledger` and `deliver`.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{Clock, Done};
use crate::Failure;
use crate::archive::{Archive, Past, Publication};
use crate::config::{Config, SmtpConfig, Transport as TransportKind};
use crate::deliver::sendmail::{self, Sendmail};
use crate::deliver::smtp::Smtp;
use crate::deliver::{self, Policy, Relay, RunLock, Sending, Summary, Transport, Wanted};
use crate::diag::{Location, Problem, Problems};
use crate::digest::compose::Composer;
use crate::digest::setup::Setup;
use crate::digest::{self, Earlier, History};
use crate::ledger::{self, Ledger, Status};
use crate::model::{IssueKey, RecipientKey, Shard, State};
use crate::report::{self, Verbosity};
use crate::token;

use super::secrets::{self, SECRET_VAR};

/// Reads the unsubscribe secret when the URL needs one.
fn secret(setup: &Setup, config: &Config) -> Result<Option<Vec<u8>>, Failure> {
    if !setup.needs_secret() {
        return Ok(None);
    }
    let key = if setup.digest.bounce_address.is_some() {
        "digest.bounce_address"
    } else {
        "digest.unsubscribe_url"
    };
    match secrets::var(SECRET_VAR) {
        Some(s) => Ok(Some(s.into_bytes())),
        None => Err(Problem::new(
            Location::file(&config.path),
            Some(key),
            format!("uses {{{{token}}}}, but the environment variable {SECRET_VAR} (the key for unsubscribe tokens) is not set"),
        )
        .into()),
    }
}

/// The archive (`digest.archive`) and the issues already in it; the
/// records it had to skip are warned about.
fn archive_past(config: &Config, say: Verbosity) -> Result<Option<(Archive<'_>, Past)>, Failure> {
    let Some(archive) = Archive::of(config) else {
        return Ok(None);
    };
    let past = archive.past()?;
    for warning in &past.warnings {
        say.warn(warning);
    }
    Ok(Some((archive, past)))
}

/// Writes this run's archive files, and says so.
fn publish(
    archive: Option<&(Archive<'_>, Past)>,
    publication: Option<&Publication>,
    say: Verbosity,
) -> Result<(), Failure> {
    let (Some((archive, _)), Some(publication)) = (archive, publication) else {
        return Ok(());
    };
    let written = archive.publish(publication)?;
    say.summary(format!(
        "archive: {} ({} issues; {} files changed, {} unchanged) in {}",
        publication
            .page_url
            .as_deref()
            .unwrap_or("no page for this issue, nothing new since the last one"),
        publication.issues,
        written.changed,
        written.unchanged,
        archive.dir().display()
    ));
    Ok(())
}

/// Keeps the subscribers of `shard` only (all without one); says so.
fn shard_subscribers(setup: &mut Setup, shard: Option<Shard>, say: Verbosity) {
    let Some(shard) = shard else {
        return;
    };
    let all = setup.subscribers.len();
    setup.subscribers.retain(|s| shard.contains(&s.email));
    say.summary(format!(
        "shard {shard}: {} of {all} subscribers",
        setup.subscribers.len()
    ));
}

pub fn dry_run(
    config: &Config,
    dir: &Path,
    now: DateTime<Utc>,
    now_given: bool,
    shard: Option<Shard>,
    say: Verbosity,
) -> Result<(), Failure> {
    let started = Instant::now();
    let mut setup = Setup::load(config)?;
    shard_subscribers(&mut setup, shard, say);
    let articles = digest::load_archive(config, setup.digest.window, now)?;
    let secret = secret(&setup, config)?;
    let ledger = ledger::open_read_only(&setup.digest.state, secrets::state_password().as_deref())?;
    let ledger = ledger.as_deref().map(|l| l as &dyn Ledger);
    let issue = IssueKey::of(&config.site, now);
    if let Some(ledger) = ledger
        && !now_given
        && let Some(newest) = deliver::newer_issue(ledger, &issue)?
    {
        say.warn(format!(
            "issue {newest} has been sent already, newer than this one ({issue}): \
             has the clock gone back? `digest --send` would refuse to send it"
        ));
    }
    let archive = archive_past(config, say)?;
    let archived = archive
        .as_ref()
        .map(|(_, past)| past.carried_before(&issue));
    let plan = digest::plan_reported(
        &config.site,
        &setup,
        &articles,
        now,
        Earlier {
            suppressed: &digest::suppressed(ledger)?,
            archived: archived.as_ref(),
        },
        |s| History::from_ledger(ledger, &issue, s),
        say,
    )?;
    let publication = archive
        .as_ref()
        .map(|(archive, past)| archive.render(past, &plan.issue, &plan.public));
    let composer = Composer::new(&config.site, &setup, &plan, now, secret.as_deref())
        .with_archive_url(publication.as_ref().and_then(|p| p.page_url.clone()));
    let preview = digest::preview::write(dir, &plan, &composer)?;
    composer.report_shared(say);
    // After the messages composed: a template mistake publishes nothing.
    publish(archive.as_ref(), publication.as_ref(), say)?;
    say.summary(format!(
        "dry run of digest {}: {} emails ({} items) for {} subscribers, {} with nothing new, {} already sent, {} suppressed; written to {} in {:.2} s",
        plan.issue,
        preview.emails,
        preview.items,
        setup.subscribers.len(),
        plan.nothing_new,
        plan.already_sent,
        plan.suppressed,
        dir.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The transports `[smtp]` (or each `[[smtp]]` table) names, with their
/// secrets from the environment; every missing password at once.
fn transports(config: &Config) -> Result<Vec<Box<dyn Transport>>, Failure> {
    let first = config
        .smtp
        .as_ref()
        .expect("the digest setup requires [smtp]");
    if first.transport == TransportKind::Sendmail {
        // The command sees only what it needs of our environment: never
        // the secrets above.
        let environment = sendmail::ENVIRONMENT
            .iter()
            .filter_map(|name| std::env::var_os(name).map(|value| ((*name).into(), value)))
            .collect();
        return Ok(vec![Box::new(Sendmail {
            command: first.sendmail.clone(),
            environment,
        })]);
    }
    let several = config.relays.len() > 1;
    let mut problems = Problems::default();
    let mut transports: Vec<Box<dyn Transport>> = Vec::with_capacity(config.relays.len());
    for (i, smtp) in config.relays.iter().enumerate() {
        let key = |field: &str| {
            if several {
                format!("smtp[{i}].{field}")
            } else {
                format!("smtp.{field}")
            }
        };
        let password = match missing_password(smtp) {
            Ok(password) => password,
            Err(message) => {
                problems.push(Problem::new(
                    Location::file(&config.path),
                    Some(&key("username")),
                    message,
                ));
                None
            }
        };
        let tls_roots = match &smtp.ca_file {
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    problems.push(Problem::new(
                        Location::file(path),
                        Some(&key("ca_file")),
                        format!("cannot read: {e}"),
                    ));
                    None
                }
            },
            None => None,
        };
        transports.push(Box::new(Smtp {
            config: smtp.clone(),
            password,
            tls_roots,
        }));
    }
    if problems.is_empty() {
        Ok(transports)
    } else {
        Err(Failure::Invalid(problems))
    }
}

/// A relay's password from its variable ([`SmtpConfig::password_var`]),
/// or what to say when a username needs one and it is not set.
pub(super) fn missing_password(smtp: &SmtpConfig) -> Result<Option<String>, String> {
    let var = smtp.password_var();
    match secrets::var(&var) {
        Some(p) => Ok(Some(p)),
        None if !smtp.username.is_empty() => Err(format!(
            "is set, but the environment variable {var} (the SMTP password{}) is not",
            smtp.name
                .as_deref()
                .map_or_else(String::new, |n| format!(" of relay {n:?}"))
        )),
        None => Ok(None),
    }
}

/// How many parts runs sharing a ledger split an issue into.
const PARTS: u64 = 1024;

/// On a ledger several runs share (PostgreSQL), an issue's recipients fall
/// into [`PARTS`] parts by a hash of the address; each run composes part
/// after part from its own random place, claiming each part first
/// (`MessageStore::claim_part`), and skips the parts other live runs hold
/// and the recipients fixed already: runs started together compose
/// disjoint parts. Whoever fixes a message first holds it (see
/// `ledger::postgres`); a message composed twice is sent once. An SQLite
/// ledger has one run at a time: plan order, nothing skipped.
fn shared_composing<'a>(
    composer: Composer<'a>,
    state: &State,
    ledger: &dyn Ledger,
    issue: &IssueKey,
) -> Composer<'a> {
    if let State::Sqlite(_) = state {
        return composer;
    }
    use std::hash::BuildHasher;
    let start = std::collections::hash_map::RandomState::new().hash_one(std::process::id()) % PARTS;
    let part = |address: &str| {
        xxhash_rust::xxh3::xxh3_64(RecipientKey::of(address).as_str().as_bytes()) % PARTS
    };
    let store = ledger.messages();
    let issue = issue.clone();
    let decided = std::sync::Mutex::new(HashSet::<u64>::new());
    composer.shared(
        Box::new(move |address: &str| (part(address) + PARTS - start) % PARTS),
        Box::new(move |address: &str| {
            let p = part(address);
            // A part once ours stays ours; another run's is asked about
            // again (that run may have ended).
            let mut decided = decided.lock().expect("parts lock");
            let mine = decided.contains(&p)
                || store.claim_part(&issue, p as u32).unwrap_or(true) && decided.insert(p);
            drop(decided);
            // An error here only costs a message composed in vain.
            !mine
                || store
                    .is_fixed(&issue, &RecipientKey::of(address))
                    .unwrap_or(false)
        }),
    )
}

/// `digest --send`: deliver everything still pending (this issue's and any
/// interrupted earlier run's), and this run's messages as they are composed
/// and fixed in the ledger.
/// `now_given`: the time came from `--now` (a deliberate rerun), not the
/// clock.
pub fn send(
    config: &Config,
    now: DateTime<Utc>,
    now_given: bool,
    shard: Option<Shard>,
    clock: Clock,
    say: Verbosity,
) -> Result<Done, Failure> {
    let started = Instant::now();
    let mut setup = Setup::load(config)?;
    shard_subscribers(&mut setup, shard, say);
    let articles = digest::load_archive(config, setup.digest.window, now)?;
    let secret = secret(&setup, config)?;
    let transports = transports(config)?;
    let relays: Vec<Relay<'_>> = transports
        .iter()
        .zip(&config.relays)
        .map(|(transport, smtp)| Relay {
            name: smtp.label(),
            transport: transport.as_ref(),
            policy: Policy {
                retries: smtp.retries,
                retry_delay: smtp.retry_delay,
                max_rate: smtp.max_rate,
            },
            weight: smtp.weight,
        })
        .collect();

    if setup.digest.unsubscribe_url.is_none() {
        say.warn(
            "the digest has no unsubscribe link (digest.unsubscribe_url): Gmail and Yahoo expect \
             one-click unsubscribe from bulk senders, and the law in most places requires a way out",
        );
    }
    // Dropped last: after every connection to the database is closed.
    let lock = RunLock::take_for(&setup.digest.state)?;
    let mut ledger = ledger::open(&setup.digest.state, secrets::state_password().as_deref())?;
    let reclaimed = lock.reclaim(ledger.as_mut())?;
    if reclaimed > 0 {
        say.detail(format!(
            "{reclaimed} messages held by an earlier run that did not finish are back to send"
        ));
    }
    // Who the subscriber file says left goes on the list for good (the CMS
    // may later drop the row; the unsubscribe must stay).
    ledger.suppress(&digest::left_subscribers(&setup, now))?;
    let issue = IssueKey::of(&config.site, now);
    deliver::check_clock(ledger.as_ref(), &issue, now, now_given)?;
    let already = ledger.count(&issue, Status::Sent)?;
    let suppressed = digest::suppressed(Some(ledger.as_ref()))?;
    let archive = archive_past(config, say)?;
    let archived = archive
        .as_ref()
        .map(|(_, past)| past.carried_before(&issue));
    let plan = digest::plan_reported(
        &config.site,
        &setup,
        &articles,
        now,
        Earlier {
            suppressed: &suppressed,
            archived: archived.as_ref(),
        },
        |s| History::from_ledger(Some(ledger.as_ref()), &issue, s),
        say,
    )?;
    let publication = archive
        .as_ref()
        .map(|(archive, past)| archive.render(past, &plan.issue, &plan.public));
    let composer = Composer::new(&config.site, &setup, &plan, now, secret.as_deref())
        .with_archive_url(publication.as_ref().and_then(|p| p.page_url.clone()));
    let composer = shared_composing(composer, &setup.digest.state, ledger.as_ref(), &issue);
    // Published before any message of the issue is sent (the link works
    // when they arrive); messages are composed while the first ones go out,
    // so this is before composing, too.
    publish(archive.as_ref(), publication.as_ref(), say)?;

    let from = setup.from.email.clone();
    // Who may still get a pending message: the subscribers, less those who
    // left or are suppressed.
    let subscribers: HashSet<RecipientKey> = setup
        .subscribers
        .iter()
        .filter(|s| !digest::is_suppressed(s, &suppressed))
        .map(|s| RecipientKey::of(&s.email))
        .collect();
    let wanted = Wanted {
        subscribers: &subscribers,
        shard,
        // A window reaching before the year 1 expires nothing.
        oldest_issue: now
            .checked_sub_signed(setup.digest.window)
            .filter(|t| config.site.zone.representable(*t))
            .map_or_else(
                || IssueKey::stored(String::new()),
                |t| IssueKey::of(&config.site, t),
            ),
    };
    // The envelope sender is derived here, per message, at send time (it is
    // not stored): with `bounce_address`, the recipient's token in it (VERP).
    let bounce_address = &setup.digest.bounce_address;
    let key = secret.as_deref();
    let sender = move |address: &str| -> lettre::Address {
        match (bounce_address, key) {
            (Some(pattern), Some(key)) => pattern
                .with_token(&token::make(key, address))
                .parse()
                .unwrap_or_else(|_| from.clone()),
            _ => from.clone(),
        }
    };
    // This issue's messages are composed and fixed while the first ones
    // are sent: each goes out once its batch is committed.
    let fresh = deliver::Fresh {
        issue: &issue,
        at: now,
        source: &composer,
    };
    let sending = Sending {
        relays: &relays,
        sender: &sender,
        clock,
        say,
    };
    let mut tally = deliver::send(ledger.as_mut(), Some(fresh), &wanted, &sending)?;
    composer.report_shared(say);
    if let State::Postgres(_) = &setup.digest.state {
        // Runs sharing the ledger that died while this one sent left their
        // claims: send those too (a few rounds at most).
        for _ in 0..3 {
            let back = lock.reclaim(ledger.as_mut())?;
            if back == 0 {
                break;
            }
            say.detail(format!(
                "{back} messages held by a run that died meanwhile are back to send"
            ));
            let more = deliver::send(ledger.as_mut(), None, &wanted, &sending)?;
            tally.add(more);
        }
    }
    // Housekeeping: a failure here loses nothing (the next run retries it).
    if let Err(e) = ledger.drop_final_messages() {
        say.warn(format!("could not drop delivered messages: {e:#}"));
    }
    let summary = Summary {
        issue: issue.clone(),
        tally,
        already,
        failed_issue: ledger.count(&issue, Status::Failed)?,
        pending_left: ledger.pending_left()?,
        nothing_new: plan.nothing_new,
        suppressed: plan.suppressed,
        seconds: started.elapsed().as_secs_f64(),
    };
    if summary.complete() {
        say.summary(summary.headline());
        for line in summary.relay_lines() {
            say.summary(line);
        }
        Ok(Done::Complete)
    } else {
        report::stderr_line(&summary.headline());
        for line in summary.relay_lines() {
            report::stderr_line(&line);
        }
        for line in summary.details() {
            report::stderr_line(&line);
        }
        Ok(Done::Incomplete)
    }
}
