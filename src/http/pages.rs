//! Server-rendered pages: login, the user's studies, a study's dashboard.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::access::project_for;
use super::api::authenticate;
use super::auth::{cleared_session_cookie, session_cookie, CurrentUser};
use super::error::AppError;
use super::AppState;
use crate::store::{guidelines, projects};

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish()
}

fn render(template: &impl Template) -> Result<HttpResponse, AppError> {
    let html = template.render().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html))
}

/// `GET /`: the studies list when logged in, else the login page.
pub async fn index(user: Option<CurrentUser>) -> HttpResponse {
    match user {
        Some(_) => redirect("/studies"),
        None => redirect("/login"),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
    username: String,
}

pub async fn login_form() -> Result<HttpResponse, AppError> {
    render(&LoginPage { error: None, username: String::new() })
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// `POST /login`: sets the session cookie and goes to the studies list; a failed login shows
/// the form again with status 401.
pub async fn login_submit(state: web::Data<AppState>, form: web::Form<LoginForm>) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let username = form.username.clone();
    match authenticate(&state, form.username, form.password).await {
        Ok((_, response)) => Ok(HttpResponse::SeeOther()
            .cookie(session_cookie(&response.token))
            .insert_header((header::LOCATION, "/studies"))
            .finish()),
        Err(AppError::Unauthorized(message)) => {
            let html = LoginPage { error: Some(message), username }.render().map_err(AppError::internal)?;
            Ok(HttpResponse::Unauthorized().content_type("text/html; charset=utf-8").body(html))
        }
        Err(other) => Err(other),
    }
}

pub async fn logout() -> HttpResponse {
    HttpResponse::SeeOther()
        .cookie(cleared_session_cookie())
        .insert_header((header::LOCATION, "/login"))
        .finish()
}

struct StudyRow {
    slug: String,
    name: String,
    role: String,
    item_count: i64,
}

#[derive(Template)]
#[template(path = "studies.html")]
struct StudiesPage {
    user: CurrentUser,
    studies: Vec<StudyRow>,
}

/// `GET /studies`: the caller's studies.
pub async fn studies(state: web::Data<AppState>, user: Option<CurrentUser>) -> Result<HttpResponse, AppError> {
    let Some(user) = user else {
        return Ok(redirect("/login"));
    };
    let db = state.db.clone();
    let (user_id, is_admin) = (user.id, user.is_admin);
    let summaries = web::block(move || {
        let mut conn = db.conn()?;
        projects::list_for_user(&mut conn, user_id, is_admin)
    })
    .await??;
    let studies = summaries
        .into_iter()
        .map(|s| StudyRow {
            slug: s.project.slug,
            name: s.project.name,
            role: s.role.map_or("admin", |r| r.as_str()).to_string(),
            item_count: s.item_count,
        })
        .collect();
    render(&StudiesPage { user, studies })
}

struct StatusCount {
    status: &'static str,
    count: i64,
}

struct MemberRow {
    pseudonym: String,
    username: String,
    role: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    user: CurrentUser,
    slug: String,
    name: String,
    role: String,
    overlap: i32,
    policy: String,
    guideline_title: String,
    guideline_version: String,
    item_count: i64,
    counts: Vec<StatusCount>,
    members: Vec<MemberRow>,
    /// Leads, seniors and admins see the workflow counts and members; graders are blind to them.
    sees_workflow: bool,
    is_grader: bool,
    graded_today: i64,
    remaining: i64,
}

/// `GET /studies/{slug}`: counts by status, the guideline and, for leads and seniors, members.
pub async fn dashboard(state: web::Data<AppState>, user: Option<CurrentUser>, slug: web::Path<String>) -> Result<HttpResponse, AppError> {
    let Some(user) = user else {
        return Ok(redirect("/login"));
    };
    let db = state.db.clone();
    let caller = user.clone();
    let page = web::block(move || -> Result<DashboardPage, AppError> {
        let mut conn = db.conn()?;
        let (project, role) = project_for(&mut conn, &caller, &slug)?;
        let (guideline_row, _) = guidelines::load(&mut conn, project.guideline_id)?
            .ok_or_else(|| AppError::internal(format!("guideline {} is missing", project.guideline_id)))?;
        let sees_workflow = caller.is_admin || role.is_some_and(|r| r.sees_all_grades());
        let counts = if sees_workflow { projects::status_counts(&mut conn, project.id)? } else { Vec::new() };
        let is_grader = role == Some(crate::domain::roles::Role::Grader);
        let (graded_today, remaining) = if is_grader {
            let now = crate::store::now_ms();
            crate::store::grading::progress(&mut conn, &project, caller.id, now)?
        } else {
            (0, 0)
        };
        let members = if sees_workflow {
            projects::members(&mut conn, project.id)?
                .into_iter()
                .map(|(m, username)| MemberRow { pseudonym: m.pseudonym, username, role: m.role })
                .collect()
        } else {
            Vec::new()
        };
        Ok(DashboardPage {
            user: caller,
            slug: project.slug,
            name: project.name,
            role: role.map_or("admin", |r| r.as_str()).to_string(),
            overlap: project.overlap,
            policy: project.policy,
            guideline_title: guideline_row.title,
            guideline_version: guideline_row.version,
            item_count: crate::store::items::count_in_project(&mut conn, project.id)?,
            counts: counts.into_iter().map(|(status, count)| StatusCount { status: status.as_str(), count }).collect(),
            members,
            sees_workflow,
            is_grader,
            graded_today,
            remaining,
        })
    })
    .await??;
    render(&page)
}

#[derive(Template)]
#[template(path = "grade.html")]
struct GradePage {
    user: CurrentUser,
    slug: String,
    name: String,
}

/// `GET /studies/{slug}/grade`: the grading page; the form is built in the browser from the
/// JSON API.
pub async fn grade(state: web::Data<AppState>, user: Option<CurrentUser>, slug: web::Path<String>) -> Result<HttpResponse, AppError> {
    let Some(user) = user else {
        return Ok(redirect("/login"));
    };
    let db = state.db.clone();
    let caller = user.clone();
    let project = web::block(move || -> Result<_, AppError> {
        let mut conn = db.conn()?;
        let (project, role) = project_for(&mut conn, &caller, &slug)?;
        if role != Some(crate::domain::roles::Role::Grader) {
            return Err(AppError::Forbidden(format!("only graders of study {slug:?} grade its items")));
        }
        Ok(project)
    })
    .await??;
    render(&GradePage { user, slug: project.slug, name: project.name })
}
