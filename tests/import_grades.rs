//! Grade and resolution import: files in the shapes people bring, the study's policy applied
//! to imported grades, problems reported by line and column, and nothing stored on error.

mod common;

use std::collections::BTreeMap;

use common::{TestApp, TestBackend, TestStudy};
use quorum::export::{export_study, ExportError, ExportOptions, ExportSink, FileBody};
use quorum::import::grades::{import_grade_file, GradeImportReport};
use quorum::import::resolutions::import_resolution_file;
use quorum::import::{Encoding, ImportError};
use quorum::store::models::ProjectRow;
use serde_json::json;

const PASSWORD: &str = "import test password";

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

/// Builds the answers of a gradable image with this DR severity and no lesions.
fn gradable(dr: &str) -> serde_json::Value {
    json!({
        "gradability": "gradable", "dr_severity": dr, "dme": "absent", "microaneurysms": "no",
        "haemorrhages": "no", "hard_exudates": "no", "cotton_wool_spots": "no", "new_vessels": "no",
    })
}

fn ungradable() -> serde_json::Value {
    json!({ "gradability": "ungradable" })
}

/// One row of a grade file.
struct GradeRow {
    image: String,
    grader: String,
    answers: serde_json::Value,
    comment: String,
    time_spent_ms: i64,
}

fn row(image: &str, grader: &str, answers: serde_json::Value, comment: &str, time_spent_ms: i64) -> GradeRow {
    GradeRow {
        image: image.into(),
        grader: grader.into(),
        answers,
        comment: comment.into(),
        time_spent_ms,
    }
}

