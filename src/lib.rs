//! Quorum: multi-grader labeling of medical images with adjudication, agreement statistics
//! and a reference-standard export. The module tree follows the layers: `domain` is pure
//! logic, `store` is the database, `http` the web server, `imaging` the image pipeline, `ml` the
//! active-learning model, and `cli` the subcommands that tie them together.

pub mod auth;
pub mod bundled;
pub mod charts;
pub mod cli;
pub mod config;
pub mod csvio;
pub mod demo;
pub mod domain;
pub mod events;
pub mod export;
pub mod http;
pub mod imaging;
pub mod jobs;
pub mod import;
pub mod ml;
pub mod store;
pub mod tabular;
