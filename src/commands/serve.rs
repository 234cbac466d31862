//! `bulletin serve`: checks what the endpoint needs (a `[digest]` with an
//! `unsubscribe_url` that places `{{token}}`, the token secret), then runs
//! [`crate::serve`] until SIGTERM or SIGINT.

use std::net::SocketAddr;

use super::{Clock, secrets};
use crate::Failure;
use crate::config::Config;
use crate::diag::{Location, Problem};
use crate::report::Verbosity;
use crate::serve::{self, Endpoint, TokenAt};

pub fn run(
    config: &Config,
    listen: SocketAddr,
    clock: Clock,
    say: Verbosity,
) -> Result<(), Failure> {
    let at = || Location::file(&config.path);
    let Some(digest) = &config.digest else {
        return Err(Problem::new(
            at(),
            Some("digest"),
            "serve records unsubscribes in the digest's state database: the config has no [digest] table",
        )
        .into());
    };
    let Some(url) = &digest.unsubscribe_url else {
        return Err(Problem::new(
            at(),
            Some("digest.unsubscribe_url"),
            "serve answers on the path of unsubscribe_url: set it, e.g. \"https://news.example.cn/unsubscribe?token={{token}}\"",
        )
        .into());
    };
    let endpoint =
        Endpoint::of(url).map_err(|why| Problem::new(at(), Some("digest.unsubscribe_url"), why))?;
    let keys = secrets::unsubscribe_keys()?.ok_or_else(|| {
        Problem::new(
            Location::file(std::path::Path::new(secrets::SECRET_VAR)),
            None,
            format!(
                "serve needs the environment variable {} (the key the tokens were made with)",
                secrets::SECRET_VAR
            ),
        )
    })?;
    let path = endpoint.path();
    let carried = match &endpoint.token_at {
        TokenAt::Query(name) => format!("?{name}=TOKEN"),
        TokenAt::Segment(_) => String::new(),
    };
    serve::run(
        config.clone(),
        endpoint,
        keys,
        secrets::state_password(),
        listen,
        clock,
        |bound| {
            say.summary(format!(
                "serving unsubscribes on http://{bound}{path}{carried} (SIGTERM or Ctrl-C stops)"
            ));
        },
    )?;
    say.summary("stopped");
    Ok(())
}
