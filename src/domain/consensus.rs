//! What happens to an item once it has all the grades its round needs.
//!
//! Fields resolve separately: each field of the guideline is decided from the graders'
//! answers to it, where "not asked" (the field's condition was false for that grader) counts
//! as an answer of its own, so graders who agree an image is ungradable agree on every
//! dependent field too. The decision depends only on how many graders gave each answer,
//! never on the order the grades arrived in.
//!
//! A field agrees when every grader gave the same answer, or, for an ordinal field with a
//! tolerance of `k` steps ([`PolicyParams::ordinal_tolerance`], overridden per field by
//! [`PolicyParams::field_tolerance`]), when every grader answered it and all answers lie
//! within `k` steps of each other. Such a field resolves to the median answer, the lower
//! median when the count is even, so the result is always an answer a grader gave.
//!
//! - Every field unanimous: resolved, method `unanimous` (`adjudication` in an adjudication
//!   round).
//! - Every field agrees, some only within tolerance: resolved, method `majority`
//!   (`adjudication` in an adjudication round); the schema has no method of its own for it,
//!   and [`Assessment::reason`] names the fields resolved to the median.
//! - Majority vote: every field that does not agree has one answer given by at least
//!   `majority_share` of the graders and by more graders than any other answer: resolved,
//!   method `majority`. Otherwise the item goes to arbitration when the study has a senior,
//!   or asks one more grader when it has none.
//! - Senior arbitration: any disagreement goes to arbitration.
//! - Adjudication: any disagreement opens the next adjudication round until
//!   `adjudication_rounds` rounds have run; what is left goes to arbitration.
//!
//! Escalation by distance ([`PolicyParams::escalation`]) replaces the last step of every
//! policy for items that do not resolve: when the answers to the named ordinal field lie
//! within `arbitration_max_steps` steps, the item goes to arbitration; when they lie further
//! apart, or some grader was not asked the field, it opens an adjudication round while
//! `adjudication_rounds` allows one, then goes to arbitration. Under majority vote without a
//! senior, arbitration is replaced by one more grader as above.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::answers::{AnswerValue, Answers};
use super::guideline::{Field, FieldKind, Guideline};
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

/// Largest tolerance or escalation distance accepted, in steps of an ordinal scale.
const MAX_STEPS: u32 = 100;

/// The parameters of a study's policy, stored as JSON in `projects.policy_params`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyParams {
    /// Share of graders that must give the same answer for a majority, in (0, 1].
    pub majority_share: f64,
    /// Adjudication rounds before a senior arbitrates what is left.
    pub adjudication_rounds: u32,
    /// Steps within which the answers to an ordinal field agree; `None` asks for equal
    /// answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordinal_tolerance: Option<u32>,
    /// Tolerance of single ordinal fields by name, overriding `ordinal_tolerance`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub field_tolerance: BTreeMap<String, u32>,
    /// Routes disagreements by the distance between the answers to one ordinal field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
}

/// Escalation by distance: how far apart the answers to `field` may lie for a senior to
/// arbitrate directly instead of opening an adjudication round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Name of an ordinal field of the guideline.
    pub field: String,
    /// Largest distance, in steps, that goes to arbitration; larger ones go to adjudication.
    pub arbitration_max_steps: u32,
}

impl Default for PolicyParams {
    fn default() -> Self {
        PolicyParams {
            majority_share: 0.5,
            adjudication_rounds: 2,
            ordinal_tolerance: None,
            field_tolerance: BTreeMap::new(),
            escalation: None,
        }
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
        if let Some(steps) = self.ordinal_tolerance.filter(|steps| *steps > MAX_STEPS) {
            return Err(format!("ordinal_tolerance {steps} is out of range: give 0 to {MAX_STEPS} steps"));
        }
        if let Some((field, steps)) = self.field_tolerance.iter().find(|(_, steps)| **steps > MAX_STEPS) {
            return Err(format!("field_tolerance of {field} is {steps}, out of range: give 0 to {MAX_STEPS} steps"));
        }
        if let Some(escalation) = &self.escalation {
            if escalation.field.trim().is_empty() {
                return Err("escalation.field is empty: name an ordinal field of the guideline".into());
            }
            if escalation.arbitration_max_steps > MAX_STEPS {
                return Err(format!(
                    "escalation.arbitration_max_steps {} is out of range: give 0 to {MAX_STEPS} steps",
                    escalation.arbitration_max_steps
                ));
            }
        }
        Ok(())
    }

