//! From a plan to messages: each email rendered through the templates and
//! built into the exact bytes that go on the wire (and into the ledger).
//!
//! Rendering is the costly part and independent per email, so
//! [`Composer::each`] runs it on every core while the calling thread takes
//! the finished messages in plan order; only a few are in memory at once.

use chrono::{DateTime, Utc};
use lettre::message::header::{HeaderName, HeaderValue};

use super::message::{self, Envelope};
use super::render::Rendered;
use super::setup::Setup;
use super::shape::cache::{Key, Shapes, Use};
use super::shape::{NameKind, Personal};
use super::{ArticleFields, Digest, Email};
use crate::Failure;
use crate::model::{ArticleId, Site, Subscriber};

/// One recipient's message, ready for the wire.
pub struct Composed<'a> {
    pub subscriber: &'a Subscriber,
    pub message_id: String,
    pub subject: String,
    pub html: String,
    pub bytes: Vec<u8>,
    pub article_ids: Vec<&'a ArticleId>,
}

/// Composes the messages of one planned issue.
pub struct Composer<'a> {
    site: &'a Site,
    setup: &'a Setup,
    plan: &'a Digest<'a>,
    envelope: Envelope<'a>,
    fields: ArticleFields<'a>,
    /// The key of unsubscribe tokens, when the URL has `{{token}}`.
    secret: Option<&'a [u8]>,
    /// This issue's public page, when the archive has one.
    archive_url: Option<String>,
    /// When several runs share the issue: where this one starts in the
    /// plan, and which recipients to skip (another run fixed theirs).
    shared: Option<Shared>,
    /// Renderings shared by emails of the same content, when the templates
    /// allow it ([`super::shape`]).
    shapes: Option<Shapes>,
}

/// See [`Composer::shared`].
struct Shared {
    order: Order,
    skip: Skip,
}

/// Whether a recipient's message is made elsewhere (by another run).
pub type Skip = Box<dyn Fn(&str) -> bool + Sync>;

/// Where a recipient comes in this run's order of composing.
pub type Order = Box<dyn Fn(&str) -> u64 + Sync>;

