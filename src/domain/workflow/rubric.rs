//! What a reviewer sees of an item's grades: the feature rubric and the model's advice.
//!
//! The rubric lists, field by field, each distinct answer with the pseudonyms of the graders
//! who gave it, flags the fields where answers differ, and names the plain majority (an
//! answer given by more than half of the graders). "Not asked" (the field's condition was
//! false for that grader) is an answer of its own, shown as `null`.
//!
//! For single-choice fields the reviewer also gets the Dawid-Skene posterior of the item,
//! estimated from the grades of many items of the study. It is advice: it weighs each
//! grader by their estimated accuracy on other items, and never decides anything.

use serde::Serialize;

use crate::domain::aggregate::study::{aggregate_field, FieldEstimate, FieldMethod, FieldRating};
use crate::domain::aggregate::Stopping;
use crate::domain::answers::{AnswerValue, Answers};
use crate::domain::consensus::{tally, FieldAnswer};
use crate::domain::guideline::{Field, FieldKind, Guideline};
use crate::domain::roles::ItemStatus;

/// The answers to one field, compared across graders.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldRubric {
    pub field: String,
    pub label: String,
    pub kind: FieldKind,
    /// True when the graders gave more than one distinct answer.
    pub disputed: bool,
    /// Each distinct answer, most frequent first.
    pub answers: Vec<RubricAnswer>,
    /// The answer given by more than half of the graders, if any.
    pub majority: Option<Majority>,
}

/// One distinct answer and who gave it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RubricAnswer {
    /// The answer, `None` for "not asked".
    pub answer: FieldAnswer,
    /// Pseudonyms of the graders who gave it, sorted.
    pub pseudonyms: Vec<String>,
}

/// A plain majority: `count` of `of` graders gave `answer`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Majority {
    pub answer: FieldAnswer,
    pub count: usize,
    pub of: usize,
}

/// Builds the rubric of every guideline field from `(pseudonym, answers)` pairs.
pub fn rubric(guideline: &Guideline, grades: &[(String, Answers)]) -> Vec<FieldRubric> {
    let answers: Vec<Answers> = grades.iter().map(|(_, answers)| answers.clone()).collect();
    let mut fields = Vec::with_capacity(guideline.fields.len());
    for field in &guideline.fields {
        let tallies = tally(&answers, &field.name);
        let rows: Vec<RubricAnswer> = tallies
            .iter()
            .map(|(answer, _)| {
                let mut pseudonyms: Vec<String> = grades
                    .iter()
                    .filter(|(_, grade)| grade.get(&field.name) == answer.as_ref())
                    .map(|(pseudonym, _)| pseudonym.clone())
                    .collect();
                pseudonyms.sort();
                RubricAnswer { answer: answer.clone(), pseudonyms }
            })
            .collect();
        let majority = tallies
            .first()
            .filter(|(_, count)| count * 2 > grades.len())
            .map(|(answer, count)| Majority { answer: answer.clone(), count: *count, of: grades.len() });
        fields.push(FieldRubric {
            field: field.name.clone(),
            label: field.label.clone(),
            kind: field.kind,
            disputed: rows.len() > 1,
            answers: rows,
            majority,
        });
    }
    fields
}

/// Returns the round whose grades a review shows. While adjudication round `r` is open this
/// is the round `r - 1` under adjudication, otherwise the item's current round.
pub fn reviewed_round(status: ItemStatus, round: i32) -> i32 {
    if status == ItemStatus::Adjudication {
        (round - 1).max(0)
    } else {
        round
    }
}

/// The Dawid-Skene estimate for one item and field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    /// The answer with the highest posterior probability.
    pub label: String,
    /// Probability of each answer some grader gave in the study, in the guideline's order.
    pub posterior: Vec<AnswerProbability>,
    /// Items and graders the estimate was computed from.
    pub items: usize,
    pub graders: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerProbability {
    pub answer: String,
    pub probability: f64,
}

