//! What aggregators need from the feeds (issue #15): topic feeds across
//! sections (`topics`), WebSub hubs told about changed feeds (`websub`,
//! against a real HTTP server on loopback), the size guard (`size`), and
//! the example site with topics, a logo, images and a hub read by strict
//! and common readers, newsboat among them (`readers`).

mod readers;
mod size;
mod topics;
mod websub;
