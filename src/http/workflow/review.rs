//! The item review and its discussion.
//!
//! `GET .../items/{id}/review` shows seniors and leads every current grade of an item with
//! the graders' pseudonyms, the feature rubric, the Dawid-Skene advice and the item's current
//! resolution, if it has one. The item's own
//! graders see the same for the round being adjudicated, and only while adjudication is
//! open. Anyone else gets one fixed 403 message, whatever the item's state and grades, so the
//! refusal reveals nothing about other graders' work. A new message is published to the item's
//! live room for its round.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::super::access::project_for;
use super::super::auth::CurrentUser;
use super::super::error::AppError;
use super::super::AppState;
use crate::domain::guideline::Guideline;
use crate::domain::roles::{ItemStatus, Role};
use crate::domain::workflow::check_message;
use crate::domain::workflow::permissions::{review_access, ReviewAccess};
use crate::domain::workflow::rubric::{dawid_skene_advice, reviewed_round, rubric};
use crate::events::Room;
use crate::store::models::{ItemRow, ProjectRow};
use crate::store::workflow::review::{self as store, CurrentResolution, Message, NamedGrade};
use crate::store::{guidelines, now_ms, Conn};

/// Note that the review shows with the Dawid-Skene figures.
const ADVICE_NOTE: &str = "Dawid-Skene posterior estimated from the study's first-round grades of items past their first \
                           grading round; advice for the reviewer, not a decision";

/// Loads the study, the item and its status, and decides what the caller may see of it.
/// Fails with 403 for [`ReviewAccess::Denied`].
fn review_context(
    conn: &mut Conn,
    user: &CurrentUser,
    slug: &str,
    item_id: i64,
) -> Result<(ProjectRow, ItemRow, ItemStatus, ReviewAccess), AppError> {
    let (project, role) = project_for(conn, user, slug)?;
    let item = store::find_item(conn, project.id, item_id)?
        .ok_or_else(|| AppError::NotFound(format!("item {item_id} is not in study {slug:?}")))?;
    let status = ItemStatus::parse(&item.status).ok_or_else(|| AppError::internal(format!("item {} has status {:?}", item.id, item.status)))?;
    let takes_part = role == Some(Role::Grader) && store::takes_part(conn, &item, user.id)?;
    let access = review_access(role, user.is_admin, status, takes_part);
    if access == ReviewAccess::Denied {
        return Err(AppError::Forbidden(format!(
            "the review and discussion of item {item_id} are open to seniors and leads, and to the item's graders only while \
             they adjudicate it"
        )));
    }
    Ok((project, item, status, access))
}

fn grade_json(grade: &NamedGrade) -> serde_json::Value {
    serde_json::json!({
        "grade_id": grade.grade.id,
        "pseudonym": grade.pseudonym,
        "round": grade.grade.round,
        "answers": grade.answers.to_json(),
        "comment": grade.grade.comment,
        "time_spent_ms": grade.grade.time_spent_ms,
        "created_at": grade.grade.created_at,
    })
}

fn resolution_json(resolution: &CurrentResolution) -> serde_json::Value {
    serde_json::json!({
        "resolution_id": resolution.id,
        "answers": resolution.answers,
        "method": resolution.method,
        "decided_by": resolution.decided_by,
        "rounds_used": resolution.rounds_used,
        "reason": resolution.reason,
        "created_at": resolution.created_at,
    })
}

/// Builds the rubric of the reviewed grades, each field with its advice when it has one.
fn fields_json(conn: &mut Conn, project: &ProjectRow, guideline: &Guideline, item: &ItemRow, grades: &[NamedGrade]) -> Result<serde_json::Value, AppError> {
    let named: Vec<(String, crate::domain::answers::Answers)> = grades.iter().map(|g| (g.pseudonym.clone(), g.answers.clone())).collect();
    let mut ratings = store::advice_ratings(conn, project.id, guideline)?;
    let mut fields = Vec::new();
    for field_rubric in rubric(guideline, &named) {
        let advice = match (guideline.field(&field_rubric.field), ratings.remove(&field_rubric.field)) {
            (Some(field), Some(field_ratings)) => dawid_skene_advice(field, &field_ratings, item.id),
            _ => None,
        };
        let mut value = serde_json::to_value(&field_rubric).map_err(AppError::internal)?;
        value["advice"] = serde_json::to_value(&advice).map_err(AppError::internal)?;
        fields.push(value);
    }
    Ok(serde_json::Value::Array(fields))
}