/// Estimates the Dawid-Skene posterior of `item_id` for a single-choice `field` from
/// `ratings`, the answers to that field across the study, with [`aggregate_field`].
///
/// Returns `None` for fields that are not single-choice and when `item_id` has no rating of
/// the field (for example when every grader found the image ungradable). Ratings whose
/// answer is not an option of the field are skipped; a rater who rated an item twice counts
/// with the later rating.
pub fn dawid_skene_advice(field: &Field, ratings: &[FieldRating], item_id: i64) -> Option<Advice> {
    let aggregate = aggregate_field(field, ratings, FieldMethod::DawidSkene(Stopping::default()))?;
    let FieldEstimate::DawidSkene(estimate) = &aggregate.estimate else {
        return None;
    };
    let target = aggregate.item_index(item_id)?;
    let posterior = estimate.posterior(target)?;
    let label = aggregate.label_text(target)?.to_string();
    let posterior = estimate
        .categories_modeled
        .iter()
        .zip(posterior)
        .map(|(&category, &probability)| AnswerProbability { answer: aggregate.options[category].clone(), probability })
        .collect();
    Some(Advice { label, posterior, items: aggregate.items.len(), graders: aggregate.raters.len() })
}

/// Returns a grade's answer to a single-choice field as option text, if the field was asked.
pub fn single_answer(answers: &Answers, field: &str) -> Option<String> {
    answers.get(field).and_then(AnswerValue::as_single).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::answers::validate_answers;
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
options = [{ value = "0", label = "0" }, { value = "1", label = "1" }, { value = "2", label = "2" }]
"#,
        )
        .expect("guideline")
    }

    fn named(pseudonym: &str, dr: Option<&str>) -> (String, Answers) {
        let value = match dr {
            Some(dr) => json!({"gradability": "gradable", "dr": dr}),
            None => json!({"gradability": "ungradable"}),
        };
        (pseudonym.to_string(), validate_answers(&guideline(), &value).expect("valid"))
    }

    #[test]
    fn rubric_groups_pseudonyms_by_answer() {
        let grades = [named("Grader C", Some("2")), named("Grader A", Some("1")), named("Grader B", Some("2"))];
        let fields = rubric(&guideline(), &grades);
        assert_eq!(fields.len(), 2);
        assert!(!fields[0].disputed, "everyone found it gradable");
        let dr = &fields[1];
        assert!(dr.disputed);
        assert_eq!(dr.answers[0].answer, Some(AnswerValue::One("2".into())));
        assert_eq!(dr.answers[0].pseudonyms, ["Grader B", "Grader C"]);
        assert_eq!(dr.answers[1].pseudonyms, ["Grader A"]);
        assert_eq!(dr.majority, Some(Majority { answer: Some(AnswerValue::One("2".into())), count: 2, of: 3 }));
    }

    #[test]
    fn rubric_shows_not_asked_and_no_majority() {
        let grades = [named("Grader A", None), named("Grader B", Some("1"))];
        let dr = rubric(&guideline(), &grades).remove(1);
        assert!(dr.disputed);
        assert!(dr.answers.iter().any(|row| row.answer.is_none() && row.pseudonyms == ["Grader A"]));
        assert_eq!(dr.majority, None, "one of two is not more than half");
    }

    #[test]
    fn advice_follows_reliable_grader() {
        // Raters 1 and 2 agree on every item; rater 3 disagrees with them throughout.
        let mut ratings = Vec::new();
        for item in 0..30_i64 {
            let truth = (item % 3).to_string();
            let wrong = ((item + 1) % 3).to_string();
            ratings.push(FieldRating { item_id: item, rater_id: 1, answer: truth.clone() });
            ratings.push(FieldRating { item_id: item, rater_id: 2, answer: truth });
            ratings.push(FieldRating { item_id: item, rater_id: 3, answer: wrong });
        }
        let field = guideline().field("dr").cloned().expect("dr");
        let advice = dawid_skene_advice(&field, &ratings, 4).expect("advice");
        assert_eq!(advice.label, "1");
        assert_eq!(advice.items, 30);
        assert_eq!(advice.graders, 3);
        let total: f64 = advice.posterior.iter().map(|p| p.probability).sum();
        assert!((total - 1.0).abs() < 1e-6, "posterior sums to {total}");
        assert!(dawid_skene_advice(&field, &ratings, 99).is_none(), "an item without ratings has no advice");
    }
}
