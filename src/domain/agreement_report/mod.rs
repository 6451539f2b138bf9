//! Agreement of a study's graders on one guideline field, as the server reports it.
//!
//! The store loads a study's current grades into [`StudyRatings`]: items with their metadata
//! and current resolution, raters by pseudonym, and one [`GradeRecord`] per current grade.
//! This module turns them into [`RatingMatrix`] values for one single-choice field and
//! computes a [`FieldReport`] from them. The report has every coefficient of
//! [`agreement::compute_all`] with bootstrap intervals and standard errors, pairwise Cohen's
//! kappa, each rater against the reference standard (the resolutions), subgroups by item
//! metadata, and round 0 against the final labels. [`scorecard`] computes one grader's own
//! numbers.
//!
//! Conventions:
//! - The categories of a field are its options in declared order. A category's numeric value
//!   is the option value read as a number when every option value of the field is a number,
//!   and its position otherwise.
//! - A field that was not asked (its condition was false) is a missing rating.
//! - A matrix has one row per item with at least one grade in the selected round and one
//!   column per rater with at least one grade in it, items in id order and raters in the order
//!   the store gives (membership order).
//! - Krippendorff's alpha uses the ordinal level for ordinal fields and the nominal level
//!   otherwise. Pairwise and reference kappas are quadratic-weighted for ordinal fields and
//!   unweighted otherwise.

mod breakdown;
mod scorecard;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::agreement::{self, AgreementReport, Level, Metric, Undefined, Weighting};
use crate::domain::answers::Answers;
use crate::domain::guideline::{Field, FieldKind, Guideline};
use crate::domain::ratings::{Category, RatingMatrix};

pub use breakdown::{
    BeforeAfter, FinalValueRow, ItemBeforeAfter, Pairwise, RaterConfusion, RaterVsReference, RoundAgreement,
    SubgroupColumn, SubgroupRow, Subgroups,
};
pub use scorecard::{scorecard, FieldScore, OwnGrade, Scorecard};

/// Confidence level of the bootstrap intervals.
pub const CONFIDENCE_LEVEL: f64 = 0.95;

/// One item of a study.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRecord {
    pub id: i64,
    pub name: String,
    /// Metadata columns (dataset, eye, site, ...) with their text values.
    pub metadata: BTreeMap<String, String>,
    /// Final answers of the item's current resolution, when it has one.
    pub resolution: Option<Answers>,
}

/// One current grade: indices into [`StudyRatings::items`] and [`StudyRatings::raters`].
#[derive(Debug, Clone, PartialEq)]
pub struct GradeRecord {
    pub item: usize,
    pub rater: usize,
    pub round: i32,
    pub answers: Answers,
}

/// Every current grade of a study, with its items and raters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StudyRatings {
    /// Items in id order.
    pub items: Vec<ItemRecord>,
    /// Rater pseudonyms ("Grader A"), in the column order of every matrix.
    pub raters: Vec<String>,
    pub grades: Vec<GradeRecord>,
}

/// Lists the single-choice fields of a guideline, the only fields with agreement statistics.
pub fn single_choice_fields(guideline: &Guideline) -> Vec<&Field> {
    guideline
        .fields
        .iter()
        .filter(|field| field.kind.is_single_choice())
        .collect()
}

/// A single-choice field with its categories.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldScale {
    pub name: String,
    pub label: String,
    pub kind: FieldKind,
    /// Option labels shown to graders, in declared order.
    pub option_labels: Vec<String>,
    /// Categories labelled by option value, in declared order.
    pub categories: Vec<Category>,
}

