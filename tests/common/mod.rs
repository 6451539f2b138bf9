//! Test support: a real server on port 0 over its own SQLite file or PostgreSQL schema.
//!
//! PostgreSQL tests are marked with
//! `#[cfg_attr(not(quorum_postgres_tests), ignore = "...")]`; `build.rs` enables them when
//! `QUORUM_TEST_POSTGRES_URL` is set (for example `postgres://postgres@127.0.0.1:5432/test`).
//! Each PostgreSQL test gets a fresh schema, dropped when the test ends, so tests run in
//! parallel.

#![allow(dead_code)]

pub mod reference;

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

use diesel::connection::SimpleConnection;
use diesel::Connection;
use quorum::auth::TokenKeys;
use quorum::config::Settings;
use quorum::http::{self, AppState};
use quorum::store::Database;

/// The reason shown for PostgreSQL tests that did not run.
pub const PG_SKIP_REASON: &str = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// A database of one test: its data folder and URL; a PostgreSQL schema is dropped on drop.
pub struct TestDatabase {
    pub dir: tempfile::TempDir,
    pub url: String,
    pg_schema: Option<(String, String)>,
}

impl TestDatabase {
    pub fn new(backend: TestBackend) -> TestDatabase {
        let dir = tempfile::tempdir().expect("temporary folder");
        match backend {
            TestBackend::Sqlite => {
                let url = dir.path().join("quorum.db").to_string_lossy().into_owned();
                TestDatabase { dir, url, pg_schema: None }
            }
            TestBackend::Postgres => {
                let base = std::env::var("QUORUM_TEST_POSTGRES_URL").expect(PG_SKIP_REASON);
                static COUNTER: AtomicU32 = AtomicU32::new(0);
                let schema = format!(
                    "quorum_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    rand::random::<u32>()
                );
                let mut conn = diesel::PgConnection::establish(&base).expect("connect to QUORUM_TEST_POSTGRES_URL");
                conn.batch_execute(&format!("CREATE SCHEMA {schema}")).expect("create test schema");
                let separator = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{separator}options=-csearch_path%3D{schema}");
                TestDatabase { dir, url, pg_schema: Some((base, schema)) }
            }
        }
    }

    pub fn settings(&self) -> Settings {
        Settings {
            addr: "127.0.0.1:0".into(),
            data_dir: self.dir.path().to_path_buf(),
            database_url: Some(self.url.clone()),
        }
    }

    /// Opens the database, migrated and with the bundled guidelines stored, as a server has it.
    pub fn open(&self) -> Database {
        let db = Database::open(&self.url, 8).expect("open test database");
        let mut conn = db.conn().expect("connection");
        quorum::bundled::store_bundled_guidelines(&mut conn).expect("store bundled guidelines");
        db
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((base, schema)) = &self.pg_schema {
            if let Ok(mut conn) = diesel::PgConnection::establish(base) {
                let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// A running server for one test.
pub struct TestApp {
    pub base_url: String,
    pub db: Database,
    pub settings: Settings,
    pub database: TestDatabase,
    pub client: reqwest::blocking::Client,
    server: actix_web::dev::ServerHandle,
}

impl TestApp {
    /// Starts a server on a fresh database of the given backend.
    pub fn spawn(backend: TestBackend) -> TestApp {
        Self::spawn_on(TestDatabase::new(backend))
    }

    /// Starts a server on an existing test database.
    pub fn spawn_on(database: TestDatabase) -> TestApp {
        let settings = database.settings();
        let db = database.open();
        let keys = TokenKeys::load_or_create(&settings.jwt_key_path()).expect("signing key");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let base_url = format!("http://{}", listener.local_addr().expect("local address"));
        let events = std::sync::Arc::new(quorum::events::EventHub::default());
        if db.backend() == quorum::store::Backend::Postgres {
            quorum::events::connect_postgres(&events, &db, &database.url);
        }
        let state = AppState { db: db.clone(), settings: settings.clone(), keys, events };

        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let server = http::run(listener, state).expect("start server");
                sender.send(server.handle()).expect("send handle");
                let _ = server.await;
            });
        });
        let server = receiver.recv().expect("server handle");
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        TestApp { base_url, db, settings, database, client, server }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Creates a user directly in the store and returns its id.
    pub fn create_user(&self, username: &str, password: &str, admin: bool) -> i64 {
        let mut conn = self.db.conn().expect("connection");
        let hash = quorum::auth::hash_password(password).expect("hash");
        quorum::store::users::create_user(&mut conn, username, username, &hash, admin).expect("create user").id
    }

    /// Logs in through the API and returns the token.
    pub fn login(&self, username: &str, password: &str) -> String {
        let response = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .expect("login request");
        assert_eq!(response.status(), 200, "login of {username} failed");
        let body: serde_json::Value = response.json().expect("login body");
        body["token"].as_str().expect("token").to_string()
    }

    pub fn get(&self, path: &str, token: &str) -> reqwest::blocking::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().expect("GET request")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.server.clone();
        std::thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(false)));
    }
}

