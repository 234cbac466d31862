//! Real SMTP servers run as child processes, and what they stored:
//! [`SmtpServer`], `tests/support/fault_server.py` on aiosmtpd (scriptable
//! faults, TLS, AUTH) or Postfix's `smtp-sink`, each in a fresh folder of
//! the site it serves and pointed at by its `[smtp]`.
//! Every stored message is read back with its envelope recipient
//! ([`Stored`]), and [`check_digest`] checks what every digest of the
//! example site must carry.
//!
//! A missing `python3`, `aiosmtpd`, `smtp-sink` or `openssl` fails the test
//! that needs it with a message saying what to install; nothing is skipped.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mail_parser::{MessageParser, MimeHeaders, PartType};

use super::files::{find_bytes, set_mode};
use super::run::Run;
use super::site::Site;
use super::{ISSUE, repo_root};

/// The subject every digest of the example site at [`super::NOW`] must decode to.
pub const SUBJECT: &str = "映象网 · 2017-03-25 要闻";

/// `[smtp] from` of the repository's feeds.toml.
pub const FROM: &str = "digest@news.example.cn";

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("a bound address").port()
}

impl Site {
    /// Points `[smtp]` at 127.0.0.1:`port`.
    pub fn point_at(&self, port: u16) -> &Site {
        self.set("smtp.host", "127.0.0.1")
            .set("smtp.port", i64::from(port))
    }

    /// Turns `[smtp]` into one `[[smtp]]` table per relay: each a copy of
    /// it with the relay's `name`, port on 127.0.0.1 and `weight`.
    pub fn relays(&self, relays: &[(&str, u16, u32)]) -> &Site {
        let mut config = self.config_table();
        let base = config
            .remove("smtp")
            .and_then(|v| v.as_table().cloned())
            .expect("an [smtp] table");
        let tables = relays
            .iter()
            .map(|(name, port, weight)| {
                let mut table = base.clone();
                table.insert("name".into(), (*name).into());
                table.insert("host".into(), "127.0.0.1".into());
                table.insert("port".into(), i64::from(*port).into());
                table.insert("weight".into(), i64::from(*weight).into());
                toml::Value::Table(table)
            })
            .collect();
        config.insert("smtp".into(), toml::Value::Array(tables));
        self.write_config_table(&config)
    }

    /// A new folder inside the site (`<kind>-0`, `<kind>-1`, …).
    fn fresh_dir(&self, kind: &str) -> PathBuf {
        (0..)
            .map(|n| self.path(&format!("{kind}-{n}")))
            .find(|dir| fs::create_dir(dir).is_ok())
            .expect("a new folder")
    }

    /// Starts `fault_server.py ARGS` on a free port and points the site at it.
    pub fn serve(&self, args: &[&str]) -> SmtpServer {
        self.serve_with(Pipelining::On, args)
    }

    /// [`Site::serve`], the server announcing PIPELINING or not.
    pub fn serve_with(&self, pipelining: Pipelining, args: &[&str]) -> SmtpServer {
        let mut args = args.to_vec();
        if pipelining == Pipelining::Off {
            args.push("--no-pipelining");
        }
        let mut server = SmtpServer::fault(&self.fresh_dir("server"), 0, &args);
        server.pipelining = Some(pipelining);
        self.point_at(server.port);
        server
    }

    /// Starts Postfix's `smtp-sink` on a free port and points the site at it.
    pub fn serve_sink(&self) -> SmtpServer {
        let sink = SmtpServer::sink(&self.fresh_dir("sink"));
        self.point_at(sink.port);
        sink
    }

    /// Runs `digest --send` until it exits 0 (at most `max` times); returns
    /// every run. Each run's exit code must agree with the state database:
    /// 0 exactly when nothing is pending or failed.
    pub fn send_until_done(&self, max: usize) -> Vec<Run> {
        let mut runs = Vec::new();
        while runs.len() < max {
            let run = self.send();
            let state = self.state();
            let unfinished = state.count("pending") + state.count("failed");
            match run.code {
                Some(0) => assert_eq!(unfinished, 0, "exit 0 with unfinished deliveries\n{run}"),
                Some(2) => assert!(unfinished > 0, "exit 2 with nothing unfinished\n{run}"),
                _ => panic!("digest --send: unexpected exit\n{run}"),
            }
            let done = run.code == Some(0);
            runs.push(run);
            if done {
                return runs;
            }
        }
        panic!(
            "digest --send did not finish in {max} runs; the last:\n{}",
            runs.last().expect("at least one run")
        );
    }
}

