//! The grade API: studies and members, next item, grade validation, corrections, races.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{answers_for, TestApp, TestBackend};
use serde_json::json;

const PASSWORD: &str = "grading test password";

struct Setup {
    app: TestApp,
    lead: String,
    graders: Vec<String>,
}

/// A server with a lead, a senior and `n_graders` graders, and a study of `n_items` items.
fn setup(backend: TestBackend, n_items: usize, n_graders: usize, overlap: i32) -> (Setup, common::TestStudy) {
    let app = TestApp::spawn(backend);
    let lead_id = app.create_user("lead", PASSWORD, false);
    let senior_id = app.create_user("senior", PASSWORD, false);
    let study = app.create_study("study", n_items, overlap, "majority-vote", lead_id);
    app.add_member(&study, senior_id, "senior");
    let mut graders = Vec::new();
    for i in 0..n_graders {
        let name = format!("grader{i}");
        let id = app.create_user(&name, PASSWORD, false);
        app.add_member(&study, id, "grader");
        graders.push(name);
    }
    let lead = app.login("lead", PASSWORD);
    let graders = graders.iter().map(|g| app.login(g, PASSWORD)).collect();
    (Setup { app, lead, graders }, study)
}

fn next(app: &TestApp, token: &str) -> Option<serde_json::Value> {
    let response = app.get("/api/v1/projects/study/next", token);
    match response.status().as_u16() {
        200 => Some(response.json().expect("json")),
        204 => None,
        other => panic!("next answered {other}: {}", response.text().unwrap_or_default()),
    }
}

fn submit(app: &TestApp, token: &str, item_id: i64, answers: serde_json::Value) -> reqwest::blocking::Response {
    app.post_json(
        &format!("/api/v1/projects/study/items/{item_id}/grades"),
        token,
        &json!({ "answers": answers, "comment": "", "time_spent_ms": 1500 }),
    )
}

#[test]
fn lead_creates_study_and_adds_members() {
    let app = TestApp::spawn(TestBackend::Sqlite);
    app.create_user("admin", PASSWORD, true);
    app.create_user("carol", PASSWORD, false);
    let admin = app.login("admin", PASSWORD);
    let created = app.post_json(
        "/api/v1/projects",
        &admin,
        &json!({
            "slug": "dr-2027", "name": "DR 2027", "guideline_key": "dr-screening",
            "guideline_version": "1.0", "overlap": 2, "policy": "senior-arbitration"
        }),
    );
    assert_eq!(created.status(), 201);
    let member = app.post_json("/api/v1/projects/dr-2027/members", &admin, &json!({ "username": "carol", "role": "grader" }));
    assert_eq!(member.status(), 201);
    let member: serde_json::Value = member.json().expect("json");
    assert_eq!(member["pseudonym"], "Grader B", "the creator is the first member");

    let carol = app.login("carol", PASSWORD);
    let listed: serde_json::Value = app.get("/api/v1/projects", &carol).json().expect("json");
    assert_eq!(listed[0]["slug"], "dr-2027");
    assert_eq!(listed[0]["role"], "grader");

    let forbidden = app.post_json("/api/v1/projects/dr-2027/members", &carol, &json!({ "username": "carol", "role": "lead" }));
    assert_eq!(forbidden.status(), 403);
}

#[test]
fn study_creation_rejects_bad_fields() {
    let app = TestApp::spawn(TestBackend::Sqlite);
    app.create_user("admin", PASSWORD, true);
    let admin = app.login("admin", PASSWORD);
    let base = json!({
        "slug": "ok-slug", "name": "N", "guideline_key": "dr-screening",
        "guideline_version": "1.0", "overlap": 3, "policy": "majority-vote"
    });
    let cases = [
        ("slug", json!("Bad Slug")),
        ("overlap", json!(0)),
        ("policy", json!("coin-toss")),
        ("guideline_version", json!("9.9")),
    ];
    for (field, value) in cases {
        let mut body = base.clone();
        body[field] = value;
        let response = app.post_json("/api/v1/projects", &admin, &body);
        assert_eq!(response.status(), 422, "{field}");
        let error: serde_json::Value = response.json().expect("json");
        assert_eq!(error["error"]["field"], field);
    }
    let mut misspelled = base.clone();
    misspelled["policy_params"] = json!({ "field_tolerance": { "dr_severty": 1 } });
    let response = app.post_json("/api/v1/projects", &admin, &misspelled);
    assert_eq!(response.status(), 422);
    let error: serde_json::Value = response.json().expect("json");
    assert_eq!(error["error"]["field"], "policy_params");
    assert!(error["error"]["message"].as_str().is_some_and(|m| m.contains("dr_severty")), "{error}");

    let listed: serde_json::Value = app.get("/api/v1/projects", &admin).json().expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "a rejected study was stored");
}

