//! Accepting a run's pseudolabels as resolutions.
//!
//! An accepted proposal becomes a resolution with method `model`, decided by the lead who
//! accepted it, `rounds_used` 0 (no grading round decided it) and a reason that names the
//! run, the model and its confidence. Its answers hold the run's field only. The item moves
//! to resolved through the workflow's `PseudolabelAccepted` event, which only a pending item
//! or one in grading takes, and the audit trail gets `item.resolved` for each item and one
//! `model_run.pseudolabels_accepted` for the request. The prediction keeps the id of the
//! resolution made from it.
//!
//! The whole request is one transaction. A request naming items is all or nothing: an item
//! without a proposal in the run, already accepted, or no longer waiting for grades rejects
//! it. A request by confidence takes every open proposal at or above the confidence and
//! passes over items that left grading since the run.

use diesel::prelude::*;

use super::runs::{find_run, ModelRunRow, RunStatus};
use crate::domain::consensus::ResolutionMethod;
use crate::domain::roles::ItemStatus;
use crate::domain::workflow::{Event, TransitionError};
use crate::store::audit::{self, AuditEntry};
use crate::store::grading::{lock_for_write, lock_item};
use crate::store::models::ProjectRow;
use crate::store::schema::predictions;
use crate::store::workflow::{apply, insert_resolution, item_in_project, Cause, NewResolution, WorkflowError};
use crate::store::{now_ms, DbConnection, StoreError};

/// Which proposals of a run to accept.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Exactly these items; each must have an open proposal.
    Items(Vec<i64>),
    /// Every open proposal whose confidence is at least this.
    MinConfidence(f64),
}

/// One accepted pseudolabel.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedPseudolabel {
    pub item_id: i64,
    pub resolution_id: i64,
    /// The item's round when it was resolved.
    pub round: i32,
    pub value: String,
    pub confidence: f64,
}

/// Outcome of an accept request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AcceptReport {
    pub accepted: Vec<AcceptedPseudolabel>,
    /// Proposals at or above the confidence whose item left grading since the run.
    pub skipped: usize,
}

