//! Assignment leases, grade submission and what happens when a round is complete.
//!
//! Every function that changes state runs in one write transaction. On SQLite the
//! transaction takes the database write lock with its first statement ([`lock_for_write`]),
//! so concurrent requests are serialised; on PostgreSQL the item row is locked with
//! `FOR UPDATE` (and `SKIP LOCKED` while choosing an item), so two graders never fill the
//! same place. A grade is acknowledged only after its transaction commits.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::audit::{self, AuditEntry};
use super::models::{ItemRow, ProjectRow};
use super::schema::{assignments, grades, item_status_counts, items};
use super::workflow::{self, close_round, Cause, WorkflowError};
use super::{DbConnection, StoreError};
use crate::domain::answers::Answers;
use crate::domain::assignment::required_grades;
use crate::domain::guideline::Guideline;
use crate::domain::roles::ItemStatus;
use crate::domain::workflow::Event;

/// Reasons a grade is rejected.
#[derive(Debug, thiserror::Error)]
pub enum GradeError {
    #[error("item {0} is not in this study")]
    NotFound(i64),
    #[error("item {item_id} is not assigned to you in round {round}; ask for your next item")]
    NotAssigned { item_id: i64, round: i32 },
    #[error("item {item_id} is no longer in grading (it is {status}); its grades can no longer change")]
    LeftGrading { item_id: i64, status: String },
    #[error("your lease on item {0} expired and another grader took the place; ask for your next item")]
    LeaseLost(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for GradeError {
    fn from(error: diesel::result::Error) -> Self {
        GradeError::Store(StoreError::Query(error))
    }
}

impl From<WorkflowError> for GradeError {
    fn from(error: WorkflowError) -> Self {
        match error {
            WorkflowError::NotFound(item_id) => GradeError::NotFound(item_id),
            WorkflowError::Rejected { item_id, error } => GradeError::LeftGrading { item_id, status: error.state.to_string() },
            WorkflowError::Store(store) => GradeError::Store(store),
        }
    }
}

/// Takes the SQLite write lock at the start of a transaction so that reads and writes of the
/// same request see one consistent state; on PostgreSQL it does nothing.
///
/// SQLite begins a write transaction for any write statement, even one that changes no row.
pub(crate) fn lock_for_write(conn: &mut DbConnection) -> QueryResult<()> {
    if let DbConnection::Sqlite(c) = conn {
        diesel::sql_query("UPDATE projects SET id = id WHERE id = -1").execute(c)?;
    }
    Ok(())
}

/// Locks one item row on PostgreSQL until the transaction ends.
pub(crate) fn lock_item(conn: &mut DbConnection, item_id: i64) -> QueryResult<()> {
    if let DbConnection::Postgres(c) = conn {
        diesel::sql_query("SELECT id FROM items WHERE id = $1 FOR UPDATE").bind::<BigInt, _>(item_id).execute(c)?;
    }
    Ok(())
}

/// An item leased to a grader.
#[derive(Debug, Clone)]
pub struct Lease {
    pub item: ItemRow,
    pub round: i32,
    pub leased_until: i64,
}

/// Places of an item's current round held at `now`: completed or unexpired assignments.
fn places_held(conn: &mut DbConnection, item_id: i64, round: i32, now: i64) -> QueryResult<i64> {
    assignments::table
        .filter(assignments::item_id.eq(item_id))
        .filter(assignments::round.eq(round))
        .filter(assignments::completed_at.is_not_null().or(assignments::leased_until.gt(now)))
        .count()
        .get_result(conn)
}

/// Chooses the next item for a grader: by priority, then most places held, then oldest,
/// skipping the ids in `excluded`.
///
/// Items in grading and pending items are searched separately so that neither search scans
/// the whole study: a pending item holds no places, so the first one in index order
/// (priority, then age) is the best pending candidate, and only the items in grading, a set
/// bounded by the number of graders at work, need their places counted.
fn choose_item(conn: &mut DbConnection, project: &ProjectRow, grader_id: i64, now: i64, excluded: &[i64]) -> QueryResult<Option<i64>> {
    // Parameters: $1 study, $2 grader, $3 now, $4 overlap. SQLite numbers `$N` parameters in
    // the order they first appear, so each text names them first in that order.
    const HELD: &str = "(SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id AND a.round = i.round \
                         AND (a.completed_at IS NOT NULL OR a.leased_until > $3))";
    const IN_GRADING: &str = "SELECT i.id AS id, i.priority AS priority FROM items i \
         WHERE i.project_id = $1 AND i.status = 'grading' {x} \
           AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.round = i.round \
                           AND a.grader_id = $2 AND (a.completed_at IS NOT NULL OR a.leased_until > $3)) \
           AND {held} < $4 + i.extra_grades \
         ORDER BY i.priority DESC, {held} DESC, i.created_at ASC, i.id ASC \
         LIMIT 1";
    const PENDING: &str = "SELECT i.id AS id, i.priority AS priority FROM items i \
         WHERE i.project_id = $1 AND i.status = 'pending' {x} \
         ORDER BY i.priority DESC, i.created_at ASC, i.id ASC \
         LIMIT 1";

    // Ids are integers, so writing them into the SQL text cannot inject anything. The list is
    // empty except when a PostgreSQL recount rejected a candidate.
    let exclusion = if excluded.is_empty() {
        String::new()
    } else {
        let ids: Vec<String> = excluded.iter().map(i64::to_string).collect();
        format!("AND i.id NOT IN ({})", ids.join(", "))
    };
    let in_grading = IN_GRADING.replace("{held}", HELD).replace("{x}", &exclusion);
    let in_grading = query_candidate(conn, &in_grading, &[project.id, grader_id, now, i64::from(project.overlap)])?;
    let pending = query_candidate(conn, &PENDING.replace("{x}", &exclusion), &[project.id])?;
    Ok(match (in_grading, pending) {
        (Some(grading), Some(pending)) if pending.priority > grading.priority => Some(pending.id),
        (Some(grading), _) => Some(grading.id),
        (None, pending) => pending.map(|row| row.id),
    })
}

#[derive(QueryableByName)]
struct CandidateRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    priority: f64,
}

/// Runs one candidate query with its integer parameters bound as `$1`, `$2`, ...; on
/// PostgreSQL the row is locked, skipping rows other transactions hold. The SQL text stays
/// the same from request to request, so the prepared statement is reused.
fn query_candidate(conn: &mut DbConnection, sql: &str, parameters: &[i64]) -> QueryResult<Option<CandidateRow>> {
    let rows: Vec<CandidateRow> = match conn {
        DbConnection::Sqlite(c) => bind_all(diesel::sql_query(sql).into_boxed(), parameters).load(c)?,
        DbConnection::Postgres(c) => bind_all(diesel::sql_query(format!("{sql} FOR UPDATE OF i SKIP LOCKED")).into_boxed(), parameters).load(c)?,
    };
    Ok(rows.into_iter().next())
}

/// Binds integer parameters in order.
fn bind_all<'f, DB: diesel::backend::Backend>(
    mut query: diesel::query_builder::BoxedSqlQuery<'f, DB, diesel::query_builder::SqlQuery>,
    parameters: &[i64],
) -> diesel::query_builder::BoxedSqlQuery<'f, DB, diesel::query_builder::SqlQuery>
where
    i64: diesel::serialize::ToSql<BigInt, DB>,
{
    for &value in parameters {
        query = query.bind::<BigInt, _>(value);
    }
    query
}

