//! Aggregation of one single-choice guideline field over a study's grades.
//!
//! The server has the grades as `(item id, grader id, answer)` triples. [`aggregate_field`]
//! numbers items and graders by ascending id, builds the rating matrix with the field's
//! options as declared categories, and runs [`majority_vote`] or [`dawid_skene`] on it. The
//! study aggregate API and the per-item Dawid-Skene advice on the review page both call it,
//! so the two never disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;

use super::{dawid_skene, majority_vote, majority_vote_rater_agreement, DawidSkene, Responses, Stopping};
use crate::domain::guideline::Field;
use crate::domain::ratings::RatingMatrix;

/// Largest number of Dawid-Skene iterations a caller may ask for; each iteration is one pass
/// over every rating of the field.
pub const MAX_ITERATIONS: usize = 1_000;

/// One grader's answer to one single-choice field of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRating {
    pub item_id: i64,
    pub rater_id: i64,
    pub answer: String,
}

/// Aggregation method of [`aggregate_field`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldMethod {
    /// The most frequent answer per item; ties go to the option declared first.
    Majority,
    /// Dawid-Skene EM with one confusion matrix per grader.
    DawidSkene(Stopping),
}

/// What the method estimated, indexed like [`FieldAggregate::items`] and
/// [`FieldAggregate::raters`].
#[derive(Debug, Clone, PartialEq)]
pub enum FieldEstimate {
    Majority {
        /// Index into the field's options of each item's label.
        labels: Vec<Option<usize>>,
        /// Share of each grader's ratings equal to the majority label.
        rater_agreement: Vec<Option<f64>>,
    },
    DawidSkene(DawidSkene),
}

/// A study-level aggregate of one field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldAggregate {
    /// The field's option values, the declared categories.
    pub options: Vec<String>,
    /// Ids of the items with at least one rating, ascending.
    pub items: Vec<i64>,
    /// Ids of the graders with at least one rating, ascending.
    pub raters: Vec<i64>,
    pub estimate: FieldEstimate,
}

impl FieldAggregate {
    /// Index of each item's label into [`FieldAggregate::options`]; `None` for an item none
    /// of whose answers is an option of the field.
    pub fn labels(&self) -> &[Option<usize>] {
        match &self.estimate {
            FieldEstimate::Majority { labels, .. } => labels,
            FieldEstimate::DawidSkene(estimate) => &estimate.labels,
        }
    }

    /// Position of `item_id` in [`FieldAggregate::items`].
    pub fn item_index(&self, item_id: i64) -> Option<usize> {
        self.items.binary_search(&item_id).ok()
    }

    /// Label of the item at `index` as option text.
    pub fn label_text(&self, index: usize) -> Option<&str> {
        self.labels()[index].map(|option| self.options[option].as_str())
    }
}

