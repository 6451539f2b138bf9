//! Conformance of the agreement coefficients with reference values from scikit-learn,
//! statsmodels, krippendorff and irrCAC, stored in `tests/data/agreement-vectors.json`
//! (`tests/data/README.md` describes the file and the conventions of each library).
//!
//! Every case and every agreement metric in `expected` is checked, and so is the
//! `observed_categories_only` variant where a case has one. Failures are collected and
//! reported together.

use std::collections::BTreeSet;

use quorum::domain::agreement::{compute_all, AgreementReport, Metric};
use quorum::domain::ratings::{Category, RatingMatrix};
use serde_json::Value;

/// Expected keys computed by the label aggregation code, not by the agreement module.
const AGGREGATION_KEYS: [&str; 8] = [
    "majority_vote",
    "majority_vote_rater_agreement",
    "wawa",
    "wawa_rater_weight",
    "dawid_skene",
    "dawid_skene_fixed_iterations",
    "glad",
    "mace",
];

const RELATIVE_TOLERANCE: f64 = 1e-9;
const ABSOLUTE_TOLERANCE: f64 = 1e-12;

fn load_cases() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/agreement-vectors.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"));
    let document: Value = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path} is not JSON: {error}"));
    document["cases"].as_array().unwrap_or_else(|| panic!("{path} has no cases array")).clone()
}

/// Builds the matrix of `ratings` over `categories`, both given as category values.
fn build_matrix(categories: &Value, ratings: &Value) -> Result<RatingMatrix, String> {
    let categories = categories.as_array().ok_or("categories is not an array")?;
    let mut declared = Vec::new();
    for category in categories {
        let value = category.as_f64().ok_or_else(|| format!("category {category} is not a number"))?;
        declared.push(Category { label: category.to_string(), value });
    }
    let mut rows = Vec::new();
    for row in ratings.as_array().ok_or("ratings is not an array")? {
        let mut cells = Vec::new();
        for cell in row.as_array().ok_or("a ratings row is not an array")? {
            if cell.is_null() {
                cells.push(None);
                continue;
            }
            let value = cell.as_f64().ok_or_else(|| format!("rating {cell} is not a number"))?;
            let index = declared
                .iter()
                .position(|category| category.value == value)
                .ok_or_else(|| format!("rating {cell} is not a declared category"))?;
            cells.push(Some(index as u32));
        }
        rows.push(cells);
    }
    RatingMatrix::new(declared, &rows).map_err(|error| error.to_string())
}

/// Returns true when every item with a rating has the same number of ratings, at least two.
fn has_equal_rating_counts(m: &RatingMatrix) -> bool {
    let counts: BTreeSet<usize> =
        (0..m.n_items()).map(|item| m.row(item).iter().flatten().count()).filter(|&count| count > 0).collect();
    counts.len() == 1 && counts.iter().all(|&count| count >= 2)
}

fn close(actual: f64, expected: f64) -> bool {
    let difference = (actual - expected).abs();
    difference <= ABSOLUTE_TOLERANCE || difference <= RELATIVE_TOLERANCE * actual.abs().max(expected.abs())
}

/// Compares one report with one `expected` object and appends a line per mismatch.
fn check_expected(label: &str, report: &AgreementReport, expected: &Value, failures: &mut Vec<String>) -> usize {
    let Some(expected) = expected.as_object() else {
        failures.push(format!("{label}: expected is not an object"));
        return 0;
    };
    let mut checked = 0;
    for (name, value) in expected {
        if AGGREGATION_KEYS.contains(&name.as_str()) {
            continue;
        }
        if Metric::from_name(name).is_none() {
            failures.push(format!("{label}: unknown metric {name} in expected"));
            continue;
        }
        checked += 1;
        match (value.as_f64(), report.get(name)) {
            (Some(expected), Ok(actual)) if close(actual, expected) => {}
            (Some(expected), Ok(actual)) => failures.push(format!(
                "{label}: {name} = {actual:?}, expected {expected:?} (difference {:e})",
                actual - expected
            )),
            (Some(expected), Err(undefined)) => {
                failures.push(format!("{label}: {name} undefined ({}), expected {expected:?}", undefined.reason))
            }
            (None, Ok(actual)) if value.is_null() => {
                failures.push(format!("{label}: {name} = {actual:?}, expected undefined"))
            }
            (None, Err(undefined)) if value.is_null() && !undefined.reason.trim().is_empty() => {}
            (None, _) => failures.push(format!("{label}: {name}: expected {value} is neither a number nor null")),
        }
    }
    checked
}

