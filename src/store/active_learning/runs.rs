//! Model run rows: starting a run, its progress, its end (predictions and item priorities,
//! or the error), and the reads behind the lead's page and the grader's suggestion.
//!
//! A run's status is `running`, `succeeded` or `failed`. A partial unique index allows one
//! running run per study. A run whose process died stays `running` until its heartbeat
//! ([`ModelRunRow::updated_at`]) is older than [`STALE_AFTER_MS`]; the next start then marks
//! it failed. Audit actions: `model_run.started`, `model_run.succeeded`, `model_run.failed`.

use diesel::prelude::*;

use crate::store::audit::{self, AuditEntry};
use crate::store::grading::lock_for_write;
use crate::store::schema::{items, model_runs, predictions};
use crate::store::{is_unique_violation, now_ms, DbConnection, StoreError, StoreResult};
use crate::domain::roles::ItemStatus;

/// Time without a heartbeat after which a running run counts as abandoned, in milliseconds.
/// A running job writes its heartbeat at least every [`HEARTBEAT_INTERVAL_MS`].
pub const STALE_AFTER_MS: i64 = 5 * 60 * 1000;

/// Time between two heartbeats of a running job, in milliseconds.
pub const HEARTBEAT_INTERVAL_MS: i64 = 30 * 1000;

/// State of a model run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }
}

/// A row of `model_runs`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = model_runs)]
pub struct ModelRunRow {
    pub id: i64,
    pub project_id: i64,
    pub field: String,
    pub strategy: String,
    /// The model trained, empty until the run succeeds.
    pub model_kind: String,
    pub status: String,
    /// Share of the run done, 0 to 1.
    pub progress: f64,
    /// The evaluation on held-out resolved items as JSON, `{}` until the run succeeds.
    pub metrics: String,
    pub error: Option<String>,
    pub started_by: Option<i64>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// The settings the run was started with, as JSON.
    pub settings: String,
    /// The step the run is in, such as `training`.
    pub stage: String,
    /// Last heartbeat or progress report, epoch milliseconds.
    pub updated_at: i64,
}

/// A run to start.
pub struct NewRun<'a> {
    pub project_id: i64,
    pub field: &'a str,
    pub strategy: &'a str,
    pub started_by: Option<i64>,
    pub settings: serde_json::Value,
}

