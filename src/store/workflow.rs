//! Applies the item workflow to stored items: round outcomes, arbitration, exclusion and
//! reopening.
//!
//! Each change runs inside one write transaction that holds the item's lock (see
//! [`super::grading`]). It checks the event with [`transition`], writes the
//! item's new status and round, and appends one audit event with the actor (none for the
//! policy's own decisions), the time, the reason, and the status before and after. The audit
//! actions are `item.grading_started`, `item.resolved`, `item.to_arbitration`,
//! `item.to_adjudication`, `item.grader_added`, `item.arbitrated`, `item.excluded` and
//! `item.reopened`.
//!
//! When an excluded item goes back to grading and the study's overlap was lowered in the
//! meantime so that its round already has every grade it needs, the round closes at once, as
//! it would have when the overlap changed.
//!
//! Two facts have no column of their own in the fixed schema:
//!
//! - The status an excluded item came from is read back from the `from` detail of its
//!   latest `item.excluded` audit event.
//! - Adjudication rounds are told apart from grading rounds by their assignments. An
//!   adjudication round's assignments are created when the round opens, one for each grader
//!   of the round before, with `leased_until = 0` because they are places, not leases. A
//!   grading round's assignments are leases with a positive expiry, so the round in which
//!   an item last entered grading is the latest round with a lease, and the policy counts
//!   adjudication rounds from there.

pub mod departure;
pub mod review;

use diesel::prelude::*;

use super::audit::{self, AuditEntry};
use super::grading::{current_grades, lock_for_write, lock_item};
use super::models::{ItemRow, ProjectRow};
use super::sql::{Param, Prepared};
use super::schema::{assignments, audit_events, items, memberships, resolutions};
use super::{DbConnection, StoreError, StoreResult};
use crate::domain::answers::Answers;
use crate::domain::assignment::required_grades;
use crate::domain::consensus::{assess, Decision, PolicyParams, ResolutionMethod};
use crate::domain::guideline::Guideline;
use crate::domain::roles::{ItemStatus, ResolutionPolicy, Role};
use crate::domain::workflow::{transition, Event, State, TransitionError};

/// Error of a workflow change that was not made.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("item {0} is not in this study")]
    NotFound(i64),
    #[error("item {item_id}: {error}")]
    Rejected { item_id: i64, error: TransitionError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for WorkflowError {
    fn from(error: diesel::result::Error) -> Self {
        WorkflowError::Store(StoreError::Query(error))
    }
}

/// Actor and reason of a transition. `actor_id` is `None` for the policy's own decisions.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    pub actor_id: Option<i64>,
    pub reason: &'a str,
}

/// Loads the item of a study with this id, inside the caller's transaction.
pub(crate) fn item_in_project(conn: &mut DbConnection, project_id: i64, item_id: i64) -> Result<ItemRow, WorkflowError> {
    super::native!(conn, |c| items::table.find(item_id).select(ItemRow::as_select()).first(c).optional())?
        .filter(|item| item.project_id == project_id)
        .ok_or(WorkflowError::NotFound(item_id))
}

/// Loads the workflow state of a stored item.
pub fn state_of(conn: &mut DbConnection, item: &ItemRow) -> StoreResult<State> {
    let status = ItemStatus::parse(&item.status).ok_or_else(|| StoreError::Corrupt(format!("item status {:?}", item.status)))?;
    let excluded_from = if status == ItemStatus::Excluded { excluded_from(conn, item)? } else { None };
    Ok(State::from_stored(status, item.round, excluded_from))
}

/// Reads the status an excluded item came from: the `from` detail of its latest exclusion event.
fn excluded_from(conn: &mut DbConnection, item: &ItemRow) -> StoreResult<Option<ItemStatus>> {
    let details: Option<String> = audit_events::table
        .filter(audit_events::project_id.eq(item.project_id))
        .filter(audit_events::object_type.eq("item"))
        .filter(audit_events::object_id.eq(item.id))
        .filter(audit_events::action.eq("item.excluded"))
        .order(audit_events::id.desc())
        .select(audit_events::details)
        .first(conn)
        .optional()?;
    let Some(details) = details else {
        return Ok(None);
    };
    let value: serde_json::Value =
        serde_json::from_str(&details).map_err(|e| StoreError::Corrupt(format!("details of the exclusion of item {}: {e}", item.id)))?;
    Ok(value["from"].as_str().and_then(ItemStatus::parse))
}

