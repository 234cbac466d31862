//! The digest: what is new for each subscriber, with related reads.
//!
//! [`plan`] decides, for one run, which articles each recipient gets (their
//! sections, inside the window, not sent before, newest first, capped) and
//! picks related reads for each. [`context`] turns one email into the data
//! the templates see. Both are pure: history comes in as a closure, the
//! clock as a value.

pub mod catalog;
pub mod compose;
mod guard;
pub mod message;
pub mod preview;
pub mod related;
pub mod render;
pub mod sample;
pub mod setup;
pub mod shape;
pub mod wrap;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::Failure;
use crate::config::Config;
use crate::diag::Problems;
use crate::ledger::Ledger;
use crate::model::{Article, ArticleId, IssueKey, RecipientKey, Section, Site, Subscriber};
use crate::report::Verbosity;
pub use catalog::Catalog;
use related::RelatedIndex;
use setup::Setup;
use shape::Personal;

impl<'a> Digest<'a> {
    /// The template fields of everything the emails show, built once.
    pub fn fields(&self, site: &Site) -> ArticleFields<'a> {
        ArticleFields::new(
            site,
            self.emails
                .iter()
                .flat_map(|e| e.items())
                .flat_map(|item| std::iter::once(item.article).chain(item.related.iter().copied())),
        )
    }
}

/// What the templates see of each article: its fields as a JSON object,
/// built once per run on every core (an article is in many emails, and
/// each copy would otherwise format its dates and look up its section again).
pub struct ArticleFields<'a> {
    by_id: HashMap<&'a str, Value>,
}

impl<'a> ArticleFields<'a> {
    pub fn new(site: &Site, articles: impl IntoIterator<Item = &'a Article>) -> Self {
        let unique = Article::unique(articles);
        let values = crate::parallel::map(&unique, crate::parallel::cores(), |a| {
            json!({
                "id": a.id,
                "title": a.title,
                "url": a.url.as_str(),
                "summary": crate::feed::summary_text(a),
                "author": a.author,
                "editor": a.editor,
                "source": a.source,
                "published": site.zone.local(a.published).to_rfc3339(),
                "updated": site.zone.local(a.updated).to_rfc3339(),
                "image": a.image.as_ref().map(|u| u.as_str()),
                "keywords": a.keywords,
                "views": a.views,
                "section": a.section,
                "section_title": site.section(a.section.as_str()).map(|s| s.title.as_str()),
            })
        });
        ArticleFields {
            by_id: unique.iter().map(|a| a.id.as_str()).zip(values).collect(),
        }
    }

    /// A copy of `article`'s fields, to add to one email's context.
    fn get(&self, article: &Article) -> Value {
        self.by_id
            .get(article.id.as_str())
            .cloned()
            .unwrap_or(Value::Null)
    }
}

/// One recipient's email.
pub struct Email<'a> {
    pub subscriber: &'a Subscriber,
    pub groups: Vec<Group<'a>>,
}

impl<'a> Email<'a> {
    pub fn items(&self) -> impl Iterator<Item = &Item<'a>> {
        self.groups.iter().flat_map(|g| &g.items)
    }
}

pub struct Group<'a> {
    pub section: &'a Section,
    pub items: Vec<Item<'a>>,
}

pub struct Item<'a> {
    pub article: &'a Article,
    pub related: Vec<&'a Article>,
}

/// What one recipient has had before this run.
#[derive(Default)]
pub struct History {
    /// They already have a message for this issue.
    pub has_issue: bool,
    /// Article ids already sent to them (or fixed for them, in this issue
    /// or a later one: see [`Ledger::articles_for`]).
    pub sent: HashSet<ArticleId>,
}

/// The addresses on the ledger's suppression list (none without a ledger).
/// Whether `subscriber` gets nothing: the subscriber file says they left,
/// or the address is on the suppression list.
pub fn is_suppressed(subscriber: &Subscriber, suppressed: &HashSet<RecipientKey>) -> bool {
    subscriber.left.is_some() || suppressed.contains(&RecipientKey::of(&subscriber.email))
}

