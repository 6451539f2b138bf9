//! Withdraws the places of a grader who stopped being a grader of a study from the open
//! adjudication rounds, and moves each round on by `domain::workflow::departure`.

use diesel::prelude::*;

use super::super::audit::{self, AuditEntry};
use super::super::grading::current_grades;
use super::super::models::{ItemRow, ProjectRow};
use super::super::schema::{assignments, items, projects};
use super::super::{guidelines, DbConnection, StoreError};
use super::{apply, close_round, Cause, WorkflowError};
use crate::domain::consensus::Decision;
use crate::domain::roles::ItemStatus;
use crate::domain::workflow::departure::{after_departure, AfterDeparture};
use crate::domain::workflow::Event;

/// Reason recorded when a round goes on without a grader who left it.
const DEPARTURE_REASON: &str = "a grader of the round is no longer a grader of the study";

/// An item whose adjudication round lost a place, with its round and status afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundAfterDeparture {
    pub item_id: i64,
    /// The round the place was withdrawn from.
    pub round: i32,
    pub status: ItemStatus,
}

/// Withdraws `grader_id`'s open places in the study's adjudication rounds and closes or
/// escalates each round that no longer waits for anyone. `actor_id` is the lead who changed
/// the role. Call it inside the transaction that changes the role.
///
/// NOTE: only items in adjudication are looked at. An item excluded while in adjudication
/// keeps the departed grader's place, so after a lead reopens it the round waits for that
/// grader again, until they get the grader role back and re-grade.
pub fn withdraw_departed_grader(
    conn: &mut DbConnection,
    project_id: i64,
    grader_id: i64,
    actor_id: Option<i64>,
    now: i64,
) -> Result<Vec<RoundAfterDeparture>, WorkflowError> {
    let places: Vec<(i64, ItemRow)> = assignments::table
        .inner_join(items::table)
        .filter(items::project_id.eq(project_id))
        .filter(items::status.eq(ItemStatus::Adjudication.as_str()))
        .filter(assignments::round.eq(items::round))
        .filter(assignments::grader_id.eq(grader_id))
        .filter(assignments::completed_at.is_null())
        .order(items::id.asc())
        .select((assignments::id, ItemRow::as_select()))
        .load(conn)?;
    if places.is_empty() {
        return Ok(Vec::new());
    }
    let project: ProjectRow = projects::table
        .find(project_id)
        .select(ProjectRow::as_select())
        .first(conn)?;
    let (_, guideline) = guidelines::load(conn, project.guideline_id)?
        .ok_or_else(|| StoreError::Corrupt(format!("guideline {} is missing", project.guideline_id)))?;

    let mut changes = Vec::with_capacity(places.len());
    for (assignment_id, item) in places {
        diesel::delete(assignments::table.find(assignment_id)).execute(conn)?;
        audit::record(
            conn,
            AuditEntry {
                project_id: Some(project_id),
                actor_id,
                action: "assignment.withdrawn",
                object_type: "assignment",
                object_id: Some(assignment_id),
                details: serde_json::json!({
                    "item_id": item.id,
                    "round": item.round,
                    "grader_id": grader_id,
                    "reason": DEPARTURE_REASON,
                }),
            },
        )?;

        let open_places: i64 = assignments::table
            .filter(assignments::item_id.eq(item.id))
            .filter(assignments::round.eq(item.round))
            .filter(assignments::completed_at.is_null())
            .count()
            .get_result(conn)?;
        let regrades = current_grades(conn, item.id, item.round)?.len();
        let status = match after_departure(open_places as usize, regrades) {
            AfterDeparture::Wait => ItemStatus::Adjudication,
            AfterDeparture::CloseRound => close_round(conn, &project, &guideline, &item, now)?,
            AfterDeparture::Arbitrate => {
                let cause = Cause {
                    actor_id: None,
                    reason: DEPARTURE_REASON,
                };
                let extra = serde_json::json!({ "grades": regrades });
                apply(conn, &item, &Event::RoundClosed(Decision::Arbitrate), cause, extra)?.status()
            }
        };
        changes.push(RoundAfterDeparture {
            item_id: item.id,
            round: item.round,
            status,
        });
    }
    Ok(changes)
}
