//! Every migration runs up and down on both backends, and both schemas match.

mod common;

use std::collections::BTreeMap;

use common::{TestBackend, TestDatabase};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use quorum::store::{establish, revert_all_migrations, run_migrations, DbConnection};

/// Table name -> column name -> nullable, excluding diesel's own bookkeeping table.
type SchemaShape = BTreeMap<String, BTreeMap<String, bool>>;

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Integer)]
    nullable: i32,
}

fn schema_shape(conn: &mut DbConnection) -> SchemaShape {
    let rows: Vec<ColumnRow> = match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(
            "SELECT m.name AS table_name, p.name AS column_name, \
             CASE WHEN p.\"notnull\" = 1 OR p.pk > 0 THEN 0 ELSE 1 END AS nullable \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name != '__diesel_schema_migrations'",
        )
        .load(c)
        .expect("sqlite schema"),
        DbConnection::Postgres(c) => diesel::sql_query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name, \
             CASE WHEN is_nullable = 'YES' THEN 1 ELSE 0 END AS nullable \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name != '__diesel_schema_migrations'",
        )
        .load(c)
        .expect("postgres schema"),
    };
    let mut shape = SchemaShape::new();
    for row in rows {
        shape.entry(row.table_name).or_default().insert(row.column_name, row.nullable == 1);
    }
    shape
}

/// Runs up, records the schema, reverts everything, checks it is empty, runs up again.
fn round_trip(backend: TestBackend) -> SchemaShape {
    let database = TestDatabase::new(backend);
    let mut conn = establish(&database.url).expect("connect");
    run_migrations(&mut conn).expect("migrate up");
    let shape = schema_shape(&mut conn);
    revert_all_migrations(&mut conn).expect("migrate down");
    assert!(schema_shape(&mut conn).is_empty(), "tables left after reverting every migration");
    run_migrations(&mut conn).expect("migrate up again");
    assert_eq!(schema_shape(&mut conn), shape, "schema differs after down and up");
    shape
}

const DATA_MODEL_TABLES: [&str; 14] = [
    "assignments",
    "audit_events",
    "grader_day_counts",
    "grades",
    "guidelines",
    "item_status_counts",
    "items",
    "memberships",
    "messages",
    "model_runs",
    "predictions",
    "projects",
    "resolutions",
    "users",
];

#[test]
fn sqlite_migrations_round_trip() {
    let shape = round_trip(TestBackend::Sqlite);
    let tables: Vec<&str> = shape.keys().map(String::as_str).collect();
    assert_eq!(tables, DATA_MODEL_TABLES);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_migrations_round_trip_and_match_sqlite() {
    let postgres = round_trip(TestBackend::Postgres);
    let sqlite = round_trip(TestBackend::Sqlite);
    assert_eq!(postgres, sqlite, "SQLite and PostgreSQL schemas differ");
}

fn append_only_rejects_update(backend: TestBackend) {
    let database = TestDatabase::new(backend);
    let mut conn = establish(&database.url).expect("connect");
    run_migrations(&mut conn).expect("migrate");
    diesel::sql_query(
        "INSERT INTO audit_events (action, object_type, details, created_at) VALUES ('test', 'none', '{}', 1)",
    )
    .execute(&mut conn)
    .expect("insert audit event");
    let update = diesel::sql_query("UPDATE audit_events SET action = 'changed'").execute(&mut conn);
    assert!(update.is_err(), "an audit event was updated in place");
    let delete = diesel::sql_query("DELETE FROM audit_events").execute(&mut conn);
    assert!(delete.is_err(), "an audit event was deleted");
}

#[test]
fn sqlite_append_only_tables_reject_changes() {
    append_only_rejects_update(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_append_only_tables_reject_changes() {
    append_only_rejects_update(TestBackend::Postgres);
}

#[test]
fn wrong_postgres_url_names_the_cause() {
    let error = establish("postgres://nobody@127.0.0.1:1/none").err().expect("connection must fail");
    let message = error.to_string();
    assert!(message.contains("PostgreSQL at postgres://nobody@127.0.0.1:1/none"), "{message}");
}
