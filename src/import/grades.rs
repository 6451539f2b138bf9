//! Import of grades made elsewhere: one grade per row, stored through the same path as a
//! grade submitted in the browser.
//!
//! File layout: columns `image`, `grader` (a username) and one column per guideline field,
//! plus optional `round`, `comment` and `time_spent_ms`. A multi-choice cell lists options
//! separated by `|`; an empty cell leaves the field unanswered. An exported `grades.csv`
//! (with `--real-names`) is accepted as it is: its `superseded` column marks rows that the
//! next row of the same image, grader and round corrects, and its `created_at` and `source`
//! columns are not read.
//!
//! Rows are stored in file order with `source = "import"`. Each grade takes a place in its
//! item's current round (a lease, as a grader's would) and moves a pending item into grading.
//! The grade that completes a round applies the study's policy. The policy may resolve the
//! item, send it to arbitration, open an adjudication round or request one more grader, and
//! a later row can then fill that adjudication round. A row that does not fit the item's
//! state at that point (a round number other than the item's current round, an item that is
//! already resolved, a grader who already graded the round) rejects the whole file.

use std::collections::{BTreeMap, HashSet};

use diesel::prelude::*;

use super::grade_rows::{plan_grades, GraderPlan, PlannedGrade};
use super::table::Table;
use super::{ImportError, ImportProblem};
use crate::domain::assignment::required_grades;
use crate::domain::guideline::Guideline;
use crate::domain::roles::{ItemStatus, Role};
use crate::store::grading::{lock_for_write, lock_item, set_lease, submit_grade, GradeError, GradeSubmission};
use crate::store::models::{ItemRow, ProjectRow};
use crate::store::schema::{assignments, items};
use crate::store::{guidelines, now_ms, projects, users, DbConnection, StoreError};

/// Lease of the place an imported grade takes; it only has to outlast the import.
const IMPORT_LEASE_MS: i64 = 60 * 60 * 1000;

/// Counts and accounts of a grade import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GradeImportReport {
    /// Grades stored, corrections included.
    pub grades: usize,
    /// Grades that correct an earlier grade of the file.
    pub corrections: usize,
    /// Accounts created by `--create-graders`, each with a random password that is not shown.
    pub created_users: Vec<String>,
    /// Graders added to the study (the created accounts among them).
    pub added_graders: Vec<String>,
    /// The items the file graded, by their status after the import.
    pub items_by_status: BTreeMap<String, usize>,
}

/// Checks a grade file and stores it in one transaction.
///
/// Fails with [`ImportError::Rejected`], and stores nothing, when the file has problems (all
/// are listed) or when a row does not fit its item's state at the time it is stored.
pub fn import_grades(
    conn: &mut DbConnection,
    project: &ProjectRow,
    table: &Table,
    create_graders: bool,
) -> Result<GradeImportReport, ImportError> {
    let (_, guideline) = guidelines::load(conn, project.guideline_id)?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "guideline {} of study {} is missing",
            project.guideline_id, project.slug
        ))
    })?;
    let plan = plan_grades(conn, project, &guideline, table, create_graders)?;

    conn.transaction::<_, ImportError, _>(|conn| {
        lock_for_write(conn)?;
        let mut report = GradeImportReport::default();
        let mut grader_ids = Vec::with_capacity(plan.graders.len());
        for grader in &plan.graders {
            let user_id = match grader.plan {
                GraderPlan::Member(user_id) => user_id,
                GraderPlan::AddMember(user_id) => {
                    projects::set_member(conn, project.id, user_id, Role::Grader)?;
                    report.added_graders.push(grader.username.clone());
                    user_id
                }
                GraderPlan::Create => {
                    let hash = crate::auth::hash_password(&crate::auth::random_password())
                        .map_err(|error| StoreError::Corrupt(format!("hashing a password failed: {error}")))?;
                    let user = users::create_user(conn, &grader.username, &grader.username, &hash, false).map_err(
                        |error| match error {
                            users::CreateUserError::Store(store) => ImportError::Store(store),
                            taken => ImportError::rejected(ImportProblem::file(taken.to_string())),
                        },
                    )?;
                    projects::set_member(conn, project.id, user.id, Role::Grader)?;
                    report.created_users.push(grader.username.clone());
                    report.added_graders.push(grader.username.clone());
                    user.id
                }
            };
            grader_ids.push(user_id);
        }

        let mut touched = HashSet::new();
        for grade in &plan.grades {
            let grader_id = grader_ids[grade.grader];
            let username = &plan.graders[grade.grader].username;
            let corrected = store_grade(conn, project, &guideline, grade, grader_id, username)?;
            report.grades += 1;
            report.corrections += usize::from(corrected);
            touched.insert(grade.item_id);
        }
        report.items_by_status = statuses_of(conn, &touched)?;
        Ok(report)
    })
}