/// A study set up directly in the store, with items that need no image files.
pub struct TestStudy {
    pub slug: String,
    pub project_id: i64,
    pub item_ids: Vec<i64>,
}

/// Gradable answers of the bundled guideline, varied by `seed` so graders disagree sometimes.
pub fn answers_for(seed: u64) -> serde_json::Value {
    let grade = (seed % 5).to_string();
    let yes_no = |bit: u64| if seed >> bit & 1 == 1 { "yes" } else { "no" };
    let dme = ["absent", "mild", "moderate", "severe"][(seed as usize / 5) % 4];
    serde_json::json!({
        "gradability": "gradable",
        "dr_severity": grade,
        "dme": dme,
        "microaneurysms": yes_no(1),
        "haemorrhages": yes_no(2),
        "hard_exudates": yes_no(3),
        "cotton_wool_spots": yes_no(4),
        "new_vessels": yes_no(5),
    })
}

impl TestApp {
    /// Creates a study on the bundled DR guideline with `n_items` items, led by `lead_id`.
    pub fn create_study(&self, slug: &str, n_items: usize, overlap: i32, policy: &str, lead_id: i64) -> TestStudy {
        use quorum::domain::roles::ResolutionPolicy;
        let mut conn = self.db.conn().expect("connection");
        let guideline = quorum::store::guidelines::find(&mut conn, "dr-screening", "1.0")
            .expect("query")
            .expect("bundled guideline stored");
        let spec = quorum::store::projects::ProjectSpec {
            slug,
            name: slug,
            guideline_id: guideline.id,
            overlap,
            policy: ResolutionPolicy::parse(policy).expect("policy"),
            policy_params: serde_json::json!({}),
        };
        let project = quorum::store::projects::create_project_with_lead(&mut conn, &spec, lead_id).expect("project");
        drop(conn);
        let names: Vec<String> = (0..n_items).map(|i| format!("image-{i:05}.jpg")).collect();
        let item_ids = self.insert_items(project.id, &names);
        TestStudy { slug: slug.to_string(), project_id: project.id, item_ids }
    }

    /// Inserts pending items without image files into a study, in one transaction, and
    /// returns their ids. Item `i` has a content hash made from `i` and creation time `i`.
    pub fn insert_items(&self, project_id: i64, names: &[String]) -> Vec<i64> {
        let mut conn = self.db.conn().expect("connection");
        conn.transaction::<_, quorum::store::StoreError, _>(|conn| {
            let mut ids = Vec::with_capacity(names.len());
            for (number, name) in names.iter().enumerate() {
                ids.push(quorum::store::items::insert_item(conn, &bare_item(project_id, name, number as i64, 0.0, &hash_of(number as i64)))?.id);
            }
            Ok(ids)
        })
        .expect("insert items")
    }

    /// Inserts one pending item without an image file and returns its id. `number` must differ
    /// from the numbers of the study's other items, because it makes the content hash.
    pub fn insert_item(&self, project_id: i64, name: &str, number: i64, priority: f64) -> i64 {
        let mut conn = self.db.conn().expect("connection");
        let sha = hash_of(number);
        quorum::store::items::insert_item(&mut conn, &bare_item(project_id, name, number, priority, &sha)).expect("item").id
    }
}

/// A content hash that no real image has: the number in hexadecimal.
fn hash_of(number: i64) -> String {
    format!("{:064x}", number + 1)
}

/// A pending item with no image file behind it, created at time `number`.
fn bare_item<'a>(project_id: i64, name: &'a str, number: i64, priority: f64, sha: &'a str) -> quorum::store::models::NewItem<'a> {
    quorum::store::models::NewItem {
        project_id,
        name,
        sha256: sha,
        stored_path: "images/none.jpg",
        byte_size: 1,
        format: "jpg",
        width: 1,
        height: 1,
        metadata: "{}",
        status: "pending",
        round: 0,
        priority,
        created_at: number,
    }
}

impl TestApp {
    /// Adds a user with a role to a study.
    pub fn add_member(&self, study: &TestStudy, user_id: i64, role: &str) {
        let mut conn = self.db.conn().expect("connection");
        let role = quorum::domain::roles::Role::parse(role).expect("role");
        quorum::store::projects::set_member(&mut conn, study.project_id, user_id, role).expect("member");
    }

    pub fn post_json(&self, path: &str, token: &str, body: &serde_json::Value) -> reqwest::blocking::Response {
        self.client.post(self.url(path)).bearer_auth(token).json(body).send().expect("POST request")
    }

    /// Number of grade rows in the database, corrections included.
    pub fn grade_count(&self) -> i64 {
        use diesel::prelude::*;
        let mut conn = self.db.conn().expect("connection");
        quorum::store::schema::grades::table.count().get_result(&mut conn).expect("count grades")
    }
}