impl<'a> Composer<'a> {
    pub fn new(
        site: &'a Site,
        setup: &'a Setup,
        plan: &'a Digest<'a>,
        now: DateTime<Utc>,
        secret: Option<&'a [u8]>,
    ) -> Composer<'a> {
        Composer {
            site,
            setup,
            plan,
            envelope: Envelope {
                site,
                from: &setup.from,
                issue: &plan.issue,
                date: site.zone.local(now),
            },
            fields: plan.fields(site),
            secret,
            archive_url: None,
            shared: None,
            shapes: setup.templates.shareable().then(|| {
                let unsubscribe = setup.digest.unsubscribe_url.is_some();
                Shapes::new(plan.emails.iter().map(|email| {
                    Key::of(
                        email,
                        NameKind::of(email.subscriber.name.as_deref()),
                        unsubscribe,
                    )
                }))
            }),
        }
    }

    /// For an issue several runs compose at once: composes the plan's
    /// emails in the order `order` gives their addresses (plan order among
    /// equals), and skips each recipient for whom `skip` says yes (asked on
    /// the composing threads, just before composing).
    pub fn shared(mut self, order: Order, skip: Skip) -> Composer<'a> {
        self.shared = Some(Shared { order, skip });
        self
    }

    /// Gives every message the link to this issue's public page
    /// (`{{archive_url}}`, "view in browser").
    pub fn with_archive_url(mut self, url: Option<String>) -> Composer<'a> {
        self.archive_url = url;
        self
    }

    /// The site the messages are from.
    pub fn site(&self) -> &'a Site {
        self.site
    }

    /// The unsubscribe URL for one recipient, its token filled in, as the
    /// ASCII URI a header can carry.
    fn unsubscribe_url(&self, subscriber: &Subscriber) -> Option<String> {
        let url = self.setup.digest.unsubscribe_url.as_deref()?;
        let token = self
            .secret
            .map(|key| crate::token::make(key, &subscriber.email));
        Some(message::unsubscribe_url(url, token.as_deref()))
    }

    /// One email's message.
    pub fn compose(&self, email: &Email<'a>) -> Result<Composed<'a>, Failure> {
        let subscriber = email.subscriber;
        let unsubscribe = self.unsubscribe_url(subscriber);
        let personal = Personal::of(subscriber, unsubscribe.as_deref());
        let rendered = self.render(email, &personal)?;
        let mut message = message::build(
            &self.envelope,
            subscriber,
            &rendered,
            unsubscribe.as_deref(),
        )?;
        if let Some(id) = &self.setup.digest.feedback_id {
            message
                .headers_mut()
                .insert_raw(HeaderValue::dangerous_new_pre_encoded(
                    HeaderName::new_from_ascii_str("Feedback-ID"),
                    id.clone(),
                    id.clone(),
                ));
        }
        let mut bytes = message.formatted();
        // Signed here, once: the stored bytes carry the signature, so a
        // dry run shows it and a resent copy is the same message.
        if let Some(signer) = &self.setup.dkim {
            bytes = signer.sign(&bytes, self.envelope.date.timestamp());
        }
        Ok(Composed {
            subscriber,
            message_id: message::message_id(self.site, &self.plan.issue, &subscriber.email),
            subject: rendered.subject,
            html: rendered.html,
            bytes,
            article_ids: email
                .items()
                .map(|i| -> &'a ArticleId { &i.article.id })
                .collect(),
        })
    }

    /// One email's subject and parts: filled in from the shape it shares
    /// with other emails, or rendered on its own.
    fn render(&self, email: &Email<'a>, personal: &Personal<'_>) -> Result<Rendered, Failure> {
        let templates = &self.setup.templates;
        let context = |personal: &Personal<'_>| {
            super::context(
                self.site,
                &self.plan.issue,
                email,
                personal,
                self.archive_url.as_deref(),
                &self.fields,
            )
        };
        let own = || templates.render(context(personal));
        let Some(shapes) = &self.shapes else {
            return Ok(own()?);
        };
        let name = NameKind::of(personal.name);
        let unsubscribe = personal.unsubscribe_url.is_some();
        let key = Key::of(email, name, unsubscribe);
        match shapes.take(&key) {
            Use::Shape(shape) => Ok(shape.fill(personal)),
            Use::Alone => Ok(own()?),
            Use::Make => {
                let placeholders = Personal::placeholders(name, unsubscribe);
                let shape = templates.render_shape(context(&placeholders));
                let rendered = own();
                // Used only when it gives this email exactly.
                let shape =
                    shape.filter(|s| rendered.as_ref().is_ok_and(|r| s.fill(personal) == *r));
                shapes.made(key, shape);
                Ok(rendered?)
            }
        }
    }

    /// What `-v` says of shared renderings, once composing is done.
    pub fn report_shared(&self, say: crate::report::Verbosity) {
        if let Some(shapes) = &self.shapes {
            let shared = shapes.shared();
            say.detail(format!(
                "composing: {} emails filled in from {} shared renderings",
                shared.filled, shared.shapes
            ));
        }
    }

    /// Who gets a message, in plan order.
    pub fn recipients(&self) -> impl Iterator<Item = &'a Subscriber> + '_ {
        self.plan.emails.iter().map(|email| email.subscriber)
    }

    /// Composes every planned message, turns each into what the caller keeps
    /// with `finish` (on the composing threads), and hands those to `emit`
    /// in plan order.
    pub fn each<T: Send>(
        &self,
        finish: impl Fn(Composed<'a>) -> Result<T, Failure> + Sync,
        emit: impl FnMut(T) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let mut emit = emit;
        let Some(shared) = &self.shared else {
            return crate::parallel::pipeline(
                &self.plan.emails,
                crate::parallel::cores(),
                |email| self.compose(email).and_then(&finish),
                |result| emit(result?),
            );
        };
        let mut emails: Vec<&Email> = self.plan.emails.iter().collect();
        emails.sort_by_cached_key(|email| (shared.order)(&email.subscriber.email));
        // Skipped now, asked again after the first pass: the run that held
        // them may have ended meanwhile.
        let skipped = std::sync::Mutex::new(Vec::new());
        for pass in 0..2 {
            let list = match pass {
                0 => std::mem::take(&mut emails),
                _ => {
                    let mut again = std::mem::take(&mut *skipped.lock().expect("skipped lock"));
                    again.sort_by_cached_key(|email: &&Email| {
                        (shared.order)(&email.subscriber.email)
                    });
                    again
                }
            };
            crate::parallel::pipeline(
                &list,
                crate::parallel::cores(),
                |email| {
                    if (shared.skip)(&email.subscriber.email) {
                        skipped.lock().expect("skipped lock").push(*email);
                        return Ok(None);
                    }
                    self.compose(email).and_then(&finish).map(Some)
                },
                |result| match result? {
                    Some(made) => emit(made),
                    None => Ok(()),
                },
            )?;
        }
        Ok(())
    }
}
