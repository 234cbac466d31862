//! The parts of `bulletin` that read untrusted input, compiled from the main
//! package's own sources (`../src`), plus the checks the fuzz targets share.
//!
//! bulletin is a binary-only crate, so its modules are included here by
//! `#[path]`: config, diag, model, text, load (records and subscribers), feed
//! (RSS, Atom, JSON Feed, OPML), the build cache and its temporary files,
//! digest (templates, messages) and the thread helper they use. They
//! depend on nothing else in the binary (not on cli, commands, output, state
//! or mail), which is what makes this work; if that changes, a `lib.rs`
//! split of the main package is the clean fix.

// The included modules are linted in the main package.

#[path = "../../src/cache.rs"]
#[allow(dead_code, unused_imports, private_interfaces, clippy::all)]
pub mod cache;
#[path = "../../src/config.rs"]
#[allow(dead_code, unused_imports, private_interfaces, clippy::all)]
pub mod config;
#[path = "../../src/diag.rs"]
#[allow(dead_code, unused_imports, private_interfaces, clippy::all)]
pub mod diag;
#[path = "../../src/digest/mod.rs"]
#[allow(dead_code, unused_imports, private_interfaces, clippy::all)]
pub mod digest;
#[path = "../../src/feed/mod.rs"]
#[allow(dead_code, unused_imports, private_interfaces, clippy::all)]
pub mod feed;
#[path = "../../src/load/mod.rs"]
#[allow(dead_code, unused_imports, private_interfaces, clippy::all)]
pub mod load;
#[path = "../../src/model.rs"]
#[allow(dead_code, unused_imports, private_interfaces, clippy::all)]
pub mod model;
#[path = "../../src/parallel.rs"]
#[allow(dead_code, unused_imports, private_interfaces, clippy::all)]
pub mod parallel;
#[path = "../../src/temp.rs"]
#[allow(dead_code, unused_imports, private_interfaces, clippy::all)]
pub mod temp;
#[path = "../../src/text.rs"]
#[allow(dead_code, unused_imports, private_interfaces, clippy::all)]
pub mod text;

pub mod checks;
