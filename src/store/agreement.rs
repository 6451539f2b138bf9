//! Loads a study's current grades and resolutions for the agreement statistics.
//!
//! Grades and resolutions are append-only: a correction is a new row whose `supersedes`
//! names the row it replaces. The current row of a chain is the one no other row
//! supersedes, and only current rows are loaded.

use std::collections::{BTreeMap, HashMap, HashSet};

use diesel::prelude::*;

use super::models::GradeRow;
use super::schema::{grades, items, memberships, resolutions};
use super::{DbConnection, StoreError, StoreResult};
use crate::domain::agreement_report::{GradeRecord, ItemRecord, OwnGrade, StudyRatings};
use crate::domain::answers::Answers;
use crate::domain::roles::ItemStatus;

fn parse_answers(text: &str, what: &str, id: i64) -> StoreResult<Answers> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|error| StoreError::Corrupt(format!("answers of {what} {id}: {error}")))?;
    Answers::from_stored(&value)
        .ok_or_else(|| StoreError::Corrupt(format!("answers of {what} {id} are not a JSON object of strings")))
}

/// Reads item metadata: a JSON object whose values are kept as text (numbers and booleans
/// as written, null as no value).
fn parse_metadata(text: &str, item_id: i64) -> StoreResult<BTreeMap<String, String>> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|error| StoreError::Corrupt(format!("metadata of item {item_id}: {error}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| StoreError::Corrupt(format!("metadata of item {item_id} is not a JSON object")))?;
    Ok(object
        .iter()
        .filter_map(|(key, value)| match value {
            serde_json::Value::String(text) => Some((key.clone(), text.clone())),
            serde_json::Value::Null => None,
            other => Some((key.clone(), other.to_string())),
        })
        .collect())
}

/// The current resolution answers of each item of a study that has one.
fn current_resolutions(conn: &mut DbConnection, project_id: i64) -> StoreResult<HashMap<i64, Answers>> {
    let rows: Vec<(i64, i64, String, Option<i64>)> = resolutions::table
        .inner_join(items::table)
        .filter(items::project_id.eq(project_id))
        .order(resolutions::id.asc())
        .select((
            resolutions::id,
            resolutions::item_id,
            resolutions::answers,
            resolutions::supersedes,
        ))
        .load(conn)?;
    let superseded: HashSet<i64> = rows.iter().filter_map(|row| row.3).collect();
    let mut current = HashMap::new();
    // Rows are in id order, so if an item had two current resolutions the newer one wins.
    for (id, item_id, answers, _) in rows.into_iter().filter(|row| !superseded.contains(&row.0)) {
        current.insert(item_id, parse_answers(&answers, "resolution", id)?);
    }
    Ok(current)
}

/// Drops the grades that a later grade supersedes.
fn keep_current(rows: Vec<GradeRow>) -> Vec<GradeRow> {
    let superseded: HashSet<i64> = rows.iter().filter_map(|row| row.supersedes).collect();
    rows.into_iter().filter(|row| !superseded.contains(&row.id)).collect()
}

/// Loads every item, current grade and current resolution of a study.
///
/// Raters are the users with at least one current grade, in membership order, named by
/// their pseudonym in the study. A grader who is no longer a member is named "Former grader"
/// with a number.
pub fn load_study_ratings(conn: &mut DbConnection, project_id: i64) -> StoreResult<StudyRatings> {
    let item_rows: Vec<(i64, String, String)> = items::table
        .filter(items::project_id.eq(project_id))
        .order(items::id.asc())
        .select((items::id, items::name, items::metadata))
        .load(conn)?;
    let mut resolutions = current_resolutions(conn, project_id)?;
    let mut item_index = HashMap::with_capacity(item_rows.len());
    let mut study_items = Vec::with_capacity(item_rows.len());
    for (index, (id, name, metadata)) in item_rows.into_iter().enumerate() {
        item_index.insert(id, index);
        study_items.push(ItemRecord {
            id,
            metadata: parse_metadata(&metadata, id)?,
            resolution: resolutions.remove(&id),
            name,
        });
    }

    let grade_rows: Vec<GradeRow> = grades::table
        .inner_join(items::table)
        .filter(items::project_id.eq(project_id))
        .order(grades::id.asc())
        .select(GradeRow::as_select())
        .load(conn)?;
    let grade_rows = keep_current(grade_rows);

    let members: Vec<(i64, String)> = memberships::table
        .filter(memberships::project_id.eq(project_id))
        .order(memberships::id.asc())
        .select((memberships::user_id, memberships::pseudonym))
        .load(conn)?;
    let graders: HashSet<i64> = grade_rows.iter().map(|row| row.grader_id).collect();
    let mut rater_ids: Vec<i64> = members
        .iter()
        .map(|(user_id, _)| *user_id)
        .filter(|id| graders.contains(id))
        .collect();
    let mut raters: Vec<String> = members
        .iter()
        .filter(|(user_id, _)| graders.contains(user_id))
        .map(|(_, pseudonym)| pseudonym.clone())
        .collect();
    let mut former: Vec<i64> = graders.iter().copied().filter(|id| !rater_ids.contains(id)).collect();
    former.sort_unstable();
    for (position, user_id) in former.into_iter().enumerate() {
        rater_ids.push(user_id);
        raters.push(format!("Former grader {}", position + 1));
    }
    let rater_index: HashMap<i64, usize> = rater_ids.iter().enumerate().map(|(index, id)| (*id, index)).collect();

    let mut records = Vec::with_capacity(grade_rows.len());
    for row in grade_rows {
        let (Some(&item), Some(&rater)) = (item_index.get(&row.item_id), rater_index.get(&row.grader_id)) else {
            continue;
        };
        records.push(GradeRecord {
            item,
            rater,
            round: row.round,
            answers: parse_answers(&row.answers, "grade", row.id)?,
        });
    }
    Ok(StudyRatings {
        items: study_items,
        raters,
        grades: records,
    })
}

/// Loads one grader's current round-0 grades of the study's resolved items, each with the
/// item's final answers.
///
/// Only resolved items with a current resolution count, so the result says nothing about
/// items still in grading, arbitration or adjudication. Round 0 is the grader's independent
/// grade, made before any adjudication round showed other grades. Only this grader's rows
/// are read.
pub fn load_own_grades(conn: &mut DbConnection, project_id: i64, grader_id: i64) -> StoreResult<Vec<OwnGrade>> {
    let rows: Vec<GradeRow> = grades::table
        .inner_join(items::table)
        .filter(items::project_id.eq(project_id))
        .filter(items::status.eq(ItemStatus::Resolved.as_str()))
        .filter(grades::grader_id.eq(grader_id))
        .filter(grades::round.eq(0))
        .order(grades::id.asc())
        .select(GradeRow::as_select())
        .load(conn)?;
    let rows = keep_current(rows);
    let resolutions = current_resolutions(conn, project_id)?;

    let mut own = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(reference) = resolutions.get(&row.item_id) else {
            continue;
        };
        own.push(OwnGrade {
            answers: parse_answers(&row.answers, "grade", row.id)?,
            reference: reference.clone(),
        });
    }
    Ok(own)
}

/// Returns the pseudonym of a member of a study, or `None` for a non-member.
pub fn pseudonym_of(conn: &mut DbConnection, project_id: i64, user_id: i64) -> StoreResult<Option<String>> {
    Ok(memberships::table
        .filter(memberships::project_id.eq(project_id))
        .filter(memberships::user_id.eq(user_id))
        .select(memberships::pseudonym)
        .first(conn)
        .optional()?)
}
