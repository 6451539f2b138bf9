//! Studies and their members.

use std::collections::BTreeMap;

use diesel::prelude::*;

use super::models::{MembershipRow, NewMembership, NewProject, ProjectRow};
use super::schema::{items, memberships, projects};
use super::workflow::departure::{withdraw_departed_grader, RoundAfterDeparture};
use super::workflow::WorkflowError;
use super::{is_unique_violation, now_ms, DbConnection, StoreError, StoreResult};
use crate::domain::roles::{pseudonym, ItemStatus, ResolutionPolicy, Role};

/// What a lead chooses when creating a study.
pub struct ProjectSpec<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub guideline_id: i64,
    pub overlap: i32,
    pub policy: ResolutionPolicy,
    pub policy_params: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateProjectError {
    #[error("a study with slug {0:?} already exists; choose another slug")]
    SlugTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for CreateProjectError {
    fn from(error: diesel::result::Error) -> Self {
        CreateProjectError::Store(StoreError::Query(error))
    }
}

/// Inserts a study and returns it.
pub fn create_project(conn: &mut DbConnection, spec: &ProjectSpec<'_>) -> Result<ProjectRow, CreateProjectError> {
    let params = spec.policy_params.to_string();
    let row = NewProject {
        slug: spec.slug,
        name: spec.name,
        guideline_id: spec.guideline_id,
        overlap: spec.overlap,
        policy: spec.policy.as_str(),
        policy_params: &params,
        blinding: true,
        status: "active",
        created_at: now_ms(),
    };
    conn.transaction(|conn| {
        diesel::insert_into(projects::table).values(&row).execute(conn)?;
        projects::table
            .filter(projects::slug.eq(spec.slug))
            .select(ProjectRow::as_select())
            .first(conn)
    })
    .map_err(|error| {
        if is_unique_violation(&error) {
            CreateProjectError::SlugTaken(spec.slug.to_string())
        } else {
            CreateProjectError::Store(StoreError::Query(error))
        }
    })
}

pub fn find_by_slug(conn: &mut DbConnection, slug: &str) -> StoreResult<Option<ProjectRow>> {
    Ok(super::native!(conn, |c| projects::table
        .filter(projects::slug.eq(slug))
        .select(ProjectRow::as_select())
        .first(c)
        .optional())?)
}

/// Adds a member with a role, or changes the role of an existing member. A new member gets
/// the next free pseudonym of the study ("Grader A", "Grader B", ...), kept for good.
pub fn set_member(conn: &mut DbConnection, project_id: i64, user_id: i64, role: Role) -> StoreResult<MembershipRow> {
    change_member(conn, project_id, user_id, role, None).map(|(membership, _)| membership)
}

/// Adds a member or changes a member's role like [`set_member`]. When a grader stops being a
/// grader, their open places in adjudication rounds are withdrawn in the same transaction,
/// following `domain::workflow::departure`, and the rounds that moved on are returned.
/// `actor_id` is who changed the role, for the audit trail.
pub fn change_member(
    conn: &mut DbConnection,
    project_id: i64,
    user_id: i64,
    role: Role,
    actor_id: Option<i64>,
) -> StoreResult<(MembershipRow, Vec<RoundAfterDeparture>)> {
    conn.transaction::<_, StoreError, _>(|conn| {
        super::take_write_lock(conn)?;
        let existing = memberships::table
            .filter(memberships::project_id.eq(project_id))
            .filter(memberships::user_id.eq(user_id))
            .select(MembershipRow::as_select())
            .first(conn)
            .optional()?;
        let mut departures = Vec::new();
        if let Some(existing) = existing {
            diesel::update(memberships::table)
                .filter(memberships::project_id.eq(project_id))
                .filter(memberships::user_id.eq(user_id))
                .set(memberships::role.eq(role.as_str()))
                .execute(conn)?;
            if existing.role == Role::Grader.as_str() && role != Role::Grader {
                departures = withdraw_departed_grader(conn, project_id, user_id, actor_id, now_ms()).map_err(|error| match error {
                    WorkflowError::Store(store) => store,
                    other => StoreError::Corrupt(format!("moving adjudication rounds on without grader {user_id}: {other}")),
                })?;
            }
        } else {
            let count: i64 = memberships::table
                .filter(memberships::project_id.eq(project_id))
                .count()
                .get_result(conn)?;
            let name = pseudonym(count as usize);
            let row = NewMembership { project_id, user_id, role: role.as_str(), pseudonym: &name, created_at: now_ms() };
            diesel::insert_into(memberships::table).values(&row).execute(conn)?;
        }
        let membership = memberships::table
            .filter(memberships::project_id.eq(project_id))
            .filter(memberships::user_id.eq(user_id))
            .select(MembershipRow::as_select())
            .first(conn)?;
        Ok((membership, departures))
    })
}

/// The caller's role in a study, if a member.
pub fn role_of(conn: &mut DbConnection, project_id: i64, user_id: i64) -> StoreResult<Option<Role>> {
    let role: Option<String> = super::native!(conn, |c| memberships::table
        .filter(memberships::project_id.eq(project_id))
        .filter(memberships::user_id.eq(user_id))
        .select(memberships::role)
        .first(c)
        .optional())?;
    match role {
        None => Ok(None),
        Some(text) => Role::parse(&text)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("membership role {text:?}"))),
    }
}

/// A study as listed for a user: the row, the user's role and its item count.
pub struct ProjectSummary {
    pub project: ProjectRow,
    pub role: Option<Role>,
    pub item_count: i64,
}