#[test]
fn next_returns_item_with_fields() {
    let (setup, study) = setup(TestBackend::Sqlite, 3, 1, 3);
    let item = next(&setup.app, &setup.graders[0]).expect("an item");
    assert_eq!(item["item_id"], study.item_ids[0]);
    assert_eq!(item["round"], 0);
    assert_eq!(item["image_url"], format!("/api/v1/projects/study/items/{}/image/display", study.item_ids[0]));
    let fields = item["fields"].as_array().expect("fields");
    assert_eq!(fields[0]["name"], "gradability");
    assert_eq!(fields[0]["condition"], serde_json::Value::Null);
    assert_eq!(fields[1]["condition"], json!({ "field": "gradability", "in": ["gradable"] }));
    assert!(fields[1]["options"][0]["value"].is_string());
    assert!(fields[1]["options"][0]["label"].is_string());
    assert_eq!(item["progress"]["remaining"], 3);

    let again = next(&setup.app, &setup.graders[0]).expect("the same item");
    assert_eq!(again["item_id"], item["item_id"], "a reload must return the held lease");
}

#[test]
fn invalid_answers_are_rejected_and_not_stored() {
    let (setup, _) = setup(TestBackend::Sqlite, 2, 1, 3);
    let app = &setup.app;
    let token = &setup.graders[0];
    let item = next(app, token).expect("an item");
    let item_id = item["item_id"].as_i64().expect("id");

    let mut unknown = answers_for(1);
    unknown["colour"] = json!("red");
    let mut outside = answers_for(1);
    outside["dr_severity"] = json!("7");
    let mut missing = answers_for(1);
    missing.as_object_mut().expect("object").remove("dme");
    let conditional = json!({ "gradability": "ungradable", "dr_severity": "2" });
    let cases = [("colour", unknown), ("dr_severity", outside), ("dme", missing), ("dr_severity", conditional)];

    for (field, answers) in cases {
        let response = submit(app, token, item_id, answers);
        assert_eq!(response.status(), 422, "{field}");
        let error: serde_json::Value = response.json().expect("json");
        assert_eq!(error["error"]["field"], field);
        assert!(error["error"]["message"].as_str().is_some_and(|m| m.contains(field)), "{error}");
        assert_eq!(app.grade_count(), 0, "a rejected grade was stored ({field})");
    }
    let outside_error: serde_json::Value = submit(app, token, item_id, json!({"gradability": "gradable", "dr_severity": "9"}))
        .json()
        .expect("json");
    assert_eq!(outside_error["error"]["allowed"], json!(["0", "1", "2", "3", "4"]));

    let malformed = app
        .client
        .post(app.url(&format!("/api/v1/projects/study/items/{item_id}/grades")))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .expect("request");
    assert_eq!(malformed.status(), 400);
    assert_eq!(app.grade_count(), 0);

    assert_eq!(submit(app, token, item_id, answers_for(1)).status(), 201);
    assert_eq!(app.grade_count(), 1);
}

#[test]
fn ungradable_answer_is_accepted() {
    let (setup, _) = setup(TestBackend::Sqlite, 1, 1, 3);
    let item = next(&setup.app, &setup.graders[0]).expect("an item");
    let response = submit(&setup.app, &setup.graders[0], item["item_id"].as_i64().expect("id"), json!({ "gradability": "ungradable" }));
    assert_eq!(response.status(), 201);
}

#[test]
fn unassigned_item_is_403() {
    let (setup, study) = setup(TestBackend::Sqlite, 2, 2, 3);
    let app = &setup.app;
    let first = next(app, &setup.graders[0]).expect("an item");
    assert_eq!(first["item_id"], study.item_ids[0]);
    let response = submit(app, &setup.graders[1], study.item_ids[1], answers_for(2));
    assert_eq!(response.status(), 403);
    assert_eq!(app.grade_count(), 0);
}

#[test]
fn correction_supersedes_own_grade() {
    let (setup, _) = setup(TestBackend::Sqlite, 1, 2, 3);
    let app = &setup.app;
    let token = &setup.graders[0];
    let item_id = next(app, token).expect("item")["item_id"].as_i64().expect("id");
    let first: serde_json::Value = submit(app, token, item_id, answers_for(1)).json().expect("json");
    assert_eq!(first["supersedes"], serde_json::Value::Null);
    let correction = submit(app, token, item_id, answers_for(2));
    assert_eq!(correction.status(), 201);
    let correction: serde_json::Value = correction.json().expect("json");
    assert_eq!(correction["supersedes"], first["grade_id"]);

    let mine: serde_json::Value = app.get(&format!("/api/v1/projects/study/items/{item_id}/my-grade"), token).json().expect("json");
    assert_eq!(mine["grade_id"], correction["grade_id"]);
    assert_eq!(mine["answers"]["dr_severity"], "2");
    assert_eq!(app.grade_count(), 2);

    // The correction did not take a second place: the other grader still gets the item.
    let other = next(app, &setup.graders[1]).expect("item for the second grader");
    assert_eq!(other["item_id"], item_id);
}

