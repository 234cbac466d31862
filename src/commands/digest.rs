//! `bulletin digest`: compose the digest, then preview it (`--dry-run`) or
//! send it (`--send`). Also the digest half of `bulletin check`.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use lettre::message::Mailbox;

use super::{Failure, Verbosity};
use crate::config::{Config, DigestConfig};
use crate::diag::{Location, Problem, Problems};
use crate::digest::render::{DEFAULT_HTML, DEFAULT_TEXT, Source, Templates};
use crate::digest::{self, History, Settings, message};
use crate::load::subscribers::load_subscribers;
use crate::mail::{self, Job, Outcome};
use crate::model::{Article, Subscriber};
use crate::state::{NewDelivery, Packed, State, Status};
use crate::{load, output};

/// Lists the files a dry run wrote into its folder, so the next dry run
/// there removes those it does not write again (and nothing else).
const DRY_RUN_MANIFEST: &str = ".bulletin-dry-run";

/// The environment variable holding the unsubscribe-token key.
pub const SECRET_VAR: &str = "BULLETIN_UNSUBSCRIBE_SECRET";

/// One recipient's message, ready for the wire.
pub struct Composed<'a> {
    pub subscriber: &'a Subscriber,
    pub message_id: String,
    pub subject: String,
    pub html: String,
    pub bytes: Vec<u8>,
    pub article_ids: Vec<&'a str>,
}

/// Everything `digest` needs besides the articles, validated.
pub struct Setup {
    pub digest: DigestConfig,
    pub from: Mailbox,
    pub subscribers: Vec<Subscriber>,
    pub templates: Templates,
}

fn setup(config: &Config) -> Result<Setup, Problems> {
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
    let templates = Templates::load(
        source(&digest.html, DEFAULT_HTML),
        source(&digest.text, DEFAULT_TEXT),
        &digest.subject,
        &config.path,
        config.site.zone,
    );
    let templates = templates.map_err(|p| problems.extend(p)).ok();
    match (from, templates, problems.is_empty()) {
        (Some(from), Some(templates), true) => Ok(Setup {
            digest,
            from,
            subscribers,
            templates,
        }),
        _ => Err(problems),
    }
}

/// The digest part of `check`: subscribers, and the templates rendered on
/// sample emails that take every branch a real one can (a named and a
/// nameless recipient, an item with every field and related reads and one
/// with none, with and without an unsubscribe link), so a misspelled
/// variable is caught here, not in an inbox.
pub fn check(config: &Config) -> Result<(), Problems> {
    if config.digest.is_none() {
        return Ok(());
    }
    let setup = setup(config)?;
    let site = &config.site;
    let fallback_section;
    let section = match site.sections.first() {
        Some(section) => section,
        None => {
            fallback_section = crate::model::Section {
                id: "news".into(),
                title: "News".into(),
                description: None,
                url: site.base_url.clone(),
                parent: None,
            };
            &fallback_section
        }
    };
    let now = Utc::now();
    let full = Article {
        id: "sample-full".into(),
        title: "Sample".into(),
        section: section.id.clone(),
        url: site.base_url.clone(),
        published: now,
        updated: now,
        author: Some("author".into()),
        editor: Some("editor".into()),
        source: Some("source".into()),
        keywords: vec!["keyword".into()],
        summary: Some("summary".into()),
        content_html: Some("<p>body</p>".into()),
        image: Some(site.base_url.clone()),
        related: Vec::new(),
        views: Some(1),
    };
    let bare = Article {
        id: "sample-bare".into(),
        author: None,
        editor: None,
        source: None,
        keywords: Vec::new(),
        summary: None,
        content_html: None,
        image: None,
        views: None,
        ..full.clone()
    };
    let named = Subscriber {
        email: "check@example.invalid".into(),
        name: Some("check".into()),
        sections: None,
    };
    let nameless = Subscriber {
        name: None,
        ..named.clone()
    };
    let groups = || {
        vec![digest::Group {
            section,
            items: vec![
                digest::Item {
                    article: &full,
                    related: vec![&bare, &full],
                },
                digest::Item {
                    article: &bare,
                    related: Vec::new(),
                },
            ],
        }]
    };
    let fields = digest::ArticleFields::new(site, [&full, &bare]);
    let unsubscribe = setup
        .digest
        .unsubscribe_url
        .as_deref()
        .map(|u| message::unsubscribe_url(u, Some("0123456789abcdef0123456789abcdef")));
    let issue = digest::issue_key(site, now);
    for (subscriber, unsubscribe) in [(&named, unsubscribe.as_deref()), (&nameless, None)] {
        let email = digest::Email {
            subscriber,
            groups: groups(),
        };
        setup
            .templates
            .render(digest::context(site, &issue, &email, unsubscribe, &fields))?;
    }
    Ok(())
}

