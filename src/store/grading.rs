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
use super::schema::{assignments, grader_day_counts, grades, items};
use super::workflow::{self, close_round, Cause, WorkflowError};
use super::sql::{Param, Prepared};
use super::{DbConnection, StoreError};
use crate::domain::answers::Answers;
use crate::domain::assignment::required_grades;
use crate::domain::guideline::Guideline;
use crate::domain::roles::ItemStatus;
use crate::domain::workflow::Event;

/// Length of a day in milliseconds. "Graded today" counts UTC days.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

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
pub(crate) fn lock_for_write(conn: &mut DbConnection) -> QueryResult<()> {
    super::take_write_lock(conn)
}

/// Locks one item row on PostgreSQL until the transaction ends.
pub(crate) fn lock_item(conn: &mut DbConnection, item_id: i64) -> QueryResult<()> {
    if let DbConnection::Postgres(_) = conn {
        Prepared::new("SELECT id FROM items WHERE id = $1 FOR UPDATE", &[Param::Int(item_id)]).execute(conn)?;
    }
    Ok(())
}

/// Reads one item row.
fn find_item(conn: &mut DbConnection, item_id: i64) -> QueryResult<ItemRow> {
    native!(conn, |c| items::table.find(item_id).select(ItemRow::as_select()).first(c))
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

/// The best item in grading for grader `$2` of study `$1` at time `$3` with overlap `$4`,
/// followed by `$tail` (empty or a row lock). `places_held` is exact once expired leases are
/// marked ([`mark_expired_leases`]). The index `items_project_status` lists the items in this
/// order, so the search stops at the first item with a free place that the grader has not
/// taken this round.
macro_rules! in_grading_candidate {
    ($tail:literal) => {
        concat!(
            "SELECT i.id AS id, i.priority AS priority FROM items i \
             WHERE i.project_id = $1 AND i.status = 'grading' AND i.places_held < $4 + i.extra_grades \
               AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.round = i.round \
                               AND a.grader_id = $2 AND (a.completed_at IS NOT NULL OR a.leased_until > $3)) \
             ORDER BY i.priority DESC, i.places_held DESC, i.created_at ASC, i.id ASC LIMIT 1",
            $tail
        )
    };
}

/// The best pending item of study `$1`, followed by `$tail`. A pending item has no places
/// taken, so ordering by `places_held` changes nothing but lets one index serve both searches.
macro_rules! pending_candidate {
    ($tail:literal) => {
        concat!(
            "SELECT i.id AS id, i.priority AS priority FROM items i \
             WHERE i.project_id = $1 AND i.status = 'pending' \
             ORDER BY i.priority DESC, i.places_held DESC, i.created_at ASC, i.id ASC LIMIT 1",
            $tail
        )
    };
}

/// Chooses the next item for a grader: by priority, then most places held, then oldest,
/// skipping the ids in `excluded`.
///
/// Items in grading and pending items are searched separately, each by walking the index in
/// the order items are offered, so neither search reads more than the items it passes over.
/// On PostgreSQL the chosen row is locked, skipping rows that other transactions hold.
fn choose_item(conn: &mut DbConnection, project: &ProjectRow, grader_id: i64, now: i64, excluded: &[i64]) -> QueryResult<Option<i64>> {
    let postgres = matches!(conn, DbConnection::Postgres(_));
    let (in_grading, pending) = if postgres {
        (in_grading_candidate!(" FOR UPDATE OF i SKIP LOCKED"), pending_candidate!(" FOR UPDATE OF i SKIP LOCKED"))
    } else {
        (in_grading_candidate!(""), pending_candidate!(""))
    };
    let values = [project.id, grader_id, now, i64::from(project.overlap)];
    let in_grading = query_candidate(conn, in_grading, &values, excluded)?;
    let pending = query_candidate(conn, pending, &values[..1], excluded)?;
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

/// Runs one candidate query with integer parameters. Without exclusions the text is constant
/// and its prepared statement is reused.
///
/// The exclusion list is empty except after a PostgreSQL recount rejected a candidate. Then
/// the ids are written into the text, which is safe because they are integers, and the
/// statement is prepared for this call only.
fn query_candidate(conn: &mut DbConnection, template: &'static str, values: &[i64], excluded: &[i64]) -> QueryResult<Option<CandidateRow>> {
    if excluded.is_empty() {
        let params: Vec<Param<'_>> = values.iter().copied().map(Param::Int).collect();
        return Ok(Prepared::new(template, &params).load(conn)?.into_iter().next());
    }
    let ids: Vec<String> = excluded.iter().map(i64::to_string).collect();
    let sql = template.replacen("WHERE ", &format!("WHERE i.id NOT IN ({}) AND ", ids.join(", ")), 1);
    let rows: Vec<CandidateRow> = match conn {
        DbConnection::Sqlite(c) => bind_all(diesel::sql_query(sql).into_boxed(), &values).load(c)?,
        DbConnection::Postgres(c) => bind_all(diesel::sql_query(sql).into_boxed(), &values).load(c)?,
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
        mark_expired_leases(conn, now)?;

        // A lease the grader already holds and has not graded is returned again, so a reload
        // shows the same image instead of taking a second place.
        let current_lease: Option<(i64, i64)> = native!(conn, |c| assignments::table
            .inner_join(items::table)
            .filter(items::project_id.eq(project.id))
            .filter(assignments::grader_id.eq(grader_id))
            .filter(assignments::completed_at.is_null())
            .filter(assignments::leased_until.gt(now))
            .filter(assignments::round.eq(items::round))
            .filter(items::status.eq(ItemStatus::Pending.as_str()).or(items::status.eq(ItemStatus::Grading.as_str())))
            .order(assignments::id.asc())
            .select((assignments::id, items::id))
            .first(c)
            .optional())?;
        if let Some((assignment_id, item_id)) = current_lease {
            set_lease(conn, assignment_id, leased_until)?;
            let item = find_item(conn, item_id)?;
            return Ok(Some(Lease { round: item.round, item, leased_until }));
        }

        // On SQLite the choice ran under the write lock, so its counts are exact. On PostgreSQL
        // it reads counts from the statement's snapshot, which may miss a lease committed while
        // the row lock was awaited. A recount after the lock, in a new statement, includes it.
        // A full item is skipped and the next one tried.
        let postgres = matches!(conn, DbConnection::Postgres(_));
        let mut excluded = Vec::new();
        let item = loop {
            let Some(item_id) = choose_item(conn, project, grader_id, now, &excluded)? else {
                return Ok(None);
            };
            let item: ItemRow = find_item(conn, item_id)?;
            if !postgres || place_still_free(conn, project, &item, grader_id, now)? {
                break item;
            }
            excluded.push(item.id);
        };
        // An expired lease of this grader on this item is taken over rather than duplicated.
        let params = [
            Param::Int(item.id),
            Param::Int(grader_id),
            Param::Int(i64::from(item.round)),
            Param::Int(leased_until),
            Param::Int(now),
        ];
        Prepared::new(
            "INSERT INTO assignments (item_id, grader_id, round, leased_until, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (item_id, grader_id, round) DO UPDATE SET leased_until = excluded.leased_until, expired = FALSE \
             WHERE assignments.completed_at IS NULL",
            &params,
        )
        .execute(conn)?;
        if item.status == ItemStatus::Pending.as_str() {
            let cause = Cause { actor_id: Some(grader_id), reason: "first lease" };
            workflow::apply(conn, &item, &Event::GradingStarted, cause, serde_json::json!({}))
                .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))?;
        }
        Ok(Some(Lease { round: item.round, item, leased_until }))
    })?;
    Ok(lease)
}

