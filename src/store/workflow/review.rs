//! Reads for reviewers and adjudicators: an item's grades named by pseudonym, the ratings
//! behind the model's advice, discussion messages, and the arbitration and adjudication
//! queues.
//!
//! Nothing here checks who is asking; the handlers decide that with
//! `domain::workflow::permissions` before calling.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use diesel::prelude::*;

use super::super::audit::{self, AuditEntry};
use super::super::grading::current_grades;
use super::super::models::{GradeRow, ItemRow};
use super::super::schema::{assignments, grades, items, memberships, messages, resolutions};
use super::super::{DbConnection, StoreError, StoreResult};
use crate::domain::answers::Answers;
use crate::domain::guideline::Guideline;
use crate::domain::roles::ItemStatus;
use crate::domain::aggregate::study::FieldRating;
use crate::domain::workflow::rubric::single_answer;

/// Name shown for a grader who is no longer a member of the study.
const FORMER_MEMBER: &str = "Former member";

/// A current grade with its grader's pseudonym and parsed answers.
#[derive(Debug, Clone)]
pub struct NamedGrade {
    pub grade: GradeRow,
    pub pseudonym: String,
    pub answers: Answers,
}

fn parse_answers(grade: &GradeRow) -> StoreResult<Answers> {
    let value: serde_json::Value =
        serde_json::from_str(&grade.answers).map_err(|e| StoreError::Corrupt(format!("answers of grade {}: {e}", grade.id)))?;
    Answers::from_stored(&value).ok_or_else(|| StoreError::Corrupt(format!("answers of grade {} are not a JSON object", grade.id)))
}

/// Loads the pseudonym of every member of a study, by user id.
pub fn pseudonyms(conn: &mut DbConnection, project_id: i64) -> StoreResult<HashMap<i64, String>> {
    let rows: Vec<(i64, String)> = memberships::table
        .filter(memberships::project_id.eq(project_id))
        .select((memberships::user_id, memberships::pseudonym))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

fn name_of(names: &HashMap<i64, String>, user_id: i64) -> String {
    names.get(&user_id).cloned().unwrap_or_else(|| FORMER_MEMBER.to_string())
}

/// Finds the item of a study with this id.
pub fn find_item(conn: &mut DbConnection, project_id: i64, item_id: i64) -> StoreResult<Option<ItemRow>> {
    Ok(super::super::items::find_by_id(conn, item_id)?.filter(|item| item.project_id == project_id))
}

/// True when the user holds a place in the item's current round.
pub fn takes_part(conn: &mut DbConnection, item: &ItemRow, user_id: i64) -> StoreResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        assignments::table
            .filter(assignments::item_id.eq(item.id))
            .filter(assignments::round.eq(item.round))
            .filter(assignments::grader_id.eq(user_id)),
    ))
    .get_result(conn)?)
}

/// Loads the current grades of one round of an item, oldest first, named by pseudonym.
pub fn named_grades(conn: &mut DbConnection, project_id: i64, item_id: i64, round: i32) -> StoreResult<Vec<NamedGrade>> {
    let names = pseudonyms(conn, project_id)?;
    let rows = current_grades(conn, item_id, round)?;
    let mut named = Vec::with_capacity(rows.len());
    for grade in rows {
        let answers = parse_answers(&grade)?;
        named.push(NamedGrade { pseudonym: name_of(&names, grade.grader_id), answers, grade });
    }
    Ok(named)
}

/// Loads the first-round answers to every single-choice field across the study, the input
/// of the Dawid-Skene advice and of the study aggregate API.
///
/// Items still in their first grading round are left out, so the advice is computed only
/// from grades that no longer fall under blinding.
///
/// NOTE: this reads and parses every first-round grade of the study on each review request;
/// nothing is cached, so the cost grows linearly with the study.
pub fn advice_ratings(conn: &mut DbConnection, project_id: i64, guideline: &Guideline) -> StoreResult<BTreeMap<String, Vec<FieldRating>>> {
    let open = [ItemStatus::Pending.as_str(), ItemStatus::Grading.as_str()];
    let rows: Vec<GradeRow> = grades::table
        .inner_join(items::table)
        .filter(items::project_id.eq(project_id))
        .filter(grades::round.eq(0))
        .filter(items::round.gt(0).or(items::status.ne_all(open)))
        .order(grades::id.asc())
        .select(GradeRow::as_select())
        .load(conn)?;
    let superseded: HashSet<i64> = rows.iter().filter_map(|grade| grade.supersedes).collect();

    let fields: Vec<&str> = guideline.fields.iter().filter(|f| f.kind.is_single_choice()).map(|f| f.name.as_str()).collect();
    let mut ratings: BTreeMap<String, Vec<FieldRating>> = fields.iter().map(|name| (name.to_string(), Vec::new())).collect();
    for grade in rows.iter().filter(|grade| !superseded.contains(&grade.id)) {
        let answers = parse_answers(grade)?;
        for name in &fields {
            if let Some(answer) = single_answer(&answers, name) {
                let entry = ratings.get_mut(*name).expect("every single-choice field has an entry");
                entry.push(FieldRating { item_id: grade.item_id, rater_id: grade.grader_id, answer });
            }
        }
    }
    Ok(ratings)
}

