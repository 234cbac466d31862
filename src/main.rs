//! `bulletin`: feeds and an email digest for news sites.

mod config;
mod diag;
mod load;
mod model;
mod text;

fn main() {}
