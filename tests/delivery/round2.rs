//! Hardening of `digest --send` (issue #17): each test pins one defect found
//! in the second round and fails on the code before its fix.

use std::fs;
use std::process::Command;

use crate::harness::*;

/// `digest --send` with its file-size limit at `kib` KiB (writes beyond it
/// fail with EFBIG, as on a full disk, instead of killing the process).
fn send_with_file_size_limit(site: &Site, kib: u64) -> Run {
    let mut command = Command::new("sh");
    command
        .current_dir(site.root())
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"",
            kib * 2
        ))
        .arg(BIN)
        .args(["digest", "--config", "feeds.toml", "--send", "--now", NOW])
        .env(SECRET_VAR, SECRET)
        .env_remove(PASSWORD_VAR);
    Run::of(&mut command)
}

// ---- 16: every state error names the file ------------------------------------

/// Regression: a state linked to `/dev/null` failed with "disk I/O error:
/// Error code 1034: disk I/O error", naming no file.
#[test]
fn a_state_database_linked_to_dev_null_is_an_error_naming_the_file() {
    let site = Site::new(3);
    fs::create_dir_all(site.path("state")).unwrap();
    std::os::unix::fs::symlink("/dev/null", site.state_path()).unwrap();
    let run = site.send();
    run.expect(1, "a state on /dev/null");
    assert!(
        run.stderr.contains("state/digest.state") && run.stderr.contains("disk I/O error"),
        "the error should name the state database:\n{run}"
    );
}

/// Regression: the disk filling up while the schema was written (the
/// migration) failed with "database or disk is full: Error code 13" or
/// "disk I/O error", naming no file.
#[test]
fn a_full_disk_while_the_schema_is_written_is_an_error_naming_the_file() {
    let site = Site::new(3);
    let run = send_with_file_size_limit(&site, 64);
    run.expect(1, "no room for the state database's tables");
    let error = run.stderr.lines().find(|l| l.starts_with("error:"));
    assert!(
        error.is_some_and(|l| l.contains("state/digest.state")),
        "the error should name the state database:\n{run}"
    );
}
