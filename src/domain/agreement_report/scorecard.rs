//! One grader's own agreement with the reference standard.
//!
//! The input holds only the grader's own grades, each paired with the final answers of its
//! item, so nothing here can reveal another grader's answers. Which items may count (only
//! resolved ones, so that graders learn nothing about items still in grading) is the
//! caller's choice.

use serde::Serialize;

use crate::domain::agreement;
use crate::domain::answers::Answers;
use crate::domain::guideline::Guideline;
use crate::domain::ratings::RatingMatrix;

use super::{single_choice_fields, Estimate, FieldScale};

/// A grader's own grade of an item and the item's final answers.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnGrade {
    pub answers: Answers,
    pub reference: Answers,
}

/// A grader's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scorecard {
    /// Grades compared (one per item).
    pub n_grades: usize,
    /// One entry per single-choice field, in guideline order.
    pub fields: Vec<FieldScore>,
}

/// A grader against the reference standard on one field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldScore {
    pub field: String,
    pub label: String,
    pub kind: &'static str,
    /// Category labels (option values) in declared order.
    pub categories: Vec<String>,
    /// Items where the grader rated the field and the reference standard has a value for it.
    pub n_items: u64,
    pub kappa: Estimate,
    pub kappa_linear: Estimate,
    pub kappa_quadratic: Estimate,
    /// `confusion[a][b]`: items the grader rated a and the reference standard labels b.
    pub confusion: Vec<Vec<u64>>,
    /// Mean of (own category position − reference position), ordinal fields only: positive
    /// when the grader grades higher than the reference standard.
    pub mean_signed_difference: Option<f64>,
}

/// Compares a grader's grades with the final answers, field by field.
pub fn scorecard(guideline: &Guideline, grades: &[OwnGrade]) -> Scorecard {
    let fields = single_choice_fields(guideline)
        .into_iter()
        .filter_map(FieldScale::new)
        .filter_map(|scale| field_score(&scale, grades))
        .collect();
    Scorecard {
        n_grades: grades.len(),
        fields,
    }
}

fn field_score(scale: &FieldScale, grades: &[OwnGrade]) -> Option<FieldScore> {
    let rows: Vec<Vec<Option<u32>>> = grades
        .iter()
        .map(|grade| vec![scale.category_of(&grade.answers)])
        .collect();
    let reference: Vec<Option<usize>> = grades
        .iter()
        .map(|grade| scale.category_of(&grade.reference).map(|index| index as usize))
        .collect();
    let categories: Vec<String> = scale.categories.iter().map(|category| category.label.clone()).collect();
    let n_categories = categories.len();

    let comparison = if grades.is_empty() {
        None
    } else {
        // One column and one reference label per row, built from the same scale: valid.
        let matrix = RatingMatrix::new(scale.categories.clone(), &rows).ok()?;
        Some(agreement::compare_with_reference(&matrix, 0, &reference).ok()?)
    };
    let no_items = || Estimate {
        value: None,
        reason: Some("no resolved item has your rating of this field".into()),
    };
    Some(match comparison.filter(|comparison| comparison.confusion.n_items > 0) {
        Some(comparison) => FieldScore {
            field: scale.name.clone(),
            label: scale.label.clone(),
            kind: scale.kind.as_str(),
            categories,
            n_items: comparison.confusion.n_items,
            kappa: comparison.kappa.into(),
            kappa_linear: comparison.kappa_linear.into(),
            kappa_quadratic: comparison.kappa_quadratic.into(),
            confusion: comparison.confusion.counts,
            mean_signed_difference: comparison.mean_signed_difference.filter(|_| scale.is_ordinal()),
        },
        None => FieldScore {
            field: scale.name.clone(),
            label: scale.label.clone(),
            kind: scale.kind.as_str(),
            categories,
            n_items: 0,
            kappa: no_items(),
            kappa_linear: no_items(),
            kappa_quadratic: no_items(),
            confusion: vec![vec![0; n_categories]; n_categories],
            mean_signed_difference: None,
        },
    })
}