/// Reads the unsubscribe secret when the URL needs one.
fn secret(digest: &DigestConfig, config: &Config) -> Result<Option<Vec<u8>>, Failure> {
    let needs = digest
        .unsubscribe_url
        .as_deref()
        .is_some_and(|u| u.contains("{{token}}"));
    if !needs {
        return Ok(None);
    }
    match std::env::var(SECRET_VAR) {
        Ok(s) if !s.is_empty() => Ok(Some(s.into_bytes())),
        _ => Err(Failure::Invalid(
            Problem::new(
                Location::file(&config.path),
                Some("digest.unsubscribe_url"),
                format!("uses {{{{token}}}}, but the environment variable {SECRET_VAR} (the key for unsubscribe tokens) is not set"),
            )
            .into(),
        )),
    }
}

/// Decides what every recipient gets this run; `history` says what each
/// already has.
pub fn plan<'a>(
    config: &'a Config,
    setup: &'a Setup,
    articles: &'a [Article],
    now: DateTime<Utc>,
    history: impl FnMut(&Subscriber) -> anyhow::Result<History>,
    say: Verbosity,
) -> Result<digest::Digest<'a>, Failure> {
    let settings = Settings {
        now,
        window: setup.digest.window,
        related: setup.digest.related,
        max_items: setup.digest.max_items,
    };
    let started = Instant::now();
    let plan = digest::plan(
        &config.site,
        articles,
        &setup.subscribers,
        &settings,
        history,
    )?;
    say.detail(format!(
        "planned {} emails over {} articles (related-read index and rankings included) in {:.3} s",
        plan.emails.len(),
        articles.len(),
        started.elapsed().as_secs_f64()
    ));
    for (article, id) in &plan.unknown_related {
        say.warn(format!(
            "article {article:?} lists related id {id:?}, which is not an article; skipped"
        ));
    }
    Ok(plan)
}