/// Checks that `item`, chosen and locked, still has a free place in its round and that the
/// grader has no place in that round. It counts in new statements (see [`lease_next`]).
fn place_still_free(conn: &mut DbConnection, project: &ProjectRow, item: &ItemRow, grader_id: i64, now: i64) -> QueryResult<bool> {
    let open_status = item.status == ItemStatus::Pending.as_str() || item.status == ItemStatus::Grading.as_str();
    if !open_status {
        return Ok(false);
    }
    let taken = places_held(conn, item.id, item.round, now)?;
    let mine: i64 = assignments::table
        .filter(assignments::item_id.eq(item.id))
        .filter(assignments::round.eq(item.round))
        .filter(assignments::grader_id.eq(grader_id))
        .filter(assignments::completed_at.is_not_null().or(assignments::leased_until.gt(now)))
        .count()
        .get_result(conn)?;
    Ok(mine == 0 && taken < required_grades(project.overlap, item.extra_grades))
}

/// Renews an assignment's lease or gives it a new expiry; a lease marked expired holds its
/// place again.
pub(crate) fn set_lease(conn: &mut DbConnection, assignment_id: i64, leased_until: i64) -> QueryResult<usize> {
    Prepared::new(
        "UPDATE assignments SET leased_until = $2, expired = FALSE WHERE id = $1",
        &[Param::Int(assignment_id), Param::Int(leased_until)],
    )
    .execute(conn)
}

