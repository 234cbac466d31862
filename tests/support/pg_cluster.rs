//! A private PostgreSQL cluster for the tests: one per test process,
//! started on first use (`initdb` and `pg_ctl` of Debian's `postgresql`
//! package, run as the `postgres` system user because the server refuses
//! root), on a temporary folder, listening on 127.0.0.1 at a free port.
//! Each test gets its own database ([`database`]: `t_<n>`).
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
    _watchdog: Child,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
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

fn start() -> Cluster {
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
    let options = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {} -c max_connections=200 -c shared_buffers=64MB",
        dir.display()
    );
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
        _watchdog: watchdog,
    }
}

/// The cluster of this test process, started on first use.
fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(start)
}

/// A new, empty database on the cluster; its URL
/// (`postgres://postgres@127.0.0.1:PORT/t_N`).
pub(crate) fn database() -> String {
    let cluster = cluster();
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
