//! `bulletin serve`: the HTTP endpoint behind `digest.unsubscribe_url`
//! (RFC 8058 one-click unsubscribe, and the page a person reaches from the
//! link), meant to sit behind the site's reverse proxy on loopback.
//!
//! What it owns: the listening socket, the connections and their limits
//! ([`limits`]), the rules of the endpoint (`routes`), its pages
//! (`pages`). It writes only through [`crate::unsubscribe`] into the
//! ledger, and reads neither the clock nor the environment itself (the
//! command passes both in).
//!
//! Why hyper 1 (with hyper-util, http-body-util and tokio): it is the most
//! used and most scrutinised HTTP/1.1 implementation in Rust, pure Rust (no
//! system library), and it enforces the limits a public endpoint needs at
//! the parser — a bounded read buffer for the request line and headers
//! (431/414 beyond it) and a header-read timeout against slowloris — with
//! only the `http1` and `server` features. tokio is built with `rt` (one
//! thread: the endpoint does little), `net`, `time`, `signal`, `sync` and
//! `macros`; SQLite writes run on its blocking threads. Heavier frameworks
//! (axum, actix-web) would add routing and middleware the single path does
//! not need; tiny_http has neither header limits nor timeouts.
//!
//! Shutdown: on SIGTERM or SIGINT the listener closes, idle keep-alive
//! connections are closed, requests in flight finish (for up to
//! [`limits::SHUTDOWN_GRACE`]), and `run` returns.

mod book;
mod endpoint;
mod form;
pub mod limits;
mod pages;
mod routes;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::{DateTime, Utc};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::Failure;
use crate::config::Config;
use crate::token::Keys;

pub use endpoint::{Endpoint, TokenAt};

use limits::{
    CONNECTION_LIFETIME, HEADER_READ_TIMEOUT, MAX_CONNECTIONS, MAX_HEAD,
    MAX_REQUESTS_PER_CONNECTION, SHUTDOWN_GRACE,
};

/// Serves the endpoint of `config`'s `unsubscribe_url` on `listen` until
/// SIGTERM or SIGINT; `ready` is told the bound address once it listens.
/// `state_password`: a PostgreSQL ledger's password.
#[allow(clippy::too_many_arguments)]
pub fn run(
    config: Config,
    endpoint: Endpoint,
    keys: Keys,
    state_password: Option<String>,
    listen: SocketAddr,
    clock: fn() -> DateTime<Utc>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), Failure> {
    let lang = pages::Lang::of(&config.site.language);
    let site_title = config.site.title.clone();
    let book = book::Book::open(config, keys, state_password)?;
    let app = Arc::new(routes::App {
        endpoint,
        lang,
        site_title,
        book: Mutex::new(book),
        clock,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    let served = runtime.block_on(serve(app, listen, ready));
    // A write still waiting on the database gets the same grace.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    served?;
    Ok(())
}

async fn serve(
    app: Arc<routes::App>,
    listen: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch for SIGTERM")?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot watch for SIGINT")?;
    ready(listener.local_addr()?);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop, stopping) = watch::channel(false);
    loop {
        let permit = tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            permit = Arc::clone(&slots).acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let (stream, _) = tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, a connection reset before accept:
                    // wait a moment and go on.
                    tracing::warn!("serve: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            connection(app, stream, &mut stopping).await;
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection gives its slot back when it ends.
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all)).await;
    Ok(())
}

/// Serves one connection within its limits.
async fn connection(
    app: Arc<routes::App>,
    stream: tokio::net::TcpStream,
    stopping: &mut watch::Receiver<bool>,
) {
    let served = Arc::new(AtomicUsize::new(0));
    let service = service_fn(move |request| {
        let app = Arc::clone(&app);
        let served = Arc::clone(&served);
        async move {
            let mut response = routes::handle(app, request).await?;
            if served.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_REQUESTS_PER_CONNECTION {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let lifetime = tokio::time::sleep(CONNECTION_LIFETIME);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = lifetime => {}
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    // Stop reading new requests; let the one in flight finish.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
}
