//! The study aggregate API reproduces the crowd-kit reference labels, priors and grader
//! accuracies of `tests/data/agreement-vectors.json`. Each reference case is brought into a
//! study the way a lead would do it. The study's guideline has one single-choice field whose
//! options are the case's categories, the ratings arrive as a `quorum import grades` file, and
//! the overlap is lowered afterwards so that items with fewer ratings than the others close
//! their first round too.
//!
//! The study uses senior arbitration, so every item whose first round closes leaves grading
//! (resolved when its graders agree, in arbitration otherwise) and keeps all its first-round
//! grades. The Dawid & Skene anaesthesia case is left out: its observer 1 rated each patient
//! three times, and a grader grades an item once per round.
//!
//! NOTE: the 5000-item case takes most of the run time, nearly all of it in the grade import:
//! about 40 s on SQLite and 95 s on PostgreSQL, measured once in a debug build on a 2-core
//! machine with both backends running at once.

mod common;

use common::reference::{cases, category_text, expected_labels};
use common::{TestApp, TestBackend};
use quorum::import::grades::import_grade_file;
use quorum::import::Encoding;
use serde_json::{json, Value};

const TOLERANCE: f64 = 1e-6;
const PASSWORD: &str = "aggregate test password";
/// Name of the guideline field that carries the reference ratings.
const FIELD: &str = "label";

/// Reference cases with aggregation results that a study can hold: one column per grader.
fn study_cases() -> Vec<Value> {
    cases()
        .into_iter()
        .filter(|case| case["expected"].get("majority_vote").is_some() && case.get("rater_ids").is_none())
        .collect()
}

/// A reference case loaded into a study of a running server.
struct LoadedCase<'a> {
    app: &'a TestApp,
    slug: String,
    lead: String,
    /// Pseudonym of each reference rater id (`r0`, `r1`, ...).
    pseudonyms: std::collections::HashMap<String, String>,
}

/// Guideline TOML with one ordinal field whose options are the case's categories in order.
fn guideline_toml(key: &str, categories: &[String]) -> String {
    let options: Vec<String> = categories
        .iter()
        .map(|category| format!("{{ value = \"{category}\", label = \"{category}\" }}"))
        .collect();
    format!(
        "key = \"{key}\"\nversion = \"1\"\ntitle = \"Reference case {key}\"\n\n[[fields]]\nname = \"{FIELD}\"\n\
         label = \"Label\"\nkind = \"ordinal\"\noptions = [{}]\n",
        options.join(", ")
    )
}

/// Creates an admin on `app` and returns the admin's token.
fn admin_token(app: &TestApp) -> String {
    app.create_user("admin", PASSWORD, true);
    app.login("admin", PASSWORD)
}

/// Creates the study of `case` on `app`, led by the admin whose token is `lead`, imports its
/// ratings with `quorum import grades` and closes the first round of every rated item.
///
/// All cases of a backend share one server, because every PostgreSQL test server keeps its
/// connections open until the test process ends.
fn load_case<'a>(app: &'a TestApp, lead: &str, case: &Value) -> LoadedCase<'a> {
    let id = case["id"].as_str().expect("id");
    let categories: Vec<String> = case["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .map(category_text)
        .collect();
    let ratings: Vec<Vec<Option<String>>> = case["ratings"]
        .as_array()
        .expect("ratings")
        .iter()
        .map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|cell| (!cell.is_null()).then(|| category_text(cell)))
                .collect()
        })
        .collect();
    let counts: Vec<usize> = ratings.iter().map(|row| row.iter().flatten().count()).collect();
    let most = counts.iter().copied().max().expect("items");
    let fewest = counts
        .iter()
        .copied()
        .filter(|count| *count > 0)
        .min()
        .expect("rated items");

    let key = id.replace('_', "-");
    {
        let mut conn = app.db.conn().expect("connection");
        quorum::store::guidelines::store_guideline(&mut conn, &guideline_toml(&key, &categories))
            .expect("store guideline");
    }
    let slug = key.clone();
    let created = app.post_json(
        "/api/v1/projects",
        lead,
        &json!({
            "slug": slug, "name": id, "guideline_key": key, "guideline_version": "1",
            "overlap": most, "policy": "senior-arbitration",
        }),
    );
    assert_eq!(
        created.status(),
        201,
        "{id}: create study: {}",
        created.text().unwrap_or_default()
    );

    let project = {
        let mut conn = app.db.conn().expect("connection");
        quorum::store::projects::find_by_slug(&mut conn, &slug)
            .expect("query")
            .expect("study")
    };
    let names: Vec<String> = (0..ratings.len()).map(|index| format!("i{index}")).collect();
    app.insert_items(project.id, &names);

    let mut csv = format!("image,grader,{FIELD}\n");
    for (index, row) in ratings.iter().enumerate() {
        for (rater, cell) in row.iter().enumerate() {
            if let Some(value) = cell {
                csv += &format!("i{index},r{rater},{value}\n");
            }
        }
    }
    // The function behind `quorum import grades`, called on the server's own connection pool.
    {
        let mut conn = app.db.conn().expect("connection");
        import_grade_file(&mut conn, &project, csv.as_bytes(), Encoding::Utf8, true)
            .unwrap_or_else(|error| panic!("{id}: import grades: {error}"));
    }

    if fewest < most {
        let response = app
            .client
            .patch(app.url(&format!("/api/v1/projects/{slug}")))
            .bearer_auth(lead)
            .json(&json!({ "overlap": fewest }))
            .send()
            .expect("PATCH request");
        assert_eq!(response.status(), 200, "{id}: lower the overlap");
    }

    let mut conn = app.db.conn().expect("connection");
    let still_grading: i64 = {
        use diesel::prelude::*;
        use quorum::store::schema::items;
        items::table
            .filter(items::project_id.eq(project.id))
            .filter(items::status.eq_any(["grading", "pending"]))
            .filter(
                items::name.ne_all(
                    counts
                        .iter()
                        .enumerate()
                        .filter(|(_, count)| **count == 0)
                        .map(|(index, _)| format!("i{index}"))
                        .collect::<Vec<_>>(),
                ),
            )
            .count()
            .get_result(&mut conn)
            .expect("count items")
    };
    assert_eq!(still_grading, 0, "{id}: every rated item has closed its first round");
    let pseudonyms = quorum::store::projects::members(&mut conn, project.id)
        .expect("members")
        .into_iter()
        .map(|(membership, username)| (username, membership.pseudonym))
        .collect();
    drop(conn);
    LoadedCase {
        app,
        slug,
        lead: lead.to_string(),
        pseudonyms,
    }
}

