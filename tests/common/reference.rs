//! The crowd-kit reference cases of `tests/data/agreement-vectors.json`, as the aggregation
//! tests read them. Items are named `i0`, `i1`, ... by their row in the case.

use serde_json::Value;

/// Loads every case of the reference file.
pub fn cases() -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/agreement-vectors.json");
    let document: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("reference file")).expect("JSON");
    document["cases"].as_array().expect("cases").clone()
}

/// Returns a category value of the reference file (a number or a string) as text.
pub fn category_text(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => panic!("unexpected category {other}"),
    }
}

/// Expected labels of the items that have at least one rating, as `(item name, label)` sorted
/// by item name.
pub fn expected_labels(case: &Value, labels: &Value) -> Vec<(String, String)> {
    let ratings = case["ratings"].as_array().expect("ratings");
    let mut expected: Vec<(String, String)> = labels
        .as_array()
        .expect("labels")
        .iter()
        .enumerate()
        .filter(|(item, _)| {
            ratings[*item]
                .as_array()
                .expect("row")
                .iter()
                .any(|cell| !cell.is_null())
        })
        .map(|(item, label)| (format!("i{item}"), category_text(label)))
        .collect();
    expected.sort();
    expected
}