/// Marks every lease whose time ran out by `now` as expired, which frees its place in
/// `items.places_held` (the triggers of that column do the counting). It runs before an item
/// is chosen, so the choice counts every freed place.
///
/// On PostgreSQL it skips leases whose item another transaction has locked, because waiting
/// could deadlock: that transaction locks the item before the assignment, and the triggers
/// here lock them the other way round. A skipped lease is marked by a later call. Until then
/// the choice passes over its item, and the recount in `lease_next` never overfills one.
pub(crate) fn mark_expired_leases(conn: &mut DbConnection, now: i64) -> QueryResult<usize> {
    let sql = match conn {
        DbConnection::Sqlite(_) => {
            "UPDATE assignments SET expired = TRUE \
             WHERE completed_at IS NULL AND NOT expired AND leased_until > 0 AND leased_until <= $1"
        }
        DbConnection::Postgres(_) => {
            "UPDATE assignments SET expired = TRUE WHERE id IN ( \
                 SELECT a.id FROM assignments a JOIN items i ON i.id = a.item_id \
                 WHERE a.completed_at IS NULL AND NOT a.expired AND a.leased_until > 0 AND a.leased_until <= $1 \
                 FOR UPDATE OF i, a SKIP LOCKED)"
        }
    };
    Prepared::new(sql, &[Param::Int(now)]).execute(conn)
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
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
    let all: Vec<super::models::GradeRow> = native!(conn, |c| grades::table
        .filter(grades::item_id.eq(item_id))
        .filter(grades::round.eq(round))
        .order(grades::id.asc())
        .select(super::models::GradeRow::as_select())
        .load(c))?;
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
        let item: ItemRow = native!(conn, |c| items::table.find(submission.item_id).select(ItemRow::as_select()).first(c).optional())?
            .filter(|item| item.project_id == project.id)
            .ok_or(GradeError::NotFound(submission.item_id))?;

        let assignment: Option<(i64, i64, Option<i64>)> = native!(conn, |c| assignments::table
            .filter(assignments::item_id.eq(item.id))
            .filter(assignments::grader_id.eq(submission.grader_id))
            .filter(assignments::round.eq(item.round))
            .select((assignments::id, assignments::leased_until, assignments::completed_at))
            .first(c)
            .optional())?;
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
            let taken = places_held(conn, item.id, item.round, now)?;
            if taken >= required_grades(project.overlap, item.extra_grades) {
                return Err(GradeError::LeaseLost(item.id));
            }
        }

        let current = current_grades(conn, item.id, item.round)?;
        let previous = current.iter().find(|g| g.grader_id == submission.grader_id).map(|g| g.id);
        let answers_json = submission.answers.to_json().to_string();
        let params = [
            Param::Int(item.id),
            Param::Int(submission.grader_id),
            Param::Int(i64::from(item.round)),
            Param::Int(project.guideline_id),
            Param::Text(&answers_json),
            Param::Text(submission.comment),
            Param::Int(submission.time_spent_ms),
            Param::Text(submission.source),
            Param::NullableInt(previous),
            Param::Int(now),
        ];
        let inserted: Vec<IdRow> = Prepared::new(
            "INSERT INTO grades (item_id, grader_id, round, guideline_id, answers, comment, time_spent_ms, source, \
             supersedes, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &params,
        )
        .load(conn)?;
        let grade_id = inserted.first().map(|row| row.id).ok_or(diesel::result::Error::NotFound)?;
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
            Prepared::new("UPDATE assignments SET completed_at = $2 WHERE id = $1", &[Param::Int(assignment_id), Param::Int(now)])
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