/// The studies a user belongs to; admins see every study.
pub fn list_for_user(conn: &mut DbConnection, user_id: i64, is_admin: bool) -> StoreResult<Vec<ProjectSummary>> {
    let rows: Vec<ProjectRow> = projects::table.order(projects::slug.asc()).select(ProjectRow::as_select()).load(conn)?;
    let roles: BTreeMap<i64, String> = memberships::table
        .filter(memberships::user_id.eq(user_id))
        .select((memberships::project_id, memberships::role))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let counts: BTreeMap<i64, i64> = items::table
        .group_by(items::project_id)
        .select((items::project_id, diesel::dsl::count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();

    let mut summaries = Vec::new();
    for project in rows {
        let role = roles.get(&project.id).and_then(|r| Role::parse(r));
        if role.is_none() && !is_admin {
            continue;
        }
        let item_count = counts.get(&project.id).copied().unwrap_or(0);
        summaries.push(ProjectSummary { project, role, item_count });
    }
    Ok(summaries)
}

/// Item counts by workflow status, every status present (zero when none).
pub fn status_counts(conn: &mut DbConnection, project_id: i64) -> StoreResult<Vec<(ItemStatus, i64)>> {
    let counts: BTreeMap<String, i64> = items::table
        .filter(items::project_id.eq(project_id))
        .group_by(items::status)
        .select((items::status, diesel::dsl::count_star()))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect();
    Ok(ItemStatus::ALL
        .into_iter()
        .map(|status| (status, counts.get(status.as_str()).copied().unwrap_or(0)))
        .collect())
}

/// Members of a study with their usernames, in joining order.
pub fn members(conn: &mut DbConnection, project_id: i64) -> StoreResult<Vec<(MembershipRow, String)>> {
    use super::schema::users;
    Ok(memberships::table
        .inner_join(users::table)
        .filter(memberships::project_id.eq(project_id))
        .order(memberships::id.asc())
        .select((MembershipRow::as_select(), users::username))
        .load(conn)?)
}

/// True when the user leads at least one study.
pub fn leads_any(conn: &mut DbConnection, user_id: i64) -> StoreResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        memberships::table.filter(memberships::user_id.eq(user_id)).filter(memberships::role.eq(Role::Lead.as_str())),
    ))
    .get_result(conn)?)
}

/// Creates a study and makes `lead_id` its lead, in one transaction with its audit event.
pub fn create_project_with_lead(conn: &mut DbConnection, spec: &ProjectSpec<'_>, lead_id: i64) -> Result<ProjectRow, CreateProjectError> {
    conn.transaction(|conn| {
        let project = create_project(conn, spec)?;
        set_member(conn, project.id, lead_id, Role::Lead)?;
        super::audit::record(conn, super::audit::AuditEntry {
            project_id: Some(project.id),
            actor_id: Some(lead_id),
            action: "project.created",
            object_type: "project",
            object_id: Some(project.id),
            details: serde_json::json!({ "slug": project.slug, "overlap": project.overlap, "policy": project.policy }),
        })?;
        Ok(project)
    })
}

/// Changes a lead may make to a study; `None` leaves a setting as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProjectChanges<'a> {
    pub name: Option<&'a str>,
    pub overlap: Option<i32>,
    pub preannotation: Option<bool>,
    pub pseudolabel_threshold: Option<f64>,
}

/// Changes a study's name, overlap, pre-annotation or pseudolabel threshold. Lowering the
/// overlap closes the round of every item that already has the new number of grades.
pub fn update_project(conn: &mut DbConnection, project: &ProjectRow, changes: ProjectChanges<'_>, actor_id: i64) -> StoreResult<ProjectRow> {
    let ProjectChanges { name, overlap, preannotation, pseudolabel_threshold } = changes;
    conn.transaction(|conn| {
        if let Some(name) = name {
            diesel::update(projects::table.find(project.id)).set(projects::name.eq(name)).execute(conn)?;
        }
        if let Some(overlap) = overlap {
            diesel::update(projects::table.find(project.id)).set(projects::overlap.eq(overlap)).execute(conn)?;
        }
        if let Some(preannotation) = preannotation {
            diesel::update(projects::table.find(project.id)).set(projects::preannotation.eq(preannotation)).execute(conn)?;
        }
        if let Some(threshold) = pseudolabel_threshold {
            diesel::update(projects::table.find(project.id))
                .set(projects::pseudolabel_threshold.eq(threshold))
                .execute(conn)?;
        }
        super::audit::record(conn, super::audit::AuditEntry {
            project_id: Some(project.id),
            actor_id: Some(actor_id),
            action: "project.updated",
            object_type: "project",
            object_id: Some(project.id),
            details: serde_json::json!({
                "name": name,
                "overlap": overlap,
                "previous_overlap": project.overlap,
                "preannotation": preannotation,
                "pseudolabel_threshold": pseudolabel_threshold,
            }),
        })?;
        let updated: ProjectRow = projects::table.find(project.id).select(ProjectRow::as_select()).first(conn)?;
        if overlap.is_some_and(|o| o < project.overlap) {
            super::grading::close_complete_rounds(conn, &updated)
                .map_err(|e| StoreError::Corrupt(format!("closing rounds after the overlap change: {e}")))?;
        }
        Ok(updated)
    })
}

impl From<StoreError> for diesel::result::Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Query(inner) => inner,
            other => diesel::result::Error::QueryBuilderError(other.to_string().into()),
        }
    }
}
