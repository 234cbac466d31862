//! WebSub publishing: telling hubs which feeds changed, so subscribers (Google
//! News, Feedly, Inoreader...) fetch them within a minute instead of polling.
//!
//! After a build, each hub gets one `POST` per changed feed, form-encoded
//! `hub.mode=publish&hub.url=<feed URL>` (the publish request of
//! PubSubHubbub 0.4, which the public hubs take). This module owns that
//! exchange and nothing else: which feeds changed is the caller's to say
//! (only files whose bytes the build rewrote, and only after a build that
//! succeeded), and a failure is reported back, never raised — the feeds
//! are written already, and a hub that is down must not fail the build.
//!
//! Each request has a time limit and one retry after a short pause (a 4xx
//! is the hub refusing the request, not retried). A hub that fails
//! [`ABANDON_AFTER`] requests in a row is not asked again in this build: a
//! hub that is down would otherwise cost two time limits per feed. Requests
//! run a few at a time ([`CONCURRENCY`]); the hub's answer is judged by its
//! status alone, its body is never read. The only outgoing HTTP in
//! bulletin is here.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use url::Url;

/// Requests in flight at once, over all hubs.
pub const CONCURRENCY: usize = 4;
/// Failed requests in a row after which a hub is left alone this build.
pub const ABANDON_AFTER: usize = 3;
/// The pause before the one retry.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// What a hub said to one publish request, when it was not a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The hub refused the request (4xx): asking again would not help.
    Permanent(String),
    /// No answer, a lost connection, or a 5xx: worth one more try.
    Temporary(String),
}

/// Sends one publish request; the real one is [`Http`].
pub trait Post: Sync {
    fn publish(&self, hub: &Url, feed: &str) -> Result<(), Refusal>;
}

/// Publish requests over HTTP(S) with rustls (ureq).
pub struct Http {
    agent: ureq::Agent,
    timeout: Duration,
}

impl Http {
    /// A client whose requests end after `timeout`; `env_proxy`: use the
    /// proxy the environment names (`HTTPS_PROXY`, `NO_PROXY`...), which
    /// only the command that reads the environment decides.
    pub fn new(timeout: Duration, env_proxy: bool) -> Http {
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            // A hub answers a publish request itself; a redirect would turn
            // the POST into something else.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(format!(
                "bulletin/{} (WebSub publisher)",
                env!("CARGO_PKG_VERSION")
            ));
        if !env_proxy {
            config = config.proxy(None);
        }
        Http {
            agent: config.build().into(),
            timeout,
        }
    }
}

impl Post for Http {
    fn publish(&self, hub: &Url, feed: &str) -> Result<(), Refusal> {
        let answer = self
            .agent
            .post(hub.as_str())
            .send_form([("hub.mode", "publish"), ("hub.url", feed)]);
        match answer {
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else if status.is_client_error() {
                    Err(Refusal::Permanent(format!("HTTP {status}")))
                } else {
                    Err(Refusal::Temporary(format!("HTTP {status}")))
                }
            }
            Err(ureq::Error::Timeout(_)) => Err(Refusal::Temporary(format!(
                "no answer within {}",
                seconds(self.timeout)
            ))),
            Err(e) => Err(Refusal::Temporary(e.to_string())),
        }
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// A feed a hub was not told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub hub: Url,
    pub feed: String,
    pub why: String,
}

/// What publishing did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Requests a hub took.
    pub sent: usize,
    /// Requests that failed, retry included, in the order of the jobs.
    pub failed: Vec<Failed>,
    /// Per hub left alone after failing [`ABANDON_AFTER`] in a row: how
    /// many of its feeds were not sent.
    pub abandoned: Vec<(Url, usize)>,
}

/// Tells every hub about every feed URL in `feeds` (one request each), with
/// `post`.
pub fn publish(post: &dyn Post, hubs: &[Url], feeds: &[String]) -> Report {
    publish_with_pause(post, hubs, feeds, RETRY_PAUSE)
}

