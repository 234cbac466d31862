//! Progress on stderr: the delivery bar of `digest --send`, and the stderr
//! writer every message goes through, which lifts the bar while it writes so
//! a warning never tears it.

use std::cell::Cell;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar on screen, if any.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `f` with the bar (if one is drawn) cleared from the screen.
fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let bar = ACTIVE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    match bar {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// stderr for `tracing`: colour as the terminal allows (`anstream`), and
/// written above the progress bar.
pub struct Stderr;

/// A new [`Stderr`] (the `tracing` writer factory).
pub fn stderr() -> Stderr {
    Stderr
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        suspend(|| anstream::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What became of one message, as the bar counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Sent,
    Failed,
    Deferred,
}

/// The `digest --send` bar: messages done out of those to send, and how many
/// were sent, failed or deferred. Drawn only on a terminal and without `-q`;
/// gone from the screen when dropped.
pub struct Delivery {
    bar: Option<ProgressBar>,
    sent: Cell<usize>,
    failed: Cell<usize>,
    deferred: Cell<usize>,
}

impl Delivery {
    /// `quiet`: the user asked for errors only (`-q`).
    pub fn start(total: usize, quiet: bool) -> Delivery {
        let show = !quiet && total > 0 && std::io::stderr().is_terminal();
        let bar = show.then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} sending [{bar:30}] {pos}/{len} messages: {msg} ({elapsed})",
            )
            .expect("a valid template")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message("0 sent, 0 failed");
            bar.enable_steady_tick(Duration::from_millis(200));
            *ACTIVE.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
            bar
        });
        Delivery {
            bar,
            sent: Cell::new(0),
            failed: Cell::new(0),
            deferred: Cell::new(0),
        }
    }

    /// Counts one message's outcome.
    pub fn record(&self, tick: Tick) {
        let counter = match tick {
            Tick::Sent => &self.sent,
            Tick::Failed => &self.failed,
            Tick::Deferred => &self.deferred,
        };
        counter.set(counter.get() + 1);
        if let Some(bar) = &self.bar {
            let mut message = format!("{} sent, {} failed", self.sent.get(), self.failed.get());
            if self.deferred.get() > 0 {
                message.push_str(&format!(", {} deferred", self.deferred.get()));
            }
            bar.set_message(message);
            bar.inc(1);
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            *ACTIVE.lock().unwrap_or_else(PoisonError::into_inner) = None;
            bar.finish_and_clear();
        }
    }
}