    /// Checks that every field the parameters name is an ordinal field of `guideline`.
    ///
    /// [`decide`] ignores a tolerance or escalation that names any other field, so a study
    /// should be checked with this when it is created.
    pub fn check_fields(&self, guideline: &Guideline) -> Result<(), String> {
        let is_ordinal = |name: &str| guideline.field(name).is_some_and(|field| field.kind == FieldKind::Ordinal);
        if let Some(name) = self.field_tolerance.keys().find(|name| !is_ordinal(name)) {
            return Err(format!("field_tolerance names {name:?}, which is not an ordinal field of guideline {}", guideline.key));
        }
        if let Some(escalation) = self.escalation.as_ref().filter(|e| !is_ordinal(&e.field)) {
            return Err(format!(
                "escalation.field {:?} is not an ordinal field of guideline {}",
                escalation.field, guideline.key
            ));
        }
        Ok(())
    }

    /// Returns the tolerance of a field in steps: its own, else the study-wide one for ordinal
    /// fields, and none for other kinds.
    pub fn tolerance_of(&self, field: &Field) -> Option<u32> {
        if field.kind != FieldKind::Ordinal {
            return None;
        }
        self.field_tolerance.get(&field.name).copied().or(self.ordinal_tolerance)
    }
}

/// The next step for an item whose round has all its grades.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Final answers and how they were reached.
    Resolve { method: ResolutionMethod, answers: BTreeMap<String, AnswerValue> },
    /// A senior decides.
    Arbitrate,
    /// Graders see each other's grades and grade again. `round` counts rounds since the item
    /// last entered grading (1 for the first adjudication round); the item's own round
    /// number is the workflow's business.
    Adjudicate { round: i32 },
    /// One more grader is needed (majority vote without a senior).
    AddGrader,
}

/// The answer of one grader to one field: a value, or not asked.
pub type FieldAnswer = Option<AnswerValue>;

/// How the answers to one field compare.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldAgreement {
    /// Every grader gave this answer (`None`: none was asked the field).
    Unanimous(FieldAnswer),
    /// Every answer lies within the field's tolerance; `median` is the lower median and
    /// `spread` the distance between the lowest and highest answer, in steps.
    WithinTolerance { median: AnswerValue, spread: u32 },
    /// The answers differ. `majority` is the answer that reaches the majority share and beats
    /// every other answer, if one does. `spread` is the distance in steps, known only for an
    /// ordinal field that every grader answered.
    Disputed { majority: Option<FieldAnswer>, spread: Option<u32> },
}

/// A decision with the per-field comparison behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub decision: Decision,
    /// Each field of the guideline in guideline order; fields nobody answered are left out.
    pub fields: Vec<(String, FieldAgreement)>,
    /// One line for the audit trail and the resolution: which fields differed and why the
    /// decision followed.
    pub reason: String,
}

/// Counts of each answer to one field, most frequent first; ties keep the first-seen order
/// of a sorted key so the result never depends on grade order.
pub fn tally(grades: &[Answers], field: &str) -> Vec<(FieldAnswer, usize)> {
    let mut counts: BTreeMap<Option<String>, (FieldAnswer, usize)> = BTreeMap::new();
    for grade in grades {
        let answer = grade.get(field).cloned();
        let key = answer.as_ref().map(AnswerValue::to_cell);
        counts.entry(key).or_insert((answer, 0)).1 += 1;
    }
    let mut tallies: Vec<(FieldAnswer, usize)> = counts.into_values().collect();
    tallies.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    tallies
}

