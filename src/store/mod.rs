//! Persistence: one diesel connection type over SQLite and PostgreSQL, the pool, migrations.
//!
//! [`DbConnection`] is a diesel `MultiConnection`, so every query is written once and runs on
//! both backends. The backend is picked from the URL scheme by [`Backend::from_url`] rather
//! than by the derive's `establish`, which tries each backend in turn and discards the real
//! connection error. SQLite connections are opened in WAL mode with foreign keys on and a
//! busy timeout; PostgreSQL is used as configured.
//!
//! The query modules (`users`, `projects`, `items`, ...) map rows to domain types. Grades,
//! resolutions and audit events are append-only: the migrations install triggers that reject
//! UPDATE and DELETE on them.

/// Runs a diesel query on the backend's own connection: `native!(conn, |c| query.first(c))`.
///
/// Through [`DbConnection`] a DSL query is wrapped in a type without a static query id. diesel
/// then keys its statement cache by SQL text and builds that text again on every call, which
/// took 5 to 8% of the SQLite writer's time in the 200-grader load run. On the backend's own
/// connection the query's type is the key. The query expression is written once and compiled
/// for each backend. Used for the queries of the grading requests.
macro_rules! native {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::DbConnection::Sqlite($c) => $body,
            $crate::store::DbConnection::Postgres($c) => $body,
        }
    };
}
pub(crate) use native;

pub mod active_learning;
pub mod agreement;
pub mod audit;
pub mod grading;
pub mod guidelines;
pub mod items;
pub mod models;
pub mod projects;
pub mod schema;
pub mod users;
pub mod workflow;
pub mod sql;
pub mod writer;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long a SQLite writer waits for the lock before failing with "database is locked".
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// A connection to either supported backend.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("could not open the database: {0}")]
    Connect(String),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the database did not commit the write: {0}")]
    Commit(String),
    #[error("the write was not applied because the database writer stopped; retry the request")]
    WriterStopped,
    #[error("the server is shutting down and did not finish the request; retry it")]
    ShuttingDown,
}

pub type StoreResult<T> = Result<T, StoreError>;

impl Backend {
    /// Picks the backend from the URL scheme: `postgres://` and `postgresql://` are PostgreSQL,
    /// `sqlite://` or a plain file path is SQLite.
    pub fn from_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Strips the optional `sqlite://` prefix so diesel receives a file path.
fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://").unwrap_or(url)
}

/// Opens one connection of the backend the URL names, with the SQLite settings applied.
///
/// Fails with the backend's own message, for example "connection refused" for a PostgreSQL
/// server that is not running or "unable to open database file" for a missing folder.
pub fn establish(url: &str) -> StoreResult<DbConnection> {
    match Backend::from_url(url) {
        Backend::Postgres => PgConnection::establish(url)
            .map(DbConnection::Postgres)
            .map_err(|e| StoreError::Connect(format!("PostgreSQL at {}: {e}", redact_url(url)))),
        Backend::Sqlite => {
            let path = sqlite_path(url);
            let mut conn = SqliteConnection::establish(path)
                .map_err(|e| StoreError::Connect(format!("SQLite file {path}: {e}")))?;
            // The busy timeout comes first so that switching to WAL waits for a lock held by
            // another connection instead of failing with "database is locked".
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA mmap_size = 268435456;"
            ))
            .map_err(|e| StoreError::Connect(format!("SQLite file {path}: {e}")))?;
            stabilise_query_plans(&mut conn).map_err(|e| StoreError::Connect(format!("SQLite file {path}: {e}")))?;
            Ok(DbConnection::Sqlite(conn))
        }
    }
}

/// Turns on SQLite's query planner stability guarantee for the connection.
///
/// Without it SQLite marks a prepared statement for recompiling whenever a new value is bound
/// to a parameter the planner looked at, and the `LIMIT ?` of every diesel `.first()` is such
/// a parameter. diesel binds every parameter again on each run, so those cached statements
/// were parsed and planned anew on every call. With the guarantee the plan never depends on
/// bound values, and a cached statement is reused as it is.
///
/// Fails with SQLite's error code when the option is refused.
fn stabilise_query_plans(conn: &mut SqliteConnection) -> Result<(), String> {
    // SAFETY: the handle is valid for the duration of the closure, and this option takes an
    // int and an optional int pointer, as passed.
    #[allow(unsafe_code)]
    let code = unsafe {
        conn.with_raw_connection(|db| {
            libsqlite3_sys::sqlite3_db_config(db, libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG, 1 as std::os::raw::c_int, std::ptr::null_mut::<std::os::raw::c_int>())
        })
    };
    if code == libsqlite3_sys::SQLITE_OK {
        Ok(())
    } else {
        Err(format!("cannot enable the query planner stability guarantee (SQLite error {code})"))
    }
}

/// Hides the password of a `postgres://user:password@host` URL for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or("");
            if credentials.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                format!("{scheme}://{user}@{host}")
            }
        }
        None => url.to_string(),
    }
}

/// r2d2 manager that opens connections through [`establish`].
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: String,
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = StoreError;

    fn connect(&self) -> Result<DbConnection, StoreError> {
        establish(&self.url)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), StoreError> {
        conn.batch_execute("SELECT 1").map_err(StoreError::Query)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// The connection pool, the backend it talks to and, on SQLite, the group-commit writer;
/// cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: Pool<ConnectionManager>,
    backend: Backend,
    writer: Option<Arc<writer::Writer>>,
    guidelines: Arc<RwLock<HashMap<i64, Arc<crate::domain::guideline::Guideline>>>>,
}

