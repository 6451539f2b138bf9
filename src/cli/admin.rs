//! Subcommands that set a server up: users, studies, guidelines and image imports.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;

use super::{existing_path, open_database};
use crate::config::Settings;
use crate::domain::guideline::parse_guideline;
use crate::domain::roles::{ResolutionPolicy, Role};
use crate::domain::slug::{check_slug, check_username};
use crate::imaging::import::import_images;
use crate::imaging::ImageLimits;
use crate::store::guidelines::store_guideline;
use crate::store::projects::{self, ProjectSpec};
use crate::store::users;

/// Shortest password accepted for an account.
pub const MIN_PASSWORD_CHARS: usize = 10;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from a prompt, or from the first line of
    /// standard input when it is not a terminal; never from the command line.
    Add {
        #[arg(long)]
        username: String,
        /// Name shown in the interface (default: the username).
        #[arg(long)]
        display_name: Option<String>,
        /// Allow this user to manage accounts.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a study.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        /// Guideline file (TOML); it is stored, or reused when the same version is stored.
        #[arg(long, value_parser = existing_path)]
        guideline: PathBuf,
        /// Graders per image.
        #[arg(long, default_value_t = 3)]
        overlap: i32,
        /// majority-vote, senior-arbitration or adjudication.
        #[arg(long, default_value = "majority-vote")]
        policy: String,
    },
    /// Add a member to a study, or change a member's role.
    AddMember {
        #[arg(long)]
        project: String,
        #[arg(long)]
        username: String,
        /// grader, senior or lead.
        #[arg(long)]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GuidelineCommand {
    /// Validate a guideline file and list every problem with its line.
    Check {
        #[arg(value_parser = existing_path)]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import the images of a folder (searched recursively) or a zip into a study.
    Images {
        /// Slug of the study.
        #[arg(long)]
        project: String,
        /// Folder or .zip file.
        #[arg(value_parser = existing_path)]
        path: PathBuf,
        /// CSV with one row per image: an `image` column and any metadata columns.
        #[arg(long, value_parser = existing_path)]
        metadata: Option<PathBuf>,
    },
    /// Import grades made elsewhere; they go through the study's policy like any grade.
    Grades(super::import_grades::GradesImportArgs),
    /// Import final labels decided elsewhere as resolutions with method `imported`.
    Resolutions(super::import_grades::ResolutionsImportArgs),
}

/// Reads a password from the terminal without echo, or the first line of piped input.
fn read_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        if first != second {
            bail!("the two passwords differ; run the command again");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!("the password is shorter than {MIN_PASSWORD_CHARS} characters; choose a longer one");
    }
    Ok(password)
}

pub fn run_user(settings: &Settings, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { username, display_name, admin } => {
            check_username(&username).map_err(anyhow::Error::msg)?;
            let password = read_password()?;
            let hash = crate::auth::hash_password(&password)?;
            let db = open_database(settings)?;
            let mut conn = db.conn()?;
            let display = display_name.unwrap_or_else(|| username.clone());
            let user = users::create_user(&mut conn, &username, &display, &hash, admin)?;
            println!("created user {} (id {}{})", user.username, user.id, if admin { ", admin" } else { "" });
            Ok(())
        }
    }
}

pub fn run_project(settings: &Settings, command: ProjectCommand) -> anyhow::Result<()> {
    let db = open_database(settings)?;
    let mut conn = db.conn()?;
    match command {
        ProjectCommand::Create { slug, name, guideline, overlap, policy } => {
            check_slug(&slug).map_err(anyhow::Error::msg)?;
            if !(1..=50).contains(&overlap) {
                bail!("overlap {overlap} is out of range: give 1 to 50 graders per image");
            }
            let policy = ResolutionPolicy::parse(&policy).ok_or_else(|| {
                anyhow::anyhow!("policy {policy:?} is unknown: use majority-vote, senior-arbitration or adjudication")
            })?;
            let text = std::fs::read_to_string(&guideline).with_context(|| format!("reading {}", guideline.display()))?;
            let (row, _) = store_guideline(&mut conn, &text)?;
            let spec = ProjectSpec {
                slug: &slug,
                name: &name,
                guideline_id: row.id,
                overlap,
                policy,
                policy_params: serde_json::json!({}),
            };
            let project = projects::create_project(&mut conn, &spec)?;
            println!("created study {} with guideline {} {}", project.slug, row.key, row.version);
            Ok(())
        }
        ProjectCommand::AddMember { project, username, role } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("role {role:?} is unknown: use grader, senior or lead"))?;
            let project_row = projects::find_by_slug(&mut conn, &project)?
                .ok_or_else(|| anyhow::anyhow!("no study with slug {project:?}"))?;
            let user = users::find_by_username(&mut conn, &username)?
                .ok_or_else(|| anyhow::anyhow!("no user {username:?}; create it with `quorum user add`"))?;
            let membership = projects::set_member(&mut conn, project_row.id, user.id, role)?;
            println!("{username} is {} in {project} as {}", role.as_str(), membership.pseudonym);
            Ok(())
        }
    }
}

pub fn run_guideline(_settings: &Settings, command: GuidelineCommand) -> anyhow::Result<()> {
    match command {
        GuidelineCommand::Check { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            match parse_guideline(&text) {
                Ok(guideline) => {
                    println!(
                        "{}: guideline {} version {} is valid ({} fields)",
                        file.display(),
                        guideline.key,
                        guideline.version,
                        guideline.fields.len()
                    );
                    Ok(())
                }
                Err(problems) => {
                    for problem in &problems {
                        eprintln!("{}:{problem}", file.display());
                    }
                    bail!("{} has {} problem(s)", file.display(), problems.len());
                }
            }
        }
    }
}

pub fn run_import(settings: &Settings, command: ImportCommand) -> anyhow::Result<()> {
    match command {
        ImportCommand::Images { project, path, metadata } => {
            let db = open_database(settings)?;
            let project_row = {
                let mut conn = db.conn()?;
                projects::find_by_slug(&mut conn, &project)?.ok_or_else(|| anyhow::anyhow!("no study with slug {project:?}"))?
            };
            let report = import_images(&db, settings, &project_row, &path, metadata.as_deref(), ImageLimits::default(), None)?;
            for (name, reason) in &report.failed {
                println!("failed   {name}: {reason}");
            }
            for name in &report.skipped {
                println!("skipped  {name}: not an image file name (.jpg, .jpeg, .png, .tif, .tiff)");
            }
            for name in &report.unmatched_metadata {
                println!("warning  metadata row {name:?} matches no imported image");
            }
            println!("imported {} image(s), {} failed", report.imported.len(), report.failed.len());
            Ok(())
        }
        ImportCommand::Grades(args) => super::import_grades::run_grades(settings, &args),
        ImportCommand::Resolutions(args) => super::import_grades::run_resolutions(settings, &args),
    }
}
