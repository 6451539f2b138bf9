//! The study export: reproducible files, provenance with file hashes, empty final values for
//! unresolved items, the zip download for leads, and the command line.

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use common::{TestApp, TestBackend, TestStudy};
use diesel::prelude::*;
use quorum::export::{export_study, ExportError, ExportOptions, ExportSink, FileBody};
use quorum::import::grades::import_grade_file;
use quorum::import::Encoding;
use quorum::store::models::ProjectRow;
use sha2::{Digest, Sha256};

const PASSWORD: &str = "export test password";

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

#[derive(Default)]
struct MemorySink {
    files: BTreeMap<String, Vec<u8>>,
}

impl ExportSink for MemorySink {
    fn write_file(&mut self, name: &str, body: &mut FileBody<'_>) -> Result<(), ExportError> {
        let mut bytes = Vec::new();
        body(&mut bytes)?;
        self.files.insert(name.to_string(), bytes);
        Ok(())
    }
}

fn project(app: &TestApp, slug: &str) -> ProjectRow {
    let mut conn = app.db.conn().expect("connection");
    quorum::store::projects::find_by_slug(&mut conn, slug)
        .expect("query")
        .expect("study exists")
}

fn export(app: &TestApp, slug: &str, real_names: bool, exported_at: i64) -> BTreeMap<String, Vec<u8>> {
    let project = project(app, slug);
    let mut conn = app.db.conn().expect("connection");
    let mut sink = MemorySink::default();
    export_study(
        &mut conn,
        project,
        &ExportOptions {
            real_names,
            exported_at,
        },
        &mut sink,
    )
    .expect("export");
    sink.files
}

fn read_csv(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(bytes);
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
    reader
        .records()
        .map(|record| {
            header
                .iter()
                .cloned()
                .zip(record.expect("record").iter().map(str::to_string))
                .collect()
        })
        .collect()
}

fn image(i: usize) -> String {
    format!("image-{i:05}.jpg")
}

/// Writes one grade line of the bundled guideline: gradable with DR severity `dr`, or
/// ungradable when `dr` is empty.
fn grade_line(item: usize, grader: &str, dr: &str) -> String {
    if dr.is_empty() {
        format!("{},{grader},ungradable,,,,,,,,\"{grader}: blurred, dark\"", image(item))
    } else {
        format!("{},{grader},gradable,{dr},absent,no,no,no,no,no,", image(item))
    }
}

