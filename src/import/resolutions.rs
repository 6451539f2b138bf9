//! Import of final labels decided outside Quorum, for example by an adjudication panel.
//!
//! File layout: columns `image` and one column per guideline field, plus an optional
//! `reason`. Each row becomes a resolution with method `imported`, no deciding user and
//! `rounds_used` 0 (no round of this server decided it), superseding the item's current
//! resolution if it has one. The item becomes resolved in its current round, whatever its
//! status was, except that an excluded item is rejected: a lead must reopen it first. Each
//! resolution is recorded in the audit trail as `item.resolved` with method `imported`.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use super::table::Table;
use super::{answers_of, check_columns, ImportError, ImportProblem};
use crate::domain::answers::{validate_answers, Answers};
use crate::domain::consensus::ResolutionMethod;
use crate::domain::roles::ItemStatus;
use crate::store::audit::{self, AuditEntry};
use crate::store::grading::{lock_for_write, lock_item};
use crate::store::models::{ItemRow, ProjectRow};
use crate::store::schema::{items, resolutions};
use crate::store::{guidelines, now_ms, DbConnection, StoreError};

/// Columns a resolution file may have besides the guideline's fields.
pub const RESOLUTION_COLUMNS: [&str; 2] = ["image", "reason"];

/// Counts of a resolution import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolutionImportReport {
    /// Resolutions stored.
    pub resolutions: usize,
    /// Items that had a current resolution, which the imported one supersedes.
    pub replaced: usize,
}

struct PlannedResolution {
    line: u64,
    item: ItemRow,
    answers: Answers,
    reason: String,
}

/// Checks a resolution file and stores it in one transaction. Rows without a `reason` cell
/// get `default_reason`.
///
/// Fails with [`ImportError::Rejected`] listing every problem; nothing is stored then.
pub fn import_resolutions(
    conn: &mut DbConnection,
    project: &ProjectRow,
    table: &Table,
    default_reason: &str,
) -> Result<ResolutionImportReport, ImportError> {
    let (_, guideline) = guidelines::load(conn, project.guideline_id)?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "guideline {} of study {} is missing",
            project.guideline_id, project.slug
        ))
    })?;
    let mut problems = check_columns(table, &guideline, &RESOLUTION_COLUMNS);
    let Some(image_column) = table.column("image") else {
        problems.push(ImportProblem::at(
            table.header_line,
            None,
            "the header has no image column; a resolution file needs image and one column per guideline field".into(),
        ));
        return Err(ImportError::Rejected(problems));
    };
    let reason_column = table.column("reason");

    let mut planned = Vec::with_capacity(table.rows.len());
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for row in &table.rows {
        let image = row.cells[image_column].trim().to_string();
        let mut row_ok = true;
        let item = if image.is_empty() {
            problems.push(ImportProblem::at(
                row.line,
                Some("image"),
                "the image name is empty".into(),
            ));
            None
        } else {
            crate::store::items::find_by_name(conn, project.id, &image)?
        };
        match &item {
            None if !image.is_empty() => problems.push(ImportProblem::at(
                row.line,
                Some("image"),
                format!(
                    "study {} has no image named {image:?}; import the image first or fix the name",
                    project.slug
                ),
            )),
            Some(item) if item.status == ItemStatus::Excluded.as_str() => problems.push(ImportProblem::at(
                row.line,
                Some("image"),
                format!("{image} is excluded from the study; a lead must reopen it before it takes a label"),
            )),
            _ => {}
        }
        if let Some(earlier) = first_line.get(&image) {
            problems.push(ImportProblem::at(
                row.line,
                Some("image"),
                format!("{image} already has a label on line {earlier}; keep one row per image"),
            ));
            row_ok = false;
        } else if !image.is_empty() {
            first_line.insert(image.clone(), row.line);
        }
        let answers = match validate_answers(&guideline, &answers_of(table, &guideline, row)) {
            Ok(answers) => Some(answers),
            Err(error) => {
                problems.push(ImportProblem::at(row.line, Some(&error.field), error.message));
                None
            }
        };
        let reason = reason_column
            .map(|index| row.cells[index].trim().to_string())
            .filter(|reason| !reason.is_empty());
        if let (true, Some(item), Some(answers)) = (row_ok, item, answers) {
            if item.status != ItemStatus::Excluded.as_str() {
                planned.push(PlannedResolution {
                    line: row.line,
                    item,
                    answers,
                    reason: reason.unwrap_or_else(|| default_reason.to_string()),
                });
            }
        }
    }
    if !problems.is_empty() {
        return Err(ImportError::Rejected(problems));
    }

    conn.transaction::<_, ImportError, _>(|conn| {
        lock_for_write(conn)?;
        let mut report = ResolutionImportReport::default();
        for resolution in &planned {
            report.replaced += usize::from(store_resolution(conn, project, resolution)?);
            report.resolutions += 1;
        }
        Ok(report)
    })
}

