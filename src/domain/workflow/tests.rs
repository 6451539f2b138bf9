//! The transition table: every state against every event, allowed or rejected.

use std::collections::BTreeMap;

use super::*;
use crate::domain::consensus::ResolutionMethod;

fn resolve() -> Event {
    Event::RoundClosed(Decision::Resolve { method: ResolutionMethod::Majority, answers: BTreeMap::new() })
}

fn arbitrate() -> Event {
    Event::RoundClosed(Decision::Arbitrate)
}

fn adjudicate() -> Event {
    Event::RoundClosed(Decision::Adjudicate { round: 1 })
}

fn add_grader() -> Event {
    Event::RoundClosed(Decision::AddGrader)
}

/// Returns one state of each status. Rounds other than 0 show which transitions move the round.
fn states() -> Vec<State> {
    vec![
        State::Pending,
        State::Grading { round: 1 },
        State::Arbitration { round: 1 },
        State::Adjudication { round: 2 },
        State::Resolved { round: 1 },
        State::Excluded { previous: ItemStatus::Adjudication, round: 2 },
    ]
}

fn events() -> Vec<Event> {
    vec![
        Event::GradingStarted,
        resolve(),
        arbitrate(),
        adjudicate(),
        add_grader(),
        Event::Arbitrated,
        Event::Excluded,
        Event::Reopened,
        Event::PseudolabelAccepted,
    ]
}

/// Returns every state x event pair with its expected outcome: `Some(target)` or `None` (rejected).
fn table() -> Vec<(State, Event, Option<State>)> {
    use State::*;
    let pending = Pending;
    let grading = Grading { round: 1 };
    let arbitration = Arbitration { round: 1 };
    let adjudication = Adjudication { round: 2 };
    let resolved = Resolved { round: 1 };
    let excluded = Excluded { previous: ItemStatus::Adjudication, round: 2 };
    vec![
        (pending, Event::GradingStarted, Some(Grading { round: 0 })),
        (pending, resolve(), None),
        (pending, arbitrate(), None),
        (pending, adjudicate(), None),
        (pending, add_grader(), None),
        (pending, Event::Arbitrated, None),
        (pending, Event::Excluded, Some(Excluded { previous: ItemStatus::Pending, round: 0 })),
        (pending, Event::Reopened, None),
        (pending, Event::PseudolabelAccepted, Some(Resolved { round: 0 })),
        (grading, Event::GradingStarted, None),
        (grading, resolve(), Some(Resolved { round: 1 })),
        (grading, arbitrate(), Some(Arbitration { round: 1 })),
        (grading, adjudicate(), Some(Adjudication { round: 2 })),
        (grading, add_grader(), Some(Grading { round: 1 })),
        (grading, Event::Arbitrated, None),
        (grading, Event::Excluded, Some(Excluded { previous: ItemStatus::Grading, round: 1 })),
        (grading, Event::Reopened, None),
        (grading, Event::PseudolabelAccepted, Some(Resolved { round: 1 })),
        (arbitration, Event::GradingStarted, None),
        (arbitration, resolve(), None),
        (arbitration, arbitrate(), None),
        (arbitration, adjudicate(), None),
        (arbitration, add_grader(), None),
        (arbitration, Event::Arbitrated, Some(Resolved { round: 1 })),
        (arbitration, Event::Excluded, Some(Excluded { previous: ItemStatus::Arbitration, round: 1 })),
        (arbitration, Event::Reopened, None),
        (arbitration, Event::PseudolabelAccepted, None),
        (adjudication, Event::GradingStarted, None),
        (adjudication, resolve(), Some(Resolved { round: 2 })),
        (adjudication, arbitrate(), Some(Arbitration { round: 2 })),
        (adjudication, adjudicate(), Some(Adjudication { round: 3 })),
        (adjudication, add_grader(), None),
        (adjudication, Event::Arbitrated, None),
        (adjudication, Event::Excluded, Some(Excluded { previous: ItemStatus::Adjudication, round: 2 })),
        (adjudication, Event::Reopened, None),
        (adjudication, Event::PseudolabelAccepted, None),
        (resolved, Event::GradingStarted, None),
        (resolved, resolve(), None),
        (resolved, arbitrate(), None),
        (resolved, adjudicate(), None),
        (resolved, add_grader(), None),
        (resolved, Event::Arbitrated, None),
        (resolved, Event::Excluded, Some(Excluded { previous: ItemStatus::Resolved, round: 1 })),
        (resolved, Event::Reopened, Some(Grading { round: 2 })),
        (resolved, Event::PseudolabelAccepted, None),
        (excluded, Event::GradingStarted, None),
        (excluded, resolve(), None),
        (excluded, arbitrate(), None),
        (excluded, adjudicate(), None),
        (excluded, add_grader(), None),
        (excluded, Event::Arbitrated, None),
        (excluded, Event::Excluded, None),
        (excluded, Event::Reopened, Some(Adjudication { round: 2 })),
        (excluded, Event::PseudolabelAccepted, None),
    ]
}

