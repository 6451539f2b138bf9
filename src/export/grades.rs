//! `grades.csv`: every grade of the study in tidy long format, one row per grade in grade id
//! order, corrections and the grades they replaced both included.
//!
//! Columns: `image`, `grader` (pseudonym, or username with real names), `round`, one column
//! per guideline field in guideline order, `comment`, `time_spent_ms`, `created_at` (RFC 3339
//! UTC), `superseded` (`TRUE` when a later grade corrects this one, else `FALSE`) and
//! `source` (`web`, `import`, ...).

use std::collections::HashSet;
use std::io::Write;

use super::context::StudyContext;
use super::format::{bool_cell, csv_writer, write_number};
use super::pipeline::pipelined;
use super::ratings::RatingCollector;
use super::rows::{self, ROW_PAGE};
use super::stored::{Rfc3339, StoredAnswers};
use super::ExportError;

/// Columns after the field columns.
pub const TRAILING_COLUMNS: [&str; 5] = ["comment", "time_spent_ms", "created_at", "superseded", "source"];

/// Writes `grades.csv`, counts each item's current grades in `ratings` and gives it every
/// current round-0 grade, and returns the number of grade rows written.
pub fn write_grades(
    conn: &mut crate::store::DbConnection,
    ctx: &StudyContext,
    out: &mut dyn Write,
    ratings: &mut RatingCollector,
) -> Result<u64, ExportError> {
    let mut writer = csv_writer(out);
    let mut header: Vec<&str> = vec!["image", "grader", "round"];
    header.extend(ctx.guideline.fields.iter().map(|field| field.name.as_str()));
    header.extend(TRAILING_COLUMNS);
    writer.write_record(&header)?;

    let project_id = ctx.project.id;
    let mut after = 0;
    let read_page = move |conn: &mut crate::store::DbConnection| {
        let page = rows::grade_page(conn, project_id, after, ROW_PAGE)?;
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            return Ok(None);
        };
        let (first_id, last_id) = (first.id, last.id);
        after = last_id;
        // A correction always has a higher id than the grade it replaces, but may fall on a
        // later page, so the replaced ids of this page are looked up across the table.
        let superseded: HashSet<i64> = rows::superseded_grades(conn, first_id, last_id)?.into_iter().collect();
        Ok(Some((page, superseded)))
    };

    let mut cell = String::new();
    let mut written = 0u64;
    pipelined(conn, read_page, |(page, superseded)| {
        for grade in &page {
            let answers = StoredAnswers::parse(&grade.answers).map_err(|error| {
                ExportError::Corrupt(format!("the answers of grade {} are invalid: {error}", grade.id))
            })?;
            let is_superseded = superseded.contains(&grade.id);
            if !is_superseded {
                ratings.count_current(grade.item_id);
                if grade.round == 0 {
                    ratings.add(grade.item_id, grade.grader_id, &answers);
                }
            }

            writer.write_field(&grade.image)?;
            writer.write_field(ctx.name_of(grade.grader_id).as_ref())?;
            write_number(&mut writer, &mut cell, i64::from(grade.round))?;
            for field in &ctx.guideline.fields {
                answers.write_cell(&field.name, &mut cell);
                writer.write_field(&cell)?;
            }
            writer.write_field(&grade.comment)?;
            write_number(&mut writer, &mut cell, grade.time_spent_ms)?;
            Rfc3339(grade.created_at).write_cell(&mut cell);
            writer.write_field(&cell)?;
            writer.write_field(bool_cell(is_superseded))?;
            writer.write_field(&grade.source)?;
            writer.write_record(None::<&[u8]>)?;
            written += 1;
        }
        Ok(())
    })?;
    writer.flush()?;
    Ok(written)
}
