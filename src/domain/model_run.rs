//! Checks of a model run request that need no database: the guideline field a model learns,
//! the pseudolabel threshold, the training settings, and whether the resolved labels are
//! enough to train on.
//!
//! The HTTP API and `quorum al run` call the same checks, so a request the command line
//! rejects is rejected by the server with the same message. Each error names the request
//! key it is about (`field`, `confidence_threshold`, `epochs`, `resolution`), the value, and
//! what to do instead.

use super::guideline::Guideline;

/// Fewest resolved items with an answer to the field before a run may start.
///
/// A fifth of the labels is held out for the evaluation, so ten labels leave eight to train
/// on and two to evaluate: the least that still gives both parts an item.
pub const MIN_LABELED_ITEMS: usize = 10;

/// Fewest labeled items of a class for that class to count towards the two classes a run
/// needs.
pub const MIN_ITEMS_PER_CLASS: usize = 2;

/// Range of training epochs accepted.
pub const EPOCHS_RANGE: std::ops::RangeInclusive<u32> = 1..=200;

/// Range of the side of the square model input accepted, in pixels.
pub const RESOLUTION_RANGE: std::ops::RangeInclusive<u32> = 16..=512;

/// Why a model run request was rejected: the request key, a message, and the accepted
/// values where they form a list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RunInputError {
    pub key: &'static str,
    pub message: String,
    pub allowed: Vec<String>,
}

impl RunInputError {
    fn new(key: &'static str, message: String) -> RunInputError {
        RunInputError { key, message, allowed: Vec::new() }
    }
}

/// Returns the names of the guideline's fields a model can learn: single-choice fields
/// with at least two options.
pub fn learnable_fields(guideline: &Guideline) -> Vec<String> {
    guideline
        .fields
        .iter()
        .filter(|field| field.kind.is_single_choice() && field.options.len() >= 2)
        .map(|field| field.name.clone())
        .collect()
}

/// Returns the option values of the field in guideline order; a class index of the model is
/// a position in this list.
///
/// Fails when the guideline has no such field, or when the field is not single-choice with
/// at least two options (free text and multi-choice answers are not one class).
pub fn class_values(guideline: &Guideline, field_name: &str) -> Result<Vec<String>, RunInputError> {
    let allowed = learnable_fields(guideline);
    let Some(field) = guideline.field(field_name) else {
        return Err(RunInputError {
            key: "field",
            message: format!(
                "field {field_name:?} is not in guideline {} {}; use one of: {}",
                guideline.key,
                guideline.version,
                allowed.join(", ")
            ),
            allowed,
        });
    };
    if !field.kind.is_single_choice() || field.options.len() < 2 {
        return Err(RunInputError {
            key: "field",
            message: format!(
                "field {field_name:?} is {} with {} options, but a model learns one class out of at least two; use one of: {}",
                field.kind.as_str(),
                field.options.len(),
                allowed.join(", ")
            ),
            allowed,
        });
    }
    Ok(field.options.iter().map(|option| option.value.clone()).collect())
}

/// Checks the lowest confidence at which a run proposes a pseudolabel: above 0, at most 1.
pub fn check_threshold(key: &'static str, value: f64) -> Result<(), RunInputError> {
    if value.is_finite() && value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(RunInputError::new(key, format!("{key} {value} is out of range: give a probability above 0 and at most 1, such as 0.9")))
    }
}

/// Checks the number of training epochs.
pub fn check_epochs(epochs: u32) -> Result<(), RunInputError> {
    if EPOCHS_RANGE.contains(&epochs) {
        Ok(())
    } else {
        Err(RunInputError::new(
            "epochs",
            format!("epochs {epochs} is out of range: give {} to {}", EPOCHS_RANGE.start(), EPOCHS_RANGE.end()),
        ))
    }
}

/// Checks the side of the square model input, in pixels.
pub fn check_resolution(pixels: u32) -> Result<(), RunInputError> {
    if RESOLUTION_RANGE.contains(&pixels) {
        Ok(())
    } else {
        Err(RunInputError::new(
            "resolution",
            format!(
                "resolution {pixels} is out of range: give {} to {} pixels",
                RESOLUTION_RANGE.start(),
                RESOLUTION_RANGE.end()
            ),
        ))
    }
}

/// Checks that the labels of a field are enough to train and evaluate a model:
/// [`MIN_LABELED_ITEMS`] in all and two classes with [`MIN_ITEMS_PER_CLASS`] each.
///
/// `counts[c]` is the number of resolved items whose answer is `classes[c]`.
pub fn check_labels(field_name: &str, classes: &[String], counts: &[usize]) -> Result<(), RunInputError> {
    let total: usize = counts.iter().sum();
    let described: Vec<String> = classes.iter().zip(counts).map(|(class, n)| format!("{class}: {n}")).collect();
    if total < MIN_LABELED_ITEMS {
        return Err(RunInputError::new(
            "field",
            format!(
                "field {field_name:?} has {total} resolved items with an answer ({}), fewer than the {MIN_LABELED_ITEMS} a run needs; resolve more items first",
                described.join(", ")
            ),
        ));
    }
    let usable = counts.iter().filter(|&&n| n >= MIN_ITEMS_PER_CLASS).count();
    if usable < 2 {
        return Err(RunInputError::new(
            "field",
            format!(
                "field {field_name:?} needs resolved items of at least two classes with {MIN_ITEMS_PER_CLASS} items each, but has {}; resolve items of another class first",
                described.join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::guideline::parse_guideline;

    fn guideline() -> Guideline {
        parse_guideline(include_str!("../../guidelines/dr-screening.toml")).expect("bundled guideline parses")
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| value.to_string()).collect()
    }

    #[test]
    fn class_values_follow_option_order() {
        assert_eq!(class_values(&guideline(), "dr_severity"), Ok(strings(&["0", "1", "2", "3", "4"])));
    }

    #[test]
    fn unknown_field_lists_learnable_fields() {
        let error = class_values(&guideline(), "colour").expect_err("unknown field");
        assert_eq!(error.key, "field");
        assert!(error.message.contains("\"colour\""), "{}", error.message);
        assert!(error.allowed.contains(&"dr_severity".to_string()));
    }

    #[test]
    fn thresholds_outside_unit_interval_are_rejected() {
        for value in [0.0, -0.1, 1.01, f64::NAN] {
            assert!(check_threshold("confidence_threshold", value).is_err(), "{value}");
        }
        assert!(check_threshold("confidence_threshold", 1.0).is_ok());
        assert!(check_threshold("confidence_threshold", 0.5).is_ok());
    }

    #[test]
    fn epochs_and_resolution_ranges() {
        assert!(check_epochs(0).is_err());
        assert!(check_epochs(1).is_ok());
        assert!(check_resolution(8).is_err());
        assert!(check_resolution(32).is_ok());
        assert!(check_resolution(4096).is_err());
    }

    #[test]
    fn labels_need_two_classes() {
        let classes = strings(&["0", "1", "2"]);
        assert_eq!(check_labels("dr_severity", &classes, &[3, 0, 0]).map_err(|e| e.key), Err("field"));
        assert!(check_labels("dr_severity", &classes, &[12, 0, 0]).is_err());
        assert!(check_labels("dr_severity", &classes, &[11, 1, 0]).is_err());
        assert!(check_labels("dr_severity", &classes, &[8, 2, 0]).is_ok());
    }
}
