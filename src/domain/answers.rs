//! Grade answers checked against the guideline version a study pins.
//!
//! A grader submits a JSON object mapping field names to values. [`validate_answers`] is the
//! only way to build [`Answers`], so stored answers always fit their guideline: every key is
//! a field, every value is one of that field's options (an array of options for multi-choice,
//! text for free-text fields), every required field whose condition holds is answered, and no
//! field is answered while its condition is false. "Ungradable" is an ordinary option, not a
//! missing value.

use std::collections::BTreeMap;

use serde::Serialize;

use super::guideline::{Field, FieldKind, Guideline};

/// Longest free-text answer accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// One field's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AnswerValue {
    /// An option value, or the text of a free-text field.
    One(String),
    /// The option values of a multi-choice field, in the guideline's option order.
    Many(Vec<String>),
}

impl AnswerValue {
    /// The single value, for single-choice fields.
    pub fn as_single(&self) -> Option<&str> {
        match self {
            AnswerValue::One(value) => Some(value),
            AnswerValue::Many(_) => None,
        }
    }

    /// The value as one CSV cell: multi-choice values joined with `|`.
    pub fn to_cell(&self) -> String {
        match self {
            AnswerValue::One(value) => value.clone(),
            AnswerValue::Many(values) => values.join("|"),
        }
    }
}

/// Answers that passed validation, keyed by field name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answers(BTreeMap<String, AnswerValue>);

impl Answers {
    pub fn get(&self, field: &str) -> Option<&AnswerValue> {
        self.0.get(field)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &AnswerValue)> {
        self.0.iter()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or_default()
    }

    /// Rebuilds answers stored by this program; they were validated when written.
    pub fn from_stored(value: &serde_json::Value) -> Option<Answers> {
        let object = value.as_object()?;
        let mut map = BTreeMap::new();
        for (name, value) in object {
            let answer = match value {
                serde_json::Value::String(text) => AnswerValue::One(text.clone()),
                serde_json::Value::Array(items) => {
                    AnswerValue::Many(items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                }
                _ => return None,
            };
            map.insert(name.clone(), answer);
        }
        Some(Answers(map))
    }
}

/// Why answers were rejected: the field, a message, and the values that would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AnswerError {
    pub field: String,
    pub message: String,
    pub allowed: Vec<String>,
}

/// True when the field is asked given the answers so far (its condition holds, or it has none).
fn is_asked(field: &Field, answers: &BTreeMap<String, AnswerValue>) -> bool {
    let Some(condition) = &field.condition else {
        return true;
    };
    match answers.get(&condition.field) {
        Some(AnswerValue::One(value)) => condition.any_of.contains(value),
        Some(AnswerValue::Many(values)) => values.iter().any(|v| condition.any_of.contains(v)),
        None => false,
    }
}

/// Reads a JSON scalar as an option value: strings as they are, integers as their digits
/// (so `2` selects the ordinal option `"2"`).
fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) if number.is_i64() || number.is_u64() => Some(number.to_string()),
        _ => None,
    }
}

