//! Active learning through the server. A model run writes priorities that `next` serves.
//! Accepted pseudolabels enter the reference standard with method `model`, while open
//! proposals stay out of it, and out of the graders' view unless pre-annotation is on. A
//! failed run leaves the priorities alone, only leads reach the model-run routes, and bad
//! requests store nothing.
//!
//! The studies have real images: dark red ones resolved as DR severity 0 and bright yellow
//! ones resolved as 2, so a model trained for one epoch on 32-pixel copies gets two classes.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use common::{answers_for, TestApp, TestBackend};
use diesel::prelude::*;
use quorum::cli::al_run::{run_job, RunArgs};
use quorum::domain::roles::{ResolutionPolicy, Role};
use quorum::import::resolutions::import_resolution_file;
use quorum::import::Encoding;
use quorum::store::schema::{audit_events, items, model_runs, predictions};

const PASSWORD: &str = "active learning test password";

/// The bundled guideline's fields, in guideline order.
const FIELDS: [&str; 8] = [
    "gradability",
    "dr_severity",
    "dme",
    "microaneurysms",
    "haemorrhages",
    "hard_exudates",
    "cotton_wool_spots",
    "new_vessels",
];

/// A study with images, a lead and a grader, and the tokens of both.
struct AlStudy {
    app: TestApp,
    slug: String,
    project_id: i64,
    lead: String,
    grader: String,
    /// Item ids of the resolved images, then of the images waiting for grades.
    labeled: Vec<i64>,
    unlabeled: Vec<i64>,
}

