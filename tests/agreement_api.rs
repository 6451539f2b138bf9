//! Agreement inside the server: the JSON API against `quorum agreement`, access by role, the
//! grader's scorecard and its blinding, and the page with its SVG figures.

mod common;

use std::collections::BTreeMap;
use std::io::Write;

use common::{TestApp, TestBackend, TestStudy};
use diesel::prelude::*;
use quorum::cli::agreement::{write_agreement, AgreementArgs, OutputFormat};
use quorum::tabular::TableOptions;
use serde_json::{json, Value};

const PASSWORD: &str = "agreement test password";

/// DR severity of each item (rows) by each of three graders (columns); `None` is ungradable.
/// With majority vote and a senior, items 3 and 10 (three different grades) go to arbitration
/// and every other item is resolved.
const TABLE: [[Option<u8>; 3]; 12] = [
    [Some(0), Some(0), Some(0)],
    [Some(1), Some(1), Some(2)],
    [Some(2), Some(2), Some(2)],
    [Some(0), Some(1), Some(2)],
    [Some(3), Some(3), Some(4)],
    [Some(4), Some(4), Some(4)],
    [Some(1), Some(0), Some(0)],
    [Some(2), Some(3), Some(2)],
    [None, None, None],
    [Some(1), Some(1), None],
    [Some(0), Some(2), Some(4)],
    [Some(3), Some(3), Some(3)],
];

/// The final DR severity of each item: `None` for items in arbitration and for item 8, which
/// all graders found ungradable.
const FINAL: [Option<u8>; 12] = [
    Some(0),
    Some(1),
    Some(2),
    None,
    Some(3),
    Some(4),
    Some(0),
    Some(2),
    None,
    Some(1),
    None,
    Some(3),
];
const RESOLVED: [bool; 12] = [true, true, true, false, true, true, true, true, true, true, false, true];

/// Answers with this DR severity, or ungradable for `None`; every other field is the same for all.
fn answers(dr: Option<u8>) -> Value {
    match dr {
        None => json!({ "gradability": "ungradable" }),
        Some(dr) => json!({
            "gradability": "gradable",
            "dr_severity": dr.to_string(),
            "dme": "absent",
            "microaneurysms": "no",
            "haemorrhages": "no",
            "hard_exudates": "no",
            "cotton_wool_spots": "no",
            "new_vessels": "no",
        }),
    }
}

struct Setup {
    app: TestApp,
    study: TestStudy,
    lead: String,
    graders: Vec<String>,
}

/// A study of `table.len()` items led by "lead" with a senior and three graders, each item
/// with `eye`, `site` and `patient` metadata.
fn setup(backend: TestBackend, n_items: usize) -> Setup {
    let app = TestApp::spawn(backend);
    let lead_id = app.create_user("lead", PASSWORD, false);
    let senior_id = app.create_user("senior", PASSWORD, false);
    let study = app.create_study("study", n_items, 3, "majority-vote", lead_id);
    app.add_member(&study, senior_id, "senior");
    let mut graders = Vec::new();
    for index in 0..3 {
        let name = format!("grader{index}");
        let id = app.create_user(&name, PASSWORD, false);
        app.add_member(&study, id, "grader");
        graders.push(app.login(&name, PASSWORD));
    }

    let mut conn = app.db.conn().expect("connection");
    for (index, item_id) in study.item_ids.iter().enumerate() {
        use quorum::store::schema::items;
        let site = ["north", "south", "<i>east</i>"][index % 3];
        let metadata = json!({ "eye": if index % 2 == 0 { "left" } else { "right" }, "site": site, "patient": format!("p{index}") });
        diesel::update(items::table.find(item_id))
            .set(items::metadata.eq(metadata.to_string()))
            .execute(&mut conn)
            .expect("set metadata");
    }
    drop(conn);
    let lead = app.login("lead", PASSWORD);
    Setup {
        app,
        study,
        lead,
        graders,
    }
}

