//! `quorum aggregate` reproduces the crowd-kit reference labels, priors and rater accuracies
//! when each reference case is written as a long CSV, the way a researcher would call it.

mod common;

use std::io::Write;

use common::reference::{cases, category_text, expected_labels};
use quorum::cli::aggregate::{write_aggregate, AggregateArgs, Method};
use quorum::cli::agreement::OutputFormat;
use quorum::tabular::TableOptions;
use serde_json::Value;

const TOLERANCE: f64 = 1e-6;

/// Runs the command on the case written as `item,rater,value` rows.
fn run(case: &Value, method: Method, iterations: Option<usize>) -> Value {
    let mut csv = String::from("item,rater,value\n");
    for (item, row) in case["ratings"].as_array().expect("ratings").iter().enumerate() {
        for (rater, cell) in row.as_array().expect("row").iter().enumerate() {
            if !cell.is_null() {
                csv += &format!("i{item},r{rater},{}\n", category_text(cell));
            }
        }
    }
    let mut file = tempfile::NamedTempFile::new().expect("temporary file");
    file.write_all(csv.as_bytes()).expect("write");
    let categories: Vec<String> = case["categories"].as_array().expect("categories").iter().map(category_text).collect();
    let args = AggregateArgs {
        file: file.path().to_path_buf(),
        table: TableOptions { categories: Some(categories), ..TableOptions::default() },
        method,
        iterations,
        format: OutputFormat::Json,
    };
    let mut out = Vec::new();
    write_aggregate(&args, &mut out).expect("aggregate succeeds");
    serde_json::from_slice(&out).expect("JSON output")
}

/// Labels of the command's output sorted by item id (the input order is checked elsewhere;
/// serde_json's map here keeps keys sorted).
fn actual_labels(output: &Value) -> Vec<(String, String)> {
    output["labels"]
        .as_object()
        .expect("labels object")
        .iter()
        .map(|(item, label)| (item.clone(), category_text(label)))
        .collect()
}

/// Cases a long CSV can express: one column per rater (the anaesthesia case has one
/// observer in three columns, which a long table reports as duplicate ratings).
fn long_table_cases() -> Vec<Value> {
    cases().into_iter().filter(|case| case.get("rater_ids").is_none()).collect()
}

#[test]
fn majority_labels_match_reference() {
    let mut checked = 0;
    for case in long_table_cases() {
        let Some(expected) = case["expected"].get("majority_vote") else { continue };
        let output = run(&case, Method::Majority, None);
        assert_eq!(actual_labels(&output), expected_labels(&case, expected), "{}", case["id"]);
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} cases checked");
}

#[test]
fn dawid_skene_matches_reference() {
    let mut checked = 0;
    for case in long_table_cases() {
        let Some(expected) = case["expected"].get("dawid_skene_fixed_iterations") else { continue };
        let id = case["id"].as_str().unwrap_or_default().to_string();
        let iterations = expected["iterations_run"].as_u64().expect("iterations") as usize;
        let output = run(&case, Method::DawidSkene, Some(iterations));
        assert_eq!(actual_labels(&output), expected_labels(&case, &expected["labels"]), "{id} labels");

        let modeled: Vec<String> = expected["categories_modeled"].as_array().expect("modeled").iter().map(category_text).collect();
        for (category, prior) in modeled.iter().zip(expected["priors"].as_array().expect("priors")) {
            let actual = output["priors"][category].as_f64().unwrap_or(f64::NAN);
            let wanted = prior.as_f64().expect("prior");
            assert!((actual - wanted).abs() <= TOLERANCE, "{id} prior of {category}: {actual} vs {wanted}");
        }
        for (rater, accuracy) in expected["rater_accuracy"].as_object().expect("accuracies") {
            let actual = output["rater_accuracy"][rater].as_f64().unwrap_or(f64::NAN);
            let wanted = accuracy.as_f64().expect("accuracy");
            assert!((actual - wanted).abs() <= TOLERANCE, "{id} accuracy of {rater}: {actual} vs {wanted}");
        }
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} cases checked");
}
