//! One run of the binary: [`Cmd`] builds it up (arguments, folder,
//! environment), [`Run`] is how it ended, [`Running`] is one still going;
//! [`Cmd::run_within`] runs it under a deadline.
//!
//! Every command starts from the same clean environment: the variables that
//! change what bulletin does or how it prints ([`SCRUBBED`]) are removed,
//! whatever the shell running `cargo test` has set, and stdin is closed. A
//! site, then a test, sets the ones it means.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::BIN;

/// Removed from every command's environment.
const SCRUBBED: [&str; 7] = [
    "BULLETIN_SMTP_PASSWORD",
    "BULLETIN_UNSUBSCRIBE_SECRET",
    "RUST_BACKTRACE",
    "RUST_LOG",
    "NO_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
];

/// `bulletin ARGS`, built up fluently, then run.
pub struct Cmd {
    command: Command,
    args: Vec<OsString>,
    /// The folder whose path [`Run::stderr_rel`] cuts from messages.
    root: Option<PathBuf>,
    /// A program (and its arguments) run instead, with `bulletin ARGS`
    /// after them; see [`Cmd::wrapped_in`].
    wrapper: Vec<OsString>,
}

impl Cmd {
    /// `bulletin` in the test's own working folder.
    pub fn new() -> Cmd {
        let mut command = Command::new(BIN);
        for name in SCRUBBED {
            command.env_remove(name);
        }
        command.stdin(Stdio::null());
        Cmd {
            command,
            args: Vec::new(),
            root: None,
            wrapper: Vec::new(),
        }
    }

    /// `bulletin` run in `dir`; messages read relative to it
    /// ([`Run::stderr_rel`]).
    pub fn in_dir(dir: &Path) -> Cmd {
        let mut cmd = Cmd::new();
        cmd.command.current_dir(dir);
        cmd.root = Some(dir.to_path_buf());
        cmd
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// `--config PATH`.
    pub fn config(self, path: &Path) -> Cmd {
        self.arg("--config").arg(path)
    }

    /// `--out PATH`.
    pub fn out(self, path: &Path) -> Cmd {
        self.arg("--out").arg(path)
    }

    pub fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Cmd {
        self.command.env(name, value);
        self
    }

    pub fn env_remove(mut self, name: &str) -> Cmd {
        self.command.env_remove(name);
        self
    }

    /// Environment changes in order: `Some` sets a variable, `None` removes it.
    pub fn envs(mut self, changes: &[(&str, Option<&str>)]) -> Cmd {
        for (name, value) in changes {
            match value {
                Some(value) => self.command.env(name, value),
                None => self.command.env_remove(name),
            };
        }
        self
    }

    /// Runs `WRAPPER... bulletin ARGS` instead, in the same folder and
    /// environment: a program that changes how bulletin runs and then
    /// executes it, e.g. `["sh", "-c", "ulimit -f 128; exec \"$0\" \"$@\""]`
    /// (`$0` is bulletin) or `["setpriv", "--reuid=65534", ...]`.
    pub fn wrapped_in<I, S>(mut self, wrapper: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.wrapper = wrapper.into_iter().map(Into::into).collect();
        assert!(!self.wrapper.is_empty(), "a wrapper names a program");
        self
    }

    /// The command as it will run: `bulletin ARGS`, or the wrapper's
    /// program with the same folder, environment and stdin.
    fn command(self) -> (Command, Vec<OsString>, Option<PathBuf>) {
        let Cmd {
            mut command,
            args,
            root,
            wrapper,
        } = self;
        let Some((program, wrapper_args)) = wrapper.split_first() else {
            command.args(&args);
            return (command, args, root);
        };
        let mut wrapped = Command::new(program);
        wrapped.args(wrapper_args).arg(BIN).args(&args);
        for (name, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(name, value),
                None => wrapped.env_remove(name),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped.stdin(Stdio::null());
        (wrapped, args, root)
    }

    /// The `std` command, for what this builder does not cover (other
    /// stdout and stderr, `status()`).
    pub fn into_command(self) -> Command {
        self.command().0
    }

    /// Runs to the end, capturing stdout and stderr.
    pub fn run(self) -> Run {
        let (mut command, args, root) = self.command();
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        Run::new(output, args, root)
    }

    /// Runs to the end like [`Cmd::run`], but killed, and the test failed,
    /// if it has not exited within `deadline`: for the tests that guard
    /// against quadratic time. stdout and stderr go to temporary files, so
    /// a long report cannot fill a pipe and stall the run.
    #[track_caller]
    pub fn run_within(self, deadline: Duration) -> Run {
        let (mut command, args, root) = self.command();
        let mut out = tempfile::tempfile().expect("a temporary file for stdout");
        let mut err = tempfile::tempfile().expect("a temporary file for stderr");
        let mut child = command
            .stdout(out.try_clone().expect("clone the stdout file"))
            .stderr(err.try_clone().expect("clone the stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for bulletin") {
                break status;
            }
            if start.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "bulletin {args:?} did not finish in {} s (quadratic again?)",
                    deadline.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let read_back = |file: &mut std::fs::File| {
            let mut bytes = Vec::new();
            file.seek(SeekFrom::Start(0))
                .expect("rewind an output file");
            file.read_to_end(&mut bytes).expect("read an output file");
            bytes
        };
        let output = Output {
            status,
            stdout: read_back(&mut out),
            stderr: read_back(&mut err),
        };
        Run::new(output, args, root)
    }

    /// Starts it, stdout and stderr captured; see [`Running`].
    pub fn spawn(self) -> Running {
        let (mut command, args, root) = self.command();
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        Running {
            child: Some(child),
            args,
            root,
        }
    }
}

/// How one run of the binary ended.
pub struct Run {
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    raw_stdout: Vec<u8>,
    args: Vec<OsString>,
    root: Option<PathBuf>,
}

impl Run {
    /// How a command the test ran itself (`Cmd::into_command`) ended.
    pub fn from_output(output: Output) -> Run {
        Run::new(output, Vec::new(), None)
    }

    fn new(output: Output, args: Vec<OsString>, root: Option<PathBuf>) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            raw_stdout: output.stdout,
            args,
            root,
        }
    }

    /// Asserts exit 0 and that nothing panicked.
    #[track_caller]
    pub fn assert_success(&self) -> &Run {
        self.assert_code(0)
    }

    /// Asserts the exit code, and that nothing panicked.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "expected exit {code}:\n{self}");
        self.assert_no_panic()
    }

