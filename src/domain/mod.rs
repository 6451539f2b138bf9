//! Pure rules of the product: no database, files, network or clock.
//!
//! Everything a handler, the command line and an export must agree on lives here, so it is
//! written once: guideline schema and checks, roles, item states, the ratings matrix and the
//! statistics computed over it.

//TMP pub mod aggregate;
//TMP pub mod agreement;
pub mod guideline;
pub mod ratings;
pub mod roles;
pub mod slug;
