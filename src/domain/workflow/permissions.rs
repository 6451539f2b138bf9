//! Who may see and do what in arbitration and adjudication.
//!
//! Seniors and leads see every grade of an item in any state. A grader sees other graders'
//! grades of an item only while it is in adjudication and the grader takes part in its
//! current round, and then only the grades of the round before it. An admin who is not a
//! member of the study counts as a lead; an admin who is a member has their role's rights
//! only, so an admin who grades stays blind.

use crate::domain::roles::{ItemStatus, Role};

/// How much of an item's review a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewAccess {
    /// Every grade of every round (seniors, leads, admins who are not members).
    Full,
    /// The grades of the round before the open adjudication round (the item's graders).
    Participant,
    /// Nothing, not even whether other grades exist.
    Denied,
}

/// True for a caller with a lead's rights: a lead, or an admin who is not a member.
fn is_lead_like(role: Option<Role>, is_admin: bool) -> bool {
    role == Some(Role::Lead) || (role.is_none() && is_admin)
}

/// What a caller may see of one item's review and discussion.
///
/// `takes_part` tells whether the caller holds a place in the item's current round.
pub fn review_access(role: Option<Role>, is_admin: bool, status: ItemStatus, takes_part: bool) -> ReviewAccess {
    if role == Some(Role::Senior) || is_lead_like(role, is_admin) {
        return ReviewAccess::Full;
    }
    if role == Some(Role::Grader) && status == ItemStatus::Adjudication && takes_part {
        return ReviewAccess::Participant;
    }
    ReviewAccess::Denied
}

/// True when the caller may see the arbitration queue and the adjudication overview.
pub fn may_oversee(role: Option<Role>, is_admin: bool) -> bool {
    role == Some(Role::Senior) || is_lead_like(role, is_admin)
}

/// True when the caller may decide an item in arbitration: seniors only.
pub fn may_arbitrate(role: Option<Role>) -> bool {
    role == Some(Role::Senior)
}

/// True when the caller may exclude and reopen items.
pub fn may_steer(role: Option<Role>, is_admin: bool) -> bool {
    is_lead_like(role, is_admin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grader_reviews_only_own_adjudication() {
        for status in ItemStatus::ALL {
            let expected = if status == ItemStatus::Adjudication { ReviewAccess::Participant } else { ReviewAccess::Denied };
            assert_eq!(review_access(Some(Role::Grader), false, status, true), expected, "{status:?}");
            assert_eq!(review_access(Some(Role::Grader), false, status, false), ReviewAccess::Denied, "{status:?}");
        }
    }

    #[test]
    fn seniors_and_leads_review_every_state() {
        for status in ItemStatus::ALL {
            assert_eq!(review_access(Some(Role::Senior), false, status, false), ReviewAccess::Full);
            assert_eq!(review_access(Some(Role::Lead), false, status, false), ReviewAccess::Full);
            assert_eq!(review_access(None, true, status, false), ReviewAccess::Full);
        }
    }

    #[test]
    fn grading_admin_stays_blind() {
        assert_eq!(review_access(Some(Role::Grader), true, ItemStatus::Grading, true), ReviewAccess::Denied);
        assert!(!may_oversee(Some(Role::Grader), true));
        assert!(!may_steer(Some(Role::Grader), true));
    }

    #[test]
    fn only_seniors_arbitrate_and_only_leads_steer() {
        assert!(may_arbitrate(Some(Role::Senior)));
        assert!(!may_arbitrate(Some(Role::Lead)));
        assert!(!may_arbitrate(None));
        assert!(may_steer(Some(Role::Lead), false));
        assert!(may_steer(None, true));
        assert!(!may_steer(Some(Role::Senior), false));
        assert!(may_oversee(Some(Role::Senior), false));
        assert!(!may_oversee(Some(Role::Grader), false));
    }
}