/// Appends one imported resolution and resolves its item. Returns true when it superseded
/// a current resolution.
fn store_resolution(
    conn: &mut DbConnection,
    project: &ProjectRow,
    planned: &PlannedResolution,
) -> Result<bool, ImportError> {
    lock_item(conn, planned.item.id)?;
    let item: ItemRow = items::table
        .find(planned.item.id)
        .select(ItemRow::as_select())
        .first(conn)?;
    if item.status == ItemStatus::Excluded.as_str() {
        return Err(ImportError::rejected(ImportProblem::at(
            planned.line,
            Some("image"),
            format!(
                "{} was excluded while the file was checked; a lead must reopen it first",
                item.name
            ),
        )));
    }
    let existing: Vec<(i64, Option<i64>)> = resolutions::table
        .filter(resolutions::item_id.eq(item.id))
        .select((resolutions::id, resolutions::supersedes))
        .load(conn)?;
    let superseded: HashSet<i64> = existing.iter().filter_map(|(_, supersedes)| *supersedes).collect();
    let current = existing
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !superseded.contains(id))
        .max();

    let now = now_ms();
    let method = ResolutionMethod::Imported.as_str();
    diesel::insert_into(resolutions::table)
        .values((
            resolutions::item_id.eq(item.id),
            resolutions::answers.eq(planned.answers.to_json().to_string()),
            resolutions::method.eq(method),
            resolutions::decided_by.eq(None::<i64>),
            resolutions::rounds_used.eq(0),
            resolutions::reason.eq(&planned.reason),
            resolutions::supersedes.eq(current),
            resolutions::created_at.eq(now),
        ))
        .execute(conn)?;
    let resolution_id: i64 = resolutions::table
        .filter(resolutions::item_id.eq(item.id))
        .order(resolutions::id.desc())
        .select(resolutions::id)
        .first(conn)?;
    diesel::update(items::table.find(item.id))
        .set(items::status.eq(ItemStatus::Resolved.as_str()))
        .execute(conn)?;
    audit::record(
        conn,
        AuditEntry {
            project_id: Some(project.id),
            actor_id: None,
            action: "item.resolved",
            object_type: "item",
            object_id: Some(item.id),
            details: serde_json::json!({
                "from": item.status,
                "to": ItemStatus::Resolved.as_str(),
                "round": item.round,
                "reason": planned.reason,
                "method": method,
                "resolution_id": resolution_id,
                "rounds_used": 0,
                "supersedes": current,
            }),
        },
    )?;
    Ok(current.is_some())
}

/// Reads, checks and stores a resolution file in one call; the entry point of the command
/// line.
pub fn import_resolution_file(
    conn: &mut DbConnection,
    project: &ProjectRow,
    bytes: &[u8],
    encoding: super::Encoding,
    default_reason: &str,
) -> Result<ResolutionImportReport, ImportError> {
    let table = super::read_table(bytes, encoding)?;
    import_resolutions(conn, project, &table, default_reason)
}