/// Renders and builds every planned message, turns each into what the
/// caller keeps with `finish` (on the composing threads), and hands those
/// to `emit` in plan order; only a few messages are in memory at a time.
pub fn compose_each<'a, T: Send>(
    config: &'a Config,
    setup: &'a Setup,
    plan: &digest::Digest<'a>,
    now: DateTime<Utc>,
    secret: Option<&[u8]>,
    finish: impl Fn(Composed<'a>) -> Result<T, Failure> + Sync,
    mut emit: impl FnMut(T) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let envelope = message::Envelope {
        site: &config.site,
        from: &setup.from,
        issue: &plan.issue,
        date: config.site.zone.local(now),
    };
    let fields = plan.fields(&config.site);
    let compose = |email: &digest::Email<'a>| -> Result<Composed<'a>, Failure> {
        let subscriber = email.subscriber;
        let unsubscribe = setup.digest.unsubscribe_url.as_deref().map(|url| {
            let token = secret.map(|key| message::unsubscribe_token(key, &subscriber.email));
            message::unsubscribe_url(url, token.as_deref())
        });
        let context = digest::context(
            &config.site,
            &plan.issue,
            email,
            unsubscribe.as_deref(),
            &fields,
        );
        let rendered = setup.templates.render(context)?;
        let message = message::build(&envelope, subscriber, &rendered, unsubscribe.as_deref())?;
        Ok(Composed {
            subscriber,
            message_id: message::message_id(&config.site, &plan.issue, &subscriber.email),
            subject: rendered.subject,
            html: rendered.html,
            bytes: message.formatted(),
            article_ids: email
                .items()
                .map(|i| -> &'a str { &i.article.id })
                .collect(),
        })
    };
    // Rendering is the costly part and independent per email: on every
    // core, while this thread hands the finished ones on, in order.
    crate::parallel::pipeline(
        &plan.emails,
        crate::parallel::cores(),
        |email| compose(email).and_then(&finish),
        |result| emit(result?),
    )
}

/// A composed message as the state store keeps it, compressed on the
/// composing thread (the thread that stores them only stores).
fn pack(mut c: Composed<'_>) -> Result<(Packed, Composed<'_>), Failure> {
    let packed = Packed::new(&c.bytes);
    (c.bytes, c.html) = (Vec::new(), String::new());
    Ok((packed, c))
}

/// Every article the digest can show, as of `now`.
fn load_archive(
    config: &Config,
    setup: &Setup,
    now: DateTime<Utc>,
) -> Result<Vec<Article>, Problems> {
    let (archive, _) = load::scan(
        config,
        || digest::Archive::new(now, setup.digest.window),
        None,
    )?;
    let mut articles = archive.articles;
    // Loading threads finish in any order: fix one, newest first.
    articles.sort_unstable_by(Article::newest_first);
    Ok(articles)
}

/// What a recipient already has, according to the state store (if any).
pub fn history_from(
    state: Option<&State>,
    issue: &str,
    subscriber: &Subscriber,
) -> anyhow::Result<History> {
    match state {
        None => Ok(History::default()),
        Some(state) => Ok(History {
            has_issue: state.has_delivery(issue, &subscriber.email)?,
            sent: state.articles_for(&subscriber.email)?,
        }),
    }
}

pub fn dry_run(
    config: &Config,
    dir: &Path,
    now: DateTime<Utc>,
    say: Verbosity,
) -> Result<(), Failure> {
    let started = Instant::now();
    let setup = setup(config)?;
    let articles = load_archive(config, &setup, now)?;
    let secret = secret(&setup.digest, config)?;
    let state = State::open_read_only(&setup.digest.state)?;
    let issue = digest::issue_key(&config.site, now);
    let plan = plan(
        config,
        &setup,
        &articles,
        now,
        |s| history_from(state.as_ref(), &issue, s),
        say,
    )?;

    // Everything is staged beside its target and moved into place only when
    // every message rendered: an error leaves the folder as it was.
    let mut staging = output::Staging::scratch(dir);
    let mut rows = String::new();
    let mut used = std::collections::HashSet::new();
    let (mut emails, mut items) = (0usize, 0usize);
    compose_each(config, &setup, &plan, now, secret.as_deref(), Ok, |c| {
        let mut name = file_name(&c.subscriber.email);
        while !used.insert(name.clone()) {
            name.push('_');
        }
        staging.add(&format!("{name}.eml"), &c.bytes)?;
        staging.add(&format!("preview/{name}.html"), c.html.as_bytes())?;
        let e = |s: &str| html_escape::encode_text(s).into_owned();
        let a = |s: &str| html_escape::encode_double_quoted_attribute(s).into_owned();
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><a href=\"preview/{}.html\">HTML</a> · <a href=\"{}.eml\">.eml</a></td></tr>\n",
            e(&c.subscriber.email),
            e(c.subscriber.name.as_deref().unwrap_or("")),
            e(&c.subject),
            a(&name),
            a(&name),
        ));
        emails += 1;
        items += c.article_ids.len();
        Ok(())
    })?;
    let index = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>digest {issue} (dry run)</title></head>\n<body style=\"font-family:sans-serif\">\n<h1>Digest {issue}: dry run</h1>\n<p>{emails} emails, {items} items; {} subscribers with nothing new; {} already have this issue.</p>\n<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n<tr><th>to</th><th>name</th><th>subject</th><th>preview</th></tr>\n{rows}</table>\n</body></html>\n",
        plan.nothing_new, plan.already_sent,
    );
    staging.add("index.html", index.as_bytes())?;
    staging.commit_owned_set(DRY_RUN_MANIFEST)?;
    say.summary(format!(
        "dry run of digest {}: {emails} emails ({items} items) for {} subscribers, {} with nothing new, {} already sent; written to {} in {:.2} s",
        plan.issue,
        setup.subscribers.len(),
        plan.nothing_new,
        plan.already_sent,
        dir.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// A file name a person recognises: the address, with anything unsafe replaced.
fn file_name(email: &str) -> String {
    email
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.+-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

/// The environment variable holding the SMTP password.
pub const PASSWORD_VAR: &str = "BULLETIN_SMTP_PASSWORD";

/// How a send ended.
pub struct SendSummary {
    /// Every recipient of every issue has their copy, or was refused for good.
    pub complete: bool,
}

/// `digest --send`: fix this run's messages in the state store, then deliver
/// everything still pending (this issue's and any interrupted earlier run's).
pub fn send(config: &Config, now: DateTime<Utc>, say: Verbosity) -> Result<SendSummary, Failure> {
    let started = Instant::now();
    let setup = setup(config)?;
    let articles = load_archive(config, &setup, now)?;
    let secret = secret(&setup.digest, config)?;
    let smtp = config.smtp.clone().expect("setup requires [smtp]");
    let password = match std::env::var(PASSWORD_VAR) {
        Ok(p) if !p.is_empty() => Some(p),
        _ if !smtp.username.is_empty() && smtp.transport == crate::config::Transport::Smtp => {
            return Err(Failure::Invalid(
                Problem::new(
                    Location::file(&config.path),
                    Some("smtp.username"),
                    format!("is set, but the environment variable {PASSWORD_VAR} (the SMTP password) is not"),
                )
                .into(),
            ));
        }
        _ => None,
    };
    let tls_roots = match &smtp.ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            Failure::Invalid(
                Problem::new(
                    Location::file(path),
                    Some("smtp.ca_file"),
                    format!("cannot read: {e}"),
                )
                .into(),
            )
        })?),
        None => None,
    };

    let _lock = lock(&setup.digest.state)?;
    let mut state = State::open(&setup.digest.state)?;
    let issue = digest::issue_key(&config.site, now);
    let stamp = now.to_rfc3339();
    let already = state.count(&issue, Status::Sent)?;
    let plan = plan(
        config,
        &setup,
        &articles,
        now,
        |s| history_from(Some(&state), &issue, s),
        say,
    )?;
    let fixing = Instant::now();
    state.fix_issue(&issue, &stamp, |fixer| {
        compose_each(
            config,
            &setup,
            &plan,
            now,
            secret.as_deref(),
            pack,
            |(packed, c)| {
                let delivery = NewDelivery {
                    recipient: &c.subscriber.email,
                    message_id: &c.message_id,
                    message: &packed,
                    article_ids: c.article_ids.clone(),
                };
                fixer.add(&delivery).map_err(Failure::Error)
            },
        )
    })?;

    say.detail(format!(
        "composed and fixed this issue's messages in the state database in {:.2} s",
        fixing.elapsed().as_secs_f64()
    ));
    let pending = state.pending()?;
    let mut jobs = Vec::with_capacity(pending.len());
    for (key, p) in pending.iter().enumerate() {
        match p.address.parse::<lettre::Address>() {
            Ok(recipient) => jobs.push(Job { key, recipient }),
            Err(e) => state.record(
                &p.issue,
                &p.recipient,
                Status::Failed,
                Some(&e.to_string()),
                &stamp,
            )?,
        }
    }
    let from: lettre::Address = setup.from.email.clone();
    let settings = mail::Settings {
        retries: smtp.retries,
        retry_delay: smtp.retry_delay(),
        smtp,
        from,
        password,
        tls_roots,
    };

    let total = jobs.len();
    let progress = crate::progress::Delivery::start(total, say);
    let (sender, receiver) = std::sync::mpsc::channel();
    let (mut sent, mut rejected, mut deferred) = (0usize, 0usize, 0usize);
    let mut reasons: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    std::thread::scope(|scope| -> Result<(), Failure> {
        let state_path = setup.digest.state.as_path();
        let pending = &pending;
        let fetch = move |key: usize| {
            let p = &pending[key];
            crate::state::read_message(state_path, &p.issue, &p.recipient)
        };
        scope.spawn(move || mail::deliver(jobs, &settings, &fetch, sender));
        // Each outcome is committed before the next is read: a crash loses
        // at most the one in flight.
        // Outcomes that arrive together are committed together (one sync to
        // disk); every sender waits until its outcome is on disk.
        while let Ok(first) = receiver.recv() {
            let mut batch = vec![first];
            batch.extend(receiver.try_iter());
            let outcomes: Vec<crate::state::Outcome> = batch
                .iter()
                .map(|report| {
                    let p = &pending[report.key];
                    let (status, error) = match &report.outcome {
                        Outcome::Sent => (Status::Sent, None),
                        Outcome::Rejected(why) => (Status::Failed, Some(why.as_str())),
                        Outcome::Deferred(why) => (Status::Pending, Some(why.as_str())),
                    };
                    crate::state::Outcome {
                        issue: &p.issue,
                        recipient: &p.recipient,
                        status,
                        error,
                    }
                })
                .collect();
            state.record_all(&outcomes, &Utc::now().to_rfc3339())?;
            for report in &batch {
                let p = &pending[report.key];
                match &report.outcome {
                    Outcome::Sent => {
                        sent += 1;
                        say.detail(format!("sent {} to {}", p.message_id, p.address));
                    }
                    Outcome::Rejected(why) => {
                        rejected += 1;
                        say.warn(format!("{} refused the digest for good: {why}", p.address));
                    }
                    Outcome::Deferred(why) => {
                        deferred += 1;
                        *reasons.entry(why.clone()).or_insert(0usize) += 1;
                        say.detail(format!("{} deferred: {why}", p.address));
                    }
                }
                progress.record(&report.outcome);
                // Recorded: the sender may take its next message.
                let _ = report.recorded.send(());
            }
        }
        Ok(())
    })?;
    drop(progress);

    // Housekeeping: a failure here loses nothing (the next run retries it).
    if let Err(e) = state.drop_final_messages() {
        say.warn(format!("could not drop delivered messages: {e:#}"));
    }
    let failed_issue = state.count(&issue, Status::Failed)?;
    let pending_left = state.count_all(Status::Pending)?;
    let complete = pending_left == 0 && failed_issue == 0;
    let summary = format!(
        "digest {issue}: {sent} sent, {} already had it, {rejected} failed permanently, {pending_left} pending \
         ({} to send this run; {} with nothing new) in {:.2} s",
        already,
        total,
        plan.nothing_new,
        started.elapsed().as_secs_f64()
    );
    if complete {
        say.summary(summary);
    } else {
        ignore_closed!(std::io::stderr(), "{summary}");
        // Why messages are still pending, most common first.
        let mut reasons: Vec<(String, usize)> = reasons.into_iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (why, n) in reasons.iter().take(5) {
            ignore_closed!(std::io::stderr(), "  {n} pending: {why}");
        }
        let untried = total.saturating_sub(sent + rejected + deferred);
        if untried > 0 {
            ignore_closed!(
                std::io::stderr(),
                "  {untried} pending: not tried, the run stopped early"
            );
        }
        if deferred > 0 || pending_left > 0 {
            ignore_closed!(
                std::io::stderr(),
                "bulletin: delivery incomplete; run `bulletin digest --send` again to finish the pending messages"
            );
        }
    }
    Ok(SendSummary { complete })
}

/// Holds an exclusive lock beside the state database for the whole run; the
/// OS releases it when the process ends, however it ends.
fn lock(state: &Path) -> Result<std::fs::File, Failure> {
    let path = state.with_extension("lock");
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Failure::Busy(format!(
            "another `bulletin digest --send` is running (it holds {}); nothing was sent by this one",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(anyhow!(e)
            .context(format!("cannot lock {}", path.display()))
            .into()),
    }
}
