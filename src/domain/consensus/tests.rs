//! Unit tests of the consensus rules: unanimity, majority share, ordinal tolerance,
//! escalation by distance and independence from grade order.

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
options = [
  { value = "0", label = "0" }, { value = "1", label = "1" }, { value = "2", label = "2" },
  { value = "3", label = "3" }, { value = "4", label = "4" },
]
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

fn grades(values: &[Option<&str>]) -> Vec<Answers> {
    values.iter().map(|dr| grade(*dr)).collect()
}

fn decide_majority(grades: &[Answers], has_senior: bool) -> Decision {
    decide(&guideline(), grades, ResolutionPolicy::MajorityVote, &PolicyParams::default(), 0, has_senior)
}

fn with_tolerance(steps: u32) -> PolicyParams {
    PolicyParams { ordinal_tolerance: Some(steps), ..PolicyParams::default() }
}

fn with_escalation(max_steps: u32) -> PolicyParams {
    PolicyParams {
        escalation: Some(Escalation { field: "dr".into(), arbitration_max_steps: max_steps }),
        ..PolicyParams::default()
    }
}

fn resolved_dr(decision: &Decision) -> Option<&str> {
    match decision {
        Decision::Resolve { answers, .. } => answers.get("dr").and_then(AnswerValue::as_single),
        _ => None,
    }
}

/// Returns every ordering of `items`.
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut all = Vec::new();
    for index in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(index);
        for mut tail in permutations(&rest) {
            tail.insert(0, first.clone());
            all.push(tail);
        }
    }
    all
}

#[test]
fn unanimous_grades_resolve() {
    let decision = decide_majority(&grades(&[Some("1"), Some("1"), Some("1")]), true);
    let Decision::Resolve { method, answers } = decision else { panic!("not resolved") };
    assert_eq!(method, ResolutionMethod::Unanimous);
    assert_eq!(answers.get("dr"), Some(&AnswerValue::One("1".into())));
}

#[test]
fn two_of_three_is_majority() {
    let decision = decide_majority(&grades(&[Some("0"), Some("2"), Some("2")]), true);
    let Decision::Resolve { method, answers } = decision else { panic!("not resolved") };
    assert_eq!(method, ResolutionMethod::Majority);
    assert_eq!(answers.get("dr"), Some(&AnswerValue::One("2".into())));
}

#[test]
fn majority_share_is_respected() {
    let params = PolicyParams { majority_share: 0.75, ..PolicyParams::default() };
    let two_of_three = grades(&[Some("0"), Some("2"), Some("2")]);
    let decision = decide(&guideline(), &two_of_three, ResolutionPolicy::MajorityVote, &params, 0, true);
    assert_eq!(decision, Decision::Arbitrate, "2 of 3 is below a 0.75 share");
    let three_of_four = grades(&[Some("0"), Some("2"), Some("2"), Some("2")]);
    let decision = decide(&guideline(), &three_of_four, ResolutionPolicy::MajorityVote, &params, 0, true);
    assert_eq!(resolved_dr(&decision), Some("2"));
}

#[test]
fn decision_ignores_grade_order() {
    let sets = [
        grades(&[Some("0"), Some("2"), None]),
        grades(&[Some("1"), Some("2"), Some("2"), Some("3")]),
        grades(&[Some("0"), Some("1"), Some("3"), None]),
        grades(&[Some("4"), Some("3"), Some("3")]),
    ];
    let param_sets = [PolicyParams::default(), with_tolerance(1), with_tolerance(2), with_escalation(1)];
    let policies = [ResolutionPolicy::MajorityVote, ResolutionPolicy::SeniorArbitration, ResolutionPolicy::Adjudication];
    for set in &sets {
        for params in &param_sets {
            for policy in policies {
                let expected = assess(&guideline(), set, policy, params, 0, true);
                for order in permutations(set) {
                    let actual = assess(&guideline(), &order, policy, params, 0, true);
                    assert_eq!(actual, expected, "{policy:?} {params:?}");
                }
            }
        }
    }
}

#[test]
fn three_way_split_goes_to_senior() {
    let decision = decide_majority(&grades(&[Some("0"), Some("1"), Some("2")]), true);
    assert_eq!(decision, Decision::Arbitrate);
}

#[test]
fn tie_without_senior_adds_grader() {
    let decision = decide_majority(&grades(&[Some("0"), Some("1")]), false);
    assert_eq!(decision, Decision::AddGrader);
}

