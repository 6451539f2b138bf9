//! WebSocket endpoints: the adjudication room of an item and a study's live progress.
//!
//! Access is checked once, at the upgrade: an item's room is open to the study's seniors and
//! leads, and to the item's own graders only while the item is in adjudication (blinding
//! holds until then). The study stream is for leads and seniors. Clients only listen; they
//! write through the REST API (messages, re-grades), whose handlers publish the events, so
//! there is one write path. A client that reconnects with `?since=SEQ` gets what it missed.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use futures_util::StreamExt;
use serde::Deserialize;

use super::access::project_for;
use super::auth::CurrentUser;
use super::error::AppError;
use super::AppState;
use crate::domain::roles::{ItemStatus, Role};
use crate::events::{EventHub, Room};
use crate::store::schema::{grades, memberships};
use crate::store::{items, Conn};

#[derive(Deserialize)]
pub struct SinceQuery {
    /// The last sequence number the client saw.
    pub since: Option<u64>,
}

/// The caller's pseudonym in the study, or "Admin" for an admin who is not a member.
fn display_name(conn: &mut Conn, project_id: i64, user: &CurrentUser) -> Result<String, AppError> {
    let pseudonym: Option<String> = memberships::table
        .filter(memberships::project_id.eq(project_id))
        .filter(memberships::user_id.eq(user.id))
        .select(memberships::pseudonym)
        .first(conn)
        .optional()?;
    Ok(pseudonym.unwrap_or_else(|| "Admin".to_string()))
}

/// `GET /api/v1/projects/{slug}/items/{id}/room` (WebSocket): the item's adjudication room
/// for its current round.
pub async fn item_room(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(String, i64)>,
    query: web::Query<SinceQuery>,
) -> Result<HttpResponse, AppError> {
    let (slug, item_id) = path.into_inner();
    let db = state.db.clone();
    let (room, name) = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (project, role) = project_for(&mut conn, &user, &slug)?;
        let item = items::find_by_id(&mut conn, item_id)?
            .filter(|item| item.project_id == project.id)
            .ok_or_else(|| AppError::NotFound(format!("item {item_id} is not in study {slug:?}")))?;
        let allowed = match role {
            Some(Role::Senior | Role::Lead) => true,
            None => user.is_admin,
            Some(Role::Grader) => {
                let graded_earlier_round: bool = diesel::select(diesel::dsl::exists(
                    grades::table
                        .filter(grades::item_id.eq(item.id))
                        .filter(grades::grader_id.eq(user.id))
                        .filter(grades::round.lt(item.round)),
                ))
                .get_result(&mut conn)?;
                item.status == ItemStatus::Adjudication.as_str() && graded_earlier_round
            }
        };
        if !allowed {
            return Err(AppError::Forbidden(format!(
                "the room of item {item_id} is open to its graders during adjudication, and to seniors and leads"
            )));
        }
        let name = display_name(&mut conn, project.id, &user)?;
        Ok((Room::Item { item_id: item.id, round: item.round }, name))
    })
    .await??;
    upgrade(&req, body, state.events.clone(), room, Some(name), query.since)
}

/// `GET /api/v1/projects/{slug}/events` (WebSocket): item status changes of the study, for
/// leads and seniors.
pub async fn study_events(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    user: CurrentUser,
    slug: web::Path<String>,
    query: web::Query<SinceQuery>,
) -> Result<HttpResponse, AppError> {
    let db = state.db.clone();
    let slug = slug.into_inner();
    let room = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (project, role) = project_for(&mut conn, &user, &slug)?;
        if !(user.is_admin || role.is_some_and(|r| r.sees_all_grades())) {
            return Err(AppError::Forbidden(format!("the live progress of study {slug:?} is for its leads and seniors")));
        }
        Ok(Room::Study { project_id: project.id })
    })
    .await??;
    upgrade(&req, body, state.events.clone(), room, None, query.since)
}

fn upgrade(
    req: &HttpRequest,
    body: web::Payload,
    hub: Arc<EventHub>,
    room: Room,
    presence_name: Option<String>,
    since: Option<u64>,
) -> Result<HttpResponse, AppError> {
    let (response, session, stream) = actix_ws::handle(req, body).map_err(|error| AppError::BadRequest {
        code: "websocket_required",
        message: format!("this route needs a WebSocket upgrade: {error}"),
    })?;
    actix_web::rt::spawn(run_socket(hub, room, presence_name, since, session, stream));
    Ok(response)
}

/// Forwards the room's events to one client until either side closes.
async fn run_socket(
    hub: Arc<EventHub>,
    room: Room,
    presence_name: Option<String>,
    since: Option<u64>,
    mut session: actix_ws::Session,
    mut stream: actix_ws::MessageStream,
) {
    let subscription = hub.subscribe(room, since);
    let mut receiver = subscription.receiver;
    let hello = serde_json::json!({ "type": "hello", "room": room, "resync": subscription.resync });
    if session.text(hello.to_string()).await.is_err() {
        return;
    }
    for event in subscription.missed {
        if session.text(event.to_string()).await.is_err() {
            return;
        }
    }
    let _presence = presence_name.map(|name| hub.join(room, name));

    loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(actix_ws::Message::Ping(bytes))) => {
                    if session.pong(&bytes).await.is_err() {
                        break;
                    }
                }
                Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            event = receiver.recv() => match event {
                Ok(text) => {
                    if session.text(text.to_string()).await.is_err() {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::warn!(skipped, "a live client fell behind; asking it to reload");
                    let resync = serde_json::json!({ "type": "resync" });
                    if session.text(resync.to_string()).await.is_err() {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    let _ = session.close(None).await;
}