fn aggregate(loaded: &LoadedCase, query: &str) -> Value {
    let response = loaded.app.get(
        &format!("/api/v1/projects/{}/aggregate?field={FIELD}&{query}", loaded.slug),
        &loaded.lead,
    );
    assert_eq!(response.status(), 200, "aggregate {query}");
    response.json().expect("json")
}

fn actual_labels(output: &Value) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = output["labels"]
        .as_object()
        .expect("labels object")
        .iter()
        .map(|(item, label)| (item.clone(), category_text(label)))
        .collect();
    labels.sort();
    labels
}

/// Checks a Dawid-Skene response against one `expected` block of the reference.
fn check_dawid_skene(loaded: &LoadedCase, case: &Value, output: &Value, expected: &Value, context: &str) {
    assert_eq!(
        actual_labels(output),
        expected_labels(case, &expected["labels"]),
        "{context}: labels"
    );
    assert_eq!(
        output["iterations_run"], expected["iterations_run"],
        "{context}: iterations run"
    );
    let modeled: Vec<String> = expected["categories_modeled"]
        .as_array()
        .expect("modeled")
        .iter()
        .map(category_text)
        .collect();
    for (category, prior) in modeled.iter().zip(expected["priors"].as_array().expect("priors")) {
        let actual = output["priors"][category].as_f64().unwrap_or(f64::NAN);
        let wanted = prior.as_f64().expect("prior");
        assert!(
            (actual - wanted).abs() <= TOLERANCE,
            "{context}: prior of {category}: {actual} vs {wanted}"
        );
    }
    let accuracies = expected["rater_accuracy"].as_object().expect("accuracies");
    assert_eq!(
        output["rater_accuracy"].as_object().map(|a| a.len()),
        Some(accuracies.len()),
        "{context}: graders"
    );
    for (rater, accuracy) in accuracies {
        let pseudonym = &loaded.pseudonyms[rater];
        let actual = output["rater_accuracy"][pseudonym].as_f64().unwrap_or(f64::NAN);
        let wanted = accuracy.as_f64().expect("accuracy");
        assert!(
            (actual - wanted).abs() <= TOLERANCE,
            "{context}: accuracy of {rater} ({pseudonym}): {actual} vs {wanted}"
        );
        assert!(
            output["confusion"][pseudonym].is_array(),
            "{context}: confusion matrix of {pseudonym}"
        );
    }
}

fn check_case(app: &TestApp, lead: &str, case: &Value) {
    let id = case["id"].as_str().expect("id");
    let loaded = load_case(app, lead, case);

    let majority = aggregate(&loaded, "method=majority");
    assert_eq!(majority["method"], "majority");
    assert_eq!(
        actual_labels(&majority),
        expected_labels(case, &case["expected"]["majority_vote"]),
        "{id}: majority labels"
    );

    let converged = aggregate(&loaded, "method=dawid-skene");
    check_dawid_skene(
        &loaded,
        case,
        &converged,
        &case["expected"]["dawid_skene"],
        &format!("{id} dawid-skene"),
    );

    let fixed = &case["expected"]["dawid_skene_fixed_iterations"];
    let iterations = fixed["iterations_run"].as_u64().expect("iterations");
    let output = aggregate(&loaded, &format!("method=dawid-skene&iterations={iterations}"));
    check_dawid_skene(&loaded, case, &output, fixed, &format!("{id} dawid-skene fixed"));
}