impl FieldScale {
    /// Builds the scale of a single-choice field. Returns `None` for multi-choice and
    /// free-text fields, and for options that are not valid categories (none, or a repeat).
    pub fn new(field: &Field) -> Option<FieldScale> {
        if !field.kind.is_single_choice() || field.options.is_empty() {
            return None;
        }
        let numbers: Option<Vec<f64>> = field
            .options
            .iter()
            .map(|option| {
                option
                    .value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|number| number.is_finite())
            })
            .collect();
        let categories = field
            .options
            .iter()
            .enumerate()
            .map(|(position, option)| Category {
                label: option.value.clone(),
                value: numbers.as_ref().map_or(position as f64, |numbers| numbers[position]),
            })
            .collect::<Vec<Category>>();
        // Checked here so that every matrix built from this scale is valid.
        RatingMatrix::new(categories.clone(), &[]).ok()?;
        Some(FieldScale {
            name: field.name.clone(),
            label: field.label.clone(),
            kind: field.kind,
            option_labels: field.options.iter().map(|option| option.label.clone()).collect(),
            categories,
        })
    }

    pub fn is_ordinal(&self) -> bool {
        self.kind == FieldKind::Ordinal
    }

    /// Krippendorff's level for this field: ordinal for ordinal fields, nominal otherwise.
    pub fn level(&self) -> Level {
        if self.is_ordinal() {
            Level::Ordinal
        } else {
            Level::Nominal
        }
    }

    /// Weighting of pairwise and reference kappas: quadratic for ordinal fields, none otherwise.
    pub fn weighting(&self) -> Weighting {
        if self.is_ordinal() {
            Weighting::Quadratic
        } else {
            Weighting::Unweighted
        }
    }

    /// The category index of this field's answer in `answers`; `None` when not answered.
    pub fn category_of(&self, answers: &Answers) -> Option<u32> {
        let value = answers.get(&self.name)?.as_single()?;
        self.categories
            .iter()
            .position(|category| category.label == value)
            .map(|index| index as u32)
    }

    /// Returns the four coefficients shown for subgroups and rounds: percent agreement, generalised
    /// Fleiss, Krippendorff at the field's level, and Gwet's AC2 (quadratic) for ordinal
    /// fields or AC1 otherwise.
    pub fn headline_metrics(&self) -> [Metric; 4] {
        let (alpha, gwet) = if self.is_ordinal() {
            (Metric::KrippendorffAlphaOrdinal, Metric::GwetAc2Quadratic)
        } else {
            (Metric::KrippendorffAlphaNominal, Metric::GwetAc1)
        };
        [Metric::PercentAgreement, Metric::FleissKappaGeneralized, alpha, gwet]
    }
}

/// Selection of the grades of each item that a matrix holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundSelection {
    /// The grades of this round.
    Round(i32),
    /// The grades of each item's highest graded round.
    Last,
}

/// A rating matrix with the study indices of its rows and columns.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMatrix {
    pub matrix: RatingMatrix,
    /// Index into [`StudyRatings::items`] of each row.
    pub items: Vec<usize>,
    /// Index into [`StudyRatings::raters`] of each column.
    pub raters: Vec<usize>,
}

/// Builds the items × raters matrix of one field from the selected grades.
pub fn field_matrix(study: &StudyRatings, scale: &FieldScale, selection: RoundSelection) -> FieldMatrix {
    let selected: Vec<&GradeRecord> = match selection {
        RoundSelection::Round(round) => study.grades.iter().filter(|grade| grade.round == round).collect(),
        RoundSelection::Last => {
            let mut last_round: BTreeMap<usize, i32> = BTreeMap::new();
            for grade in &study.grades {
                let entry = last_round.entry(grade.item).or_insert(grade.round);
                *entry = (*entry).max(grade.round);
            }
            study
                .grades
                .iter()
                .filter(|grade| last_round.get(&grade.item) == Some(&grade.round))
                .collect()
        }
    };

    let mut items: Vec<usize> = selected.iter().map(|grade| grade.item).collect();
    items.sort_unstable();
    items.dedup();
    let mut raters: Vec<usize> = selected.iter().map(|grade| grade.rater).collect();
    raters.sort_unstable();
    raters.dedup();

    let mut rows = vec![vec![None; raters.len()]; items.len()];
    for grade in selected {
        // Both searches succeed: the lists were built from these grades.
        let (Ok(row), Ok(column)) = (items.binary_search(&grade.item), raters.binary_search(&grade.rater)) else {
            continue;
        };
        rows[row][column] = scale.category_of(&grade.answers);
    }
    let matrix = RatingMatrix::new(scale.categories.clone(), &rows)
        .expect("categories come from a checked guideline and every index from category_of");
    FieldMatrix { matrix, items, raters }
}

/// Returns the reference label (final value of the current resolution) of each row of `matrix`.
pub fn reference_labels(study: &StudyRatings, scale: &FieldScale, matrix: &FieldMatrix) -> Vec<Option<usize>> {
    matrix
        .items
        .iter()
        .map(|&item| {
            let resolution = study.items[item].resolution.as_ref()?;
            scale.category_of(resolution).map(|index| index as usize)
        })
        .collect()
}

/// A coefficient value, or null with the reason it is undefined.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub value: Option<f64>,
    pub reason: Option<String>,
}

impl From<Result<f64, Undefined>> for Estimate {
    fn from(result: Result<f64, Undefined>) -> Self {
        match result {
            Ok(value) => Estimate {
                value: Some(value),
                reason: None,
            },
            Err(undefined) => Estimate {
                value: None,
                reason: Some(undefined.reason),
            },
        }
    }
}

/// Picks `metrics` from a report, keyed by metric name.
fn pick(report: &AgreementReport, metrics: &[Metric]) -> BTreeMap<String, Estimate> {
    metrics
        .iter()
        .map(|metric| (metric.name().to_string(), Estimate::from(report.get(metric.name()))))
        .collect()
}