/// Returns the sorted positions of every grader's answer on the field's scale. Returns `None`
/// when a grader was not asked the field or gave a value that is not one of its options.
fn scale_positions(field: &Field, grades: &[Answers]) -> Option<Vec<usize>> {
    let mut positions = Vec::with_capacity(grades.len());
    for grade in grades {
        let value = grade.get(&field.name)?.as_single()?;
        positions.push(field.options.iter().position(|option| option.value == value)?);
    }
    positions.sort_unstable();
    Some(positions)
}

/// Returns the distance in steps between the lowest and highest answer to an ordinal field.
fn spread_of(field: &Field, grades: &[Answers]) -> Option<u32> {
    if field.kind != FieldKind::Ordinal {
        return None;
    }
    let positions = scale_positions(field, grades)?;
    let (first, last) = (positions.first()?, positions.last()?);
    Some((last - first) as u32)
}

/// Compares the answers to one field. Returns `None` when there are no grades.
fn compare_field(field: &Field, grades: &[Answers], params: &PolicyParams) -> Option<FieldAgreement> {
    let tallies = tally(grades, &field.name);
    let (top_answer, top_count) = tallies.first().cloned()?;
    if tallies.len() == 1 {
        return Some(FieldAgreement::Unanimous(top_answer));
    }
    let spread = spread_of(field, grades);
    if let (Some(tolerance), Some(spread)) = (params.tolerance_of(field), spread) {
        if spread <= tolerance {
            let positions = scale_positions(field, grades)?;
            let median = positions[(positions.len() - 1) / 2];
            let value = AnswerValue::One(field.options[median].value.clone());
            return Some(FieldAgreement::WithinTolerance { median: value, spread });
        }
    }
    let runner_up = tallies.get(1).map_or(0, |(_, count)| *count);
    let share = top_count as f64 / grades.len().max(1) as f64;
    let majority = (top_count > runner_up && share >= params.majority_share).then_some(top_answer);
    Some(FieldAgreement::Disputed { majority, spread })
}

/// Formats one answer for the reason line: its value or "not asked".
fn describe(answer: &FieldAnswer) -> String {
    answer.as_ref().map_or_else(|| "not asked".to_string(), AnswerValue::to_cell)
}

/// Decides an item's next step from the current grades of its round; [`assess`] without the
/// per-field detail.
pub fn decide(
    guideline: &Guideline,
    grades: &[Answers],
    policy: ResolutionPolicy,
    params: &PolicyParams,
    round: i32,
    has_senior: bool,
) -> Decision {
    assess(guideline, grades, policy, params, round, has_senior).decision
}

