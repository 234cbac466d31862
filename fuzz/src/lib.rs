//! The parts of `bulletin` that read untrusted input, from the library
//! crate as any user of it would see them, plus the checks the fuzz targets
//! share.

pub use bulletin::feed::cache;
pub use bulletin::{
    bounce, config, diag, digest, feed, load, model, output, parallel, text, token,
};

pub mod checks;
