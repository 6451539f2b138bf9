//! Pure rules of the product: no database, files, network or clock.
//!
//! Everything a handler, the command line and an export must agree on lives here, so it is
//! written once: guideline schema and checks, roles, item states, the ratings matrix and the
//! statistics computed over it.

pub mod active_learning;
pub mod aggregate;
pub mod agreement;
pub mod agreement_report;
pub mod answers;
pub mod assignment;
pub mod consensus;
pub mod guideline;
pub mod model_run;
pub mod ratings;
pub mod roles;
pub mod slug;
pub mod workflow;
