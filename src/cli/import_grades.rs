//! `quorum import grades` and `quorum import resolutions`: grades and final labels made
//! outside Quorum, from CSV files (see [`crate::import`]).

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{existing_path, open_database};
use crate::config::Settings;
use crate::import::grades::import_grade_file;
use crate::import::resolutions::import_resolution_file;
use crate::import::Encoding;
use crate::store::models::ProjectRow;
use crate::store::{projects, Conn};

/// Arguments of `quorum import grades`.
#[derive(Debug, Clone, clap::Args)]
pub struct GradesImportArgs {
    /// Slug of the study.
    #[arg(long)]
    pub project: String,
    /// CSV file with columns image, grader (username) and one per guideline field, plus
    /// optional round, comment and time_spent_ms; delimiter `,`, `;` or tab.
    #[arg(value_parser = existing_path)]
    pub file: PathBuf,
    /// Create an account for each unknown grader (with a random password that is not
    /// shown, so it cannot log in) and add unknown or non-member graders to the study.
    #[arg(long)]
    pub create_graders: bool,
    /// Text encoding of the file.
    #[arg(long, value_enum, default_value_t)]
    pub encoding: Encoding,
}

/// Arguments of `quorum import resolutions`.
#[derive(Debug, Clone, clap::Args)]
pub struct ResolutionsImportArgs {
    /// Slug of the study.
    #[arg(long)]
    pub project: String,
    /// CSV file with columns image and one per guideline field, plus an optional reason;
    /// delimiter `,`, `;` or tab.
    #[arg(value_parser = existing_path)]
    pub file: PathBuf,
    /// Text encoding of the file.
    #[arg(long, value_enum, default_value_t)]
    pub encoding: Encoding,
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn find_project(conn: &mut Conn, slug: &str) -> anyhow::Result<ProjectRow> {
    projects::find_by_slug(conn, slug)?.ok_or_else(|| anyhow::anyhow!("no study with slug {slug:?}"))
}

/// Imports a grade file and prints what was stored.
pub fn run_grades(settings: &Settings, args: &GradesImportArgs) -> anyhow::Result<()> {
    let bytes = read_file(&args.file)?;
    let db = open_database(settings)?;
    let mut conn = db.conn()?;
    let project = find_project(&mut conn, &args.project)?;
    let report = import_grade_file(&mut conn, &project, &bytes, args.encoding, args.create_graders)
        .with_context(|| format!("importing grades from {}", args.file.display()))?;

    for username in &report.created_users {
        println!("created user {username} (random password, cannot log in until one is set)");
    }
    for username in &report.added_graders {
        println!("added {username} to study {} as a grader", project.slug);
    }
    let statuses: Vec<String> = report
        .items_by_status
        .iter()
        .map(|(status, count)| format!("{count} {status}"))
        .collect();
    println!(
        "imported {} grade(s) ({} correction(s)) into study {}; the graded images are now: {}",
        report.grades,
        report.corrections,
        project.slug,
        if statuses.is_empty() {
            "none".to_string()
        } else {
            statuses.join(", ")
        }
    );
    Ok(())
}

/// Imports a resolution file and prints what was stored.
pub fn run_resolutions(settings: &Settings, args: &ResolutionsImportArgs) -> anyhow::Result<()> {
    let bytes = read_file(&args.file)?;
    let db = open_database(settings)?;
    let mut conn = db.conn()?;
    let project = find_project(&mut conn, &args.project)?;
    let file_name = args.file.file_name().map_or_else(
        || args.file.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let default_reason = format!("imported from {file_name}");
    let report = import_resolution_file(&mut conn, &project, &bytes, args.encoding, &default_reason)
        .with_context(|| format!("importing resolutions from {}", args.file.display()))?;
    println!(
        "imported {} resolution(s) into study {} ({} replaced an earlier resolution); those images are now resolved",
        report.resolutions, project.slug, report.replaced
    );
    Ok(())
}