#[test]
fn adjudication_round_without_senior_waits_for_arbitration() {
    let split = grades(&[Some("0"), Some("1"), Some("2")]);
    let decision = decide(&guideline(), &split, ResolutionPolicy::MajorityVote, &PolicyParams::default(), 1, false);
    assert_eq!(decision, Decision::Arbitrate, "an adjudication round cannot take one more grader");
}

#[test]
fn ungradable_majority_resolves_without_dr() {
    let decision = decide_majority(&grades(&[None, None, Some("1")]), true);
    let Decision::Resolve { answers, .. } = decision else { panic!("not resolved") };
    assert_eq!(answers.get("gradability"), Some(&AnswerValue::One("ungradable".into())));
    assert_eq!(answers.get("dr"), None);
}

#[test]
fn unanimous_ungradable_resolves() {
    let decision = decide(&guideline(), &grades(&[None, None, None]), ResolutionPolicy::SeniorArbitration, &PolicyParams::default(), 0, true);
    let Decision::Resolve { method, answers } = decision else { panic!("not resolved") };
    assert_eq!(method, ResolutionMethod::Unanimous);
    assert_eq!(answers.get("gradability"), Some(&AnswerValue::One("ungradable".into())));
    assert_eq!(answers.len(), 1);
}

#[test]
fn adjudication_policy_opens_rounds_then_arbitration() {
    let split = grades(&[Some("0"), Some("2"), Some("2")]);
    let params = PolicyParams::default();
    let first = decide(&guideline(), &split, ResolutionPolicy::Adjudication, &params, 0, true);
    assert_eq!(first, Decision::Adjudicate { round: 1 });
    let second = decide(&guideline(), &split, ResolutionPolicy::Adjudication, &params, 1, true);
    assert_eq!(second, Decision::Adjudicate { round: 2 });
    let last = decide(&guideline(), &split, ResolutionPolicy::Adjudication, &params, 2, true);
    assert_eq!(last, Decision::Arbitrate);
}

#[test]
fn agreement_in_adjudication_round_is_adjudication() {
    let agreed = grades(&[Some("2"), Some("2"), Some("2")]);
    let decision = decide(&guideline(), &agreed, ResolutionPolicy::Adjudication, &PolicyParams::default(), 1, true);
    let Decision::Resolve { method, .. } = decision else { panic!("not resolved") };
    assert_eq!(method, ResolutionMethod::Adjudication);
}

#[test]
fn tolerance_resolves_to_median() {
    let spread_one = grades(&[Some("1"), Some("2"), Some("1")]);
    let decision = decide(&guideline(), &spread_one, ResolutionPolicy::SeniorArbitration, &with_tolerance(1), 0, true);
    assert_eq!(resolved_dr(&decision), Some("1"));
    let Decision::Resolve { method, .. } = decision else { panic!("not resolved") };
    assert_eq!(method, ResolutionMethod::Majority);

    let spread_two = grades(&[Some("0"), Some("2"), Some("1")]);
    let decision = decide(&guideline(), &spread_two, ResolutionPolicy::SeniorArbitration, &with_tolerance(2), 0, true);
    assert_eq!(resolved_dr(&decision), Some("1"));
}

#[test]
fn tolerance_takes_lower_median_of_even_count() {
    let pair = grades(&[Some("3"), Some("2")]);
    let decision = decide(&guideline(), &pair, ResolutionPolicy::SeniorArbitration, &with_tolerance(1), 0, true);
    assert_eq!(resolved_dr(&decision), Some("2"));
    let four = grades(&[Some("2"), Some("0"), Some("2"), Some("1")]);
    let decision = decide(&guideline(), &four, ResolutionPolicy::SeniorArbitration, &with_tolerance(2), 0, true);
    assert_eq!(resolved_dr(&decision), Some("1"), "sorted 0, 1, 2, 2: lower median is 1");
}

#[test]
fn tolerance_exceeded_is_disputed() {
    let far = grades(&[Some("0"), Some("2"), Some("2")]);
    let assessment = assess(&guideline(), &far, ResolutionPolicy::SeniorArbitration, &with_tolerance(1), 0, true);
    assert_eq!(assessment.decision, Decision::Arbitrate);
    let dr = assessment.fields.iter().find(|(name, _)| name == "dr").map(|(_, agreement)| agreement.clone());
    assert_eq!(dr, Some(FieldAgreement::Disputed { majority: Some(Some(AnswerValue::One("2".into()))), spread: Some(2) }));
    assert!(assessment.reason.contains("dr disputed (2, 0)"), "{}", assessment.reason);
}