/// Writes a grade file with a UTF-8 byte-order mark and `;` between cells.
fn grade_file(rows: &[GradeRow]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let mut header = vec!["image", "grader"];
    header.extend(FIELDS);
    header.extend(["comment", "time_spent_ms"]);
    writer.write_record(&header).expect("header");
    for row in rows {
        let mut record = vec![row.image.clone(), row.grader.clone()];
        for field in FIELDS {
            record.push(
                row.answers
                    .get(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string(),
            );
        }
        record.push(row.comment.clone());
        record.push(row.time_spent_ms.to_string());
        writer.write_record(&record).expect("row");
    }
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(writer.into_inner().expect("flush"));
    bytes
}

/// Starts a server with a lead and three graders (ann, ben, cat) and a majority-vote study of
/// five items with three graders each and no senior.
fn setup(backend: TestBackend) -> (TestApp, TestStudy) {
    let app = TestApp::spawn(backend);
    let lead = app.create_user("lead", PASSWORD, false);
    let study = app.create_study("study", 5, 3, "majority-vote", lead);
    for name in ["ann", "ben", "cat"] {
        let id = app.create_user(name, PASSWORD, false);
        app.add_member(&study, id, "grader");
    }
    (app, study)
}

fn project(app: &TestApp, slug: &str) -> ProjectRow {
    let mut conn = app.db.conn().expect("connection");
    quorum::store::projects::find_by_slug(&mut conn, slug)
        .expect("query")
        .expect("study exists")
}

fn import(
    app: &TestApp,
    slug: &str,
    bytes: &[u8],
    encoding: Encoding,
    create_graders: bool,
) -> Result<GradeImportReport, ImportError> {
    let project = project(app, slug);
    let mut conn = app.db.conn().expect("connection");
    import_grade_file(&mut conn, &project, bytes, encoding, create_graders)
}

/// Collects exported files in memory.
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

fn export(app: &TestApp, slug: &str, real_names: bool) -> BTreeMap<String, Vec<u8>> {
    let project = project(app, slug);
    let mut conn = app.db.conn().expect("connection");
    let mut sink = MemorySink::default();
    let options = ExportOptions {
        real_names,
        exported_at: 1_800_000_000_000,
    };
    export_study(&mut conn, project, &options, &mut sink).expect("export");
    sink.files
}

/// Reads a CSV file into rows of cells keyed by header name.
fn read_csv(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(bytes);
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
    reader
        .records()
        .map(|record| {
            let record = record.expect("record");
            header.iter().cloned().zip(record.iter().map(str::to_string)).collect()
        })
        .collect()
}

fn image(i: usize) -> String {
    format!("image-{i:05}.jpg")
}

/// Builds rows that resolve item 0 unanimously (DR 0) and item 1 by majority (DR 2), leave
/// item 2 without a majority (no senior, so the policy requests one more grader), and find
/// item 3 ungradable by all three. Item 4 gets no grade.
fn policy_rows() -> Vec<GradeRow> {
    vec![
        row(&image(0), "ann", gradable("0"), "", 1200),
        row(&image(0), "ben", gradable("0"), "clear; sharp", 900),
        row(&image(0), "cat", gradable("0"), "", 1500),
        row(&image(1), "ann", gradable("2"), "two haemorrhages,\nnasal", 2100),
        row(&image(1), "ben", gradable("2"), "", 1800),
        row(&image(1), "cat", gradable("3"), "\"venous beading?\"", 2500),
        row(&image(2), "ann", gradable("1"), "", 700),
        row(&image(2), "ben", gradable("2"), "", 800),
        row(&image(2), "cat", gradable("4"), "", 900),
        row(&image(3), "ann", ungradable(), "", 300),
        row(&image(3), "ben", ungradable(), "", 400),
        row(&image(3), "cat", ungradable(), "media opacity", 500),
    ]
}

fn imported_grades_resolve_by_policy(backend: TestBackend) {
    let (app, _study) = setup(backend);
    let rows = policy_rows();
    let report = import(&app, "study", &grade_file(&rows), Encoding::Utf8, false).expect("import succeeds");
    assert_eq!(report.grades, 12);
    assert_eq!(report.corrections, 0);
    assert_eq!(report.items_by_status.get("resolved"), Some(&3));
    assert_eq!(report.items_by_status.get("grading"), Some(&1));
    assert_eq!(app.grade_count(), 12);

    let files = export(&app, "study", true);
    let grades = read_csv(&files["grades.csv"]);
    assert_eq!(grades.len(), rows.len());
    for (exported, imported) in grades.iter().zip(&rows) {
        assert_eq!(exported["image"], imported.image);
        assert_eq!(exported["grader"], imported.grader);
        assert_eq!(exported["round"], "0");
        for field in FIELDS {
            let expected = imported.answers.get(field).and_then(|v| v.as_str()).unwrap_or("");
            assert_eq!(
                exported[field], expected,
                "{field} of {} by {}",
                imported.image, imported.grader
            );
        }
        assert_eq!(exported["comment"], imported.comment);
        assert_eq!(exported["time_spent_ms"], imported.time_spent_ms.to_string());
        assert_eq!(exported["superseded"], "FALSE");
        assert_eq!(exported["source"], "import");
    }

    let reference = read_csv(&files["reference.csv"]);
    let by_image: BTreeMap<&str, &BTreeMap<String, String>> =
        reference.iter().map(|r| (r["image"].as_str(), r)).collect();
    assert_eq!(reference.len(), 5);
    let unanimous = by_image[image(0).as_str()];
    assert_eq!(unanimous["dr_severity"], "0");
    assert_eq!(unanimous["gradability"], "gradable");
    assert_eq!(unanimous["method"], "unanimous");
    assert_eq!(unanimous["status"], "resolved");
    assert_eq!(unanimous["n_grades"], "3");
    assert_eq!(unanimous["rounds_used"], "1");

    let majority = by_image[image(1).as_str()];
    assert_eq!(majority["dr_severity"], "2");
    assert_eq!(majority["method"], "majority");

    let open = by_image[image(2).as_str()];
    assert_eq!(open["status"], "grading");
    assert_eq!(open["n_grades"], "3");
    for column in FIELDS.iter().copied().chain(["method", "rounds_used", "resolved_at"]) {
        assert_eq!(open[column], "", "{column} of an item without a majority");
    }

    let ungradable = by_image[image(3).as_str()];
    assert_eq!(ungradable["gradability"], "ungradable");
    assert_eq!(ungradable["dr_severity"], "");
    assert_eq!(ungradable["method"], "unanimous");

    let pending = by_image[image(4).as_str()];
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["n_grades"], "0");
    assert_eq!(pending["gradability"], "");
}

