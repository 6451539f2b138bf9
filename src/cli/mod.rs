//! The `quorum` command line: one subcommand per job, all sharing [`Settings`].

pub mod aggregate;
pub mod al;
pub mod al_run;
pub mod agreement;
pub mod admin;
pub mod export;
pub mod import_grades;

use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::http::{self, AppState};
use crate::store::Database;

#[derive(Debug, Parser)]
#[command(name = "quorum", version, about = "Multi-grader labeling of medical images with adjudication and agreement statistics")]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server.
    Serve,
    /// Set up the demo study of real fundus photographs (first run only), then serve it.
    Demo,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Create studies and manage their members.
    #[command(subcommand)]
    Project(admin::ProjectCommand),
    /// Check or store grading guidelines.
    #[command(subcommand)]
    Guideline(admin::GuidelineCommand),
    /// Import images into a study.
    #[command(subcommand)]
    Import(admin::ImportCommand),
    /// Agreement statistics of a CSV of grades, without a server.
    Agreement(agreement::AgreementArgs),
    /// Majority vote or Dawid-Skene labels of a CSV of grades, without a server.
    Aggregate(aggregate::AggregateArgs),
    /// Write a study's reference standard, grades, agreement report and provenance to a folder.
    Export(export::ExportArgs),
    /// Active learning: run a model on a study's items, or simulate strategies on labeled images.
    #[command(subcommand)]
    Al(al::AlCommand),
}

/// Logs to stderr; the level comes from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,actix_server=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Creates the data folder and opens the database, running migrations.
pub fn open_database(settings: &Settings) -> anyhow::Result<Database> {
    std::fs::create_dir_all(settings.data_dir())
        .with_context(|| format!("creating data folder {}", settings.data_dir().display()))?;
    let url = settings.database_url();
    let db = Database::open(&url, settings.max_connections())
        .with_context(|| format!("opening database {}", crate::store::redact_url(&url)))?;
    crate::bundled::store_bundled_guidelines(&mut *db.conn()?)?;
    Ok(db)
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings;
    match cli.command {
        Command::Serve => serve(settings, None),
        Command::Demo => {
            let db = open_database(&settings)?;
            let summary = crate::demo::set_up(&db, &settings)?;
            serve(settings, Some(summary))
        }
        Command::Migrate => {
            open_database(&settings)?;
            println!("database is up to date");
            Ok(())
        }
        Command::User(command) => admin::run_user(&settings, command),
        Command::Project(command) => admin::run_project(&settings, command),
        Command::Guideline(command) => admin::run_guideline(&settings, command),
        Command::Import(command) => admin::run_import(&settings, command),
        Command::Agreement(args) => agreement::run(&args),
        Command::Aggregate(args) => aggregate::run(&args),
        Command::Export(args) => export::run(&settings, &args),
        Command::Al(command) => al::run(&settings, command),
    }
}

/// Binds the address, prints where to go, and serves until Ctrl-C.
fn serve(settings: Settings, demo: Option<crate::demo::DemoSummary>) -> anyhow::Result<()> {
    let db = open_database(&settings)?;
    let keys = crate::auth::TokenKeys::load_or_create(&settings.jwt_key_path())?;
    let listener = TcpListener::bind(&settings.addr)
        .with_context(|| format!("binding {}; is another server using that port? choose one with --addr", settings.addr))?;
    let address = listener.local_addr()?;
    let url = format!("http://{address}/");

    if let Some(summary) = demo {
        println!("{}", summary.describe(&url));
    } else {
        println!("Quorum is serving at {url}");
    }
    tracing::info!(addr = %address, database = db.backend().name(), "server starting");

    let events = std::sync::Arc::new(crate::events::EventHub::default());
    if db.backend() == crate::store::Backend::Postgres {
        crate::events::connect_postgres(&events, &db, &settings.database_url());
    }
    let state = AppState { db, settings, keys, events };
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let server = http::run(listener, state)?;
        server.await
    })?;
    tracing::info!("server stopped");
    Ok(())
}

/// A path argument that must exist.
pub fn existing_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("{text} does not exist"))
    }
}
