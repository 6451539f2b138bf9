//! Roles a user can hold in one study, and the workflow states of an item.
//!
//! Roles are per study: the same person may grade one study and lead another. Admins are a
//! separate, server-wide flag on the user that allows managing accounts.

use serde::{Deserialize, Serialize};

/// What a member may do in one study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Grades items blind to other graders.
    Grader,
    /// Arbitrates disagreements and sees every grade.
    Senior,
    /// Sets the study up, watches progress and exports the reference standard.
    Lead,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Grader => "grader",
            Role::Senior => "senior",
            Role::Lead => "lead",
        }
    }

    /// Parses a stored or submitted role name.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "grader" => Some(Role::Grader),
            "senior" => Some(Role::Senior),
            "lead" => Some(Role::Lead),
            _ => None,
        }
    }

    /// True for the roles that may see every grade of an item at any time.
    pub fn sees_all_grades(self) -> bool {
        matches!(self, Role::Senior | Role::Lead)
    }
}

/// Where an item is in the grading workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    Pending,
    Grading,
    Arbitration,
    Adjudication,
    Resolved,
    Excluded,
}

impl ItemStatus {
    pub const ALL: [ItemStatus; 6] = [
        ItemStatus::Pending,
        ItemStatus::Grading,
        ItemStatus::Arbitration,
        ItemStatus::Adjudication,
        ItemStatus::Resolved,
        ItemStatus::Excluded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Pending => "pending",
            ItemStatus::Grading => "grading",
            ItemStatus::Arbitration => "arbitration",
            ItemStatus::Adjudication => "adjudication",
            ItemStatus::Resolved => "resolved",
            ItemStatus::Excluded => "excluded",
        }
    }

    pub fn parse(text: &str) -> Option<ItemStatus> {
        ItemStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// How a study turns several grades into one reference label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResolutionPolicy {
    MajorityVote,
    SeniorArbitration,
    Adjudication,
}

impl ResolutionPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionPolicy::MajorityVote => "majority-vote",
            ResolutionPolicy::SeniorArbitration => "senior-arbitration",
            ResolutionPolicy::Adjudication => "adjudication",
        }
    }

    pub fn parse(text: &str) -> Option<ResolutionPolicy> {
        [ResolutionPolicy::MajorityVote, ResolutionPolicy::SeniorArbitration, ResolutionPolicy::Adjudication]
            .into_iter()
            .find(|policy| policy.as_str() == text)
    }
}

/// The stable pseudonym of the `index`-th member of a study: "Grader A", ..., "Grader Z",
/// then "Grader AA", "Grader AB", ...
pub fn pseudonym(index: usize) -> String {
    let mut letters = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push((b'A' + rem as u8) as char);
        n = (n - 1) / 26;
    }
    letters.reverse();
    format!("Grader {}", letters.into_iter().collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonym_sequence() {
        assert_eq!(pseudonym(0), "Grader A");
        assert_eq!(pseudonym(25), "Grader Z");
        assert_eq!(pseudonym(26), "Grader AA");
        assert_eq!(pseudonym(27), "Grader AB");
    }

    #[test]
    fn role_round_trip() {
        for role in [Role::Grader, Role::Senior, Role::Lead] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn status_round_trip() {
        for status in ItemStatus::ALL {
            assert_eq!(ItemStatus::parse(status.as_str()), Some(status));
        }
    }
}
