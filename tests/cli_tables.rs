//! Grade-table reading and the `agreement` and `aggregate` commands, called through the
//! library with output captured in memory.

use std::io::Write;
use std::path::Path;

use clap::Parser;
use quorum::cli::aggregate::{write_aggregate, AggregateArgs, Method};
use quorum::cli::agreement::{write_agreement, AgreementArgs, OutputFormat};
use quorum::tabular::{parse_grade_table, TableError, TableOptions};
use serde_json::Value;
use tempfile::NamedTempFile;

fn csv_file(contents: &[u8]) -> NamedTempFile {
    let mut file = NamedTempFile::new().expect("temporary file");
    file.write_all(contents).expect("write temporary file");
    file
}

fn agreement_args(path: &Path, format: OutputFormat) -> AgreementArgs {
    AgreementArgs { file: path.to_path_buf(), table: TableOptions::default(), format, bootstrap: None, seed: 1 }
}

fn aggregate_args(path: &Path, method: Method, format: OutputFormat) -> AggregateArgs {
    AggregateArgs { file: path.to_path_buf(), table: TableOptions::default(), method, iterations: None, format }
}

fn run_agreement(args: &AgreementArgs) -> String {
    let mut out = Vec::new();
    write_agreement(args, &mut out).expect("agreement succeeds");
    String::from_utf8(out).expect("UTF-8 output")
}

fn run_aggregate(args: &AggregateArgs) -> String {
    let mut out = Vec::new();
    write_aggregate(args, &mut out).expect("aggregate succeeds");
    String::from_utf8(out).expect("UTF-8 output")
}

fn declared(categories: &[&str]) -> TableOptions {
    TableOptions { categories: Some(categories.iter().map(|c| c.to_string()).collect()), ..TableOptions::default() }
}

/// Writes the fleiss1971_diagnoses reference case as a long CSV.
fn fleiss_1971_csv() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/agreement-vectors.json");
    let document: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("reference file")).unwrap();
    let case = document["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|case| case["id"] == "fleiss1971_diagnoses")
        .expect("fleiss1971_diagnoses case");

    let mut csv = String::from("item,rater,value\n");
    for (item, row) in case["ratings"].as_array().unwrap().iter().enumerate() {
        for (rater, value) in row.as_array().unwrap().iter().enumerate() {
            if let Some(value) = value.as_i64() {
                csv.push_str(&format!("subject{},grader{},{value}\n", item + 1, rater + 1));
            }
        }
    }
    csv
}

#[test]
fn agreement_json_matches_fleiss_1971() {
    let file = csv_file(fleiss_1971_csv().as_bytes());
    let output = run_agreement(&agreement_args(file.path(), OutputFormat::Json));
    let json: Value = serde_json::from_str(&output).expect("JSON output");

    let kappa = json["fleiss_kappa"].as_f64().expect("fleiss_kappa is a number");
    assert!((kappa - 0.43024452006014074).abs() < 1e-9, "fleiss_kappa = {kappa}");
    assert_eq!(json["n_items"], 30);
    assert_eq!(json["n_raters"], 6);
    assert_eq!(json["categories"], serde_json::json!(["1", "2", "3", "4", "5"]));
    assert!(json.get("ci").is_none(), "no ci without --bootstrap");
}

#[test]
fn agreement_json_has_one_key_per_metric() {
    let file = csv_file(fleiss_1971_csv().as_bytes());
    let json: Value = serde_json::from_str(&run_agreement(&agreement_args(file.path(), OutputFormat::Json))).unwrap();
    let object = json.as_object().unwrap();
    let undefined = json["undefined"].as_object().unwrap();

    for (key, value) in object {
        match key.as_str() {
            "n_items" | "n_raters" | "categories" | "undefined" => {}
            metric => assert!(
                value.is_number() || (value.is_null() && undefined.contains_key(metric)),
                "{metric} = {value} must be a number, or null with a reason in undefined"
            ),
        }
    }
    for metric in undefined.keys() {
        assert!(object[metric].is_null(), "undefined metric {metric} must be null at top level");
    }
    assert!(object.contains_key("percent_agreement"));
    assert!(object.contains_key("krippendorff_alpha_nominal"));
}

