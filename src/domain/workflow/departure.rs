//! The rule for an open adjudication round when one of its graders stops being a grader of
//! the study, for example because a lead made them a senior.
//!
//! An adjudication round waits for a re-grade from each grader of the round before. Someone
//! who is no longer a grader cannot re-grade, so the round would wait for ever. The rule:
//!
//! - The departed grader's open place is withdrawn, and the round waits only for the others.
//!   A re-grade they already gave in the round stays and counts.
//! - When no place is left open, the round closes. With at least [`MIN_REGRADES_TO_DECIDE`]
//!   re-grades the study's policy decides on them, as it does when a round completes.
//! - With fewer re-grades no agreement is possible, so the item goes to arbitration.
//!
//! The store applies [`after_departure`] and records each withdrawn place in the audit trail.

/// Minimum number of re-grades from which the policy decides a round whose graders left,
/// because one grader alone cannot agree with anyone.
pub const MIN_REGRADES_TO_DECIDE: usize = 2;

/// The next step of an adjudication round after a place in it was withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterDeparture {
    /// Other graders still have to re-grade.
    Wait,
    /// Every remaining grader has re-graded: the policy decides on the re-grades.
    CloseRound,
    /// Too few re-grades are left to decide: a senior arbitrates.
    Arbitrate,
}

/// Decides the next step of a round from its places still open and its re-grades so far.
pub fn after_departure(open_places: usize, regrades: usize) -> AfterDeparture {
    if open_places > 0 {
        AfterDeparture::Wait
    } else if regrades >= MIN_REGRADES_TO_DECIDE {
        AfterDeparture::CloseRound
    } else {
        AfterDeparture::Arbitrate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn departure_table() {
        let cases = [
            (1, 0, AfterDeparture::Wait),
            (1, 2, AfterDeparture::Wait),
            (2, 1, AfterDeparture::Wait),
            (0, 2, AfterDeparture::CloseRound),
            (0, 3, AfterDeparture::CloseRound),
            (0, 1, AfterDeparture::Arbitrate),
            (0, 0, AfterDeparture::Arbitrate),
        ];
        for (open_places, regrades, expected) in cases {
            assert_eq!(
                after_departure(open_places, regrades),
                expected,
                "{open_places} open, {regrades} re-grades"
            );
        }
    }
}