/// Checks submitted answers against a guideline.
///
/// Fails with the first problem in field order: an unknown field, a value outside a field's
/// options, a missing required field, or a field answered while its condition is false.
pub fn validate_answers(guideline: &Guideline, submitted: &serde_json::Value) -> Result<Answers, AnswerError> {
    let field_names: Vec<String> = guideline.fields.iter().map(|f| f.name.clone()).collect();
    let Some(object) = submitted.as_object() else {
        return Err(AnswerError {
            field: "answers".into(),
            message: "answers must be a JSON object mapping field names to values".into(),
            allowed: field_names,
        });
    };
    if let Some(unknown) = object.keys().find(|name| guideline.field(name).is_none()) {
        return Err(AnswerError {
            field: unknown.clone(),
            message: format!("{unknown:?} is not a field of guideline {} {}", guideline.key, guideline.version),
            allowed: field_names,
        });
    }

    let mut answers: BTreeMap<String, AnswerValue> = BTreeMap::new();
    for field in &guideline.fields {
        let value = object.get(&field.name).filter(|v| !v.is_null());
        let asked = is_asked(field, &answers);
        let allowed: Vec<String> = field.options.iter().map(|o| o.value.clone()).collect();

        let Some(value) = value else {
            if asked && field.required {
                return Err(AnswerError {
                    field: field.name.clone(),
                    message: format!("{} ({}) is required", field.label, field.name),
                    allowed,
                });
            }
            continue;
        };
        if !asked {
            let condition = field.condition.as_ref().map(|c| (c.field.clone(), c.any_of.join(", "))).unwrap_or_default();
            return Err(AnswerError {
                field: field.name.clone(),
                message: format!(
                    "{} is asked only when {} is one of [{}]; leave it out",
                    field.name, condition.0, condition.1
                ),
                allowed: vec![],
            });
        }

        let answer = match field.kind {
            FieldKind::Ordinal | FieldKind::Nominal | FieldKind::Boolean => {
                let text = scalar_text(value).filter(|text| field.option(text).is_some());
                match text {
                    Some(text) => AnswerValue::One(text),
                    None => {
                        return Err(AnswerError {
                            field: field.name.clone(),
                            message: format!("{value} is not an option of {}; allowed: {}", field.name, allowed.join(", ")),
                            allowed,
                        })
                    }
                }
            }
            FieldKind::MultiChoice => {
                let invalid = || AnswerError {
                    field: field.name.clone(),
                    message: format!(
                        "{} takes a list of distinct options, e.g. [\"{}\"]; allowed: {}",
                        field.name,
                        allowed.first().cloned().unwrap_or_default(),
                        allowed.join(", ")
                    ),
                    allowed: allowed.clone(),
                };
                let items = value.as_array().ok_or_else(invalid)?;
                let mut chosen = Vec::new();
                for item in items {
                    let text = scalar_text(item).filter(|t| field.option(t).is_some()).ok_or_else(invalid)?;
                    if chosen.contains(&text) {
                        return Err(invalid());
                    }
                    chosen.push(text);
                }
                if chosen.is_empty() && field.required {
                    return Err(AnswerError {
                        field: field.name.clone(),
                        message: format!("{} ({}) is required: choose at least one option", field.label, field.name),
                        allowed,
                    });
                }
                chosen.sort_by_key(|v| field.options.iter().position(|o| &o.value == v));
                AnswerValue::Many(chosen)
            }
            FieldKind::Text => {
                let text = value.as_str().ok_or_else(|| AnswerError {
                    field: field.name.clone(),
                    message: format!("{} takes text", field.name),
                    allowed: vec![],
                })?;
                if text.chars().count() > MAX_TEXT_CHARS {
                    return Err(AnswerError {
                        field: field.name.clone(),
                        message: format!("{} is longer than {MAX_TEXT_CHARS} characters", field.name),
                        allowed: vec![],
                    });
                }
                if text.trim().is_empty() && field.required {
                    return Err(AnswerError {
                        field: field.name.clone(),
                        message: format!("{} ({}) is required", field.label, field.name),
                        allowed: vec![],
                    });
                }
                AnswerValue::One(text.to_string())
            }
        };
        answers.insert(field.name.clone(), answer);
    }
    Ok(Answers(answers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::guideline::parse_guideline;
    use serde_json::json;

    fn guideline() -> Guideline {
        parse_guideline(
            r#"
key = "t"
version = "1"
title = "T"
[[fields]]
name = "gradability"
kind = "nominal"
options = [{ value = "gradable", label = "Gradable" }, { value = "ungradable", label = "Ungradable" }]
[[fields]]
name = "dr"
kind = "ordinal"
condition = { field = "gradability", in = ["gradable"] }
options = [{ value = "0", label = "None" }, { value = "1", label = "Mild" }, { value = "2", label = "Moderate" }]
[[fields]]
name = "lesions"
kind = "multi-choice"
required = false
condition = { field = "gradability", in = ["gradable"] }
options = [{ value = "ma", label = "MA" }, { value = "he", label = "HE" }]
[[fields]]
name = "note"
kind = "text"
required = false
"#,
        )
        .expect("valid guideline")
    }

    #[test]
    fn complete_answers_validate() {
        let answers = validate_answers(&guideline(), &json!({"gradability": "gradable", "dr": 2, "lesions": ["he", "ma"]}))
            .expect("valid");
        assert_eq!(answers.get("dr"), Some(&AnswerValue::One("2".into())));
        assert_eq!(answers.get("lesions"), Some(&AnswerValue::Many(vec!["ma".into(), "he".into()])));
    }

    #[test]
    fn ungradable_skips_conditional_fields() {
        let answers = validate_answers(&guideline(), &json!({"gradability": "ungradable"})).expect("valid");
        assert_eq!(answers.get("dr"), None);
    }

    #[test]
    fn unknown_field_is_named() {
        let error = validate_answers(&guideline(), &json!({"gradability": "gradable", "dr": "1", "colour": "red"})).unwrap_err();
        assert_eq!(error.field, "colour");
        assert!(error.allowed.contains(&"dr".to_string()));
    }

    #[test]
    fn value_outside_options_lists_allowed() {
        let error = validate_answers(&guideline(), &json!({"gradability": "gradable", "dr": "5"})).unwrap_err();
        assert_eq!(error.field, "dr");
        assert_eq!(error.allowed, ["0", "1", "2"]);
        assert!(error.message.contains("allowed: 0, 1, 2"), "{}", error.message);
    }

    #[test]
    fn missing_required_field_is_named() {
        let error = validate_answers(&guideline(), &json!({"gradability": "gradable"})).unwrap_err();
        assert_eq!(error.field, "dr");
        assert!(error.message.contains("required"));
    }

    #[test]
    fn field_with_false_condition_is_rejected() {
        let error = validate_answers(&guideline(), &json!({"gradability": "ungradable", "dr": "1"})).unwrap_err();
        assert_eq!(error.field, "dr");
        assert!(error.message.contains("asked only when gradability"), "{}", error.message);
    }

    #[test]
    fn repeated_multi_choice_option_is_rejected() {
        let error = validate_answers(&guideline(), &json!({"gradability": "gradable", "dr": "0", "lesions": ["ma", "ma"]})).unwrap_err();
        assert_eq!(error.field, "lesions");
    }

    #[test]
    fn non_object_answers_are_rejected() {
        let error = validate_answers(&guideline(), &json!(["gradable"])).unwrap_err();
        assert_eq!(error.field, "answers");
    }
}