#[test]
fn resolved_item_rejects_correction_with_409() {
    let (setup, _) = setup(TestBackend::Sqlite, 1, 3, 3);
    let app = &setup.app;
    let mut item_id = 0;
    for token in &setup.graders {
        item_id = next(app, token).expect("item")["item_id"].as_i64().expect("id");
        assert_eq!(submit(app, token, item_id, answers_for(3)).status(), 201);
    }
    let project: serde_json::Value = app.get("/api/v1/projects/study", &setup.lead).json().expect("json");
    assert_eq!(project["items_by_status"]["resolved"], 1);
    let late = submit(app, &setup.graders[0], item_id, answers_for(4));
    assert_eq!(late.status(), 409);
    assert_eq!(app.grade_count(), 3);
    assert!(next(app, &setup.graders[0]).is_none());
}

#[test]
fn lowering_overlap_closes_complete_rounds() {
    let (setup, _) = setup(TestBackend::Sqlite, 1, 2, 3);
    let app = &setup.app;
    for token in &setup.graders {
        let item_id = next(app, token).expect("item")["item_id"].as_i64().expect("id");
        assert_eq!(submit(app, token, item_id, answers_for(4)).status(), 201);
    }
    let changed = app.client.patch(app.url("/api/v1/projects/study")).bearer_auth(&setup.lead).json(&json!({ "overlap": 2 })).send().expect("patch");
    assert_eq!(changed.status(), 200);
    let project: serde_json::Value = app.get("/api/v1/projects/study", &setup.lead).json().expect("json");
    assert_eq!(project["items_by_status"]["resolved"], 1);
}