/// Returns the audit action of a transition.
fn action_of(event: &Event) -> &'static str {
    match event {
        Event::GradingStarted => "item.grading_started",
        Event::RoundClosed(Decision::Resolve { .. }) => "item.resolved",
        Event::RoundClosed(Decision::Arbitrate) => "item.to_arbitration",
        Event::RoundClosed(Decision::Adjudicate { .. }) => "item.to_adjudication",
        Event::RoundClosed(Decision::AddGrader) => "item.grader_added",
        Event::Arbitrated => "item.arbitrated",
        Event::Excluded => "item.excluded",
        Event::Reopened => "item.reopened",
        Event::PseudolabelAccepted => "item.resolved",
    }
}

/// Applies `event` to a stored item: checks the transition, writes the new status and round
/// and appends the audit event, whose details are `from`, `to`, `round`, `reason` and the
/// entries of `extra`. Call it inside the transaction of the change.
pub(crate) fn apply(
    conn: &mut DbConnection,
    item: &ItemRow,
    event: &Event,
    cause: Cause<'_>,
    extra: serde_json::Value,
) -> Result<State, WorkflowError> {
    let from = state_of(conn, item)?;
    let to = transition(from, event).map_err(|error| WorkflowError::Rejected { item_id: item.id, error })?;
    let params = [Param::Int(item.id), Param::Text(to.status().as_str()), Param::Int(i64::from(to.round()))];
    Prepared::new("UPDATE items SET status = $2, round = $3 WHERE id = $1", &params).execute(conn)?;

    let mut details = serde_json::json!({
        "from": from.status().as_str(),
        "to": to.status().as_str(),
        "round": to.round(),
        "reason": cause.reason,
    });
    if let (Some(target), serde_json::Value::Object(entries)) = (details.as_object_mut(), extra) {
        target.extend(entries);
    }
    audit::record(conn, AuditEntry {
        project_id: Some(item.project_id),
        actor_id: cause.actor_id,
        action: action_of(event),
        object_type: "item",
        object_id: Some(item.id),
        details,
    })?;
    Ok(to)
}

/// Finds the round in which the item last entered grading: the latest round up to `round`
/// whose assignments are leases, or 0 when there is none.
fn grading_round_start(conn: &mut DbConnection, item_id: i64, round: i32) -> QueryResult<i32> {
    let start: Option<i32> = super::native!(conn, |c| assignments::table
        .filter(assignments::item_id.eq(item_id))
        .filter(assignments::round.le(round))
        .filter(assignments::leased_until.gt(0))
        .select(diesel::dsl::max(assignments::round))
        .first(c))?;
    Ok(start.unwrap_or(0))
}

/// Counts the rounds run since the item last entered grading, the current one included.
fn rounds_in_cycle(conn: &mut DbConnection, item: &ItemRow) -> QueryResult<i32> {
    Ok(item.round - grading_round_start(conn, item.id, item.round)? + 1)
}

/// A resolution to append.
pub(crate) struct NewResolution<'a> {
    pub(crate) item_id: i64,
    pub(crate) answers_json: &'a str,
    pub(crate) method: ResolutionMethod,
    pub(crate) decided_by: Option<i64>,
    pub(crate) rounds_used: i32,
    pub(crate) reason: &'a str,
    pub(crate) now: i64,
}

/// Appends a resolution that supersedes the item's current one, if any, and returns its id.
pub(crate) fn insert_resolution(conn: &mut DbConnection, resolution: &NewResolution<'_>) -> QueryResult<i64> {
    let existing: Vec<(i64, Option<i64>)> = super::native!(conn, |c| resolutions::table
        .filter(resolutions::item_id.eq(resolution.item_id))
        .select((resolutions::id, resolutions::supersedes))
        .load(c))?;
    let superseded: std::collections::HashSet<i64> = existing.iter().filter_map(|(_, supersedes)| *supersedes).collect();
    let current = existing.iter().map(|(id, _)| *id).filter(|id| !superseded.contains(id)).max();
    super::native!(conn, |c| diesel::insert_into(resolutions::table)
        .values((
            resolutions::item_id.eq(resolution.item_id),
            resolutions::answers.eq(resolution.answers_json),
            resolutions::method.eq(resolution.method.as_str()),
            resolutions::decided_by.eq(resolution.decided_by),
            resolutions::rounds_used.eq(resolution.rounds_used),
            resolutions::reason.eq(resolution.reason),
            resolutions::supersedes.eq(current),
            resolutions::created_at.eq(resolution.now),
        ))
        .execute(c))?;
    super::native!(conn, |c| resolutions::table
        .filter(resolutions::item_id.eq(resolution.item_id))
        .order(resolutions::id.desc())
        .select(resolutions::id)
        .first(c))
}

