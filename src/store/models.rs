//! Row types read from and written to the tables in `schema`.

use diesel::prelude::*;

use super::schema::{guidelines, items, memberships, projects, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = guidelines)]
pub struct GuidelineRow {
    pub id: i64,
    pub key: String,
    pub version: String,
    pub title: String,
    pub body: String,
    pub fields: String,
    pub source_toml: String,
    pub sha256: String,
    pub created_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = guidelines)]
pub struct NewGuideline<'a> {
    pub key: &'a str,
    pub version: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub fields: &'a str,
    pub source_toml: &'a str,
    pub sha256: &'a str,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = projects)]
pub struct ProjectRow {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub guideline_id: i64,
    pub overlap: i32,
    pub policy: String,
    pub policy_params: String,
    pub blinding: bool,
    pub status: String,
    pub created_at: i64,
    /// Whether graders see the latest model run's proposal as a suggestion.
    pub preannotation: bool,
    /// Lowest model confidence, in (0, 1], at which a run proposes a pseudolabel.
    pub pseudolabel_threshold: f64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = projects)]
pub struct NewProject<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub guideline_id: i64,
    pub overlap: i32,
    pub policy: &'a str,
    pub policy_params: &'a str,
    pub blinding: bool,
    pub status: &'a str,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = memberships)]
pub struct MembershipRow {
    pub id: i64,
    pub project_id: i64,
    pub user_id: i64,
    pub role: String,
    pub pseudonym: String,
    pub created_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = memberships)]
pub struct NewMembership<'a> {
    pub project_id: i64,
    pub user_id: i64,
    pub role: &'a str,
    pub pseudonym: &'a str,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = items)]
pub struct ItemRow {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub sha256: String,
    pub stored_path: String,
    pub byte_size: i64,
    pub format: String,
    pub width: i32,
    pub height: i32,
    pub metadata: String,
    pub status: String,
    pub round: i32,
    pub extra_grades: i32,
    pub priority: f64,
    pub created_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = items)]
pub struct NewItem<'a> {
    pub project_id: i64,
    pub name: &'a str,
    pub sha256: &'a str,
    pub stored_path: &'a str,
    pub byte_size: i64,
    pub format: &'a str,
    pub width: i32,
    pub height: i32,
    pub metadata: &'a str,
    pub status: &'a str,
    pub round: i32,
    pub priority: f64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::grades)]
pub struct GradeRow {
    pub id: i64,
    pub item_id: i64,
    pub grader_id: i64,
    pub round: i32,
    pub guideline_id: i64,
    pub answers: String,
    pub comment: String,
    pub time_spent_ms: i64,
    pub source: String,
    pub supersedes: Option<i64>,
    pub created_at: i64,
}