/// Reason a run was not started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("model run {run_id} of this study is still running; wait for it to finish, then start another")]
    Busy { run_id: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for StartError {
    fn from(error: diesel::result::Error) -> Self {
        StartError::Store(StoreError::Query(error))
    }
}

/// Inserts a running run, unless the study has one running already.
///
/// A running run without a heartbeat for [`STALE_AFTER_MS`] is marked failed first, so a
/// crashed server does not block the study for good. Fails with [`StartError::Busy`] naming
/// the running run; nothing is written then.
pub fn create_run(conn: &mut DbConnection, new: &NewRun<'_>) -> Result<ModelRunRow, StartError> {
    let now = now_ms();
    let created = conn.transaction::<_, StartError, _>(|conn| {
        lock_for_write(conn)?;
        if let Some(active) = running_run(conn, new.project_id)? {
            if now - active.updated_at < STALE_AFTER_MS {
                return Err(StartError::Busy { run_id: active.id });
            }
            let message = format!(
                "the run stopped reporting progress at {:.0}% ({}); the process running it ended",
                active.progress * 100.0,
                if active.stage.is_empty() { "starting" } else { &active.stage }
            );
            mark_failed(conn, &active, &message, now)?;
        }
        diesel::insert_into(model_runs::table)
            .values((
                model_runs::project_id.eq(new.project_id),
                model_runs::field.eq(new.field),
                model_runs::strategy.eq(new.strategy),
                model_runs::model_kind.eq(""),
                model_runs::status.eq(RunStatus::Running.as_str()),
                model_runs::progress.eq(0.0),
                model_runs::metrics.eq("{}"),
                model_runs::started_by.eq(new.started_by),
                model_runs::started_at.eq(now),
                model_runs::settings.eq(new.settings.to_string()),
                model_runs::stage.eq("starting"),
                model_runs::updated_at.eq(now),
            ))
            .execute(conn)?;
        let run: ModelRunRow = model_runs::table
            .filter(model_runs::project_id.eq(new.project_id))
            .order(model_runs::id.desc())
            .select(ModelRunRow::as_select())
            .first(conn)?;
        audit::record(conn, AuditEntry {
            project_id: Some(new.project_id),
            actor_id: new.started_by,
            action: "model_run.started",
            object_type: "model_run",
            object_id: Some(run.id),
            details: serde_json::json!({ "field": new.field, "strategy": new.strategy, "settings": new.settings }),
        })?;
        Ok(run)
    });
    match created {
        // Another process inserted its run between our check and our insert.
        Err(StartError::Store(StoreError::Query(error))) if is_unique_violation(&error) => {
            let run_id = running_run(conn, new.project_id)?.map_or(0, |run| run.id);
            Err(StartError::Busy { run_id })
        }
        other => other,
    }
}

/// Loads the study's running run, if any.
pub fn running_run(conn: &mut DbConnection, project_id: i64) -> StoreResult<Option<ModelRunRow>> {
    Ok(model_runs::table
        .filter(model_runs::project_id.eq(project_id))
        .filter(model_runs::status.eq(RunStatus::Running.as_str()))
        .select(ModelRunRow::as_select())
        .first(conn)
        .optional()?)
}

fn mark_failed(conn: &mut DbConnection, run: &ModelRunRow, message: &str, now: i64) -> StoreResult<()> {
    diesel::update(model_runs::table.find(run.id))
        .set((
            model_runs::status.eq(RunStatus::Failed.as_str()),
            model_runs::error.eq(message),
            model_runs::finished_at.eq(now),
            model_runs::updated_at.eq(now),
        ))
        .execute(conn)?;
    audit::record(conn, AuditEntry {
        project_id: Some(run.project_id),
        actor_id: None,
        action: "model_run.failed",
        object_type: "model_run",
        object_id: Some(run.id),
        details: serde_json::json!({ "error": message, "progress": run.progress, "stage": run.stage }),
    })
}

/// Records a running run's progress (0 to 1) and stage, which also counts as a heartbeat.
/// Does nothing once the run has ended.
pub fn record_progress(conn: &mut DbConnection, run_id: i64, progress: f64, stage: &str) -> StoreResult<()> {
    diesel::update(model_runs::table.find(run_id))
        .filter(model_runs::status.eq(RunStatus::Running.as_str()))
        .set((
            model_runs::progress.eq(progress.clamp(0.0, 1.0)),
            model_runs::stage.eq(stage),
            model_runs::updated_at.eq(now_ms()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records that a running run's job is alive.
pub fn record_heartbeat(conn: &mut DbConnection, run_id: i64) -> StoreResult<()> {
    diesel::update(model_runs::table.find(run_id))
        .filter(model_runs::status.eq(RunStatus::Running.as_str()))
        .set(model_runs::updated_at.eq(now_ms()))
        .execute(conn)?;
    Ok(())
}

/// One scored item of a finished run.
#[derive(Debug, Clone)]
pub struct NewPrediction {
    pub item_id: i64,
    /// Class probabilities in the field's option order.
    pub probabilities: Vec<f64>,
    /// Uncertainty scores and the cluster, as JSON.
    pub scores: serde_json::Value,
    /// The image embedding, as little-endian `f32` values.
    pub embedding: Vec<u8>,
    /// The proposed option value and the model's confidence in it, when the confidence
    /// reached the run's threshold.
    pub proposal: Option<(String, f64)>,
    /// Place in the grading queue: higher is served first.
    pub priority: f64,
}

/// Outcome of a succeeded run, to store.
pub struct FinishedRun<'a> {
    pub model_kind: &'a str,
    pub metrics: &'a serde_json::Value,
    pub predictions: &'a [NewPrediction],
}

/// Stores a succeeded run in one transaction: its predictions, the priority of each scored
/// item still pending or in grading, the metrics, and the audit event.
///
/// Returns false, writing nothing, when the run is no longer running (a later start marked
/// it failed after its heartbeat stopped).
pub fn finish_run(conn: &mut DbConnection, run_id: i64, finished: &FinishedRun<'_>) -> StoreResult<bool> {
    conn.transaction::<_, StoreError, _>(|conn| {
        lock_for_write(conn)?;
        let run: ModelRunRow = model_runs::table.find(run_id).select(ModelRunRow::as_select()).first(conn)?;
        if run.status != RunStatus::Running.as_str() {
            return Ok(false);
        }
        let mut proposals = 0usize;
        let mut prioritised = 0usize;
        // One row at a time: diesel cannot insert many rows at once through the connection
        // enum.
        for prediction in finished.predictions {
            let probabilities = serde_json::to_string(&prediction.probabilities).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let (proposal, confidence) = match &prediction.proposal {
                Some((value, confidence)) => (Some(value.as_str()), Some(*confidence)),
                None => (None, None),
            };
            proposals += usize::from(proposal.is_some());
            diesel::insert_into(predictions::table)
                .values((
                    predictions::run_id.eq(run_id),
                    predictions::item_id.eq(prediction.item_id),
                    predictions::probabilities.eq(probabilities),
                    predictions::scores.eq(prediction.scores.to_string()),
                    predictions::embedding.eq(Some(prediction.embedding.as_slice())),
                    predictions::proposal.eq(proposal),
                    predictions::confidence.eq(confidence),
                    predictions::priority.eq(prediction.priority),
                ))
                .execute(conn)?;
            prioritised += diesel::update(items::table.find(prediction.item_id))
                .filter(items::project_id.eq(run.project_id))
                .filter(items::status.eq_any([ItemStatus::Pending.as_str(), ItemStatus::Grading.as_str()]))
                .set(items::priority.eq(prediction.priority))
                .execute(conn)?;
        }
        let now = now_ms();
        diesel::update(model_runs::table.find(run_id))
            .set((
                model_runs::status.eq(RunStatus::Succeeded.as_str()),
                model_runs::model_kind.eq(finished.model_kind),
                model_runs::metrics.eq(finished.metrics.to_string()),
                model_runs::progress.eq(1.0),
                model_runs::stage.eq("done"),
                model_runs::finished_at.eq(now),
                model_runs::updated_at.eq(now),
            ))
            .execute(conn)?;
        audit::record(conn, AuditEntry {
            project_id: Some(run.project_id),
            actor_id: run.started_by,
            action: "model_run.succeeded",
            object_type: "model_run",
            object_id: Some(run_id),
            details: serde_json::json!({
                "model_kind": finished.model_kind,
                "predictions": finished.predictions.len(),
                "proposals": proposals,
                "priorities_written": prioritised,
            }),
        })?;
        Ok(true)
    })
}

/// Marks a running run failed with its error; the study's item priorities stay as they were.
pub fn fail_run(conn: &mut DbConnection, run_id: i64, message: &str) -> StoreResult<()> {
    conn.transaction::<_, StoreError, _>(|conn| {
        lock_for_write(conn)?;
        let run: ModelRunRow = model_runs::table.find(run_id).select(ModelRunRow::as_select()).first(conn)?;
        if run.status != RunStatus::Running.as_str() {
            return Ok(());
        }
        mark_failed(conn, &run, message, now_ms())
    })
}

/// Loads the study's runs, newest first, at most `limit`.
pub fn list_runs(conn: &mut DbConnection, project_id: i64, limit: i64) -> StoreResult<Vec<ModelRunRow>> {
    Ok(model_runs::table
        .filter(model_runs::project_id.eq(project_id))
        .order(model_runs::id.desc())
        .limit(limit)
        .select(ModelRunRow::as_select())
        .load(conn)?)
}

/// Loads the run of a study with this id.
pub fn find_run(conn: &mut DbConnection, project_id: i64, run_id: i64) -> StoreResult<Option<ModelRunRow>> {
    Ok(model_runs::table
        .find(run_id)
        .filter(model_runs::project_id.eq(project_id))
        .select(ModelRunRow::as_select())
        .first(conn)
        .optional()?)
}

/// Loads the study's newest succeeded run.
pub fn latest_succeeded_run(conn: &mut DbConnection, project_id: i64) -> StoreResult<Option<ModelRunRow>> {
    Ok(model_runs::table
        .filter(model_runs::project_id.eq(project_id))
        .filter(model_runs::status.eq(RunStatus::Succeeded.as_str()))
        .order(model_runs::id.desc())
        .select(ModelRunRow::as_select())
        .first(conn)
        .optional()?)
}

/// One scored item of a run as the lead's page lists it.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub item_id: i64,
    pub name: String,
    /// The item's status now, which may have moved on since the run.
    pub status: String,
    pub priority: f64,
    pub probabilities: String,
    pub scores: String,
    pub proposal: Option<String>,
    pub confidence: Option<f64>,
    pub accepted_resolution_id: Option<i64>,
}

type QueueRow = (i64, String, String, f64, String, String, Option<String>, Option<f64>, Option<i64>);

/// Selection and order of a run's predictions in a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// Every scored item by priority, highest first: the ranked queue.
    ByPriority,
    /// The items with a proposal, most confident first.
    Proposals,
}

fn load_entries(conn: &mut DbConnection, run_id: i64, listing: Listing, limit: i64) -> StoreResult<Vec<QueueEntry>> {
    let query = predictions::table.inner_join(items::table).filter(predictions::run_id.eq(run_id)).into_boxed();
    let query = match listing {
        Listing::ByPriority => query.order((predictions::priority.desc(), predictions::item_id.asc())),
        Listing::Proposals => query
            .filter(predictions::proposal.is_not_null())
            .order((predictions::confidence.desc(), predictions::item_id.asc())),
    };
    let rows: Vec<QueueRow> = query
        .limit(limit)
        .select((
            predictions::item_id,
            items::name,
            items::status,
            predictions::priority,
            predictions::probabilities,
            predictions::scores,
            predictions::proposal,
            predictions::confidence,
            predictions::accepted_resolution_id,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let (item_id, name, status, priority, probabilities, scores, proposal, confidence, accepted_resolution_id) = row;
            QueueEntry { item_id, name, status, priority, probabilities, scores, proposal, confidence, accepted_resolution_id }
        })
        .collect())
}

/// Loads the run's scored items by priority, highest first, at most `limit`.
pub fn ranked_queue(conn: &mut DbConnection, run_id: i64, limit: i64) -> StoreResult<Vec<QueueEntry>> {
    load_entries(conn, run_id, Listing::ByPriority, limit)
}

/// Loads the run's proposals, most confident first, at most `limit`.
pub fn proposals(conn: &mut DbConnection, run_id: i64, limit: i64) -> StoreResult<Vec<QueueEntry>> {
    load_entries(conn, run_id, Listing::Proposals, limit)
}

/// Counts of a run's predictions: scored items and proposals.
pub fn prediction_counts(conn: &mut DbConnection, run_id: i64) -> StoreResult<(i64, i64)> {
    let scored: i64 = predictions::table.filter(predictions::run_id.eq(run_id)).count().get_result(conn)?;
    let proposed: i64 = predictions::table
        .filter(predictions::run_id.eq(run_id))
        .filter(predictions::proposal.is_not_null())
        .count()
        .get_result(conn)?;
    Ok((scored, proposed))
}

/// A proposal shown to a grader when the study has pre-annotation on.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub run_id: i64,
    pub field: String,
    pub value: String,
    pub confidence: f64,
}

/// Loads the newest succeeded run's proposal for an item, if it made one.
pub fn suggestion_for(conn: &mut DbConnection, project_id: i64, item_id: i64) -> StoreResult<Option<Suggestion>> {
    let Some(run) = latest_succeeded_run(conn, project_id)? else {
        return Ok(None);
    };
    let row: Option<(Option<String>, Option<f64>)> = predictions::table
        .filter(predictions::run_id.eq(run.id))
        .filter(predictions::item_id.eq(item_id))
        .select((predictions::proposal, predictions::confidence))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((Some(value), Some(confidence))) => Some(Suggestion { run_id: run.id, field: run.field, value, confidence }),
        _ => None,
    })
}
