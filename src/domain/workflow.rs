//! The item workflow as a state machine: which events move an item between states.
//!
//! ```text
//! pending          -- grading started          --> grading(0)
//! grading(r)       -- round closed: resolve    --> resolved(r)
//! grading(r)       -- round closed: arbitrate  --> arbitration(r)
//! grading(r)       -- round closed: adjudicate --> adjudication(r + 1)
//! grading(r)       -- round closed: add grader --> grading(r)
//! adjudication(r)  -- round closed: resolve    --> resolved(r)
//! adjudication(r)  -- round closed: adjudicate --> adjudication(r + 1)
//! adjudication(r)  -- round closed: arbitrate  --> arbitration(r)
//! arbitration(r)   -- arbitrated               --> resolved(r)
//! pending          -- pseudolabel accepted     --> resolved(0)
//! grading(r)       -- pseudolabel accepted     --> resolved(r)
//! resolved(r)      -- reopened                 --> grading(r + 1)
//! any but excluded -- excluded                 --> excluded
//! excluded         -- reopened                 --> the state it was excluded from
//! ```
//!
//! Every other pair is rejected with a reason.
//!
//! - A resolved item reopens into grading in a new round `r + 1`: it is graded again from
//!   scratch, and its last resolution stays current until the new round resolves and
//!   supersedes it.
//! - An excluded item reopens into exactly the state it was excluded from, with its round,
//!   grades and assignments, so an exclusion made by mistake is undone without losing
//!   work. The state it was excluded from is part of [`State::Excluded`].
//! - A lead may accept a model's pseudolabel only for an item that no round has decided yet
//!   (pending or in grading). Items in arbitration or adjudication already have grades that
//!   disagree, and those go to a senior or to the graders, not to the model.
//! - An adjudication round keeps the graders of the round before it, so a decision to add a
//!   grader is rejected there. When one of them stops being a grader, [`departure`] decides
//!   whether the round waits, closes or goes to arbitration.
//!
//! [`transition`] is the only place these rules are written; the store applies its result
//! and records every transition in the audit trail.

pub mod departure;
pub mod permissions;
pub mod rubric;

use std::fmt;

use super::consensus::Decision;
use super::roles::ItemStatus;

/// Maximum length of the reason for an exclusion, a reopening or an arbitration, in characters.
pub const MAX_REASON_CHARS: usize = 2_000;

/// Maximum length of a discussion message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 10_000;

/// An item's place in the workflow, with its round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not leased or graded yet; always round 0.
    Pending,
    /// Graders grade blind to each other in `round`.
    Grading { round: i32 },
    /// The grades of `round` are waiting for a senior's decision.
    Arbitration { round: i32 },
    /// The graders of round `round - 1` see each other's grades and grade again in `round`.
    Adjudication { round: i32 },
    /// A resolution was reached after `round`.
    Resolved { round: i32 },
    /// Left out of the study by a lead. `previous` is the status it was excluded from (never
    /// `Excluded`) and `round` its round then, so that a reopening can restore both.
    Excluded { previous: ItemStatus, round: i32 },
}

impl State {
    /// Rebuilds a state from the stored status and round, and for an excluded item the status
    /// it was excluded from (`None` when unknown: the item then reopens into grading).
    pub fn from_stored(status: ItemStatus, round: i32, excluded_from: Option<ItemStatus>) -> State {
        match status {
            ItemStatus::Pending => State::Pending,
            ItemStatus::Grading => State::Grading { round },
            ItemStatus::Arbitration => State::Arbitration { round },
            ItemStatus::Adjudication => State::Adjudication { round },
            ItemStatus::Resolved => State::Resolved { round },
            ItemStatus::Excluded => {
                let previous = excluded_from.filter(|status| *status != ItemStatus::Excluded).unwrap_or(ItemStatus::Grading);
                State::Excluded { previous, round }
            }
        }
    }

    /// Returns the status stored in `items.status`.
    pub fn status(self) -> ItemStatus {
        match self {
            State::Pending => ItemStatus::Pending,
            State::Grading { .. } => ItemStatus::Grading,
            State::Arbitration { .. } => ItemStatus::Arbitration,
            State::Adjudication { .. } => ItemStatus::Adjudication,
            State::Resolved { .. } => ItemStatus::Resolved,
            State::Excluded { .. } => ItemStatus::Excluded,
        }
    }

    /// Returns the round stored in `items.round`.
    pub fn round(self) -> i32 {
        match self {
            State::Pending => 0,
            State::Grading { round }
            | State::Arbitration { round }
            | State::Adjudication { round }
            | State::Resolved { round }
            | State::Excluded { round, .. } => round,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Pending => write!(f, "pending"),
            State::Excluded { .. } => write!(f, "excluded"),
            other => write!(f, "{} (round {})", other.status().as_str(), other.round()),
        }
    }
}