#[test]
fn agreement_one_category_gives_null_kappas() {
    let file = csv_file(b"item,rater,value\na,r1,2\na,r2,2\nb,r1,2\nb,r2,2\nc,r1,2\nc,r2,2\n");
    let mut args = agreement_args(file.path(), OutputFormat::Json);
    args.table = declared(&["1", "2", "3"]);
    let json: Value = serde_json::from_str(&run_agreement(&args)).unwrap();

    for metric in ["cohen_kappa", "fleiss_kappa", "krippendorff_alpha_nominal"] {
        assert!(json[metric].is_null(), "{metric} should be null, got {}", json[metric]);
        let reason = json["undefined"][metric].as_str().unwrap_or_default();
        assert!(!reason.is_empty(), "{metric} needs a reason in undefined");
    }
}

#[test]
fn agreement_bootstrap_adds_intervals() {
    let file = csv_file(fleiss_1971_csv().as_bytes());
    let mut args = agreement_args(file.path(), OutputFormat::Json);
    args.bootstrap = Some(200);
    args.seed = 7;
    let json: Value = serde_json::from_str(&run_agreement(&args)).unwrap();

    let interval = json["ci"]["fleiss_kappa"].as_array().expect("fleiss_kappa interval");
    let (lower, upper) = (interval[0].as_f64().unwrap(), interval[1].as_f64().unwrap());
    assert!(lower < upper, "interval [{lower}, {upper}]");
    assert!(lower < 0.43, "interval [{lower}, {upper}] should contain the estimate 0.4302");
    assert!(upper > 0.43, "interval [{lower}, {upper}] should contain the estimate 0.4302");
    assert_eq!(run_agreement(&args), run_agreement(&args), "same seed, same output");
}

#[test]
fn agreement_table_lists_values_and_reasons() {
    let file = csv_file(fleiss_1971_csv().as_bytes());
    let output = run_agreement(&agreement_args(file.path(), OutputFormat::Table));

    assert!(output.contains("30 items, 6 raters"), "{output}");
    let fleiss = output.lines().find(|line| line.starts_with("fleiss_kappa ")).expect("fleiss_kappa row");
    assert!(fleiss.contains("0.4302"), "{fleiss}");
    let cohen = output.lines().find(|line| line.starts_with("cohen_kappa ")).expect("cohen_kappa row");
    assert!(cohen.contains("undefined:"), "{cohen}");
}

#[test]
fn agreement_options_parse_from_command_line() {
    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: AgreementArgs,
    }
    let command =
        Command::try_parse_from(["agreement", "grades.csv", "--wide", "--categories", "0,1,2", "--format", "json"])
            .expect("valid arguments");
    assert!(command.args.table.wide);
    assert_eq!(command.args.table.categories, Some(vec!["0".to_string(), "1".to_string(), "2".to_string()]));
    assert_eq!(command.args.format, OutputFormat::Json);

    assert!(Command::try_parse_from(["agreement", "grades.csv", "--wide", "--item", "case"]).is_err());
    assert!(Command::try_parse_from(["agreement", "grades.csv", "--seed", "3"]).is_err(), "--seed needs --bootstrap");
}

#[test]
fn table_with_bom_and_semicolons() {
    let table =
        parse_grade_table(b"\xEF\xBB\xBFitem;rater;value\nx1;ann;1\nx1;bob;2\nx2;ann;2\n", &TableOptions::default())
            .expect("valid table");

    assert_eq!(table.item_ids, ["x1", "x2"]);
    assert_eq!(table.rater_ids, ["ann", "bob"]);
    assert_eq!(table.matrix.get(0, 0), Some(0));
    assert_eq!(table.matrix.get(0, 1), Some(1));
    assert_eq!(table.matrix.get(1, 1), None);
}

#[test]
fn table_with_tabs_and_padding() {
    let table = parse_grade_table(b"item\trater\tvalue\n x1 \t ann \t 3 \nx1\tbob\t4\n", &TableOptions::default())
        .expect("valid table");

    assert_eq!(table.item_ids, ["x1"]);
    assert_eq!(table.rater_ids, ["ann", "bob"]);
    let labels: Vec<&str> = table.matrix.categories().iter().map(|c| c.label.as_str()).collect();
    assert_eq!(labels, ["3", "4"]);
    assert_eq!(table.matrix.categories()[1].value, 4.0);
}