/// Loads the names of the items of a study, by item id.
pub fn item_names(conn: &mut DbConnection, project_id: i64) -> StoreResult<HashMap<i64, String>> {
    let rows: Vec<(i64, String)> =
        items::table.filter(items::project_id.eq(project_id)).select((items::id, items::name)).load(conn)?;
    Ok(rows.into_iter().collect())
}

/// Names each of `user_ids` by their pseudonym in the study. Graders who are no longer
/// members are named "Former member 1", "Former member 2", ... in the order given, so that
/// every name is distinct.
pub fn distinct_pseudonyms(conn: &mut DbConnection, project_id: i64, user_ids: &[i64]) -> StoreResult<Vec<String>> {
    let names = pseudonyms(conn, project_id)?;
    let mut former = 0;
    Ok(user_ids
        .iter()
        .map(|user_id| match names.get(user_id) {
            Some(name) => name.clone(),
            None => {
                former += 1;
                format!("{FORMER_MEMBER} {former}")
            }
        })
        .collect())
}

/// An item's current resolution: the latest one that no later resolution supersedes.
#[derive(Debug, Clone)]
pub struct CurrentResolution {
    pub id: i64,
    /// The final answers as stored.
    pub answers: serde_json::Value,
    pub method: String,
    /// Pseudonym of the senior who arbitrated; `None` when the policy resolved the item.
    pub decided_by: Option<String>,
    pub rounds_used: i32,
    pub reason: String,
    pub created_at: i64,
}

/// Loads the current resolution of an item, if it has one. A reopened item keeps its last
/// resolution until a new one supersedes it.
pub fn current_resolution(conn: &mut DbConnection, item: &ItemRow) -> StoreResult<Option<CurrentResolution>> {
    /// id, item_id, answers, method, decided_by, rounds_used, reason, supersedes, created_at
    type Row = (i64, i64, String, String, Option<i64>, i32, String, Option<i64>, i64);
    let rows: Vec<Row> = resolutions::table
        .filter(resolutions::item_id.eq(item.id))
        .order(resolutions::id.asc())
        .select(resolutions::all_columns)
        .load(conn)?;
    let superseded: HashSet<i64> = rows.iter().filter_map(|row| row.7).collect();
    let Some((id, _, answers, method, decided_by, rounds_used, reason, _, created_at)) =
        rows.into_iter().filter(|row| !superseded.contains(&row.0)).last()
    else {
        return Ok(None);
    };
    let answers = serde_json::from_str(&answers).map_err(|e| StoreError::Corrupt(format!("answers of resolution {id}: {e}")))?;
    let decided_by = match decided_by {
        Some(user_id) => Some(name_of(&pseudonyms(conn, item.project_id)?, user_id)),
        None => None,
    };
    Ok(Some(CurrentResolution { id, answers, method, decided_by, rounds_used, reason, created_at }))
}

/// One message of an item's discussion.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: i64,
    pub round: i32,
    pub author_id: i64,
    pub pseudonym: String,
    pub body: String,
    pub created_at: i64,
}

/// Appends a message to an item's discussion in its current round, with its audit event.
pub fn post_message(conn: &mut DbConnection, item: &ItemRow, author_id: i64, body: &str, now: i64) -> StoreResult<Message> {
    let id = conn.transaction::<_, StoreError, _>(|conn| {
        diesel::insert_into(messages::table)
            .values((
                messages::item_id.eq(item.id),
                messages::round.eq(item.round),
                messages::author_id.eq(author_id),
                messages::body.eq(body),
                messages::created_at.eq(now),
            ))
            .execute(conn)?;
        let id: i64 = messages::table
            .filter(messages::item_id.eq(item.id))
            .filter(messages::author_id.eq(author_id))
            .order(messages::id.desc())
            .select(messages::id)
            .first(conn)?;
        audit::record(conn, AuditEntry {
            project_id: Some(item.project_id),
            actor_id: Some(author_id),
            action: "message.posted",
            object_type: "message",
            object_id: Some(id),
            details: serde_json::json!({ "item_id": item.id, "round": item.round }),
        })?;
        Ok(id)
    })?;
    let names = pseudonyms(conn, item.project_id)?;
    Ok(Message { id, round: item.round, author_id, pseudonym: name_of(&names, author_id), body: body.to_string(), created_at: now })
}

