//! Rules of handing items to graders.
//!
//! Each item needs `overlap` grades from distinct graders per round (plus any extra graders
//! the policy asked for). An assignment is a lease: it counts against the item's places
//! while it is unexpired or completed, so an abandoned item goes back to the pool when its
//! lease runs out. A grader never gets the same item twice in a round. Items are offered by
//! priority (active learning raises it), then the item closest to complete, then the oldest.
//! The store applies these rules inside one write transaction per request, which is what
//! keeps concurrent graders from over-filling an item.

/// How long a grader holds an item before it returns to the pool, in milliseconds.
pub const DEFAULT_LEASE_MS: i64 = 30 * 60 * 1000;

/// True when an assignment still holds its place on the item at `now_ms`.
pub fn holds_place(completed_at: Option<i64>, leased_until: i64, now_ms: i64) -> bool {
    completed_at.is_some() || leased_until > now_ms
}

/// Grades an item needs in its current round.
pub fn required_grades(overlap: i32, extra_grades: i32) -> i64 {
    i64::from(overlap.max(1)) + i64::from(extra_grades.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_assignment_holds_place_after_lease() {
        assert!(holds_place(Some(5), 10, 100));
    }

    #[test]
    fn expired_lease_frees_place() {
        assert!(!holds_place(None, 10, 100));
        assert!(holds_place(None, 101, 100));
    }

    #[test]
    fn extra_grades_add_to_overlap() {
        assert_eq!(required_grades(3, 1), 4);
        assert_eq!(required_grades(3, 0), 3);
    }
}
