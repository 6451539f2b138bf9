//! User accounts.

use diesel::prelude::*;

use super::models::{NewUser, UserRow};
use super::schema::users;
use super::{is_unique_violation, now_ms, DbConnection, StoreError, StoreResult};

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("username {0:?} is already taken; choose another")]
    Taken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Inserts a user and returns the stored row.
///
/// Fails with [`CreateUserError::Taken`] when the username exists.
pub fn create_user(
    conn: &mut DbConnection,
    username: &str,
    display_name: &str,
    password_hash: &str,
    is_admin: bool,
) -> Result<UserRow, CreateUserError> {
    let row = NewUser {
        username,
        display_name,
        password_hash,
        is_admin,
        disabled: false,
        created_at: now_ms(),
    };
    conn.transaction(|conn| {
        diesel::insert_into(users::table).values(&row).execute(conn)?;
        users::table
            .filter(users::username.eq(username))
            .select(UserRow::as_select())
            .first(conn)
    })
    .map_err(|error| {
        if is_unique_violation(&error) {
            CreateUserError::Taken(username.to_string())
        } else {
            CreateUserError::Store(StoreError::Query(error))
        }
    })
}

pub fn find_by_username(conn: &mut DbConnection, username: &str) -> StoreResult<Option<UserRow>> {
    Ok(users::table
        .filter(users::username.eq(username))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_id(conn: &mut DbConnection, id: i64) -> StoreResult<Option<UserRow>> {
    Ok(super::native!(conn, |c| users::table.find(id).select(UserRow::as_select()).first(c).optional())?)
}

pub fn count(conn: &mut DbConnection) -> StoreResult<i64> {
    Ok(users::table.count().get_result(conn)?)
}
