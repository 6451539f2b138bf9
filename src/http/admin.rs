//! Account management for admins, and image upload for leads.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::access::project_for;
use super::auth::CurrentUser;
use super::error::AppError;
use super::AppState;
use crate::auth::hash_password;
use crate::cli::admin::MIN_PASSWORD_CHARS;
use crate::domain::roles::Role;
use crate::domain::slug::check_username;
use crate::imaging::import::import_in_memory;
use crate::store::users::{self, CreateUserError};

/// Largest image upload accepted, in bytes; the image limits apply on top.
pub const MAX_UPLOAD_BYTES: usize = 200 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub is_admin: bool,
}

/// `POST /api/v1/users`: creates an account (admins only).
pub async fn create_user(state: web::Data<AppState>, user: CurrentUser, body: web::Json<CreateUserRequest>) -> Result<HttpResponse, AppError> {
    if !user.is_admin {
        return Err(AppError::Forbidden("only admins create accounts".into()));
    }
    let request = body.into_inner();
    check_username(&request.username).map_err(|message| AppError::Unprocessable {
        field: "username".into(),
        message,
        allowed: vec![],
    })?;
    if request.password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::Unprocessable {
            field: "password".into(),
            message: format!("the password is shorter than {MIN_PASSWORD_CHARS} characters; choose a longer one"),
            allowed: vec![],
        });
    }
    let db = state.db.clone();
    let created = web::block(move || -> Result<_, AppError> {
        let hash = hash_password(&request.password).map_err(AppError::internal)?;
        let display = request.display_name.unwrap_or_else(|| request.username.clone());
        let mut conn = db.conn()?;
        let created = users::create_user(&mut conn, &request.username, &display, &hash, request.is_admin).map_err(|error| match error {
            CreateUserError::Taken(_) => AppError::Conflict(error.to_string()),
            CreateUserError::Store(store) => store.into(),
        })?;
        crate::store::audit::record(&mut conn, crate::store::audit::AuditEntry {
            project_id: None,
            actor_id: Some(user.id),
            action: "user.created",
            object_type: "user",
            object_id: Some(created.id),
            details: serde_json::json!({ "username": created.username, "is_admin": created.is_admin }),
        })?;
        Ok(created)
    })
    .await??;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "id": created.id,
        "username": created.username,
        "display_name": created.display_name,
        "is_admin": created.is_admin,
    })))
}

#[derive(Deserialize)]
pub struct UploadQuery {
    /// The item's name, usually the file name.
    pub name: String,
}

/// `POST /api/v1/projects/{slug}/items?name=FILE` with the image bytes as the body: adds one
/// image to a study (leads only). The same checks as `quorum import images` apply.
pub async fn upload_item(
    state: web::Data<AppState>,
    user: CurrentUser,
    slug: web::Path<String>,
    query: web::Query<UploadQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let name = query.into_inner().name;
    if name.trim().is_empty() || name.len() > 255 || name.contains("..") || name.starts_with('/') {
        return Err(AppError::Unprocessable {
            field: "name".into(),
            message: format!("item name {name:?} is invalid: give a file name without '..' or a leading '/'"),
            allowed: vec![],
        });
    }
    let db = state.db.clone();
    let settings = state.settings.clone();
    let slug = slug.into_inner();
    let report = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (project, role) = project_for(&mut conn, &user, &slug)?;
        if role != Some(Role::Lead) && !user.is_admin {
            return Err(AppError::Forbidden(format!("only a lead of study {slug:?} adds images")));
        }
        drop(conn);
        Ok(import_in_memory(&db, &settings, &project, vec![(name, body.to_vec())], &Default::default(), Some(user.id)))
    })
    .await??;
    if let Some((name, reason)) = report.failed.first() {
        return Err(AppError::Unprocessable { field: "body".into(), message: format!("{name}: {reason}"), allowed: vec![] });
    }
    let (name, item_id) = report.imported.first().cloned().ok_or_else(|| AppError::internal("upload imported nothing"))?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "item_id": item_id, "name": name })))
}