#[test]
fn imported_grades_resolve_by_policy_sqlite() {
    imported_grades_resolve_by_policy(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(
    not(quorum_postgres_tests),
    ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test"
)]
fn imported_grades_resolve_by_policy_postgres() {
    imported_grades_resolve_by_policy(TestBackend::Postgres);
}

fn bad_value_rejects_whole_file(backend: TestBackend) {
    let (app, _study) = setup(backend);
    let mut rows = policy_rows();
    rows.truncate(7);
    // Line 1 is the header and the fourth row's comment spans lines 5 and 6, so the fifth
    // row starts on line 7.
    rows[4].answers["dr_severity"] = json!("7");
    let before = app.grade_count();
    let error =
        import(&app, "study", &grade_file(&rows), Encoding::Utf8, false).expect_err("a bad value rejects the file");
    let message = error.to_string();
    assert!(message.contains("line 7, column dr_severity"), "{message}");
    assert!(message.contains("allowed: 0, 1, 2, 3, 4"), "{message}");
    assert_eq!(error.problems().len(), 1, "{message}");
    assert_eq!(error.problems()[0].line, 7);
    assert_eq!(app.grade_count(), before, "a rejected file stores no grade");

    let mut conn = app.db.conn().expect("connection");
    let pending = quorum::store::projects::status_counts(&mut conn, project(&app, "study").id).expect("counts");
    assert!(
        pending
            .iter()
            .all(|(status, count)| status.as_str() == "pending" || *count == 0),
        "{pending:?}"
    );
}

#[test]
fn bad_value_rejects_whole_file_sqlite() {
    bad_value_rejects_whole_file(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(
    not(quorum_postgres_tests),
    ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test"
)]
fn bad_value_rejects_whole_file_postgres() {
    bad_value_rejects_whole_file(TestBackend::Postgres);
}

#[test]
fn non_utf8_rejected_unless_latin1() {
    let (app, _study) = setup(TestBackend::Sqlite);
    let mut text = b"image,grader,gradability,comment\n".to_vec();
    text.extend_from_slice(format!("{},ann,ungradable,ok\n", image(0)).as_bytes());
    text.extend_from_slice(format!("{},ben,ungradable,\"J", image(0)).as_bytes());
    text.push(0xF6);
    text.extend_from_slice(b"rg, \"\"second\"\" look\nnext line\"\n");

    let error = import(&app, "study", &text, Encoding::Utf8, false).expect_err("Latin-1 bytes are not UTF-8");
    let message = error.to_string();
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("--encoding latin1"), "{message}");
    assert_eq!(app.grade_count(), 0);

    let report = import(&app, "study", &text, Encoding::Latin1, false).expect("Latin-1 import");
    assert_eq!(report.grades, 2);
    let files = export(&app, "study", true);
    let grades = read_csv(&files["grades.csv"]);
    assert_eq!(grades[1]["comment"], "Jörg, \"second\" look\nnext line");
    assert_eq!(grades[1]["grader"], "ben");
}

#[test]
fn unknown_names_report_line_and_column() {
    let (app, _study) = setup(TestBackend::Sqlite);
    let rows = vec![
        row(&image(0), "ann", gradable("0"), "", 0),
        row("missing.jpg", "ben", gradable("0"), "", 0),
        row(&image(0), "zoe", gradable("0"), "", 0),
        row(&image(0), "Grader B", gradable("0"), "", 0),
    ];
    let error = import(&app, "study", &grade_file(&rows), Encoding::Utf8, false).expect_err("unknown names");
    let problems: Vec<String> = error.problems().iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].starts_with("line 3, column image:"), "{problems:?}");
    assert!(problems[0].contains("missing.jpg"), "{problems:?}");
    assert!(problems[1].starts_with("line 4, column grader:"), "{problems:?}");
    assert!(problems[1].contains("--create-graders"), "{problems:?}");
    assert!(problems[2].starts_with("line 5, column grader:"), "{problems:?}");
    assert!(problems[2].contains("--real-names"), "{problems:?}");
    assert_eq!(app.grade_count(), 0);
}

