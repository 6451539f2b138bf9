//! The workflow API: the arbitration queue and a senior's decision, the adjudication lists,
//! and a lead's exclude and reopen. The item review and the discussion are in [`review`].
//!
//! Who may call what is decided by `domain::workflow::permissions`; a refused transition is
//! 409 with the state machine's reason. Every status change is published to the study's
//! live stream and to the item's room.

pub mod review;

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::access::project_for;
use super::auth::CurrentUser;
use super::error::AppError;
use super::AppState;
use crate::domain::answers::validate_answers;
use crate::domain::roles::{ItemStatus, Role};
use crate::domain::workflow::permissions::{may_arbitrate, may_oversee, may_steer};
use crate::domain::workflow::check_reason;
use crate::store::workflow::review::{adjudications as load_adjudications, arbitration_queue as load_queue};
use crate::events::Room;
use crate::store::workflow::{self, StateChange, WorkflowError};
use crate::store::{guidelines, now_ms};

/// Maps a store workflow error to its HTTP status: 404, 409 with the reason, or 500.
fn workflow_error(error: WorkflowError) -> AppError {
    match error {
        WorkflowError::NotFound(_) => AppError::NotFound(error.to_string()),
        WorkflowError::Rejected { .. } => AppError::Conflict(error.to_string()),
        WorkflowError::Store(store) => AppError::from(store),
    }
}

fn invalid(field: &str, message: String) -> AppError {
    AppError::Unprocessable { field: field.into(), message, allowed: vec![] }
}

/// Tells the study's live stream and the item's room of `round` that the item's status
/// changed.
pub(crate) fn publish_status(state: &AppState, project_id: i64, item_id: i64, round: i32, status: ItemStatus) {
    let event = serde_json::json!({ "type": "item", "item_id": item_id, "status": status.as_str() });
    state.events.publish(Room::Study { project_id }, event.clone());
    state.events.publish(Room::Item { item_id, round }, event);
}

fn review_url(slug: &str, item_id: i64) -> String {
    format!("/api/v1/projects/{slug}/items/{item_id}/review")
}

fn thumbnail_url(slug: &str, item_id: i64) -> String {
    format!("/api/v1/projects/{slug}/items/{item_id}/image/thumb")
}

/// `GET /api/v1/projects/{slug}/arbitration`: the items waiting for a senior (seniors, leads).
pub async fn arbitration_queue(state: web::Data<AppState>, user: CurrentUser, slug: web::Path<String>) -> Result<HttpResponse, AppError> {
    let db = state.db.clone();
    let slug = slug.into_inner();
    let body = web::block(move || -> Result<serde_json::Value, AppError> {
        let mut conn = db.conn()?;
        let (project, role) = project_for(&mut conn, &user, &slug)?;
        if !may_oversee(role, user.is_admin) {
            return Err(AppError::Forbidden(format!("only seniors and leads of study {slug:?} see the arbitration queue")));
        }
        let entries = load_queue(&mut conn, project.id)?;
        let items: Vec<serde_json::Value> = entries
            .into_iter()
            .map(|entry| {
                serde_json::json!({
                    "item_id": entry.item_id,
                    "name": entry.name,
                    "round": entry.round,
                    "graders": entry.graders,
                    "review_url": review_url(&slug, entry.item_id),
                    "thumbnail_url": thumbnail_url(&slug, entry.item_id),
                })
            })
            .collect();
        Ok(serde_json::json!({ "items": items }))
    })
    .await??;
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArbitrationRequest {
    pub answers: serde_json::Value,
    #[serde(default)]
    pub reason: String,
}

/// `POST /api/v1/projects/{slug}/items/{id}/arbitration {answers, reason}`: a senior resolves
/// an item in arbitration; 201 with the resolution, 409 when the item is not in arbitration.
pub async fn arbitrate(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(String, i64)>,
    body: web::Json<ArbitrationRequest>,
) -> Result<HttpResponse, AppError> {
    let (slug, item_id) = path.into_inner();
    let request = body.into_inner();
    let db = state.db.clone();
    let receipt = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (project, role) = project_for(&mut conn, &user, &slug)?;
        if !may_arbitrate(role) {
            return Err(AppError::Forbidden(format!("only seniors of study {slug:?} arbitrate")));
        }
        let reason = check_reason(&request.reason).map_err(|message| invalid("reason", message))?;
        let (_, guideline) = guidelines::load(&mut conn, project.guideline_id)?
            .ok_or_else(|| AppError::internal(format!("guideline {} of study {} is missing", project.guideline_id, project.slug)))?;
        let answers = validate_answers(&guideline, &request.answers).map_err(|error| AppError::Unprocessable {
            field: error.field,
            message: error.message,
            allowed: error.allowed,
        })?;
        workflow::arbitrate(&mut conn, &project, item_id, user.id, &answers, &reason, now_ms()).map_err(workflow_error)
    })
    .await??;
    tracing::info!(item_id = receipt.item_id, resolution_id = receipt.resolution_id, "item arbitrated");
    publish_status(&state, receipt.project_id, receipt.item_id, receipt.round, ItemStatus::Resolved);
    Ok(HttpResponse::Created().json(serde_json::json!({
        "resolution_id": receipt.resolution_id,
        "item_id": receipt.item_id,
        "status": "resolved",
        "method": "arbitration",
        "round": receipt.round,
        "rounds_used": receipt.rounds_used,
    })))
}

