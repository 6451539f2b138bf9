//! Blinding: while an item is in grading no route shows a grader anything of another
//! grader's grade, not even whether one exists. Every route that touches items or grades is
//! called by a second grader, a senior and a lead after a first grader graded.

mod common;

use common::{answers_for, TestApp, TestBackend};
use serde_json::json;

const PASSWORD: &str = "blinding test password";
const SECRET_COMMENT: &str = "first-grader-secret-comment-7f3a";

struct Scene {
    app: TestApp,
    first: String,
    second: String,
    senior: String,
    lead: String,
    item_id: i64,
    grade_id: i64,
}

/// Grader one grades the first item with a secret comment; grader two then holds the same item.
fn scene() -> Scene {
    let app = TestApp::spawn(TestBackend::Sqlite);
    let lead_id = app.create_user("lead", PASSWORD, false);
    let study = app.create_study("study", 2, 3, "majority-vote", lead_id);
    for (name, role) in [("first", "grader"), ("second", "grader"), ("senior", "senior")] {
        let id = app.create_user(name, PASSWORD, false);
        app.add_member(&study, id, role);
    }
    let first = app.login("first", PASSWORD);
    let second = app.login("second", PASSWORD);
    let senior = app.login("senior", PASSWORD);
    let lead = app.login("lead", PASSWORD);

    let item: serde_json::Value = app.get("/api/v1/projects/study/next", &first).json().expect("json");
    let item_id = item["item_id"].as_i64().expect("id");
    let mut answers = answers_for(4);
    answers["dr_severity"] = json!("4");
    let response = app.post_json(
        &format!("/api/v1/projects/study/items/{item_id}/grades"),
        &first,
        &json!({ "answers": answers, "comment": SECRET_COMMENT, "time_spent_ms": 987_654 }),
    );
    assert_eq!(response.status(), 201);
    let grade_id = response.json::<serde_json::Value>().expect("json")["grade_id"].as_i64().expect("grade id");
    Scene { app, first, second, senior, lead, item_id, grade_id }
}

