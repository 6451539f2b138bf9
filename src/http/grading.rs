//! The grader's API: the next item, submitting and correcting a grade, own grade, progress.
//!
//! Blinding: nothing here returns, or lets a grader infer, another grader's grade of an item
//! in grading. `next` and `progress` count only the caller's own work, `my-grade` returns only
//! the caller's grade, and errors name only the caller's own assignment.
//!
//! When the study has pre-annotation on, `next` adds the newest model run's proposal for the
//! item as `suggestion`. When it is off, the response has no `suggestion` key at all.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use serde::Deserialize;

use super::access::project_for;
use super::auth::CurrentUser;
use super::error::AppError;
use super::AppState;
use crate::domain::answers::validate_answers;
use crate::domain::assignment::DEFAULT_LEASE_MS;
use crate::domain::guideline::Guideline;
use crate::domain::roles::Role;
use crate::store::grading::{self, GradeError, GradeSubmission};
use crate::store::models::ProjectRow;
use crate::store::{active_learning, now_ms, Conn, Database};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Longest comment accepted with a grade, in characters.
const MAX_COMMENT_CHARS: usize = 10_000;

/// The study, its guideline, and a check that the caller grades in it.
fn grader_context(db: &Database, conn: &mut Conn, user: &CurrentUser, slug: &str) -> Result<(ProjectRow, Arc<Guideline>), AppError> {
    let (project, role) = project_for(conn, user, slug)?;
    if role != Some(Role::Grader) {
        return Err(AppError::Forbidden(format!(
            "only graders of study {slug:?} grade its items; your role is {}",
            role.map_or("none (admin)", |r| r.as_str())
        )));
    }
    let guideline = db.guideline(conn, project.guideline_id)?;
    Ok((project, guideline))
}

fn image_urls(slug: &str, item_id: i64) -> (String, String, String) {
    let base = format!("/api/v1/projects/{slug}/items/{item_id}/image");
    (format!("{base}/display"), format!("{base}/thumb"), format!("{base}/original"))
}

/// Start of the current UTC day in epoch milliseconds.
fn day_start(now: i64) -> i64 {
    now - now.rem_euclid(DAY_MS)
}

