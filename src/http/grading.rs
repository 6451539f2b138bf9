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
use serde::Deserialize;

use super::access::project_for;
use super::auth::CurrentUser;
use super::error::AppError;
use super::AppState;
use crate::domain::answers::validate_answers;
use crate::domain::assignment::DEFAULT_LEASE_MS;
use crate::domain::guideline::Guideline;
use crate::domain::roles::Role;
use crate::store::grading::{self, GradeError, GradeSubmission, DAY_MS};
use crate::store::models::ProjectRow;
use crate::store::{active_learning, agreement, now_ms, Database, DbConnection};

/// Longest comment accepted with a grade, in characters.
const MAX_COMMENT_CHARS: usize = 10_000;

/// The study, its guideline, and a check that the caller grades in it.
fn grader_context(db: &Database, conn: &mut DbConnection, user: &CurrentUser, slug: &str) -> Result<(ProjectRow, Arc<Guideline>), AppError> {
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

/// `GET /api/v1/projects/{slug}/next`: the caller's next item (200) or nothing waiting (204).
///
/// The reads run through [`Database::read`] and the lease through the group-commit writer,
/// so on SQLite no thread is handed the request and none waits for the commit.
pub async fn next(state: web::Data<AppState>, user: CurrentUser, slug: web::Path<String>) -> Result<HttpResponse, AppError> {
    let db = state.db.clone();
    let slug = slug.into_inner();
    let grader_id = user.id;
    let context_db = db.clone();
    let (project, guideline) = db.read(move |conn| grader_context(&context_db, conn, &user, &slug)).await?;
    let project = Arc::new(project);
    let now = now_ms();
    let leased_project = project.clone();
    let lease = db
        .write_async(move |conn| grading::lease_next(conn, &leased_project, grader_id, now, DEFAULT_LEASE_MS))
        .await?;
    let Some(lease) = lease else {
        return Ok(HttpResponse::NoContent().finish());
    };
    let item_id = lease.item.id;
    let counted_project = project.clone();
    let (graded_today, remaining, suggestion) = db
        .read(move |conn| -> Result<_, AppError> {
            let (graded_today, remaining) = grading::progress(conn, &counted_project, grader_id, now)?;
            // Pre-annotation off means no part of a proposal reaches a grader, not even its
            // absence.
            let suggestion = if counted_project.preannotation {
                Some(active_learning::runs::suggestion_for(conn, counted_project.id, item_id)?)
            } else {
                None
            };
            Ok((graded_today, remaining, suggestion))
        })
        .await?;
    let (image_url, thumbnail_url, original_url) = image_urls(&project.slug, item_id);
    let mut body = serde_json::json!({
        "item_id": item_id,
        "round": lease.round,
        "image_url": image_url,
        "thumbnail_url": thumbnail_url,
        "original_url": original_url,
        "lease_expires_at": lease.leased_until,
        "guideline": { "key": guideline.key, "version": guideline.version, "title": guideline.title },
        "fields": &guideline.fields,
        "progress": { "graded_today": graded_today, "remaining": remaining },
    });
    if let Some(suggestion) = suggestion {
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
    Ok(HttpResponse::Ok().json(body))
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
    let context_db = db.clone();
    let grader_id = user.id;
    let (project, guideline) = db.read(move |conn| grader_context(&context_db, conn, &user, &slug)).await?;
    let answers = validate_answers(&guideline, &request.answers).map_err(|error| AppError::Unprocessable {
        field: error.field,
        message: error.message,
        allowed: error.allowed,
    })?;
    let project_id = project.id;
    let stored_answers = answers.clone();
    let GradeRequest { comment, time_spent_ms, .. } = request;
    let stored_comment = comment.clone();
    let receipt = db
        .write_async(move |conn| {
            let submission = GradeSubmission {
                project: &project,
                guideline: &guideline,
                grader_id,
                item_id,
                answers: &stored_answers,
                comment: &stored_comment,
                time_spent_ms,
                source: "web",
            };
            grading::submit_grade(conn, &submission, now_ms())
        })
        .await
        .map_err(|error| match error {
            GradeError::NotFound(_) => AppError::NotFound(error.to_string()),
            GradeError::NotAssigned { .. } => AppError::Forbidden(error.to_string()),
            GradeError::LeftGrading { .. } | GradeError::LeaseLost(_) => AppError::Conflict(error.to_string()),
            GradeError::Store(store) => AppError::from(store),
        })?;
    // In adjudication the room of the item's round shows each re-grade to the others.
    let room_event = if receipt.round > 0 {
        let pseudonym = db.read(move |conn| agreement::pseudonym_of(conn, project_id, grader_id)).await?;
        Some(serde_json::json!({
            "type": "regrade",
            "grader": pseudonym,
            "round": receipt.round,
            "answers": answers.to_json(),
            "comment": &comment,
            "status": receipt.status.as_str(),
        }))
    } else {
        None
    };
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
        Ok(grading::progress(&mut conn, &project, user.id, now).map_err(crate::store::StoreError::from)?)
    })
    .await??;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "graded_today": graded_today, "remaining": remaining })))
}
