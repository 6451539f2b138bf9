//! Paged reads of a study's rows, in the fixed orders the export files use.
//!
//! Every reader returns one page (at most a few thousand rows) after a given id, so an
//! export keeps one page at a time however large the study is.
//!
//! Two reads are written as SQL text because SQLite's planner (3.50.2, as bundled, without
//! statistics) starts them from the study's items and sorts all of the study's rows for
//! every page:
//!
//! - [`grade_page`] joins with `CROSS JOIN`, which SQLite takes as "scan grades first", so a
//!   page is a range of the grades primary key. PostgreSQL treats it as an inner join.
//! - [`item_page`] compares `+project_id`, which keeps SQLite from using the project index,
//!   so a page is a range of the items primary key.
//!
//! Only integers are written into the SQL text, which cannot inject anything.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Integer, Nullable, Text};

use super::ExportError;
use crate::store::schema::{grades, messages, resolutions};
use crate::store::DbConnection;

/// Rows per page of the per-row reads (grades.csv, pseudolabels.csv).
pub const ROW_PAGE: i64 = 10_000;

/// Items per page of the per-item reads; with a few grades per item a page reads about as
/// many rows as [`ROW_PAGE`].
pub const ITEM_PAGE: i64 = 2_000;

/// An item as the export reads it.
#[derive(Debug, Clone, QueryableByName)]
pub struct ItemLine {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub sha256: String,
    #[diesel(sql_type = Text)]
    pub metadata: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Integer)]
    pub round: i32,
}

/// Reads the study's items after `after_id`, in id order.
pub fn item_page(
    conn: &mut DbConnection,
    project_id: i64,
    after_id: i64,
    limit: i64,
) -> Result<Vec<ItemLine>, ExportError> {
    let sql = format!(
        "SELECT id, name, sha256, metadata, status, round FROM items \
         WHERE +project_id = {project_id} AND id > {after_id} ORDER BY id LIMIT {limit}"
    );
    Ok(diesel::sql_query(sql).load(conn)?)
}

/// An item's id and metadata.
#[derive(Debug, Clone, QueryableByName)]
pub struct MetadataLine {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub metadata: String,
}

/// Reads the metadata of the study's items after `after_id`, in id order.
pub fn metadata_page(
    conn: &mut DbConnection,
    project_id: i64,
    after_id: i64,
    limit: i64,
) -> Result<Vec<MetadataLine>, ExportError> {
    let sql = format!(
        "SELECT id, metadata FROM items WHERE +project_id = {project_id} AND id > {after_id} ORDER BY id LIMIT {limit}"
    );
    Ok(diesel::sql_query(sql).load(conn)?)
}

/// A grade with its item's name.
#[derive(Debug, Clone, QueryableByName)]
pub struct GradeLine {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub item_id: i64,
    #[diesel(sql_type = Text)]
    pub image: String,
    #[diesel(sql_type = BigInt)]
    pub grader_id: i64,
    #[diesel(sql_type = Integer)]
    pub round: i32,
    #[diesel(sql_type = Text)]
    pub answers: String,
    #[diesel(sql_type = Text)]
    pub comment: String,
    #[diesel(sql_type = BigInt)]
    pub time_spent_ms: i64,
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub supersedes: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub created_at: i64,
}

/// Reads the study's grades after `after_id`, in id order, corrections included.
pub fn grade_page(
    conn: &mut DbConnection,
    project_id: i64,
    after_id: i64,
    limit: i64,
) -> Result<Vec<GradeLine>, ExportError> {
    let sql = format!(
        "SELECT g.id AS id, g.item_id AS item_id, i.name AS image, g.grader_id AS grader_id, g.round AS round, \
                g.answers AS answers, g.comment AS comment, g.time_spent_ms AS time_spent_ms, g.source AS source, \
                g.supersedes AS supersedes, g.created_at AS created_at \
         FROM grades g CROSS JOIN items i \
         WHERE i.id = g.item_id AND i.project_id = {project_id} AND g.id > {after_id} \
         ORDER BY g.id LIMIT {limit}"
    );
    Ok(diesel::sql_query(sql).load(conn)?)
}

/// Reads the grade ids from `first` to `last` (inclusive) that a later grade supersedes.
pub fn superseded_grades(conn: &mut DbConnection, first: i64, last: i64) -> Result<Vec<i64>, ExportError> {
    let ids: Vec<Option<i64>> = grades::table
        .filter(grades::supersedes.between(first, last))
        .select(grades::supersedes)
        .load(conn)?;
    Ok(ids.into_iter().flatten().collect())
}

