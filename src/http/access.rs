//! Access checks shared by the API and the pages: a study is visible to its members and to
//! admins, and a role requirement names what the caller lacks.

use super::auth::CurrentUser;
use super::error::AppError;
use crate::domain::roles::Role;
use crate::store::models::ProjectRow;
use crate::store::{projects, DbConnection};

/// The study with this slug and the caller's role in it (`None` for an admin who is not a
/// member).
///
/// Fails with 404 when the study does not exist or the caller is neither a member nor an
/// admin, so a non-member cannot learn which slugs exist.
pub fn project_for(conn: &mut DbConnection, user: &CurrentUser, slug: &str) -> Result<(ProjectRow, Option<Role>), AppError> {
    let not_found = || AppError::NotFound(format!("no study {slug:?} exists that you are a member of"));
    let project = projects::find_by_slug(conn, slug)?.ok_or_else(not_found)?;
    let role = projects::role_of(conn, project.id, user.id)?;
    if role.is_none() && !user.is_admin {
        return Err(not_found());
    }
    Ok((project, role))
}
