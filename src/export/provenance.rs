//! `provenance.json`: everything behind the reference standard, for reviewers and audits.
//!
//! The document has two top-level keys:
//!
//! - `data`: the study (slug, name, overlap, policy and its parameters), the full guideline
//!   (TOML text, parsed fields, SHA-256 of the text), the members with their pseudonyms and
//!   roles, and item and resolution counts. Then every item in id order, with its metadata,
//!   its grades (corrections and replaced grades both, flagged), its discussion messages and
//!   its resolutions (each flagged `current` or not). Answers and metadata are written as
//!   stored, lists in fixed orders and times are the stored ones, so the same database gives
//!   the same `data`.
//! - `export`: the Quorum version, the export time, whether people are named by username,
//!   and the SHA-256 and size of every other exported file. Only this part changes from one
//!   export of the same database to the next. It comes last, so that the other files can be
//!   finished while `data` is written.
//!
//! Items are written one page at a time, one item per line.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use serde::Serialize;

use serde_json::value::RawValue;

use super::context::StudyContext;
use super::pipeline::pipelined;
use super::reference::ReferenceTally;
use super::rows::{self, ITEM_PAGE};
use super::stored::Rfc3339;
use super::{ExportError, ExportedFile};

/// Identifies the layout of `data`; it changes when a key is renamed or removed.
pub const FORMAT: &str = "quorum-provenance-1";

/// The `export` object: what changes from one export of the same database to the next.
#[derive(Serialize)]
struct ExportInfo<'a> {
    quorum_version: &'static str,
    exported_at: Rfc3339,
    real_names: bool,
    files: BTreeMap<&'a str, FileEntry<'a>>,
}

#[derive(Serialize)]
struct FileEntry<'a> {
    sha256: &'a str,
    bytes: u64,
}

#[derive(Serialize)]
struct Study<'a> {
    slug: &'a str,
    name: &'a str,
    overlap: i32,
    policy: &'a str,
    policy_params: serde_json::Value,
    blinding: bool,
    status: &'a str,
    created_at: Rfc3339,
}

#[derive(Serialize)]
struct GuidelineOut<'a> {
    key: &'a str,
    version: &'a str,
    title: &'a str,
    sha256: &'a str,
    text: &'a str,
    fields: &'a [crate::domain::guideline::Field],
}

#[derive(Serialize)]
struct MemberOut<'a> {
    pseudonym: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    role: &'a str,
    joined_at: Rfc3339,
}

#[derive(Serialize)]
struct Counts<'a> {
    items: usize,
    current_grades: u64,
    items_by_status: &'a BTreeMap<String, u64>,
    resolved_by_method: &'a BTreeMap<String, u64>,
}

#[derive(Serialize)]
struct ItemOut<'a> {
    id: i64,
    image: &'a str,
    sha256: &'a str,
    metadata: &'a RawValue,
    status: &'a str,
    round: i32,
    grades: Vec<GradeOut<'a>>,
    messages: Vec<MessageOut<'a>>,
    resolutions: Vec<ResolutionOut<'a>>,
}

#[derive(Serialize)]
struct GradeOut<'a> {
    id: i64,
    grader: Cow<'a, str>,
    round: i32,
    answers: &'a RawValue,
    comment: &'a str,
    time_spent_ms: i64,
    source: &'a str,
    created_at: Rfc3339,
    supersedes: Option<i64>,
    superseded: bool,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    id: i64,
    round: i32,
    author: Cow<'a, str>,
    body: &'a str,
    created_at: Rfc3339,
}

#[derive(Serialize)]
struct ResolutionOut<'a> {
    id: i64,
    answers: &'a RawValue,
    method: &'a str,
    decided_by: Option<Cow<'a, str>>,
    rounds_used: i32,
    reason: &'a str,
    created_at: Rfc3339,
    supersedes: Option<i64>,
    current: bool,
}

/// When the export was made and what it wrote; written into `export`.
pub struct ExportStamp {
    pub exported_at: i64,
    /// Every other exported file.
    pub files: Vec<ExportedFile>,
}