/// Has one grader take and grade items until none is left; `dr_of(item index)` gives the grade.
fn grade_all(setup: &Setup, grader: usize, dr_of: impl Fn(usize) -> Option<u8>) {
    let token = &setup.graders[grader];
    loop {
        let response = setup.app.get("/api/v1/projects/study/next", token);
        if response.status() == 204 {
            break;
        }
        assert_eq!(response.status(), 200, "next item");
        let body: Value = response.json().expect("json");
        let item_id = body["item_id"].as_i64().expect("item id");
        let index = setup
            .study
            .item_ids
            .iter()
            .position(|id| *id == item_id)
            .expect("item of the study");
        let submitted = setup.app.post_json(
            &format!("/api/v1/projects/study/items/{item_id}/grades"),
            token,
            &json!({ "answers": answers(dr_of(index)), "comment": "", "time_spent_ms": 1000 }),
        );
        assert_eq!(submitted.status(), 201, "grade of item {index}");
    }
}

fn graded_setup(backend: TestBackend) -> Setup {
    let setup = setup(backend, TABLE.len());
    (0..3).for_each(|grader| grade_all(&setup, grader, |item| TABLE[item][grader]));
    setup
}

fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    let response = app.get(path, token);
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().expect("json")
}

/// What `quorum agreement --format json` prints for the DR grades of round 0, written as a
/// long CSV with the raters in `raters` order.
fn cli_json(raters: &[String], replicates: usize, seed: u64) -> Value {
    let mut file = tempfile::NamedTempFile::new().expect("temporary file");
    writeln!(file, "item,rater,value").expect("write");
    for (item, row) in TABLE.iter().enumerate() {
        for (rater, dr) in raters.iter().zip(row) {
            let value = dr.map_or(String::new(), |dr| dr.to_string());
            writeln!(file, "item{item},{rater},{value}").expect("write");
        }
    }
    file.flush().expect("flush");
    let args = AgreementArgs {
        file: file.path().to_path_buf(),
        table: TableOptions {
            categories: Some(["0", "1", "2", "3", "4"].map(String::from).to_vec()),
            ..TableOptions::default()
        },
        format: OutputFormat::Json,
        bootstrap: Some(replicates),
        seed,
    };
    let mut out = Vec::new();
    write_agreement(&args, &mut out).expect("quorum agreement");
    serde_json::from_slice(&out).expect("JSON output")
}

fn assert_close(api: &Value, cli: &Value, key: &str) {
    match (api.as_f64(), cli.as_f64()) {
        (Some(a), Some(c)) => assert!((a - c).abs() <= 1e-12, "{key}: API {a}, CLI {c}"),
        _ => assert_eq!(api, cli, "{key}"),
    }
}