/// Grades of the items with ids from `first` to `last`, by item and then id. The range may
/// hold other studies' items; callers keep the rows of their own.
pub fn grades_of_items(
    conn: &mut DbConnection,
    first: i64,
    last: i64,
) -> Result<Vec<crate::store::models::GradeRow>, ExportError> {
    use crate::store::models::GradeRow;
    Ok(grades::table
        .filter(grades::item_id.between(first, last))
        .order((grades::item_id.asc(), grades::id.asc()))
        .select(GradeRow::as_select())
        .load(conn)?)
}

/// A resolution as stored.
#[derive(Debug, Clone, Queryable)]
pub struct ResolutionLine {
    pub id: i64,
    pub item_id: i64,
    pub answers: String,
    pub method: String,
    pub decided_by: Option<i64>,
    pub rounds_used: i32,
    pub reason: String,
    pub supersedes: Option<i64>,
    pub created_at: i64,
}

/// Resolutions of the items with ids from `first` to `last`, by item and then id.
pub fn resolutions_of_items(
    conn: &mut DbConnection,
    first: i64,
    last: i64,
) -> Result<Vec<ResolutionLine>, ExportError> {
    Ok(resolutions::table
        .filter(resolutions::item_id.between(first, last))
        .order((resolutions::item_id.asc(), resolutions::id.asc()))
        .select((
            resolutions::id,
            resolutions::item_id,
            resolutions::answers,
            resolutions::method,
            resolutions::decided_by,
            resolutions::rounds_used,
            resolutions::reason,
            resolutions::supersedes,
            resolutions::created_at,
        ))
        .load(conn)?)
}

/// Picks the current resolution of each item among `rows` (sorted by item, then id): the one
/// no other row supersedes, the newest if there were ever two.
pub fn current_resolutions(rows: &[ResolutionLine]) -> std::collections::HashMap<i64, &ResolutionLine> {
    let superseded: std::collections::HashSet<i64> = rows.iter().filter_map(|row| row.supersedes).collect();
    let mut current = std::collections::HashMap::new();
    for row in rows.iter().filter(|row| !superseded.contains(&row.id)) {
        current.insert(row.item_id, row);
    }
    current
}

/// A discussion message as stored.
#[derive(Debug, Clone, Queryable)]
pub struct MessageLine {
    pub id: i64,
    pub item_id: i64,
    pub round: i32,
    pub author_id: i64,
    pub body: String,
    pub created_at: i64,
}

/// Messages of the items with ids from `first` to `last`, by item and then id.
pub fn messages_of_items(conn: &mut DbConnection, first: i64, last: i64) -> Result<Vec<MessageLine>, ExportError> {
    Ok(messages::table
        .filter(messages::item_id.between(first, last))
        .order((messages::item_id.asc(), messages::id.asc()))
        .select((
            messages::id,
            messages::item_id,
            messages::round,
            messages::author_id,
            messages::body,
            messages::created_at,
        ))
        .load(conn)?)
}

/// A model's proposal for an item.
#[derive(Debug, Clone, QueryableByName)]
pub struct PredictionLine {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub image: String,
    #[diesel(sql_type = BigInt)]
    pub run_id: i64,
    #[diesel(sql_type = Text)]
    pub field: String,
    #[diesel(sql_type = Text)]
    pub strategy: String,
    #[diesel(sql_type = Text)]
    pub model_kind: String,
    #[diesel(sql_type = Text)]
    pub proposal: String,
    #[diesel(sql_type = Nullable<Double>)]
    pub confidence: Option<f64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub accepted_resolution_id: Option<i64>,
}

/// Reads the study's predictions that carry a proposal, after `after_id`, in id order.
pub fn prediction_page(
    conn: &mut DbConnection,
    project_id: i64,
    after_id: i64,
    limit: i64,
) -> Result<Vec<PredictionLine>, ExportError> {
    let sql = format!(
        "SELECT p.id AS id, i.name AS image, p.run_id AS run_id, r.field AS field, r.strategy AS strategy, \
                r.model_kind AS model_kind, p.proposal AS proposal, p.confidence AS confidence, \
                p.accepted_resolution_id AS accepted_resolution_id \
         FROM predictions p CROSS JOIN model_runs r CROSS JOIN items i \
         WHERE r.id = p.run_id AND i.id = p.item_id AND r.project_id = {project_id} \
           AND p.proposal IS NOT NULL AND p.id > {after_id} \
         ORDER BY p.id LIMIT {limit}"
    );
    Ok(diesel::sql_query(sql).load(conn)?)
}
