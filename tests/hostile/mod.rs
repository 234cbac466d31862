//! Hostile input and failure: nothing crashes, nothing half-written,
//! nothing leaks. Every test runs the real `bulletin` binary on a
//! throw-away site and checks the exact message, the exit code, and that
//! nothing was written or sent.
//!
//! - `headers`: control characters in anything that reaches a mail header;
//! - `markup`: HTML in titles, summaries, names, keywords (digest parts);
//! - `hygiene`: character references and leap seconds in feeds;
//! - `paths`: section ids, symlinks out of the output and dry-run folders;
//! - `urls`: `javascript:`, `data:`, `file:` links;
//! - `limits`: 200 MB inputs, 50 MB lines, deep nesting, huge fields;
//! - `state`: read-only output, corrupt / newer / missing / locked state;
//! - `secrets`: the SMTP password and the unsubscribe key never leak;
//! - `cache`: damaged build cache entries;
//! - `crashes`: panics and terminal escapes found by fuzzing (fuzz/);
//! - `round2_output`: temporary files, interrupted runs, runaway templates,
//!   header encoding and lengths (issue #17).
//! - `round2_load`: issue #17 — one-line JSON, out-of-range config numbers,
//!   dates in a DST gap, thousands of sections.

mod cache;
mod crashes;
mod headers;
mod hygiene;
mod limits;
mod markup;
mod paths;
mod round2_load;
mod round2_output;
mod secrets;
mod state;
mod urls;
