//! What happens to an item once it has all the grades its round needs.
//!
//! Fields resolve separately: each field of the guideline is decided from the graders'
//! answers to it, where "not asked" (the field's condition was false for that grader) counts
//! as an answer of its own, so graders who agree an image is ungradable agree on every
//! dependent field too. The decision depends only on how many graders gave each answer,
//! never on the order the grades arrived in.
//!
//! - Every field unanimous: resolved, method `unanimous`.
//! - Majority vote: every field has one answer given by at least `majority_share` of the
//!   graders and by more graders than any other answer: resolved, method `majority`.
//!   Otherwise the item goes to arbitration when the study has a senior, or asks one more
//!   grader when it has none.
//! - Senior arbitration: any disagreement goes to arbitration.
//! - Adjudication: any disagreement opens the next adjudication round until
//!   `adjudication_rounds` rounds have run; what is left goes to arbitration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::answers::{AnswerValue, Answers};
use super::guideline::Guideline;
use super::roles::ResolutionPolicy;

/// How a resolution was reached; stored in `resolutions.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResolutionMethod {
    Unanimous,
    Majority,
    Arbitration,
    Adjudication,
    Model,
    Imported,
}

impl ResolutionMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionMethod::Unanimous => "unanimous",
            ResolutionMethod::Majority => "majority",
            ResolutionMethod::Arbitration => "arbitration",
            ResolutionMethod::Adjudication => "adjudication",
            ResolutionMethod::Model => "model",
            ResolutionMethod::Imported => "imported",
        }
    }
}

/// The parameters of a study's policy, stored as JSON in `projects.policy_params`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyParams {
    /// Share of graders that must give the same answer for a majority, in (0, 1].
    pub majority_share: f64,
    /// Adjudication rounds before a senior arbitrates what is left.
    pub adjudication_rounds: u32,
}

impl Default for PolicyParams {
    fn default() -> Self {
        PolicyParams { majority_share: 0.5, adjudication_rounds: 2 }
    }
}

impl PolicyParams {
    /// Checks the parameters; the error names the parameter and its valid range.
    pub fn check(&self) -> Result<(), String> {
        if !(self.majority_share > 0.0 && self.majority_share <= 1.0) {
            return Err(format!("majority_share {} is out of range: give a share above 0 and at most 1", self.majority_share));
        }
        if self.adjudication_rounds == 0 || self.adjudication_rounds > 10 {
            return Err(format!("adjudication_rounds {} is out of range: give 1 to 10", self.adjudication_rounds));
        }
        Ok(())
    }
}

/// The next step for an item whose round has all its grades.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Final answers and how they were reached.
    Resolve { method: ResolutionMethod, answers: BTreeMap<String, AnswerValue> },
    /// A senior decides.
    Arbitrate,
    /// Graders see each other's grades and grade again in this round.
    Adjudicate { round: i32 },
    /// One more grader is needed (majority vote without a senior).
    AddGrader,
}

/// The answer of one grader to one field: a value, or not asked.
type FieldAnswer = Option<AnswerValue>;

/// Counts of each answer to one field, most frequent first; ties keep the first-seen order
/// of a sorted key so the result never depends on grade order.
fn tally(grades: &[Answers], field: &str) -> Vec<(FieldAnswer, usize)> {
    let mut counts: BTreeMap<Option<String>, (FieldAnswer, usize)> = BTreeMap::new();
    for grade in grades {
        let answer = grade.get(field).cloned();
        let key = answer.as_ref().map(AnswerValue::to_cell);
        counts.entry(key).or_insert((answer, 0)).1 += 1;
    }
    let mut tallies: Vec<(FieldAnswer, usize)> = counts.into_values().collect();
    tallies.sort_by(|a, b| b.1.cmp(&a.1));
    tallies
}