/// Decides an item's next step from the current grades of its round, with the per-field
/// comparison and a reason line.
///
/// `round` counts rounds since the item last entered grading: 0 for a grading round and `r`
/// for the `r`-th adjudication round after it. `has_senior` tells whether the study has a
/// senior who can arbitrate.
pub fn assess(
    guideline: &Guideline,
    grades: &[Answers],
    policy: ResolutionPolicy,
    params: &PolicyParams,
    round: i32,
    has_senior: bool,
) -> Assessment {
    let mut fields = Vec::new();
    let mut answers = BTreeMap::new();
    let mut notes = Vec::new();
    let mut unanimous = true;
    let mut agreed = true;
    let mut every_dispute_has_majority = true;
    for field in &guideline.fields {
        let Some(agreement) = compare_field(field, grades, params) else {
            continue;
        };
        match &agreement {
            FieldAgreement::Unanimous(answer) => {
                if let Some(value) = answer {
                    answers.insert(field.name.clone(), value.clone());
                }
            }
            FieldAgreement::WithinTolerance { median, spread } => {
                unanimous = false;
                answers.insert(field.name.clone(), median.clone());
                notes.push(format!("{} within {spread} step(s), median {}", field.name, median.to_cell()));
            }
            FieldAgreement::Disputed { majority, .. } => {
                unanimous = false;
                agreed = false;
                let given: Vec<String> = tally(grades, &field.name).iter().map(|(answer, _)| describe(answer)).collect();
                match majority {
                    Some(answer) => {
                        if let Some(value) = answer {
                            answers.insert(field.name.clone(), value.clone());
                        }
                        notes.push(format!("{} disputed ({}), majority {}", field.name, given.join(", "), describe(answer)));
                    }
                    None => {
                        every_dispute_has_majority = false;
                        notes.push(format!("{} disputed ({}), no majority", field.name, given.join(", ")));
                    }
                }
            }
        }
        fields.push((field.name.clone(), agreement));
    }

    let in_adjudication = round > 0;
    let agreed_method = |method| if in_adjudication { ResolutionMethod::Adjudication } else { method };
    let (decision, step) = if unanimous {
        (Decision::Resolve { method: agreed_method(ResolutionMethod::Unanimous), answers }, "every field unanimous".to_string())
    } else if agreed {
        (Decision::Resolve { method: agreed_method(ResolutionMethod::Majority), answers }, "every field agrees".to_string())
    } else if policy == ResolutionPolicy::MajorityVote && every_dispute_has_majority {
        (Decision::Resolve { method: ResolutionMethod::Majority, answers }, "majority vote".to_string())
    } else {
        route_disagreement(guideline, grades, policy, params, round, has_senior)
    };
    notes.push(step);
    Assessment { decision, fields, reason: notes.join("; ") }
}

/// Routes grades that do not resolve: returns the next step and its words for the reason line.
fn route_disagreement(
    guideline: &Guideline,
    grades: &[Answers],
    policy: ResolutionPolicy,
    params: &PolicyParams,
    round: i32,
    has_senior: bool,
) -> (Decision, String) {
    let rounds_left = round < params.adjudication_rounds as i32;
    let escalation = params
        .escalation
        .as_ref()
        .and_then(|escalation| Some((escalation, guideline.field(&escalation.field).filter(|f| f.kind == FieldKind::Ordinal)?)));
    let (decision, mut step) = match escalation {
        Some((escalation, field)) => {
            let spread = spread_of(field, grades);
            let distance = spread.map_or_else(|| "not asked of every grader".to_string(), |steps| format!("{steps} step(s) apart"));
            let close = spread.is_some_and(|steps| steps <= escalation.arbitration_max_steps);
            if !close && rounds_left {
                (Decision::Adjudicate { round: round + 1 }, format!("escalation: {} {distance}, adjudication", field.name))
            } else {
                (Decision::Arbitrate, format!("escalation: {} {distance}, arbitration", field.name))
            }
        }
        None => match policy {
            ResolutionPolicy::MajorityVote => (Decision::Arbitrate, "no majority, arbitration".to_string()),
            ResolutionPolicy::SeniorArbitration => (Decision::Arbitrate, "senior arbitration".to_string()),
            ResolutionPolicy::Adjudication if rounds_left => {
                (Decision::Adjudicate { round: round + 1 }, format!("adjudication round {}", round + 1))
            }
            ResolutionPolicy::Adjudication => (Decision::Arbitrate, "adjudication rounds used up, arbitration".to_string()),
        },
    };
    // Majority vote without a senior asks one more grader instead of waiting for one. An
    // adjudication round has a fixed set of graders, so there the item waits for a senior.
    if decision == Decision::Arbitrate && policy == ResolutionPolicy::MajorityVote && !has_senior && round == 0 {
        step = "no majority and no senior, one more grader".to_string();
        return (Decision::AddGrader, step);
    }
    (decision, step)
}

#[cfg(test)]
mod tests;