#[test]
fn wide_table_with_empty_cells() {
    let options = TableOptions { wide: true, ..TableOptions::default() };
    let table = parse_grade_table(b"image,ann,bob,cid\nimg1,0,,2\nimg2,,1,\nimg3,,,\n", &options).expect("valid table");

    assert_eq!(table.item_ids, ["img1", "img2", "img3"]);
    assert_eq!(table.rater_ids, ["ann", "bob", "cid"]);
    assert_eq!(table.matrix.row(0), [Some(0), None, Some(2)]);
    assert_eq!(table.matrix.row(1), [None, Some(1), None]);
    assert_eq!(table.matrix.row(2), [None, None, None]);
}

#[test]
fn numeric_categories_sort_by_value() {
    let table =
        parse_grade_table(b"item,rater,value\na,r,10\nb,r,9\nc,r,1.0\nd,r,1\n", &TableOptions::default()).unwrap();
    let labels: Vec<&str> = table.matrix.categories().iter().map(|c| c.label.as_str()).collect();

    assert_eq!(labels, ["1.0", "9", "10"]);
    assert_eq!(table.matrix.get(3, 0), Some(0), "1 and 1.0 are one category");
}

#[test]
fn text_categories_keep_first_appearance() {
    let table =
        parse_grade_table(b"item,rater,value\na,r,severe\nb,r,mild\nc,r,none\nd,r,mild\n", &TableOptions::default())
            .unwrap();
    let labels: Vec<&str> = table.matrix.categories().iter().map(|c| c.label.as_str()).collect();
    let values: Vec<f64> = table.matrix.categories().iter().map(|c| c.value).collect();

    assert_eq!(labels, ["severe", "mild", "none"]);
    assert_eq!(values, [0.0, 1.0, 2.0]);
}

#[test]
fn undeclared_value_names_line_and_column() {
    let error = parse_grade_table(
        b"item,rater,grade\na,r1,0\na,r2,1\nb,r1,7\n",
        &TableOptions { value: "grade".to_string(), ..declared(&["0", "1", "2"]) },
    )
    .unwrap_err();

    assert!(matches!(error, TableError::UnknownCategory { line: 4, .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("line 4"), "{message}");
    assert!(message.contains("column \"grade\""), "{message}");
    assert!(message.contains("\"7\""), "{message}");
    assert!(message.contains("0, 1, 2"), "{message}");
}

#[test]
fn command_error_names_line_and_file() {
    let file = csv_file(b"item,rater,value\na,r1,0\nb,r1,x\n");
    let mut args = agreement_args(file.path(), OutputFormat::Json);
    args.table = declared(&["0", "1"]);
    let error = write_agreement(&args, &mut Vec::new()).unwrap_err();
    let message = format!("{error:#}");

    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains(&file.path().display().to_string()), "{message}");
}

#[test]
fn duplicate_rating_names_both_lines() {
    let error =
        parse_grade_table(b"item,rater,value\na,r1,0\nb,r1,1\na,r2,1\na,r1,1\n", &TableOptions::default()).unwrap_err();

    assert_eq!(
        error,
        TableError::DuplicateRating { item: "a".to_string(), rater: "r1".to_string(), first_line: 2, second_line: 5 }
    );
    let message = error.to_string();
    assert!(message.contains("line 2 and line 5"), "{message}");
}

#[test]
fn non_utf8_names_line() {
    let error = parse_grade_table(b"item,rater,value\na,r1,0\nb,r\xE9,1\n", &TableOptions::default()).unwrap_err();

    assert_eq!(error, TableError::NotUtf8 { line: 3 });
    assert!(error.to_string().contains("line 3"));
}

#[test]
fn quoted_field_keeps_comma_and_newline() {
    let csv = b"item,rater,value\n\"scan 1, left\neye\",r1,0\nscan2,r1,1\nscan3,r1,\n";
    let table = parse_grade_table(csv, &TableOptions::default()).expect("valid table");

    assert_eq!(table.item_ids, ["scan 1, left\neye", "scan2", "scan3"]);
    assert_eq!(table.matrix.get(2, 0), None, "an empty value is no rating");

    let error = parse_grade_table(b"item,rater,value\n\"a,\nb\",r1,0\nc,r1\n", &TableOptions::default()).unwrap_err();
    assert_eq!(
        error,
        TableError::FieldCount { line: 4, found: 2, expected: 3 },
        "line counts include the quoted newline"
    );
}

#[test]
fn missing_column_lists_header() {
    let error = parse_grade_table(b"case,reader,grade\na,r1,0\n", &TableOptions::default()).unwrap_err();
    let message = error.to_string();

    assert!(message.contains("\"item\""), "{message}");
    assert!(message.contains("case"), "{message}");
}

#[test]
fn empty_item_id_is_rejected() {
    let error = parse_grade_table(b"item,rater,value\n,r1,0\n", &TableOptions::default()).unwrap_err();

    assert_eq!(error, TableError::EmptyId { line: 2, column: "item".to_string(), role: "item" });
}

/// Three graders, the third always one grade higher than the other two.
const GRADES: &[u8] = b"item,rater,value\n\
z9,g1,0\nz9,g2,0\nz9,g3,1\n\
a1,g1,1\na1,g2,1\na1,g3,2\n\
m5,g1,2\nm5,g2,2\nm5,g3,3\n\
b2,g1,0\nb2,g2,0\nb2,g3,1\n\
q0,g1,1\nq0,g2,1\nq0,g3,2\n";

#[test]
fn aggregate_majority_json_keeps_input_order() {
    let file = csv_file(GRADES);
    let output = run_aggregate(&aggregate_args(file.path(), Method::Majority, OutputFormat::Json));
    let json: Value = serde_json::from_str(&output).unwrap();

    assert_eq!(json["labels"]["z9"], "0");
    assert_eq!(json["labels"]["m5"], "2");
    assert_eq!(json["rater_agreement"]["g3"], 0.0);
    let positions: Vec<usize> = ["\"z9\"", "\"a1\"", "\"m5\"", "\"b2\"", "\"q0\""]
        .iter()
        .map(|key| output.find(key).expect("item key present"))
        .collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "items out of input order: {positions:?}");
}