/// Checks that each metric is in exactly one map of the report, with a finite value or a reason.
fn check_report_shape(label: &str, report: &AgreementReport, failures: &mut Vec<String>) {
    for metric in Metric::ALL {
        let name = metric.name();
        match (report.values.get(name), report.undefined.get(name)) {
            (Some(value), None) if value.is_finite() => {}
            (Some(value), None) => failures.push(format!("{label}: {name} has the non-finite value {value}")),
            (None, Some(reason)) if !reason.trim().is_empty() => {}
            (None, Some(_)) => failures.push(format!("{label}: {name} is undefined without a reason")),
            (Some(_), Some(_)) => failures.push(format!("{label}: {name} is both defined and undefined")),
            (None, None) => failures.push(format!("{label}: {name} is missing from the report")),
        }
    }
    let known: BTreeSet<&str> = Metric::ALL.iter().map(|metric| metric.name()).collect();
    for name in report.values.keys().chain(report.undefined.keys()) {
        if !known.contains(name.as_str()) {
            failures.push(format!("{label}: unexpected key {name} in the report"));
        }
    }
}

#[test]
fn reference_vectors_match() {
    let cases = load_cases();
    assert!(!cases.is_empty(), "the reference file has no cases");
    let mut failures = Vec::new();
    let mut checked = 0;

    for case in &cases {
        let id = case["id"].as_str().unwrap_or("<case without id>");
        let m = match build_matrix(&case["categories"], &case["ratings"]) {
            Ok(m) => m,
            Err(error) => {
                failures.push(format!("{id}: cannot build the matrix: {error}"));
                continue;
            }
        };
        let report = compute_all(&m);
        check_report_shape(id, &report, &mut failures);
        checked += check_expected(id, &report, &case["expected"], &mut failures);

        // Metrics the libraries could not apply to this data shape must be undefined here too,
        // with one exception. The reference leaves Fleiss out whenever a cell is missing, but
        // Fleiss (1971) needs only the same number of ratings on every item, as in a crowd
        // where each item gets 3 of 8 raters. There Fleiss' kappa must equal irrCAC's
        // generalised Fleiss, and Randolph's kappa must equal Brennan-Prediger.
        if let Some(not_applicable) = case["not_applicable"].as_object() {
            for (name, why) in not_applicable {
                if AGGREGATION_KEYS.contains(&name.as_str()) {
                    continue;
                }
                checked += 1;
                let equivalent = match name.as_str() {
                    "fleiss_kappa" if has_equal_rating_counts(&m) => Some("fleiss_kappa_generalized"),
                    "fleiss_kappa_randolph" if has_equal_rating_counts(&m) => Some("brennan_prediger"),
                    _ => None,
                };
                match (equivalent, report.get(name)) {
                    (None, Err(_)) => {}
                    (None, Ok(value)) => failures
                        .push(format!("{id}: {name} = {value:?}, but the reference marks it not applicable ({why})")),
                    (Some(other), actual) => match (case["expected"][other].as_f64(), actual) {
                        (Some(expected), Ok(actual)) if close(actual, expected) => {}
                        (expected, actual) => failures.push(format!(
                            "{id}: {name} = {actual:?} on equal rating counts, expected {other} = {expected:?}"
                        )),
                    },
                }
            }
        }

        if let Some(variant) = case["variants"].get("observed_categories_only") {
            let label = format!("{id} (observed categories only)");
            match build_matrix(&variant["categories"], &case["ratings"]) {
                Ok(m) => {
                    let report = compute_all(&m);
                    check_report_shape(&label, &report, &mut failures);
                    checked += check_expected(&label, &report, &variant["expected"], &mut failures);
                }
                Err(error) => failures.push(format!("{label}: cannot build the matrix: {error}")),
            }
        }
    }

    assert!(failures.is_empty(), "{} of {checked} reference checks failed:\n{}", failures.len(), failures.join("\n"));
    println!("{checked} reference checks passed over {} cases", cases.len());
}