#[test]
fn table_lists_every_pair_once() {
    let table = table();
    assert_eq!(table.len(), states().len() * events().len());
    for state in states() {
        for event in events() {
            let rows = table.iter().filter(|(s, e, _)| *s == state && *e == event).count();
            assert_eq!(rows, 1, "{state} x {event:?}");
        }
    }
    let statuses: Vec<ItemStatus> = states().into_iter().map(State::status).collect();
    assert_eq!(statuses, ItemStatus::ALL, "one state of each stored status");
}

#[test]
fn transitions_follow_table() {
    for (state, event, expected) in table() {
        let outcome = transition(state, &event);
        match expected {
            Some(target) => assert_eq!(outcome, Ok(target), "{state} x {event:?}"),
            None => {
                let error = outcome.expect_err(&format!("{state} x {event:?} must be rejected"));
                assert_eq!(error.state, state);
                assert_eq!(error.event, event.describe());
                assert!(!error.reason.is_empty());
            }
        }
    }
}

#[test]
fn rejection_message_names_state_and_reason() {
    let error = transition(State::Grading { round: 0 }, &Event::Arbitrated).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot arbitrate an item that is grading (round 0): only an item in arbitration takes a senior's decision"
    );
    let error = transition(State::Adjudication { round: 1 }, &add_grader()).unwrap_err();
    assert!(error.to_string().contains("keeps the graders of the round before it"), "{error}");
    let error = transition(State::Excluded { previous: ItemStatus::Grading, round: 0 }, &Event::GradingStarted).unwrap_err();
    assert!(error.to_string().contains("a lead must reopen it first"), "{error}");
}

#[test]
fn reopen_restores_state_before_exclusion() {
    let before = [
        State::Pending,
        State::Grading { round: 0 },
        State::Grading { round: 3 },
        State::Arbitration { round: 1 },
        State::Adjudication { round: 2 },
        State::Resolved { round: 0 },
    ];
    for state in before {
        let excluded = transition(state, &Event::Excluded).expect("exclude");
        assert_eq!(excluded.status(), ItemStatus::Excluded);
        assert_eq!(transition(excluded, &Event::Reopened), Ok(state), "{state}");
    }
}

#[test]
fn stored_state_round_trips() {
    for state in states() {
        let excluded_from = match state {
            State::Excluded { previous, .. } => Some(previous),
            _ => None,
        };
        assert_eq!(State::from_stored(state.status(), state.round(), excluded_from), state);
    }
}

#[test]
fn excluded_without_known_origin_reopens_into_grading() {
    let state = State::from_stored(ItemStatus::Excluded, 2, None);
    assert_eq!(transition(state, &Event::Reopened), Ok(State::Grading { round: 2 }));
}

#[test]
fn adjudication_ignores_decision_round_number() {
    let event = Event::RoundClosed(Decision::Adjudicate { round: 1 });
    assert_eq!(transition(State::Grading { round: 4 }, &event), Ok(State::Adjudication { round: 5 }));
}

#[test]
fn reason_is_required_and_trimmed() {
    assert_eq!(check_reason("  wrong eye  "), Ok("wrong eye".to_string()));
    assert!(check_reason("   ").unwrap_err().contains("reason is missing"));
    assert!(check_reason(&"x".repeat(MAX_REASON_CHARS + 1)).unwrap_err().contains("longer than"));
    assert!(check_message("").unwrap_err().contains("body is missing"));
}