/// Returns the grader's current lease in the study, renewed, or leases a new item; `None`
/// when no item is waiting for this grader.
pub fn lease_next(
    conn: &mut DbConnection,
    project: &ProjectRow,
    grader_id: i64,
    now: i64,
    lease_ms: i64,
) -> Result<Option<Lease>, StoreError> {
    let leased_until = now + lease_ms;
    let lease = conn.transaction::<_, diesel::result::Error, _>(|conn| {
        lock_for_write(conn)?;

        // A lease the grader already holds and has not graded is returned again, so a reload
        // shows the same image instead of taking a second place.
        let held: Option<(i64, i64)> = assignments::table
            .inner_join(items::table)
            .filter(items::project_id.eq(project.id))
            .filter(assignments::grader_id.eq(grader_id))
            .filter(assignments::completed_at.is_null())
            .filter(assignments::leased_until.gt(now))
            .filter(assignments::round.eq(items::round))
            .filter(items::status.eq_any([ItemStatus::Pending.as_str(), ItemStatus::Grading.as_str()]))
            .order(assignments::id.asc())
            .select((assignments::id, items::id))
            .first(conn)
            .optional()?;
        if let Some((assignment_id, item_id)) = held {
            diesel::update(assignments::table.find(assignment_id))
                .set(assignments::leased_until.eq(leased_until))
                .execute(conn)?;
            let item = items::table.find(item_id).select(ItemRow::as_select()).first(conn)?;
            return Ok(Some(Lease { round: item.round, item, leased_until }));
        }

        // On PostgreSQL the choice reads counts from the statement's snapshot, which may miss a
        // lease committed while the row lock was awaited; recounting after the lock, in a new
        // statement, sees it. A full item is skipped and the next one tried.
        let mut excluded = Vec::new();
        let item = loop {
            let Some(item_id) = choose_item(conn, project, grader_id, now, &excluded)? else {
                return Ok(None);
            };
            let item: ItemRow = items::table.find(item_id).select(ItemRow::as_select()).first(conn)?;
            let held = places_held(conn, item.id, item.round, now)?;
            let mine: i64 = assignments::table
                .filter(assignments::item_id.eq(item.id))
                .filter(assignments::round.eq(item.round))
                .filter(assignments::grader_id.eq(grader_id))
                .filter(assignments::completed_at.is_not_null().or(assignments::leased_until.gt(now)))
                .count()
                .get_result(conn)?;
            let open_status = item.status == ItemStatus::Pending.as_str() || item.status == ItemStatus::Grading.as_str();
            if open_status && mine == 0 && held < required_grades(project.overlap, item.extra_grades) {
                break item;
            }
            excluded.push(item.id);
        };
        // An expired lease of this grader on this item is taken over rather than duplicated.
        let previous: Option<i64> = assignments::table
            .filter(assignments::item_id.eq(item.id))
            .filter(assignments::grader_id.eq(grader_id))
            .filter(assignments::round.eq(item.round))
            .select(assignments::id)
            .first(conn)
            .optional()?;
        match previous {
            Some(id) => {
                diesel::update(assignments::table.find(id)).set(assignments::leased_until.eq(leased_until)).execute(conn)?;
            }
            None => {
                diesel::insert_into(assignments::table)
                    .values((
                        assignments::item_id.eq(item.id),
                        assignments::grader_id.eq(grader_id),
                        assignments::round.eq(item.round),
                        assignments::leased_until.eq(leased_until),
                        assignments::created_at.eq(now),
                    ))
                    .execute(conn)?;
            }
        }
        if item.status == ItemStatus::Pending.as_str() {
            let cause = Cause { actor_id: Some(grader_id), reason: "first lease" };
            workflow::apply(conn, &item, &Event::GradingStarted, cause, serde_json::json!({}))
                .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))?;
        }
        Ok(Some(Lease { round: item.round, item, leased_until }))
    })?;
    Ok(lease)
}

