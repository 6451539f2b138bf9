//! `quorum demo`: a ready study of real fundus photographs for a first look.
//!
//! On an empty database it creates a lead, a senior and three graders with random passwords
//! (printed once and written to `<data-dir>/demo-credentials.txt`, mode 0600, one line per
//! user: role, username, password), stores the bundled diabetic retinopathy guideline and
//! creates the study `demo` with overlap 3 from the photographs embedded from `seed/`.
//! Started again, it reuses what exists and creates nothing twice.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use rust_embed::RustEmbed;

use crate::auth::{hash_password, random_password};
use crate::config::Settings;
use crate::domain::roles::{ResolutionPolicy, Role};
use crate::imaging::import::{import_in_memory, parse_metadata};
use crate::store::guidelines::store_guideline;
use crate::store::projects::{self, ProjectSpec};
use crate::store::{items, users, Database};

/// The guideline the demo study grades against.
pub const DR_GUIDELINE: &str = include_str!("../guidelines/dr-screening.toml");

pub const DEMO_SLUG: &str = "demo";

#[derive(RustEmbed)]
#[folder = "seed/"]
struct SeedFiles;

/// The demo accounts: role and username.
const DEMO_USERS: [(Role, &str); 5] = [
    (Role::Lead, "lead"),
    (Role::Senior, "senior"),
    (Role::Grader, "grader1"),
    (Role::Grader, "grader2"),
    (Role::Grader, "grader3"),
];

/// What set-up did, for the message printed before serving.
pub struct DemoSummary {
    /// Role, username and password of accounts created now; empty when they existed.
    pub new_credentials: Vec<(Role, String, String)>,
    pub credentials_file: PathBuf,
    pub item_count: i64,
    pub import_failures: Vec<(String, String)>,
}

impl DemoSummary {
    pub fn describe(&self, url: &str) -> String {
        let mut text = format!("Quorum demo: study \"{DEMO_SLUG}\" with {} fundus photographs.\n", self.item_count);
        if self.new_credentials.is_empty() {
            text += &format!("Demo accounts exist already; their passwords are in {}\n", self.credentials_file.display());
        } else {
            text += "Demo accounts (shown once; also saved in ";
            text += &format!("{}):\n", self.credentials_file.display());
            for (role, username, password) in &self.new_credentials {
                text += &format!("  {:<7} {username:<8} {password}\n", role.as_str());
            }
        }
        for (name, reason) in &self.import_failures {
            text += &format!("warning: demo image {name} was not imported: {reason}\n");
        }
        text += &format!("Open {url} in a browser and log in. Stop the server with Ctrl-C.");
        text
    }
}

/// Creates whatever part of the demo does not exist yet.
pub fn set_up(db: &Database, settings: &Settings) -> anyhow::Result<DemoSummary> {
    let mut conn = db.conn()?;
    let credentials_file = settings.data_dir().join("demo-credentials.txt");

    let mut new_credentials = Vec::new();
    let mut user_ids = Vec::new();
    for (role, username) in DEMO_USERS {
        let user = match users::find_by_username(&mut conn, username)? {
            Some(user) => user,
            None => {
                let password = random_password();
                let display = format!("Demo {} ({username})", role.as_str());
                let user = users::create_user(&mut conn, username, &display, &hash_password(&password)?, false)?;
                new_credentials.push((role, username.to_string(), password));
                user
            }
        };
        user_ids.push((role, user.id));
    }
    if !new_credentials.is_empty() {
        write_credentials(&credentials_file, &new_credentials)?;
    }

    let project = match projects::find_by_slug(&mut conn, DEMO_SLUG)? {
        Some(project) => project,
        None => {
            let (guideline, _) = store_guideline(&mut conn, DR_GUIDELINE)?;
            let spec = ProjectSpec {
                slug: DEMO_SLUG,
                name: "Demo: diabetic retinopathy in fundus photographs",
                guideline_id: guideline.id,
                overlap: 3,
                policy: ResolutionPolicy::MajorityVote,
                policy_params: serde_json::json!({}),
            };
            projects::create_project(&mut conn, &spec)?
        }
    };
    for (role, user_id) in &user_ids {
        if projects::role_of(&mut conn, project.id, *user_id)?.is_none() {
            projects::set_member(&mut conn, project.id, *user_id, *role)?;
        }
    }

    let mut import_failures = Vec::new();
    if items::count_in_project(&mut conn, project.id)? == 0 {
        drop(conn);
        let (files, metadata) = seed_files()?;
        let report = import_in_memory(db, settings, &project, files, &metadata, None);
        import_failures = report.failed;
        conn = db.conn()?;
    }
    let item_count = items::count_in_project(&mut conn, project.id)?;
    Ok(DemoSummary { new_credentials, credentials_file, item_count, import_failures })
}

/// The embedded seed photographs as `(file name, bytes)`, sorted by file name, and their
/// metadata by file name.
pub fn seed_files() -> anyhow::Result<(Vec<(String, Vec<u8>)>, BTreeMap<String, BTreeMap<String, String>>)> {
    let metadata_bytes = SeedFiles::get("metadata.csv").context("seed/metadata.csv is missing from the build")?;
    let metadata = parse_metadata(&metadata_bytes.data, "seed/metadata.csv")?;
    let mut files = Vec::new();
    for path in SeedFiles::iter() {
        if !path.ends_with(".jpg") {
            continue;
        }
        let Some(file) = SeedFiles::get(&path) else { continue };
        let name = path.rsplit('/').next().unwrap_or(&path).to_string();
        files.push((name, file.data.into_owned()));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((files, metadata))
}

/// Writes `role username password` lines to a new file readable only by its owner.
fn write_credentials(path: &PathBuf, credentials: &[(Role, String, String)]) -> anyhow::Result<()> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    for (role, username, password) in credentials {
        writeln!(file, "{} {username} {password}", role.as_str())?;
    }
    Ok(())
}
