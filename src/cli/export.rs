//! `quorum export --project SLUG --out DIR`: writes a study's reference standard, grades,
//! agreement report and provenance into a folder (see [`crate::export`]).

use std::path::PathBuf;

use anyhow::Context;

use super::open_database;
use crate::config::Settings;
use crate::export::{export_study, DirSink, ExportOptions};
use crate::store::{now_ms, projects};

/// Arguments of `quorum export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Slug of the study.
    #[arg(long)]
    pub project: String,
    /// Folder to write the files into; created if missing. Files of an earlier export with
    /// the same names are replaced once every new file is written.
    #[arg(long)]
    pub out: PathBuf,
    /// Name graders by username instead of by their pseudonym in the study ("Grader A").
    #[arg(long)]
    pub real_names: bool,
}

/// Exports the study and prints each file with its size and SHA-256.
pub fn run(settings: &Settings, args: &ExportArgs) -> anyhow::Result<()> {
    let db = open_database(settings)?;
    let mut conn = db.conn()?;
    let project = projects::find_by_slug(&mut conn, &args.project)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no study with slug {:?}; list the studies on the server's /studies page",
            args.project
        )
    })?;
    let mut sink = DirSink::new(&args.out).with_context(|| format!("creating folder {}", args.out.display()))?;
    let options = ExportOptions {
        real_names: args.real_names,
        exported_at: now_ms(),
    };
    let summary = export_study(&mut conn, project, &options, &mut sink)
        .with_context(|| format!("exporting study {}", args.project))?;
    sink.commit()
        .with_context(|| format!("renaming the exported files in {}", args.out.display()))?;

    for file in &summary.files {
        println!("{:<18} {:>12} bytes  sha256 {}", file.name, file.bytes, file.sha256);
    }
    println!(
        "exported {} items and {} grades of study {} to {}",
        summary.items,
        summary.grade_rows,
        args.project,
        args.out.display()
    );
    Ok(())
}