#[test]
fn unknown_column_and_missing_grader_column() {
    let (app, _study) = setup(TestBackend::Sqlite);
    let file = format!("image,dr_severty,gradability\n{},2,gradable\n", image(0));
    let error = import(&app, "study", file.as_bytes(), Encoding::Utf8, false).expect_err("bad header");
    let problems: Vec<String> = error.problems().iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("line 1, column dr_severty:"), "{problems:?}");
    assert!(problems[1].contains("no grader column"), "{problems:?}");
}

#[test]
fn create_graders_adds_accounts_and_members() {
    let (app, _study) = setup(TestBackend::Sqlite);
    let outsider = app.create_user("otto", PASSWORD, false);
    let rows = vec![
        row(&image(0), "ann", gradable("1"), "", 0),
        row(&image(0), "newcomer", gradable("1"), "", 0),
        row(&image(0), "otto", gradable("1"), "", 0),
    ];
    let error = import(&app, "study", &grade_file(&rows), Encoding::Utf8, false).expect_err("unknown graders");
    assert_eq!(error.problems().len(), 2);

    let report = import(&app, "study", &grade_file(&rows), Encoding::Utf8, true).expect("import with --create-graders");
    assert_eq!(report.created_users, ["newcomer"]);
    assert_eq!(report.added_graders, ["newcomer", "otto"]);
    assert_eq!(report.items_by_status.get("resolved"), Some(&1));

    let mut conn = app.db.conn().expect("connection");
    let study = project(&app, "study");
    let newcomer = quorum::store::users::find_by_username(&mut conn, "newcomer")
        .expect("query")
        .expect("account created");
    assert!(!quorum::auth::verify_password("", &newcomer.password_hash));
    let role = quorum::store::projects::role_of(&mut conn, study.id, newcomer.id).expect("query");
    assert_eq!(role.map(|r| r.as_str()), Some("grader"));
    let role = quorum::store::projects::role_of(&mut conn, study.id, outsider).expect("query");
    assert_eq!(role.map(|r| r.as_str()), Some("grader"));
}

#[test]
fn grades_after_round_closed_reject_file() {
    let (app, _study) = setup(TestBackend::Sqlite);
    app.create_user("dan", PASSWORD, false);
    let mut rows = policy_rows();
    rows.truncate(3);
    rows.push(row(&image(0), "dan", gradable("0"), "", 0));
    let error = import(&app, "study", &grade_file(&rows), Encoding::Utf8, true).expect_err("the round is closed");
    let message = error.to_string();
    assert!(message.contains("line 5, column image"), "{message}");
    assert!(message.contains("resolved"), "{message}");
    assert_eq!(
        app.grade_count(),
        0,
        "the three grades before the bad row are rolled back"
    );
}

#[test]
fn repeated_grade_needs_superseded_mark() {
    let (app, _study) = setup(TestBackend::Sqlite);
    let file = format!(
        "image,grader,gradability,dr_severity,dme,microaneurysms,haemorrhages,hard_exudates,cotton_wool_spots,new_vessels,superseded\n\
         {0},ann,gradable,1,absent,no,no,no,no,no,false\n\
         {0},ann,gradable,2,absent,no,no,no,no,no,false\n",
        image(0)
    );
    let error = import(&app, "study", file.as_bytes(), Encoding::Utf8, false).expect_err("a repeated grade");
    assert!(error.to_string().contains("line 3, column grader"), "{error}");

    let corrected = file.replacen(",false\n", ",true\n", 1);
    let report = import(&app, "study", corrected.as_bytes(), Encoding::Utf8, false).expect("a correction");
    assert_eq!(report.grades, 2);
    assert_eq!(report.corrections, 1);
    let grades = read_csv(&export(&app, "study", true)["grades.csv"]);
    assert_eq!(grades[0]["superseded"], "TRUE");
    assert_eq!(grades[1]["superseded"], "FALSE");
    assert_eq!(grades[1]["dr_severity"], "2");
}

