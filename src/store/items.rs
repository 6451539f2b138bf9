//! Items: one image in one study.

use diesel::prelude::*;

use super::models::{ItemRow, NewItem};
use super::schema::items;
use super::{DbConnection, StoreResult};

pub fn insert_item(conn: &mut DbConnection, item: &NewItem<'_>) -> StoreResult<ItemRow> {
    Ok(conn.transaction(|conn| {
        diesel::insert_into(items::table).values(item).execute(conn)?;
        items::table
            .filter(items::project_id.eq(item.project_id))
            .filter(items::name.eq(item.name))
            .select(ItemRow::as_select())
            .first(conn)
    })?)
}

/// The item of a study with this name, if any.
pub fn find_by_name(conn: &mut DbConnection, project_id: i64, name: &str) -> StoreResult<Option<ItemRow>> {
    Ok(items::table
        .filter(items::project_id.eq(project_id))
        .filter(items::name.eq(name))
        .select(ItemRow::as_select())
        .first(conn)
        .optional()?)
}

/// The item of a study whose original has this sha256, if any.
pub fn find_by_sha256(conn: &mut DbConnection, project_id: i64, sha256: &str) -> StoreResult<Option<ItemRow>> {
    Ok(items::table
        .filter(items::project_id.eq(project_id))
        .filter(items::sha256.eq(sha256))
        .select(ItemRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_id(conn: &mut DbConnection, id: i64) -> StoreResult<Option<ItemRow>> {
    Ok(items::table.find(id).select(ItemRow::as_select()).first(conn).optional()?)
}

pub fn count_in_project(conn: &mut DbConnection, project_id: i64) -> StoreResult<i64> {
    Ok(items::table.filter(items::project_id.eq(project_id)).count().get_result(conn)?)
}

/// Every item of a study in id order.
pub fn list_in_project(conn: &mut DbConnection, project_id: i64) -> StoreResult<Vec<ItemRow>> {
    Ok(items::table
        .filter(items::project_id.eq(project_id))
        .order(items::id.asc())
        .select(ItemRow::as_select())
        .load(conn)?)
}
