//! Each resolution policy end to end. Three graders grade a study of 20 items through the
//! API and disagree in a fixed pattern. Where the policy opens adjudication rounds, the
//! graders review, discuss and re-grade. Then a lead excludes one item and a senior
//! arbitrates the rest. Every item must end resolved or excluded with the expected method,
//! and the audit trail must contain an event for every grade, transition and decision.

mod common;

use std::collections::HashMap;

use common::{TestApp, TestBackend, TestStudy};
use diesel::prelude::*;
use quorum::store::schema::{audit_events, grades, items, resolutions};
use serde_json::{json, Value};

const PASSWORD: &str = "policy test password";
const ITEMS: usize = 20;

struct Team {
    app: TestApp,
    study: TestStudy,
    lead: String,
    senior: String,
    lead_id: i64,
    senior_id: i64,
    graders: Vec<String>,
}

fn team(backend: TestBackend, policy: &str) -> Team {
    let app = TestApp::spawn(backend);
    let lead_id = app.create_user("lead", PASSWORD, false);
    let senior_id = app.create_user("senior", PASSWORD, false);
    let study = app.create_study("study", ITEMS, 3, policy, lead_id);
    app.add_member(&study, senior_id, "senior");
    let mut graders = Vec::new();
    for g in 0..3 {
        let name = format!("grader{g}");
        let id = app.create_user(&name, PASSWORD, false);
        app.add_member(&study, id, "grader");
        graders.push(app.login(&name, PASSWORD));
    }
    let lead = app.login("lead", PASSWORD);
    let senior = app.login("senior", PASSWORD);
    Team { app, study, lead, senior, lead_id, senior_id, graders }
}

fn gradable(dr: &str) -> Value {
    json!({
        "gradability": "gradable", "dr_severity": dr, "dme": "absent", "microaneurysms": "no",
        "haemorrhages": "no", "hard_exudates": "no", "cotton_wool_spots": "no", "new_vessels": "no",
    })
}

fn ungradable() -> Value {
    json!({ "gradability": "ungradable" })
}

/// The answers of grader `grader` in `round` to an item of disagreement pattern `pattern`
/// (the item's index modulo 5):
///
/// 0. everyone agrees;
/// 1. one grader is one step lower, and agrees once adjudication opens;
/// 2. three different severities, kept in every round;
/// 3. one grader finds the image ungradable, and changes their mind in adjudication;
/// 4. two find it ungradable, and the third joins them in adjudication.
fn answers(pattern: usize, grader: usize, round: i64) -> Value {
    let adjudicated = round > 0;
    match pattern {
        0 => gradable("2"),
        1 if grader == 0 && !adjudicated => gradable("1"),
        1 => gradable("2"),
        2 => gradable(["0", "2", "4"][grader]),
        3 if grader == 2 && !adjudicated => ungradable(),
        3 => gradable("3"),
        _ if grader == 2 && !adjudicated => gradable("1"),
        _ => ungradable(),
    }
}

fn pattern_of(study: &TestStudy, item_id: i64) -> usize {
    study.item_ids.iter().position(|id| *id == item_id).expect("item of the study") % 5
}

fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let response = app.get(path, token);
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().expect("json")
}

fn grade(app: &TestApp, token: &str, item_id: i64, answers: Value, round: i64) {
    let body = json!({ "answers": answers, "comment": format!("round {round}"), "time_spent_ms": 2500 });
    let response = app.post_json(&format!("/api/v1/projects/study/items/{item_id}/grades"), token, &body);
    assert_eq!(response.status(), 201, "grade of item {item_id}: {}", response.text().unwrap_or_default());
}

/// Round 0: each grader leases and grades until nothing is left for them.
fn grade_first_round(team: &Team) {
    for (g, token) in team.graders.iter().enumerate() {
        loop {
            let response = team.app.get("/api/v1/projects/study/next", token);
            if response.status() == 204 {
                break;
            }
            let item_id = response.json::<Value>().expect("json")["item_id"].as_i64().expect("item id");
            grade(&team.app, token, item_id, answers(pattern_of(&team.study, item_id), g, 0), 0);
        }
    }
}