/// Loads every message of an item's discussion, oldest first.
pub fn list_messages(conn: &mut DbConnection, item: &ItemRow) -> StoreResult<Vec<Message>> {
    let names = pseudonyms(conn, item.project_id)?;
    let rows: Vec<(i64, i32, i64, String, i64)> = messages::table
        .filter(messages::item_id.eq(item.id))
        .order(messages::id.asc())
        .select((messages::id, messages::round, messages::author_id, messages::body, messages::created_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, round, author_id, body, created_at)| Message { id, round, author_id, pseudonym: name_of(&names, author_id), body, created_at })
        .collect())
}

/// An item waiting for a senior.
#[derive(Debug, Clone)]
pub struct ArbitrationEntry {
    pub item_id: i64,
    pub name: String,
    pub round: i32,
    /// Graders with a grade in the round under arbitration.
    pub graders: usize,
}

/// Lists the items of a study in arbitration, by priority, then id.
pub fn arbitration_queue(conn: &mut DbConnection, project_id: i64) -> StoreResult<Vec<ArbitrationEntry>> {
    let waiting: Vec<(i64, String, i32)> = items::table
        .filter(items::project_id.eq(project_id))
        .filter(items::status.eq(ItemStatus::Arbitration.as_str()))
        .order((items::priority.desc(), items::id.asc()))
        .select((items::id, items::name, items::round))
        .load(conn)?;
    let graded: Vec<(i64, i64)> = grades::table
        .inner_join(items::table)
        .filter(items::project_id.eq(project_id))
        .filter(items::status.eq(ItemStatus::Arbitration.as_str()))
        .filter(grades::round.eq(items::round))
        .select((grades::item_id, grades::grader_id))
        .load(conn)?;
    let mut graders: HashMap<i64, BTreeSet<i64>> = HashMap::new();
    for (item_id, grader_id) in graded {
        graders.entry(item_id).or_default().insert(grader_id);
    }
    Ok(waiting
        .into_iter()
        .map(|(item_id, name, round)| ArbitrationEntry { graders: graders.get(&item_id).map_or(0, BTreeSet::len), item_id, name, round })
        .collect())
}

/// A place in an open adjudication round.
#[derive(Debug, Clone)]
pub struct Participant {
    pub grader_id: i64,
    pub pseudonym: String,
    /// True once the grader re-graded in this round.
    pub regraded: bool,
}

/// An item in adjudication with its places and discussion size.
#[derive(Debug, Clone)]
pub struct AdjudicationEntry {
    pub item_id: i64,
    pub name: String,
    pub round: i32,
    pub participants: Vec<Participant>,
    /// Messages posted in the current round.
    pub messages: i64,
}

/// Lists the items of a study in adjudication, by id. With `grader_id`, lists only those
/// where that grader holds a place in the current round.
pub fn adjudications(conn: &mut DbConnection, project_id: i64, grader_id: Option<i64>) -> StoreResult<Vec<AdjudicationEntry>> {
    let names = pseudonyms(conn, project_id)?;
    let open: Vec<(i64, String, i32)> = items::table
        .filter(items::project_id.eq(project_id))
        .filter(items::status.eq(ItemStatus::Adjudication.as_str()))
        .order(items::id.asc())
        .select((items::id, items::name, items::round))
        .load(conn)?;
    let places: Vec<(i64, i64, Option<i64>)> = assignments::table
        .inner_join(items::table)
        .filter(items::project_id.eq(project_id))
        .filter(items::status.eq(ItemStatus::Adjudication.as_str()))
        .filter(assignments::round.eq(items::round))
        .order(assignments::id.asc())
        .select((assignments::item_id, assignments::grader_id, assignments::completed_at))
        .load(conn)?;
    let counts: Vec<(i64, i64)> = messages::table
        .inner_join(items::table)
        .filter(items::project_id.eq(project_id))
        .filter(items::status.eq(ItemStatus::Adjudication.as_str()))
        .filter(messages::round.eq(items::round))
        .group_by(messages::item_id)
        .select((messages::item_id, diesel::dsl::count_star()))
        .load(conn)?;
    let counts: HashMap<i64, i64> = counts.into_iter().collect();

    let mut participants: HashMap<i64, Vec<Participant>> = HashMap::new();
    for (item_id, grader, completed_at) in places {
        participants.entry(item_id).or_default().push(Participant {
            grader_id: grader,
            pseudonym: name_of(&names, grader),
            regraded: completed_at.is_some(),
        });
    }
    let mut entries = Vec::new();
    for (item_id, name, round) in open {
        let places = participants.remove(&item_id).unwrap_or_default();
        if grader_id.is_some_and(|grader| !places.iter().any(|p| p.grader_id == grader)) {
            continue;
        }
        entries.push(AdjudicationEntry { item_id, name, round, participants: places, messages: counts.get(&item_id).copied().unwrap_or(0) });
    }
    Ok(entries)
}