pub fn suppressed(ledger: Option<&dyn Ledger>) -> anyhow::Result<HashSet<RecipientKey>> {
    Ok(match ledger {
        Some(ledger) => ledger
            .suppressions()?
            .into_iter()
            .map(|s| s.address)
            .collect(),
        None => HashSet::new(),
    })
}

/// The subscribers the subscriber file itself marks as gone (a CSV
/// `status`), as entries for the suppression list.
pub fn left_subscribers(setup: &Setup, now: DateTime<Utc>) -> Vec<crate::ledger::Suppression> {
    let file = setup
        .digest
        .subscribers
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    setup
        .subscribers
        .iter()
        .filter_map(|s| {
            Some(crate::ledger::Suppression {
                address: RecipientKey::of(&s.email),
                reason: s.left?,
                at: now,
                source: format!("subscribers file {file}"),
            })
        })
        .collect()
}

impl History {
    /// What the ledger (if there is one yet) says `subscriber` has.
    pub fn from_ledger(
        ledger: Option<&dyn Ledger>,
        issue: &IssueKey,
        subscriber: &Subscriber,
    ) -> anyhow::Result<History> {
        let Some(ledger) = ledger else {
            return Ok(History::default());
        };
        let recipient = RecipientKey::of(&subscriber.email);
        Ok(History {
            has_issue: ledger.has_delivery(issue, &recipient)?,
            sent: ledger.articles_for(&recipient, issue)?,
        })
    }
}

/// Every article the digest can show, as of `now`: the new ones in full,
/// the others compact (see [`Catalog`]).
pub fn load_archive(
    config: &Config,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<Catalog, Problems> {
    let loaded = crate::load::scan(config, || Catalog::new(now, window), None)?;
    Ok(loaded.sink.finish(Some(loaded.records)))
}

/// What earlier runs left that a plan respects, besides each recipient's
/// history: the suppression list, and with a public archive the articles
/// its earlier issues carried.
pub struct Earlier<'s> {
    pub suppressed: &'s HashSet<RecipientKey>,
    pub archived: Option<&'s HashSet<ArticleId>>,
}

/// [`plan`] with what `-v` and warnings say about it.
pub fn plan_reported<'a>(
    site: &'a Site,
    setup: &'a Setup,
    articles: &'a Catalog,
    now: DateTime<Utc>,
    earlier: Earlier<'_>,
    mut history: impl FnMut(&Subscriber) -> anyhow::Result<History>,
    say: Verbosity,
) -> Result<Digest<'a>, Failure> {
    let settings = Settings {
        now,
        window: setup.digest.window,
        related: setup.digest.related,
        max_items: setup.digest.max_items,
        suppressed: earlier.suppressed,
        archived: earlier.archived,
    };
    let started = std::time::Instant::now();
    let plan = plan(site, articles, &setup.subscribers, &settings, |s| {
        history(s).map_err(Failure::from)
    })?;
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

/// The digest for one run.
pub struct Digest<'a> {
    pub issue: IssueKey,
    pub emails: Vec<Email<'a>>,
    /// Recipients with nothing new.
    pub nothing_new: usize,
    /// Recipients who already have this issue.
    pub already_sent: usize,
    /// Subscribers on the suppression list: they get nothing.
    pub suppressed: usize,
    /// Editor's related ids that name no article, to warn about.
    pub unknown_related: Vec<(ArticleId, ArticleId)>,
    /// The issue as its public page shows it (`digest.archive`): what a
    /// subscriber of every section gets whose history is the earlier
    /// issues' pages. Empty without an archive, or when nothing is new.
    pub public: Vec<Group<'a>>,
}

pub struct Settings<'s> {
    pub now: DateTime<Utc>,
    pub window: Duration,
    pub related: usize,
    pub max_items: usize,
    /// Addresses on the suppression list.
    pub suppressed: &'s HashSet<RecipientKey>,
    /// With a public archive: the ids of the articles earlier issues'
    /// pages carried; the plan then makes [`Digest::public`] too.
    pub archived: Option<&'s HashSet<ArticleId>>,
}