/// Applies the study's policy to a round that has all its grades and records the outcome:
/// a resolution, arbitration, the next adjudication round with its places, or one more
/// grader. Returns the item's new status.
pub(crate) fn close_round(
    conn: &mut DbConnection,
    project: &ProjectRow,
    guideline: &Guideline,
    item: &ItemRow,
    now: i64,
) -> Result<ItemStatus, WorkflowError> {
    // The caller's row may predate its own changes in this transaction, such as the move
    // from pending to grading.
    let item = &item_in_project(conn, project.id, item.id)?;
    let current = current_grades(conn, item.id, item.round)?;
    let mut answers = Vec::with_capacity(current.len());
    for grade in &current {
        let value: serde_json::Value = serde_json::from_str(&grade.answers)
            .map_err(|e| StoreError::Corrupt(format!("answers of grade {}: {e}", grade.id)))?;
        answers.push(Answers::from_stored(&value).ok_or_else(|| StoreError::Corrupt(format!("answers of grade {}", grade.id)))?);
    }
    let policy = ResolutionPolicy::parse(&project.policy)
        .ok_or_else(|| StoreError::Corrupt(format!("policy {:?} of study {}", project.policy, project.slug)))?;
    let params: PolicyParams = serde_json::from_str(&project.policy_params).unwrap_or_default();
    let has_senior: bool = super::native!(conn, |c| diesel::select(diesel::dsl::exists(
        memberships::table.filter(memberships::project_id.eq(project.id)).filter(memberships::role.eq(Role::Senior.as_str())),
    ))
    .get_result(c))?;

    let rounds_used = rounds_in_cycle(conn, item)?;
    let assessment = assess(guideline, &answers, policy, &params, rounds_used - 1, has_senior);
    let extra = match &assessment.decision {
        Decision::Resolve { method, answers } => {
            let answers_json = serde_json::to_string(answers).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let resolution_id = insert_resolution(conn, &NewResolution {
                item_id: item.id,
                answers_json: &answers_json,
                method: *method,
                decided_by: None,
                rounds_used,
                reason: &assessment.reason,
                now,
            })?;
            serde_json::json!({ "method": method.as_str(), "grades": current.len(), "resolution_id": resolution_id, "rounds_used": rounds_used })
        }
        Decision::Arbitrate => serde_json::json!({ "grades": current.len() }),
        Decision::Adjudicate { .. } => {
            open_adjudication(conn, item, &current, now)?;
            serde_json::json!({ "grades": current.len(), "participants": current.len() })
        }
        Decision::AddGrader => {
            diesel::update(items::table.find(item.id))
                .set(items::extra_grades.eq(item.extra_grades + 1))
                .execute(conn)?;
            serde_json::json!({ "grades": current.len(), "extra_grades": item.extra_grades + 1 })
        }
    };
    let cause = Cause { actor_id: None, reason: &assessment.reason };
    let state = apply(conn, item, &Event::RoundClosed(assessment.decision), cause, extra)?;
    Ok(state.status())
}