#[test]
fn aggregate_dawid_skene_json_fields() {
    let file = csv_file(GRADES);
    let json: Value =
        serde_json::from_str(&run_aggregate(&aggregate_args(file.path(), Method::DawidSkene, OutputFormat::Json)))
            .unwrap();

    assert_eq!(json["method"], "dawid-skene");
    assert_eq!(json["categories_modeled"], serde_json::json!(["0", "1", "2", "3"]));
    let prior_sum: f64 = json["priors"].as_object().unwrap().values().map(|p| p.as_f64().unwrap()).sum();
    assert!((prior_sum - 1.0).abs() < 1e-9, "priors sum to {prior_sum}");
    for rater in ["g1", "g2", "g3"] {
        assert!(json["rater_accuracy"][rater].is_number(), "accuracy of {rater}");
        let matrix = json["confusion"][rater].as_array().expect("confusion matrix");
        assert_eq!(matrix.len(), 4);
        assert!(matrix.iter().all(|row| row.as_array().unwrap().len() == 4));
    }
    assert!(json["iterations_run"].as_u64().unwrap() >= 1);
}

#[test]
fn aggregate_fixed_iterations() {
    let file = csv_file(GRADES);
    let mut args = aggregate_args(file.path(), Method::DawidSkene, OutputFormat::Json);
    args.iterations = Some(7);
    let json: Value = serde_json::from_str(&run_aggregate(&args)).unwrap();

    assert_eq!(json["iterations_run"], 7);
    assert_eq!(json["score_history"].as_array().unwrap().len(), 7);
}

#[test]
fn aggregate_iterations_need_dawid_skene() {
    let file = csv_file(GRADES);
    let mut args = aggregate_args(file.path(), Method::Majority, OutputFormat::Json);
    args.iterations = Some(3);
    let error = write_aggregate(&args, &mut Vec::new()).unwrap_err();

    assert!(error.to_string().contains("--iterations"), "{error}");
}

#[test]
fn aggregate_text_outputs() {
    let file = csv_file(GRADES);
    let majority = run_aggregate(&aggregate_args(file.path(), Method::Majority, OutputFormat::Table));
    assert!(majority.contains("suggested label"), "{majority}");
    assert!(majority.lines().any(|line| line.split_whitespace().collect::<Vec<_>>() == ["m5", "2"]), "{majority}");

    let dawid_skene = run_aggregate(&aggregate_args(file.path(), Method::DawidSkene, OutputFormat::Table));
    assert!(dawid_skene.contains("Confusion matrix of rater g3"), "{dawid_skene}");
    assert!(dawid_skene.contains("Estimated accuracy of each rater"), "{dawid_skene}");
}