/// Every coefficient of a matrix, in the layout of `quorum agreement --format json`: one key
/// per metric with its value or null, `undefined` (metric name to reason) and, when the
/// bootstrap ran, `ci` (metric name to `[lower, upper]`, metrics without an interval left out).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statistics {
    pub n_items: usize,
    pub n_raters: usize,
    /// Category labels (option values) in declared order.
    pub categories: Vec<String>,
    #[serde(flatten)]
    pub metrics: BTreeMap<String, Option<f64>>,
    pub undefined: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<BTreeMap<String, [f64; 2]>>,
}

/// Standard errors in the same layout as [`Statistics`] without the counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StandardErrors {
    #[serde(flatten)]
    pub metrics: BTreeMap<String, Option<f64>>,
    pub undefined: BTreeMap<String, String>,
}

fn metric_values(report: &AgreementReport) -> BTreeMap<String, Option<f64>> {
    let mut metrics: BTreeMap<String, Option<f64>> = report
        .values
        .iter()
        .map(|(name, value)| (name.clone(), Some(*value)))
        .collect();
    for name in report.undefined.keys() {
        metrics.insert(name.clone(), None);
    }
    metrics
}

impl Statistics {
    /// Computes every coefficient of `matrix`, with percentile intervals from `replicates`
    /// bootstrap resamples (none when `replicates` is 0).
    pub fn compute(matrix: &RatingMatrix, replicates: usize, seed: u64) -> Statistics {
        let report = agreement::compute_all(matrix);
        let ci = (replicates > 0).then(|| {
            agreement::bootstrap(matrix, replicates, seed, CONFIDENCE_LEVEL)
                .into_iter()
                .map(|(name, (lower, upper))| (name, [lower, upper]))
                .collect()
        });
        Statistics {
            n_items: matrix.n_items(),
            n_raters: matrix.n_raters(),
            categories: matrix
                .categories()
                .iter()
                .map(|category| category.label.clone())
                .collect(),
            metrics: metric_values(&report),
            undefined: report.undefined,
            ci,
        }
    }
}

/// One category as shown: its option value, the label graders saw and its numeric value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryInfo {
    pub value: String,
    pub label: String,
    pub numeric: f64,
}

/// Options of [`field_report`]: the round and the bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportOptions {
    /// The round whose grades the main statistics use (0: the first, independent grading).
    pub round: i32,
    /// Bootstrap replicates for the intervals; 0 skips the bootstrap.
    pub replicates: usize,
    pub seed: u64,
}

/// Agreement on one field of a study.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldReport {
    pub field: String,
    pub label: String,
    pub kind: &'static str,
    pub level: Level,
    pub round: i32,
    pub categories: Vec<CategoryInfo>,
    pub n_items: usize,
    pub n_raters: usize,
    /// Rater pseudonyms in column order.
    pub raters: Vec<String>,
    pub statistics: Statistics,
    pub standard_errors: StandardErrors,
    pub pairwise: Pairwise,
    /// Each rater against the reference standard; null when no graded item has a final value.
    pub against_reference: Option<Vec<RaterVsReference>>,
    /// The first two raters against each other, for studies without a reference standard.
    pub first_pair: Option<RaterConfusion>,
    pub subgroups: Subgroups,
    pub before_after: BeforeAfter,
}

/// Computes the agreement report of one field.
pub fn field_report(study: &StudyRatings, scale: &FieldScale, options: &ReportOptions) -> FieldReport {
    let matrix = field_matrix(study, scale, RoundSelection::Round(options.round));
    let raters: Vec<String> = matrix.raters.iter().map(|&rater| study.raters[rater].clone()).collect();
    let statistics = Statistics::compute(&matrix.matrix, options.replicates, options.seed);
    let errors = agreement::standard_errors(&matrix.matrix);
    let standard_errors = StandardErrors {
        metrics: metric_values(&errors),
        undefined: errors.undefined,
    };

    let reference = reference_labels(study, scale, &matrix);
    let against_reference = reference
        .iter()
        .any(Option::is_some)
        .then(|| breakdown::against_reference(&matrix.matrix, &raters, &reference, scale));
    let first_pair = match against_reference {
        None if raters.len() >= 2 => Some(breakdown::rater_confusion(&matrix.matrix, &raters, 0, 1)),
        _ => None,
    };

    FieldReport {
        field: scale.name.clone(),
        label: scale.label.clone(),
        kind: scale.kind.as_str(),
        level: scale.level(),
        round: options.round,
        categories: scale
            .categories
            .iter()
            .zip(&scale.option_labels)
            .map(|(category, label)| CategoryInfo {
                value: category.label.clone(),
                label: label.clone(),
                numeric: category.value,
            })
            .collect(),
        n_items: matrix.matrix.n_items(),
        n_raters: matrix.matrix.n_raters(),
        pairwise: breakdown::pairwise(&matrix.matrix, scale.weighting()),
        against_reference,
        first_pair,
        subgroups: breakdown::subgroups(study, scale, &matrix),
        before_after: breakdown::before_after(study, scale),
        raters,
        statistics,
        standard_errors,
    }
}

#[cfg(test)]
mod tests;