/// Writes `provenance.json`: `data` first, then `export` with the stamp that `stamp`
/// returns once `data` is written.
pub fn write_provenance(
    conn: &mut crate::store::DbConnection,
    ctx: &StudyContext,
    tally: &ReferenceTally,
    out: &mut dyn Write,
    stamp: impl FnOnce() -> Result<ExportStamp, ExportError>,
) -> Result<(), ExportError> {
    let project = &ctx.project;
    let policy_params: serde_json::Value = serde_json::from_str(&project.policy_params).map_err(|error| {
        ExportError::Corrupt(format!(
            "the policy parameters of study {} are not valid JSON: {error}",
            project.slug
        ))
    })?;
    let study = Study {
        slug: &project.slug,
        name: &project.name,
        overlap: project.overlap,
        policy: &project.policy,
        policy_params,
        blinding: project.blinding,
        status: &project.status,
        created_at: Rfc3339(project.created_at),
    };
    let guideline = GuidelineOut {
        key: &ctx.guideline_row.key,
        version: &ctx.guideline_row.version,
        title: &ctx.guideline_row.title,
        sha256: &ctx.guideline_row.sha256,
        text: &ctx.guideline_row.source_toml,
        fields: &ctx.guideline.fields,
    };
    let members: Vec<MemberOut<'_>> = ctx
        .members
        .iter()
        .map(|member| MemberOut {
            pseudonym: &member.pseudonym,
            username: ctx.real_names.then_some(member.username.as_str()),
            role: &member.role,
            joined_at: Rfc3339(member.joined_at),
        })
        .collect();
    let counts = Counts {
        items: tally.items,
        current_grades: tally.current_grades,
        items_by_status: &tally.by_status,
        resolved_by_method: &tally.by_method,
    };

    write!(out, "{{\n\"data\": {{\n\"format\": \"{FORMAT}\",\n\"names\": ")?;
    serde_json::to_writer(&mut *out, if ctx.real_names { "usernames" } else { "pseudonyms" })?;
    out.write_all(b",\n\"study\": ")?;
    serde_json::to_writer(&mut *out, &study)?;
    out.write_all(b",\n\"guideline\": ")?;
    serde_json::to_writer(&mut *out, &guideline)?;
    out.write_all(b",\n\"members\": ")?;
    serde_json::to_writer(&mut *out, &members)?;
    out.write_all(b",\n\"counts\": ")?;
    serde_json::to_writer(&mut *out, &counts)?;
    out.write_all(b",\n\"items\": [")?;
    write_items(conn, ctx, out)?;
    out.write_all(b"\n]\n},\n\"export\": ")?;

    let stamp = stamp()?;
    let info = ExportInfo {
        quorum_version: env!("CARGO_PKG_VERSION"),
        exported_at: Rfc3339(stamp.exported_at),
        real_names: ctx.real_names,
        files: stamp
            .files
            .iter()
            .map(|file| {
                (
                    file.name.as_str(),
                    FileEntry {
                        sha256: &file.sha256,
                        bytes: file.bytes,
                    },
                )
            })
            .collect(),
    };
    serde_json::to_writer(&mut *out, &info)?;
    out.write_all(b"\n}\n")?;
    Ok(())
}

