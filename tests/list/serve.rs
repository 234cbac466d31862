//! `bulletin serve`: the one-click endpoint, spoken to over real HTTP/1.1
//! connections (a small client on `TcpStream`, so hostile requests can be
//! sent byte for byte).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::{Running, Site, free_port};

// ---- the server and a client -------------------------------------------------

/// `bulletin serve` on a free loopback port, killed (SIGKILL) when dropped.
struct Server {
    running: Running,
    addr: SocketAddr,
}

impl Server {
    fn start(site: &Site) -> Server {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut running = site.cmd(&["serve", "--listen", &addr.to_string()]).spawn();
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if running.exited() {
                panic!("serve exited:\n{}", running.finish());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "serve did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { running, addr }
    }

    fn client(&self) -> Client {
        Client {
            addr: self.addr,
            stream: None,
            connections: 0,
        }
    }

    /// SIGTERM; waits for the exit (at most `within`).
    fn terminate(mut self, within: Duration) -> crate::support::Run {
        let pid = self.running.pid();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let start = Instant::now();
        while !self.running.exited() {
            assert!(start.elapsed() < within, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.running.finish()
    }
}

/// An answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// An HTTP/1.1 client keeping one connection alive while the server does.
struct Client {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
    /// Connections opened so far.
    connections: usize,
}

impl Client {
    /// Sends `raw` (a whole request) and reads the answer; `None` when the
    /// server closed the connection without one.
    fn send(&mut self, raw: &[u8]) -> Option<Reply> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            self.stream = Some(BufReader::new(stream));
            self.connections += 1;
        }
        let reader = self.stream.as_mut().unwrap();
        if reader.get_mut().write_all(raw).is_err() {
            self.stream = None;
            return None;
        }
        let reply = read_reply(reader);
        let close = reply
            .as_ref()
            .is_none_or(|r| r.header("connection") == Some("close"));
        if close {
            self.stream = None;
        }
        reply
    }

    fn get(&mut self, target: &str) -> Reply {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: news.example.cn\r\n\r\n");
        self.send(raw.as_bytes()).expect("an answer")
    }

    fn post(&mut self, target: &str, content_type: &str, body: &str) -> Reply {
        let raw = format!(
            "POST {target} HTTP/1.1\r\nHost: news.example.cn\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.send(raw.as_bytes()).expect("an answer")
    }

    /// The RFC 8058 POST a mail provider sends.
    fn one_click(&mut self, token: &str) -> Reply {
        self.post(
            &format!("/unsubscribe?token={token}"),
            "application/x-www-form-urlencoded",
            "List-Unsubscribe=One-Click",
        )
    }
}

fn read_reply(reader: &mut BufReader<TcpStream>) -> Option<Reply> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let status = line.split(' ').nth(1)?.parse().ok()?;
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers
        .get("content-length")
        .map_or(0, |n| n.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Reply {
        status,
        headers,
        body: String::from_utf8(body).expect("UTF-8 pages"),
    })
}

/// Every recipient's unsubscribe token, from a dry run's messages.
fn tokens(site: &Site, addresses: &[String]) -> Vec<String> {
    let dry = site.dry_run("tokens").ok();
    addresses
        .iter()
        .map(|a| {
            let url = dry.email(a).unsubscribe_url();
            url.split("token=").nth(1).expect("a token").to_owned()
        })
        .collect()
}

fn reader(i: usize) -> String {
    format!("reader{i:04}@example.com")
}

fn suppressed(site: &Site) -> Vec<String> {
    let run = site.run(&["suppressions", "list"]);
    run.assert_success();
    run.stdout.lines().map(str::to_owned).collect()
}

// ---- the tests ------------------------------------------------------------------

#[test]
fn a_one_click_post_unsubscribes_and_the_next_dry_run_and_send_skip_the_address() {
    let site = Site::smtp(3);
    let tokens = tokens(&site, &[reader(1), reader(2)]);
    let server = Server::start(&site);
    let mut client = server.client();

    let reply = client.one_click(&tokens[0]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.header("location").is_none(), "{reply:?}");
    assert!(reply.body.contains("您已退订"), "{}", reply.body);

    // multipart/form-data, the token in the body (RFC 8058 allows both).
    let body = format!(
        "--b0undary\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b0undary\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\n{}\r\n--b0undary--\r\n",
        tokens[1]
    );
    let reply = client.post(
        "/unsubscribe",
        "multipart/form-data; boundary=b0undary",
        &body,
    );
    assert_eq!(reply.status, 200, "{reply:?}");

    let list = suppressed(&site);
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(
        list[0].starts_with("reader0001@example.com\tunsubscribed\t"),
        "{list:?}"
    );
    assert!(list[0].ends_with("\tone-click"), "{list:?}");
    assert!(
        list[1].starts_with("reader0002@example.com\tunsubscribed\t"),
        "{list:?}"
    );

    let dry = site.dry_run("after").ok();
    assert!(!dry.has_email(&reader(1)));
    assert!(!dry.has_email(&reader(2)));
    assert!(dry.has_email(&reader(0)));
    let sink = site.serve_sink();
    site.send().assert_success();
    let recipients: Vec<String> = sink.stored().into_iter().map(|s| s.rcpt).collect();
    assert_eq!(recipients, [reader(0)]);
    server.terminate(Duration::from_secs(15)).assert_success();
}

#[test]
fn a_get_shows_a_page_with_a_button_in_the_sites_language_and_changes_nothing() {
    for (language, question, done) in [
        ("zh-CN", "确定不再接收这份邮件摘要吗？", "您已退订"),
        (
            "en",
            "Do you want to stop receiving this email digest?",
            "You are unsubscribed",
        ),
    ] {
        let site = Site::smtp(2);
        site.set("site.language", language);
        let token = tokens(&site, &[reader(0)]).remove(0);
        let server = Server::start(&site);
        let mut client = server.client();
        let target = format!("/unsubscribe?token={token}");
        for _ in 0..3 {
            let page = client.get(&target);
            assert_eq!(page.status, 200, "{page:?}");
            assert!(page.body.contains(question), "{language}: {}", page.body);
            assert!(
                page.body.contains("<form method=\"post\">"),
                "{}",
                page.body
            );
            assert!(
                page.body
                    .contains(&format!("name=\"token\" value=\"{token}\"")),
                "{}",
                page.body
            );
            assert!(
                !page.body.contains("http"),
                "no external resource: {}",
                page.body
            );
            let csp = page.header("content-security-policy").expect("a CSP");
            assert!(csp.starts_with("default-src 'none'"), "{csp}");
            assert_eq!(
                page.header("content-type"),
                Some("text/html; charset=utf-8")
            );
        }
        assert!(suppressed(&site).is_empty());

        // The page's button.
        let reply = client.post(
            &target,
            "application/x-www-form-urlencoded",
            &format!("token={token}&confirm=1"),
        );
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(reply.body.contains(done), "{}", reply.body);
        let list = suppressed(&site);
        assert_eq!(list.len(), 1, "{list:?}");
        assert!(list[0].ends_with("\tform"), "{list:?}");
    }
}

#[test]
fn forged_and_truncated_tokens_get_400_and_change_nothing() {
    let site = Site::smtp(2);
    let token = tokens(&site, &[reader(0)]).remove(0);
    let server = Server::start(&site);
    let mut client = server.client();
    let started = Instant::now();
    let alphabet = b"0123456789abcdefghijklmnopqrstuv";
    for i in 0..1000 {
        let mut bad = token.clone().into_bytes();
        let bad = match i % 5 {
            // One character changed.
            0 | 1 => {
                let at = (i / 5) % bad.len();
                let was = bad[at];
                bad[at] = *alphabet
                    .iter()
                    .cycle()
                    .skip(i % 32)
                    .find(|c| **c != was)
                    .unwrap();
                String::from_utf8(bad).unwrap()
            }
            // Truncated.
            2 => token[..(i / 5) % token.len()].to_owned(),
            // Longer.
            3 => format!("{token}{}", alphabet[i % 32] as char),
            // Junk, escaped and not.
            _ => [
                "%00%ff",
                "0123456789abcdef0123456789abcdef",
                "%E4%B8%AD",
                "../..",
                "a+b%2B",
            ][i % 5 % 5]
                .to_owned(),
        };
        let reply = if i % 2 == 0 {
            client.one_click(&bad)
        } else {
            client.get(&format!("/unsubscribe?token={bad}"))
        };
        assert_eq!(reply.status, 400, "{bad:?}: {reply:?}");
    }
    assert!(
        client.connections <= 20,
        "{} connections",
        client.connections
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(suppressed(&site).is_empty());

    // Elsewhere: 404; another method: 405; no token or no intent: 400.
    assert_eq!(client.get(&format!("/other?token={token}")).status, 404);
    let reply = client
        .send(
            format!(
                "PUT /unsubscribe?token={token} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD, POST"));
    assert_eq!(client.get("/unsubscribe").status, 400);
    let reply = client.post(
        &format!("/unsubscribe?token={token}"),
        "application/x-www-form-urlencoded",
        "List-Unsubscribe=No",
    );
    assert_eq!(reply.status, 400);
    let reply = client.post(
        &format!("/unsubscribe?token={token}"),
        "application/json",
        "{}",
    );
    assert_eq!(reply.status, 415);
    assert!(suppressed(&site).is_empty());
}

#[test]
fn unsubscribes_while_a_send_runs_are_all_recorded() {
    let site = Site::smtp(120);
    let addresses: Vec<String> = (0..120).step_by(10).map(reader).collect();
    let tokens = tokens(&site, &addresses);
    let smtp = site.serve(&["--delay", "0.05"]);
    let server = Server::start(&site);
    let mut send = site.send_cmd().spawn();
    std::thread::sleep(Duration::from_millis(300));
    let mut client = server.client();
    let mut during = 0;
    for token in &tokens {
        if !send.exited() {
            during += 1;
        }
        let reply = client.one_click(token);
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert!(during > 0, "the send ended before the first unsubscribe");
    let run = send.finish();
    run.assert_success();
    let list = suppressed(&site);
    assert_eq!(list.len(), addresses.len(), "{list:?}");
    for address in &addresses {
        assert!(
            list.iter().any(|l| l.starts_with(&format!("{address}\t"))),
            "{address}"
        );
    }
    drop(smtp);
    server.terminate(Duration::from_secs(15)).assert_success();
}

#[test]
fn oversized_or_slow_requests_are_refused_without_blocking_others_and_sigterm_exits_0() {
    let site = Site::smtp(2);
    let token = tokens(&site, &[reader(0)]).remove(0);
    let server = Server::start(&site);
    let target = format!("/unsubscribe?token={token}");

    // Slow clients: half a request line, half a header block, half a body.
    let slow: Vec<TcpStream> = [
        "GET /unsub".to_owned(),
        format!("GET {target} HTTP/1.1\r\nHost: x\r\n"),
        format!("POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 26\r\n\r\nList-"),
    ]
    .iter()
    .map(|start| {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.write_all(start.as_bytes()).unwrap();
        stream
    })
    .collect();

    let mut client = server.client();
    let started = Instant::now();
    assert_eq!(client.get(&target).status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // A header block over 8 KiB.
    let raw = format!(
        "GET {target} HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    if let Some(reply) = client.send(raw.as_bytes()) {
        assert_eq!(reply.status, 431, "{reply:?}");
    }
    // A request line over 8 KiB.
    let raw = format!(
        "GET /unsubscribe?token={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(10_000)
    );
    if let Some(reply) = client.send(raw.as_bytes()) {
        assert!([414, 431].contains(&reply.status), "{reply:?}");
    }
    // A body over 4 KiB, declared or chunked.
    let body = format!("List-Unsubscribe=One-Click&pad={}", "a".repeat(5000));
    let reply = client.post(&target, "application/x-www-form-urlencoded", &body);
    assert_eq!(reply.status, 413, "{reply:?}");
    let raw = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    if let Some(reply) = client.send(raw.as_bytes()) {
        assert_eq!(reply.status, 413, "{reply:?}");
    }
    // Garbage.
    for raw in [
        &b"\x00\x01\x02\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"\xff\xfe\r\n\r\n",
    ] {
        if let Some(reply) = client.send(raw) {
            assert!(reply.status >= 400, "{reply:?}");
        }
    }
    // Still serving, and nothing recorded.
    assert_eq!(client.get(&target).status, 200);
    assert!(suppressed(&site).is_empty());

    let started = Instant::now();
    let run = server.terminate(Duration::from_secs(15));
    run.assert_success();
    assert!(started.elapsed() < Duration::from_secs(12));
    drop(slow);
}

#[test]
fn a_request_in_flight_at_sigterm_is_answered() {
    let site = Site::smtp(2);
    site.set("site.language", "en");
    let token = tokens(&site, &[reader(0)]).remove(0);
    let server = Server::start(&site);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    let head = format!(
        "POST /unsubscribe?token={token} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 26\r\n\r\nList-Unsub"
    );
    stream.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = {
        let mut server = server;
        let pid = server.running.pid();
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        stream.write_all(b"scribe=One-Click").unwrap();
        let reply =
            read_reply(&mut BufReader::new(stream.try_clone().unwrap())).expect("an answer");
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(
            reply.body.contains("You are unsubscribed"),
            "{}",
            reply.body
        );
        let start = Instant::now();
        while !server.running.exited() {
            assert!(start.elapsed() < Duration::from_secs(15));
            std::thread::sleep(Duration::from_millis(20));
        }
        server.running.finish().assert_success();
        pid
    };
    assert!(pid > 0);
    assert_eq!(suppressed(&site).len(), 1);
}

#[test]
fn a_killed_server_leaves_nothing_half_recorded_and_a_rerun_converges() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let site = Site::smtp(150);
    site.set("site.language", "en");
    let addresses: Vec<String> = (0..150).map(reader).collect();
    let tokens = tokens(&site, &addresses);
    let server = Server::start(&site);
    let addr = server.addr;
    let count = Arc::new(AtomicUsize::new(0));
    let posting = {
        let tokens = tokens.clone();
        let count = Arc::clone(&count);
        std::thread::spawn(move || {
            let mut client = Client {
                addr,
                stream: None,
                connections: 0,
            };
            for token in &tokens {
                match client.send(
                    format!("POST /unsubscribe?token={token} HTTP/1.1\r\nHost: x\r\nContent-Length: 26\r\n\r\nList-Unsubscribe=One-Click").as_bytes(),
                ) {
                    Some(reply) if reply.status == 200 => count.fetch_add(1, Ordering::SeqCst),
                    _ => break,
                };
            }
        })
    };
    // Killed (SIGKILL) in the middle of the writes.
    while count.load(Ordering::SeqCst) < 10 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let Server { running, .. } = server;
    running.kill();
    posting.join().unwrap();
    let answered = count.load(Ordering::SeqCst);
    assert!(answered < addresses.len(), "killed after the last write");

    // Every answered POST is recorded, whole; at most one more (its answer was lost).
    let list = suppressed(&site);
    assert!(
        list.len() == answered || list.len() == answered + 1,
        "{answered}: {list:?}"
    );
    for line in &list {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "{line}");
        assert_eq!(
            (fields[1], fields[3]),
            ("unsubscribed", "one-click"),
            "{line}"
        );
    }

    // Again: the recorded ones are "already", the rest are added.
    let server = Server::start(&site);
    let mut client = server.client();
    let mut already = 0;
    for token in &tokens {
        let reply = client.one_click(token);
        assert_eq!(reply.status, 200, "{reply:?}");
        if reply.body.contains("already") {
            already += 1;
        }
    }
    assert_eq!(already, list.len());
    assert_eq!(suppressed(&site).len(), addresses.len());
    server.terminate(Duration::from_secs(15)).assert_success();
}

#[test]
fn a_new_subscribers_token_works_without_a_restart() {
    let site = Site::smtp(1);
    let server = Server::start(&site);
    let subscribers = site.read("subscribers.toml");
    site.write(
        "subscribers.toml",
        format!("{subscribers}[[subscribers]]\nemail = \"new@example.com\"\nname = \"新读者\"\n"),
    );
    let token = tokens(&site, &["new@example.com".to_owned()]).remove(0);
    // The resolver is rebuilt at most every 2 seconds.
    std::thread::sleep(Duration::from_millis(2100));
    let mut client = server.client();
    assert_eq!(client.one_click(&token).status, 200);
    assert_eq!(suppressed(&site).len(), 1);
}

#[test]
fn a_token_in_the_path_is_found_there() {
    let site = Site::smtp(1);
    site.set(
        "digest.unsubscribe_url",
        "https://news.example.cn/u/{{token}}",
    );
    let dry = site.dry_run("tokens").ok();
    let url = dry.email(&reader(0)).unsubscribe_url();
    let token = url.rsplit('/').next().unwrap().to_owned();
    let server = Server::start(&site);
    let mut client = server.client();
    assert_eq!(client.get(&format!("/u/{token}")).status, 200);
    assert_eq!(client.get("/unsubscribe").status, 404);
    let reply = client.post(
        &format!("/u/{token}"),
        "application/x-www-form-urlencoded",
        "List-Unsubscribe=One-Click",
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(suppressed(&site).len(), 1);
}

#[test]
fn serve_needs_the_secret_and_a_token_in_the_url() {
    let site = Site::smtp(1);
    let run = site
        .cmd(&["serve", "--listen", "127.0.0.1:0"])
        .env_remove("BULLETIN_UNSUBSCRIBE_SECRET")
        .run();
    run.assert_code(1);
    assert!(run.stderr.contains("BULLETIN_UNSUBSCRIBE_SECRET"), "{run}");
    site.set(
        "digest.unsubscribe_url",
        "https://news.example.cn/u?t=x{{token}}",
    );
    let run = site.run(&["serve", "--listen", "127.0.0.1:0"]);
    run.assert_code(1);
    assert!(run.stderr.contains("unsubscribe_url"), "{run}");
}

#[test]
fn a_write_waits_for_a_held_database_and_one_that_keeps_failing_answers_503() {
    let site = Site::smtp(3);
    site.set("site.language", "en");
    let tokens = tokens(&site, &[reader(0), reader(1)]);
    let mut server = Server::start(&site);
    let mut client = server.client();

    // Another program holds the database's write lock for 2 s: the POST
    // waits for it (no "database is locked") and is recorded.
    let db = rusqlite::Connection::open(site.state_path()).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        db.execute_batch("COMMIT").unwrap();
        db
    });
    let started = Instant::now();
    let reply = client.one_click(&tokens[0]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let db = holder.join().unwrap();
    assert_eq!(suppressed(&site).len(), 1);

    // A write that fails every attempt: 503 (the provider retries), logged.
    db.execute_batch("ALTER TABLE suppressions RENAME TO hidden")
        .unwrap();
    let reply = client.one_click(&tokens[1]);
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.body.contains("try again"), "{}", reply.body);
    db.execute_batch("ALTER TABLE hidden RENAME TO suppressions")
        .unwrap();
    assert_eq!(suppressed(&site).len(), 1);
    // The retry succeeds.
    assert_eq!(client.one_click(&tokens[1]).status, 200);
    assert_eq!(suppressed(&site).len(), 2);

    let pid = server.running.pid();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let run = server.running.finish();
    run.assert_success();
    assert!(
        run.stderr
            .contains("cannot record an unsubscribe (one-click); answered 503"),
        "{run}"
    );
}