fn api_matches_cli(backend: TestBackend) {
    let setup = graded_setup(backend);
    let report = get_json(
        &setup.app,
        "/api/v1/projects/study/agreement?field=dr_severity&bootstrap=200&seed=7",
        &setup.lead,
    );

    assert_eq!(report["field"], "dr_severity");
    assert_eq!(report["n_items"], 12);
    assert_eq!(report["n_raters"], 3);
    assert_eq!(
        report["raters"],
        json!(["Grader C", "Grader D", "Grader E"]),
        "the lead and senior are A and B"
    );
    let values: Vec<&str> = report["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .map(|c| c["value"].as_str().expect("value"))
        .collect();
    assert_eq!(values, ["0", "1", "2", "3", "4"]);

    let raters: Vec<String> = report["raters"]
        .as_array()
        .expect("raters")
        .iter()
        .map(|r| r.as_str().expect("name").to_string())
        .collect();
    let cli = cli_json(&raters, 200, 7);
    let statistics = report["statistics"].as_object().expect("statistics object");
    let cli = cli.as_object().expect("CLI object");
    let api_keys: Vec<&String> = statistics.keys().collect();
    let cli_keys: Vec<&String> = cli.keys().collect();
    assert_eq!(api_keys, cli_keys, "same keys as quorum agreement --format json");
    for (key, cli_value) in cli {
        match key.as_str() {
            "undefined" | "categories" => assert_eq!(&statistics[key], cli_value, "{key}"),
            "ci" => {
                let api_ci = statistics["ci"].as_object().expect("ci");
                let cli_ci = cli_value.as_object().expect("ci");
                assert_eq!(
                    api_ci.keys().collect::<Vec<_>>(),
                    cli_ci.keys().collect::<Vec<_>>(),
                    "ci metrics"
                );
                for (metric, bounds) in cli_ci {
                    assert_close(&api_ci[metric][0], &bounds[0], metric);
                    assert_close(&api_ci[metric][1], &bounds[1], metric);
                }
            }
            _ => assert_close(&statistics[key], cli_value, key),
        }
    }
    assert!(statistics["fleiss_kappa_generalized"].is_f64(), "{report}");
}

#[test]
fn api_matches_cli_on_sqlite() {
    api_matches_cli(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(
    not(quorum_postgres_tests),
    ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test"
)]
fn api_matches_cli_on_postgres() {
    api_matches_cli(TestBackend::Postgres);
}

#[test]
fn report_breakdowns() {
    let setup = graded_setup(TestBackend::Sqlite);
    let report = get_json(
        &setup.app,
        "/api/v1/projects/study/agreement?field=dr_severity&bootstrap=0",
        &setup.lead,
    );
    assert!(
        report["statistics"].get("ci").is_none(),
        "bootstrap=0 skips the intervals"
    );
    assert!(report["standard_errors"]["fleiss_kappa_generalized"].is_f64());

    let pairwise = &report["pairwise"];
    assert_eq!(pairwise["weighting"], "quadratic");
    for a in 0..3 {
        assert!(pairwise["kappa"][a][a].is_null());
        assert!(pairwise["reasons"][a][a].is_string());
        for b in 0..3 {
            assert_eq!(pairwise["kappa"][a][b], pairwise["kappa"][b][a]);
        }
    }
    assert_eq!(pairwise["n_items"][0][2], 10, "grader C and E both rated 10 items");

    // Each grader's confusion with the final labels, counted from the tables above.
    let reference = report["against_reference"].as_array().expect("resolutions exist");
    assert_eq!(reference.len(), 3);
    for (grader, comparison) in reference.iter().enumerate() {
        let mut expected = vec![vec![0u64; 5]; 5];
        for (row, final_value) in TABLE.iter().zip(FINAL) {
            if let (Some(rating), Some(truth)) = (row[grader], final_value) {
                expected[rating as usize][truth as usize] += 1;
            }
        }
        assert_eq!(comparison["confusion"], json!(expected), "grader {grader}");
        assert!(comparison["kappa_quadratic"]["value"].is_f64());
    }
    // Grader E graded items 1 and 4 one step above their final labels.
    assert!(reference[2]["mean_signed_difference"].as_f64().expect("ordinal field") > 0.0);

    let columns: BTreeMap<&str, &Value> = report["subgroups"]["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|column| (column["column"].as_str().expect("name"), &column["groups"]))
        .collect();
    assert_eq!(columns.keys().copied().collect::<Vec<_>>(), ["eye", "patient", "site"]);
    let eye_items: Vec<u64> = columns["eye"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["n_items"].as_u64().expect("n"))
        .collect();
    assert_eq!(eye_items, [6, 6]);
    assert!(columns["eye"][0]["statistics"]["krippendorff_alpha_ordinal"]["value"].is_f64());

    let before_after = &report["before_after"];
    let resolved_with_dr = FINAL.iter().filter(|value| value.is_some()).count();
    assert_eq!(before_after["n_items"], resolved_with_dr);
    let (mut grades, mut matching) = (0, 0);
    for (row, final_value) in TABLE.iter().zip(FINAL) {
        let Some(truth) = final_value else { continue };
        grades += row.iter().flatten().count();
        matching += row.iter().flatten().filter(|rating| **rating == truth).count();
    }
    assert_eq!(before_after["n_grades"], grades);
    assert_eq!(before_after["n_matching"], matching);
    assert_eq!(
        before_after["round0"]["statistics"], before_after["last_round"]["statistics"],
        "no item was regraded"
    );

    let round1 = get_json(
        &setup.app,
        "/api/v1/projects/study/agreement?field=dr_severity&round=1&bootstrap=0",
        &setup.lead,
    );
    assert_eq!(round1["n_items"], 0);
    assert!(round1["statistics"]["fleiss_kappa"].is_null());
}

#[test]
fn graders_get_403() {
    let setup = graded_setup(TestBackend::Sqlite);
    for path in [
        "/api/v1/projects/study/agreement?field=dr_severity",
        "/studies/study/agreement?field=dr_severity",
    ] {
        let response = setup.app.get(path, &setup.graders[0]);
        assert_eq!(response.status(), 403, "{path}");
    }
    let senior = setup.app.login("senior", PASSWORD);
    assert_eq!(
        setup
            .app
            .get("/api/v1/projects/study/agreement?field=dme&bootstrap=0", &senior)
            .status(),
        200
    );
    assert_eq!(
        setup.app.get("/api/v1/projects/study/scorecard", &setup.lead).status(),
        403,
        "leads have no scorecard"
    );
}

#[test]
fn unknown_field_is_422() {
    let setup = setup(TestBackend::Sqlite, 2);
    for path in [
        "/api/v1/projects/study/agreement?field=colour",
        "/api/v1/projects/study/agreement",
        "/api/v1/projects/study/agreement?field=dr_severity&bootstrap=many",
    ] {
        let response = setup.app.get(path, &setup.lead);
        assert_eq!(response.status(), 422, "{path}");
    }
    let error: Value = setup
        .app
        .get("/api/v1/projects/study/agreement?field=colour", &setup.lead)
        .json()
        .expect("json");
    assert_eq!(error["error"]["field"], "field");
    assert_eq!(error["error"]["allowed"][1], "dr_severity");
    assert_eq!(error["error"]["allowed"].as_array().map(Vec::len), Some(8));
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("colour")),
        "{error}"
    );
}

#[test]
fn scorecard_shows_own_resolved_grades() {
    let setup = setup(TestBackend::Sqlite, TABLE.len());
    grade_all(&setup, 0, |item| TABLE[item][0]);
    let early = get_json(&setup.app, "/api/v1/projects/study/scorecard", &setup.graders[0]);
    assert_eq!(
        early["n_grades"], 0,
        "no item is resolved yet, so nothing may show: {early}"
    );
    assert!(early["fields"][1]["kappa"]["value"].is_null());

    grade_all(&setup, 1, |item| TABLE[item][1]);
    grade_all(&setup, 2, |item| TABLE[item][2]);
    let card = get_json(&setup.app, "/api/v1/projects/study/scorecard", &setup.graders[0]);
    assert_eq!(card["pseudonym"], "Grader C");
    assert_eq!(card["n_grades"], RESOLVED.iter().filter(|resolved| **resolved).count());
    let text = card.to_string();
    for other in ["Grader D", "Grader E", "Grader A", "Grader B"] {
        assert!(!text.contains(other), "the scorecard names {other}: {text}");
    }
    assert!(card.get("raters").is_none() && card.get("pairwise").is_none());

    let dr = card["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|field| field["field"] == "dr_severity")
        .expect("dr field");
    let mut expected = vec![vec![0u64; 5]; 5];
    for ((row, final_value), resolved) in TABLE.iter().zip(FINAL).zip(RESOLVED) {
        if let (true, Some(rating), Some(truth)) = (resolved, row[0], final_value) {
            expected[rating as usize][truth as usize] += 1;
        }
    }
    assert_eq!(dr["confusion"], json!(expected));
    assert_eq!(dr["n_items"], 9);
    // Grader C rated item 6 one step above its final label and matched every other one.
    assert!((dr["mean_signed_difference"].as_f64().expect("tendency") - 1.0 / 9.0).abs() < 1e-12);
    assert!(dr["kappa"]["value"].is_f64());

    let page = setup.app.get("/studies/study/scorecard", &setup.graders[0]);
    assert_eq!(page.status(), 200);
    let html = page.text().expect("html");
    assert!(html.contains("<svg"));
    assert!(!html.contains("Grader D"));
}

#[test]
fn page_renders_figures_and_tables() {
    let setup = graded_setup(TestBackend::Sqlite);
    let response = setup
        .app
        .get("/studies/study/agreement?field=dr_severity&bootstrap=100", &setup.lead);
    assert_eq!(response.status(), 200);
    let html = response.text().expect("html");
    for id in [
        r#"id="kappa-heatmap""#,
        r#"id="statistics""#,
        r#"id="subgroups""#,
        r#"id="before-after""#,
    ] {
        assert!(html.contains(id), "page lacks {id}");
    }
    let heatmap = &html[html.find(r#"id="kappa-heatmap""#).expect("heatmap")..];
    assert!(heatmap.contains("<svg"), "the heatmap wrapper holds an SVG");
    assert!(heatmap.contains("Grader E"));
    assert_eq!(
        html.matches("<svg").count(),
        1 + 3,
        "the heatmap and one confusion matrix per grader"
    );
    assert!(!html.contains("<i>east</i>"), "metadata values must be escaped");
    assert!(
        html.contains("&#60;i&#62;east&#60;/i&#62;"),
        "askama escapes < and > as numeric references"
    );

    let default_field = setup.app.get("/studies/study/agreement", &setup.lead);
    assert_eq!(
        default_field.status(),
        200,
        "without a field the page shows the first one"
    );
    let anonymous = setup
        .app
        .client
        .get(setup.app.url("/studies/study/agreement"))
        .send()
        .expect("request");
    assert_eq!(anonymous.status(), 303);
}

#[test]
fn one_category_gives_null_kappas_with_reasons() {
    let setup = setup(TestBackend::Sqlite, 4);
    for grader in 0..3 {
        grade_all(&setup, grader, |_| Some(2));
    }
    let report = get_json(
        &setup.app,
        "/api/v1/projects/study/agreement?field=dr_severity",
        &setup.lead,
    );
    let statistics = &report["statistics"];
    assert_eq!(statistics["percent_agreement"], 1.0);
    for metric in [
        "fleiss_kappa",
        "fleiss_kappa_generalized",
        "krippendorff_alpha_ordinal",
        "conger_kappa",
    ] {
        assert!(statistics[metric].is_null(), "{metric}");
        assert!(
            statistics["undefined"][metric]
                .as_str()
                .is_some_and(|reason| !reason.is_empty()),
            "{metric}"
        );
    }
    assert!(report["pairwise"]["kappa"][0][1].is_null());
    assert!(report["pairwise"]["reasons"][0][1]
        .as_str()
        .is_some_and(|reason| reason.contains("one category")));
    let reference = &report["against_reference"][0];
    assert!(reference["kappa"]["value"].is_null());
    assert!(reference["kappa"]["reason"].is_string());

    let page = setup.app.get("/studies/study/agreement?field=dr_severity", &setup.lead);
    assert_eq!(page.status(), 200);
    assert!(page.text().expect("html").contains("n/a"));
}

#[test]
fn study_without_grades_renders() {
    let setup = setup(TestBackend::Sqlite, 2);
    let report = get_json(&setup.app, "/api/v1/projects/study/agreement?field=dr_severity", &setup.lead);
    assert_eq!(report["n_items"], 0);
    assert_eq!(report["raters"], json!([]));
    assert!(report["against_reference"].is_null());
    assert!(report["statistics"]["percent_agreement"].is_null());
    assert!(report["statistics"]["undefined"]["percent_agreement"].is_string());

    let page = setup.app.get("/studies/study/agreement?field=dme", &setup.lead);
    assert_eq!(page.status(), 200);
    let html = page.text().expect("html");
    assert!(html.contains(r#"id="kappa-heatmap""#));
    assert!(html.contains("No grades in round 0 yet."));

    let card = get_json(&setup.app, "/api/v1/projects/study/scorecard", &setup.graders[0]);
    assert_eq!(card["n_grades"], 0);
}
