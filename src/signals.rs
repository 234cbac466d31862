//! What an interrupted `build` or dry run does: removes its temporary files,
//! then ends the way the signal would have ended it.
//!
//! A thread waits for SIGTERM, SIGINT or SIGHUP; when one comes, it removes
//! every live temporary file (`temp::remove_live`, which also keeps new ones
//! from being created) and re-raises the signal with its default action, so
//! the process ends killed by that signal: a shell reports 143 for SIGTERM,
//! 130 for SIGINT, 129 for SIGHUP, and a calling script stops on Ctrl-C as it
//! should (an `exit(130)` would tell it the program handled the interrupt).
//! If the default action cannot be restored, it exits with 128 + signal.
//!
//! Only the commands that stage files install it: `digest --send` keeps the
//! default actions (its state store is built to be killed at any point).

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Installs the handler (once; later calls do nothing). A handler that
/// cannot be installed only means temporary files may be left behind on a
/// signal, which the next run removes: a warning, not an error.
pub fn remove_temp_files_on_termination() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // The handlers are registered on the thread that waits for them, so
        // that they never exist without it (once registered, a signal no
        // longer has its default action).
        let (ready, installed) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut signals = match Signals::new([SIGTERM, SIGINT, SIGHUP]) {
                    Ok(signals) => signals,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                if let Some(signal) = signals.forever().next() {
                    crate::temp::remove_live(|| {
                        let _ = signal_hook::low_level::emulate_default_handler(signal);
                        std::process::exit(128 + signal)
                    });
                }
            });
        let failure = match spawned {
            Ok(_) => installed.recv().ok().and_then(Result::err),
            Err(e) => Some(e),
        };
        if let Some(e) = failure {
            tracing::warn!(
                "cannot handle termination signals ({e}): an interrupted run may leave temporary files for the next run to remove"
            );
        }
    });
}
