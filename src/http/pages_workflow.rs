//! Server-rendered pages of the adjudication workflow: the adjudication page of one item and
//! the study's adjudication and arbitration queues.
//!
//! The pages check access with the same rules as the JSON API (`review_access`,
//! `may_oversee`), so a caller who may not see an item's review gets the same 403 from the
//! page. Grades, messages and live events are loaded by the page's script from the API.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::access::project_for;
use super::auth::CurrentUser;
use super::error::AppError;
use super::AppState;
use crate::domain::roles::{ItemStatus, Role};
use crate::domain::workflow::permissions::{may_arbitrate, may_oversee, review_access, ReviewAccess};
use crate::store::guidelines;
use crate::store::workflow::review::{adjudications as load_adjudications, arbitration_queue as load_queue, find_item, takes_part};

fn redirect_to_login() -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, "/login")).finish()
}

fn render(template: &impl Template) -> Result<HttpResponse, AppError> {
    let html = template.render().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html))
}

#[derive(Template)]
#[template(path = "adjudicate.html")]
struct AdjudicatePage {
    user: CurrentUser,
    slug: String,
    study_name: String,
    item_id: i64,
    item_name: String,
    status: String,
    round: i32,
    /// True for a grader of the item's open adjudication round: the page shows the re-grade form.
    regrades: bool,
    /// True for a senior: the page shows the arbitration form while the item is in arbitration.
    arbitrates: bool,
    guideline_title: String,
    guideline_version: String,
    /// The guideline's fields as JSON, for the re-grade and arbitration forms.
    fields_json: String,
}

/// `GET /studies/{slug}/adjudicate/{item_id}`: the adjudication page of one item, for its
/// graders during adjudication and for the study's seniors and leads.
pub async fn adjudicate(
    state: web::Data<AppState>,
    user: Option<CurrentUser>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, AppError> {
    let Some(user) = user else {
        return Ok(redirect_to_login());
    };
    let (slug, item_id) = path.into_inner();
    let db = state.db.clone();
    let caller = user.clone();
    let page = web::block(move || -> Result<AdjudicatePage, AppError> {
        let mut conn = db.conn()?;
        let (project, role) = project_for(&mut conn, &caller, &slug)?;
        let item = find_item(&mut conn, project.id, item_id)?
            .ok_or_else(|| AppError::NotFound(format!("item {item_id} is not in study {slug:?}")))?;
        let status = ItemStatus::parse(&item.status)
            .ok_or_else(|| AppError::internal(format!("item {} has status {:?}", item.id, item.status)))?;
        let participates = role == Some(Role::Grader) && takes_part(&mut conn, &item, caller.id)?;
        let access = review_access(role, caller.is_admin, status, participates);
        if access == ReviewAccess::Denied {
            return Err(AppError::Forbidden(format!(
                "the adjudication page of item {item_id} is open to seniors and leads, and to the item's graders only while \
                 they adjudicate it"
            )));
        }
        let (guideline_row, guideline) = guidelines::load(&mut conn, project.guideline_id)?
            .ok_or_else(|| AppError::internal(format!("guideline {} of study {} is missing", project.guideline_id, project.slug)))?;
        let fields_json = serde_json::to_string(&guideline.fields).map_err(AppError::internal)?;
        Ok(AdjudicatePage {
            user: caller.clone(),
            slug: project.slug,
            study_name: project.name,
            item_id: item.id,
            item_name: item.name,
            status: item.status,
            round: item.round,
            regrades: access == ReviewAccess::Participant,
            arbitrates: may_arbitrate(role),
            guideline_title: guideline_row.title,
            guideline_version: guideline_row.version,
            fields_json,
        })
    })
    .await??;
    render(&page)
}

/// One row of a queue on the queues page.
struct QueueRow {
    item_id: i64,
    name: String,
    round: i32,
    /// What the row says besides name and round: who re-graded, messages, graders.
    detail: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    user: CurrentUser,
    slug: String,
    study_name: String,
    role: String,
    /// The caller's own adjudications (graders); `None` for seniors and leads.
    mine: Option<Vec<QueueRow>>,
    /// Every item in adjudication (seniors and leads); `None` for graders.
    overview: Option<Vec<QueueRow>>,
    /// Items waiting for a senior (seniors and leads); `None` for graders.
    arbitration: Option<Vec<QueueRow>>,
}

fn plural(count: i64, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// `GET /studies/{slug}/adjudications`: a grader's own adjudications, or for seniors and leads
/// every adjudication and the arbitration queue.
pub async fn queues(state: web::Data<AppState>, user: Option<CurrentUser>, slug: web::Path<String>) -> Result<HttpResponse, AppError> {
    let Some(user) = user else {
        return Ok(redirect_to_login());
    };
    let slug = slug.into_inner();
    let db = state.db.clone();
    let caller = user.clone();
    let page = web::block(move || -> Result<QueuePage, AppError> {
        let mut conn = db.conn()?;
        let (project, role) = project_for(&mut conn, &caller, &slug)?;
        let (mut mine, mut overview, mut arbitration) = (None, None, None);
        if role == Some(Role::Grader) {
            let entries = load_adjudications(&mut conn, project.id, Some(caller.id))?;
            let rows = entries
                .into_iter()
                .map(|entry| {
                    let regraded = entry.participants.iter().any(|p| p.grader_id == caller.id && p.regraded);
                    let state = if regraded { "you have re-graded" } else { "waiting for your re-grade" };
                    QueueRow {
                        item_id: entry.item_id,
                        name: entry.name,
                        round: entry.round,
                        detail: format!("{state} · {}", plural(entry.messages, "message", "messages")),
                    }
                })
                .collect();
            mine = Some(rows);
        } else if may_oversee(role, caller.is_admin) {
            let entries = load_adjudications(&mut conn, project.id, None)?;
            overview = Some(
                entries
                    .into_iter()
                    .map(|entry| {
                        let done = entry.participants.iter().filter(|p| p.regraded).count();
                        let names: Vec<String> = entry
                            .participants
                            .iter()
                            .map(|p| if p.regraded { format!("{} ✓", p.pseudonym) } else { p.pseudonym.clone() })
                            .collect();
                        QueueRow {
                            item_id: entry.item_id,
                            name: entry.name,
                            round: entry.round,
                            detail: format!(
                                "{done} of {} re-graded ({}) · {}",
                                entry.participants.len(),
                                names.join(", "),
                                plural(entry.messages, "message", "messages")
                            ),
                        }
                    })
                    .collect(),
            );
            arbitration = Some(
                load_queue(&mut conn, project.id)?
                    .into_iter()
                    .map(|entry| QueueRow {
                        item_id: entry.item_id,
                        name: entry.name,
                        round: entry.round,
                        detail: plural(entry.graders as i64, "grader", "graders"),
                    })
                    .collect(),
            );
        } else {
            return Err(AppError::Forbidden(format!("study {slug:?} has no adjudication queue for your role")));
        }
        Ok(QueuePage {
            user: caller.clone(),
            slug: project.slug,
            study_name: project.name,
            role: role.map_or("admin", |r| r.as_str()).to_string(),
            mine,
            overview,
            arbitration,
        })
    })
    .await??;
    render(&page)
}