/// A grade as submitted, already validated against the study's guideline.
pub struct GradeSubmission<'a> {
    pub project: &'a ProjectRow,
    pub guideline: &'a Guideline,
    pub grader_id: i64,
    pub item_id: i64,
    pub answers: &'a Answers,
    pub comment: &'a str,
    pub time_spent_ms: i64,
    pub source: &'a str,
}

/// Outcome of a stored grade.
#[derive(Debug, Clone)]
pub struct GradeReceipt {
    pub grade_id: i64,
    pub item_id: i64,
    pub round: i32,
    pub supersedes: Option<i64>,
    /// The item's status after the grade.
    pub status: ItemStatus,
}

/// Loads the current (not superseded) grade of each grader of an item's round, oldest first.
pub fn current_grades(conn: &mut DbConnection, item_id: i64, round: i32) -> QueryResult<Vec<super::models::GradeRow>> {
    let all: Vec<super::models::GradeRow> = grades::table
        .filter(grades::item_id.eq(item_id))
        .filter(grades::round.eq(round))
        .order(grades::id.asc())
        .select(super::models::GradeRow::as_select())
        .load(conn)?;
    let replaced: std::collections::HashSet<i64> = all.iter().filter_map(|g| g.supersedes).collect();
    Ok(all.into_iter().filter(|g| !replaced.contains(&g.id)).collect())
}