/// Gives each grader of the closing round a place in the next round, so that they, and only
/// they, re-grade it.
fn open_adjudication(conn: &mut DbConnection, item: &ItemRow, grades: &[super::models::GradeRow], now: i64) -> QueryResult<()> {
    for grade in grades {
        diesel::insert_into(assignments::table)
            .values((
                assignments::item_id.eq(item.id),
                assignments::grader_id.eq(grade.grader_id),
                assignments::round.eq(item.round + 1),
                assignments::leased_until.eq(0_i64),
                assignments::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// A resolution a senior wrote.
#[derive(Debug, Clone)]
pub struct ArbitrationReceipt {
    pub resolution_id: i64,
    pub project_id: i64,
    pub item_id: i64,
    pub round: i32,
    pub rounds_used: i32,
}

/// Resolves an item in arbitration with a senior's answers and reason.
///
/// Fails with [`WorkflowError::NotFound`] for an item outside the study and
/// [`WorkflowError::Rejected`] when the item is not in arbitration; nothing is written then.
pub fn arbitrate(
    conn: &mut DbConnection,
    project: &ProjectRow,
    item_id: i64,
    senior_id: i64,
    answers: &Answers,
    reason: &str,
    now: i64,
) -> Result<ArbitrationReceipt, WorkflowError> {
    conn.transaction::<_, WorkflowError, _>(|conn| {
        lock_for_write(conn)?;
        lock_item(conn, item_id)?;
        let item = item_in_project(conn, project.id, item_id)?;
        let from = state_of(conn, &item)?;
        transition(from, &Event::Arbitrated).map_err(|error| WorkflowError::Rejected { item_id, error })?;

        let rounds_used = rounds_in_cycle(conn, &item)?;
        let answers_json = answers.to_json().to_string();
        let resolution_id = insert_resolution(conn, &NewResolution {
            item_id,
            answers_json: &answers_json,
            method: ResolutionMethod::Arbitration,
            decided_by: Some(senior_id),
            rounds_used,
            reason,
            now,
        })?;
        let extra = serde_json::json!({ "method": ResolutionMethod::Arbitration.as_str(), "resolution_id": resolution_id, "rounds_used": rounds_used });
        apply(conn, &item, &Event::Arbitrated, Cause { actor_id: Some(senior_id), reason }, extra)?;
        Ok(ArbitrationReceipt { resolution_id, project_id: project.id, item_id, round: item.round, rounds_used })
    })
}

/// An item's state before and after a lead's change.
#[derive(Debug, Clone, Copy)]
pub struct StateChange {
    pub project_id: i64,
    pub item_id: i64,
    pub from: State,
    pub to: State,
}

/// Excludes an item from the study; any state but excluded.
pub fn exclude(conn: &mut DbConnection, project: &ProjectRow, item_id: i64, lead_id: i64, reason: &str) -> Result<StateChange, WorkflowError> {
    change_state(conn, project, item_id, &Event::Excluded, Cause { actor_id: Some(lead_id), reason })
}

/// Reopens a resolved item into a new grading round, or an excluded item into the state it
/// was excluded from.
pub fn reopen(conn: &mut DbConnection, project: &ProjectRow, item_id: i64, lead_id: i64, reason: &str) -> Result<StateChange, WorkflowError> {
    change_state(conn, project, item_id, &Event::Reopened, Cause { actor_id: Some(lead_id), reason })
}

fn change_state(conn: &mut DbConnection, project: &ProjectRow, item_id: i64, event: &Event, cause: Cause<'_>) -> Result<StateChange, WorkflowError> {
    conn.transaction::<_, WorkflowError, _>(|conn| {
        lock_for_write(conn)?;
        lock_item(conn, item_id)?;
        let item = item_in_project(conn, project.id, item_id)?;
        let from = state_of(conn, &item)?;
        let to = apply(conn, &item, event, cause, serde_json::json!({}))?;
        // A new grading round starts with the study's overlap; graders added for an earlier
        // round's tie do not carry over.
        if matches!((from, to), (State::Resolved { .. }, State::Grading { .. })) {
            diesel::update(items::table.find(item.id)).set(items::extra_grades.eq(0)).execute(conn)?;
        }
        // The overlap may have been lowered while the item was excluded, leaving a restored
        // grading round with all the grades it now needs.
        if matches!((from, to), (State::Excluded { .. }, State::Grading { .. })) {
            let graders = current_grades(conn, item.id, item.round)?.len() as i64;
            if graders >= required_grades(project.overlap, item.extra_grades) {
                let (_, guideline) = super::guidelines::load(conn, project.guideline_id)?
                    .ok_or_else(|| StoreError::Corrupt(format!("guideline {} is missing", project.guideline_id)))?;
                close_round(conn, project, &guideline, &item, super::now_ms())?;
                let closed = item_in_project(conn, project.id, item.id)?;
                let to = state_of(conn, &closed)?;
                return Ok(StateChange { project_id: project.id, item_id, from, to });
            }
        }
        Ok(StateChange { project_id: project.id, item_id, from, to })
    })
}
