//! One request → one answer. The rules:
//!
//! - only the endpoint's path (else 404), only GET, HEAD and POST (else 405);
//! - GET and HEAD never change anything: a page with a button that POSTs;
//! - POST with `List-Unsubscribe=One-Click` (RFC 8058) or the page's
//!   `confirm` field suppresses the token's address and answers 200 with a
//!   page, never a redirect;
//! - a token that is not genuine: 400, nothing changes; a write that
//!   fails after its retries: 503 (the mail provider tries again).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::book::{Answer, Book};
use super::endpoint::Endpoint;
use super::form::{self, FormError};
use super::limits::{BODY_TIMEOUT, MAX_BODY};
use super::pages::{self, CSP, Lang, Says};
use crate::unsubscribe::Done;

/// What every request handler shares.
pub(super) struct App {
    pub endpoint: Endpoint,
    pub lang: Lang,
    pub site_title: String,
    pub book: Mutex<Book>,
    pub clock: fn() -> DateTime<Utc>,
}

/// An answer before it becomes a response.
struct Answered {
    status: StatusCode,
    says: Says,
    token: Option<String>,
    /// Close the connection after it (the body was not read to its end).
    close: bool,
}

fn answer(status: StatusCode, says: Says) -> Answered {
    Answered {
        status,
        says,
        token: None,
        close: false,
    }
}

fn closing(status: StatusCode, says: Says) -> Answered {
    Answered {
        close: true,
        ..answer(status, says)
    }
}

/// Answers one request (never fails: every problem is a status).
pub(super) async fn handle(
    app: Arc<App>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let answered = route(&app, request).await;
    Ok(respond(&app, answered))
}

async fn route(app: &Arc<App>, request: Request<Incoming>) -> Answered {
    let Some(path_token) = app.endpoint.matches(request.uri().path()) else {
        return answer(StatusCode::NOT_FOUND, Says::NotFound);
    };
    let url_token = path_token.or_else(|| app.endpoint.query_token(request.uri().query()));
    match *request.method() {
        Method::GET | Method::HEAD => {
            let Some(token) = url_token else {
                return answer(StatusCode::BAD_REQUEST, Says::InvalidLink);
            };
            let app2 = Arc::clone(app);
            let checked = token.clone();
            let genuine = blocking(move || lock(&app2.book).check(&checked)).await;
            match genuine {
                Some(true) => Answered {
                    token: Some(token),
                    ..answer(StatusCode::OK, Says::Confirm)
                },
                Some(false) => answer(StatusCode::BAD_REQUEST, Says::InvalidLink),
                None => answer(StatusCode::SERVICE_UNAVAILABLE, Says::Unavailable),
            }
        }
        Method::POST => post(app, request, url_token).await,
        _ => answer(StatusCode::METHOD_NOT_ALLOWED, Says::MethodNotAllowed),
    }
}

async fn post(app: &Arc<App>, request: Request<Incoming>, url_token: Option<String>) -> Answered {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return closing(StatusCode::PAYLOAD_TOO_LARGE, Says::TooLarge);
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = Limited::new(request.into_body(), MAX_BODY);
    let body = match tokio::time::timeout(BODY_TIMEOUT, body.collect()).await {
        Err(_) => return closing(StatusCode::REQUEST_TIMEOUT, Says::Timeout),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return closing(StatusCode::PAYLOAD_TOO_LARGE, Says::TooLarge);
        }
        Ok(Err(_)) => return closing(StatusCode::BAD_REQUEST, Says::BadRequest),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let fields = match form::fields(content_type.as_deref(), &body) {
        Ok(fields) => fields,
        Err(FormError::Unsupported) => {
            return answer(StatusCode::UNSUPPORTED_MEDIA_TYPE, Says::UnsupportedType);
        }
        Err(FormError::Malformed) => return answer(StatusCode::BAD_REQUEST, Says::BadRequest),
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let source = if field("List-Unsubscribe") == Some("One-Click") {
        "one-click"
    } else if field("confirm").is_some() {
        "form"
    } else {
        return answer(StatusCode::BAD_REQUEST, Says::BadRequest);
    };
    let Some(token) = url_token.or_else(|| field("token").map(str::to_owned)) else {
        return answer(StatusCode::BAD_REQUEST, Says::InvalidLink);
    };
    let app2 = Arc::clone(app);
    let now = (app.clock)();
    let result = blocking(move || lock(&app2.book).unsubscribe(&token, source, now)).await;
    match result {
        Some(Ok(Answer::Done(done))) => {
            crate::report::stderr_line(&match &done {
                Done::Added(a) => format!("bulletin serve: unsubscribed {a} ({source})"),
                Done::Already(a) => {
                    format!("bulletin serve: {a} was already unsubscribed ({source})")
                }
            });
            let says = match done {
                Done::Added(_) => Says::Unsubscribed,
                Done::Already(_) => Says::Already,
            };
            answer(StatusCode::OK, says)
        }
        Some(Ok(_)) => answer(StatusCode::BAD_REQUEST, Says::InvalidLink),
        Some(Err(e)) => {
            crate::report::stderr_line(&format!(
                "bulletin serve: error: cannot record an unsubscribe ({source}); answered 503: {e:#}"
            ));
            answer(StatusCode::SERVICE_UNAVAILABLE, Says::Unavailable)
        }
        None => answer(StatusCode::SERVICE_UNAVAILABLE, Says::Unavailable),
    }
}

/// Runs `work` on a blocking thread; `None` if it panicked.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Some(value),
        Err(e) => {
            crate::report::stderr_line(&format!("bulletin serve: error: a request failed: {e}"));
            None
        }
    }
}

/// The book, even after a panic elsewhere (its state is a connection and a
/// resolver, each whole).
fn lock(book: &Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn respond(app: &App, answered: Answered) -> Response<Full<Bytes>> {
    let html = pages::page(
        app.lang,
        &app.site_title,
        answered.says,
        answered.token.as_deref(),
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = answered.status;
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(csp) = HeaderValue::from_str(&CSP) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    if answered.status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
    }
    if answered.close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