/// Builds a majority-vote study of six items graded by ann, ben and cat (no senior):
/// item 0 unanimous, 1 majority, 2 no majority (one more grader asked), 3 ungradable,
/// 4 resolved and then reopened, 5 resolved and then excluded. Item 0 carries metadata, a
/// discussion message and a model proposal.
fn graded_study(backend: TestBackend) -> (TestApp, TestStudy, i64) {
    let app = TestApp::spawn(backend);
    let lead = app.create_user("lead", PASSWORD, false);
    let study = app.create_study("study", 7, 3, "majority-vote", lead);
    for name in ["ann", "ben", "cat"] {
        let id = app.create_user(name, PASSWORD, false);
        app.add_member(&study, id, "grader");
    }
    let mut lines = vec![format!("image,grader,{},comment", FIELDS.join(","))];
    for (item, answers) in [
        (0, ["0", "0", "0"]),
        (1, ["2", "2", "3"]),
        (2, ["1", "2", "4"]),
        (3, ["", "", ""]),
        (4, ["1", "1", "1"]),
        (5, ["3", "3", "3"]),
    ] {
        for (grader, dr) in ["ann", "ben", "cat"].iter().zip(answers) {
            lines.push(grade_line(item, grader, dr));
        }
    }
    let file = lines.join("\n") + "\n";
    let study_row = project(&app, "study");
    let mut conn = app.db.conn().expect("connection");
    import_grade_file(&mut conn, &study_row, file.as_bytes(), Encoding::Utf8, false).expect("grades import");

    quorum::store::workflow::reopen(&mut conn, &study_row, study.item_ids[4], lead, "second look").expect("reopen");
    quorum::store::workflow::exclude(&mut conn, &study_row, study.item_ids[5], lead, "wrong eye").expect("exclude");

    use quorum::store::schema::{items, messages, model_runs, predictions};
    diesel::update(items::table.find(study.item_ids[0]))
        .set(items::metadata.eq(r#"{"site": "Lyon", "eye": "left", "age": 61}"#))
        .execute(&mut conn)
        .expect("metadata");
    diesel::update(items::table.find(study.item_ids[1]))
        .set(items::metadata.eq(r#"{"site": "Porto", "image": "clash"}"#))
        .execute(&mut conn)
        .expect("metadata");
    diesel::insert_into(messages::table)
        .values((
            messages::item_id.eq(study.item_ids[0]),
            messages::round.eq(0),
            messages::author_id.eq(lead),
            messages::body.eq("agreed, no lesions"),
            messages::created_at.eq(1_790_000_000_000_i64),
        ))
        .execute(&mut conn)
        .expect("message");
    diesel::insert_into(model_runs::table)
        .values((
            model_runs::project_id.eq(study.project_id),
            model_runs::field.eq("dr_severity"),
            model_runs::strategy.eq("uncertainty"),
            model_runs::model_kind.eq("logistic"),
            model_runs::status.eq("finished"),
            model_runs::metrics.eq("{}"),
            model_runs::started_at.eq(1_790_000_000_000_i64),
        ))
        .execute(&mut conn)
        .expect("model run");
    let run_id: i64 = model_runs::table
        .select(model_runs::id)
        .first(&mut conn)
        .expect("run id");
    diesel::insert_into(predictions::table)
        .values((
            predictions::run_id.eq(run_id),
            predictions::item_id.eq(study.item_ids[6]),
            predictions::probabilities.eq("[0.1, 0.9]"),
            predictions::scores.eq("{}"),
            predictions::proposal.eq("2"),
            predictions::confidence.eq(0.9),
        ))
        .execute(&mut conn)
        .expect("prediction");
    (app, study, lead)
}

fn provenance(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("provenance.json is JSON")
}

#[test]
fn exporting_twice_gives_same_data() {
    let (app, _study, _lead) = graded_study(TestBackend::Sqlite);
    let first = export(&app, "study", false, 1_800_000_000_000);
    let second = export(&app, "study", false, 1_800_000_999_000);

    for name in [
        "reference.csv",
        "grades.csv",
        "pseudolabels.csv",
        "agreement.md",
        "agreement.html",
    ] {
        assert!(first.contains_key(name), "{name} is exported");
        assert_eq!(first[name], second[name], "{name} differs between two exports");
    }
    let (a, b) = (
        provenance(&first["provenance.json"]),
        provenance(&second["provenance.json"]),
    );
    assert_eq!(a["data"], b["data"]);
    assert_ne!(a["export"]["exported_at"], b["export"]["exported_at"]);
    assert_eq!(a["export"]["exported_at"], "2027-01-15T08:00:00.000Z");
    assert_eq!(a["export"]["quorum_version"], env!("CARGO_PKG_VERSION"));

    for (name, bytes) in &first {
        if name == "provenance.json" {
            continue;
        }
        let entry = &a["export"]["files"][name.as_str()];
        assert_eq!(entry["sha256"], hex::encode(Sha256::digest(bytes)), "hash of {name}");
        assert_eq!(entry["bytes"], bytes.len() as u64, "size of {name}");
    }
    for text in [&first["reference.csv"], &first["grades.csv"]] {
        assert!(!text.starts_with(b"\xEF\xBB\xBF"), "no byte-order mark");
        assert!(std::str::from_utf8(text).is_ok());
    }
}

#[test]
fn unresolved_items_have_no_final_values() {
    let (app, study, _lead) = graded_study(TestBackend::Sqlite);
    let files = export(&app, "study", false, 0);
    let reference = read_csv(&files["reference.csv"]);
    assert_eq!(reference.len(), study.item_ids.len());
    let names: Vec<&str> = reference.iter().map(|row| row["image"].as_str()).collect();
    let expected: Vec<String> = (0..study.item_ids.len()).map(image).collect();
    assert_eq!(names, expected, "rows in item id order");

    let statuses: Vec<&str> = reference.iter().map(|row| row["status"].as_str()).collect();
    assert_eq!(
        statuses,
        ["resolved", "resolved", "grading", "resolved", "grading", "excluded", "pending"]
    );
    for row in reference.iter().filter(|row| row["status"] != "resolved") {
        for column in FIELDS.iter().copied().chain(["method", "rounds_used", "resolved_at"]) {
            assert_eq!(row[column], "", "{column} of {} ({})", row["image"], row["status"]);
        }
    }
    assert_eq!(reference[0]["method"], "unanimous");
    assert_eq!(reference[1]["method"], "majority");
    assert_eq!(reference[1]["dr_severity"], "2");
    assert_eq!(reference[3]["gradability"], "ungradable");
    assert_eq!(reference[4]["n_grades"], "3", "the reopened item keeps its grades");
    assert_eq!(reference[0]["guideline_version"], "dr-screening 1.0");
    assert!(reference[0]["resolved_at"].ends_with('Z'));

    assert_eq!(reference[0]["site"], "Lyon");
    assert_eq!(reference[0]["age"], "61");
    assert_eq!(
        reference[1]["metadata_image"], "clash",
        "a metadata key named like a column is prefixed"
    );
    assert_eq!(reference[2]["site"], "", "missing metadata is an empty cell");

    let pseudolabels = read_csv(&files["pseudolabels.csv"]);
    assert_eq!(pseudolabels.len(), 1);
    assert_eq!(pseudolabels[0]["image"], image(6));
    assert_eq!(pseudolabels[0]["proposal"], "2");
    assert_eq!(pseudolabels[0]["accepted"], "FALSE");
    assert_eq!(
        reference[6]["dr_severity"], "",
        "a proposal never enters the reference standard"
    );
}

#[test]
fn provenance_holds_items_grades_messages_resolutions() {
    let (app, study, _lead) = graded_study(TestBackend::Sqlite);
    let files = export(&app, "study", false, 0);
    let document = provenance(&files["provenance.json"]);
    let data = &document["data"];
    assert_eq!(data["format"], "quorum-provenance-1");
    assert_eq!(data["study"]["slug"], "study");
    assert_eq!(data["study"]["policy"], "majority-vote");
    assert_eq!(data["guideline"]["key"], "dr-screening");
    let text = data["guideline"]["text"].as_str().expect("guideline text");
    assert_eq!(
        data["guideline"]["sha256"],
        hex::encode(Sha256::digest(text.as_bytes()))
    );
    assert_eq!(data["guideline"]["fields"].as_array().map(Vec::len), Some(FIELDS.len()));
    let pseudonyms: Vec<&str> = data["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["pseudonym"].as_str().unwrap())
        .collect();
    assert_eq!(pseudonyms, ["Grader A", "Grader B", "Grader C", "Grader D"]);
    assert!(data["members"][0].get("username").is_none());

    let items = data["items"].as_array().expect("items");
    assert_eq!(items.len(), study.item_ids.len());
    let first = &items[0];
    assert_eq!(first["grades"].as_array().map(Vec::len), Some(3));
    assert_eq!(first["grades"][0]["grader"], "Grader B");
    assert_eq!(first["grades"][0]["answers"]["dr_severity"], "0");
    assert_eq!(first["messages"][0]["author"], "Grader A");
    assert_eq!(first["messages"][0]["body"], "agreed, no lesions");
    assert_eq!(first["resolutions"][0]["method"], "unanimous");
    assert_eq!(first["resolutions"][0]["current"], true);
    assert_eq!(first["metadata"]["site"], "Lyon");
    let reopened = &items[4];
    assert_eq!(reopened["status"], "grading");
    assert_eq!(reopened["round"], 1);
    assert_eq!(reopened["resolutions"].as_array().map(Vec::len), Some(1));
    assert_eq!(data["counts"]["items"], 7);
    assert_eq!(data["counts"]["items_by_status"]["resolved"], 3);

    let all_text = String::from_utf8(files.values().flatten().copied().collect()).expect("UTF-8");
    for username in ["\"ann\"", ",ann,", "\"ben\""] {
        assert!(
            !all_text.contains(username),
            "{username} appears in a pseudonymous export"
        );
    }
    let named = export(&app, "study", true, 0);
    let grades = read_csv(&named["grades.csv"]);
    assert_eq!(grades[0]["grader"], "ann");
    assert_eq!(
        provenance(&named["provenance.json"])["data"]["members"][1]["username"],
        "ann"
    );
}

#[test]
fn agreement_report_lists_statistics_and_heatmap() {
    let (app, _study, _lead) = graded_study(TestBackend::Sqlite);
    let files = export(&app, "study", false, 0);
    let markdown = String::from_utf8(files["agreement.md"].clone()).expect("UTF-8");
    assert!(
        markdown.contains("## Diabetic retinopathy severity (`dr_severity`, ordinal)"),
        "{markdown}"
    );
    assert!(markdown.contains("| fleiss_kappa_generalized |"), "{markdown}");
    assert!(
        markdown.contains("6 items with at least one round-0 grade, 3 raters"),
        "{markdown}"
    );
    assert!(markdown.contains("| Grader B |"), "{markdown}");
    let html = String::from_utf8(files["agreement.html"].clone()).expect("UTF-8");
    assert!(html.contains("<svg"), "the kappa heatmap is embedded");
    assert!(html.contains("id=\"field-dr_severity\""));
}

#[test]
fn zip_download_for_leads_only() {
    let (app, _study, _lead) = graded_study(TestBackend::Sqlite);
    let lead = app.login("lead", PASSWORD);
    let response = app
        .client
        .get(app.url("/api/v1/projects/study/export.zip"))
        .bearer_auth(&lead)
        .header("Accept-Encoding", "gzip")
        .send()
        .expect("GET request");
    assert_eq!(response.status(), 200);
    let encoding = response
        .headers()
        .get("content-encoding")
        .map(|value| value.to_str().unwrap_or("").to_string());
    assert_ne!(encoding.as_deref(), Some("gzip"), "the archive is not compressed twice");
    assert_eq!(response.headers()["content-type"], "application/zip");
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .expect("header")
        .to_string();
    assert!(disposition.contains("study-export.zip"), "{disposition}");
    let bytes = response.bytes().expect("body");

    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a zip archive");
    let mut files = BTreeMap::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).expect("entry");
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("read entry");
        files.insert(entry.name().to_string(), content);
    }
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "study-export/agreement.html",
            "study-export/agreement.md",
            "study-export/grades.csv",
            "study-export/provenance.json",
            "study-export/pseudolabels.csv",
            "study-export/reference.csv",
        ]
    );
    let document = provenance(&files["study-export/provenance.json"]);
    let digest = hex::encode(Sha256::digest(&files["study-export/reference.csv"]));
    assert_eq!(document["export"]["files"]["reference.csv"]["sha256"], digest);
    assert_eq!(document["export"]["real_names"], false);

    let grader = app.login("ann", PASSWORD);
    assert_eq!(app.get("/api/v1/projects/study/export.zip", &grader).status(), 403);
    let anonymous = app
        .client
        .get(app.url("/api/v1/projects/study/export.zip"))
        .send()
        .expect("request");
    assert_eq!(anonymous.status(), 401);

    let page = app.get("/studies/study", &lead).text().expect("dashboard");
    assert!(
        page.contains("/api/v1/projects/study/export.zip"),
        "leads see the download link"
    );
    let page = app.get("/studies/study", &grader).text().expect("dashboard");
    assert!(!page.contains("export.zip"), "graders do not");
}

#[test]
fn cli_exports_and_imports() {
    use clap::Parser;
    let (app, _study, lead) = graded_study(TestBackend::Sqlite);
    app.create_study("target", 7, 3, "majority-vote", lead);
    let out = app.database.dir.path().join("export-out");
    let data_dir = app.settings.data_dir.to_string_lossy().into_owned();
    let url = app.database.url.clone();
    let run = |args: &[&str]| {
        let mut argv = vec!["quorum", "--data-dir", &data_dir, "--database-url", &url];
        argv.extend_from_slice(args);
        quorum::cli::run(quorum::cli::Cli::try_parse_from(argv).expect("arguments parse"))
    };

    run(&[
        "export",
        "--project",
        "study",
        "--out",
        out.to_str().expect("path"),
        "--real-names",
    ])
    .expect("export command");
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .expect("output folder")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "agreement.html",
            "agreement.md",
            "grades.csv",
            "provenance.json",
            "pseudolabels.csv",
            "reference.csv"
        ]
    );

    let grades = out.join("grades.csv");
    run(&[
        "import",
        "grades",
        "--project",
        "target",
        grades.to_str().expect("path"),
        "--create-graders",
    ])
    .expect("import command");
    let imported = export(&app, "target", true, 0);
    let source = read_csv(&std::fs::read(&grades).expect("grades.csv"));
    let target_grades = read_csv(&imported["grades.csv"]);
    assert_eq!(target_grades.len(), source.len());
    for (a, b) in source.iter().zip(&target_grades) {
        for column in [
            "image",
            "grader",
            "round",
            "dr_severity",
            "comment",
            "time_spent_ms",
            "superseded",
        ] {
            assert_eq!(a[column], b[column], "{column}");
        }
    }

    let missing =
        run(&["export", "--project", "nope", "--out", out.to_str().expect("path")]).expect_err("unknown study");
    assert!(missing.to_string().contains("no study with slug \"nope\""), "{missing}");
}
