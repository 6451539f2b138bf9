//! Checks majority vote, Wawa and Dawid-Skene against the crowd-kit 1.4.2 reference vectors
//! in `tests/data/agreement-vectors.json`.
//!
//! Every case with aggregation results is checked in full; all mismatches are collected
//! and reported together. GLAD and MACE results are loose references and are not checked.

use std::num::NonZeroUsize;
use std::path::Path;

use quorum::domain::aggregate::{self, Responses, Stopping};
use quorum::domain::ratings::{Category, RatingMatrix};
use serde_json::Value;

/// Largest accepted absolute difference for probabilities, accuracies, posteriors and
/// scores. The largest difference measured on these cases is about 2e-14, from summation order.
const TOLERANCE: f64 = 1e-12;

struct Case {
    id: String,
    categories: Vec<f64>,
    matrix: RatingMatrix,
    rater_names: Vec<String>,
    responses: Responses,
    expected: Value,
}

fn load_cases() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/agreement-vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let document: Value = serde_json::from_str(&text).expect("reference file is valid JSON");

    let mut cases = Vec::new();
    for case in document["cases"].as_array().expect("cases is an array") {
        if case["expected"].get("majority_vote").is_none() {
            continue;
        }
        cases.push(parse_case(case));
    }
    cases
}

fn parse_case(case: &Value) -> Case {
    let id = case["id"].as_str().unwrap().to_string();
    let categories: Vec<f64> = case["categories"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let declared: Vec<Category> =
        categories.iter().map(|&value| Category { label: value.to_string(), value }).collect();

    let rows: Vec<Vec<Option<u32>>> = case["ratings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|cell| {
                    cell.as_f64()
                        .map(|value| categories.iter().position(|&c| c == value).expect("rating is declared") as u32)
                })
                .collect()
        })
        .collect();
    let matrix = RatingMatrix::new(declared, &rows).expect("reference matrix is valid");

    // Columns that share a rater id belong to one rater; otherwise column c is rater "r{c}".
    let column_names: Vec<String> = match case.get("rater_ids") {
        Some(ids) => ids.as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_string()).collect(),
        None => (0..matrix.n_raters()).map(|column| format!("r{column}")).collect(),
    };
    let mut rater_names: Vec<String> = Vec::new();
    let mut rater_of_column = Vec::new();
    for name in &column_names {
        let rater = match rater_names.iter().position(|known| known == name) {
            Some(rater) => rater,
            None => {
                rater_names.push(name.clone());
                rater_names.len() - 1
            }
        };
        rater_of_column.push(rater);
    }
    let responses = Responses::from_matrix_with_raters(&matrix, &rater_of_column).expect("one rater per column");

    Case { id, categories, matrix, rater_names, responses, expected: case["expected"].clone() }
}

/// Mismatch listing plus the largest differences seen, for the failure message.
#[derive(Default)]
struct Report {
    mismatches: Vec<String>,
    max_difference: f64,
}

impl Report {
    fn number(&mut self, context: &str, actual: f64, expected: &Value, tolerance: f64) {
        let Some(expected) = expected.as_f64() else {
            self.mismatches.push(format!("{context}: expected {expected}, got {actual}"));
            return;
        };
        let difference = (actual - expected).abs();
        self.max_difference = self.max_difference.max(difference);
        if difference.is_nan() || difference > tolerance {
            self.mismatches.push(format!("{context}: expected {expected}, got {actual} (difference {difference:e})"));
        }
    }

    fn labels(&mut self, context: &str, case: &Case, actual: &[Option<usize>], expected: &Value) {
        let expected = expected.as_array().unwrap();
        if actual.len() != expected.len() {
            self.mismatches.push(format!("{context}: {} labels, expected {}", actual.len(), expected.len()));
            return;
        }
        for (item, (label, want)) in actual.iter().zip(expected).enumerate() {
            let got = label.map(|index| case.categories[index]);
            if got != want.as_f64() {
                self.mismatches.push(format!("{context} item {item}: expected {want}, got {got:?}"));
            }
        }
    }

    fn rater_values(&mut self, context: &str, case: &Case, actual: &[Option<f64>], expected: &Value, tolerance: f64) {
        let expected = expected.as_object().unwrap();
        if expected.len() != actual.iter().flatten().count() {
            self.mismatches.push(format!("{context}: {} raters expected, {} computed", expected.len(), actual.len()));
        }
        for (rater, value) in actual.iter().enumerate() {
            let name = &case.rater_names[rater];
            match (value, expected.get(name)) {
                (Some(value), Some(want)) => self.number(&format!("{context}[{name}]"), *value, want, tolerance),
                (None, None) => {}
                (value, want) => self.mismatches.push(format!("{context}[{name}]: expected {want:?}, got {value:?}")),
            }
        }
    }
}