/// Decides an item's next step from the current grades of its round.
///
/// `round` is the round these grades belong to (0 for the first grading), `has_senior`
/// whether the study has a senior who can arbitrate.
pub fn decide(
    guideline: &Guideline,
    grades: &[Answers],
    policy: ResolutionPolicy,
    params: &PolicyParams,
    round: i32,
    has_senior: bool,
) -> Decision {
    let mut unanimous = true;
    let mut majority = true;
    let mut answers = BTreeMap::new();
    for field in &guideline.fields {
        let tallies = tally(grades, &field.name);
        let Some((top_answer, top_count)) = tallies.first().cloned() else {
            continue;
        };
        if tallies.len() > 1 {
            unanimous = false;
        }
        let runner_up = tallies.get(1).map_or(0, |(_, count)| *count);
        let share = top_count as f64 / grades.len().max(1) as f64;
        if top_count == runner_up || share < params.majority_share {
            majority = false;
        }
        if let Some(value) = top_answer {
            answers.insert(field.name.clone(), value);
        }
    }

    if unanimous {
        let method = if round > 0 { ResolutionMethod::Adjudication } else { ResolutionMethod::Unanimous };
        return Decision::Resolve { method, answers };
    }
    match policy {
        ResolutionPolicy::MajorityVote if majority => Decision::Resolve { method: ResolutionMethod::Majority, answers },
        ResolutionPolicy::MajorityVote if has_senior => Decision::Arbitrate,
        ResolutionPolicy::MajorityVote => Decision::AddGrader,
        ResolutionPolicy::SeniorArbitration => Decision::Arbitrate,
        ResolutionPolicy::Adjudication if round < params.adjudication_rounds as i32 => Decision::Adjudicate { round: round + 1 },
        ResolutionPolicy::Adjudication => Decision::Arbitrate,
    }
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

    fn grade(dr: Option<&str>) -> Answers {
        let value = match dr {
            Some(dr) => json!({"gradability": "gradable", "dr": dr}),
            None => json!({"gradability": "ungradable"}),
        };
        validate_answers(&guideline(), &value).expect("valid")
    }

    fn decide_majority(grades: &[Answers], has_senior: bool) -> Decision {
        decide(&guideline(), grades, ResolutionPolicy::MajorityVote, &PolicyParams::default(), 0, has_senior)
    }

    #[test]
    fn unanimous_grades_resolve() {
        let decision = decide_majority(&[grade(Some("1")), grade(Some("1")), grade(Some("1"))], true);
        let Decision::Resolve { method, answers } = decision else { panic!("not resolved") };
        assert_eq!(method, ResolutionMethod::Unanimous);
        assert_eq!(answers.get("dr"), Some(&AnswerValue::One("1".into())));
    }

    #[test]
    fn two_of_three_is_majority() {
        let decision = decide_majority(&[grade(Some("0")), grade(Some("2")), grade(Some("2"))], true);
        let Decision::Resolve { method, answers } = decision else { panic!("not resolved") };
        assert_eq!(method, ResolutionMethod::Majority);
        assert_eq!(answers.get("dr"), Some(&AnswerValue::One("2".into())));
    }

    #[test]
    fn decision_ignores_grade_order() {
        let grades = [grade(Some("0")), grade(Some("2")), grade(None)];
        let reversed = [grade(None), grade(Some("2")), grade(Some("0"))];
        assert_eq!(decide_majority(&grades, true), decide_majority(&reversed, true));
    }

    #[test]
    fn three_way_split_goes_to_senior() {
        let decision = decide_majority(&[grade(Some("0")), grade(Some("1")), grade(Some("2"))], true);
        assert_eq!(decision, Decision::Arbitrate);
    }

    #[test]
    fn tie_without_senior_adds_grader() {
        let decision = decide_majority(&[grade(Some("0")), grade(Some("1"))], false);
        assert_eq!(decision, Decision::AddGrader);
    }

    #[test]
    fn ungradable_majority_resolves_without_dr() {
        let decision = decide_majority(&[grade(None), grade(None), grade(Some("1"))], true);
        let Decision::Resolve { answers, .. } = decision else { panic!("not resolved") };
        assert_eq!(answers.get("gradability"), Some(&AnswerValue::One("ungradable".into())));
        assert_eq!(answers.get("dr"), None);
    }

    #[test]
    fn adjudication_policy_opens_rounds_then_arbitration() {
        let grades = [grade(Some("0")), grade(Some("2")), grade(Some("2"))];
        let params = PolicyParams::default();
        let first = decide(&guideline(), &grades, ResolutionPolicy::Adjudication, &params, 0, true);
        assert_eq!(first, Decision::Adjudicate { round: 1 });
        let last = decide(&guideline(), &grades, ResolutionPolicy::Adjudication, &params, 2, true);
        assert_eq!(last, Decision::Arbitrate);
    }

    #[test]
    fn agreement_in_adjudication_round_is_adjudication() {
        let grades = [grade(Some("2")), grade(Some("2")), grade(Some("2"))];
        let decision = decide(&guideline(), &grades, ResolutionPolicy::Adjudication, &PolicyParams::default(), 1, true);
        let Decision::Resolve { method, .. } = decision else { panic!("not resolved") };
        assert_eq!(method, ResolutionMethod::Adjudication);
    }
}