/// Why nothing was accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("model run {0} is not in this study")]
    RunNotFound(i64),
    #[error("model run {run_id} is {status}; only a succeeded run has proposals to accept")]
    RunNotSucceeded { run_id: i64, status: String },
    #[error("item {item_id} has no pseudolabel proposal in model run {run_id}; accept only items the run proposed")]
    NoProposal { run_id: i64, item_id: i64 },
    #[error("the proposal of model run {run_id} for item {item_id} was already accepted as resolution {resolution_id}")]
    AlreadyAccepted { run_id: i64, item_id: i64, resolution_id: i64 },
    #[error("item {item_id}: {error}")]
    Rejected { item_id: i64, error: TransitionError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for AcceptError {
    fn from(error: diesel::result::Error) -> Self {
        AcceptError::Store(StoreError::Query(error))
    }
}

impl From<WorkflowError> for AcceptError {
    fn from(error: WorkflowError) -> Self {
        match error {
            WorkflowError::NotFound(item_id) => AcceptError::Store(StoreError::Corrupt(format!(
                "item {item_id} has a prediction but is not in the run's study"
            ))),
            WorkflowError::Rejected { item_id, error } => AcceptError::Rejected { item_id, error },
            WorkflowError::Store(store) => AcceptError::Store(store),
        }
    }
}

/// A proposal of the run: item, value, confidence, and the resolution made from it.
type ProposalRow = (i64, Option<String>, Option<f64>, Option<i64>);

/// Accepts proposals of a succeeded run as resolutions decided by `lead_id`; see the module
/// documentation for the rules. Nothing is written when it fails.
pub fn accept_proposals(
    conn: &mut DbConnection,
    project: &ProjectRow,
    run_id: i64,
    selection: &Selection,
    lead_id: i64,
) -> Result<AcceptReport, AcceptError> {
    conn.transaction::<_, AcceptError, _>(|conn| {
        lock_for_write(conn)?;
        let run = find_run(conn, project.id, run_id)?.ok_or(AcceptError::RunNotFound(run_id))?;
        if run.status != RunStatus::Succeeded.as_str() {
            return Err(AcceptError::RunNotSucceeded { run_id, status: run.status });
        }
        let open: Vec<ProposalRow> = predictions::table
            .filter(predictions::run_id.eq(run_id))
            .filter(predictions::proposal.is_not_null())
            .order((predictions::confidence.desc(), predictions::item_id.asc()))
            .select((
                predictions::item_id,
                predictions::proposal,
                predictions::confidence,
                predictions::accepted_resolution_id,
            ))
            .load(conn)?;

        let mut report = AcceptReport::default();
        match selection {
            Selection::Items(item_ids) => {
                let mut seen = std::collections::HashSet::new();
                for &item_id in item_ids {
                    if !seen.insert(item_id) {
                        continue;
                    }
                    let row = open
                        .iter()
                        .find(|row| row.0 == item_id)
                        .ok_or(AcceptError::NoProposal { run_id, item_id })?;
                    if let Some(resolution_id) = row.3 {
                        return Err(AcceptError::AlreadyAccepted { run_id, item_id, resolution_id });
                    }
                    report.accepted.push(accept_one(conn, project, &run, row, lead_id)?);
                }
            }
            Selection::MinConfidence(min_confidence) => {
                for row in &open {
                    let (item_id, _, confidence, accepted) = row;
                    if accepted.is_some() || confidence.is_none_or(|c| c < *min_confidence) {
                        continue;
                    }
                    let item = item_in_project(conn, project.id, *item_id)?;
                    if item.status != ItemStatus::Pending.as_str() && item.status != ItemStatus::Grading.as_str() {
                        report.skipped += 1;
                        continue;
                    }
                    report.accepted.push(accept_one(conn, project, &run, row, lead_id)?);
                }
            }
        }

        let accepted_ids: Vec<i64> = report.accepted.iter().map(|accepted| accepted.item_id).collect();
        let requested = match selection {
            Selection::Items(item_ids) => serde_json::json!({ "item_ids": item_ids }),
            Selection::MinConfidence(min_confidence) => serde_json::json!({ "min_confidence": min_confidence }),
        };
        audit::record(conn, AuditEntry {
            project_id: Some(project.id),
            actor_id: Some(lead_id),
            action: "model_run.pseudolabels_accepted",
            object_type: "model_run",
            object_id: Some(run_id),
            details: serde_json::json!({
                "requested": requested,
                "accepted": accepted_ids.len(),
                "skipped": report.skipped,
                "item_ids": accepted_ids,
            }),
        })?;
        Ok(report)
    })
}

/// Resolves one item from a proposal of the run, inside the caller's transaction.
fn accept_one(
    conn: &mut DbConnection,
    project: &ProjectRow,
    run: &ModelRunRow,
    row: &ProposalRow,
    lead_id: i64,
) -> Result<AcceptedPseudolabel, AcceptError> {
    let (item_id, proposal, confidence, _) = row;
    let value = proposal.clone().unwrap_or_default();
    let confidence = confidence.unwrap_or(0.0);
    lock_item(conn, *item_id)?;
    let item = item_in_project(conn, project.id, *item_id)?;

    let reason = format!(
        "pseudolabel of model run {} ({} model, {} sampling) for {}: {} with confidence {:.3}",
        run.id, run.model_kind, run.strategy, run.field, value, confidence
    );
    let mut answers = serde_json::Map::new();
    answers.insert(run.field.clone(), serde_json::Value::String(value.clone()));
    let answers = serde_json::Value::Object(answers).to_string();
    let resolution_id = insert_resolution(conn, &NewResolution {
        item_id: item.id,
        answers_json: &answers,
        method: ResolutionMethod::Model,
        decided_by: Some(lead_id),
        rounds_used: 0,
        reason: &reason,
        now: now_ms(),
    })?;
    let extra = serde_json::json!({
        "method": ResolutionMethod::Model.as_str(),
        "resolution_id": resolution_id,
        "rounds_used": 0,
        "run_id": run.id,
        "confidence": confidence,
    });
    let state = apply(conn, &item, &Event::PseudolabelAccepted, Cause { actor_id: Some(lead_id), reason: &reason }, extra)?;
    diesel::update(predictions::table)
        .filter(predictions::run_id.eq(run.id))
        .filter(predictions::item_id.eq(item.id))
        .set(predictions::accepted_resolution_id.eq(resolution_id))
        .execute(conn)?;
    Ok(AcceptedPseudolabel { item_id: item.id, resolution_id, round: state.round(), value, confidence })
}
