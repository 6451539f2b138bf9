//! Study facts that every export file needs besides its rows: the study, its guideline,
//! its members and how people are named.

use std::borrow::Cow;
use std::collections::HashMap;

use diesel::prelude::*;

use super::ExportError;
use crate::domain::guideline::Guideline;
use crate::store::models::{GuidelineRow, MembershipRow, ProjectRow};
use crate::store::schema::{memberships, users};
use crate::store::{guidelines, DbConnection};

/// A member of the study with the name the export gives them.
#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: i64,
    pub username: String,
    pub pseudonym: String,
    pub role: String,
    pub joined_at: i64,
}

/// A study loaded for export.
pub struct StudyContext {
    pub project: ProjectRow,
    pub guideline_row: GuidelineRow,
    pub guideline: Guideline,
    /// Members in joining order.
    pub members: Vec<Member>,
    /// True when people are named by username instead of by pseudonym.
    pub real_names: bool,
    names: HashMap<i64, String>,
}

impl StudyContext {
    /// Loads the study's guideline, its members and the exported name of every account, so
    /// that a grade or message by someone who is not a member still gets a name.
    pub fn load(conn: &mut DbConnection, project: ProjectRow, real_names: bool) -> Result<StudyContext, ExportError> {
        let (guideline_row, guideline) = guidelines::load(conn, project.guideline_id)?.ok_or_else(|| {
            ExportError::Corrupt(format!(
                "guideline {} of study {} is missing",
                project.guideline_id, project.slug
            ))
        })?;
        let rows: Vec<(MembershipRow, String)> = memberships::table
            .inner_join(users::table)
            .filter(memberships::project_id.eq(project.id))
            .order(memberships::id.asc())
            .select((MembershipRow::as_select(), users::username))
            .load(conn)?;
        let members: Vec<Member> = rows
            .into_iter()
            .map(|(membership, username)| Member {
                user_id: membership.user_id,
                username,
                pseudonym: membership.pseudonym,
                role: membership.role,
                joined_at: membership.created_at,
            })
            .collect();

        // Accounts are the people of one server, few enough to name all of them up front.
        let accounts: Vec<(i64, String)> = users::table.select((users::id, users::username)).load(conn)?;
        let pseudonyms: HashMap<i64, &str> = members
            .iter()
            .map(|member| (member.user_id, member.pseudonym.as_str()))
            .collect();
        let names: HashMap<i64, String> = accounts
            .into_iter()
            .map(|(user_id, username)| {
                let name = match (real_names, pseudonyms.get(&user_id)) {
                    (true, _) => username,
                    (false, Some(pseudonym)) => pseudonym.to_string(),
                    (false, None) => format!("Non-member {user_id}"),
                };
                (user_id, name)
            })
            .collect();
        Ok(StudyContext {
            project,
            guideline_row,
            guideline,
            members,
            real_names,
            names,
        })
    }

    /// The exported name of a person: the username with real names, else the study
    /// pseudonym, or `Non-member N` (N their account id) for someone who is not a member.
    pub fn name_of(&self, user_id: i64) -> Cow<'_, str> {
        match self.names.get(&user_id) {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(format!("Non-member {user_id}")),
        }
    }

    /// The guideline as one cell: key and version, e.g. `dr-screening 1.0`. The key keeps the
    /// cell text, so CSV readers do not turn a version such as `1.10` into the number 1.1.
    pub fn guideline_label(&self) -> String {
        format!("{} {}", self.guideline_row.key, self.guideline_row.version)
    }
}
