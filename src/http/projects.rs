//! Study management API: create a study, add members, change overlap or name.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::access::project_for;
use super::auth::CurrentUser;
use super::error::AppError;
use super::workflow::publish_status;
use super::AppState;
use crate::domain::consensus::PolicyParams;
use crate::domain::model_run::check_threshold;
use crate::domain::roles::{ResolutionPolicy, Role};
use crate::domain::slug::check_slug;
use crate::store::audit::{self, AuditEntry};
use crate::store::projects::{self, CreateProjectError, ProjectChanges, ProjectSpec};
use crate::store::{guidelines, users, Conn};

/// Largest overlap accepted.
const MAX_OVERLAP: i32 = 50;

fn bad(field: &str, message: String) -> AppError {
    AppError::Unprocessable { field: field.into(), message, allowed: vec![] }
}

fn check_overlap(overlap: i32) -> Result<(), AppError> {
    if !(1..=MAX_OVERLAP).contains(&overlap) {
        return Err(bad("overlap", format!("overlap {overlap} is out of range: give 1 to {MAX_OVERLAP} graders per image")));
    }
    Ok(())
}

fn require_lead(role: Option<Role>, user: &CurrentUser, slug: &str) -> Result<(), AppError> {
    if role == Some(Role::Lead) || user.is_admin {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!("only a lead of study {slug:?} or an admin can change it")))
    }
}

/// Users who may create studies: admins and anyone who leads a study already.
fn may_create_studies(conn: &mut Conn, user: &CurrentUser) -> Result<bool, AppError> {
    if user.is_admin {
        return Ok(true);
    }
    Ok(projects::leads_any(conn, user.id)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectRequest {
    pub slug: String,
    pub name: String,
    pub guideline_key: String,
    pub guideline_version: String,
    pub overlap: i32,
    pub policy: String,
    #[serde(default)]
    pub policy_params: Option<serde_json::Value>,
}

/// `POST /api/v1/projects`: creates a study; the caller becomes its lead.
pub async fn create(state: web::Data<AppState>, user: CurrentUser, body: web::Json<CreateProjectRequest>) -> Result<HttpResponse, AppError> {
    let request = body.into_inner();
    check_slug(&request.slug).map_err(|message| bad("slug", message))?;
    if request.name.trim().is_empty() || request.name.chars().count() > 200 {
        return Err(bad("name", "name must be 1 to 200 characters".into()));
    }
    check_overlap(request.overlap)?;
    let policy = ResolutionPolicy::parse(&request.policy).ok_or_else(|| AppError::Unprocessable {
        field: "policy".into(),
        message: format!("policy {:?} is unknown: use majority-vote, senior-arbitration or adjudication", request.policy),
        allowed: vec!["majority-vote".into(), "senior-arbitration".into(), "adjudication".into()],
    })?;
    let params: PolicyParams = match &request.policy_params {
        None => PolicyParams::default(),
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|e| bad("policy_params", format!("policy_params is invalid: {e}")))?,
    };
    params.check().map_err(|message| bad("policy_params", message))?;

    let db = state.db.clone();
    let project = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        if !may_create_studies(&mut conn, &user)? {
            return Err(AppError::Forbidden("only admins and study leads can create studies".into()));
        }
        let guideline = guidelines::find(&mut conn, &request.guideline_key, &request.guideline_version)?.ok_or_else(|| {
            bad(
                "guideline_version",
                format!(
                    "guideline {} version {} is not stored; check the key and version",
                    request.guideline_key, request.guideline_version
                ),
            )
        })?;
        let guideline_fields = guidelines::guideline_of(&guideline)?;
        params.check_fields(&guideline_fields).map_err(|message| bad("policy_params", message))?;
        let spec = ProjectSpec {
            slug: &request.slug,
            name: request.name.trim(),
            guideline_id: guideline.id,
            overlap: request.overlap,
            policy,
            policy_params: serde_json::to_value(&params).map_err(AppError::internal)?,
        };
        let project = projects::create_project_with_lead(&mut conn, &spec, user.id).map_err(|error| match error {
            CreateProjectError::SlugTaken(_) => AppError::Conflict(error.to_string()),
            CreateProjectError::Store(store) => store.into(),
        })?;
        Ok(project)
    })
    .await??;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "slug": project.slug,
        "name": project.name,
        "overlap": project.overlap,
        "policy": project.policy,
        "item_count": 0,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    pub username: String,
    pub role: String,
}