/// Sends a GET with the bearer token and returns the status and body.
fn body_of(app: &TestApp, path: &str, token: &str) -> (u16, String) {
    let response = app.get(path, token);
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

/// Sends a GET with the session cookie, as a browser does for pages.
fn page_body(app: &TestApp, path: &str, token: &str) -> (u16, String) {
    let response = app.client.get(app.url(path)).header("cookie", format!("quorum_session={token}")).send().expect("page");
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

fn assert_blind(label: &str, body: &str, scene: &Scene) {
    assert!(!body.contains(SECRET_COMMENT), "{label} shows the first grader's comment: {body}");
    assert!(!body.contains("987654"), "{label} shows the first grader's time spent: {body}");
    assert!(!body.contains("\"grade_id\""), "{label} names a grade: {body}");
    assert!(!body.contains(&format!("\"supersedes\":{}", scene.grade_id)), "{label} names the first grade: {body}");
}

#[test]
fn second_grader_sees_nothing_of_first_grade() {
    let scene = scene();
    let app = &scene.app;
    let token = &scene.second;
    let item = scene.item_id;

    // The secret exists and its owner can read it, so its absence below means something.
    let (status, own) = body_of(app, &format!("/api/v1/projects/study/items/{item}/my-grade"), &scene.first);
    assert_eq!(status, 200);
    assert!(own.contains(SECRET_COMMENT));

    let (status, next) = body_of(app, "/api/v1/projects/study/next", token);
    assert_eq!(status, 200);
    assert_blind("next", &next, &scene);
    let next: serde_json::Value = serde_json::from_str(&next).expect("json");
    assert_eq!(next["item_id"], item, "overlap 3 hands the same item to the second grader");
    let keys: Vec<&str> = next.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys, ["fields", "guideline", "image_url", "item_id", "lease_expires_at", "original_url", "progress", "round", "thumbnail_url"]);

    let reads = [
        format!("/api/v1/projects/study/items/{item}/my-grade"),
        "/api/v1/projects/study/progress".to_string(),
        "/api/v1/projects/study".to_string(),
        "/api/v1/projects".to_string(),
        "/api/v1/me".to_string(),
    ];
    for path in &reads {
        let (_, body) = body_of(app, path, token);
        assert_blind(path, &body, &scene);
    }
    let (status, _) = body_of(app, &format!("/api/v1/projects/study/items/{item}/my-grade"), token);
    assert_eq!(status, 404, "my-grade must not reveal another grader's grade");

    let (_, project) = body_of(app, "/api/v1/projects/study", token);
    let project: serde_json::Value = serde_json::from_str(&project).expect("json");
    assert_eq!(project["items_by_status"], serde_json::Value::Null, "graders do not see workflow counts");

    for page in ["/studies", "/studies/study", "/studies/study/grade"] {
        let (status, body) = page_body(app, page, token);
        assert_eq!(status, 200, "{page}");
        assert_blind(page, &body, &scene);
        assert!(!body.contains("data-status="), "{page} shows workflow counts to a grader");
    }
}

#[test]
fn grade_errors_reveal_nothing() {
    let scene = scene();
    let app = &scene.app;
    // The second grader submits for an item not leased to them: the message is about their
    // own assignment only.
    let response = app.post_json(
        &format!("/api/v1/projects/study/items/{}/grades", scene.item_id),
        &scene.second,
        &json!({ "answers": answers_for(1), "comment": "", "time_spent_ms": 1 }),
    );
    assert_eq!(response.status(), 403);
    let body = response.text().expect("body");
    assert_blind("403", &body, &scene);
    assert!(!body.contains("already"), "the message hints that someone graded: {body}");

    // A 422 names the field and allowed values, never what another grader chose.
    let _ = app.get("/api/v1/projects/study/next", &scene.second);
    let response = app.post_json(
        &format!("/api/v1/projects/study/items/{}/grades", scene.item_id),
        &scene.second,
        &json!({ "answers": { "gradability": "gradable", "dr_severity": "9" }, "comment": "", "time_spent_ms": 1 }),
    );
    assert_eq!(response.status(), 422);
    assert_blind("422", &response.text().expect("body"), &scene);
}

#[test]
fn seniors_and_leads_cannot_use_grading_routes() {
    let scene = scene();
    let app = &scene.app;
    for (role, token) in [("senior", &scene.senior), ("lead", &scene.lead)] {
        let (status, body) = body_of(app, "/api/v1/projects/study/next", token);
        assert_eq!(status, 403, "{role} next");
        assert_blind(role, &body, &scene);
        let response = app.post_json(
            &format!("/api/v1/projects/study/items/{}/grades", scene.item_id),
            token,
            &json!({ "answers": answers_for(1), "comment": "", "time_spent_ms": 1 }),
        );
        assert_eq!(response.status(), 403, "{role} cannot write a grade");
        let (status, _) = body_of(app, &format!("/api/v1/projects/study/items/{}/my-grade", scene.item_id), token);
        assert_eq!(status, 403, "{role} my-grade");
        let (status, _) = page_body(app, "/studies/study/grade", token);
        assert_eq!(status, 403, "{role} grading page");
    }
    assert_eq!(app.grade_count(), 1);
}

#[test]
fn seniors_and_leads_see_workflow_counts() {
    let scene = scene();
    for token in [&scene.senior, &scene.lead] {
        let (status, body) = body_of(&scene.app, "/api/v1/projects/study", token);
        assert_eq!(status, 200);
        let project: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(project["items_by_status"]["grading"], 1);
    }
}

#[test]
fn non_member_gets_404_everywhere() {
    let scene = scene();
    let app = &scene.app;
    app.create_user("outsider", PASSWORD, false);
    let outsider = app.login("outsider", PASSWORD);
    let item = scene.item_id;
    let paths = [
        "/api/v1/projects/study".to_string(),
        "/api/v1/projects/study/next".to_string(),
        "/api/v1/projects/study/progress".to_string(),
        format!("/api/v1/projects/study/items/{item}/my-grade"),
        format!("/api/v1/projects/study/items/{item}/image/display"),
    ];
    for path in &paths {
        let (status, body) = body_of(app, path, &outsider);
        assert_eq!(status, 404, "{path}");
        assert_blind(path, &body, &scene);
    }
    let response = app.post_json(
        &format!("/api/v1/projects/study/items/{item}/grades"),
        &outsider,
        &json!({ "answers": answers_for(1), "comment": "", "time_spent_ms": 1 }),
    );
    assert_eq!(response.status(), 404);
}
