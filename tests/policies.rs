//! Every resolution policy end to end on the demo data. `quorum demo` sets up its accounts
//! and photographs. Then, for each policy of `demo_script::POLICIES`, the script creates a
//! study of the same 56 photographs and grades it through the API. Graders disagree in fixed
//! patterns and re-grade in adjudication rounds, a lead excludes one item, and a senior
//! arbitrates the rest. Every item must end resolved or excluded with the expected method and
//! number of rounds, and the audit trail must contain an event for every grade, transition and
//! decision.

mod common;
mod demo_script;

use std::collections::HashMap;

use common::{TestApp, TestBackend, TestDatabase};
use demo_script::{Api, Credentials, PolicyRun, StudyOutcome, Team, POLICIES};
use diesel::prelude::*;
use quorum::store::schema::{audit_events, grades, items, projects, resolutions};
use serde_json::Value;

/// Ids of a study's project and of the lead and senior who act in it.
struct Actors {
    project_id: i64,
    lead_id: i64,
    senior_id: i64,
}

/// An audit event as stored: action, object type, object id, actor, details.
type EventRow = (String, String, Option<i64>, Option<i64>, String);

/// An audit event with its details parsed.
struct Event {
    action: String,
    kind: String,
    object: Option<i64>,
    actor: Option<i64>,
    details: Value,
}