/// `POST /api/v1/projects/{slug}/members`: adds a member or changes a member's role. A grader
/// who stops being one leaves the open adjudication rounds (`domain::workflow::departure`).
pub async fn add_member(
    state: web::Data<AppState>,
    user: CurrentUser,
    slug: web::Path<String>,
    body: web::Json<MemberRequest>,
) -> Result<HttpResponse, AppError> {
    let request = body.into_inner();
    let role = Role::parse(&request.role).ok_or_else(|| AppError::Unprocessable {
        field: "role".into(),
        message: format!("role {:?} is unknown: use grader, senior or lead", request.role),
        allowed: vec!["grader".into(), "senior".into(), "lead".into()],
    })?;
    let db = state.db.clone();
    let slug = slug.into_inner();
    let (membership, username, departures) = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (project, caller_role) = project_for(&mut conn, &user, &slug)?;
        require_lead(caller_role, &user, &slug)?;
        let member = users::find_by_username(&mut conn, &request.username)?
            .ok_or_else(|| bad("username", format!("no user {:?} exists; an admin creates accounts first", request.username)))?;
        let (membership, departures) = projects::change_member(&mut conn, project.id, member.id, role, Some(user.id))?;
        audit::record(&mut conn, AuditEntry {
            project_id: Some(project.id),
            actor_id: Some(user.id),
            action: "member.set",
            object_type: "user",
            object_id: Some(member.id),
            details: serde_json::json!({ "role": role.as_str(), "pseudonym": membership.pseudonym }),
        })?;
        Ok((membership, member.username, departures))
    })
    .await??;
    for change in &departures {
        publish_status(&state, membership.project_id, change.item_id, change.round, change.status);
    }
    Ok(HttpResponse::Created().json(serde_json::json!({
        "username": username,
        "role": membership.role,
        "pseudonym": membership.pseudonym,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateProjectRequest {
    pub name: Option<String>,
    pub overlap: Option<i32>,
    /// Show graders the latest model run's proposal as a suggestion.
    pub preannotation: Option<bool>,
    /// Default lowest confidence at which a model run proposes a pseudolabel.
    pub pseudolabel_threshold: Option<f64>,
}

/// `PATCH /api/v1/projects/{slug}`: renames a study or changes its overlap, pre-annotation or
/// pseudolabel threshold; a new overlap applies to every item not yet resolved.
pub async fn update(
    state: web::Data<AppState>,
    user: CurrentUser,
    slug: web::Path<String>,
    body: web::Json<UpdateProjectRequest>,
) -> Result<HttpResponse, AppError> {
    let request = body.into_inner();
    if let Some(overlap) = request.overlap {
        check_overlap(overlap)?;
    }
    if let Some(name) = &request.name {
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(bad("name", "name must be 1 to 200 characters".into()));
        }
    }
    if let Some(threshold) = request.pseudolabel_threshold {
        check_threshold("pseudolabel_threshold", threshold).map_err(|error| bad(error.key, error.message))?;
    }
    let db = state.db.clone();
    let slug = slug.into_inner();
    let project = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (project, caller_role) = project_for(&mut conn, &user, &slug)?;
        require_lead(caller_role, &user, &slug)?;
        let changes = ProjectChanges {
            name: request.name.as_deref().map(str::trim),
            overlap: request.overlap,
            preannotation: request.preannotation,
            pseudolabel_threshold: request.pseudolabel_threshold,
        };
        Ok(projects::update_project(&mut conn, &project, changes, user.id)?)
    })
    .await??;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "slug": project.slug,
        "name": project.name,
        "overlap": project.overlap,
        "policy": project.policy,
        "preannotation": project.preannotation,
        "pseudolabel_threshold": project.pseudolabel_threshold,
    })))
}