/// Something that happens to an item.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A grader leased or graded the item for the first time.
    GradingStarted,
    /// The current round has all its grades and the study's policy decided the next step.
    RoundClosed(Decision),
    /// A senior decided the answers of an item in arbitration.
    Arbitrated,
    /// A lead excluded the item, with a reason.
    Excluded,
    /// A lead reopened a resolved or excluded item, with a reason.
    Reopened,
    /// A lead accepted a model run's pseudolabel as the item's resolution.
    PseudolabelAccepted,
}

impl Event {
    /// Returns the event as a verb phrase, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Event::GradingStarted => "start grading",
            Event::RoundClosed(Decision::Resolve { .. }) => "resolve the round",
            Event::RoundClosed(Decision::Arbitrate) => "send the round to arbitration",
            Event::RoundClosed(Decision::Adjudicate { .. }) => "open an adjudication round",
            Event::RoundClosed(Decision::AddGrader) => "add a grader to the round",
            Event::Arbitrated => "arbitrate",
            Event::Excluded => "exclude",
            Event::Reopened => "reopen",
            Event::PseudolabelAccepted => "accept a pseudolabel for",
        }
    }
}

/// A transition the workflow does not allow, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event} an item that is {state}: {reason}")]
pub struct TransitionError {
    pub state: State,
    pub event: &'static str,
    pub reason: &'static str,
}

/// Applies one event to a state and returns the new state, or why the event is not allowed.
///
/// A round decision to adjudicate always opens round `r + 1` of the item, whatever round
/// number the decision carries, because the policy counts rounds from the last time the
/// item entered grading.
pub fn transition(state: State, event: &Event) -> Result<State, TransitionError> {
    let reject = |reason| Err(TransitionError { state, event: event.describe(), reason });
    match (state, event) {
        (State::Excluded { .. }, Event::Reopened) => Ok(resume(state)),
        (State::Excluded { .. }, Event::Excluded) => reject("it is already excluded"),
        (State::Excluded { .. }, _) => reject("it is excluded; a lead must reopen it first"),
        (_, Event::Excluded) => Ok(State::Excluded { previous: state.status(), round: state.round() }),

        (State::Pending, Event::GradingStarted) => Ok(State::Grading { round: 0 }),
        (_, Event::GradingStarted) => reject("grading has already started"),

        (State::Pending, Event::PseudolabelAccepted) => Ok(State::Resolved { round: 0 }),
        (State::Grading { round }, Event::PseudolabelAccepted) => Ok(State::Resolved { round }),
        (_, Event::PseudolabelAccepted) => {
            reject("only a pending item or one in grading takes a pseudolabel; its grades decide the rest")
        }

        (State::Grading { round }, Event::RoundClosed(decision)) => Ok(after_round(round, decision)),
        (State::Adjudication { .. }, Event::RoundClosed(Decision::AddGrader)) => {
            reject("an adjudication round keeps the graders of the round before it, so no grader can be added")
        }
        (State::Adjudication { round }, Event::RoundClosed(decision)) => Ok(after_round(round, decision)),
        (_, Event::RoundClosed(_)) => reject("only an item in grading or adjudication has a round to close"),

        (State::Arbitration { round }, Event::Arbitrated) => Ok(State::Resolved { round }),
        (_, Event::Arbitrated) => reject("only an item in arbitration takes a senior's decision"),

        (State::Resolved { round }, Event::Reopened) => Ok(State::Grading { round: round + 1 }),
        (_, Event::Reopened) => reject("only a resolved or excluded item can be reopened"),
    }
}

/// Returns the state after a round of `round` closed with `decision`.
fn after_round(round: i32, decision: &Decision) -> State {
    match decision {
        Decision::Resolve { .. } => State::Resolved { round },
        Decision::Arbitrate => State::Arbitration { round },
        Decision::Adjudicate { .. } => State::Adjudication { round: round + 1 },
        Decision::AddGrader => State::Grading { round },
    }
}

/// Returns the state an excluded item goes back to.
fn resume(state: State) -> State {
    let State::Excluded { previous, round } = state else {
        return state;
    };
    State::from_stored(previous, round, None)
}

/// Checks the reason a lead or senior gives and returns it trimmed.
///
/// Fails with a message naming the limit when the reason is empty or longer than
/// [`MAX_REASON_CHARS`].
pub fn check_reason(text: &str) -> Result<String, String> {
    check_text(text, "reason", MAX_REASON_CHARS)
}

/// Checks a discussion message and returns it trimmed; fails like [`check_reason`] with
/// [`MAX_MESSAGE_CHARS`].
pub fn check_message(text: &str) -> Result<String, String> {
    check_text(text, "body", MAX_MESSAGE_CHARS)
}

fn check_text(text: &str, name: &str, max_chars: usize) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("{name} is missing: write why, in a few words"));
    }
    if trimmed.chars().count() > max_chars {
        return Err(format!("{name} is longer than {max_chars} characters; shorten it"));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests;
