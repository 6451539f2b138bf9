//! The item workflow through the API: arbitration, adjudication with discussion and
//! re-grades, exclude and reopen, every rejected transition, and blinding until adjudication
//! opens. The main flows run on SQLite and on PostgreSQL, two edge cases on SQLite only.

mod common;

use common::{TestApp, TestBackend, TestStudy};
use diesel::prelude::*;
use quorum::store::schema::{audit_events, grades, items, projects, resolutions};
use serde_json::{json, Value};

const PASSWORD: &str = "workflow test password";

/// A study with a lead, a senior and graders, all logged in.
struct Team {
    app: TestApp,
    study: TestStudy,
    lead: String,
    senior: String,
    senior_id: i64,
    lead_id: i64,
    graders: Vec<String>,
}

/// Members join in this order, so the lead is "Grader A", the senior "Grader B" and grader
/// `g` "Grader" + the letter `C + g`.
fn team(backend: TestBackend, policy: &str, n_items: usize, n_graders: usize, params: Value) -> Team {
    let app = TestApp::spawn(backend);
    let lead_id = app.create_user("lead", PASSWORD, false);
    let senior_id = app.create_user("senior", PASSWORD, false);
    let study = app.create_study("study", n_items, 3, policy, lead_id);
    app.add_member(&study, senior_id, "senior");
    let mut graders = Vec::new();
    for g in 0..n_graders {
        let name = format!("grader{g}");
        let id = app.create_user(&name, PASSWORD, false);
        app.add_member(&study, id, "grader");
        graders.push(app.login(&name, PASSWORD));
    }
    let mut conn = app.db.conn().expect("connection");
    diesel::update(projects::table.find(study.project_id))
        .set(projects::policy_params.eq(params.to_string()))
        .execute(&mut conn)
        .expect("set policy params");
    drop(conn);
    let lead = app.login("lead", PASSWORD);
    let senior = app.login("senior", PASSWORD);
    Team { app, study, lead, senior, senior_id, lead_id, graders }
}

fn gradable(dr: &str) -> Value {
    json!({
        "gradability": "gradable", "dr_severity": dr, "dme": "absent", "microaneurysms": "no",
        "haemorrhages": "no", "hard_exudates": "no", "cotton_wool_spots": "no", "new_vessels": "no",
    })
}

fn next_item(app: &TestApp, token: &str) -> Option<i64> {
    let response = app.get("/api/v1/projects/study/next", token);
    match response.status().as_u16() {
        200 => Some(response.json::<Value>().expect("json")["item_id"].as_i64().expect("item id")),
        204 => None,
        other => panic!("next returned {other}: {}", response.text().unwrap_or_default()),
    }
}

fn grade(app: &TestApp, token: &str, item_id: i64, answers: Value, comment: &str) -> reqwest::blocking::Response {
    let body = json!({ "answers": answers, "comment": comment, "time_spent_ms": 4321 });
    app.post_json(&format!("/api/v1/projects/study/items/{item_id}/grades"), token, &body)
}

/// Each grader in turn leases the next item, which must be `item_id`, and grades it.
fn grade_item(team: &Team, item_id: i64, answers: &[Value]) {
    for (g, answers) in answers.iter().enumerate() {
        let token = &team.graders[g];
        assert_eq!(next_item(&team.app, token), Some(item_id), "grader {g} leases item {item_id}");
        let response = grade(&team.app, token, item_id, answers.clone(), &format!("grader {g} round 0"));
        assert_eq!(response.status(), 201, "grader {g}: {}", response.text().unwrap_or_default());
    }
}

fn item_state(app: &TestApp, item_id: i64) -> (String, i32) {
    let mut conn = app.db.conn().expect("connection");
    items::table.find(item_id).select((items::status, items::round)).first(&mut conn).expect("item")
}

/// Audit events about one item: action, actor and details, oldest first.
fn item_events(app: &TestApp, item_id: i64) -> Vec<(String, Option<i64>, Value)> {
    let mut conn = app.db.conn().expect("connection");
    let rows: Vec<(String, Option<i64>, String)> = audit_events::table
        .filter(audit_events::object_type.eq("item"))
        .filter(audit_events::object_id.eq(item_id))
        .order(audit_events::id.asc())
        .select((audit_events::action, audit_events::actor_id, audit_events::details))
        .load(&mut conn)
        .expect("audit events");
    rows.into_iter().map(|(action, actor, details)| (action, actor, serde_json::from_str(&details).expect("details json"))).collect()
}

fn audit_count(app: &TestApp) -> i64 {
    let mut conn = app.db.conn().expect("connection");
    audit_events::table.count().get_result(&mut conn).expect("count")
}

/// A stored resolution: method, decided_by, rounds_used, reason, supersedes.
type ResolutionRow = (String, Option<i64>, i32, String, Option<i64>);