/// `GET /api/v1/projects/{slug}/adjudications/mine`: the items in adjudication where the
/// calling grader holds a place in the current round.
pub async fn my_adjudications(state: web::Data<AppState>, user: CurrentUser, slug: web::Path<String>) -> Result<HttpResponse, AppError> {
    let db = state.db.clone();
    let slug = slug.into_inner();
    let body = web::block(move || -> Result<serde_json::Value, AppError> {
        let mut conn = db.conn()?;
        let (project, role) = project_for(&mut conn, &user, &slug)?;
        if role != Some(Role::Grader) {
            return Err(AppError::Forbidden(format!("only graders of study {slug:?} take part in adjudication")));
        }
        let entries = load_adjudications(&mut conn, project.id, Some(user.id))?;
        let items: Vec<serde_json::Value> = entries
            .into_iter()
            .map(|entry| {
                let regraded = entry.participants.iter().any(|p| p.grader_id == user.id && p.regraded);
                serde_json::json!({
                    "item_id": entry.item_id,
                    "name": entry.name,
                    "round": entry.round,
                    "regraded": regraded,
                    "messages": entry.messages,
                    "review_url": review_url(&slug, entry.item_id),
                    "thumbnail_url": thumbnail_url(&slug, entry.item_id),
                })
            })
            .collect();
        Ok(serde_json::json!({ "items": items }))
    })
    .await??;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /api/v1/projects/{slug}/adjudications`: every item in adjudication with who has
/// re-graded (seniors, leads).
pub async fn adjudications(state: web::Data<AppState>, user: CurrentUser, slug: web::Path<String>) -> Result<HttpResponse, AppError> {
    let db = state.db.clone();
    let slug = slug.into_inner();
    let body = web::block(move || -> Result<serde_json::Value, AppError> {
        let mut conn = db.conn()?;
        let (project, role) = project_for(&mut conn, &user, &slug)?;
        if !may_oversee(role, user.is_admin) {
            return Err(AppError::Forbidden(format!("only seniors and leads of study {slug:?} see every adjudication")));
        }
        let entries = load_adjudications(&mut conn, project.id, None)?;
        let items: Vec<serde_json::Value> = entries
            .into_iter()
            .map(|entry| {
                let participants: Vec<serde_json::Value> = entry
                    .participants
                    .iter()
                    .map(|p| serde_json::json!({ "pseudonym": p.pseudonym, "regraded": p.regraded }))
                    .collect();
                serde_json::json!({
                    "item_id": entry.item_id,
                    "name": entry.name,
                    "round": entry.round,
                    "participants": participants,
                    "messages": entry.messages,
                    "review_url": review_url(&slug, entry.item_id),
                })
            })
            .collect();
        Ok(serde_json::json!({ "items": items }))
    })
    .await??;
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    #[serde(default)]
    pub reason: String,
}

/// A lead control, as requested.
#[derive(Clone, Copy)]
enum LeadControl {
    Exclude,
    Reopen,
}

async fn lead_control(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(String, i64)>,
    body: web::Json<ReasonRequest>,
    control: LeadControl,
) -> Result<HttpResponse, AppError> {
    let (slug, item_id) = path.into_inner();
    let request = body.into_inner();
    let db = state.db.clone();
    let change: StateChange = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (project, role) = project_for(&mut conn, &user, &slug)?;
        if !may_steer(role, user.is_admin) {
            return Err(AppError::Forbidden(format!("only leads of study {slug:?} exclude and reopen items")));
        }
        let reason = check_reason(&request.reason).map_err(|message| invalid("reason", message))?;
        let result = match control {
            LeadControl::Exclude => workflow::exclude(&mut conn, &project, item_id, user.id, &reason),
            LeadControl::Reopen => workflow::reopen(&mut conn, &project, item_id, user.id, &reason),
        };
        result.map_err(workflow_error)
    })
    .await??;
    tracing::info!(item_id = change.item_id, from = %change.from, to = %change.to, "lead changed item state");
    publish_status(&state, change.project_id, change.item_id, change.from.round(), change.to.status());
    Ok(HttpResponse::Ok().json(state_change_body(&change)))
}

fn state_change_body(change: &StateChange) -> serde_json::Value {
    serde_json::json!({
        "item_id": change.item_id,
        "status": change.to.status().as_str(),
        "round": change.to.round(),
        "previous_status": change.from.status().as_str(),
    })
}

/// `POST /api/v1/projects/{slug}/items/{id}/exclude {reason}`: a lead excludes an item from
/// any state but excluded.
pub async fn exclude(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(String, i64)>,
    body: web::Json<ReasonRequest>,
) -> Result<HttpResponse, AppError> {
    lead_control(state, user, path, body, LeadControl::Exclude).await
}

/// `POST /api/v1/projects/{slug}/items/{id}/reopen {reason}`: a lead reopens a resolved item
/// into a new grading round, or an excluded item into the state it was excluded from.
pub async fn reopen(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(String, i64)>,
    body: web::Json<ReasonRequest>,
) -> Result<HttpResponse, AppError> {
    lead_control(state, user, path, body, LeadControl::Reopen).await
}