fn check_majority_and_wawa(case: &Case, report: &mut Report) {
    let expected = &case.expected;
    let id = &case.id;

    let majority = aggregate::majority_vote(&case.responses);
    report.labels(&format!("{id} majority_vote"), case, &majority, &expected["majority_vote"]);

    let agreement = aggregate::majority_vote_rater_agreement(&case.responses);
    report.rater_values(
        &format!("{id} majority_vote_rater_agreement"),
        case,
        &agreement,
        &expected["majority_vote_rater_agreement"],
        1e-15,
    );

    let wawa = aggregate::wawa(&case.responses);
    report.labels(&format!("{id} wawa"), case, &wawa.labels, &expected["wawa"]);
    report.rater_values(
        &format!("{id} wawa_rater_weight"),
        case,
        &wawa.rater_weights,
        &expected["wawa_rater_weight"],
        1e-15,
    );
}

fn check_dawid_skene(case: &Case, key: &str, stopping: Stopping, report: &mut Report) {
    let expected = &case.expected[key];
    let context = format!("{} {key}", case.id);
    let result = aggregate::dawid_skene(&case.responses, stopping, NonZeroUsize::MIN);

    report.labels(&format!("{context} labels"), case, &result.labels, &expected["labels"]);

    let modeled: Vec<f64> = result.categories_modeled.iter().map(|&index| case.categories[index]).collect();
    let expected_modeled: Vec<f64> =
        expected["categories_modeled"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    if modeled != expected_modeled {
        report.mismatches.push(format!("{context} categories_modeled: expected {expected_modeled:?}, got {modeled:?}"));
        return;
    }

    for (class, prior) in result.priors.iter().enumerate() {
        report.number(&format!("{context} priors[{class}]"), *prior, &expected["priors"][class], TOLERANCE);
    }
    report.rater_values(
        &format!("{context} rater_accuracy"),
        case,
        &result.rater_accuracy,
        &expected["rater_accuracy"],
        TOLERANCE,
    );

    // The diagonal is stored separately because large cases leave out the full matrices.
    if let Some(recall) = expected.get("rater_diag_recall") {
        for (rater, matrix) in result.confusion.iter().enumerate() {
            let name = &case.rater_names[rater];
            let Some(matrix) = matrix else { continue };
            for (class, row) in matrix.iter().enumerate() {
                report.number(
                    &format!("{context} rater_diag_recall[{name}][{class}]"),
                    row[class],
                    &recall[name][class],
                    TOLERANCE,
                );
            }
        }
    }

    let expected_iterations = expected["iterations_run"].as_u64().unwrap() as usize;
    if result.iterations_run != expected_iterations {
        report
            .mismatches
            .push(format!("{context} iterations_run: expected {expected_iterations}, got {}", result.iterations_run));
    }

    if let Some(history) = expected.get("score_history") {
        let history = history.as_array().unwrap();
        if history.len() != result.score_history.len() {
            report.mismatches.push(format!(
                "{context} score_history: {} scores expected, {} computed",
                history.len(),
                result.score_history.len()
            ));
        }
        for (step, (score, want)) in result.score_history.iter().zip(history).enumerate() {
            report.number(&format!("{context} score_history[{step}]"), *score, want, TOLERANCE);
        }
    }

    if let Some(confusion) = expected.get("confusion") {
        for (rater, matrix) in result.confusion.iter().enumerate() {
            let name = &case.rater_names[rater];
            let Some(matrix) = matrix else {
                report.mismatches.push(format!("{context} confusion[{name}]: no matrix computed"));
                continue;
            };
            for (true_class, row) in matrix.iter().enumerate() {
                for (observed, value) in row.iter().enumerate() {
                    let want = &confusion[name][true_class][observed];
                    report.number(
                        &format!("{context} confusion[{name}][{true_class}][{observed}]"),
                        *value,
                        want,
                        TOLERANCE,
                    );
                }
            }
        }
    }

    if let Some(posteriors) = expected.get("posteriors") {
        for item in 0..case.matrix.n_items() {
            match (result.posterior(item), posteriors[item].as_array()) {
                (Some(actual), Some(want)) => {
                    for (class, value) in actual.iter().enumerate() {
                        report.number(
                            &format!("{context} posteriors[{item}][{class}]"),
                            *value,
                            &want[class],
                            TOLERANCE,
                        );
                    }
                }
                (None, None) => {}
                (actual, _) => report.mismatches.push(format!("{context} posteriors[{item}]: got {actual:?}")),
            }
        }
    }
}

#[test]
fn aggregation_matches_crowd_kit_reference() {
    let cases = load_cases();
    assert!(cases.len() >= 9, "expected at least 9 cases with aggregation results, found {}", cases.len());

    let mut report = Report::default();
    for case in &cases {
        check_majority_and_wawa(case, &mut report);
        check_dawid_skene(case, "dawid_skene", Stopping::default(), &mut report);
        check_dawid_skene(case, "dawid_skene_fixed_iterations", Stopping::Fixed { iterations: 200 }, &mut report);
    }

    eprintln!("largest absolute difference over {} cases: {:e}", cases.len(), report.max_difference);
    assert!(
        report.mismatches.is_empty(),
        "{} mismatches with the reference:\n{}",
        report.mismatches.len(),
        report.mismatches.join("\n")
    );
}

#[test]
fn unrated_item_has_no_label() {
    let categories = RatingMatrix::positional_categories(["a", "b"]);
    let matrix =
        RatingMatrix::new(categories, &[vec![Some(0), Some(1)], vec![None, None], vec![Some(1), Some(1)]]).unwrap();
    let responses = Responses::from_matrix(&matrix);

    assert_eq!(aggregate::majority_vote(&responses), vec![Some(0), None, Some(1)]);
    assert_eq!(aggregate::wawa(&responses).labels[1], None);
    let result = aggregate::dawid_skene(&responses, Stopping::default(), NonZeroUsize::MIN);
    assert_eq!(result.labels[1], None);
    assert_eq!(result.posterior(1), None);
}

#[test]
fn majority_tie_goes_to_earliest_category() {
    let categories = RatingMatrix::positional_categories(["low", "mid", "high"]);
    let matrix = RatingMatrix::new(categories, &[vec![Some(2), Some(1)], vec![Some(0), Some(2)]]).unwrap();
    let responses = Responses::from_matrix(&matrix);

    assert_eq!(aggregate::majority_vote(&responses), vec![Some(1), Some(0)]);
}

#[test]
fn dawid_skene_without_ratings_is_empty() {
    let categories = RatingMatrix::positional_categories(["a", "b"]);
    let matrix = RatingMatrix::new(categories, &[vec![None, None]]).unwrap();
    let result = aggregate::dawid_skene(&Responses::from_matrix(&matrix), Stopping::default(), NonZeroUsize::MIN);

    assert_eq!(result.labels, vec![None]);
    assert!(result.categories_modeled.is_empty());
    assert_eq!(result.iterations_run, 0);
    assert_eq!(result.rater_accuracy, vec![None, None]);
}

#[test]
fn dawid_skene_fixed_runs_exact_count() {
    let categories = RatingMatrix::positional_categories(["a", "b", "c"]);
    let rows = vec![
        vec![Some(0), Some(0), Some(1)],
        vec![Some(1), Some(1), Some(1)],
        vec![Some(2), Some(1), Some(2)],
        vec![Some(0), None, Some(0)],
    ];
    let matrix = RatingMatrix::new(categories, &rows).unwrap();
    let responses = Responses::from_matrix(&matrix);

    for iterations in [0, 1, 7] {
        let result = aggregate::dawid_skene(&responses, Stopping::Fixed { iterations }, NonZeroUsize::MIN);
        assert_eq!(result.iterations_run, iterations);
        assert_eq!(result.score_history.len(), iterations);
    }
}

#[test]
fn unused_declared_category_is_not_modeled() {
    let categories = RatingMatrix::positional_categories(["a", "b", "c"]);
    let matrix = RatingMatrix::new(categories, &[vec![Some(0), Some(2)], vec![Some(2), Some(2)]]).unwrap();
    let result = aggregate::dawid_skene(&Responses::from_matrix(&matrix), Stopping::default(), NonZeroUsize::MIN);

    assert_eq!(result.categories_modeled, vec![0, 2]);
    assert_eq!(result.priors.len(), 2);
}

#[test]
fn dawid_skene_same_for_any_thread_count() {
    // Enough responses for several chunks: 40,000 items x 4 raters.
    let mut state: u64 = 7;
    let mut draw = move |n: u64| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let rows: Vec<Vec<Option<u32>>> = (0..40_000)
        .map(|_| {
            let truth = draw(3) as u32;
            (0..4)
                .map(|_| match draw(10) {
                    0 => None,
                    1 | 2 => Some(draw(3) as u32),
                    _ => Some(truth),
                })
                .collect()
        })
        .collect();
    let matrix = RatingMatrix::new(RatingMatrix::positional_categories(["a", "b", "c"]), &rows).unwrap();
    let responses = Responses::from_matrix(&matrix);
    let stopping = Stopping::Fixed { iterations: 5 };

    let single = aggregate::dawid_skene(&responses, stopping, NonZeroUsize::MIN);
    let threaded = aggregate::dawid_skene(&responses, stopping, NonZeroUsize::new(3).unwrap());
    assert_eq!(single, threaded);
}