/// Every grader loops "next, then grade" until nothing is left; returns grades acknowledged.
fn race(app: &TestApp, tokens: &[String]) -> usize {
    std::thread::scope(|scope| {
        let handles: Vec<_> = tokens
            .iter()
            .enumerate()
            .map(|(g, token)| {
                scope.spawn(move || {
                    let client = reqwest::blocking::Client::new();
                    let mut acknowledged = 0;
                    loop {
                        let response = client.get(app.url("/api/v1/projects/study/next")).bearer_auth(token).send().expect("next");
                        if response.status() == 204 {
                            return acknowledged;
                        }
                        assert_eq!(response.status(), 200);
                        let item: serde_json::Value = response.json().expect("json");
                        let item_id = item["item_id"].as_i64().expect("id");
                        let body = json!({ "answers": answers_for(item_id as u64 * 7 + g as u64), "comment": "", "time_spent_ms": 10 });
                        let status = client
                            .post(app.url(&format!("/api/v1/projects/study/items/{item_id}/grades")))
                            .bearer_auth(token)
                            .json(&body)
                            .send()
                            .expect("grade")
                            .status();
                        assert_eq!(status, 201, "grader {g} item {item_id}");
                        acknowledged += 1;
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("grader thread")).sum()
    })
}

fn fifty_graders_race(backend: TestBackend) {
    let (setup, study) = setup(backend, 200, 50, 3);
    let acknowledged = race(&setup.app, &setup.graders);
    assert_eq!(acknowledged, 600);

    use diesel::prelude::*;
    use quorum::store::schema::{assignments, grades};
    let mut conn = setup.app.db.conn().expect("connection");
    let rows: Vec<(i64, i64)> = grades::table.select((grades::item_id, grades::grader_id)).load(&mut conn).expect("grades");
    assert_eq!(rows.len(), 600, "grades lost or duplicated");
    let mut graders_by_item: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    let mut grades_by_item: BTreeMap<i64, usize> = BTreeMap::new();
    for (item, grader) in rows {
        graders_by_item.entry(item).or_default().insert(grader);
        *grades_by_item.entry(item).or_default() += 1;
    }
    for item in &study.item_ids {
        assert_eq!(grades_by_item.get(item), Some(&3), "item {item} grade count");
        assert_eq!(graders_by_item.get(item).map(BTreeSet::len), Some(3), "item {item} distinct graders");
    }
    let leases: i64 = assignments::table.count().get_result(&mut conn).expect("assignments");
    assert_eq!(leases, 600, "an item was handed out beyond its overlap");

    // The status counts kept by triggers agree with a full count after the race.
    use quorum::store::schema::{item_status_counts, items};
    let counted: BTreeMap<String, i64> = items::table
        .group_by(items::status)
        .select((items::status, diesel::dsl::count_star()))
        .load::<(String, i64)>(&mut conn)
        .expect("items by status")
        .into_iter()
        .collect();
    let slots: Vec<(String, i64)> = item_status_counts::table
        .select((item_status_counts::status, item_status_counts::n))
        .load(&mut conn)
        .expect("status counts");
    let mut by_trigger: BTreeMap<String, i64> = BTreeMap::new();
    for (status, n) in slots {
        *by_trigger.entry(status).or_default() += n;
    }
    by_trigger.retain(|_, n| *n > 0);
    assert_eq!(by_trigger, counted, "status counts drifted from the items");
    assert_places_held_exact(&mut conn, i64::MAX / 2);
}

/// Checks that every item's `places_held`, kept by triggers, equals a full count of the
/// assignments of its current round that hold a place at `now`.
fn assert_places_held_exact(conn: &mut quorum::store::DbConnection, now: i64) {
    use diesel::prelude::*;
    use quorum::store::schema::{assignments, items};
    let by_trigger: Vec<(i64, i32, i32)> = items::table.select((items::id, items::round, items::places_held)).load(conn).expect("items");
    for (item_id, round, places_held) in by_trigger {
        let counted: i64 = assignments::table
            .filter(assignments::item_id.eq(item_id))
            .filter(assignments::round.eq(round))
            .filter(assignments::completed_at.is_not_null().or(assignments::leased_until.gt(now)))
            .count()
            .get_result(conn)
            .expect("count places");
        assert_eq!(i64::from(places_held), counted, "places held of item {item_id} drifted");
    }
}

/// Leases that run out free their places. A third grader gets the item once the first two
/// leases expired. A late grade on an expired lease counts while a place is free, and the
/// grader whose place was taken gets nothing. Times are given, not read from the clock.
fn expired_leases_free_places(backend: TestBackend) {
    use quorum::store::grading::{self, GradeSubmission};
    use quorum::store::projects;
    let (setup, study) = setup(backend, 1, 3, 2);
    let item_id = study.item_ids[0];
    let db = setup.app.db.clone();
    let mut conn = db.conn().expect("connection");
    let project = projects::find_by_slug(&mut conn, "study").expect("query").expect("study");
    let graders: Vec<i64> = ["grader0", "grader1", "grader2"]
        .iter()
        .map(|name| quorum::store::users::find_by_username(&mut conn, name).expect("query").expect("user").id)
        .collect();
    let lease = |conn: &mut quorum::store::DbConnection, grader: i64, now: i64| {
        grading::lease_next(conn, &project, grader, now, 100).expect("lease").map(|lease| lease.item.id)
    };
    assert_eq!(lease(&mut conn, graders[0], 1_000), Some(item_id));
    assert_eq!(lease(&mut conn, graders[1], 1_000), Some(item_id));
    assert_eq!(lease(&mut conn, graders[2], 1_050), None, "both places are leased");
    assert_eq!(grading::progress(&mut conn, &project, graders[2], 1_050).expect("progress").1, 0);
    assert_places_held_exact(&mut conn, 1_050);

    // Both leases ran out at 1,100.
    assert_eq!(lease(&mut conn, graders[2], 1_200), Some(item_id));
    assert_places_held_exact(&mut conn, 1_200);

    // The first grader's lease expired, but a place is still free, so the grade counts.
    let guideline = db.guideline(&mut conn, project.guideline_id).expect("guideline");
    let answers = quorum::domain::answers::validate_answers(&guideline, &answers_for(1)).expect("answers");
    let submission = GradeSubmission {
        project: &project,
        guideline: &guideline,
        grader_id: graders[0],
        item_id,
        answers: &answers,
        comment: "",
        time_spent_ms: 1,
        source: "web",
    };
    grading::submit_grade(&mut conn, &submission, 1_210).expect("late grade on a free place");
    assert_places_held_exact(&mut conn, 1_210);

    // The second grader's place went to the third grader.
    assert_eq!(lease(&mut conn, graders[1], 1_220), None);
    let late = GradeSubmission { grader_id: graders[1], ..submission };
    assert!(matches!(grading::submit_grade(&mut conn, &late, 1_230), Err(grading::GradeError::LeaseLost(_))));
    assert_eq!(grading::progress(&mut conn, &project, graders[1], 1_230).expect("progress").1, 0);
    assert_eq!(grading::progress(&mut conn, &project, graders[2], 1_230).expect("progress").1, 1, "the held lease");
    assert_places_held_exact(&mut conn, 1_230);
}

#[test]
fn sqlite_expired_leases_free_places() {
    expired_leases_free_places(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_expired_leases_free_places() {
    expired_leases_free_places(TestBackend::Postgres);
}

#[test]
fn sqlite_fifty_graders_race() {
    fifty_graders_race(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_fifty_graders_race() {
    fifty_graders_race(TestBackend::Postgres);
}
