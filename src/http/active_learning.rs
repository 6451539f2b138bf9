//! The active-learning API of a study's lead: start a model run, list runs, read one run's
//! metrics, ranked queue and pseudolabel proposals, and accept proposals as resolutions.
//! The lead's page is in [`page`].
//!
//! Every route is for the study's leads (and admins who are not members); graders and
//! seniors get 403. A run starts on a thread of its own, so the start returns 202 with the
//! run id at once, and the run's progress arrives on the study's event stream.

pub mod page;

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::access::project_for;
use super::auth::CurrentUser;
use super::error::AppError;
use super::AppState;
use crate::domain::model_run::check_threshold;
use crate::domain::roles::{ItemStatus, Role};
use crate::domain::workflow::permissions::may_steer;
use crate::events::Room;
use crate::jobs::{self, JobError, RunRequest};
use crate::store::active_learning::accept::{accept_proposals, AcceptError, Selection};
use crate::store::active_learning::runs::{self, ModelRunRow, QueueEntry};
use crate::store::models::ProjectRow;
use crate::store::Conn;

/// Runs listed by `GET .../model-runs`.
const LISTED_RUNS: i64 = 50;
/// Default and largest number of queue entries and proposals in a run's detail.
const DEFAULT_QUEUE_LIMIT: i64 = 100;
const MAX_QUEUE_LIMIT: i64 = 5_000;
/// Largest number of item ids in one accept request.
const MAX_ACCEPT_ITEMS: usize = 10_000;

/// Loads the study and checks that the caller leads it.
pub(crate) fn lead_context(conn: &mut Conn, user: &CurrentUser, slug: &str) -> Result<ProjectRow, AppError> {
    let (project, role) = project_for(conn, user, slug)?;
    if !may_steer(role, user.is_admin) {
        return Err(AppError::Forbidden(format!(
            "only leads of study {slug:?} run models and accept pseudolabels; your role is {}",
            role.map_or("none", Role::as_str)
        )));
    }
    Ok(project)
}

fn invalid(key: &str, message: String, allowed: Vec<String>) -> AppError {
    AppError::Unprocessable { field: key.into(), message, allowed }
}

/// Maps a job error to its status: 422 naming the request key, 409 for a running run.
fn job_error(error: JobError) -> AppError {
    match error {
        JobError::Invalid(input) => invalid(input.key, input.message, input.allowed),
        JobError::Busy(busy) => AppError::Conflict(busy.to_string()),
        JobError::Store(store) => AppError::from(store),
        failed @ JobError::Failed { .. } => AppError::internal(failed),
    }
}

/// Parses stored JSON text of a run, or fails as a server fault naming the run.
fn stored_json(text: &str, what: &str, run_id: i64) -> Result<serde_json::Value, AppError> {
    serde_json::from_str(text).map_err(|e| AppError::internal(format!("{what} of model run {run_id}: {e}")))
}

/// A run as the API returns it.
pub(crate) fn run_json(run: &ModelRunRow) -> Result<serde_json::Value, AppError> {
    Ok(serde_json::json!({
        "id": run.id,
        "field": run.field,
        "strategy": run.strategy,
        "model_kind": run.model_kind,
        "status": run.status,
        "stage": run.stage,
        "progress": run.progress,
        "error": run.error,
        "started_by": run.started_by,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "settings": stored_json(&run.settings, "settings", run.id)?,
        "metrics": stored_json(&run.metrics, "metrics", run.id)?,
    }))
}

fn entry_json(entry: &QueueEntry, run_id: i64) -> Result<serde_json::Value, AppError> {
    Ok(serde_json::json!({
        "item_id": entry.item_id,
        "name": entry.name,
        "status": entry.status,
        "priority": entry.priority,
        "probabilities": stored_json(&entry.probabilities, "probabilities", run_id)?,
        "scores": stored_json(&entry.scores, "scores", run_id)?,
        "proposal": entry.proposal,
        "confidence": entry.confidence,
        "accepted_resolution_id": entry.accepted_resolution_id,
    }))
}

/// `POST /api/v1/projects/{slug}/model-runs`: starts a model run; 202 with its id.
pub async fn start(
    state: web::Data<AppState>,
    user: CurrentUser,
    slug: web::Path<String>,
    body: web::Json<RunRequest>,
) -> Result<HttpResponse, AppError> {
    let request = body.into_inner();
    let db = state.db.clone();
    let settings = state.settings.clone();
    let events = state.events.clone();
    let slug = slug.into_inner();
    let run_id = web::block(move || -> Result<i64, AppError> {
        let mut conn = db.conn()?;
        let project = lead_context(&mut conn, &user, &slug)?;
        let prepared = jobs::prepare(&mut conn, &settings, &project, &request, Some(user.id)).map_err(job_error)?;
        let run_id = prepared.run.id;
        drop(conn);
        jobs::spawn(db, events, prepared).map_err(AppError::internal)?;
        Ok(run_id)
    })
    .await??;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "run_id": run_id, "status": "running" })))
}

