//! Active learning in the database: the training set and the unresolved items a model run
//! reads, the run rows it writes ([`runs`]), and pseudolabels a lead accepts as resolutions
//! ([`accept`]).
//!
//! A run reads its labels once, at the start: every resolved item whose current resolution
//! answers the field, with the answer's position in the guideline's option order as its
//! class. It scores the items still waiting for grades (pending or in grading). Its
//! predictions and the new item priorities are written together in one transaction when the
//! run succeeds, so a failed run leaves the priorities of the run before it in place.

pub mod accept;
pub mod runs;

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use super::schema::{items, resolutions};
use super::{DbConnection, StoreError, StoreResult};
use crate::domain::roles::ItemStatus;

/// Metadata keys read as the patient an image belongs to, in order of preference. Images of
/// one patient stay on the same side of the split between training and evaluation.
pub const PATIENT_KEYS: [&str; 3] = ["patient", "patient_id", "patient_pseudonym"];

/// An item's image as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemImage {
    pub item_id: i64,
    pub name: String,
    /// SHA-256 of the original, which names the derived display copy.
    pub sha256: String,
}

/// A resolved item with its class for one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabeledItem {
    pub image: ItemImage,
    /// Position of the resolved answer in the field's option order.
    pub class_index: usize,
    /// The patient from the item's metadata ([`PATIENT_KEYS`]), if recorded.
    pub group: Option<String>,
}

/// A resolved item with one of its resolutions: item id, name, sha256, metadata, resolution
/// id, answers, and the resolution it supersedes.
type ResolvedRow = (i64, String, String, String, i64, String, Option<i64>);

/// Loads the resolved items of a study whose current resolution answers `field` with one of
/// `classes`, in item id order.
///
/// Items whose resolution leaves the field out (its condition was false, such as DR
/// severity of an ungradable image) are not part of the training set.
pub fn training_set(conn: &mut DbConnection, project_id: i64, field: &str, classes: &[String]) -> StoreResult<Vec<LabeledItem>> {
    let rows: Vec<ResolvedRow> = items::table
        .inner_join(resolutions::table)
        .filter(items::project_id.eq(project_id))
        .filter(items::status.eq(ItemStatus::Resolved.as_str()))
        .order((items::id.asc(), resolutions::id.asc()))
        .select((
            items::id,
            items::name,
            items::sha256,
            items::metadata,
            resolutions::id,
            resolutions::answers,
            resolutions::supersedes,
        ))
        .load(conn)?;
    let superseded: HashSet<i64> = rows.iter().filter_map(|row| row.6).collect();
    // The current resolution of an item is its newest one that no other supersedes.
    let mut current: HashMap<i64, usize> = HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        if !superseded.contains(&row.4) {
            current.insert(row.0, index);
        }
    }
    let mut labeled = Vec::with_capacity(current.len());
    let mut indices: Vec<usize> = current.into_values().collect();
    indices.sort_unstable();
    for index in indices {
        let (item_id, name, sha256, metadata, resolution_id, answers, _) = &rows[index];
        let answers: serde_json::Value = serde_json::from_str(answers)
            .map_err(|e| StoreError::Corrupt(format!("answers of resolution {resolution_id}: {e}")))?;
        let Some(value) = answers.get(field).and_then(|value| value.as_str()) else {
            continue;
        };
        let Some(class_index) = classes.iter().position(|class| class == value) else {
            continue;
        };
        labeled.push(LabeledItem {
            image: ItemImage { item_id: *item_id, name: name.clone(), sha256: sha256.clone() },
            class_index,
            group: patient_of(metadata, *item_id)?,
        });
    }
    Ok(labeled)
}

/// Reads the patient of an item from its metadata JSON; text and numbers count.
fn patient_of(metadata: &str, item_id: i64) -> StoreResult<Option<String>> {
    let value: serde_json::Value =
        serde_json::from_str(metadata).map_err(|e| StoreError::Corrupt(format!("metadata of item {item_id}: {e}")))?;
    for key in PATIENT_KEYS {
        match value.get(key) {
            Some(serde_json::Value::String(text)) if !text.trim().is_empty() => return Ok(Some(text.trim().to_string())),
            Some(serde_json::Value::Number(number)) => return Ok(Some(number.to_string())),
            _ => {}
        }
    }
    Ok(None)
}

/// Loads the items of a study that still wait for grades (pending or in grading), in id
/// order: the items a run scores.
pub fn unresolved_items(conn: &mut DbConnection, project_id: i64) -> StoreResult<Vec<ItemImage>> {
    let rows: Vec<(i64, String, String)> = items::table
        .filter(items::project_id.eq(project_id))
        .filter(items::status.eq_any([ItemStatus::Pending.as_str(), ItemStatus::Grading.as_str()]))
        .order(items::id.asc())
        .select((items::id, items::name, items::sha256))
        .load(conn)?;
    Ok(rows.into_iter().map(|(item_id, name, sha256)| ItemImage { item_id, name, sha256 }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_keys_in_order_of_preference() {
        assert_eq!(patient_of(r#"{"patient_id": "P2", "patient": "P1"}"#, 1).ok().flatten(), Some("P1".into()));
        assert_eq!(patient_of(r#"{"patient_pseudonym": 17}"#, 1).ok().flatten(), Some("17".into()));
        assert_eq!(patient_of(r#"{"patient": " ", "eye": "left"}"#, 1).ok().flatten(), None);
        assert!(patient_of("not json", 1).is_err());
    }
}
