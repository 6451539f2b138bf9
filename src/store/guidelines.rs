//! Stored guideline versions. A version never changes once stored: storing the same key and
//! version again with other content is rejected, so every grade keeps the text it was made
//! against.

use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::models::{GuidelineRow, NewGuideline};
use super::schema::guidelines;
use super::{now_ms, DbConnection, StoreError};
use crate::domain::guideline::{parse_guideline, Guideline, GuidelineProblem};

#[derive(Debug, thiserror::Error)]
pub enum GuidelineStoreError {
    #[error("the guideline is invalid:\n{}", format_problems(.0))]
    Invalid(Vec<GuidelineProblem>),
    #[error("guideline {key} version {version} is already stored with different content; a version never changes once stored, so give the edited guideline a new version")]
    VersionChanged { key: String, version: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn format_problems(problems: &[GuidelineProblem]) -> String {
    problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
}

impl From<diesel::result::Error> for GuidelineStoreError {
    fn from(error: diesel::result::Error) -> Self {
        GuidelineStoreError::Store(StoreError::Query(error))
    }
}

/// Stores a guideline document, or returns the stored row when the same key, version and
/// content are already there.
pub fn store_guideline(conn: &mut DbConnection, source_toml: &str) -> Result<(GuidelineRow, Guideline), GuidelineStoreError> {
    let guideline = parse_guideline(source_toml).map_err(GuidelineStoreError::Invalid)?;
    let sha256 = hex::encode(Sha256::digest(source_toml.as_bytes()));
    let fields = serde_json::to_string(&guideline.fields).map_err(|e| StoreError::Corrupt(e.to_string()))?;

    conn.transaction(|conn| {
        super::take_write_lock(conn)?;
        let existing = guidelines::table
            .filter(guidelines::key.eq(&guideline.key))
            .filter(guidelines::version.eq(&guideline.version))
            .select(GuidelineRow::as_select())
            .first(conn)
            .optional()?;
        if let Some(row) = existing {
            if row.sha256 != sha256 {
                return Err(GuidelineStoreError::VersionChanged {
                    key: guideline.key.clone(),
                    version: guideline.version.clone(),
                });
            }
            return Ok((row, guideline.clone()));
        }
        let new = NewGuideline {
            key: &guideline.key,
            version: &guideline.version,
            title: &guideline.title,
            body: &guideline.body,
            fields: &fields,
            source_toml,
            sha256: &sha256,
            created_at: now_ms(),
        };
        diesel::insert_into(guidelines::table).values(&new).execute(conn)?;
        let row = guidelines::table
            .filter(guidelines::key.eq(&guideline.key))
            .filter(guidelines::version.eq(&guideline.version))
            .select(GuidelineRow::as_select())
            .first(conn)?;
        Ok((row, guideline.clone()))
    })
}

/// Loads a stored guideline by id.
pub fn load(conn: &mut DbConnection, id: i64) -> Result<Option<(GuidelineRow, Guideline)>, StoreError> {
    let Some(row) = guidelines::table.find(id).select(GuidelineRow::as_select()).first(conn).optional()? else {
        return Ok(None);
    };
    let guideline = guideline_of(&row)?;
    Ok(Some((row, guideline)))
}

/// Finds a stored guideline by key and version.
pub fn find(conn: &mut DbConnection, key: &str, version: &str) -> Result<Option<GuidelineRow>, StoreError> {
    Ok(guidelines::table
        .filter(guidelines::key.eq(key))
        .filter(guidelines::version.eq(version))
        .select(GuidelineRow::as_select())
        .first(conn)
        .optional()?)
}

/// Rebuilds the domain guideline from its stored row.
pub fn guideline_of(row: &GuidelineRow) -> Result<Guideline, StoreError> {
    let fields = serde_json::from_str(&row.fields)
        .map_err(|e| StoreError::Corrupt(format!("fields of guideline {} {}: {e}", row.key, row.version)))?;
    Ok(Guideline {
        key: row.key.clone(),
        version: row.version.clone(),
        title: row.title.clone(),
        body: row.body.clone(),
        fields,
    })
}
