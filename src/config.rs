//! Settings shared by every subcommand: where to listen, where data lives, which database.
//!
//! Each setting is a flag and a `QUORUM_*` variable, with a default that runs out of the box.
//! [`Settings`] is built once in `main` and passed down; nothing reads the environment later,
//! so tests can run several servers side by side with their own settings.

use std::path::{Path, PathBuf};

use clap::Args;

/// The server's settings.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address and port the web server listens on.
    #[arg(long, env = "QUORUM_ADDR", default_value = "127.0.0.1:8080", global = true)]
    pub addr: String,

    /// Folder for images, the signing key and the default SQLite database.
    #[arg(long, env = "QUORUM_DATA_DIR", default_value = "./quorum-data", global = true)]
    pub data_dir: PathBuf,

    /// Database URL: `postgres://user@host/db`, or a SQLite file path (default:
    /// `<data-dir>/quorum.db`).
    #[arg(long, env = "QUORUM_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
}

impl Settings {
    /// Settings for a data folder with defaults for the rest; used by tests and tools.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Settings {
        Settings { addr: "127.0.0.1:0".into(), data_dir: data_dir.into(), database_url: None }
    }

    /// The database URL, defaulting to `quorum.db` inside the data folder.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => self.data_dir.join("quorum.db").to_string_lossy().into_owned(),
        }
    }

    /// Content-addressed original images: `images/ab/abcdef...`.
    pub fn images_dir(&self) -> PathBuf {
        self.data_dir.join("images")
    }

    /// Display copies and thumbnails derived from the originals.
    pub fn derived_dir(&self) -> PathBuf {
        self.data_dir.join("derived")
    }

    pub fn jwt_key_path(&self) -> PathBuf {
        self.data_dir.join("jwt-signing.key")
    }

    pub fn models_dir(&self) -> PathBuf {
        self.data_dir.join("models")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Pool size: SQLite serialises writers, so a few connections are enough; PostgreSQL
    /// gets more.
    pub fn max_connections(&self) -> u32 {
        if self.database_url().starts_with("postgres") {
            16
        } else {
            8
        }
    }
}