/// Checks that the audit trail records every grade, transition and decision of the study.
fn check_audit_trail(app: &TestApp, actors: &Actors, policy: &str) {
    let mut conn = app.db.conn().expect("connection");
    let rows: Vec<EventRow> = audit_events::table
        .filter(audit_events::project_id.eq(actors.project_id))
        .order(audit_events::id.asc())
        .select((
            audit_events::action,
            audit_events::object_type,
            audit_events::object_id,
            audit_events::actor_id,
            audit_events::details,
        ))
        .load(&mut conn)
        .expect("audit events");
    let events: Vec<Event> = rows
        .into_iter()
        .map(|(action, kind, object, actor, details)| Event {
            action,
            kind,
            object,
            actor,
            details: serde_json::from_str(&details).expect("details json"),
        })
        .collect();

    let grade_rows: Vec<(i64, i64)> = grades::table
        .inner_join(items::table)
        .filter(items::project_id.eq(actors.project_id))
        .select((grades::id, grades::grader_id))
        .load(&mut conn)
        .expect("grades");
    assert!(grade_rows.len() >= 56 * 3, "{policy}: only {} grades", grade_rows.len());
    for (grade_id, grader_id) in &grade_rows {
        let recorded = events.iter().any(|event| {
            event.kind == "grade"
                && event.object == Some(*grade_id)
                && event.actor == Some(*grader_id)
                && event.action.starts_with("grade.")
        });
        assert!(recorded, "{policy}: grade {grade_id} has no audit event");
    }

    let resolution_ids: Vec<i64> = resolutions::table
        .inner_join(items::table)
        .filter(items::project_id.eq(actors.project_id))
        .select(resolutions::id)
        .load(&mut conn)
        .expect("resolutions");
    for resolution_id in &resolution_ids {
        let recorded = events
            .iter()
            .any(|event| event.kind == "item" && event.details["resolution_id"] == *resolution_id);
        assert!(recorded, "{policy}: resolution {resolution_id} has no audit event");
    }

    let stored: HashMap<i64, String> = items::table
        .filter(items::project_id.eq(actors.project_id))
        .select((items::id, items::status))
        .load::<(i64, String)>(&mut conn)
        .expect("items")
        .into_iter()
        .collect();
    for (&item_id, final_status) in &stored {
        let mut status = "pending".to_string();
        for event in events
            .iter()
            .filter(|event| event.kind == "item" && event.object == Some(item_id))
        {
            let action = &event.action;
            // The upload records the item's arrival; it is no transition.
            if action == "item.imported" {
                assert_eq!(
                    status, "pending",
                    "{policy}: item {item_id} is imported before anything happens to it"
                );
                assert_eq!(
                    event.actor,
                    Some(actors.lead_id),
                    "{policy}: item {item_id}: the lead uploaded it"
                );
                continue;
            }
            assert_eq!(
                event.details["from"],
                status.as_str(),
                "{policy}: item {item_id}: {action} starts from the state before it"
            );
            assert!(
                event.details["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{policy}: item {item_id}: {action} has no reason"
            );
            let expected_actor = match action.as_str() {
                "item.resolved" | "item.to_arbitration" | "item.to_adjudication" | "item.grader_added" => None,
                "item.arbitrated" => Some(actors.senior_id),
                "item.excluded" | "item.reopened" => Some(actors.lead_id),
                "item.grading_started" => event.actor,
                other => panic!("{policy}: unknown item action {other}"),
            };
            assert_eq!(
                event.actor, expected_actor,
                "{policy}: item {item_id}: actor of {action}"
            );
            status = event.details["to"].as_str().expect("to").to_string();
        }
        assert_eq!(
            &status, final_status,
            "{policy}: item {item_id}: the audit trail ends in the stored status"
        );
    }
}

/// Checks that every item ended resolved with the method and rounds of its pattern, or
/// excluded, and that something was excluded and arbitrated.
fn check_outcome(app: &TestApp, run: &PolicyRun, outcome: &StudyOutcome) {
    let policy = run.name;
    assert_eq!(outcome.items.len(), 56, "{policy}: every demo photograph was uploaded");
    let excluded = outcome
        .excluded
        .unwrap_or_else(|| panic!("{policy}: nothing went to arbitration, so nothing was excluded"));
    assert!(outcome.arbitrations > 0, "{policy}: the senior arbitrated nothing");

    let mut conn = app.db.conn().expect("connection");
    for item in &outcome.items {
        let status: String = items::table
            .find(item.item_id)
            .select(items::status)
            .first(&mut conn)
            .expect("item");
        if item.item_id == excluded {
            assert_eq!(status, "excluded", "{policy}: {}", item.name);
            continue;
        }
        assert_eq!(status, "resolved", "{policy}: {} (pattern {})", item.name, item.pattern);
        let (method, rounds_used): (String, i32) = resolutions::table
            .filter(resolutions::item_id.eq(item.item_id))
            .order(resolutions::id.desc())
            .select((resolutions::method, resolutions::rounds_used))
            .first(&mut conn)
            .expect("resolution");
        assert_eq!(
            method, run.methods[item.pattern],
            "{policy}: method of {} (pattern {})",
            item.name, item.pattern
        );
        assert_eq!(
            rounds_used, run.rounds[item.pattern],
            "{policy}: rounds of {} (pattern {})",
            item.name, item.pattern
        );
    }
}

fn user_id(app: &TestApp, username: &str) -> i64 {
    let mut conn = app.db.conn().expect("connection");
    quorum::store::users::find_by_username(&mut conn, username)
        .expect("query")
        .expect("user")
        .id
}

fn all_policies(backend: TestBackend) {
    let database = TestDatabase::new(backend);
    let settings = database.settings();
    let db = database.open();
    let summary = quorum::demo::set_up(&db, &settings).expect("demo set-up");
    assert_eq!(summary.item_count, 56);
    drop(db);
    let app = TestApp::spawn_on(database);

    let text = std::fs::read_to_string(app.settings.data_dir().join("demo-credentials.txt")).expect("credentials file");
    let credentials = Credentials::parse(&text).expect("demo credentials");
    let (photographs, _) = quorum::demo::seed_files().expect("demo photographs");
    assert_eq!(photographs.len(), 56);
    let api = Api::new(&app.base_url).expect("client");
    let team = Team::login(&api, &credentials).expect("log in the demo accounts");
    let lead_id = user_id(&app, &credentials.lead.username);
    let senior_id = user_id(&app, &credentials.senior.username);

    for run in &POLICIES {
        let slug = format!("demo-{}", run.name);
        let outcome = demo_script::run_study(&api, &team, run, &slug, &photographs)
            .unwrap_or_else(|error| panic!("{}: {error:#}", run.name));
        check_outcome(&app, run, &outcome);
        let project_id: i64 = {
            let mut conn = app.db.conn().expect("connection");
            projects::table
                .filter(projects::slug.eq(&slug))
                .select(projects::id)
                .first(&mut conn)
                .expect("study")
        };
        check_audit_trail(
            &app,
            &Actors {
                project_id,
                lead_id,
                senior_id,
            },
            run.name,
        );
    }
}

#[test]
fn sqlite_demo_study_under_every_policy() {
    all_policies(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(
    not(quorum_postgres_tests),
    ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test"
)]
fn postgres_demo_study_under_every_policy() {
    all_policies(TestBackend::Postgres);
}