/// `GET /api/v1/projects/{slug}/model-runs`: the study's runs, newest first.
pub async fn list(state: web::Data<AppState>, user: CurrentUser, slug: web::Path<String>) -> Result<HttpResponse, AppError> {
    let db = state.db.clone();
    let slug = slug.into_inner();
    let body = web::block(move || -> Result<serde_json::Value, AppError> {
        let mut conn = db.conn()?;
        let project = lead_context(&mut conn, &user, &slug)?;
        let rows = runs::list_runs(&mut conn, project.id, LISTED_RUNS)?;
        let listed: Result<Vec<serde_json::Value>, AppError> = rows.iter().map(run_json).collect();
        Ok(serde_json::json!({ "runs": listed? }))
    })
    .await??;
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
pub struct DetailQuery {
    /// Queue entries and proposals to return, each.
    pub limit: Option<i64>,
}

/// `GET /api/v1/projects/{slug}/model-runs/{id}`: one run with its metrics, its ranked queue
/// and its proposals.
pub async fn detail(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(String, i64)>,
    query: web::Query<DetailQuery>,
) -> Result<HttpResponse, AppError> {
    let (slug, run_id) = path.into_inner();
    let limit = query.limit.unwrap_or(DEFAULT_QUEUE_LIMIT);
    if !(1..=MAX_QUEUE_LIMIT).contains(&limit) {
        return Err(invalid("limit", format!("limit {limit} is out of range: give 1 to {MAX_QUEUE_LIMIT}"), vec![]));
    }
    let db = state.db.clone();
    let body = web::block(move || -> Result<serde_json::Value, AppError> {
        let mut conn = db.conn()?;
        let project = lead_context(&mut conn, &user, &slug)?;
        let run = runs::find_run(&mut conn, project.id, run_id)?
            .ok_or_else(|| AppError::NotFound(format!("model run {run_id} is not in study {slug:?}")))?;
        let (scored, proposed) = runs::prediction_counts(&mut conn, run.id)?;
        let queue: Result<Vec<_>, _> =
            runs::ranked_queue(&mut conn, run.id, limit)?.iter().map(|entry| entry_json(entry, run.id)).collect();
        let proposals: Result<Vec<_>, _> =
            runs::proposals(&mut conn, run.id, limit)?.iter().map(|entry| entry_json(entry, run.id)).collect();
        Ok(serde_json::json!({
            "run": run_json(&run)?,
            "scored": scored,
            "proposed": proposed,
            "queue": queue?,
            "proposals": proposals?,
        }))
    })
    .await??;
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    pub item_ids: Option<Vec<i64>>,
    pub min_confidence: Option<f64>,
}

/// Reads which proposals an accept request names: item ids or a confidence, not both.
fn selection_of(request: AcceptRequest) -> Result<Selection, AppError> {
    match (request.item_ids, request.min_confidence) {
        (Some(_), Some(_)) | (None, None) => Err(invalid(
            "item_ids",
            "give either item_ids (a list of item ids) or min_confidence (such as 0.95), not both".into(),
            vec![],
        )),
        (Some(ids), None) if ids.is_empty() => {
            Err(invalid("item_ids", "item_ids is empty; list the items whose proposals you accept".into(), vec![]))
        }
        (Some(ids), None) if ids.len() > MAX_ACCEPT_ITEMS => Err(invalid(
            "item_ids",
            format!("item_ids lists {} items, more than {MAX_ACCEPT_ITEMS}; accept them in parts", ids.len()),
            vec![],
        )),
        (Some(ids), None) => Ok(Selection::Items(ids)),
        (None, Some(min_confidence)) => {
            check_threshold("min_confidence", min_confidence).map_err(|error| invalid(error.key, error.message, vec![]))?;
            Ok(Selection::MinConfidence(min_confidence))
        }
    }
}

/// `POST /api/v1/projects/{slug}/model-runs/{id}/accept`: resolves items from the run's
/// proposals, with method `model`.
pub async fn accept(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(String, i64)>,
    body: web::Json<AcceptRequest>,
) -> Result<HttpResponse, AppError> {
    let (slug, run_id) = path.into_inner();
    let selection = selection_of(body.into_inner())?;
    let db = state.db.clone();
    let (project_id, report) = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let project = lead_context(&mut conn, &user, &slug)?;
        let report = accept_proposals(&mut conn, &project, run_id, &selection, user.id).map_err(|error| match error {
            AcceptError::RunNotFound(_) => AppError::NotFound(error.to_string()),
            AcceptError::NoProposal { .. } => invalid("item_ids", error.to_string(), vec![]),
            AcceptError::RunNotSucceeded { .. } | AcceptError::AlreadyAccepted { .. } | AcceptError::Rejected { .. } => {
                AppError::Conflict(error.to_string())
            }
            AcceptError::Store(store) => AppError::from(store),
        })?;
        Ok((project.id, report))
    })
    .await??;
    tracing::info!(run_id, accepted = report.accepted.len(), skipped = report.skipped, "pseudolabels accepted");
    for accepted in &report.accepted {
        let event = serde_json::json!({ "type": "item", "item_id": accepted.item_id, "status": ItemStatus::Resolved.as_str() });
        state.events.publish(Room::Study { project_id }, event.clone());
        state.events.publish(Room::Item { item_id: accepted.item_id, round: accepted.round }, event);
    }
    let accepted: Vec<serde_json::Value> = report
        .accepted
        .iter()
        .map(|accepted| {
            serde_json::json!({
                "item_id": accepted.item_id,
                "resolution_id": accepted.resolution_id,
                "value": accepted.value,
                "confidence": accepted.confidence,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "accepted": accepted, "skipped": report.skipped })))
}