fn reference_cases(backend: TestBackend) {
    let cases = study_cases();
    assert_eq!(
        cases.len(),
        9,
        "reference cases with aggregation results and one column per grader"
    );
    let app = TestApp::spawn(backend);
    let lead = admin_token(&app);
    for case in &cases {
        check_case(&app, &lead, case);
    }
}

/// Loads a small case into `app` and returns it with the token of a grader of the study.
fn small_study(app: &TestApp) -> (LoadedCase<'_>, String) {
    let case = cases()
        .into_iter()
        .find(|case| case["id"] == "edge_all_agree")
        .expect("edge_all_agree case");
    let lead = admin_token(app);
    let loaded = load_case(app, &lead, &case);
    let grader_id = loaded.app.create_user("grader", PASSWORD, false);
    let project_id = {
        let mut conn = loaded.app.db.conn().expect("connection");
        quorum::store::projects::find_by_slug(&mut conn, &loaded.slug)
            .expect("query")
            .expect("study")
            .id
    };
    let mut conn = loaded.app.db.conn().expect("connection");
    quorum::store::projects::set_member(&mut conn, project_id, grader_id, quorum::domain::roles::Role::Grader)
        .expect("member");
    drop(conn);
    let grader = loaded.app.login("grader", PASSWORD);
    (loaded, grader)
}

fn rejections(backend: TestBackend) {
    let app = TestApp::spawn(backend);
    let (loaded, grader) = small_study(&app);
    let path = |query: &str| format!("/api/v1/projects/{}/aggregate?{query}", loaded.slug);

    let refused = loaded.app.get(&path("field=label&method=majority"), &grader);
    assert_eq!(refused.status(), 403, "graders do not see aggregates");

    for (query, parameter) in [
        ("method=majority", "field"),
        ("field=colour&method=majority", "field"),
        ("field=label", "method"),
        ("field=label&method=median", "method"),
        ("field=label&method=dawid-skene&iterations=0", "iterations"),
        ("field=label&method=dawid-skene&iterations=many", "iterations"),
        ("field=label&method=dawid-skene&iterations=100000", "iterations"),
        ("field=label&method=majority&iterations=10", "iterations"),
    ] {
        let response = loaded.app.get(&path(query), &loaded.lead);
        assert_eq!(response.status(), 422, "{query}");
        let body: Value = response.json().expect("json");
        assert_eq!(body["error"]["field"], parameter, "{query}");
        assert!(
            body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{query}"
        );
    }
}

/// Grades of an item still in its first round are blind, so the item is left out.
fn first_round_is_left_out(backend: TestBackend) {
    let app = TestApp::spawn(backend);
    let (loaded, grader) = small_study(&app);
    let before = aggregate(&loaded, "method=majority");
    let project = {
        let mut conn = loaded.app.db.conn().expect("connection");
        quorum::store::projects::find_by_slug(&mut conn, &loaded.slug)
            .expect("query")
            .expect("study")
    };
    // The highest priority makes it the grader's next item.
    let item_id = loaded.app.insert_item(project.id, "fresh", 999_999, 100.0);
    let next = loaded
        .app
        .get(&format!("/api/v1/projects/{}/next", loaded.slug), &grader);
    assert_eq!(next.status(), 200, "the new item is offered");
    assert_eq!(next.json::<Value>().expect("json")["item_id"], item_id);
    let response = loaded.app.post_json(
        &format!("/api/v1/projects/{}/items/{item_id}/grades", loaded.slug),
        &grader,
        &json!({ "answers": { FIELD: "1" }, "comment": "", "time_spent_ms": 1000 }),
    );
    assert_eq!(response.status(), 201, "grade: {}", response.text().unwrap_or_default());
    let after = aggregate(&loaded, "method=majority");
    assert!(
        after["labels"].get("fresh").is_none(),
        "an item in its first round is not aggregated"
    );
    assert_eq!(after["items"], before["items"]);
    assert_eq!(
        after["graders"], before["graders"],
        "the new grader has no grade past blinding"
    );
}

#[test]
fn sqlite_aggregate_matches_reference() {
    reference_cases(TestBackend::Sqlite);
}

#[test]
fn sqlite_aggregate_rejects_bad_requests() {
    rejections(TestBackend::Sqlite);
}

#[test]
fn sqlite_aggregate_leaves_out_first_round() {
    first_round_is_left_out(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(
    not(quorum_postgres_tests),
    ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test"
)]
fn postgres_aggregate_matches_reference() {
    reference_cases(TestBackend::Postgres);
}

#[test]
#[cfg_attr(
    not(quorum_postgres_tests),
    ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test"
)]
fn postgres_aggregate_rejects_bad_requests() {
    rejections(TestBackend::Postgres);
}