/// Stores one checked row: takes a place in the item's round if needed and submits the
/// grade. Returns true when the grade corrects the grader's earlier grade of the round.
fn store_grade(
    conn: &mut DbConnection,
    project: &ProjectRow,
    guideline: &Guideline,
    grade: &PlannedGrade,
    grader_id: i64,
    username: &str,
) -> Result<bool, ImportError> {
    let problem =
        |column: &str, message: String| ImportError::rejected(ImportProblem::at(grade.line, Some(column), message));
    lock_item(conn, grade.item_id)?;
    let item: ItemRow = items::table
        .find(grade.item_id)
        .select(ItemRow::as_select())
        .first(conn)?;
    let status =
        ItemStatus::parse(&item.status).ok_or_else(|| StoreError::Corrupt(format!("item status {:?}", item.status)))?;
    if let Some(round) = grade.round {
        if round != item.round {
            return Err(problem(
                "round",
                format!(
                    "{} is in round {} at this row, not round {round}; list each image's rows in the order of its rounds",
                    grade.image, item.round
                ),
            ));
        }
    }

    let place: Option<(i64, Option<i64>)> = assignments::table
        .filter(assignments::item_id.eq(item.id))
        .filter(assignments::grader_id.eq(grader_id))
        .filter(assignments::round.eq(item.round))
        .select((assignments::id, assignments::completed_at))
        .first(conn)
        .optional()?;
    let already_graded = matches!(place, Some((_, Some(_))));
    if already_graded && grade.corrects.is_none() {
        return Err(problem(
            "grader",
            format!("{username} already graded {} in round {}; only a row that follows a superseded row may correct a grade", grade.image, item.round),
        ));
    }
    let now = now_ms();
    match (status, place) {
        (ItemStatus::Pending | ItemStatus::Grading, None) => {
            diesel::insert_into(assignments::table)
                .values((
                    assignments::item_id.eq(item.id),
                    assignments::grader_id.eq(grader_id),
                    assignments::round.eq(item.round),
                    assignments::leased_until.eq(now + IMPORT_LEASE_MS),
                    assignments::created_at.eq(now),
                ))
                .execute(conn)?;
        }
        (ItemStatus::Pending | ItemStatus::Grading, Some((assignment_id, None))) => {
            set_lease(conn, assignment_id, now + IMPORT_LEASE_MS)?;
        }
        (ItemStatus::Adjudication, None) => {
            return Err(problem(
                "grader",
                format!(
                    "{} is in adjudication round {}, which only the graders of round {} re-grade, and {username} is not one of them",
                    grade.image,
                    item.round,
                    item.round - 1
                ),
            ));
        }
        (ItemStatus::Pending | ItemStatus::Grading | ItemStatus::Adjudication, _) => {}
        (ItemStatus::Excluded, _) => {
            return Err(problem(
                "image",
                format!(
                    "{} is excluded from the study; a lead must reopen it before it takes grades",
                    grade.image
                ),
            ));
        }
        (closed, _) => {
            return Err(problem(
                "image",
                format!(
                    "{} is {} at this row, so it takes no more grades: its round {} is closed (the round needed {} grades)",
                    grade.image,
                    closed.as_str(),
                    item.round,
                    required_grades(project.overlap, item.extra_grades)
                ),
            ));
        }
    }

    let submission = GradeSubmission {
        project,
        guideline,
        grader_id,
        item_id: item.id,
        answers: &grade.answers,
        comment: &grade.comment,
        time_spent_ms: grade.time_spent_ms,
        source: "import",
    };
    let receipt = submit_grade(conn, &submission, now).map_err(|error| match error {
        GradeError::Store(store) => ImportError::Store(store),
        GradeError::LeftGrading { status, .. } => problem(
            "image",
            format!("{} is {status}, so it takes no more grades", grade.image),
        ),
        other => problem("grader", other.to_string()),
    })?;
    Ok(receipt.supersedes.is_some())
}

/// Counts the given items by status.
fn statuses_of(conn: &mut DbConnection, item_ids: &HashSet<i64>) -> Result<BTreeMap<String, usize>, ImportError> {
    let ids: Vec<i64> = item_ids.iter().copied().collect();
    let mut counts = BTreeMap::new();
    for chunk in ids.chunks(1_000) {
        let statuses: Vec<String> = items::table
            .filter(items::id.eq_any(chunk))
            .select(items::status)
            .load(conn)?;
        for status in statuses {
            *counts.entry(status).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Reads, checks and stores a grade file in one call; the entry point of the command line.
pub fn import_grade_file(
    conn: &mut DbConnection,
    project: &ProjectRow,
    bytes: &[u8],
    encoding: super::Encoding,
    create_graders: bool,
) -> Result<GradeImportReport, ImportError> {
    let table: Table = super::read_table(bytes, encoding)?;
    import_grades(conn, project, &table, create_graders)
}