/// `GET /api/v1/projects/{slug}/next`: the caller's next item (200) or nothing waiting (204).
pub async fn next(state: web::Data<AppState>, user: CurrentUser, slug: web::Path<String>) -> Result<HttpResponse, AppError> {
    let db = state.db.clone();
    let slug = slug.into_inner();
    let body = web::block(move || -> Result<Option<serde_json::Value>, AppError> {
        let (project, guideline) = grader_context(&db, &mut db.conn()?, &user, &slug)?;
        let now = now_ms();
        let leased_project = project.clone();
        let grader_id = user.id;
        let lease = db.write(move |conn| grading::lease_next(conn, &leased_project, grader_id, now, DEFAULT_LEASE_MS))?;
        let Some(lease) = lease else {
            return Ok(None);
        };
        let mut conn = db.conn()?;
        let (graded_today, remaining) = grading::progress(&mut conn, &project, user.id, day_start(now), now)?;
        let (image_url, thumbnail_url, original_url) = image_urls(&project.slug, lease.item.id);
        let mut body = serde_json::json!({
            "item_id": lease.item.id,
            "round": lease.round,
            "image_url": image_url,
            "thumbnail_url": thumbnail_url,
            "original_url": original_url,
            "lease_expires_at": lease.leased_until,
            "guideline": { "key": guideline.key, "version": guideline.version, "title": guideline.title },
            "fields": &guideline.fields,
            "progress": { "graded_today": graded_today, "remaining": remaining },
        });
        // Pre-annotation off means no part of a proposal reaches a grader, not even its absence.
        if project.preannotation {
            let suggestion = active_learning::runs::suggestion_for(&mut conn, project.id, lease.item.id)?;
            body["suggestion"] = match suggestion {
                Some(suggestion) => serde_json::json!({
                    "field": suggestion.field,
                    "value": suggestion.value,
                    "confidence": suggestion.confidence,
                    "run_id": suggestion.run_id,
                }),
                None => serde_json::Value::Null,
            };
        }
        Ok(Some(body))
    })
    .await??;
    Ok(match body {
        Some(body) => HttpResponse::Ok().json(body),
        None => HttpResponse::NoContent().finish(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradeRequest {
    pub answers: serde_json::Value,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub time_spent_ms: i64,
}

/// `POST /api/v1/projects/{slug}/items/{id}/grades`: stores a grade or a correction; 201 only
/// after the transaction committed.
pub async fn submit(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(String, i64)>,
    body: web::Json<GradeRequest>,
) -> Result<HttpResponse, AppError> {
    let (slug, item_id) = path.into_inner();
    let request = body.into_inner();
    if request.comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(AppError::Unprocessable {
            field: "comment".into(),
            message: format!("the comment is longer than {MAX_COMMENT_CHARS} characters; shorten it"),
            allowed: vec![],
        });
    }
    if !(0..=7 * DAY_MS).contains(&request.time_spent_ms) {
        return Err(AppError::Unprocessable {
            field: "time_spent_ms".into(),
            message: format!("time_spent_ms {} is out of range: give 0 to {} milliseconds", request.time_spent_ms, 7 * DAY_MS),
            allowed: vec![],
        });
    }
    let db = state.db.clone();
    let receipt = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (project, guideline) = grader_context(&db, &mut conn, &user, &slug)?;
        drop(conn);
        let answers = validate_answers(&guideline, &request.answers).map_err(|error| AppError::Unprocessable {
            field: error.field,
            message: error.message,
            allowed: error.allowed,
        })?;
        let (stored_project, stored_answers, comment) = (project.clone(), answers.clone(), request.comment.clone());
        let grader_id = user.id;
        let receipt = db
            .write(move |conn| {
                let submission = GradeSubmission {
                    project: &stored_project,
                    guideline: &guideline,
                    grader_id,
                    item_id,
                    answers: &stored_answers,
                    comment: &comment,
                    time_spent_ms: request.time_spent_ms,
                    source: "web",
                };
                grading::submit_grade(conn, &submission, now_ms())
            })
            .map_err(|error| match error {
                GradeError::NotFound(_) => AppError::NotFound(error.to_string()),
                GradeError::NotAssigned { .. } => AppError::Forbidden(error.to_string()),
                GradeError::LeftGrading { .. } | GradeError::LeaseLost(_) => AppError::Conflict(error.to_string()),
                GradeError::Store(store) => AppError::from(store),
            })?;
        let mut conn = db.conn()?;
        // In adjudication the room of the item's round shows each re-grade to the others.
        let room_event = if receipt.round > 0 {
            let pseudonym: Option<String> = crate::store::schema::memberships::table
                .filter(crate::store::schema::memberships::project_id.eq(project.id))
                .filter(crate::store::schema::memberships::user_id.eq(user.id))
                .select(crate::store::schema::memberships::pseudonym)
                .first(&mut conn)
                .optional()?;
            Some(serde_json::json!({
                "type": "regrade",
                "grader": pseudonym,
                "round": receipt.round,
                "answers": answers.to_json(),
                "comment": &request.comment,
                "status": receipt.status.as_str(),
            }))
        } else {
            None
        };
        Ok((project.id, receipt, room_event))
    })
    .await??;
    let (project_id, receipt, room_event) = receipt;
    if let Some(event) = room_event {
        state.events.publish(crate::events::Room::Item { item_id: receipt.item_id, round: receipt.round }, event);
    }
    // The study stream is for leads and seniors only, so it may say which item moved on.
    state.events.publish(
        crate::events::Room::Study { project_id },
        serde_json::json!({ "type": "item", "item_id": receipt.item_id, "status": receipt.status.as_str() }),
    );
    Ok(HttpResponse::Created().json(serde_json::json!({
        "grade_id": receipt.grade_id,
        "item_id": receipt.item_id,
        "round": receipt.round,
        "supersedes": receipt.supersedes,
    })))
}

/// `GET /api/v1/projects/{slug}/items/{id}/my-grade`: the caller's own latest grade.
pub async fn my_grade(state: web::Data<AppState>, user: CurrentUser, path: web::Path<(String, i64)>) -> Result<HttpResponse, AppError> {
    let (slug, item_id) = path.into_inner();
    let db = state.db.clone();
    let grade = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (project, _) = grader_context(&db, &mut conn, &user, &slug)?;
        let grade = grading::own_grade(&mut conn, item_id, user.id).map_err(crate::store::StoreError::from)?;
        let in_project = crate::store::items::find_by_id(&mut conn, item_id)?.is_some_and(|item| item.project_id == project.id);
        match grade {
            Some(grade) if in_project => Ok(grade),
            _ => Err(AppError::NotFound(format!("you have no grade of item {item_id} in study {slug:?}"))),
        }
    })
    .await??;
    let answers: serde_json::Value = serde_json::from_str(&grade.answers).map_err(AppError::internal)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "grade_id": grade.id,
        "item_id": grade.item_id,
        "round": grade.round,
        "answers": answers,
        "comment": grade.comment,
        "time_spent_ms": grade.time_spent_ms,
        "created_at": grade.created_at,
    })))
}

/// `GET /api/v1/projects/{slug}/progress`: the caller's own progress.
pub async fn progress(state: web::Data<AppState>, user: CurrentUser, slug: web::Path<String>) -> Result<HttpResponse, AppError> {
    let db = state.db.clone();
    let slug = slug.into_inner();
    let (graded_today, remaining) = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (project, _) = grader_context(&db, &mut conn, &user, &slug)?;
        let now = now_ms();
        Ok(grading::progress(&mut conn, &project, user.id, day_start(now), now).map_err(crate::store::StoreError::from)?)
    })
    .await??;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "graded_today": graded_today, "remaining": remaining })))
}
