//! `reference.csv`: the reference standard, one row per item in item id order.
//!
//! Columns: `image`, every metadata key of the study (sorted; a key that equals another
//! column's name is written as `metadata_KEY`), one column per guideline field in guideline
//! order, then `method`, `n_grades`, `rounds_used`, `resolved_at`, `guideline_version` and
//! `status`.
//!
//! Final values, `method`, `rounds_used` and `resolved_at` come from the item's current
//! resolution and are filled only when the item's status is `resolved`. Every other item
//! (pending, in grading, arbitration or adjudication, excluded, or reopened after a
//! resolution) has empty cells there, never a default class. `n_grades` counts the item's
//! current grades over all rounds: corrections replace the grade they supersede.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use super::context::StudyContext;
use super::format::{csv_writer, write_number};
use super::pipeline::pipelined;
use super::ratings::RatingCollector;
use super::rows::{self, ITEM_PAGE, ROW_PAGE};
use super::stored::{Rfc3339, StoredAnswers, StoredMetadata};
use super::ExportError;
use crate::domain::roles::ItemStatus;

/// Columns after the metadata and field columns.
const TRAILING_COLUMNS: [&str; 6] = [
    "method",
    "n_grades",
    "rounds_used",
    "resolved_at",
    "guideline_version",
    "status",
];

/// The study's items as a first pass finds them: their ids and metadata keys.
#[derive(Debug, Default, Clone)]
pub struct ItemScan {
    /// Ids of the study's items, ascending.
    pub item_ids: Vec<i64>,
    /// Every metadata key used by an item, sorted.
    pub metadata_keys: BTreeSet<String>,
}

/// Counts made while writing `reference.csv`, for the files written after it.
#[derive(Debug, Default, Clone)]
pub struct ReferenceTally {
    pub items: usize,
    /// Items by status.
    pub by_status: BTreeMap<String, u64>,
    /// Resolved items by the method of their resolution.
    pub by_method: BTreeMap<String, u64>,
    /// Current grades of all items.
    pub current_grades: u64,
}

/// Reads the ids and metadata keys of the study's items.
pub fn scan_items(conn: &mut crate::store::DbConnection, project_id: i64) -> Result<ItemScan, ExportError> {
    let mut scan = ItemScan::default();
    let mut after = 0;
    loop {
        let page = rows::metadata_page(conn, project_id, after, ROW_PAGE)?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id;
        for item in &page {
            scan.item_ids.push(item.id);
            for key in metadata_of(&item.metadata, item.id)?.keys() {
                if !scan.metadata_keys.contains(key) {
                    scan.metadata_keys.insert(key.to_string());
                }
            }
        }
    }
    Ok(scan)
}

fn metadata_of(text: &str, item_id: i64) -> Result<StoredMetadata<'_>, ExportError> {
    StoredMetadata::parse(text)
        .map_err(|error| ExportError::Corrupt(format!("the metadata of item {item_id} is invalid: {error}")))
}

/// Names the column of each metadata key: the key itself, or `metadata_KEY` when the key
/// equals a fixed or field column (with more underscores while that still clashes).
fn metadata_columns(keys: &BTreeSet<String>, ctx: &StudyContext) -> Vec<String> {
    let mut taken: BTreeSet<String> = ctx.guideline.fields.iter().map(|field| field.name.clone()).collect();
    taken.insert("image".to_string());
    taken.extend(TRAILING_COLUMNS.iter().map(|name| name.to_string()));
    let mut columns = Vec::with_capacity(keys.len());
    for key in keys {
        let mut column = key.clone();
        let mut prefix = "metadata_".to_string();
        while taken.contains(&column) {
            column = format!("{prefix}{key}");
            prefix.push('_');
        }
        taken.insert(column.clone());
        columns.push(column);
    }
    columns
}

/// Writes `reference.csv` and returns its counts. `grades` gives each item's current grade
/// count, gathered while `grades.csv` was written.
pub fn write_reference(
    conn: &mut crate::store::DbConnection,
    ctx: &StudyContext,
    keys: &BTreeSet<String>,
    grades: &RatingCollector,
    out: &mut dyn Write,
) -> Result<ReferenceTally, ExportError> {
    let project_id = ctx.project.id;
    let mut writer = csv_writer(out);

    let mut header: Vec<String> = vec!["image".to_string()];
    header.extend(metadata_columns(keys, ctx));
    header.extend(ctx.guideline.fields.iter().map(|field| field.name.clone()));
    header.extend(TRAILING_COLUMNS.iter().map(|name| name.to_string()));
    writer.write_record(&header)?;

    let guideline_label = ctx.guideline_label();
    let mut cell = String::new();
    let mut tally = ReferenceTally::default();
    let mut after = 0;
    let read_page = move |conn: &mut crate::store::DbConnection| {
        let page = rows::item_page(conn, project_id, after, ITEM_PAGE)?;
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            return Ok(None);
        };
        let (first_id, last_id) = (first.id, last.id);
        after = last_id;
        let resolutions = rows::resolutions_of_items(conn, first_id, last_id)?;
        Ok(Some((page, resolutions)))
    };
    pipelined(conn, read_page, |(page, resolutions)| {
        let current = rows::current_resolutions(&resolutions);

        for item in &page {
            let metadata = metadata_of(&item.metadata, item.id)?;
            let n_grades = i64::from(grades.current_grades(item.id));
            let resolution = current
                .get(&item.id)
                .filter(|_| item.status == ItemStatus::Resolved.as_str());

            writer.write_field(&item.name)?;
            for key in keys {
                writer.write_field(metadata.get(key).unwrap_or(""))?;
            }
            match resolution {
                Some(resolution) => {
                    let answers = StoredAnswers::parse(&resolution.answers).map_err(|error| {
                        ExportError::Corrupt(format!(
                            "the answers of resolution {} are invalid: {error}",
                            resolution.id
                        ))
                    })?;
                    for field in &ctx.guideline.fields {
                        answers.write_cell(&field.name, &mut cell);
                        writer.write_field(&cell)?;
                    }
                    writer.write_field(&resolution.method)?;
                    write_number(&mut writer, &mut cell, n_grades)?;
                    write_number(&mut writer, &mut cell, i64::from(resolution.rounds_used))?;
                    Rfc3339(resolution.created_at).write_cell(&mut cell);
                    writer.write_field(&cell)?;
                    count(&mut tally.by_method, &resolution.method);
                }
                None => {
                    for _ in &ctx.guideline.fields {
                        writer.write_field("")?;
                    }
                    writer.write_field("")?;
                    write_number(&mut writer, &mut cell, n_grades)?;
                    writer.write_field("")?;
                    writer.write_field("")?;
                }
            }
            writer.write_field(&guideline_label)?;
            writer.write_field(&item.status)?;
            writer.write_record(None::<&[u8]>)?;

            tally.items += 1;
            count(&mut tally.by_status, &item.status);
            tally.current_grades += u64::try_from(n_grades).unwrap_or(0);
        }
        Ok(())
    })?;
    writer.flush()?;
    Ok(tally)
}

/// Adds one to the count of `key`.
fn count(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            counts.insert(key.to_string(), 1);
        }
    }
}