#[test]
fn tab_delimited_file_imports() {
    let (app, _study) = setup(TestBackend::Sqlite);
    let file = format!("image\tgrader\tgradability\n{}\tann\tungradable\n", image(3));
    let report = import(&app, "study", file.as_bytes(), Encoding::Utf8, false).expect("tab-separated import");
    assert_eq!(report.grades, 1);
    assert_eq!(report.items_by_status.get("grading"), Some(&1));
}

#[test]
fn resolutions_import_resolves_items() {
    let (app, _study) = setup(TestBackend::Sqlite);
    let rows = policy_rows();
    import(&app, "study", &grade_file(&rows[..9]), Encoding::Utf8, false).expect("grades");
    let study = project(&app, "study");

    let bad = format!(
        "image;gradability;dr_severity;dme;microaneurysms;haemorrhages;hard_exudates;cotton_wool_spots;new_vessels;reason\n\
         {};gradable;2;absent;no;no;no;no;no;panel\n\
         {};gradable;9;absent;no;no;no;no;no;panel\n",
        image(2),
        image(4)
    );
    let mut conn = app.db.conn().expect("connection");
    let error =
        import_resolution_file(&mut conn, &study, bad.as_bytes(), Encoding::Utf8, "imported").expect_err("bad value");
    assert!(error.to_string().contains("line 3, column dr_severity"), "{error}");

    let good = bad.replace(";9;", ";3;");
    let report =
        import_resolution_file(&mut conn, &study, good.as_bytes(), Encoding::Utf8, "imported").expect("resolutions");
    assert_eq!(report.resolutions, 2);
    assert_eq!(report.replaced, 0);
    drop(conn);

    let reference = read_csv(&export(&app, "study", false)["reference.csv"]);
    let open = reference.iter().find(|r| r["image"] == image(2)).expect("item 2");
    assert_eq!(open["status"], "resolved");
    assert_eq!(open["method"], "imported");
    assert_eq!(open["dr_severity"], "2");
    assert_eq!(open["rounds_used"], "0");
    let pending = reference.iter().find(|r| r["image"] == image(4)).expect("item 4");
    assert_eq!(pending["dr_severity"], "3");
    assert_eq!(pending["n_grades"], "0");

    // A second import of the same label supersedes the first.
    let mut conn = app.db.conn().expect("connection");
    let again = format!("image,gradability\n{},ungradable\n", image(4));
    let report =
        import_resolution_file(&mut conn, &study, again.as_bytes(), Encoding::Utf8, "imported").expect("again");
    assert_eq!(report.replaced, 1);
}