// ---- servers ------------------------------------------------------------------

/// Whether the fault server announces PIPELINING (RFC 2920) and honours it,
/// or announces nothing and refuses a client that sends ahead anyway (as
/// Postfix does). Delivery fault tests run both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipelining {
    On,
    Off,
}

/// A real SMTP server run as a child process, killed when dropped:
/// `tests/support/fault_server.py` ([`Site::serve`]) or Postfix's
/// `smtp-sink` ([`Site::serve_sink`]).
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    /// Where it stores accepted messages, one file each.
    store: PathBuf,
    /// Its event log (the fault server's stderr, smtp-sink's stdout).
    log: PathBuf,
    /// The fault server's mode; checked when it is dropped.
    pipelining: Option<Pipelining>,
}

impl SmtpServer {
    /// Starts `fault_server.py ARGS` with its store and log in `dir`; `port`
    /// 0 picks one.
    fn fault(dir: &Path, port: u16, args: &[&str]) -> SmtpServer {
        let script = repo_root().join("tests/support/fault_server.py");
        let store = dir.join("store");
        let log = dir.join("server.log");
        let log_file = fs::File::create(&log).expect("create the server log");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("--store")
            .arg(&store)
            .args(["--port", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start python3 ({e}): the delivery tests need Python 3 with aiosmtpd \
                     (apt-get install python3 python3-pip; python3 -m pip install aiosmtpd)"
                )
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let port = line
            .strip_prefix("LISTENING ")
            .and_then(|p| p.trim().parse::<u16>().ok());
        let Some(port) = port else {
            stop(&mut child);
            panic!(
                "fault_server.py did not start (first stdout line {line:?}); its stderr:\n{}\n\
                 The delivery tests need Python 3 and aiosmtpd: python3 -m pip install aiosmtpd",
                fs::read_to_string(&log).unwrap_or_default()
            );
        };
        SmtpServer {
            child,
            port,
            store,
            log,
            pipelining: None,
        }
    }

    /// Starts Postfix's `smtp-sink` on a free port, dumping every message
    /// into `dir/store`.
    fn sink(dir: &Path) -> SmtpServer {
        let binary = ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"]
            .iter()
            .map(PathBuf::from)
            .chain(
                std::env::var_os("PATH")
                    .iter()
                    .flat_map(std::env::split_paths)
                    .map(|p| p.join("smtp-sink")),
            )
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "smtp-sink not found (in /usr/sbin or on PATH): install Postfix with \
                     `echo 'postfix postfix/main_mailer_type select No configuration' | \
                     debconf-set-selections; apt-get install -y postfix`"
                )
            });
        let store = dir.join("store");
        fs::create_dir_all(&store).expect("create the sink folder");
        // As root smtp-sink insists on -u; it must still be able to write the dumps.
        let root = fs::metadata(&store).expect("stat").uid() == 0;
        set_mode(&store, 0o777);
        let log = dir.join("sink.log");
        for _attempt in 0..5 {
            let port = free_port();
            let mut command = Command::new(&binary);
            if root {
                command.args(["-u", "root"]);
            }
            let mut child = command
                .arg("-d")
                .arg(store.join("msg."))
                .arg(format!("127.0.0.1:{port}"))
                .arg("100")
                .stdin(Stdio::null())
                .stdout(fs::File::create(&log).expect("create the sink log"))
                .stderr(fs::File::create(dir.join("sink.err")).expect("create the sink log"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait().expect("poll smtp-sink").is_some() {
                    break; // the port was taken meanwhile: try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return SmtpServer {
                        child,
                        port,
                        store,
                        log,
                        pipelining: None,
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            stop(&mut child);
        }
        panic!(
            "smtp-sink did not start; its stderr:\n{}",
            fs::read_to_string(dir.join("sink.err")).unwrap_or_default()
        );
    }

    /// The server's event log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many log lines contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// How many messages it has stored.
    pub fn stored_count(&self) -> usize {
        message_files(&self.store).len()
    }

    /// Every stored message, in the order stored.
    pub fn stored(&self) -> Vec<Stored> {
        message_files(&self.store)
            .into_iter()
            .map(|file| {
                let raw = fs::read(&file).expect("read a stored message");
                parse_stored(file, raw)
            })
            .collect()
    }
}

impl SmtpServer {
    /// MAIL commands the fault server saw, and how many of them came with
    /// more commands already behind them (pipelined).
    pub fn mail_commands(&self) -> (usize, usize) {
        let log = self.log();
        let mails = log.lines().filter(|l| l.contains(": MAIL "));
        let (all, pipelined) = mails.fold((0, 0), |(all, pipelined), line| {
            (
                all + 1,
                pipelined + usize::from(line.ends_with("(pipelined)")),
            )
        });
        (all, pipelined)
    }

    /// What every conversation with the fault server must have kept to:
    /// nothing sent ahead without PIPELINING, no content before 354.
    fn assert_in_step(&self) {
        match self.pipelining {
            Some(Pipelining::Off) => assert_eq!(
                self.log_count("improper pipelining"),
                0,
                "a command was sent before the reply to the previous one, to a server \
                 without PIPELINING:\n{}",
                self.log()
            ),
            Some(Pipelining::On) => assert_eq!(
                self.log_count("content before 354"),
                0,
                "content was sent before the reply to DATA:\n{}",
                self.log()
            ),
            None => {}
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        stop(&mut self.child);
        if !std::thread::panicking() {
            self.assert_in_step();
        }
    }
}

/// SIGKILL, then reap.
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

// ---- what the servers stored ----------------------------------------------

/// One message a server stored.
#[derive(Clone)]
pub struct Stored {
    pub file: PathBuf,
    /// The envelope recipient (RCPT TO), lower-cased.
    pub rcpt: String,
    /// `Message-ID` as written, with its angle brackets.
    pub message_id: String,
    /// The message as received (the fault server's envelope lines removed;
    /// smtp-sink's own header lines kept).
    pub bytes: Vec<u8>,
}

/// The message files in `dir`, sorted by name (the fault server numbers
/// them in the order stored); files being written (`.tmp`) left out.
fn message_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            path.is_file() && !name.ends_with(".tmp") && !name.starts_with('.')
        })
        .collect();
    files.sort();
    files
}