/// The oldest time a digest at `now` carries: `window` before it, or the
/// beginning of time for a window longer than the calendar.
fn window_start(now: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    now.checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The digest for `settings.now` over `articles` (a catalog loaded for
/// the same clock and window: the new articles are the ones it holds in
/// full).
pub fn plan<'a, E: From<Problems>>(
    site: &'a Site,
    articles: &'a Catalog,
    subscribers: &'a [Subscriber],
    settings: &Settings<'_>,
    mut history: impl FnMut(&Subscriber) -> Result<History, E>,
) -> Result<Digest<'a>, E> {
    let since = window_start(settings.now, settings.window);
    debug_assert!(articles.since() <= since, "the catalog's window is shorter");
    let mut fresh: Vec<&Article> = articles
        .fresh()
        .filter(|a| a.published > since && a.published <= settings.now)
        .collect();
    fresh.sort_by(|a, b| Article::newest_first(a, b));
    let most_listed = settings
        .max_items
        .saturating_mul(settings.related.saturating_add(1))
        .saturating_add(settings.related);
    let index = RelatedIndex::new(articles, settings.now).with_depth(most_listed);

    let mut digest = Digest {
        issue: IssueKey::of(site, settings.now),
        emails: Vec::new(),
        nothing_new: 0,
        already_sent: 0,
        suppressed: 0,
        unknown_related: Vec::new(),
        public: Vec::new(),
    };
    // First what each subscriber gets...
    let mut chosen_for: Vec<(&Subscriber, Vec<&Article>)> = Vec::new();
    for subscriber in subscribers {
        if is_suppressed(subscriber, settings.suppressed) {
            digest.suppressed += 1;
            continue;
        }
        let past = history(subscriber)?;
        if past.has_issue {
            digest.already_sent += 1;
            continue;
        }
        // The sections this subscriber gets (children included), as a set:
        // checked once per fresh article.
        let wanted = subscriber.wanted(site);
        let chosen: Vec<&Article> = fresh
            .iter()
            .copied()
            .filter(|a| {
                wanted
                    .as_ref()
                    .is_none_or(|w| w.contains(a.section.as_str()))
                    && !past.sent.contains(&a.id)
            })
            .take(settings.max_items)
            .collect();
        if chosen.is_empty() {
            digest.nothing_new += 1;
        } else {
            chosen_for.push((subscriber, chosen));
        }
    }
    // ...and what the public archive's page of this issue carries: every
    // section, less what earlier issues' pages carried...
    let public: Vec<&Article> = match settings.archived {
        Some(carried) => fresh
            .iter()
            .copied()
            .filter(|a| !carried.contains(&a.id))
            .take(settings.max_items)
            .collect(),
        None => Vec::new(),
    };
    // ...then the related reads of every article some email or the page
    // carries, ranked once each on all cores...
    if settings.related > 0 {
        let mut seen = HashSet::new();
        let items: Vec<&Article> = chosen_for
            .iter()
            .flat_map(|(_, chosen)| chosen.iter().copied())
            .chain(public.iter().copied())
            .filter(|a| seen.insert(&a.id))
            .collect();
        let mut unknown = index.prerank(&items);
        unknown.sort();
        unknown.dedup();
        digest.unknown_related = unknown;
    }
    // ...then each email's items (and the page's) in their order, with the
    // catalog indexes of their reads...
    let placed_for: Vec<(&Subscriber, Vec<Placed>)> = chosen_for
        .into_iter()
        .map(|(subscriber, chosen)| {
            let placed = placed(site, &chosen, &index, settings.related);
            (subscriber, placed)
        })
        .collect();
    let public = placed(site, &public, &index, settings.related);
    // ...the old articles among the reads read back from the input, each
    // once...
    let shown: Vec<u32> = placed_for
        .iter()
        .map(|(_, placed)| placed)
        .chain([&public])
        .flat_map(|placed| placed.iter().flat_map(|(_, _, related)| related))
        .copied()
        .collect();
    articles.decode(&shown)?;
    // ...and each email, its items grouped by section with their reads.
    for (subscriber, placed) in placed_for {
        let groups = grouped(site, placed, articles);
        digest.emails.push(Email { subscriber, groups });
    }
    digest.public = grouped(site, public, articles);
    Ok(digest)
}