/// Writes every item object, comma-separated, one per line.
fn write_items(
    conn: &mut crate::store::DbConnection,
    ctx: &StudyContext,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let project_id = ctx.project.id;
    let mut after = 0;
    let read_page = move |conn: &mut crate::store::DbConnection| {
        let page = rows::item_page(conn, project_id, after, ITEM_PAGE)?;
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            return Ok(None);
        };
        let (first_id, last_id) = (first.id, last.id);
        after = last_id;
        let grades = rows::grades_of_items(conn, first_id, last_id)?;
        let messages = rows::messages_of_items(conn, first_id, last_id)?;
        let resolutions = rows::resolutions_of_items(conn, first_id, last_id)?;
        Ok(Some(ItemPage {
            items: page,
            grades,
            messages,
            resolutions,
        }))
    };

    let mut first_item = true;
    pipelined(conn, read_page, |page| {
        let ItemPage {
            items: page,
            grades,
            messages,
            resolutions,
        } = page;
        // All three lists are sorted by item id, so each item takes the run at the front.
        let (mut next_grade, mut next_message, mut next_resolution) = (0, 0, 0);
        for item in &page {
            let item_grades = take_run(&grades, &mut next_grade, item.id, |grade| grade.item_id);
            let item_messages = take_run(&messages, &mut next_message, item.id, |message| message.item_id);
            let item_resolutions = take_run(&resolutions, &mut next_resolution, item.id, |resolution| {
                resolution.item_id
            });

            let replaced: HashSet<i64> = item_grades.iter().filter_map(|grade| grade.supersedes).collect();
            let mut grades_out = Vec::with_capacity(item_grades.len());
            for grade in item_grades {
                grades_out.push(GradeOut {
                    id: grade.id,
                    grader: ctx.name_of(grade.grader_id),
                    round: grade.round,
                    answers: json_object(&grade.answers, || format!("the answers of grade {}", grade.id))?,
                    comment: &grade.comment,
                    time_spent_ms: grade.time_spent_ms,
                    source: &grade.source,
                    created_at: Rfc3339(grade.created_at),
                    supersedes: grade.supersedes,
                    superseded: replaced.contains(&grade.id),
                });
            }
            let messages_out = item_messages
                .iter()
                .map(|message| MessageOut {
                    id: message.id,
                    round: message.round,
                    author: ctx.name_of(message.author_id),
                    body: &message.body,
                    created_at: Rfc3339(message.created_at),
                })
                .collect();
            let replaced: HashSet<i64> = item_resolutions
                .iter()
                .filter_map(|resolution| resolution.supersedes)
                .collect();
            let mut resolutions_out = Vec::with_capacity(item_resolutions.len());
            for resolution in item_resolutions {
                resolutions_out.push(ResolutionOut {
                    id: resolution.id,
                    answers: json_object(&resolution.answers, || {
                        format!("the answers of resolution {}", resolution.id)
                    })?,
                    method: &resolution.method,
                    decided_by: resolution.decided_by.map(|user_id| ctx.name_of(user_id)),
                    rounds_used: resolution.rounds_used,
                    reason: &resolution.reason,
                    created_at: Rfc3339(resolution.created_at),
                    supersedes: resolution.supersedes,
                    current: !replaced.contains(&resolution.id),
                });
            }

            let item_out = ItemOut {
                id: item.id,
                image: &item.name,
                sha256: &item.sha256,
                metadata: json_object(&item.metadata, || format!("the metadata of item {}", item.id))?,
                status: &item.status,
                round: item.round,
                grades: grades_out,
                messages: messages_out,
                resolutions: resolutions_out,
            };
            out.write_all(if first_item { b"\n" } else { b",\n" })?;
            first_item = false;
            serde_json::to_writer(&mut *out, &item_out)?;
        }
        Ok(())
    })
}

/// One page of items with their grades, messages and resolutions, each list sorted by item.
struct ItemPage {
    items: Vec<rows::ItemLine>,
    grades: Vec<crate::store::models::GradeRow>,
    messages: Vec<rows::MessageLine>,
    resolutions: Vec<rows::ResolutionLine>,
}

/// Checks that stored JSON text is an object and returns it to be written as stored.
fn json_object(text: &str, what: impl Fn() -> String) -> Result<&RawValue, ExportError> {
    let raw: &RawValue = serde_json::from_str(text)
        .map_err(|error| ExportError::Corrupt(format!("{} are not valid JSON: {error}", what())))?;
    if !raw.get().starts_with('{') {
        return Err(ExportError::Corrupt(format!("{} are not a JSON object", what())));
    }
    Ok(raw)
}

/// Returns the rows at `rows[*next..]` that belong to `item_id` and advances `next` past them.
/// Rows of lower item ids belong to other studies' items in the same id range and are skipped.
fn take_run<'a, T>(rows: &'a [T], next: &mut usize, item_id: i64, item_of: impl Fn(&T) -> i64) -> &'a [T] {
    while *next < rows.len() && item_of(&rows[*next]) < item_id {
        *next += 1;
    }
    let start = *next;
    while *next < rows.len() && item_of(&rows[*next]) == item_id {
        *next += 1;
    }
    &rows[start..*next]
}