/// Stores a grade, or a correction of the grader's own grade, and applies the study's policy
/// when the round has all its grades.
///
/// An item in adjudication takes grades only from the graders of the round before, who need
/// no lease. Its round closes when all of them have re-graded.
///
/// Fails with [`GradeError::NotAssigned`] when the grader holds no assignment for the item's
/// current round, [`GradeError::LeftGrading`] when the item is no longer in grading or
/// adjudication, and [`GradeError::LeaseLost`] when the grader's lease expired and its place
/// was taken.
pub fn submit_grade(conn: &mut DbConnection, submission: &GradeSubmission<'_>, now: i64) -> Result<GradeReceipt, GradeError> {
    let project = submission.project;
    conn.transaction::<_, GradeError, _>(|conn| {
        lock_for_write(conn)?;
        lock_item(conn, submission.item_id)?;
        let item: ItemRow = items::table
            .find(submission.item_id)
            .select(ItemRow::as_select())
            .first(conn)
            .optional()?
            .filter(|item| item.project_id == project.id)
            .ok_or(GradeError::NotFound(submission.item_id))?;

        let assignment: Option<(i64, i64, Option<i64>)> = assignments::table
            .filter(assignments::item_id.eq(item.id))
            .filter(assignments::grader_id.eq(submission.grader_id))
            .filter(assignments::round.eq(item.round))
            .select((assignments::id, assignments::leased_until, assignments::completed_at))
            .first(conn)
            .optional()?;
        let status = ItemStatus::parse(&item.status).ok_or_else(|| StoreError::Corrupt(format!("item status {:?}", item.status)))?;
        // In adjudication the place in the round is the assignment made for the graders of the
        // round before when the round opened. It is not a lease and never expires.
        let in_adjudication = status == ItemStatus::Adjudication && assignment.is_some();
        if !in_adjudication && !matches!(status, ItemStatus::Pending | ItemStatus::Grading) {
            // Only the item's own graders learn that it moved on; anyone else is simply not
            // assigned.
            let graded_before: i64 = grades::table
                .filter(grades::item_id.eq(item.id))
                .filter(grades::grader_id.eq(submission.grader_id))
                .count()
                .get_result(conn)?;
            if assignment.is_some() || graded_before > 0 {
                return Err(GradeError::LeftGrading { item_id: item.id, status: item.status.clone() });
            }
            return Err(GradeError::NotAssigned { item_id: item.id, round: item.round });
        }
        let Some((assignment_id, leased_until, completed_at)) = assignment else {
            return Err(GradeError::NotAssigned { item_id: item.id, round: item.round });
        };
        if !in_adjudication && completed_at.is_none() && leased_until <= now {
            let held = places_held(conn, item.id, item.round, now)?;
            if held >= required_grades(project.overlap, item.extra_grades) {
                return Err(GradeError::LeaseLost(item.id));
            }
        }

        let current = current_grades(conn, item.id, item.round)?;
        let previous = current.iter().find(|g| g.grader_id == submission.grader_id).map(|g| g.id);
        let answers_json = submission.answers.to_json().to_string();
        diesel::insert_into(grades::table)
            .values((
                grades::item_id.eq(item.id),
                grades::grader_id.eq(submission.grader_id),
                grades::round.eq(item.round),
                grades::guideline_id.eq(project.guideline_id),
                grades::answers.eq(&answers_json),
                grades::comment.eq(submission.comment),
                grades::time_spent_ms.eq(submission.time_spent_ms),
                grades::source.eq(submission.source),
                grades::supersedes.eq(previous),
                grades::created_at.eq(now),
            ))
            .execute(conn)?;
        let grade_id: i64 = grades::table
            .filter(grades::item_id.eq(item.id))
            .filter(grades::grader_id.eq(submission.grader_id))
            .order(grades::id.desc())
            .select(grades::id)
            .first(conn)?;
        audit::record(conn, AuditEntry {
            project_id: Some(project.id),
            actor_id: Some(submission.grader_id),
            action: if previous.is_some() { "grade.corrected" } else { "grade.submitted" },
            object_type: "grade",
            object_id: Some(grade_id),
            details: serde_json::json!({ "item_id": item.id, "round": item.round, "supersedes": previous }),
        })?;

        let mut new_status = if in_adjudication { ItemStatus::Adjudication } else { ItemStatus::Grading };
        if previous.is_none() {
            diesel::update(assignments::table.find(assignment_id))
                .set(assignments::completed_at.eq(now))
                .execute(conn)?;
            if status == ItemStatus::Pending {
                let cause = Cause { actor_id: Some(submission.grader_id), reason: "first grade" };
                workflow::apply(conn, &item, &Event::GradingStarted, cause, serde_json::json!({}))?;
            }
            let round_complete = if in_adjudication {
                // The round closes when every grader of the round before has re-graded.
                let waiting: i64 = assignments::table
                    .filter(assignments::item_id.eq(item.id))
                    .filter(assignments::round.eq(item.round))
                    .filter(assignments::completed_at.is_null())
                    .count()
                    .get_result(conn)?;
                waiting == 0
            } else {
                current.len() as i64 + 1 >= required_grades(project.overlap, item.extra_grades)
            };
            if round_complete {
                new_status = close_round(conn, project, submission.guideline, &item, now)?;
            }
        }
        Ok(GradeReceipt { grade_id, item_id: item.id, round: item.round, supersedes: previous, status: new_status })
    })
}

