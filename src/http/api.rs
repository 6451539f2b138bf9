//! JSON API handlers under `/api/v1`, and the health check.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::access::project_for;
use super::auth::{cleared_session_cookie, session_cookie, CurrentUser};
use super::error::AppError;
use super::AppState;
use crate::auth::{dummy_hash, verify_password};
use crate::store::{guidelines, items, now_ms, projects, users};

/// `GET /healthz`: 200 when the database answers, 503 otherwise.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let db = state.db.clone();
    match web::block(move || db.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(serde_json::json!({ "status": "ok", "database": state.db.backend().name() })),
        Ok(Err(error)) => {
            tracing::error!(%error, "health check: database did not answer");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "unavailable" }))
        }
        Err(error) => {
            tracing::error!(%error, "health check failed");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "unavailable" }))
        }
    }
}

#[derive(Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize)]
pub struct LoginResponse {
    pub token: String,
    /// Expiry as seconds since the Unix epoch.
    pub expires_at: i64,
}

/// Checks a username and password and returns a token on success. The failure message is
/// the same for an unknown user, a wrong password and a disabled account.
pub async fn authenticate(state: &AppState, username: String, password: String) -> Result<(i64, LoginResponse), AppError> {
    let db = state.db.clone();
    let user = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let user = users::find_by_username(&mut conn, &username)?;
        let hash = user.as_ref().map_or(dummy_hash(), |u| u.password_hash.as_str());
        let password_ok = verify_password(&password, hash);
        Ok(user.filter(|u| password_ok && !u.disabled))
    })
    .await??;
    let Some(user) = user else {
        return Err(AppError::Unauthorized("invalid username or password".into()));
    };
    let (token, expires_at) = state.keys.issue(user.id, now_ms() / 1000).map_err(AppError::internal)?;
    tracing::info!(user_id = user.id, "user logged in");
    Ok((user.id, LoginResponse { token, expires_at }))
}

/// `POST /api/v1/auth/login` `{username, password}` -> `{token, expires_at}` and the cookie.
pub async fn login(state: web::Data<AppState>, body: web::Json<LoginRequest>) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let (_, response) = authenticate(&state, body.username, body.password).await?;
    Ok(HttpResponse::Ok().cookie(session_cookie(&response.token)).json(response))
}

/// `POST /api/v1/auth/logout`: clears the session cookie.
pub async fn logout() -> HttpResponse {
    HttpResponse::NoContent().cookie(cleared_session_cookie()).finish()
}

/// `GET /api/v1/me`: the caller's account.
pub async fn me(user: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "is_admin": user.is_admin,
    }))
}

#[derive(Serialize)]
pub struct ProjectListEntry {
    pub slug: String,
    pub name: String,
    pub item_count: i64,
    /// The caller's role, or null for an admin who is not a member.
    pub role: Option<&'static str>,
    pub overlap: i32,
    pub policy: String,
}

/// `GET /api/v1/projects`: the studies the caller belongs to (every study for an admin).
pub async fn list_projects(state: web::Data<AppState>, user: CurrentUser) -> Result<HttpResponse, AppError> {
    let db = state.db.clone();
    let summaries = web::block(move || {
        let mut conn = db.conn()?;
        projects::list_for_user(&mut conn, user.id, user.is_admin)
    })
    .await??;
    let entries: Vec<ProjectListEntry> = summaries
        .into_iter()
        .map(|s| ProjectListEntry {
            slug: s.project.slug,
            name: s.project.name,
            item_count: s.item_count,
            role: s.role.map(|r| r.as_str()),
            overlap: s.project.overlap,
            policy: s.project.policy,
        })
        .collect();
    Ok(HttpResponse::Ok().json(entries))
}

/// `GET /api/v1/projects/{slug}`: one study with its guideline and item counts by status.
pub async fn get_project(state: web::Data<AppState>, user: CurrentUser, slug: web::Path<String>) -> Result<HttpResponse, AppError> {
    let db = state.db.clone();
    let body = web::block(move || -> Result<serde_json::Value, AppError> {
        let mut conn = db.conn()?;
        let (project, role) = project_for(&mut conn, &user, &slug)?;
        let (guideline_row, _) = guidelines::load(&mut conn, project.guideline_id)?
            .ok_or_else(|| AppError::internal(format!("guideline {} of study {} is missing", project.guideline_id, project.slug)))?;
        let counts = projects::status_counts(&mut conn, project.id)?;
        let item_count: i64 = counts.iter().map(|(_, n)| n).sum();
        // Graders are blind: how many items others have started or resolved is not theirs to see.
        let sees_workflow = user.is_admin || role.is_some_and(|r| r.sees_all_grades());
        let by_status: Option<serde_json::Map<String, serde_json::Value>> = sees_workflow
            .then(|| counts.into_iter().map(|(status, n)| (status.as_str().to_string(), n.into())).collect());
        Ok(serde_json::json!({
            "slug": project.slug,
            "name": project.name,
            "item_count": item_count,
            "items_by_status": by_status,
            "role": role.map(|r| r.as_str()),
            "overlap": project.overlap,
            "policy": project.policy,
            "policy_params": serde_json::from_str::<serde_json::Value>(&project.policy_params).unwrap_or_default(),
            "preannotation": project.preannotation,
            "pseudolabel_threshold": project.pseudolabel_threshold,
            "guideline": { "key": guideline_row.key, "version": guideline_row.version, "title": guideline_row.title },
        }))
    })
    .await??;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /api/v1/projects/{slug}/items/{id}/image/{display|thumb|original}`: image bytes for
/// members of the study.
pub async fn item_image(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(String, i64, String)>,
) -> Result<HttpResponse, AppError> {
    let (slug, item_id, variant) = path.into_inner();
    if !["display", "thumb", "original"].contains(&variant.as_str()) {
        return Err(AppError::NotFound(format!("image variant {variant:?} does not exist; use display, thumb or original")));
    }
    let db = state.db.clone();
    let item = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (project, _) = project_for(&mut conn, &user, &slug)?;
        match items::find_by_id(&mut conn, item_id)? {
            Some(item) if item.project_id == project.id => Ok(item),
            _ => Err(AppError::NotFound(format!("item {item_id} is not in study {slug:?}"))),
        }
    })
    .await??;

    let paths = crate::imaging::storage::paths_for(&item.sha256, &item.format);
    let (relative, content_type) = match variant.as_str() {
        "display" => (paths.display, "image/jpeg".to_string()),
        "thumb" => (paths.thumbnail, "image/jpeg".to_string()),
        _ => (paths.original, mime_guess::from_path(&item.stored_path).first_or_octet_stream().to_string()),
    };
    let full_path = state.settings.data_dir().join(relative);
    let bytes = web::block(move || std::fs::read(&full_path)).await?.map_err(|e| {
        AppError::internal(format!("image file of item {} could not be read: {e}", item.id))
    })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "private, max-age=86400, immutable"))
        .body(bytes))
}