pub fn parse_stored(file: PathBuf, raw: Vec<u8>) -> Stored {
    let head_end = find_bytes(&raw, b"\r\n\r\n")
        .or_else(|| find_bytes(&raw, b"\n\n"))
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let (mut rcpt, mut message_id) = (None, None);
    let mut envelope_len = 0;
    for line in head.split_inclusive('\n') {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "x-test-rcpt-to" => {
                rcpt = Some(value.to_owned());
                envelope_len += line.len();
            }
            "x-test-mail-from" | "x-test-connection" => envelope_len += line.len(),
            // smtp-sink: `X-Rcpt-Args: <addr>`
            "x-rcpt-args" => rcpt = Some(value.trim_matches(['<', '>']).to_owned()),
            "message-id" => message_id = Some(value.to_owned()),
            _ => {}
        }
    }
    let name = file.display().to_string();
    Stored {
        rcpt: rcpt
            .unwrap_or_else(|| panic!("{name}: no envelope recipient"))
            .to_lowercase(),
        message_id: message_id.unwrap_or_else(|| panic!("{name}: no Message-ID")),
        bytes: raw[envelope_len..].to_vec(),
        file,
    }
}

/// Copies per envelope recipient.
pub fn copies(stored: &[Stored]) -> BTreeMap<String, Vec<&Stored>> {
    let mut map: BTreeMap<String, Vec<&Stored>> = BTreeMap::new();
    for s in stored {
        map.entry(s.rcpt.clone()).or_default().push(s);
    }
    map
}

/// Panics unless every address in `recipients` has exactly one copy and
/// nobody else got anything.
pub fn assert_one_each(stored: &[Stored], recipients: &[String]) {
    let map = copies(stored);
    let mut problems = Vec::new();
    for r in recipients {
        match map.get(&r.to_lowercase()).map(Vec::len) {
            Some(1) => {}
            Some(n) => problems.push(format!("{r}: {n} copies")),
            None => problems.push(format!("{r}: no copy")),
        }
    }
    for r in map.keys() {
        if !recipients.iter().any(|x| x.to_lowercase() == *r) {
            problems.push(format!("{r}: not a subscriber, got mail"));
        }
    }
    assert!(
        problems.is_empty(),
        "expected exactly one copy per recipient ({} recipients, {} messages stored):\n{}",
        recipients.len(),
        stored.len(),
        problems.join("\n")
    );
}