pub type Conn = PooledConnection<ConnectionManager>;

impl Database {
    /// Opens a pool on `url` and runs every pending migration.
    ///
    /// Fails when the first connection cannot be made (with the backend's message) or a
    /// migration fails.
    pub fn open(url: &str, max_connections: u32) -> StoreResult<Database> {
        let backend = Backend::from_url(url);
        // Connect once outside the pool so a bad URL fails with its real reason instead of
        // r2d2's generic timeout.
        let mut first = establish(url)?;
        run_migrations(&mut first)?;
        drop(first);

        let pool = Pool::builder()
            .max_size(max_connections)
            // r2d2 runs `SELECT 1` on every checkout by default. A SQLite connection is a file
            // handle that cannot drop, and the grading requests check out a connection several
            // times each.
            .test_on_check_out(backend == Backend::Postgres)
            .connection_timeout(Duration::from_secs(30))
            .build(ConnectionManager { url: url.to_string() })?;
        let writer = match backend {
            Backend::Sqlite => Some(Arc::new(writer::Writer::start(url)?)),
            Backend::Postgres => None,
        };
        Ok(Database { pool, backend, writer, guidelines: Arc::default() })
    }

    /// Runs a write transaction and returns once it is durable.
    ///
    /// On SQLite the job goes to the group-commit writer ([`writer`]), which commits it
    /// together with the other writes waiting at the time. On PostgreSQL it runs on a pooled
    /// connection. Either way the job should open its own transaction, as it would on a plain
    /// connection (on SQLite that becomes a savepoint of the batch).
    pub fn write<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.run(job),
            None => {
                let mut conn = self.conn().map_err(E::from)?;
                job(&mut conn)
            }
        }
    }

    /// [`Database::write`] for async callers: the future completes once the job's write is
    /// durable. On SQLite no thread waits for the group commit; on PostgreSQL the job runs on
    /// a blocking thread of the runtime.
    pub async fn write_async<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.submit(job).await,
            None => self.on_blocking_thread(job).await,
        }
    }

    /// Runs short reads for async callers.
    ///
    /// On SQLite a read of a few indexed rows takes microseconds and touches no network.
    /// Handing it to a blocking thread and back would cost more than the read, so it runs on
    /// the calling thread when a pooled connection is free at once. When none is free, and
    /// always on PostgreSQL (a network round trip), it runs on a blocking thread. Only the
    /// grading requests use this, and only for reads whose cost does not grow with the study.
    pub async fn read<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        if self.backend == Backend::Sqlite {
            if let Some(mut conn) = self.pool.try_get() {
                return job(&mut conn);
            }
        }
        self.on_blocking_thread(job).await
    }

    /// Runs `job` on a pooled connection in a blocking thread of the tokio runtime.
    async fn on_blocking_thread<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| E::from(StoreError::Pool(e)))?;
            job(&mut conn)
        });
        match task.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(E::from(StoreError::ShuttingDown)),
        }
    }

    /// The guideline stored under `id`, parsed once and then served from memory: a stored
    /// guideline version never changes.
    ///
    /// Fails when the row is missing or its fields cannot be read.
    pub fn guideline(&self, conn: &mut DbConnection, id: i64) -> StoreResult<Arc<crate::domain::guideline::Guideline>> {
        if let Some(found) = self.guidelines.read().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(found.clone());
        }
        let (_, guideline) = guidelines::load(conn, id)?.ok_or_else(|| StoreError::Corrupt(format!("guideline {id} is missing")))?;
        let guideline = Arc::new(guideline);
        self.guidelines.write().unwrap_or_else(|e| e.into_inner()).insert(id, guideline.clone());
        Ok(guideline)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Takes a connection from the pool, waiting up to 30 s.
    pub fn conn(&self) -> StoreResult<Conn> {
        Ok(self.pool.get()?)
    }

    /// Runs `SELECT 1`: the health check.
    pub fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn()?;
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }
}

/// Applies every pending migration of the connection's backend.
pub fn run_migrations(conn: &mut DbConnection) -> StoreResult<()> {
    let result = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConnection::Postgres(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| StoreError::Migration(e.to_string()))
}

/// Reverts every applied migration, newest first. Used by the migration round-trip test.
pub fn revert_all_migrations(conn: &mut DbConnection) -> StoreResult<()> {
    let result = match conn {
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConnection::Postgres(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| StoreError::Migration(e.to_string()))
}

/// The current time as Unix epoch milliseconds, the unit of every `*_at` column.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_millis() as i64
}

/// Takes the SQLite write lock at the start of a transaction that reads before it writes.
///
/// SQLite cannot upgrade a read transaction to a write one after another connection has
/// committed, and then fails with "database is locked" at once instead of waiting. Any write
/// statement, even one that changes no row, takes the write lock, and the busy timeout applies
/// while it waits. On PostgreSQL this does nothing.
pub fn take_write_lock(conn: &mut DbConnection) -> diesel::QueryResult<()> {
    if let DbConnection::Sqlite(_) = conn {
        sql::Prepared::new("UPDATE projects SET id = id WHERE id = -1", &[]).execute(conn)?;
    }
    Ok(())
}

/// True when a diesel error is a unique-constraint violation on either backend.
pub fn is_unique_violation(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