    /// Asserts stderr carries no panic message: a panic is not an error
    /// message, whatever the exit code.
    #[track_caller]
    pub fn assert_no_panic(&self) -> &Run {
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "a panic is not an error message:\n{self}"
        );
        self
    }

    /// Asserts stderr contains every one of `needles`.
    #[track_caller]
    pub fn assert_stderr_has(&self, needles: &[&str]) -> &Run {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?}:\n{self}"
            );
        }
        self
    }

    /// stdout, which must be UTF-8.
    #[track_caller]
    pub fn stdout_utf8(&self) -> &str {
        std::str::from_utf8(&self.raw_stdout)
            .unwrap_or_else(|e| panic!("stdout is not UTF-8 ({e}):\n{self}"))
    }

    /// stderr with the command's folder (and the `/` after it) removed, so
    /// paths read `articles/a.toml` whatever the temporary folder is.
    pub fn stderr_rel(&self) -> String {
        match &self.root {
            Some(root) => self.stderr.replace(&format!("{}/", root.display()), ""),
            None => self.stderr.clone(),
        }
    }

    /// The `error: ` lines of stderr without that prefix, colour (SGR)
    /// codes removed, paths as [`Run::stderr_rel`] shows them.
    pub fn errors(&self) -> Vec<String> {
        self.stderr_rel()
            .lines()
            .map(strip_sgr)
            .filter_map(|l| l.strip_prefix("error: ").map(str::to_owned))
            .collect()
    }

    /// The first of [`Run::errors`].
    #[track_caller]
    pub fn error_line(&self) -> String {
        self.errors()
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no error line\n{self}"))
    }

    /// Panics unless `line` is one of [`Run::errors`], exactly.
    #[track_caller]
    pub fn assert_error_line(&self, line: &str) -> &Run {
        let errors = self.errors();
        assert!(
            errors.iter().any(|e| e == line),
            "no error line\n  {line}\namong\n  {}\n{self}",
            errors.join("\n  ")
        );
        self
    }
}

/// `line` without `ESC [ ... m` colour sequences.
fn strip_sgr(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("\u{1b}[") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        match tail.find('m') {
            Some(end) if tail[..end].bytes().all(|b| b.is_ascii_digit() || b == b';') => {
                rest = &tail[end + 1..]
            }
            _ => {
                out.push_str("\u{1b}[");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bulletin {:?}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.args, self.code, self.stdout, self.stderr
        )
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A running `bulletin`, killed (SIGKILL) if still running when dropped.
pub struct Running {
    child: Option<Child>,
    args: Vec<OsString>,
    root: Option<PathBuf>,
}

impl Running {
    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("the child is still ours")
    }

    /// Its process id (for signals).
    pub fn pid(&mut self) -> u32 {
        self.child().id()
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        self.child().try_wait().expect("poll the child").is_some()
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) -> Run {
        let _ = self.child().kill();
        self.finish()
    }

    /// Waits for the exit.
    pub fn finish(mut self) -> Run {
        let child = self.child.take().expect("the child is still ours");
        let output = child.wait_with_output().expect("wait for bulletin");
        Run::new(output, std::mem::take(&mut self.args), self.root.take())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