/// Parses a stored digest with mail-parser and checks what every digest must
/// carry: To = the envelope recipient, the subject decoding to [`SUBJECT`], a
/// stable-form Message-ID, the list headers, and both a text/plain and a
/// text/html part with the site's name in them.
pub fn check_digest(stored: &Stored) {
    let name = stored.file.display();
    let message = MessageParser::default()
        .parse(&stored.bytes)
        .unwrap_or_else(|| panic!("{name}: mail-parser cannot parse it"));
    assert_eq!(message.subject(), Some(SUBJECT), "{name}: subject");
    let to = message
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_else(|| panic!("{name}: no To address"));
    assert_eq!(to.to_lowercase(), stored.rcpt, "{name}: To vs RCPT TO");
    let from = message.from().and_then(|a| a.first());
    assert_eq!(from.and_then(|a| a.address()), Some(FROM), "{name}: From");
    assert_eq!(
        from.and_then(|a| a.name()),
        Some("映象网"),
        "{name}: From name"
    );

    let id = message
        .message_id()
        .unwrap_or_else(|| panic!("{name}: no Message-ID"));
    assert_eq!(format!("<{id}>"), stored.message_id, "{name}: Message-ID");
    assert_stable_message_id(&stored.message_id);

    let unsubscribe = message
        .header_raw("List-Unsubscribe")
        .unwrap_or_else(|| panic!("{name}: no List-Unsubscribe"))
        .trim();
    assert!(
        unsubscribe.starts_with("<https://news.example.cn/unsubscribe?token=")
            && unsubscribe.ends_with('>'),
        "{name}: List-Unsubscribe {unsubscribe:?}"
    );
    let local = stored.rcpt.split('@').next().unwrap_or_default();
    assert!(
        !unsubscribe.contains(local),
        "{name}: the unsubscribe token shows the address: {unsubscribe}"
    );
    assert_eq!(
        message.header_raw("List-Unsubscribe-Post").map(str::trim),
        Some("List-Unsubscribe=One-Click"),
        "{name}: List-Unsubscribe-Post"
    );
    assert!(message.header_raw("List-Id").is_some(), "{name}: List-Id");
    assert!(message.date().is_some(), "{name}: Date");

    let root = message.root_part().content_type().expect("a content type");
    assert_eq!(
        (root.ctype(), root.subtype()),
        ("multipart", Some("alternative")),
        "{name}: top-level type"
    );
    let (mut text, mut html) = (None, None);
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        match (ct.ctype(), ct.subtype(), &part.body) {
            ("text", Some("plain"), PartType::Text(t)) => text = Some(t.to_string()),
            ("text", Some("html"), PartType::Html(h)) => html = Some(h.to_string()),
            _ => {}
        }
    }
    let text = text.unwrap_or_else(|| panic!("{name}: no text/plain part"));
    let html = html.unwrap_or_else(|| panic!("{name}: no text/html part"));
    assert!(
        text.contains(SUBJECT),
        "{name}: the text part lacks the subject line"
    );
    assert!(
        html.contains("映象网"),
        "{name}: the HTML part lacks the site name"
    );
}

/// `<digest.2017-03-25.<hex>@news.example.cn>`
pub fn assert_stable_message_id(id: &str) {
    let middle = id
        .strip_prefix(&format!("<digest.{ISSUE}."))
        .and_then(|rest| rest.strip_suffix("@news.example.cn>"));
    assert!(
        middle.is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit())),
        "Message-ID {id:?} is not <digest.{ISSUE}.HEX@news.example.cn>"
    );
}

// ---- TLS ----------------------------------------------------------------------

/// A self-signed certificate for `localhost` (CN and SAN), made with the
/// openssl CLI: `(cert.pem, key.pem)` in `dir`.
pub fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let output = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args([
            "-addext",
            "keyUsage=critical,digitalSignature,keyEncipherment",
        ])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}): apt-get install openssl"));
    assert!(
        output.status.success(),
        "openssl req failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (cert, key)
}