/// Aggregates `ratings`, the answers to the single-choice `field` across a study.
///
/// Returns `None` when the field is not single-choice. Ratings whose answer is not an option
/// of the field are skipped, and a grader who rated an item twice counts with the later
/// rating. Dawid-Skene runs on one thread, so the result never depends on the machine.
pub fn aggregate_field(field: &Field, ratings: &[FieldRating], method: FieldMethod) -> Option<FieldAggregate> {
    if !field.kind.is_single_choice() {
        return None;
    }
    let items: Vec<i64> = ratings
        .iter()
        .map(|r| r.item_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let raters: Vec<i64> = ratings
        .iter()
        .map(|r| r.rater_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let item_index: BTreeMap<i64, usize> = items.iter().enumerate().map(|(index, id)| (*id, index)).collect();
    let rater_index: BTreeMap<i64, usize> = raters.iter().enumerate().map(|(index, id)| (*id, index)).collect();

    let mut rows = vec![vec![None; raters.len()]; items.len()];
    for rating in ratings {
        let Some(category) = field.options.iter().position(|option| option.value == rating.answer) else {
            continue;
        };
        rows[item_index[&rating.item_id]][rater_index[&rating.rater_id]] = Some(category as u32);
    }
    let categories = RatingMatrix::positional_categories(field.option_values());
    let matrix = RatingMatrix::new(categories, &rows).ok()?;
    let responses = Responses::from_matrix(&matrix);
    let estimate = match method {
        FieldMethod::Majority => FieldEstimate::Majority {
            labels: majority_vote(&responses),
            rater_agreement: majority_vote_rater_agreement(&responses),
        },
        FieldMethod::DawidSkene(stopping) => {
            FieldEstimate::DawidSkene(dawid_skene(&responses, stopping, NonZeroUsize::MIN))
        }
    };
    let options = field.options.iter().map(|option| option.value.clone()).collect();
    Some(FieldAggregate {
        options,
        items,
        raters,
        estimate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::guideline::parse_guideline;

    fn severity() -> Field {
        let guideline = parse_guideline(
            r#"
key = "t"
version = "1"
title = "T"
[[fields]]
name = "dr"
kind = "ordinal"
options = [{ value = "0", label = "0" }, { value = "1", label = "1" }, { value = "2", label = "2" }]
[[fields]]
name = "notes"
kind = "text"
"#,
        )
        .expect("guideline");
        guideline.field("dr").cloned().expect("dr")
    }

    fn rating(item_id: i64, rater_id: i64, answer: &str) -> FieldRating {
        FieldRating {
            item_id,
            rater_id,
            answer: answer.to_string(),
        }
    }

    #[test]
    fn majority_numbers_items_by_id() {
        let ratings = [
            rating(30, 7, "2"),
            rating(10, 7, "1"),
            rating(30, 9, "2"),
            rating(10, 9, "0"),
            rating(10, 8, "1"),
        ];
        let result = aggregate_field(&severity(), &ratings, FieldMethod::Majority).expect("single-choice");
        assert_eq!(result.items, [10, 30]);
        assert_eq!(result.raters, [7, 8, 9]);
        assert_eq!(result.label_text(0), Some("1"));
        assert_eq!(result.label_text(1), Some("2"));
        let FieldEstimate::Majority { rater_agreement, .. } = &result.estimate else {
            panic!("majority estimate")
        };
        assert_eq!(rater_agreement, &[Some(1.0), Some(1.0), Some(0.5)]);
    }

    #[test]
    fn majority_tie_goes_to_first_option() {
        let ratings = [rating(1, 1, "2"), rating(1, 2, "1")];
        let result = aggregate_field(&severity(), &ratings, FieldMethod::Majority).expect("single-choice");
        assert_eq!(result.label_text(0), Some("1"));
    }

    #[test]
    fn unknown_answers_are_skipped() {
        let ratings = [rating(1, 1, "7"), rating(2, 1, "0")];
        let result = aggregate_field(&severity(), &ratings, FieldMethod::Majority).expect("single-choice");
        assert_eq!(result.items, [1, 2]);
        assert_eq!(result.label_text(0), None, "the only answer of item 1 is not an option");
        assert_eq!(result.label_text(1), Some("0"));
    }

    #[test]
    fn text_field_has_no_aggregate() {
        let field = Field {
            kind: crate::domain::guideline::FieldKind::Text,
            options: Vec::new(),
            ..severity()
        };
        assert!(aggregate_field(&field, &[], FieldMethod::Majority).is_none());
    }

    #[test]
    fn dawid_skene_keeps_rater_order() {
        let mut ratings = Vec::new();
        for item in 0..20_i64 {
            let truth = (item % 3).to_string();
            ratings.push(rating(item, 5, &truth));
            ratings.push(rating(item, 3, &truth));
            ratings.push(rating(item, 4, &((item + 1) % 3).to_string()));
        }
        let result = aggregate_field(&severity(), &ratings, FieldMethod::DawidSkene(Stopping::default()))
            .expect("single-choice");
        assert_eq!(result.raters, [3, 4, 5]);
        let FieldEstimate::DawidSkene(estimate) = &result.estimate else {
            panic!("Dawid-Skene estimate")
        };
        let accuracy: Vec<f64> = estimate.rater_accuracy.iter().map(|a| a.expect("rated")).collect();
        assert!(
            accuracy[0] > 0.99 && accuracy[2] > 0.99,
            "agreeing graders are accurate: {accuracy:?}"
        );
        assert!(
            accuracy[1] < 0.01,
            "the grader who is always off by one is not: {accuracy:?}"
        );
        assert_eq!(result.label_text(result.item_index(4).expect("item 4")), Some("1"));
    }
}