/// Adjudication: each grader reviews, discusses and re-grades their open adjudications
/// until none is left.
fn adjudicate(team: &Team) {
    loop {
        let mut regraded = 0;
        for (g, token) in team.graders.iter().enumerate() {
            let mine = get_json(&team.app, token, "/api/v1/projects/study/adjudications/mine");
            for entry in mine["items"].as_array().expect("items") {
                if entry["regraded"] == true {
                    continue;
                }
                let item_id = entry["item_id"].as_i64().expect("item id");
                let round = entry["round"].as_i64().expect("round");
                let review = get_json(&team.app, token, &format!("/api/v1/projects/study/items/{item_id}/review"));
                assert_eq!(review["reviewed_round"], round - 1);
                assert_eq!(review["grades"].as_array().map(Vec::len), Some(3));
                let message = json!({ "body": format!("grader {g} reconsidered round {}", round - 1) });
                let posted = team.app.post_json(&format!("/api/v1/projects/study/items/{item_id}/messages"), token, &message);
                assert_eq!(posted.status(), 201);
                grade(&team.app, token, item_id, answers(pattern_of(&team.study, item_id), g, round), round);
                regraded += 1;
            }
        }
        if regraded == 0 {
            return;
        }
    }
}

/// The lead excludes the first item waiting for arbitration; the senior arbitrates the rest
/// with the first grader's answers. Returns the excluded item.
fn settle(team: &Team) -> Option<i64> {
    let queue = get_json(&team.app, &team.senior, "/api/v1/projects/study/arbitration");
    let waiting: Vec<i64> = queue["items"].as_array().expect("items").iter().map(|e| e["item_id"].as_i64().expect("id")).collect();
    let excluded = waiting.first().copied();
    if let Some(item_id) = excluded {
        let response = team.app.post_json(
            &format!("/api/v1/projects/study/items/{item_id}/exclude"),
            &team.lead,
            &json!({ "reason": "image of the wrong eye" }),
        );
        assert_eq!(response.status(), 200);
    }
    for &item_id in waiting.iter().skip(1) {
        let review = get_json(&team.app, &team.senior, &format!("/api/v1/projects/study/items/{item_id}/review"));
        let body = json!({ "answers": review["grades"][0]["answers"], "reason": "decided on the review" });
        let response = team.app.post_json(&format!("/api/v1/projects/study/items/{item_id}/arbitration"), &team.senior, &body);
        assert_eq!(response.status(), 201, "arbitration of {item_id}: {}", response.text().unwrap_or_default());
    }
    excluded
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
fn check_audit_trail(team: &Team) {
    let mut conn = team.app.db.conn().expect("connection");
    let rows: Vec<EventRow> = audit_events::table
        .filter(audit_events::project_id.eq(team.study.project_id))
        .order(audit_events::id.asc())
        .select((audit_events::action, audit_events::object_type, audit_events::object_id, audit_events::actor_id, audit_events::details))
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

    let grade_rows: Vec<(i64, i64)> = grades::table.select((grades::id, grades::grader_id)).load(&mut conn).expect("grades");
    for (grade_id, grader_id) in &grade_rows {
        let recorded = events.iter().any(|event| {
            event.kind == "grade" && event.object == Some(*grade_id) && event.actor == Some(*grader_id) && event.action.starts_with("grade.")
        });
        assert!(recorded, "grade {grade_id} has no audit event");
    }

    let resolution_ids: Vec<i64> = resolutions::table.select(resolutions::id).load(&mut conn).expect("resolutions");
    for resolution_id in &resolution_ids {
        let recorded = events.iter().any(|event| event.kind == "item" && event.details["resolution_id"] == *resolution_id);
        assert!(recorded, "resolution {resolution_id} has no audit event");
    }

    let stored: HashMap<i64, String> = items::table
        .filter(items::project_id.eq(team.study.project_id))
        .select((items::id, items::status))
        .load::<(i64, String)>(&mut conn)
        .expect("items")
        .into_iter()
        .collect();
    for (&item_id, final_status) in &stored {
        let mut status = "pending".to_string();
        for event in events.iter().filter(|event| event.kind == "item" && event.object == Some(item_id)) {
            let action = &event.action;
            assert_eq!(event.details["from"], status.as_str(), "item {item_id}: {action} starts from the state before it");
            assert!(event.details["reason"].as_str().is_some_and(|r| !r.is_empty()), "item {item_id}: {action} has no reason");
            let expected_actor = match action.as_str() {
                "item.resolved" | "item.to_arbitration" | "item.to_adjudication" | "item.grader_added" => None,
                "item.arbitrated" => Some(team.senior_id),
                "item.excluded" | "item.reopened" => Some(team.lead_id),
                "item.grading_started" => event.actor,
                other => panic!("unknown item action {other}"),
            };
            assert_eq!(event.actor, expected_actor, "item {item_id}: actor of {action}");
            status = event.details["to"].as_str().expect("to").to_string();
        }
        assert_eq!(&status, final_status, "item {item_id}: the audit trail ends in the stored status");
    }
}

/// Runs one policy and checks the method of every item against `expected` (by pattern).
fn run_policy(backend: TestBackend, policy: &str, expected: [&str; 5], rounds: [i32; 5]) {
    let team = team(backend, policy);
    grade_first_round(&team);
    adjudicate(&team);
    let excluded = settle(&team);

    let mut conn = team.app.db.conn().expect("connection");
    for &item_id in &team.study.item_ids {
        let status: String = items::table.find(item_id).select(items::status).first(&mut conn).expect("item");
        if Some(item_id) == excluded {
            assert_eq!(status, "excluded");
            continue;
        }
        assert_eq!(status, "resolved", "item {item_id}");
        let pattern = pattern_of(&team.study, item_id);
        let (method, rounds_used): (String, i32) = resolutions::table
            .filter(resolutions::item_id.eq(item_id))
            .select((resolutions::method, resolutions::rounds_used))
            .first(&mut conn)
            .expect("resolution");
        assert_eq!(method, expected[pattern], "{policy}: method of item {item_id} (pattern {pattern})");
        assert_eq!(rounds_used, rounds[pattern], "{policy}: rounds of item {item_id} (pattern {pattern})");
    }
    drop(conn);
    assert!(excluded.is_some() || expected.iter().all(|m| *m != "arbitration"), "{policy}: nothing was excluded");
    check_audit_trail(&team);
}

fn majority_vote(backend: TestBackend) {
    run_policy(backend, "majority-vote", ["unanimous", "majority", "arbitration", "majority", "majority"], [1, 1, 1, 1, 1]);
}

fn senior_arbitration(backend: TestBackend) {
    let methods = ["unanimous", "arbitration", "arbitration", "arbitration", "arbitration"];
    run_policy(backend, "senior-arbitration", methods, [1, 1, 1, 1, 1]);
}

fn adjudication(backend: TestBackend) {
    let methods = ["unanimous", "adjudication", "arbitration", "adjudication", "adjudication"];
    run_policy(backend, "adjudication", methods, [1, 2, 3, 2, 2]);
}

#[test]
fn sqlite_majority_vote() {
    majority_vote(TestBackend::Sqlite);
}

#[test]
fn sqlite_senior_arbitration() {
    senior_arbitration(TestBackend::Sqlite);
}

#[test]
fn sqlite_adjudication() {
    adjudication(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_majority_vote() {
    majority_vote(TestBackend::Postgres);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_senior_arbitration() {
    senior_arbitration(TestBackend::Postgres);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_adjudication() {
    adjudication(TestBackend::Postgres);
}
