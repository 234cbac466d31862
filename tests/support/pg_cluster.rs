//! A private PostgreSQL cluster for the tests: one per test process,
//! started on first use (`initdb` and `pg_ctl` of Debian's `postgresql`
//! package, run as the `postgres` system user because the server refuses
//! root), on a temporary folder, listening on 127.0.0.1 at a free port.
//! Each test gets its own database ([`database`]: `t_<n>`); a second
//! cluster, started only when a test asks, speaks TLS ([`tls_database`]).
//!
//! It never outlives the test process: a watchdog shell started with it
//! reads its standard input from this process, and when that pipe closes —
//! the process ends, however it ends — it stops the server (`pg_ctl stop
//! -m immediate`) and removes the folder.
//!
//! Shared by the library's tests (`ledger::contract`, included by path)
//! and the integration tests (`tests/support`). It never skips: a cluster
//! that cannot start fails the test, saying what to install.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The running cluster: its port, and the watchdog holding it.
pub(crate) struct Cluster {
    pub(crate) port: u16,
    /// With TLS: the certificate (PEM) the server's chains to.
    ca: Option<PathBuf>,
    _watchdog: Child,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static TLS_CLUSTER: OnceLock<Cluster> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The folder of the newest installed PostgreSQL's programs.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             apt-get install postgresql"
        ),
    }
}

fn run(what: &str, command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A free TCP port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start(tls: bool) -> Cluster {
    let bin = bin_dir();
    let dir = std::env::temp_dir().join(format!(
        "bulletin-pg-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("cluster folder");
    run(
        "chown",
        Command::new("chown").arg("postgres:postgres").arg(&dir),
    );
    let data = dir.join("data");
    let as_postgres = |program: &str| {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    };
    run(
        "initdb",
        as_postgres("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data),
    );
    let port = free_port();
    // The watchdog: stops the server once this process's end of the pipe
    // closes.
    let script = format!(
        "cat >/dev/null; runuser -u postgres -- {pg_ctl} stop -D {data} -m immediate -w >/dev/null 2>&1; rm -rf {dir}",
        pg_ctl = bin.join("pg_ctl").display(),
        data = data.display(),
        dir = dir.display(),
    );
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the cluster's watchdog");
    let mut options = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {} -c max_connections=200 -c shared_buffers=64MB",
        dir.display()
    );
    let ca = tls.then(|| {
        let (cert, key, ca) = certificates(&dir);
        options.push_str(&format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            cert.display(),
            key.display()
        ));
        ca
    });
    let log = dir.join("server.log");
    let started = as_postgres("pg_ctl")
        .args(["start", "-w", "-t", "60", "-D"])
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .arg("-o")
        .arg(&options)
        .output()
        .expect("pg_ctl start");
    if !started.status.success() {
        let mut text = String::new();
        let _ = std::fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut text));
        panic!(
            "PostgreSQL did not start ({}):\n{}{}\n{text}",
            started.status,
            String::from_utf8_lossy(&started.stdout),
            String::from_utf8_lossy(&started.stderr)
        );
    }
    Cluster {
        port,
        ca,
        _watchdog: watchdog,
    }
}

/// A certificate authority and a server certificate it signed for
/// 127.0.0.1 and localhost (openssl), in `dir`: (certificate, key, CA).
fn certificates(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let at = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        run(
            "openssl (apt-get install openssl)",
            Command::new("openssl").current_dir(dir).args(args),
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=bulletin test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        at("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write server.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    run(
        "chown",
        Command::new("chown")
            .arg("postgres:postgres")
            .arg(at("server.key"))
            .arg(at("server.pem")),
    );
    run(
        "chmod",
        Command::new("chmod").arg("600").arg(at("server.key")),
    );
    (at("server.pem"), at("server.key"), at("ca.pem"))
}

/// A new, empty database on the cluster of this test process (started on
/// first use); its URL (`postgres://postgres@127.0.0.1:PORT/t_N`).
pub(crate) fn database() -> String {
    new_database(CLUSTER.get_or_init(|| start(false)))
}

/// A new, empty database on this process's second cluster, which speaks
/// TLS (and still allows plain connections); its URL and the certificate
/// its server's chains to.
#[allow(dead_code)] // the integration tests use only `database`
pub(crate) fn tls_database() -> (String, PathBuf) {
    let cluster = TLS_CLUSTER.get_or_init(|| start(true));
    let ca = cluster.ca.clone().expect("a TLS cluster has a CA");
    (new_database(cluster), ca)
}

fn new_database(cluster: &Cluster) -> String {
    let name = format!("t_{}", NEXT.fetch_add(1, Ordering::SeqCst));
    let mut admin = postgres::Config::new()
        .host("127.0.0.1")
        .port(cluster.port)
        .user("postgres")
        .dbname("postgres")
        .connect(postgres::NoTls)
        .expect("connect to the test cluster");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create a test database");
    format!("postgres://postgres@127.0.0.1:{}/{name}", cluster.port)
}