#[test]
fn tolerance_needs_every_grader_asked() {
    let mixed = grades(&[Some("1"), Some("1"), None]);
    let decision = decide(&guideline(), &mixed, ResolutionPolicy::SeniorArbitration, &with_tolerance(4), 0, true);
    assert_eq!(decision, Decision::Arbitrate, "ungradable is an answer, not a step on the scale");
}

#[test]
fn field_tolerance_overrides_study_tolerance() {
    let mut params = with_tolerance(0);
    params.field_tolerance.insert("dr".into(), 1);
    let close = grades(&[Some("1"), Some("2")]);
    let decision = decide(&guideline(), &close, ResolutionPolicy::SeniorArbitration, &params, 0, true);
    assert_eq!(resolved_dr(&decision), Some("1"));
    params.field_tolerance.insert("dr".into(), 0);
    params.ordinal_tolerance = Some(3);
    let decision = decide(&guideline(), &close, ResolutionPolicy::SeniorArbitration, &params, 0, true);
    assert_eq!(decision, Decision::Arbitrate);
}

#[test]
fn tolerance_ignores_nominal_fields() {
    let params = with_tolerance(1);
    let field = guideline().field("gradability").cloned().expect("field");
    assert_eq!(params.tolerance_of(&field), None);
}

#[test]
fn escalation_routes_by_distance() {
    let policy = ResolutionPolicy::SeniorArbitration;
    let one_step = grades(&[Some("1"), Some("2"), Some("2")]);
    let two_steps = grades(&[Some("0"), Some("2"), Some("2")]);
    let not_asked = grades(&[Some("2"), Some("2"), None]);
    let params = with_escalation(1);
    assert_eq!(decide(&guideline(), &one_step, policy, &params, 0, true), Decision::Arbitrate);
    assert_eq!(decide(&guideline(), &two_steps, policy, &params, 0, true), Decision::Adjudicate { round: 1 });
    assert_eq!(decide(&guideline(), &not_asked, policy, &params, 0, true), Decision::Adjudicate { round: 1 });
    assert_eq!(decide(&guideline(), &two_steps, policy, &params, 2, true), Decision::Arbitrate, "rounds used up");
}

#[test]
fn escalation_follows_majority() {
    let two_steps = grades(&[Some("0"), Some("2"), Some("2")]);
    let decision = decide(&guideline(), &two_steps, ResolutionPolicy::MajorityVote, &with_escalation(1), 0, true);
    assert_eq!(resolved_dr(&decision), Some("2"), "a majority resolves before escalation applies");
    let split = grades(&[Some("0"), Some("2"), Some("4")]);
    let decision = decide(&guideline(), &split, ResolutionPolicy::MajorityVote, &with_escalation(1), 0, true);
    assert_eq!(decision, Decision::Adjudicate { round: 1 });
}

#[test]
fn escalation_on_unknown_field_is_ignored() {
    let params = PolicyParams {
        escalation: Some(Escalation { field: "gradability".into(), arbitration_max_steps: 0 }),
        ..PolicyParams::default()
    };
    let split = grades(&[Some("0"), Some("2"), Some("4")]);
    assert_eq!(decide(&guideline(), &split, ResolutionPolicy::SeniorArbitration, &params, 0, true), Decision::Arbitrate);
    assert!(params.check_fields(&guideline()).unwrap_err().contains("not an ordinal field"));
    assert_eq!(with_escalation(1).check_fields(&guideline()), Ok(()));
}

#[test]
fn params_read_from_json() {
    let empty: PolicyParams = serde_json::from_value(json!({})).expect("defaults");
    assert_eq!(empty, PolicyParams::default());
    let full: PolicyParams = serde_json::from_value(json!({
        "majority_share": 0.6,
        "ordinal_tolerance": 1,
        "field_tolerance": { "dr": 0 },
        "escalation": { "field": "dr", "arbitration_max_steps": 1 }
    }))
    .expect("full");
    assert_eq!(full.ordinal_tolerance, Some(1));
    assert_eq!(full.escalation.as_ref().map(|e| e.arbitration_max_steps), Some(1));
    assert!(serde_json::from_value::<PolicyParams>(json!({ "tolerance": 1 })).is_err());
    assert_eq!(serde_json::to_value(PolicyParams::default()).expect("json"), json!({ "majority_share": 0.5, "adjudication_rounds": 2 }));
}

#[test]
fn params_check_rejects_out_of_range() {
    assert!(with_tolerance(101).check().unwrap_err().contains("ordinal_tolerance"));
    assert!(with_escalation(101).check().unwrap_err().contains("arbitration_max_steps"));
    assert_eq!(with_tolerance(2).check(), Ok(()));
}
