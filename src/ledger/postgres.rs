//! The PostgreSQL ledger: the same record as the SQLite one (`schema.rs`
//! mirrors its version 6), in a database that any number of `digest
//! --send` processes, on one machine or several, share.
//!
//! How they share an issue:
//!
//! - **Fixing once.** A message is fixed by inserting its `deliveries` row
//!   with `ON CONFLICT DO NOTHING`; only the run whose insert wins writes
//!   its outbox row (claimed by itself) and its bytes, in the same
//!   transaction. [`Ledger::commit_fixed`] says which messages another run
//!   fixed first: the caller never sends those. (Runs claim parts of the
//!   issue before composing them — `compose_claims`, see
//!   `MessageStore::claim_part` — and skip recipients already fixed, so
//!   they compose disjoint parts.)
//! - **Claims without leases.** Each run has a random 64-bit id and holds
//!   the session-level advisory lock on it (`pg_advisory_lock`) for as
//!   long as its connection lives; its claims store that id. The server
//!   drops the lock when the session ends, however the process ends
//!   (kill -9, a lost machine: once the connection is gone). A run's
//!   claims are released by another only when `pg_try_advisory_lock` on
//!   their id succeeds — that is, when their run is gone
//!   ([`Ledger::release_abandoned`]). No timer can take a message from a
//!   run that is still alive.
//! - **Short transactions.** Every write is one short transaction; none is
//!   held open while a message is sent. Unclaimed messages are claimed with
//!   `FOR UPDATE SKIP LOCKED`. Writes that meet a deadlock are retried.
//!
//! Durability is PostgreSQL's (`synchronous_commit`, on by default): a
//! message is sent only after the commit of its bytes returned. TLS to the
//! server is rustls (`tokio-postgres-rustls`), the certificate always
//! verified.

