//! Grading guidelines shipped in `guidelines/`, compiled into the binary and stored at start
//! so that studies can pin them by key and version.

use rust_embed::RustEmbed;

use crate::store::guidelines::{store_guideline, GuidelineStoreError};
use crate::store::DbConnection;

#[derive(RustEmbed)]
#[folder = "guidelines/"]
struct GuidelineFiles;

/// Each bundled guideline as (file name, TOML text).
pub fn bundled_guidelines() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = GuidelineFiles::iter()
        .filter(|name| name.ends_with(".toml"))
        .filter_map(|name| {
            let file = GuidelineFiles::get(&name)?;
            Some((name.to_string(), String::from_utf8_lossy(&file.data).into_owned()))
        })
        .collect();
    files.sort();
    files
}

/// Stores every bundled guideline version that is not stored yet.
///
/// Fails when a bundled file is invalid or differs from a stored guideline with the same key
/// and version (a version never changes once stored).
pub fn store_bundled_guidelines(conn: &mut DbConnection) -> Result<(), GuidelineStoreError> {
    for (name, text) in bundled_guidelines() {
        store_guideline(conn, &text).inspect_err(|error| tracing::error!(file = %name, %error, "bundled guideline rejected"))?;
    }
    Ok(())
}