/// Encodes a 48-pixel PNG: dark red for class 0, bright yellow for class 2, with per-image noise so
/// that every file has its own content.
fn fundus_like_png(class: u8, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(12_345);
    let image = image::RgbImage::from_fn(48, 48, |x, y| {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let noise = (state >> 16) as u8 % 24;
        let base: [u8; 3] = if class == 0 { [90, 20, 10] } else { [220, 190, 40] };
        let spot = if (x as i32 - 24).pow(2) + (y as i32 - 24).pow(2) < 64 { 30 } else { 0 };
        image::Rgb([base[0].saturating_add(noise).saturating_add(spot), base[1].saturating_add(noise), base[2].saturating_add(noise)])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("encode PNG");
    bytes
}

/// Answers of a resolved image of `class` (DR severity 0 or 2).
fn answers_of_class(class: u8) -> serde_json::Value {
    let mut answers = answers_for(u64::from(class));
    answers["dme"] = serde_json::json!("absent");
    answers
}

/// Creates a study with `per_class_labeled` resolved images of each class and
/// `per_class_unlabeled` pending images of each class.
fn set_up(backend: TestBackend, per_class_labeled: usize, per_class_unlabeled: usize) -> AlStudy {
    let app = TestApp::spawn(backend);
    let lead_id = app.create_user("lead", PASSWORD, false);
    let grader_id = app.create_user("grader", PASSWORD, false);
    let slug = "al-study".to_string();
    let project = {
        let mut conn = app.db.conn().expect("connection");
        let guideline = quorum::store::guidelines::find(&mut conn, "dr-screening", "1.0").expect("query").expect("guideline");
        let spec = quorum::store::projects::ProjectSpec {
            slug: &slug,
            name: "Active learning study",
            guideline_id: guideline.id,
            overlap: 1,
            policy: ResolutionPolicy::MajorityVote,
            policy_params: serde_json::json!({}),
        };
        let project = quorum::store::projects::create_project_with_lead(&mut conn, &spec, lead_id).expect("study");
        quorum::store::projects::set_member(&mut conn, project.id, grader_id, Role::Grader).expect("grader");
        project
    };

    let mut files = Vec::new();
    let mut labeled_names = Vec::new();
    let mut seed = 0;
    for class in [0u8, 2] {
        for index in 0..per_class_labeled {
            let name = format!("labeled-c{class}-{index:02}.png");
            files.push((name.clone(), fundus_like_png(class, seed)));
            labeled_names.push((name, class));
            seed += 1;
        }
    }
    for index in 0..per_class_unlabeled {
        for class in [0u8, 2] {
            files.push((format!("waiting-c{class}-{index:02}.png"), fundus_like_png(class, seed)));
            seed += 1;
        }
    }
    let report = quorum::imaging::import::import_in_memory(&app.db, &app.settings, &project, files, &BTreeMap::new(), Some(lead_id));
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    let mut csv = format!("image,{}\n", FIELDS.join(","));
    for (name, class) in &labeled_names {
        let answers = answers_of_class(*class);
        let cells: Vec<String> =
            FIELDS.iter().map(|field| answers[*field].as_str().unwrap_or_default().to_string()).collect();
        csv.push_str(&format!("{name},{}\n", cells.join(",")));
    }
    {
        let mut conn = app.db.conn().expect("connection");
        import_resolution_file(&mut conn, &project, csv.as_bytes(), Encoding::Utf8, "resolved for the test").expect("resolutions");
    }
    let ids_of = |prefix: &str| -> Vec<i64> {
        report.imported.iter().filter(|(name, _)| name.starts_with(prefix)).map(|(_, id)| *id).collect()
    };
    let labeled = ids_of("labeled-");
    let unlabeled = ids_of("waiting-");
    let lead = app.login("lead", PASSWORD);
    let grader = app.login("grader", PASSWORD);
    AlStudy { slug, project_id: project.id, lead, grader, labeled, unlabeled, app }
}

fn run_args(slug: &str, confidence: f64) -> RunArgs {
    RunArgs {
        project: slug.to_string(),
        field: "dr_severity".into(),
        strategy: "entropy".into(),
        confidence: Some(confidence),
        epochs: Some(1),
        resolution: Some(32),
        top: 5,
    }
}

/// Runs the job of `quorum al run` in this process with tiny settings.
fn run_model(study: &AlStudy, confidence: f64) -> anyhow::Result<quorum::jobs::RunSummary> {
    run_job(&study.app.db, &study.app.settings, &run_args(&study.slug, confidence), &mut |_| {})
}

/// Priorities of the study's items, by item id.
fn priorities(study: &AlStudy) -> BTreeMap<i64, f64> {
    let mut conn = study.app.db.conn().expect("connection");
    items::table
        .filter(items::project_id.eq(study.project_id))
        .select((items::id, items::priority))
        .load::<(i64, f64)>(&mut conn)
        .expect("priorities")
        .into_iter()
        .collect()
}

fn run_status(study: &AlStudy, run_id: i64) -> (String, Option<String>) {
    let mut conn = study.app.db.conn().expect("connection");
    model_runs::table.find(run_id).select((model_runs::status, model_runs::error)).first(&mut conn).expect("run row")
}

fn prediction_count(study: &AlStudy, run_id: i64) -> i64 {
    let mut conn = study.app.db.conn().expect("connection");
    predictions::table.filter(predictions::run_id.eq(run_id)).count().get_result(&mut conn).expect("count")
}

/// Leases the grader's next item and grades it, which resolves it at overlap 1.
fn grade_next(study: &AlStudy) -> Option<(i64, serde_json::Value)> {
    let response = study.app.get(&format!("/api/v1/projects/{}/next", study.slug), &study.grader);
    if response.status() == 204 {
        return None;
    }
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().expect("next body");
    let item_id = body["item_id"].as_i64().expect("item id");
    let graded = study.app.post_json(
        &format!("/api/v1/projects/{}/items/{item_id}/grades", study.slug),
        &study.grader,
        &serde_json::json!({ "answers": answers_of_class(0) }),
    );
    assert_eq!(graded.status(), 201, "grade of item {item_id}");
    Some((item_id, body))
}

fn next_serves_new_priority_order(backend: TestBackend) {
    let study = set_up(backend, 6, 3);
    let summary = run_model(&study, 0.9).expect("model run succeeds");
    assert_eq!(run_status(&study, summary.run_id).0, "succeeded");
    assert_eq!(summary.scored, study.unlabeled.len());
    assert_eq!(prediction_count(&study, summary.run_id), study.unlabeled.len() as i64);

    let written = priorities(&study);
    let mut expected: Vec<i64> = study.unlabeled.clone();
    // The engine serves priority first, then the older item (items here were created in id
    // order).
    expected.sort_by(|a, b| written[b].total_cmp(&written[a]).then(a.cmp(b)));
    let distinct: std::collections::BTreeSet<u64> = study.unlabeled.iter().map(|id| written[id].to_bits()).collect();
    assert_eq!(distinct.len(), study.unlabeled.len(), "each scored item has its own priority: {written:?}");
    for id in &study.labeled {
        assert_eq!(written[id], 0.0, "resolved item {id} keeps its priority");
    }
    let ranked: Vec<i64> = summary.ranked.iter().map(|item| item.item_id).collect();
    assert_eq!(ranked, expected, "the summary lists the queue in serving order");

    let mut served = Vec::new();
    while let Some((item_id, _)) = grade_next(&study) {
        served.push(item_id);
    }
    assert_eq!(served, expected, "next serves the items in the order of the written priorities");
}

#[test]
fn sqlite_next_serves_model_priority_order() {
    next_serves_new_priority_order(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_next_serves_model_priority_order() {
    next_serves_new_priority_order(TestBackend::Postgres);
}

/// Reads one CSV of the study's export zip, as rows keyed by column.
fn export_csv(study: &AlStudy, file: &str) -> Option<Vec<BTreeMap<String, String>>> {
    let response = study.app.get(&format!("/api/v1/projects/{}/export.zip", study.slug), &study.lead);
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().expect("zip body");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("zip archive");
    let name = format!("{}-export/{file}", study.slug);
    let mut entry = match archive.by_name(&name) {
        Ok(entry) => entry,
        Err(_) => return None,
    };
    let mut text = String::new();
    entry.read_to_string(&mut text).expect("read entry");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
    Some(
        reader
            .records()
            .map(|record| header.iter().cloned().zip(record.expect("record").iter().map(str::to_string)).collect())
            .collect(),
    )
}

/// Names and proposals of the run's predictions that carry one.
fn proposals_of(study: &AlStudy, run_id: i64) -> BTreeMap<i64, (String, f64)> {
    let mut conn = study.app.db.conn().expect("connection");
    predictions::table
        .filter(predictions::run_id.eq(run_id))
        .filter(predictions::proposal.is_not_null())
        .select((predictions::item_id, predictions::proposal, predictions::confidence))
        .load::<(i64, Option<String>, Option<f64>)>(&mut conn)
        .expect("proposals")
        .into_iter()
        .map(|(item_id, proposal, confidence)| (item_id, (proposal.unwrap_or_default(), confidence.unwrap_or_default())))
        .collect()
}

fn item_name(study: &AlStudy, item_id: i64) -> String {
    let mut conn = study.app.db.conn().expect("connection");
    items::table.find(item_id).select(items::name).first(&mut conn).expect("item name")
}

fn pseudolabels_stay_out_until_accepted(backend: TestBackend) {
    let study = set_up(backend, 6, 3);
    // Every prediction's top probability is at least 1/5, so this threshold proposes a
    // label for every scored item.
    let summary = run_model(&study, 0.01).expect("model run succeeds");
    let proposals = proposals_of(&study, summary.run_id);
    assert_eq!(proposals.len(), study.unlabeled.len(), "every scored item has a proposal");

    // Pre-annotation is off by default: nothing of a proposal reaches the grader.
    let next = study.app.get(&format!("/api/v1/projects/{}/next", study.slug), &study.grader);
    assert_eq!(next.status(), 200);
    let text = next.text().expect("next body");
    let body: serde_json::Value = serde_json::from_str(&text).expect("next JSON");
    assert!(body.get("suggestion").is_none(), "{text}");
    assert!(!text.contains("confidence"), "{text}");
    let leased = body["item_id"].as_i64().expect("item id");
    let page = study.app.get(&format!("/studies/{}/grade", study.slug), &study.grader);
    assert_eq!(page.status(), 200);
    let html = page.text().expect("grading page");
    assert!(!html.contains(&format!("{:.3}", proposals[&leased].1)), "the page holds no confidence");
    assert!(!html.contains("\"run_id\""), "the page holds no run");

    // Accept two proposals of items that no grader holds.
    let accepted: Vec<i64> = study.unlabeled.iter().copied().filter(|id| *id != leased).take(2).collect();
    let response = study.app.post_json(
        &format!("/api/v1/projects/{}/model-runs/{}/accept", study.slug, summary.run_id),
        &study.lead,
        &serde_json::json!({ "item_ids": accepted }),
    );
    assert_eq!(response.status(), 200);
    let outcome: serde_json::Value = response.json().expect("accept body");
    assert_eq!(outcome["accepted"].as_array().map(Vec::len), Some(2), "{outcome}");

    let again = study.app.post_json(
        &format!("/api/v1/projects/{}/model-runs/{}/accept", study.slug, summary.run_id),
        &study.lead,
        &serde_json::json!({ "item_ids": [accepted[0]] }),
    );
    assert_eq!(again.status(), 409, "a proposal is accepted once");

    let reference = export_csv(&study, "reference.csv").expect("reference.csv");
    for row in &reference {
        let item_id = study.unlabeled.iter().copied().find(|id| item_name(&study, *id) == row["image"]);
        match item_id {
            Some(id) if accepted.contains(&id) => {
                assert_eq!(row["method"], "model", "{row:?}");
                assert_eq!(row["dr_severity"], proposals[&id].0, "{row:?}");
                assert_eq!(row["status"], "resolved");
            }
            Some(_) => {
                assert_eq!(row["method"], "", "an open proposal stays out of the reference standard: {row:?}");
                assert_eq!(row["dr_severity"], "", "{row:?}");
            }
            None => assert_eq!(row["method"], "imported", "{row:?}"),
        }
    }
    let pseudolabels = export_csv(&study, "pseudolabels.csv").expect("pseudolabels.csv");
    assert_eq!(pseudolabels.len(), proposals.len());
    let accepted_rows = pseudolabels.iter().filter(|row| row["accepted"] == "TRUE").count();
    assert_eq!(accepted_rows, 2);

    // Accepted items left grading: the grader never receives them.
    let mut served = vec![leased];
    let graded = study.app.post_json(
        &format!("/api/v1/projects/{}/items/{leased}/grades", study.slug),
        &study.grader,
        &serde_json::json!({ "answers": answers_of_class(0) }),
    );
    assert_eq!(graded.status(), 201);
    // With pre-annotation on, the next item carries its proposal.
    let patch = study
        .app
        .client
        .patch(study.app.url(&format!("/api/v1/projects/{}", study.slug)))
        .bearer_auth(&study.lead)
        .json(&serde_json::json!({ "preannotation": true }))
        .send()
        .expect("PATCH");
    assert_eq!(patch.status(), 200);
    let (item_id, body) = grade_next(&study).expect("an item is waiting");
    served.push(item_id);
    let suggestion = &body["suggestion"];
    assert_eq!(suggestion["field"], "dr_severity", "{body}");
    assert_eq!(suggestion["value"], proposals[&item_id].0.as_str(), "{body}");
    assert!((suggestion["confidence"].as_f64().expect("confidence") - proposals[&item_id].1).abs() < 1e-9);
    assert_eq!(suggestion["run_id"], summary.run_id);
    while let Some((item_id, _)) = grade_next(&study) {
        served.push(item_id);
    }
    for id in &accepted {
        assert!(!served.contains(id), "accepted item {id} was served to a grader");
    }
    assert_eq!(served.len(), study.unlabeled.len() - accepted.len());
}

#[test]
fn sqlite_pseudolabels_stay_out_until_accepted() {
    pseudolabels_stay_out_until_accepted(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_pseudolabels_stay_out_until_accepted() {
    pseudolabels_stay_out_until_accepted(TestBackend::Postgres);
}

/// Waits for a run started through the API to end and returns its JSON.
fn wait_for_run(study: &AlStudy, run_id: i64) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let response = study.app.get(&format!("/api/v1/projects/{}/model-runs/{run_id}", study.slug), &study.lead);
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().expect("run body");
        if body["run"]["status"] != "running" {
            return body;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "run {run_id} still running after 5 minutes");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn failed_run_keeps_priorities(backend: TestBackend) {
    let study = set_up(backend, 6, 3);
    let first = run_model(&study, 0.9).expect("first run succeeds");
    let before = priorities(&study);

    // Remove the display copy of one waiting image.
    let removed = study.unlabeled[1];
    let sha256: String = {
        let mut conn = study.app.db.conn().expect("connection");
        items::table.find(removed).select(items::sha256).first(&mut conn).expect("sha256")
    };
    let display = study.app.settings.data_dir.join("derived").join(&sha256).join("display.jpg");
    std::fs::remove_file(&display).expect("remove the display image");

    let error = run_model(&study, 0.9).expect_err("the run fails");
    assert!(format!("{error:#}").contains(&format!("item {removed}")), "{error:#}");
    let failed_id: i64 = {
        let mut conn = study.app.db.conn().expect("connection");
        model_runs::table.select(diesel::dsl::max(model_runs::id)).first::<Option<i64>>(&mut conn).expect("max").expect("a run")
    };
    assert!(failed_id > first.run_id);
    let (status, message) = run_status(&study, failed_id);
    assert_eq!(status, "failed");
    assert!(message.unwrap_or_default().contains(&format!("item {removed}")));
    assert_eq!(prediction_count(&study, failed_id), 0);
    assert_eq!(priorities(&study), before, "a failed run leaves the priorities of the run before");

    // The same through the API: 202, then the background job records the failure.
    let response = study.app.post_json(
        &format!("/api/v1/projects/{}/model-runs", study.slug),
        &study.lead,
        &serde_json::json!({ "field": "dr_severity", "strategy": "margin", "epochs": 1, "resolution": 32 }),
    );
    assert_eq!(response.status(), 202);
    let started: serde_json::Value = response.json().expect("start body");
    let run_id = started["run_id"].as_i64().expect("run id");
    let body = wait_for_run(&study, run_id);
    assert_eq!(body["run"]["status"], "failed", "{body}");
    assert!(body["run"]["error"].as_str().unwrap_or_default().contains(&format!("item {removed}")), "{body}");
    assert_eq!(priorities(&study), before);

    let audited: i64 = {
        let mut conn = study.app.db.conn().expect("connection");
        audit_events::table
            .filter(audit_events::action.eq("model_run.failed"))
            .count()
            .get_result(&mut conn)
            .expect("count")
    };
    assert_eq!(audited, 2);
}

#[test]
fn sqlite_failed_run_keeps_priorities() {
    failed_run_keeps_priorities(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_failed_run_keeps_priorities() {
    failed_run_keeps_priorities(TestBackend::Postgres);
}

#[test]
fn graders_get_403_on_model_run_routes() {
    let study = set_up(TestBackend::Sqlite, 6, 1);
    let run = run_model(&study, 0.01).expect("model run succeeds");
    let base = format!("/api/v1/projects/{}/model-runs", study.slug);

    let start = study.app.post_json(&base, &study.grader, &serde_json::json!({ "field": "dr_severity", "strategy": "entropy" }));
    assert_eq!(start.status(), 403, "start");
    assert_eq!(study.app.get(&base, &study.grader).status(), 403, "list");
    assert_eq!(study.app.get(&format!("{base}/{}", run.run_id), &study.grader).status(), 403, "detail");
    let accept = study.app.post_json(
        &format!("{base}/{}/accept", run.run_id),
        &study.grader,
        &serde_json::json!({ "min_confidence": 0.01 }),
    );
    assert_eq!(accept.status(), 403, "accept");
    let page = study.app.get(&format!("/studies/{}/active-learning", study.slug), &study.grader);
    assert_eq!(page.status(), 403, "page");
    let patch = study
        .app
        .client
        .patch(study.app.url(&format!("/api/v1/projects/{}", study.slug)))
        .bearer_auth(&study.grader)
        .json(&serde_json::json!({ "preannotation": true }))
        .send()
        .expect("PATCH");
    assert_eq!(patch.status(), 403, "pre-annotation switch");

    let mut conn = study.app.db.conn().expect("connection");
    let runs: i64 = model_runs::table.count().get_result(&mut conn).expect("count");
    assert_eq!(runs, 1, "the grader started no run");
    let accepted: i64 = predictions::table
        .filter(predictions::accepted_resolution_id.is_not_null())
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(accepted, 0, "the grader accepted nothing");

    // The lead reaches the same routes.
    assert_eq!(study.app.get(&base, &study.lead).status(), 200);
    let page = study.app.get(&format!("/studies/{}/active-learning", study.slug), &study.lead);
    assert_eq!(page.status(), 200);
    let html = page.text().expect("page");
    assert!(html.contains("id=\"confusion-matrix\""), "the page shows the run's figures");
    assert!(html.contains("<svg"), "the figures are SVG");
}

/// Posts a run request and returns the status and error body.
fn start_run(study: &AlStudy, body: serde_json::Value) -> (u16, serde_json::Value) {
    let response = study.app.post_json(&format!("/api/v1/projects/{}/model-runs", study.slug), &study.lead, &body);
    let status = response.status().as_u16();
    (status, response.json().unwrap_or_default())
}

fn stored_runs(study: &AlStudy) -> (i64, i64) {
    let mut conn = study.app.db.conn().expect("connection");
    let runs: i64 = model_runs::table.count().get_result(&mut conn).expect("count runs");
    let events: i64 = audit_events::table
        .filter(audit_events::object_type.eq("model_run"))
        .count()
        .get_result(&mut conn)
        .expect("count events");
    (runs, events)
}

#[test]
fn bad_run_requests_get_422_and_store_nothing() {
    let study = set_up(TestBackend::Sqlite, 6, 1);
    let cases = [
        (serde_json::json!({ "field": "colour", "strategy": "entropy" }), "field", "colour"),
        (serde_json::json!({ "field": "comment", "strategy": "entropy" }), "field", "comment"),
        (serde_json::json!({ "field": "dr_severity", "strategy": "smartest" }), "strategy", "smartest"),
        (serde_json::json!({ "field": "dr_severity", "strategy": "bald", "confidence_threshold": 1.5 }), "confidence_threshold", "1.5"),
        (serde_json::json!({ "field": "dr_severity", "strategy": "bald", "epochs": 0 }), "epochs", "0"),
        (serde_json::json!({ "field": "dr_severity", "strategy": "bald", "resolution": 4 }), "resolution", "4"),
    ];
    for (body, key, value) in cases {
        let (status, error) = start_run(&study, body.clone());
        assert_eq!(status, 422, "{body}: {error}");
        assert_eq!(error["error"]["field"], key, "{body}: {error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(value), "{body}: {message}");
    }
    assert_eq!(stored_runs(&study), (0, 0), "rejected requests store nothing");

    let args = RunArgs { strategy: "smartest".into(), ..run_args(&study.slug, 0.9) };
    let error = run_job(&study.app.db, &study.app.settings, &args, &mut |_| {}).expect_err("the CLI rejects it too");
    assert!(error.to_string().contains("--strategy"), "{error}");
    assert_eq!(stored_runs(&study), (0, 0));
}

#[test]
fn too_few_labels_get_422_naming_the_field() {
    let study = set_up(TestBackend::Sqlite, 3, 1);
    let (status, error) = start_run(&study, serde_json::json!({ "field": "dr_severity", "strategy": "entropy" }));
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "field");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("dr_severity"), "{message}");
    assert!(message.contains("6 resolved items"), "{message}");
    assert_eq!(stored_runs(&study), (0, 0));
}

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// Opens the study's event stream as the lead.
fn study_events(study: &AlStudy) -> Socket {
    use tungstenite::client::IntoClientRequest;
    let url = format!("{}/api/v1/projects/{}/events", study.app.base_url.replacen("http://", "ws://", 1), study.slug);
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("authorization", format!("Bearer {}", study.lead).parse().expect("header"));
    let (mut socket, _) = tungstenite::connect(request).expect("connect to the study's events");
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_mut() {
        stream.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
    }
    socket
}

#[test]
fn run_progress_reaches_study_stream() {
    let study = set_up(TestBackend::Sqlite, 6, 2);
    let mut socket = study_events(&study);
    let response = study.app.post_json(
        &format!("/api/v1/projects/{}/model-runs", study.slug),
        &study.lead,
        &serde_json::json!({ "field": "dr_severity", "strategy": "least-confidence", "epochs": 1, "resolution": 32 }),
    );
    assert_eq!(response.status(), 202);
    let run_id = response.json::<serde_json::Value>().expect("start body")["run_id"].as_i64().expect("run id");

    let mut running = Vec::new();
    let last = loop {
        let message = socket.read().expect("an event before the timeout");
        let tungstenite::Message::Text(text) = message else {
            continue;
        };
        let event: serde_json::Value = serde_json::from_str(&text).expect("event is JSON");
        if event["type"] != "model_run" {
            continue;
        }
        assert_eq!(event["run_id"], run_id, "{event}");
        if event["status"] == "running" {
            running.push(event);
        } else {
            break event;
        }
    };
    assert_eq!(last["status"], "succeeded", "{last}");
    assert_eq!(last["progress"], 1.0);
    assert!(!running.is_empty(), "progress events come before the end");
    for event in &running {
        let progress = event["progress"].as_f64().expect("progress");
        assert!((0.0..=1.0).contains(&progress), "{event}");
        assert!(event["stage"].as_str().is_some_and(|stage| !stage.is_empty()), "{event}");
    }
    let body = wait_for_run(&study, run_id);
    assert_eq!(body["run"]["status"], "succeeded");
    assert_eq!(body["scored"], study.unlabeled.len());
}

/// Inserts a running run directly, as a job in another process would have.
fn insert_running_run(study: &AlStudy) -> quorum::store::active_learning::runs::ModelRunRow {
        let mut conn = study.app.db.conn().expect("connection");
        let new = quorum::store::active_learning::runs::NewRun {
            project_id: study.project_id,
            field: "dr_severity",
            strategy: "entropy",
            started_by: None,
            settings: serde_json::json!({}),
        };
    quorum::store::active_learning::runs::create_run(&mut conn, &new).expect("a running run")
}

#[test]
fn second_run_while_running_gets_409() {
    let study = set_up(TestBackend::Sqlite, 6, 1);
    let running = insert_running_run(&study);
    let (status, error) = start_run(&study, serde_json::json!({ "field": "dr_severity", "strategy": "entropy" }));
    assert_eq!(status, 409, "{error}");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("model run {}", running.id)), "{message}");
    assert_eq!(stored_runs(&study).0, 1, "the rejected start stored no run");
}

#[test]
fn abandoned_run_gives_way_to_new_start() {
    let study = set_up(TestBackend::Sqlite, 6, 1);
    let abandoned = insert_running_run(&study);
    {
        // The process running it stopped an hour ago.
        let mut conn = study.app.db.conn().expect("connection");
        diesel::update(model_runs::table.find(abandoned.id))
            .set(model_runs::updated_at.eq(quorum::store::now_ms() - 3_600_000))
            .execute(&mut conn)
            .expect("age the heartbeat");
    }
    let (status, body) = start_run(&study, serde_json::json!({ "field": "dr_severity", "strategy": "entropy", "epochs": 1, "resolution": 32 }));
    assert_eq!(status, 202, "{body}");
    let (old_status, old_error) = run_status(&study, abandoned.id);
    assert_eq!(old_status, "failed");
    assert!(old_error.unwrap_or_default().contains("stopped reporting progress"));
    let run_id = body["run_id"].as_i64().expect("run id");
    assert_eq!(wait_for_run(&study, run_id)["run"]["status"], "succeeded");
}