/// `GET /api/v1/projects/{slug}/items/{id}/review`: the grades under review, the rubric and
/// the advice.
pub async fn review(state: web::Data<AppState>, user: CurrentUser, path: web::Path<(String, i64)>) -> Result<HttpResponse, AppError> {
    let (slug, item_id) = path.into_inner();
    let db = state.db.clone();
    let body = web::block(move || -> Result<serde_json::Value, AppError> {
        let mut conn = db.conn()?;
        let (project, item, status, access) = review_context(&mut conn, &user, &slug, item_id)?;
        let (_, guideline) = guidelines::load(&mut conn, project.guideline_id)?
            .ok_or_else(|| AppError::internal(format!("guideline {} of study {} is missing", project.guideline_id, project.slug)))?;
        let round = reviewed_round(status, item.round);
        let grades = store::named_grades(&mut conn, project.id, item.id, round)?;
        let fields = fields_json(&mut conn, &project, &guideline, &item, &grades)?;

        // The open adjudication round stays blind to its graders; seniors and leads follow it.
        let current_round = if access == ReviewAccess::Full && status == ItemStatus::Adjudication {
            let entries = store::adjudications(&mut conn, project.id, None)?;
            let participants: Vec<serde_json::Value> = entries
                .iter()
                .find(|entry| entry.item_id == item.id)
                .map(|entry| entry.participants.iter().map(|p| serde_json::json!({ "pseudonym": p.pseudonym, "regraded": p.regraded })).collect())
                .unwrap_or_default();
            let regrades: Vec<serde_json::Value> = store::named_grades(&mut conn, project.id, item.id, item.round)?.iter().map(grade_json).collect();
            serde_json::json!({ "round": item.round, "participants": participants, "grades": regrades })
        } else {
            serde_json::Value::Null
        };

        // The final answer is for seniors and leads; graders never see a resolved item here.
        let resolution = match access {
            ReviewAccess::Full => store::current_resolution(&mut conn, &item)?.map(|resolution| resolution_json(&resolution)),
            _ => None,
        };

        Ok(serde_json::json!({
            "item_id": item.id,
            "name": item.name,
            "status": item.status,
            "round": item.round,
            "access": if access == ReviewAccess::Full { "full" } else { "participant" },
            "reviewed_round": round,
            "grades": grades.iter().map(grade_json).collect::<Vec<_>>(),
            "fields": fields,
            "advice_note": ADVICE_NOTE,
            "current_round": current_round,
            "resolution": resolution,
            "image_url": format!("/api/v1/projects/{slug}/items/{}/image/display", item.id),
        }))
    })
    .await??;
    Ok(HttpResponse::Ok().json(body))
}

fn message_json(message: &Message) -> serde_json::Value {
    serde_json::json!({
        "message_id": message.id,
        "round": message.round,
        "author": message.pseudonym,
        "body": message.body,
        "created_at": message.created_at,
    })
}

/// `GET /api/v1/projects/{slug}/items/{id}/messages`: the item's discussion, oldest first.
pub async fn list_messages(state: web::Data<AppState>, user: CurrentUser, path: web::Path<(String, i64)>) -> Result<HttpResponse, AppError> {
    let (slug, item_id) = path.into_inner();
    let db = state.db.clone();
    let messages = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (_, item, _, _) = review_context(&mut conn, &user, &slug, item_id)?;
        Ok(store::list_messages(&mut conn, &item)?)
    })
    .await??;
    let messages: Vec<serde_json::Value> = messages.iter().map(message_json).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "messages": messages })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    #[serde(default)]
    pub body: String,
}

/// `POST /api/v1/projects/{slug}/items/{id}/messages {body}`: adds a message to the item's
/// discussion in its current round; 201 with the message.
pub async fn post_message(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(String, i64)>,
    body: web::Json<MessageRequest>,
) -> Result<HttpResponse, AppError> {
    let (slug, item_id) = path.into_inner();
    let request = body.into_inner();
    let db = state.db.clone();
    let (message, item_id) = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (_, item, _, _) = review_context(&mut conn, &user, &slug, item_id)?;
        let text = check_message(&request.body)
            .map_err(|message| AppError::Unprocessable { field: "body".into(), message, allowed: vec![] })?;
        Ok((store::post_message(&mut conn, &item, user.id, &text, now_ms())?, item.id))
    })
    .await??;
    let mut event = message_json(&message);
    event["type"] = serde_json::json!("message");
    state.events.publish(Room::Item { item_id, round: message.round }, event);
    Ok(HttpResponse::Created().json(message_json(&message)))
}