/// Counts a grader's progress in a study: items graded on the UTC day that contains `now`,
/// and items still open to them.
pub fn progress(conn: &mut DbConnection, project: &ProjectRow, grader_id: i64, now: i64) -> QueryResult<(i64, i64)> {
    // The trigger of `grader_day_counts` counts each first grade of an item, not corrections.
    let graded_today: i64 = native!(conn, |c| grader_day_counts::table
        .filter(grader_day_counts::project_id.eq(project.id))
        .filter(grader_day_counts::grader_id.eq(grader_id))
        .filter(grader_day_counts::day.eq(now.div_euclid(DAY_MS)))
        .select(grader_day_counts::n)
        .first(c)
        .optional())?
    .unwrap_or(0);
    let remaining = open_item_count(conn, project, grader_id, now)?;
    Ok((graded_today, remaining))
}

/// Items in grading that still need grades and that this grader has not graded or leased
/// this round, plus the one the grader holds now.
///
/// Free places are read from `items.places_held`, which counts a lease that ran out as held
/// until the next lease request in any study marks it expired.
fn open_item_count(conn: &mut DbConnection, project: &ProjectRow, grader_id: i64, now: i64) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct CountRow {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    // Pending items are open to everyone. The triggers of `item_status_counts` keep their
    // number, split into slots that the query adds up. Only items in grading need their
    // places counted.
    const PENDING: &str = "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM item_status_counts \
         WHERE project_id = $1 AND status = 'pending'";
    // Parameters: $1 study, $2 grader, $3 now, $4 overlap. Items with a free place the
    // grader has no part in, then the items the grader holds a lease on.
    const OPEN: &str = "SELECT COUNT(*) AS n FROM items i \
         WHERE i.project_id = $1 AND i.status = 'grading' AND i.places_held < $4 + i.extra_grades \
           AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.round = i.round \
                           AND a.grader_id = $2 AND (a.completed_at IS NOT NULL OR a.leased_until > $3))";
    const HELD: &str = "SELECT COUNT(*) AS n FROM assignments a JOIN items i ON i.id = a.item_id \
         WHERE a.grader_id = $2 AND a.completed_at IS NULL AND a.leased_until > $3 \
           AND i.project_id = $1 AND i.status = 'grading' AND a.round = i.round";
    let params = [Param::Int(project.id), Param::Int(grader_id), Param::Int(now), Param::Int(i64::from(project.overlap))];
    let pending: Vec<CountRow> = Prepared::new(PENDING, &params[..1]).load(conn)?;
    let open: Vec<CountRow> = Prepared::new(OPEN, &params).load(conn)?;
    let leased: Vec<CountRow> = Prepared::new(HELD, &params[..3]).load(conn)?;
    Ok([pending, open, leased].iter().map(|rows| rows.first().map_or(0, |row| row.n)).sum())
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