/// The grader's own current grade of an item, in any round, newest round first.
pub fn own_grade(conn: &mut DbConnection, item_id: i64, grader_id: i64) -> QueryResult<Option<super::models::GradeRow>> {
    let mine: Vec<super::models::GradeRow> = grades::table
        .filter(grades::item_id.eq(item_id))
        .filter(grades::grader_id.eq(grader_id))
        .order(grades::id.desc())
        .select(super::models::GradeRow::as_select())
        .load(conn)?;
    Ok(mine.into_iter().next())
}

/// A grader's progress in a study: items graded since `day_start` and items still open to them.
pub fn progress(conn: &mut DbConnection, project: &ProjectRow, grader_id: i64, day_start: i64, now: i64) -> QueryResult<(i64, i64)> {
    // Corrections are counted out in Rust: filtering on `supersedes` in SQL makes SQLite
    // walk the unique index of that column over every grade instead of the grader's index.
    let today: Vec<Option<i64>> = grades::table
        .inner_join(items::table)
        .filter(grades::grader_id.eq(grader_id))
        .filter(grades::created_at.ge(day_start))
        .filter(items::project_id.eq(project.id))
        .select(grades::supersedes)
        .load(conn)?;
    let graded_today = today.iter().filter(|supersedes| supersedes.is_none()).count() as i64;
    let remaining = open_item_count(conn, project, grader_id, now)?;
    Ok((graded_today, remaining))
}

/// Items in grading that still need grades and that this grader has not graded or leased
/// this round, plus the one the grader holds now.
fn open_item_count(conn: &mut DbConnection, project: &ProjectRow, grader_id: i64, now: i64) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct CountRow {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    // Pending items are open to everyone, and the triggers of `item_status_counts` keep
    // their number; only items in grading need their places counted.
    let pending: i64 = item_status_counts::table
        .filter(item_status_counts::project_id.eq(project.id))
        .filter(item_status_counts::status.eq(ItemStatus::Pending.as_str()))
        .select(item_status_counts::n)
        .first(conn)
        .optional()?
        .unwrap_or(0);
    // Parameters: $1 study, $2 grader, $3 now, $4 overlap, first named in that order (see
    // `choose_item`).
    const IN_GRADING: &str = "SELECT COUNT(*) AS n FROM items i \
         WHERE i.project_id = $1 AND i.status = 'grading' \
           AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.round = i.round \
                           AND a.grader_id = $2 AND a.completed_at IS NOT NULL) \
           AND ((SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id AND a.round = i.round \
                AND (a.completed_at IS NOT NULL OR a.leased_until > $3)) < $4 + i.extra_grades \
                OR EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.round = i.round \
                           AND a.grader_id = $2 AND a.leased_until > $3))";
    let parameters = [project.id, grader_id, now, i64::from(project.overlap)];
    let rows: Vec<CountRow> = match conn {
        DbConnection::Sqlite(c) => bind_all(diesel::sql_query(IN_GRADING).into_boxed(), &parameters).load(c)?,
        DbConnection::Postgres(c) => bind_all(diesel::sql_query(IN_GRADING).into_boxed(), &parameters).load(c)?,
    };
    Ok(pending + rows.first().map_or(0, |row| row.n))
}

/// Closes the round of every item in grading that has all the grades the study now needs;
/// used after the overlap was lowered.
pub fn close_complete_rounds(conn: &mut DbConnection, project: &ProjectRow) -> Result<(), GradeError> {
    let (_, guideline) = super::guidelines::load(conn, project.guideline_id)?
        .ok_or_else(|| StoreError::Corrupt(format!("guideline {} is missing", project.guideline_id)))?;
    let open: Vec<ItemRow> = items::table
        .filter(items::project_id.eq(project.id))
        .filter(items::status.eq(ItemStatus::Grading.as_str()))
        .select(ItemRow::as_select())
        .load(conn)?;
    let now = super::now_ms();
    for item in open {
        let graders = current_grades(conn, item.id, item.round)?.len() as i64;
        if graders >= required_grades(project.overlap, item.extra_grades) {
            close_round(conn, project, &guideline, &item, now)?;
        }
    }
    Ok(())
}