/// Grades made in the browser, exported with real names, imported into a second study with
/// the same guideline and policy, and exported again give the same grades.
#[test]
fn exported_grades_round_trip() {
    let app = TestApp::spawn(TestBackend::Sqlite);
    let lead = app.create_user("lead", PASSWORD, false);
    let source = app.create_study("source", 3, 2, "adjudication", lead);
    app.create_study("target", 3, 2, "adjudication", lead);
    for name in ["alice", "bob"] {
        let id = app.create_user(name, PASSWORD, false);
        app.add_member(&source, id, "grader");
    }
    let alice = app.login("alice", PASSWORD);
    let bob = app.login("bob", PASSWORD);
    let name_of = |item_id: i64| {
        image(
            source
                .item_ids
                .iter()
                .position(|id| *id == item_id)
                .expect("item of the study"),
        )
    };

    // Item 0: agreement. Item 1: disagreement, then agreement in adjudication. Item 2: alice
    // corrects her grade before bob grades.
    let first_answers = |image: &str, grader: &str| match (image, grader) {
        ("image-00001.jpg", "bob") => gradable("3"),
        ("image-00002.jpg", "alice") => gradable("4"),
        ("image-00001.jpg", _) => gradable("1"),
        _ => gradable("2"),
    };
    for (token, grader) in [(&alice, "alice"), (&bob, "bob")] {
        for _ in 0..3 {
            let next = app.get("/api/v1/projects/source/next", token);
            assert_eq!(next.status(), 200);
            let next: serde_json::Value = next.json().expect("json");
            let item_id = next["item_id"].as_i64().expect("item id");
            let image = name_of(item_id);
            let body = json!({
                "answers": first_answers(&image, grader),
                "comment": format!("{grader} on {image}, first look;\n\"quoted\""),
                "time_spent_ms": 1000 + item_id,
            });
            let response = app.post_json(&format!("/api/v1/projects/source/items/{item_id}/grades"), token, &body);
            assert_eq!(response.status(), 201, "{}", response.text().unwrap_or_default());
            if grader == "alice" && image == "image-00002.jpg" {
                let correction = json!({ "answers": gradable("2"), "comment": "corrected", "time_spent_ms": 4000 });
                let response = app.post_json(
                    &format!("/api/v1/projects/source/items/{item_id}/grades"),
                    token,
                    &correction,
                );
                assert_eq!(response.status(), 201, "{}", response.text().unwrap_or_default());
            }
        }
    }
    for token in [&alice, &bob] {
        let body = json!({ "answers": gradable("2"), "comment": "after discussion", "time_spent_ms": 600 });
        let response = app.post_json(
            &format!("/api/v1/projects/source/items/{}/grades", source.item_ids[1]),
            token,
            &body,
        );
        assert_eq!(response.status(), 201, "{}", response.text().unwrap_or_default());
    }

    let exported = export(&app, "source", true);
    let source_grades = read_csv(&exported["grades.csv"]);
    assert_eq!(
        source_grades.len(),
        9,
        "six first grades, one correction, two adjudication grades"
    );
    assert!(source_grades.iter().any(|g| g["round"] == "1"));
    assert!(source_grades.iter().any(|g| g["superseded"] == "TRUE"));

    let report = import(&app, "target", &exported["grades.csv"], Encoding::Utf8, true).expect("round-trip import");
    assert_eq!(report.grades, 9);
    assert_eq!(report.corrections, 1);
    assert_eq!(report.added_graders, ["alice", "bob"]);

    let target_files = export(&app, "target", true);
    let target_grades = read_csv(&target_files["grades.csv"]);
    let comparable = |rows: &[BTreeMap<String, String>]| -> Vec<BTreeMap<String, String>> {
        rows.iter()
            .map(|row| {
                row.iter()
                    .filter(|(k, _)| *k != "created_at" && *k != "source")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .collect()
    };
    assert_eq!(comparable(&target_grades), comparable(&source_grades));

    let reference_columns = |bytes: &[u8]| -> Vec<Vec<String>> {
        read_csv(bytes)
            .iter()
            .map(|row| {
                let mut cells: Vec<String> = FIELDS.iter().map(|f| row[*f].clone()).collect();
                for column in ["image", "method", "n_grades", "rounds_used", "status"] {
                    cells.push(row[column].clone());
                }
                cells
            })
            .collect()
    };
    let source_reference = reference_columns(&exported["reference.csv"]);
    assert_eq!(reference_columns(&target_files["reference.csv"]), source_reference);
    assert_eq!(source_reference[1][FIELDS.len() + 1], "adjudication");
    assert_eq!(source_reference[1][FIELDS.len() + 3], "2", "two rounds were used");
}