mod schema;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use postgres::config::SslMode;
use postgres::error::SqlState;
use postgres::{Client, GenericClient, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::sqlite::numbers::{decode, encode};
use super::{
    BounceEvent, BounceKind, Fixer, Fixing, Ledger, MessageStore, NewDelivery, Outcome, Pending,
    Reason, Recorded, SoftRule, Status, Suppression, unpack,
};
use crate::Failure;
use crate::model::{ArticleId, IssueKey, PgTarget, PgTls, RecipientKey};
use schema::{MIGRATIONS, SCHEMA, SCHEMA_LOCK, SCHEMA_VERSION};

/// How a connection is made (the password from the environment, given by
/// the caller).
fn config(target: &PgTarget, password: Option<&str>) -> postgres::Config {
    let mut config = postgres::Config::new();
    config
        .host(&target.host)
        .port(target.port)
        .user(&target.user)
        .dbname(&target.dbname)
        .application_name("bulletin")
        .connect_timeout(std::time::Duration::from_secs(10));
    if let Some(password) = password {
        config.password(password);
    }
    config.ssl_mode(match target.tls {
        PgTls::Disable => SslMode::Disable,
        PgTls::Prefer => SslMode::Prefer,
        PgTls::Require => SslMode::Require,
    });
    config
}

/// TLS to the database (rustls): the server's certificate must chain to
/// `sslrootcert`'s certificates, or else to Mozilla's roots, and name the
/// host (verified whenever TLS is used, whatever `sslmode` says).
fn tls(target: &PgTarget) -> Result<MakeRustlsConnect> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match &target.root_cert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .with_context(|| format!("cannot read sslrootcert {}", path.display()))?;
            if certs.is_empty() {
                bail!("sslrootcert {} holds no certificate", path.display());
            }
            for cert in certs {
                roots
                    .add(cert)
                    .with_context(|| format!("sslrootcert {}", path.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Whether a failed write may simply be tried again (a deadlock with
/// another run, or a serialization failure).
fn retryable(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<postgres::Error>())
        .filter_map(postgres::Error::code)
        .any(|c| *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
}

/// The PostgreSQL ledger (see the module's notes).
pub struct Postgres {
    pub(super) client: RefCell<Client>,
    config: postgres::Config,
    tls: MakeRustlsConnect,
    /// Names the database in errors.
    label: String,
    /// This run's id; this session holds the advisory lock on it.
    run: i64,
    /// Article ids by number, as read so far.
    names: RefCell<HashMap<i64, ArticleId>>,
}

impl Postgres {
    fn connect(
        target: &PgTarget,
        password: Option<&str>,
    ) -> Result<(Client, postgres::Config, MakeRustlsConnect)> {
        let config = config(target, password);
        let tls = tls(target).with_context(|| format!("state database {target}"))?;
        let client = config
            .connect(tls.clone())
            .with_context(|| format!("cannot connect to the state database {target}"))?;
        Ok((client, config, tls))
    }

    /// Connects (creating or migrating the schema when needed) for writing,
    /// as a new run holding the advisory lock on its id.
    pub fn open(target: &PgTarget, password: Option<&str>) -> Result<Postgres> {
        let label = format!("state database {target}");
        let (mut client, config, tls) = Self::connect(target, password)?;
        migrate(&mut client).with_context(|| label.clone())?;
        let run = take_run_id(&mut client).with_context(|| label.clone())?;
        Ok(Postgres {
            client: RefCell::new(client),
            config,
            tls,
            label,
            run,
            names: RefCell::default(),
        })
    }

    /// Connects for reading only (dry runs, `check`, listing); `None` when
    /// the database has no ledger yet (nothing has been sent). Never
    /// creates or migrates anything.
    pub fn open_read_only(target: &PgTarget, password: Option<&str>) -> Result<Option<Postgres>> {
        let label = format!("state database {target}");
        let (mut client, config, tls) = Self::connect(target, password)?;
        client
            .batch_execute("SET default_transaction_read_only = on")
            .with_context(|| label.clone())?;
        match version(&mut client).with_context(|| label.clone())? {
            None => return Ok(None),
            Some(v) if v > SCHEMA_VERSION => bail!(
                "{label}: the state database has schema version {v}, written by a newer bulletin; this release reads version {SCHEMA_VERSION}"
            ),
            Some(v) if v < SCHEMA_VERSION => bail!(
                "{label}: the state database has schema version {v}, this release reads version {SCHEMA_VERSION}; run `digest --send` once to migrate it"
            ),
            Some(_) => {}
        }
        Ok(Some(Postgres {
            client: RefCell::new(client),
            config,
            tls,
            label,
            run: 0,
            names: RefCell::default(),
        }))
    }

    fn labelled<T>(&self, result: Result<T>) -> Result<T> {
        result.with_context(|| self.label.clone())
    }

    /// Runs `write` in a transaction, again when it meets a deadlock.
    fn write<T>(&self, mut write: impl FnMut(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut client = self.client.borrow_mut();
        let mut tries = 0;
        loop {
            tries += 1;
            let result = (|| {
                let mut tx = client.transaction()?;
                let value = write(&mut tx)?;
                tx.commit()?;
                Ok(value)
            })();
            match result {
                Err(e) if tries < 8 && retryable(&e) => {
                    std::thread::sleep(std::time::Duration::from_millis(10 * tries));
                }
                other => return self.labelled(other),
            }
        }
    }

    /// The ids of the numbers in `lists`, looked up once.
    fn names_into(&self, lists: &[Vec<u8>], ids: &mut HashSet<ArticleId>) -> Result<()> {
        let mut numbers = Vec::new();
        for list in lists {
            numbers.extend(decode(list)?);
        }
        let mut names = self.names.borrow_mut();
        let missing: Vec<i64> = numbers
            .iter()
            .copied()
            .filter(|n| !names.contains_key(n))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() {
            if names.len() > 200_000 {
                names.clear();
            }
            let rows = self.client.borrow_mut().query(
                "SELECT id, article FROM articles WHERE id = ANY($1)",
                &[&missing],
            )?;
            for row in rows {
                names.insert(row.get(0), ArticleId::from(row.get::<_, &str>(1)));
            }
        }
        for n in numbers {
            match names.get(&n) {
                Some(id) => {
                    ids.insert(id.clone());
                }
                None => bail!(
                    "a stored article list names article number {n}, which is not in the table"
                ),
            }
        }
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Closing the session releases the run's lock as well; said
        // anyway, for a connection pooler that keeps sessions.
        if self.run != 0 {
            let _ = self
                .client
                .get_mut()
                .execute("SELECT pg_advisory_unlock($1)", &[&self.run]);
        }
    }
}

/// The schema version, `None` when there is no ledger.
fn version(client: &mut impl GenericClient) -> Result<Option<i32>> {
    // Read from the catalog's table, under this statement's snapshot (the
    // catalog cache behind `to_regclass` may not have seen a table another
    // session just created).
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables
                            WHERE schemaname = current_schema() AND tablename = 'bulletin_schema')",
            &[],
        )?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client.query_opt("SELECT max(version) FROM bulletin_schema", &[])?;
    Ok(row.and_then(|r| r.get::<_, Option<i32>>(0)))
}

/// Creates or migrates the schema: one transaction under [`SCHEMA_LOCK`].
fn migrate(client: &mut Client) -> Result<()> {
    match version(client)? {
        Some(SCHEMA_VERSION) => return Ok(()),
        Some(v) if v > SCHEMA_VERSION => bail!(
            "the state database has schema version {v}, written by a newer bulletin; this release reads version {SCHEMA_VERSION}"
        ),
        _ => {}
    }
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&SCHEMA_LOCK.0, &SCHEMA_LOCK.1],
    )?;
    // Read again under the lock: another process may have done it.
    let found = version(&mut tx)?;
    match found {
        Some(v) if v >= SCHEMA_VERSION => return Ok(()),
        None => {
            tx.batch_execute(SCHEMA)
                .context("cannot create the tables of the state database")?;
            tx.batch_execute("CREATE TABLE bulletin_schema (version integer NOT NULL)")?;
            tx.execute(
                "INSERT INTO bulletin_schema VALUES ($1)",
                &[&SCHEMA_VERSION],
            )?;
        }
        Some(v) => {
            for migration in &MIGRATIONS[(v as usize).max(1) - 1..] {
                tx.batch_execute(migration)?;
            }
            tx.execute(
                "UPDATE bulletin_schema SET version = $1",
                &[&SCHEMA_VERSION],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Picks a random run id and takes its session-level advisory lock.
fn take_run_id(client: &mut Client) -> Result<i64> {
    loop {
        let id: i64 = client
            .query_one(
                "SELECT ('x' || md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text))::bit(64)::bigint",
                &[],
            )?
            .get(0);
        if id == 0 {
            continue;
        }
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&id])?
            .get(0);
        if locked {
            return Ok(id);
        }
    }
}

/// The messages still to send (callers add conditions and the order).
const PENDING: &str = "
SELECT i.key, r.key, o.address, o.message_id
FROM outbox o JOIN issues i ON i.id = o.issue JOIN recipients r ON r.id = o.recipient";

fn pending_row(row: &postgres::Row) -> Pending {
    Pending {
        issue: IssueKey::stored(row.get(0)),
        recipient: RecipientKey::stored(row.get(1)),
        address: row.get(2),
        message_id: row.get(3),
    }
}

/// Records one outcome (only on a row still pending and not held by
/// another run: a final outcome is never overwritten), and takes the
/// message out of the outbox when final, or releases it when not.
const RECORD_OUTCOME: &str = "
WITH n AS (SELECT i.id AS issue, r.id AS recipient FROM issues i, recipients r
           WHERE i.key = $1 AND r.key = $2),
u AS (UPDATE deliveries d SET status = $3, attempts = d.attempts + 1, last_error = $4, at = $5
      FROM n WHERE d.issue = n.issue AND d.recipient = n.recipient AND d.status = 0
        AND coalesce((SELECT claimed_by FROM outbox o
                      WHERE o.issue = d.issue AND o.recipient = d.recipient), $6) = $6
      RETURNING d.issue, d.recipient),
gone AS (DELETE FROM outbox o USING u
         WHERE $3 <> 0 AND o.issue = u.issue AND o.recipient = u.recipient),
released AS (UPDATE outbox o SET claimed_by = NULL FROM u
             WHERE $3 = 0 AND o.issue = u.issue AND o.recipient = u.recipient)
SELECT count(*) FROM u";

const SUPPRESS: &str = "
INSERT INTO suppressions (address, reason, created_at, source) VALUES ($1, $2, $3, $4)
ON CONFLICT (address) DO NOTHING";

fn record_in(
    tx: &mut Transaction<'_>,
    outcomes: &[Outcome<'_>],
    now: DateTime<Utc>,
    run: i64,
) -> Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let (at, stamp) = (now.timestamp(), now.to_rfc3339());
    let record = tx.prepare(RECORD_OUTCOME)?;
    for o in outcomes {
        tx.query_one(
            &record,
            &[
                &o.issue.as_str(),
                &o.recipient.as_str(),
                &i16::from(o.status.code()),
                &o.error,
                &at,
                &run,
            ],
        )?;
        if o.refused {
            let source = format!("SMTP reply: {}", o.error.unwrap_or("5xx to RCPT"));
            tx.execute(
                SUPPRESS,
                &[
                    &o.recipient.as_str(),
                    &Reason::Bounced.as_str(),
                    &stamp,
                    &source,
                ],
            )?;
        }
    }
    Ok(())
}

/// An owned copy of a message to fix (what [`Ledger::fix_issue`] collects).
struct Owned {
    address: String,
    message_id: String,
    packed: Vec<u8>,
    articles: Vec<String>,
}

/// Fixes `deliveries` of `issue` in `tx` for run `run`; returns the indexes
/// of those another run had fixed already (their rows are left alone).
fn fix_in(
    tx: &mut Transaction<'_>,
    issue: &IssueKey,
    at: DateTime<Utc>,
    run: i64,
    deliveries: &[Owned],
) -> Result<Vec<usize>> {
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    tx.execute(
        "INSERT INTO issues (key) VALUES ($1) ON CONFLICT (key) DO NOTHING",
        &[&issue.as_str()],
    )?;
    let issue_id: i32 = tx
        .query_one("SELECT id FROM issues WHERE key = $1", &[&issue.as_str()])?
        .get(0);
    // Keys and article ids in one order in every run: two runs inserting
    // the same ones at once wait for each other, never deadlock.
    let mut articles: Vec<&str> = deliveries
        .iter()
        .flat_map(|d| d.articles.iter().map(String::as_str))
        .collect();
    articles.sort_unstable();
    articles.dedup();
    tx.execute(
        "INSERT INTO articles (article) SELECT unnest($1::text[]) ON CONFLICT (article) DO NOTHING",
        &[&articles],
    )?;
    let numbers: HashMap<String, i64> = tx
        .query(
            "SELECT article, id FROM articles WHERE article = ANY($1)",
            &[&articles],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let keys: Vec<String> = deliveries
        .iter()
        .map(|d| RecipientKey::of(&d.address).as_str().to_owned())
        .collect();
    let mut sorted: Vec<&str> = keys.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    tx.execute(
        "INSERT INTO recipients (key, first) SELECT unnest($1::text[]), $2 ON CONFLICT (key) DO NOTHING",
        &[&sorted, &issue_id],
    )?;
    let ids: HashMap<String, i64> = tx
        .query(
            "SELECT key, id FROM recipients WHERE key = ANY($1)",
            &[&sorted],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // In recipient-number order (see above).
    let mut order: Vec<usize> = (0..deliveries.len()).collect();
    order.sort_by_key(|&i| ids[&keys[i]]);
    let recipient: Vec<i64> = order.iter().map(|&i| ids[&keys[i]]).collect();
    let lists: Vec<Vec<u8>> = order
        .iter()
        .map(|&i| {
            let mut n: Vec<i64> = deliveries[i].articles.iter().map(|a| numbers[a]).collect();
            encode(&mut n)
        })
        .collect();
    let won: HashSet<i64> = tx
        .query(
            "INSERT INTO deliveries (issue, recipient, status, attempts, at, articles)
             SELECT $1, r, 0, 0, $3, a FROM unnest($2::bigint[], $4::bytea[]) AS x(r, a)
             ON CONFLICT (issue, recipient) DO NOTHING RETURNING recipient",
            &[&issue_id, &recipient, &at.timestamp(), &lists],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut lost = Vec::new();
    let (mut r, mut address, mut message_id, mut bytes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &i in &order {
        let id = ids[&keys[i]];
        if !won.contains(&id) {
            lost.push(i);
            continue;
        }
        r.push(id);
        address.push(deliveries[i].address.as_str());
        message_id.push(deliveries[i].message_id.as_str());
        bytes.push(deliveries[i].packed.as_slice());
    }
    lost.sort_unstable();
    if r.is_empty() {
        return Ok(lost);
    }
    tx.execute(
        "INSERT INTO outbox (issue, recipient, address, message_id, claimed_by)
         SELECT $1, r, a, m, $5 FROM unnest($2::bigint[], $3::text[], $4::text[]) AS x(r, a, m)",
        &[&issue_id, &r, &address, &message_id, &run],
    )?;
    tx.execute(
        "INSERT INTO messages (issue, recipient, encoding, bytes)
         SELECT $1, r, 'lz4', b FROM unnest($2::bigint[], $3::bytea[]) AS x(r, b)",
        &[&issue_id, &r, &bytes],
    )?;
    // A recipient's messages still pending from earlier issues (and not
    // held by another run) are superseded: dropped, never sent.
    let why = format!("superseded by issue {issue}");
    tx.execute(
        "WITH old AS (
             SELECT o.issue, o.recipient FROM outbox o JOIN issues i ON i.id = o.issue
             WHERE o.recipient = ANY($1) AND i.key < $2 AND coalesce(o.claimed_by, $5) = $5
             FOR UPDATE OF o),
         gone AS (DELETE FROM outbox o USING old
                  WHERE o.issue = old.issue AND o.recipient = old.recipient)
         UPDATE deliveries d SET status = 3, last_error = $3, at = $4 FROM old
         WHERE d.issue = old.issue AND d.recipient = old.recipient AND d.status = 0",
        &[&r, &issue.as_str(), &why, &at.timestamp(), &run],
    )?;
    Ok(lost)
}

fn owned(d: &NewDelivery<'_>) -> Owned {
    Owned {
        address: d.address.to_owned(),
        message_id: d.message_id.to_owned(),
        packed: d.message.as_bytes().to_vec(),
        articles: d
            .article_ids
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
    }
}

/// Collects an issue's messages for [`Ledger::fix_issue`].
struct Collect(Vec<Owned>);

impl Fixer for Collect {
    fn add(&mut self, d: &NewDelivery<'_>) -> Result<()> {
        self.0.push(owned(d));
        Ok(())
    }
}

/// A time as the bounce events keep it: UTC with `Z`, so text order is
/// time order.
fn sortable(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Ledger for Postgres {
    fn has_delivery(&self, issue: &IssueKey, recipient: &RecipientKey) -> Result<bool> {
        let result = self.client.borrow_mut().query_opt(
            "SELECT 1 FROM deliveries
             WHERE issue = (SELECT id FROM issues WHERE key = $1)
               AND recipient = (SELECT id FROM recipients WHERE key = $2)",
            &[&issue.as_str(), &recipient.as_str()],
        );
        self.labelled(result.map(|r| r.is_some()).map_err(Into::into))
    }

    fn articles_for(
        &self,
        recipient: &RecipientKey,
        issue: &IssueKey,
    ) -> Result<HashSet<ArticleId>> {
        let result = (|| -> Result<HashSet<ArticleId>> {
            // One look into the table per issue since the recipient's
            // first (the primary key is (issue, recipient)).
            let lists: Vec<Vec<u8>> = self
                .client
                .borrow_mut()
                .query(
                    "SELECT d.articles FROM recipients r
                     JOIN issues i ON i.id >= r.first
                     JOIN deliveries d ON d.issue = i.id AND d.recipient = r.id
                     WHERE r.key = $1 AND (d.status = 1 OR (d.status = 0 AND i.key >= $2))",
                    &[&recipient.as_str(), &issue.as_str()],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut ids = HashSet::new();
            self.names_into(&lists, &mut ids)?;
            Ok(ids)
        })();
        self.labelled(result)
    }

    fn newest_issue(&self) -> Result<Option<IssueKey>> {
        let result = self
            .client
            .borrow_mut()
            .query_one("SELECT max(key) FROM issues", &[])
            .map(|r| r.get::<_, Option<String>>(0).map(IssueKey::stored));
        self.labelled(result.map_err(Into::into))
    }

    fn fix_issue(
        &mut self,
        issue: &IssueKey,
        now: DateTime<Utc>,
        produce: &mut dyn FnMut(&mut dyn Fixer) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let mut collect = Collect(Vec::new());
        produce(&mut collect)?;
        let run = self.run;
        self.write(|tx| fix_in(tx, issue, now, run, &collect.0))?;
        Ok(())
    }

    fn pending(&self) -> Result<Vec<Pending>> {
        let result = self
            .client
            .borrow_mut()
            .query(&format!("{PENDING} ORDER BY i.key, r.key"), &[])
            .map(|rows| rows.iter().map(pending_row).collect());
        self.labelled(result.map_err(Into::into))
    }

    fn claim_pending(&mut self) -> Result<Vec<Pending>> {
        let run = self.run;
        self.write(|tx| {
            // Rows another run is claiming at this moment are skipped, not
            // waited for: they are that run's.
            tx.execute(
                "UPDATE outbox o SET claimed_by = $1 FROM (
                     SELECT issue, recipient FROM outbox WHERE claimed_by IS NULL
                     FOR UPDATE SKIP LOCKED) free
                 WHERE o.issue = free.issue AND o.recipient = free.recipient",
                &[&run],
            )?;
            Ok(tx
                .query(
                    &format!("{PENDING} WHERE o.claimed_by = $1 ORDER BY i.key, r.key"),
                    &[&run],
                )?
                .iter()
                .map(pending_row)
                .collect())
        })
    }

    fn release_abandoned(&mut self) -> Result<usize> {
        let run = self.run;
        let result = (|| -> Result<usize> {
            let mut client = self.client.borrow_mut();
            let runs: Vec<i64> = client
                .query(
                    "SELECT DISTINCT claimed_by FROM outbox WHERE claimed_by IS NOT NULL AND claimed_by <> $1",
                    &[&run],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut released = 0;
            for other in runs {
                // Succeeds only when no session holds it: its run is gone.
                let gone: bool = client
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&other])?
                    .get(0);
                if !gone {
                    continue;
                }
                // Taken over by this run at once (in one statement): no
                // moment where they are nobody's, and so counted as left
                // over by a run that ends meanwhile.
                let n = client.execute(
                    "UPDATE outbox SET claimed_by = $2 WHERE claimed_by = $1",
                    &[&other, &run],
                );
                client.execute("SELECT pg_advisory_unlock($1)", &[&other])?;
                released += n? as usize;
            }
            Ok(released)
        })();
        self.labelled(result)
    }

    fn release_claims(&mut self) -> Result<usize> {
        let result = self.client.borrow_mut().execute(
            "UPDATE outbox SET claimed_by = NULL WHERE claimed_by = $1",
            &[&self.run],
        );
        self.labelled(result.map(|n| n as usize).map_err(Into::into))
    }

    fn record_all(&mut self, outcomes: &[Outcome<'_>], now: DateTime<Utc>) -> Result<()> {
        let run = self.run;
        self.write(|tx| record_in(tx, outcomes, now, run))
    }

    fn commit(
        &mut self,
        fixing: Option<&Fixing<'_>>,
        outcomes: &[Outcome<'_>],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.commit_fixed(fixing, outcomes, now).map(drop)
    }

    fn commit_fixed(
        &mut self,
        fixing: Option<&Fixing<'_>>,
        outcomes: &[Outcome<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<usize>> {
        let run = self.run;
        let deliveries: Vec<Owned> = fixing
            .map(|f| f.deliveries.iter().map(owned).collect())
            .unwrap_or_default();
        self.write(|tx| {
            let lost = match fixing {
                Some(f) => fix_in(tx, f.issue, f.at, run, &deliveries)?,
                None => Vec::new(),
            };
            record_in(tx, outcomes, now, run)?;
            Ok(lost)
        })
    }

    fn count(&self, issue: &IssueKey, status: Status) -> Result<usize> {
        let result = self.client.borrow_mut().query_one(
            "SELECT count(*) FROM deliveries
             WHERE issue = (SELECT id FROM issues WHERE key = $1) AND status = $2",
            &[&issue.as_str(), &i16::from(status.code())],
        );
        self.labelled(
            result
                .map(|r| r.get::<_, i64>(0) as usize)
                .map_err(Into::into),
        )
    }

    fn count_all(&self, status: Status) -> Result<usize> {
        let result = match status {
            Status::Pending => self
                .client
                .borrow_mut()
                .query_one("SELECT count(*) FROM outbox", &[]),
            other => self.client.borrow_mut().query_one(
                "SELECT count(*) FROM deliveries WHERE status = $1",
                &[&i16::from(other.code())],
            ),
        };
        self.labelled(
            result
                .map(|r| r.get::<_, i64>(0) as usize)
                .map_err(Into::into),
        )
    }

    fn pending_left(&self) -> Result<usize> {
        // A run is alive while its session holds the advisory lock on its
        // id (`pg_locks`: the key's high half in `classid`, its low half in
        // `objid`).
        let result = self.client.borrow_mut().query_one(
            "SELECT count(*) FROM outbox o WHERE o.claimed_by IS NULL OR NOT EXISTS (
                 SELECT 1 FROM pg_locks l
                 WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND ((l.classid::bigint << 32) | l.objid::bigint) = o.claimed_by)",
            &[],
        );
        self.labelled(
            result
                .map(|r| r.get::<_, i64>(0) as usize)
                .map_err(Into::into),
        )
    }

    fn drop_final_messages(&mut self) -> Result<usize> {
        let mut dropped = 0;
        loop {
            // In batches, skipping rows another run is deleting.
            let n = self.write(|tx| {
                Ok(tx.execute(
                    "DELETE FROM messages WHERE ctid IN (
                         SELECT m.ctid FROM messages m WHERE NOT EXISTS (
                             SELECT 1 FROM outbox o WHERE o.issue = m.issue AND o.recipient = m.recipient)
                         LIMIT 2000 FOR UPDATE SKIP LOCKED)",
                    &[],
                )?)
            })?;
            if n == 0 {
                return Ok(dropped);
            }
            dropped += n as usize;
        }
    }

    fn suppress(&mut self, entries: &[Suppression]) -> Result<usize> {
        let mut sorted: Vec<&Suppression> = entries.iter().collect();
        sorted.sort_by(|a, b| a.address.cmp(&b.address));
        self.write(|tx| {
            let insert = tx.prepare(SUPPRESS)?;
            let mut added = 0;
            for e in &sorted {
                added += tx.execute(
                    &insert,
                    &[
                        &e.address.as_str(),
                        &e.reason.as_str(),
                        &e.at.to_rfc3339(),
                        &e.source,
                    ],
                )?;
            }
            Ok(added as usize)
        })
    }

    fn unsuppress(&mut self, addresses: &[RecipientKey]) -> Result<usize> {
        let keys: Vec<&str> = addresses.iter().map(RecipientKey::as_str).collect();
        self.write(|tx| {
            Ok(tx.execute("DELETE FROM suppressions WHERE address = ANY($1)", &[&keys])? as usize)
        })
    }

    fn suppressions(&self) -> Result<Vec<Suppression>> {
        let result = (|| -> Result<Vec<Suppression>> {
            let rows = self.client.borrow_mut().query(
                "SELECT address, reason, created_at, source FROM suppressions ORDER BY address",
                &[],
            )?;
            let mut list = Vec::with_capacity(rows.len());
            for row in rows {
                let reason: &str = row.get(1);
                let at: &str = row.get(2);
                list.push(Suppression {
                    address: RecipientKey::stored(row.get(0)),
                    reason: Reason::named(reason)
                        .with_context(|| format!("unknown suppression reason {reason:?}"))?,
                    at: DateTime::parse_from_rfc3339(at)
                        .with_context(|| format!("bad suppression time {at:?}"))?
                        .to_utc(),
                    source: row.get(3),
                });
            }
            Ok(list)
        })();
        self.labelled(result)
    }

    fn record_bounces(
        &mut self,
        events: &[BounceEvent],
        rule: SoftRule,
        now: DateTime<Utc>,
    ) -> Result<Vec<Recorded>> {
        let recorded_at = sortable(now);
        self.write(|tx| {
            let insert = tx.prepare(
                "INSERT INTO bounce_events (report, address, kind, status, at, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (report, address) DO NOTHING",
            )?;
            let soft = tx.prepare(
                "SELECT count(*) FROM bounce_events
                 WHERE address = $1 AND kind = 'soft' AND at > $2 AND at <= $3",
            )?;
            let mut results = Vec::with_capacity(events.len());
            for e in events {
                let at = sortable(e.at);
                let added = tx.execute(
                    &insert,
                    &[
                        &e.report,
                        &e.address.as_str(),
                        &e.kind.as_str(),
                        &e.status,
                        &at,
                        &recorded_at,
                    ],
                )?;
                if added == 0 {
                    results.push(Recorded::Duplicate);
                    continue;
                }
                let entry = match e.kind {
                    BounceKind::Hard => Some((Reason::Bounced, e.report.clone())),
                    BounceKind::Complaint => Some((Reason::Complained, e.report.clone())),
                    BounceKind::Soft => {
                        let since = sortable(e.at - rule.window);
                        let n: i64 = tx
                            .query_one(&soft, &[&e.address.as_str(), &since, &at])?
                            .get(0);
                        (n >= i64::from(rule.limit)).then(|| {
                            (
                                Reason::Bounced,
                                format!("{n} soft bounces, the last {}", e.report),
                            )
                        })
                    }
                };
                let suppressed = match entry {
                    Some((reason, source)) => {
                        tx.execute(
                            SUPPRESS,
                            &[
                                &e.address.as_str(),
                                &reason.as_str(),
                                &now.to_rfc3339(),
                                &source,
                            ],
                        )? > 0
                    }
                    None => false,
                };
                results.push(Recorded::New { suppressed });
            }
            Ok(results)
        })
    }

    fn recipients(&self) -> Result<Vec<String>> {
        let result = self
            .client
            .borrow_mut()
            .query("SELECT key FROM recipients", &[])
            .map(|rows| rows.iter().map(|r| r.get(0)).collect());
        self.labelled(result.map_err(Into::into))
    }

    fn messages(&self) -> Box<dyn MessageStore> {
        Box::new(Messages {
            config: self.config.clone(),
            tls: self.tls.clone(),
            run: self.run,
            label: self.label.clone(),
            idle: std::sync::Mutex::default(),
        })
    }
}

/// Sender threads' view of the message table: connections of their own,
/// kept in a small pool (a thread takes one, reads, puts it back). Not in
/// thread-locals: a client dropped while its thread ends would meet its
/// runtime gone.
struct Messages {
    config: postgres::Config,
    tls: MakeRustlsConnect,
    /// The run these connections work for.
    run: i64,
    label: String,
    idle: std::sync::Mutex<Vec<Client>>,
}

impl Messages {
    fn with_client<T>(&self, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        let taken = self.idle.lock().expect("pool lock").pop();
        let mut client = match taken {
            Some(c) if !c.is_closed() => c,
            _ => self
                .config
                .connect(self.tls.clone())
                .with_context(|| self.label.clone())?,
        };
        let result = f(&mut client).with_context(|| self.label.clone());
        if result.is_ok() {
            self.idle.lock().expect("pool lock").push(client);
        }
        result
    }
}

impl MessageStore for Messages {
    fn read(&self, issue: &IssueKey, recipient: &RecipientKey) -> Result<Vec<u8>> {
        self.with_client(|client| {
            let row = client.query_opt(
                "SELECT bytes, encoding FROM messages
                 WHERE issue = (SELECT id FROM issues WHERE key = $1)
                   AND recipient = (SELECT id FROM recipients WHERE key = $2)",
                &[&issue.as_str(), &recipient.as_str()],
            )?;
            match row {
                Some(row) => unpack(row.get(0), row.get(1)),
                None => bail!("the message for {recipient} in issue {issue} is no longer stored"),
            }
        })
    }

    fn claim_part(&self, issue: &IssueKey, part: u32) -> Result<bool> {
        let part = part as i32;
        self.with_client(|client| {
            // Taken when free, or when its run is gone (its advisory lock
            // is free: no live session holds it in `pg_locks`).
            let row = client.query_one(
                "WITH mine AS (
                     INSERT INTO compose_claims (issue, part, run) VALUES ($1, $2, $3)
                     ON CONFLICT (issue, part) DO UPDATE SET run = $3
                     WHERE compose_claims.run = $3 OR NOT EXISTS (
                         SELECT 1 FROM pg_locks l
                         WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
                           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                           AND ((l.classid::bigint << 32) | l.objid::bigint) = compose_claims.run)
                     RETURNING run)
                 SELECT count(*) FROM mine",
                &[&issue.as_str(), &part, &self.run],
            )?;
            Ok(row.get::<_, i64>(0) > 0)
        })
    }

    fn is_fixed(&self, issue: &IssueKey, recipient: &RecipientKey) -> Result<bool> {
        self.with_client(|client| {
            Ok(client
                .query_opt(
                    "SELECT 1 FROM deliveries
                     WHERE issue = (SELECT id FROM issues WHERE key = $1)
                       AND recipient = (SELECT id FROM recipients WHERE key = $2)",
                    &[&issue.as_str(), &recipient.as_str()],
                )?
                .is_some())
        })
    }
}