/// An item in its place: its section's position, the article, and the
/// catalog indexes of its related reads.
type Placed<'a> = (usize, &'a Article, Vec<u32>);

/// One email's items in section order (config order, newest first in
/// each), each with its related reads.
fn placed<'a>(
    site: &Site,
    chosen: &[&'a Article],
    index: &RelatedIndex<'a>,
    related: usize,
) -> Vec<Placed<'a>> {
    let mut listed: HashSet<&str> = chosen.iter().map(|a| a.id.as_str()).collect();
    // A stable sort of the items by their section's place (not a pass over
    // every section for each email).
    let mut placed: Vec<(usize, &Article)> = chosen
        .iter()
        .filter_map(|&a| Some((site.sections.position(a.section.as_str())?, a)))
        .collect();
    placed.sort_by_key(|&(place, _)| place);
    placed
        .into_iter()
        .map(|(place, article)| {
            let related = index.related(article, related, &mut listed, &mut Vec::new());
            (place, article, related)
        })
        .collect()
}

/// Placed items grouped by section, their reads as articles (decoded).
fn grouped<'a>(site: &'a Site, placed: Vec<Placed<'a>>, articles: &'a Catalog) -> Vec<Group<'a>> {
    let mut groups: Vec<Group> = Vec::new();
    for (place, article, related) in placed {
        let related = related.into_iter().map(|i| articles.article(i)).collect();
        let item = Item { article, related };
        match groups.last_mut() {
            Some(group) if std::ptr::eq(group.section, &site.sections[place]) => {
                group.items.push(item)
            }
            _ => groups.push(Group {
                section: &site.sections[place],
                items: vec![item],
            }),
        }
    }
    groups
}

/// The preview text an inbox shows after the subject (hidden in the HTML
/// part): the first items' titles, about as much as a preview line holds,
/// so the preview shows news rather than the masthead and the greeting.
fn preheader(email: &Email<'_>) -> String {
    /// Inboxes show 40 to 140 characters; the titles stop after this many.
    const ENOUGH: usize = 90;
    const MOST: usize = 150;
    let mut out = String::new();
    let mut chars = 0;
    for item in email.items() {
        if chars >= ENOUGH {
            break;
        }
        if !out.is_empty() {
            out.push_str(" · ");
            chars += 3;
        }
        out.push_str(&item.article.title);
        chars += item.article.title.chars().count();
    }
    crate::text::truncate_chars(&out, MOST).into_owned()
}

/// The data the templates receive for one email (documented in
/// `docs/templates.md`).
pub fn context(
    site: &Site,
    issue: &IssueKey,
    email: &Email<'_>,
    personal: &Personal<'_>,
    archive_url: Option<&str>,
    fields: &ArticleFields<'_>,
) -> Value {
    let article = |a: &Article| fields.get(a);
    let sections: Vec<Value> = email
        .groups
        .iter()
        .map(|g| {
            let items: Vec<Value> = g
                .items
                .iter()
                .map(|item| {
                    let mut value = article(item.article);
                    value["related"] = Value::Array(item.related.iter().map(|r| article(r)).collect());
                    value
                })
                .collect();
            // Nested values are moved in, not passed to `json!` (which would
            // serialize, i.e. copy, them again).
            let mut section = json!({ "id": g.section.id, "title": g.section.title, "url": g.section.url.as_str() });
            section["items"] = Value::Array(items);
            section
        })
        .collect();
    let mut context = json!({
        "site": {
            "title": site.title,
            "url": site.base_url.as_str(),
            "description": site.description,
            "language": site.language,
        },
        "issue": issue.as_str(),
        "date": issue.as_str(),
        "recipient": { "email": personal.email, "name": personal.name },
        "item_count": email.items().count(),
        "preheader": preheader(email),
        "unsubscribe_url": personal.unsubscribe_url,
        // Null (falsy) without an archive page for this issue.
        "archive_url": archive_url,
    });
    context["sections"] = Value::Array(sections);
    context
}