fn publish_with_pause(post: &dyn Post, hubs: &[Url], feeds: &[String], pause: Duration) -> Report {
    // Feed-major, so the hubs are asked side by side.
    let jobs: Vec<(usize, &String)> = feeds
        .iter()
        .flat_map(|feed| (0..hubs.len()).map(move |h| (h, feed)))
        .collect();
    // Per hub: failures since its last success, and jobs skipped.
    let in_a_row: Vec<AtomicUsize> = hubs.iter().map(|_| AtomicUsize::new(0)).collect();
    let skipped: Vec<AtomicUsize> = hubs.iter().map(|_| AtomicUsize::new(0)).collect();
    let next = AtomicUsize::new(0);
    let sent = AtomicUsize::new(0);
    let failed: Mutex<Vec<(usize, Failed)>> = Mutex::new(Vec::new());
    let work = || {
        loop {
            let j = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(h, feed)) = jobs.get(j) else { break };
            if in_a_row[h].load(Ordering::Relaxed) >= ABANDON_AFTER {
                skipped[h].fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let hub = &hubs[h];
            let outcome = match post.publish(hub, feed) {
                Err(Refusal::Temporary(_)) => {
                    std::thread::sleep(pause);
                    post.publish(hub, feed)
                }
                other => other,
            };
            match outcome {
                Ok(()) => {
                    sent.fetch_add(1, Ordering::Relaxed);
                    in_a_row[h].store(0, Ordering::Relaxed);
                }
                Err(Refusal::Permanent(why) | Refusal::Temporary(why)) => {
                    in_a_row[h].fetch_add(1, Ordering::Relaxed);
                    let failure = Failed {
                        hub: hub.clone(),
                        feed: feed.clone(),
                        why,
                    };
                    failed.lock().expect("no panics").push((j, failure));
                }
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..CONCURRENCY.min(jobs.len()) {
            scope.spawn(work);
        }
    });
    let mut failed = failed.into_inner().expect("no panics");
    failed.sort_by_key(|(j, _)| *j);
    Report {
        sent: sent.into_inner(),
        failed: failed.into_iter().map(|(_, f)| f).collect(),
        abandoned: hubs
            .iter()
            .zip(skipped)
            .map(|(hub, n)| (hub.clone(), n.into_inner()))
            .filter(|(_, n)| *n > 0)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hub stand-in: answers by hub host, records every request.
    struct Fake {
        calls: Mutex<Vec<(String, String)>>,
        /// Per host: how it answers the n-th request it gets.
        answer: fn(&str, usize) -> Result<(), Refusal>,
    }

    impl Post for Fake {
        fn publish(&self, hub: &Url, feed: &str) -> Result<(), Refusal> {
            let host = hub.host_str().unwrap().to_owned();
            let mut calls = self.calls.lock().unwrap();
            let n = calls.iter().filter(|(h, _)| *h == host).count();
            calls.push((host.clone(), feed.to_owned()));
            (self.answer)(&host, n)
        }
    }

    fn run(answer: fn(&str, usize) -> Result<(), Refusal>, feeds: usize) -> (Report, Fake) {
        let fake = Fake {
            calls: Mutex::new(Vec::new()),
            answer,
        };
        let hubs = [
            Url::parse("https://good.example/").unwrap(),
            Url::parse("https://flaky.example/").unwrap(),
        ];
        let feeds: Vec<String> = (0..feeds)
            .map(|i| format!("https://s.cn/f{i}.xml"))
            .collect();
        let report = publish_with_pause(&fake, &hubs, &feeds, Duration::ZERO);
        (report, fake)
    }

    #[test]
    fn every_hub_hears_of_every_feed_once() {
        let (report, fake) = run(|_, _| Ok(()), 5);
        assert_eq!(report.sent, 10);
        assert!(report.failed.is_empty() && report.abandoned.is_empty());
        let mut calls = fake.calls.into_inner().unwrap();
        calls.sort();
        calls.dedup();
        assert_eq!(calls.len(), 10);
    }

    #[test]
    fn a_temporary_failure_is_retried_once_a_refusal_never() {
        // flaky: the first request fails, its retry succeeds.
        let (report, fake) = run(
            |host, n| match (host, n) {
                ("flaky.example", 0) => Err(Refusal::Temporary("HTTP 503".into())),
                _ => Ok(()),
            },
            2,
        );
        assert_eq!((report.sent, report.failed.len()), (4, 0));
        assert_eq!(fake.calls.lock().unwrap().len(), 5);

        let (report, fake) = run(
            |host, _| match host {
                "flaky.example" => Err(Refusal::Permanent("HTTP 400".into())),
                _ => Ok(()),
            },
            2,
        );
        assert_eq!(report.sent, 2);
        assert_eq!(report.failed.len(), 2);
        assert_eq!(report.failed[0].why, "HTTP 400");
        assert_eq!(fake.calls.lock().unwrap().len(), 4);
    }

    #[test]
    fn a_hub_that_keeps_failing_is_left_alone() {
        let (report, fake) = run(
            |host, _| match host {
                "flaky.example" => Err(Refusal::Temporary("no answer within 1 s".into())),
                _ => Ok(()),
            },
            20,
        );
        assert_eq!(report.sent, 20);
        let flaky_calls = fake
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(h, _)| h == "flaky.example")
            .count();
        // Each failure is two requests; up to CONCURRENCY may be in flight
        // when the third in a row lands.
        let failures = report.failed.len();
        assert!((ABANDON_AFTER..ABANDON_AFTER + CONCURRENCY).contains(&failures));
        assert_eq!(flaky_calls, 2 * failures);
        assert_eq!(report.abandoned.len(), 1);
        assert_eq!(report.abandoned[0].1, 20 - failures);
    }
}