/// Loads the newest resolution of an item.
fn resolution(app: &TestApp, item_id: i64) -> Option<ResolutionRow> {
    let mut conn = app.db.conn().expect("connection");
    resolutions::table
        .filter(resolutions::item_id.eq(item_id))
        .order(resolutions::id.desc())
        .select((resolutions::method, resolutions::decided_by, resolutions::rounds_used, resolutions::reason, resolutions::supersedes))
        .first(&mut conn)
        .optional()
        .expect("resolution")
}

fn post(app: &TestApp, token: &str, item_id: i64, action: &str, body: Value) -> (u16, Value) {
    let response = app.post_json(&format!("/api/v1/projects/study/items/{item_id}/{action}"), token, &body);
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn get_json(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let response = app.get(path, token);
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn review(app: &TestApp, token: &str, item_id: i64) -> (u16, String) {
    let response = app.get(&format!("/api/v1/projects/study/items/{item_id}/review"), token);
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

/// Sends each workflow request of the API to an item in each state. The items reach their
/// states through the API: 3 resolved, 3 in arbitration, 3 in adjudication, 3 in grading,
/// 3 excluded and 3 pending.
fn rejected_transitions(backend: TestBackend) {
    let params = json!({ "escalation": { "field": "dr_severity", "arbitration_max_steps": 1 } });
    let team = team(backend, "adjudication", 18, 3, params);
    let app = &team.app;
    let ids = team.study.item_ids.clone();
    for &item in &ids[0..3] {
        grade_item(&team, item, &[gradable("2"), gradable("2"), gradable("2")]);
    }
    for &item in &ids[3..6] {
        grade_item(&team, item, &[gradable("1"), gradable("2"), gradable("2")]);
    }
    for &item in &ids[6..9] {
        grade_item(&team, item, &[gradable("0"), gradable("2"), gradable("2")]);
    }
    for &item in &ids[9..12] {
        assert_eq!(next_item(app, &team.graders[0]), Some(item));
        assert_eq!(grade(app, &team.graders[0], item, gradable("1"), "").status(), 201);
    }
    for &item in &ids[12..15] {
        assert_eq!(post(app, &team.lead, item, "exclude", json!({ "reason": "duplicate image" })).0, 200);
    }
    let states = [("resolved", 0), ("arbitration", 3), ("adjudication", 6), ("grading", 9), ("excluded", 12), ("pending", 15)];
    for (status, first) in states {
        assert_eq!(item_state(app, ids[first]).0, status, "item {first} prepared");
    }

    let arbitration = json!({ "answers": gradable("2"), "reason": "clear moderate NPDR" });
    let reason = json!({ "reason": "checked by the lead" });
    // (state, arbitrate, exclude, reopen): expected status of each request.
    let expected = [
        ("resolved", 409, 200, 200),
        ("arbitration", 201, 200, 409),
        ("adjudication", 409, 200, 409),
        ("grading", 409, 200, 409),
        ("excluded", 409, 409, 200),
        ("pending", 409, 200, 409),
    ];
    for ((status, first), (label, arbitrate, exclude, reopen)) in states.iter().zip(expected) {
        assert_eq!(*status, label);
        let cases = [
            ("arbitration", &team.senior, ids[*first], arbitration.clone(), arbitrate),
            ("exclude", &team.lead, ids[first + 1], reason.clone(), exclude),
            ("reopen", &team.lead, ids[first + 2], reason.clone(), reopen),
        ];
        for (action, token, item, body, expected_status) in cases {
            let events_before = audit_count(app);
            let state_before = item_state(app, item);
            let (code, response) = post(app, token, item, action, body);
            assert_eq!(code, expected_status, "{action} on an item in {status}: {response}");
            if code == 409 {
                let message = response["error"]["message"].as_str().expect("message");
                assert!(message.contains(&format!("item {item}: cannot")), "{message}");
                assert_eq!(response["error"]["code"], "conflict");
                assert_eq!(audit_count(app), events_before, "a rejected {action} wrote an audit event");
                assert_eq!(item_state(app, item), state_before, "a rejected {action} changed the item");
            } else {
                assert_eq!(audit_count(app), events_before + 1, "{action} on {status} writes one audit event");
            }
        }
    }

    // Grades for items that left grading are rejected too, for the graders who graded them.
    for item in [ids[0], ids[3]] {
        let response = grade(app, &team.graders[0], item, gradable("3"), "");
        assert_eq!(response.status(), 409, "grade of item {item}");
    }
}

#[test]
fn sqlite_rejected_transitions() {
    rejected_transitions(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_rejected_transitions() {
    rejected_transitions(TestBackend::Postgres);
}

fn arbitration_flow(backend: TestBackend) {
    let team = team(backend, "senior-arbitration", 1, 3, json!({}));
    let app = &team.app;
    let item = team.study.item_ids[0];
    grade_item(&team, item, &[gradable("1"), gradable("3"), gradable("3")]);
    assert_eq!(item_state(app, item), ("arbitration".to_string(), 0));

    let (status, queue) = get_json(app, &team.senior, "/api/v1/projects/study/arbitration");
    assert_eq!(status, 200);
    assert_eq!(queue["items"][0]["item_id"], item);
    assert_eq!(queue["items"][0]["graders"], 3);
    assert_eq!(get_json(app, &team.lead, "/api/v1/projects/study/arbitration").0, 200);
    assert_eq!(get_json(app, &team.graders[0], "/api/v1/projects/study/arbitration").0, 403);

    let (status, body) = review(app, &team.senior, item);
    assert_eq!(status, 200, "{body}");
    for username in ["grader0", "grader1", "grader2", "senior", "lead"] {
        assert!(!body.contains(username), "the review names user {username}: {body}");
    }
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["access"], "full");
    assert_eq!(body["reviewed_round"], 0);
    assert_eq!(body["resolution"], Value::Null, "an item in arbitration has no resolution yet");
    let pseudonyms: Vec<&str> = body["grades"].as_array().expect("grades").iter().map(|g| g["pseudonym"].as_str().expect("name")).collect();
    assert_eq!(pseudonyms, ["Grader C", "Grader D", "Grader E"]);
    assert_eq!(body["grades"][0]["comment"], "grader 0 round 0");
    assert_eq!(body["grades"][0]["time_spent_ms"], 4321);
    let fields = body["fields"].as_array().expect("fields");
    let dr = fields.iter().find(|f| f["field"] == "dr_severity").expect("dr_severity");
    assert_eq!(dr["disputed"], true);
    assert_eq!(dr["answers"][0], json!({ "answer": "3", "pseudonyms": ["Grader D", "Grader E"] }));
    assert_eq!(dr["answers"][1], json!({ "answer": "1", "pseudonyms": ["Grader C"] }));
    assert_eq!(dr["majority"], json!({ "answer": "3", "count": 2, "of": 3 }));
    assert!(dr["advice"]["label"].is_string(), "{dr}");
    assert!(dr["advice"]["posterior"].as_array().is_some_and(|p| !p.is_empty()));
    assert!(body["advice_note"].as_str().is_some_and(|note| note.contains("advice")));
    let dme = fields.iter().find(|f| f["field"] == "dme").expect("dme");
    assert_eq!(dme["disputed"], false);

    let path = format!("/api/v1/projects/study/items/{item}/arbitration");
    let valid = json!({ "answers": gradable("3"), "reason": "haemorrhages in four quadrants" });
    assert_eq!(app.post_json(&path, &team.graders[0], &valid).status(), 403);
    assert_eq!(app.post_json(&path, &team.lead, &valid).status(), 403);
    let (status, error) = post(app, &team.senior, item, "arbitration", json!({ "answers": gradable("3"), "reason": "  " }));
    assert_eq!(status, 422);
    assert_eq!(error["error"]["field"], "reason");
    let (status, error) = post(app, &team.senior, item, "arbitration", json!({ "answers": gradable("3") }));
    assert_eq!((status, error["error"]["field"].clone()), (422, json!("reason")));
    let (status, error) = post(app, &team.senior, item, "arbitration", json!({ "answers": gradable("7"), "reason": "r" }));
    assert_eq!(status, 422);
    assert_eq!(error["error"]["field"], "dr_severity");
    assert_eq!(resolution(app, item), None, "a rejected arbitration wrote a resolution");

    let (status, receipt) = post(app, &team.senior, item, "arbitration", valid.clone());
    assert_eq!(status, 201, "{receipt}");
    assert_eq!(receipt["method"], "arbitration");
    assert_eq!(item_state(app, item), ("resolved".to_string(), 0));
    let stored = resolution(app, item).expect("resolution");
    assert_eq!(stored, ("arbitration".to_string(), Some(team.senior_id), 1, "haemorrhages in four quadrants".to_string(), None));
    let events = item_events(app, item);
    let (action, actor, details) = events.last().expect("event");
    assert_eq!(action, "item.arbitrated");
    assert_eq!(*actor, Some(team.senior_id));
    assert_eq!(details["reason"], "haemorrhages in four quadrants");
    assert_eq!(details["from"], "arbitration");
    assert_eq!(details["to"], "resolved");
    assert_eq!(details["resolution_id"], receipt["resolution_id"]);

    // A review opened after the decision shows the final answer to seniors and leads.
    for token in [&team.senior, &team.lead] {
        let (status, body) = get_json(app, token, &format!("/api/v1/projects/study/items/{item}/review"));
        assert_eq!(status, 200);
        let resolved = &body["resolution"];
        assert_eq!(resolved["resolution_id"], receipt["resolution_id"]);
        assert_eq!(resolved["method"], "arbitration");
        assert_eq!(resolved["decided_by"], "Grader B", "the senior is named by pseudonym");
        assert_eq!(resolved["reason"], "haemorrhages in four quadrants");
        assert_eq!(resolved["rounds_used"], 1);
        assert_eq!(resolved["answers"]["dr_severity"], "3");
        assert!(resolved["created_at"].as_i64().is_some_and(|t| t > 0));
    }
    assert_eq!(review(app, &team.graders[0], item).0, 403, "graders get no review of a resolved item");

    assert_eq!(post(app, &team.senior, item, "arbitration", valid).0, 409, "a resolved item is not arbitrated again");
    let (_, queue) = get_json(app, &team.senior, "/api/v1/projects/study/arbitration");
    assert_eq!(queue["items"], json!([]));
    assert_eq!(post(app, &team.senior, 999_999, "arbitration", json!({ "answers": gradable("3"), "reason": "r" })).0, 404);
}

#[test]
fn sqlite_arbitration_flow() {
    arbitration_flow(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_arbitration_flow() {
    arbitration_flow(TestBackend::Postgres);
}

fn adjudication_flow(backend: TestBackend) {
    let team = team(backend, "adjudication", 2, 4, json!({}));
    let app = &team.app;
    let item = team.study.item_ids[0];
    grade_item(&team, item, &[gradable("0"), gradable("2"), gradable("2")]);
    assert_eq!(item_state(app, item), ("adjudication".to_string(), 1));
    let (action, actor, details) = item_events(app, item).pop().expect("event");
    assert_eq!((action.as_str(), actor), ("item.to_adjudication", None));
    assert!(details["reason"].as_str().is_some_and(|r| r.contains("dr_severity disputed")), "{details}");

    // The three graders of round 0 hold places in round 1; the fourth grader does not.
    let outsider = &team.graders[3];
    for token in &team.graders[0..3] {
        let (status, mine) = get_json(app, token, "/api/v1/projects/study/adjudications/mine");
        assert_eq!(status, 200);
        assert_eq!(mine["items"][0]["item_id"], item);
        assert_eq!(mine["items"][0]["regraded"], false);
    }
    let (_, mine) = get_json(app, outsider, "/api/v1/projects/study/adjudications/mine");
    assert_eq!(mine["items"], json!([]));
    assert_eq!(review(app, outsider, item).0, 403);
    assert_eq!(get_json(app, outsider, &format!("/api/v1/projects/study/items/{item}/messages")).0, 403);
    assert_eq!(grade(app, outsider, item, gradable("2"), "").status(), 403);
    assert_eq!(next_item(app, outsider), Some(team.study.item_ids[1]), "items in adjudication are not leased");

    let (status, body) = review(app, &team.graders[1], item);
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["access"], "participant");
    assert_eq!(body["reviewed_round"], 0);
    assert_eq!(body["grades"].as_array().map(Vec::len), Some(3));
    assert_eq!(body["grades"][0]["comment"], "grader 0 round 0");
    assert_eq!(body["current_round"], Value::Null);

    let messages = format!("/api/v1/projects/study/items/{item}/messages");
    let posted = app.post_json(&messages, &team.graders[0], &json!({ "body": "I missed the haemorrhages" }));
    assert_eq!(posted.status(), 201);
    let posted: Value = posted.json().expect("json");
    assert_eq!(posted["author"], "Grader C");
    assert_eq!(posted["round"], 1);
    assert_eq!(app.post_json(&messages, &team.senior, &json!({ "body": "Look at the superior arcade" })).status(), 201);
    let empty = app.post_json(&messages, &team.graders[1], &json!({ "body": " " }));
    assert_eq!(empty.status(), 422);
    let (_, listed) = get_json(app, &team.graders[2], &messages);
    let listed = listed["messages"].as_array().expect("messages").clone();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["author"], "Grader B");
    assert!(!serde_json::to_string(&listed).expect("json").contains("senior"), "messages name the username");

    // Re-grades of round 1 stay blind to the other graders until the round closes.
    let secret = "round-one-secret-comment";
    let first = grade(app, &team.graders[0], item, gradable("2"), secret);
    assert_eq!(first.status(), 201);
    let first: Value = first.json().expect("json");
    assert_eq!(first["round"], 1);
    assert_eq!(first["supersedes"], Value::Null, "a re-grade is a new grade of round 1");
    assert_eq!(item_state(app, item).0, "adjudication");
    let (_, body) = review(app, &team.graders[1], item);
    assert!(!body.contains(secret), "a participant sees another grader's re-grade: {body}");
    let (_, body) = review(app, &team.senior, item);
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["current_round"]["grades"][0]["comment"], secret);
    assert_eq!(body["current_round"]["participants"].as_array().map(Vec::len), Some(3));
    let (_, overview) = get_json(app, &team.senior, "/api/v1/projects/study/adjudications");
    assert_eq!(overview["items"][0]["participants"][0], json!({ "pseudonym": "Grader C", "regraded": true }));
    assert_eq!(overview["items"][0]["messages"], 2);
    assert_eq!(get_json(app, &team.graders[0], "/api/v1/projects/study/adjudications").0, 403);

    let correction = grade(app, &team.graders[0], item, gradable("2"), "corrected");
    assert_eq!(correction.json::<Value>().expect("json")["supersedes"], first["grade_id"]);
    assert_eq!(grade(app, &team.graders[1], item, gradable("2"), "agree").status(), 201);
    assert_eq!(grade(app, &team.graders[2], item, gradable("2"), "agree").status(), 201);

    assert_eq!(item_state(app, item), ("resolved".to_string(), 1));
    let stored = resolution(app, item).expect("resolution");
    assert_eq!((stored.0.as_str(), stored.1, stored.2), ("adjudication", None, 2));
    let (_, body) = get_json(app, &team.senior, &format!("/api/v1/projects/study/items/{item}/review"));
    let resolved = &body["resolution"];
    assert_eq!(resolved["method"], "adjudication");
    assert_eq!(resolved["decided_by"], Value::Null, "the policy decided, not a senior");
    assert_eq!(resolved["rounds_used"], 2);
    assert_eq!(resolved["answers"]["dr_severity"], "2");
    assert!(resolved["reason"].as_str().is_some_and(|reason| reason.contains("every field unanimous")), "{resolved}");
    let actions: Vec<String> = item_events(app, item).into_iter().map(|(action, _, _)| action).collect();
    assert_eq!(actions, ["item.grading_started", "item.to_adjudication", "item.resolved"]);
    assert_eq!(review(app, &team.graders[0], item).0, 403, "review closes with adjudication");
    assert_eq!(app.post_json(&messages, &team.graders[0], &json!({ "body": "late" })).status(), 403);
    assert_eq!(get_json(app, &team.lead, &messages).1["messages"].as_array().map(Vec::len), Some(2));
}

#[test]
fn sqlite_adjudication_flow() {
    adjudication_flow(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_adjudication_flow() {
    adjudication_flow(TestBackend::Postgres);
}

#[test]
fn adjudication_rounds_end_in_arbitration() {
    let team = team(TestBackend::Sqlite, "adjudication", 1, 3, json!({ "adjudication_rounds": 2 }));
    let app = &team.app;
    let item = team.study.item_ids[0];
    let split = [gradable("0"), gradable("2"), gradable("4")];
    grade_item(&team, item, &split);
    for round in 1..=2 {
        assert_eq!(item_state(app, item), ("adjudication".to_string(), round));
        for (g, answers) in split.iter().enumerate() {
            assert_eq!(grade(app, &team.graders[g], item, answers.clone(), "unchanged").status(), 201);
        }
    }
    assert_eq!(item_state(app, item), ("arbitration".to_string(), 2));
    let (status, body) = review(app, &team.senior, item);
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).expect("json")["reviewed_round"], 2);
    let (status, _) = post(app, &team.senior, item, "arbitration", json!({ "answers": gradable("2"), "reason": "middle grade" }));
    assert_eq!(status, 201);
    assert_eq!(resolution(app, item).map(|r| r.2), Some(3), "three rounds ran before the senior decided");
}

fn exclude_and_reopen(backend: TestBackend) {
    let team = team(backend, "majority-vote", 1, 3, json!({}));
    let app = &team.app;
    let item = team.study.item_ids[0];
    assert_eq!(next_item(app, &team.graders[0]), Some(item));
    assert_eq!(grade(app, &team.graders[0], item, gradable("1"), "").status(), 201);
    assert_eq!(next_item(app, &team.graders[1]), Some(item));

    assert_eq!(post(app, &team.senior, item, "exclude", json!({ "reason": "r" })).0, 403);
    assert_eq!(post(app, &team.graders[0], item, "exclude", json!({ "reason": "r" })).0, 403);
    let (status, error) = post(app, &team.lead, item, "exclude", json!({}));
    assert_eq!((status, error["error"]["field"].clone()), (422, json!("reason")));
    assert_eq!(post(app, &team.lead, 999_999, "exclude", json!({ "reason": "r" })).0, 404);

    let (status, body) = post(app, &team.lead, item, "exclude", json!({ "reason": "wrong eye imaged" }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "item_id": item, "status": "excluded", "round": 0, "previous_status": "grading" }));
    let (action, actor, details) = item_events(app, item).pop().expect("event");
    assert_eq!((action.as_str(), actor), ("item.excluded", Some(team.lead_id)));
    assert_eq!(details["reason"], "wrong eye imaged");
    assert_eq!(details["from"], "grading");
    assert_eq!(grade(app, &team.graders[1], item, gradable("1"), "").status(), 409, "an excluded item takes no grades");
    assert_eq!(next_item(app, &team.graders[2]), None, "an excluded item is not leased");

    let (status, body) = post(app, &team.lead, item, "reopen", json!({ "reason": "right eye after all" }));
    assert_eq!(status, 200);
    assert_eq!(body["status"], "grading");
    assert_eq!(body["round"], 0, "an excluded item returns to the state it was excluded from");
    let (action, actor, details) = item_events(app, item).pop().expect("event");
    assert_eq!((action.as_str(), actor), ("item.reopened", Some(team.lead_id)));
    assert_eq!(details["reason"], "right eye after all");

    // The first grade survived the exclusion, so two more finish the round.
    for token in &team.graders[1..3] {
        assert_eq!(next_item(app, token), Some(item));
        assert_eq!(grade(app, token, item, gradable("1"), "").status(), 201);
    }
    assert_eq!(item_state(app, item), ("resolved".to_string(), 0));
    let first = resolution(app, item).expect("resolution");
    assert_eq!(first.0, "unanimous");

    let (status, body) = post(app, &team.lead, item, "reopen", json!({ "reason": "regrade with the new protocol" }));
    assert_eq!(status, 200);
    assert_eq!((body["status"].clone(), body["round"].clone()), (json!("grading"), json!(1)));
    for token in &team.graders {
        assert_eq!(next_item(app, token), Some(item), "the reopened item is graded again in round 1");
        assert_eq!(grade(app, token, item, gradable("3"), "").status(), 201);
    }
    assert_eq!(item_state(app, item), ("resolved".to_string(), 1));
    let second = resolution(app, item).expect("resolution");
    assert_eq!(second.0, "unanimous", "round 1 is a grading round, not adjudication");
    assert_eq!(second.2, 1, "rounds count from the reopening");
    assert!(second.4.is_some(), "the new resolution supersedes the first");

    let actions: Vec<String> = item_events(app, item).into_iter().map(|(action, _, _)| action).collect();
    assert_eq!(actions, ["item.grading_started", "item.excluded", "item.reopened", "item.resolved", "item.reopened", "item.resolved"]);
}

#[test]
fn sqlite_exclude_and_reopen() {
    exclude_and_reopen(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_exclude_and_reopen() {
    exclude_and_reopen(TestBackend::Postgres);
}

/// Returns the body of a rejected review with the item id replaced, so that rejections of
/// different items can be compared.
fn rejected_review(app: &TestApp, token: &str, item_id: i64) -> String {
    let (status, body) = review(app, token, item_id);
    assert_eq!(status, 403, "review of item {item_id}: {body}");
    body.replace(&item_id.to_string(), "ITEM")
}

fn blind_until_adjudication(backend: TestBackend) {
    let team = team(backend, "adjudication", 2, 4, json!({}));
    let app = &team.app;
    let (item, other) = (team.study.item_ids[0], team.study.item_ids[1]);
    let g = &team.graders;
    let secret = "first-grade-secret-comment";
    assert_eq!(next_item(app, &g[0]), Some(item));
    assert_eq!(grade(app, &g[0], item, gradable("0"), secret).status(), 201);
    assert_eq!(next_item(app, &g[1]), Some(item), "the second grader holds the same item");

    // The grader who graded, the grader holding a lease and a grader with no part get the
    // same rejection, and the same as for an item without grades.
    let expected = rejected_review(app, &g[0], item);
    assert!(!expected.contains(secret));
    assert_eq!(rejected_review(app, &g[1], item), expected);
    assert_eq!(rejected_review(app, &g[3], item), expected);
    assert_eq!(rejected_review(app, &g[1], other), expected, "the rejection shows whether the item has grades");
    let messages = format!("/api/v1/projects/study/items/{item}/messages");
    for token in &g[0..2] {
        assert_eq!(get_json(app, token, &messages).0, 403);
        assert_eq!(app.post_json(&messages, token, &json!({ "body": "what did you see?" })).status(), 403);
        let (status, mine) = get_json(app, token, "/api/v1/projects/study/adjudications/mine");
        assert_eq!((status, mine["items"].clone()), (200, json!([])));
    }
    let (status, body) = review(app, &team.senior, item);
    assert_eq!(status, 200);
    assert!(body.contains(secret), "seniors see grades while grading");

    // Adjudication opens for this item: its graders now read each other's round-0 grades.
    assert_eq!(grade(app, &g[1], item, gradable("2"), "").status(), 201);
    assert_eq!(next_item(app, &g[2]), Some(item));
    assert_eq!(grade(app, &g[2], item, gradable("2"), "").status(), 201);
    assert_eq!(item_state(app, item).0, "adjudication");
    for token in &g[0..3] {
        let (status, body) = review(app, token, item);
        assert_eq!(status, 200);
        assert!(body.contains(secret));
    }
    assert_eq!(rejected_review(app, &g[3], item), expected, "a grader of another item stays out");

    // A second item with graders 3, 0 and 1: grader 2 may not review it.
    for token in [&g[3], &g[0], &g[1]] {
        assert_eq!(next_item(app, token), Some(other));
    }
    for (token, dr) in [(&g[3], "0"), (&g[0], "1"), (&g[1], "4")] {
        assert_eq!(grade(app, token, other, gradable(dr), "").status(), 201);
    }
    assert_eq!(item_state(app, other).0, "adjudication");
    assert_eq!(rejected_review(app, &g[2], other), expected);
    assert_eq!(review(app, &g[3], other).0, 200);
}

#[test]
fn sqlite_blind_until_adjudication() {
    blind_until_adjudication(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_blind_until_adjudication() {
    blind_until_adjudication(TestBackend::Postgres);
}

/// Checks that every correction supersedes a grade of the same grader.
fn assert_corrections_are_own(app: &TestApp) {
    let mut conn = app.db.conn().expect("connection");
    let rows: Vec<(i64, i64, Option<i64>)> =
        grades::table.select((grades::id, grades::grader_id, grades::supersedes)).load(&mut conn).expect("grades");
    let grader_of: std::collections::HashMap<i64, i64> = rows.iter().map(|(id, grader, _)| (*id, *grader)).collect();
    for (id, grader, supersedes) in &rows {
        if let Some(old) = supersedes {
            assert_eq!(grader_of.get(old), Some(grader), "grade {id} supersedes grade {old} of another grader");
        }
    }
}

fn graders_write_only_own_grades(backend: TestBackend) {
    let params = json!({ "escalation": { "field": "dr_severity", "arbitration_max_steps": 1 } });
    let team = team(backend, "adjudication", 6, 4, params);
    let app = &team.app;
    let ids = team.study.item_ids.clone();
    grade_item(&team, ids[0], &[gradable("2"), gradable("2"), gradable("2")]);
    grade_item(&team, ids[1], &[gradable("1"), gradable("2"), gradable("2")]);
    grade_item(&team, ids[2], &[gradable("0"), gradable("2"), gradable("2")]);
    assert_eq!(next_item(app, &team.graders[0]), Some(ids[3]));
    assert_eq!(grade(app, &team.graders[0], ids[3], gradable("1"), "").status(), 201);
    assert_eq!(post(app, &team.lead, ids[4], "exclude", json!({ "reason": "no consent" })).0, 200);
    let states: Vec<String> = ids.iter().map(|id| item_state(app, *id).0).collect();
    assert_eq!(states, ["resolved", "arbitration", "adjudication", "grading", "excluded", "pending"]);

    let outsider = &team.graders[3];
    let before = app.grade_count();
    for (&item, state) in ids.iter().zip(&states) {
        let response = grade(app, outsider, item, gradable("4"), "");
        assert_eq!(response.status(), 403, "a grader without a place grades an item in {state}");
        let body = json!({ "answers": gradable("4"), "comment": "", "time_spent_ms": 1, "grader_id": team.senior_id });
        let response = app.post_json(&format!("/api/v1/projects/study/items/{item}/grades"), &team.graders[0], &body);
        assert_eq!(response.status(), 400, "a grade names its grader, in {state}");
    }
    assert_eq!(app.grade_count(), before, "a rejected grade was stored");

    // In adjudication a re-grade is the grader's own new grade and leaves the others alone.
    let review_before: Value = serde_json::from_str(&review(app, &team.senior, ids[2]).1).expect("json");
    assert_eq!(grade(app, &team.graders[1], ids[2], gradable("1"), "").status(), 201);
    let review_after: Value = serde_json::from_str(&review(app, &team.senior, ids[2]).1).expect("json");
    assert_eq!(review_after["grades"], review_before["grades"], "round 0 grades changed");
    assert_eq!(review_after["current_round"]["grades"].as_array().map(Vec::len), Some(1));
    assert_corrections_are_own(app);
}

#[test]
fn sqlite_graders_write_only_own_grades() {
    graders_write_only_own_grades(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_graders_write_only_own_grades() {
    graders_write_only_own_grades(TestBackend::Postgres);
}

#[test]
fn reopen_after_overlap_lowered_closes_round() {
    let team = team(TestBackend::Sqlite, "majority-vote", 1, 2, json!({}));
    let app = &team.app;
    let item = team.study.item_ids[0];
    for token in &team.graders {
        assert_eq!(next_item(app, token), Some(item));
        assert_eq!(grade(app, token, item, gradable("2"), "").status(), 201);
    }
    assert_eq!(post(app, &team.lead, item, "exclude", json!({ "reason": "pending a quality check" })).0, 200);
    let lowered = app.client.patch(app.url("/api/v1/projects/study")).bearer_auth(&team.lead).json(&json!({ "overlap": 2 })).send().expect("patch");
    assert_eq!(lowered.status(), 200);
    assert_eq!(item_state(app, item).0, "excluded", "lowering the overlap leaves excluded items alone");

    let (status, body) = post(app, &team.lead, item, "reopen", json!({ "reason": "quality is fine" }));
    assert_eq!(status, 200);
    assert_eq!(body["status"], "resolved", "the restored round already has the two grades it needs");
    assert_eq!(resolution(app, item).map(|r| r.0), Some("unanimous".to_string()));
}

/// Changes a member's role through the API, as a lead does.
fn set_role(team: &Team, username: &str, role: &str) {
    let body = json!({ "username": username, "role": role });
    let response = team.app.post_json("/api/v1/projects/study/members", &team.lead, &body);
    assert_eq!(response.status(), 201, "{}", response.text().unwrap_or_default());
}

/// Places of the item's open adjudication round, as the adjudication overview lists them.
fn participants(team: &Team, item: i64) -> Vec<String> {
    let (status, body) = get_json(&team.app, &team.lead, "/api/v1/projects/study/adjudications");
    assert_eq!(status, 200);
    let entry = body["items"].as_array().expect("items").iter().find(|entry| entry["item_id"] == item).cloned().unwrap_or(Value::Null);
    entry["participants"].as_array().map_or_else(Vec::new, |places| {
        places.iter().map(|p| p["pseudonym"].as_str().expect("pseudonym").to_string()).collect()
    })
}

/// Audit events of withdrawn places: actor and details.
fn withdrawals(app: &TestApp) -> Vec<(Option<i64>, Value)> {
    let mut conn = app.db.conn().expect("connection");
    let rows: Vec<(Option<i64>, String)> = audit_events::table
        .filter(audit_events::action.eq("assignment.withdrawn"))
        .order(audit_events::id.asc())
        .select((audit_events::actor_id, audit_events::details))
        .load(&mut conn)
        .expect("audit events");
    rows.into_iter().map(|(actor, details)| (actor, serde_json::from_str(&details).expect("details json"))).collect()
}

/// Checks that a grader who becomes a senior leaves the open adjudication round, so the
/// round waits only for the others and closes when they have re-graded.
fn departed_grader_is_not_awaited(backend: TestBackend) {
    let team = team(backend, "adjudication", 1, 3, json!({}));
    let app = &team.app;
    let item = team.study.item_ids[0];
    grade_item(&team, item, &[gradable("0"), gradable("2"), gradable("4")]);
    assert_eq!(item_state(app, item), ("adjudication".to_string(), 1));
    assert_eq!(grade(app, &team.graders[0], item, gradable("2"), "after discussion").status(), 201);

    set_role(&team, "grader2", "senior");
    assert_eq!(item_state(app, item), ("adjudication".to_string(), 1), "grader1 has still to re-grade");
    assert_eq!(participants(&team, item), ["Grader C", "Grader D"]);
    let withdrawn = withdrawals(app);
    assert_eq!(withdrawn.len(), 1);
    assert_eq!(withdrawn[0].0, Some(team.lead_id), "the lead who changed the role is the actor");
    assert_eq!(withdrawn[0].1["item_id"], item);
    assert_eq!(withdrawn[0].1["round"], 1);
    assert!(withdrawn[0].1["reason"].as_str().is_some_and(|reason| reason.contains("no longer a grader")));

    assert_eq!(grade(app, &team.graders[1], item, gradable("2"), "agreed").status(), 201);
    assert_eq!(item_state(app, item), ("resolved".to_string(), 1));
    let stored = resolution(app, item).expect("resolution");
    assert_eq!((stored.0.as_str(), stored.2), ("adjudication", 2), "the two re-grades agree");
}

#[test]
fn sqlite_departed_grader_is_not_awaited() {
    departed_grader_is_not_awaited(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_departed_grader_is_not_awaited() {
    departed_grader_is_not_awaited(TestBackend::Postgres);
}

#[test]
fn departure_of_last_awaited_grader_closes_round() {
    let team = team(TestBackend::Sqlite, "adjudication", 1, 3, json!({}));
    let app = &team.app;
    let item = team.study.item_ids[0];
    grade_item(&team, item, &[gradable("0"), gradable("2"), gradable("4")]);
    assert_eq!(grade(app, &team.graders[0], item, gradable("1"), "").status(), 201);
    assert_eq!(grade(app, &team.graders[1], item, gradable("3"), "").status(), 201);

    set_role(&team, "grader2", "lead");
    assert_eq!(item_state(app, item), ("adjudication".to_string(), 2), "the policy saw two re-grades that differ");
    assert_eq!(participants(&team, item), ["Grader C", "Grader D"], "the next round has only the graders who re-graded");
    let events = item_events(app, item);
    let (action, actor, details) = events.last().expect("event");
    assert_eq!(action, "item.to_adjudication");
    assert_eq!(*actor, None);
    assert_eq!(details["grades"], 2);
}

#[test]
fn too_few_regrades_after_departures_go_to_arbitration() {
    let team = team(TestBackend::Sqlite, "adjudication", 1, 3, json!({}));
    let app = &team.app;
    let item = team.study.item_ids[0];
    grade_item(&team, item, &[gradable("0"), gradable("2"), gradable("4")]);
    assert_eq!(grade(app, &team.graders[0], item, gradable("2"), "").status(), 201);

    set_role(&team, "grader1", "senior");
    assert_eq!(item_state(app, item), ("adjudication".to_string(), 1));
    set_role(&team, "grader2", "senior");
    assert_eq!(item_state(app, item), ("arbitration".to_string(), 1), "one re-grade cannot agree with anyone");
    let events = item_events(app, item);
    let (action, actor, details) = events.last().expect("event");
    assert_eq!(action, "item.to_arbitration");
    assert_eq!(*actor, None);
    assert!(details["reason"].as_str().is_some_and(|reason| reason.contains("no longer a grader")));
    assert_eq!(withdrawals(app).len(), 2);

    // Giving a grader the grader role again withdraws nothing.
    set_role(&team, "grader0", "grader");
    assert_eq!(withdrawals(app).len(), 2);
}
