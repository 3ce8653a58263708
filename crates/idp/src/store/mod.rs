//! Storage: one diesel code base over SQLite (embedded default) and PostgreSQL (scale-out).
//!
//! Query functions are synchronous and take a [`DbConnection`]; [`Store::run`] executes them on
//! tokio's blocking pool so diesel never blocks the async executor. Dialect-specific SQL lives
//! only here, as explicit per-backend arms.
//!
//! Lookups by a unique key end in `get_result`, not `first`: `first` binds `LIMIT ?`, and
//! SQLite (since 3.46) plans with the bound limit and so re-prepares such a statement each
//! time the limit is bound again, that is on every execution. Parsing the SQL again cost the
//! busiest requests about a tenth of their CPU.
//!
//! Insertable rows with optional fields say `treat_none_as_default_value = false`: by default
//! diesel writes a `None` as `DEFAULT`, so the column list depends on the values, and diesel
//! then never caches the statement: every insert on SQLite was parsed and planned again. Every
//! nullable column defaults to `NULL`, so binding `NULL` stores the same row.

pub mod attempt_counters;
pub mod audit;
pub mod authorization_codes;
pub mod backchannel_deliveries;
pub mod client_assertions;
pub mod clients;
pub mod consents;
pub mod email_changes;
pub mod login_transactions;
pub mod one_time_codes;
pub mod refresh_tokens;
pub mod revoked_access_tokens;
pub mod roles;
pub mod schema;
pub mod sign_in_policy;
pub mod signing_keys;
pub mod sso_sessions;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Arbitrary constant for the advisory lock that serialises migrations when several instances
/// start at once on one PostgreSQL database.
const MIGRATION_LOCK_ID: i64 = 0x0067_7569_6368_6574; // "guichet"

/// One connection to either backend. Queries written against it work on both.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(diesel::SqliteConnection),
    Postgres(diesel::PgConnection),
}

/// The backend a database URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// Path of the SQLite file.
    Sqlite(PathBuf),
    /// libpq connection URL.
    Postgres(String),
}

impl DatabaseTarget {
    /// Chooses the backend from the URL scheme; any other scheme is an error.
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, such as sqlite://data/guichet.db".into());
            }
            if path.contains('?') {
                return Err("sqlite:// URLs take no parameters".into());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
            if parsed.host_str().is_none_or(str::is_empty) && !url.contains("host=") {
                return Err("postgres:// URL needs a host".into());
            }
            return Ok(Self::Postgres(url.to_string()));
        }
        let scheme = url.split("://").next().unwrap_or(url);
        Err(format!(
            "unsupported database scheme `{scheme}`; use sqlite://PATH or postgres://USER@HOST/DB"
        ))
    }

    /// Short name for logs and health output.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// Storage failures. A database error is never turned into "not found".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("database error: {0}")]
    Query(diesel::result::Error),
    #[error("a record with the same {0} already exists")]
    Conflict(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("cannot prepare the database file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database task was cancelled")]
    Cancelled,
    /// A write committed in a group ([`crate::audit::AuditLog::write`]) was rolled back with
    /// it, or stopped its thread.
    #[error("the write was not committed: {0}")]
    NotCommitted(String),
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                // Name the constrained column when the backend tells us, never the value.
                let what = info
                    .constraint_name()
                    .map(str::to_string)
                    .or_else(|| {
                        info.message()
                            .rsplit("failed: ")
                            .next()
                            .map(|s| s.to_string())
                    })
                    .unwrap_or_else(|| "key".into());
                StoreError::Conflict(what)
            }
            other => StoreError::Query(other),
        }
    }
}

/// A connection borrowed from the pool; derefs to [`DbConnection`].
pub type DbConnectionGuard = PooledConnection<ConnectionFactory>;

/// Result of storage calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Opens connections of the configured backend and prepares each one.
#[derive(Debug, Clone)]
pub struct ConnectionFactory {
    target: DatabaseTarget,
    sqlite_busy_timeout_ms: u32,
}

impl ConnectionFactory {
    /// A factory for `target`.
    pub fn new(target: DatabaseTarget, sqlite_busy_timeout_ms: u32) -> Self {
        Self {
            target,
            sqlite_busy_timeout_ms,
        }
    }

    /// Opens one connection. SQLite is set to WAL mode with foreign keys on: SQLite enforces
    /// foreign keys only on connections that ask for it, so every connection does.
    pub fn connect(&self) -> StoreResult<DbConnection> {
        match &self.target {
            DatabaseTarget::Sqlite(path) => {
                let path_str = path.to_str().ok_or_else(|| StoreError::File {
                    path: path.clone(),
                    source: std::io::Error::other("path is not UTF-8"),
                })?;
                let mut conn = diesel::SqliteConnection::establish(path_str)?;
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {};
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = NORMAL;
                     PRAGMA foreign_keys = ON;
                     PRAGMA wal_autocheckpoint = {SQLITE_AUTOCHECKPOINT_PAGES};
                     PRAGMA journal_size_limit = {SQLITE_JOURNAL_SIZE_LIMIT};",
                    self.sqlite_busy_timeout_ms
                ))?;
                Ok(DbConnection::Sqlite(conn))
            }
            DatabaseTarget::Postgres(url) => Ok(DbConnection::Postgres(
                diesel::PgConnection::establish(url)?,
            )),
        }
    }
}

impl ManageConnection for ConnectionFactory {
    type Connection = DbConnection;
    type Error = StoreError;

    fn connect(&self) -> Result<DbConnection, StoreError> {
        ConnectionFactory::connect(self)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), StoreError> {
        conn.batch_execute("SELECT 1").map_err(StoreError::from)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        // Cheap check on return to the pool: PostgreSQL connections know when they broke.
        match conn {
            DbConnection::Postgres(c) => diesel::r2d2::R2D2Connection::is_broken(c),
            DbConnection::Sqlite(_) => false,
        }
    }
}

/// The pool and how to reach it. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool<ConnectionFactory>,
    /// The pool's own factory is not reachable through r2d2: this copy opens the connections
    /// kept outside the pool, and names the backend.
    factory: ConnectionFactory,
    /// SQLite only; stops when the last clone of the store is dropped. Declared after the
    /// pool so that its connection closes last: the last connection to close checkpoints the
    /// whole WAL and removes it, leaving the database in its one file.
    _checkpointer: Option<Arc<Checkpointer>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.factory.target.backend_name())
            .finish()
    }
}

/// Pool options.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    pub connect_timeout: Duration,
    pub sqlite_busy_timeout_ms: u32,
}

impl Store {
    /// Opens the pool (creating the SQLite file's directory when needed) and applies pending
    /// migrations.
    pub fn open(target: DatabaseTarget, options: &PoolOptions) -> StoreResult<Self> {
        if let DatabaseTarget::Sqlite(path) = &target {
            prepare_sqlite_dir(path)?;
        }
        let factory = ConnectionFactory::new(target, options.sqlite_busy_timeout_ms);
        // Fail fast with the real cause (bad URL, database missing) rather than a pool timeout.
        let mut first = factory.connect()?;
        run_migrations(&mut first)?;
        let checkpointer = match &factory.target {
            DatabaseTarget::Sqlite(path) => Some(Arc::new(
                Checkpointer::start(first, options.sqlite_busy_timeout_ms).map_err(|source| {
                    StoreError::File {
                        path: path.clone(),
                        source,
                    }
                })?,
            )),
            DatabaseTarget::Postgres(_) => None,
        };
        let pool = Pool::builder()
            .max_size(options.max_size)
            .min_idle(Some(1))
            .connection_timeout(options.connect_timeout)
            // No `SELECT 1` before each use: it doubled the queries of short requests. A broken
            // connection still fails its query, is reported, and is replaced by r2d2.
            .test_on_check_out(false)
            .build(factory.clone())?;
        Ok(Self {
            pool,
            factory,
            _checkpointer: checkpointer,
        })
    }

    /// Which backend this store talks to.
    pub fn target(&self) -> &DatabaseTarget {
        &self.factory.target
    }

    /// Opens a connection of its own, outside the pool, for a thread that keeps one (the
    /// audit writer on SQLite).
    pub fn open_connection(&self) -> StoreResult<DbConnection> {
        self.factory.connect()
    }

    /// Borrows a connection on the calling thread. For blocking contexts (CLI, tests).
    pub fn connection(&self) -> StoreResult<DbConnectionGuard> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` with a pooled connection on tokio's blocking pool.
    pub async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|_| StoreError::Cancelled)?
    }

    /// Runs a short read `f`: a few point lookups by key, and at most microseconds of other
    /// work (the refresh grant adds an ES256 or EdDSA signature). It must not write. On SQLite
    /// it runs on the calling thread when a connection is idle: in WAL mode such a read takes
    /// microseconds and does not wait for writers, so the trip to the blocking pool and back
    /// would cost more than the read itself. Otherwise, and always on PostgreSQL (a network
    /// round trip), it runs as [`Store::run`] does.
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        if matches!(self.factory.target, DatabaseTarget::Sqlite(_)) {
            if let Some(mut conn) = self.pool.try_get() {
                return f(&mut conn);
            }
        }
        self.run(f).await
    }

    /// Answers whether the database takes a trivial query.
    pub async fn ping(&self) -> StoreResult<()> {
        self.run(|conn| conn.batch_execute("SELECT 1").map_err(StoreError::from))
            .await
    }
}

fn prepare_sqlite_dir(path: &Path) -> StoreResult<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::crypto::create_private_dir(dir).map_err(|source| StoreError::File {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// How often the checkpointer copies SQLite's write-ahead log into the database file.
const SQLITE_CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// The WAL size, in pages, at which a committing connection checkpoints by itself: a backstop
/// for when the checkpointer falls behind. SQLite's default is 1,000 pages.
const SQLITE_AUTOCHECKPOINT_PAGES: u32 = 16_000;

/// The WAL size, in frames (one page each), past which the checkpointer starts the log over
/// (about 32 MiB with 4 KiB pages), well below the commits' own threshold so that commits seldom
/// checkpoint.
const SQLITE_WAL_RESTART_FRAMES: i32 = 8_000;

/// The size SQLite truncates the WAL file back to when it starts the log over, in bytes: a
/// transaction larger than the restart mark (an import) leaves no lasting file behind it.
const SQLITE_JOURNAL_SIZE_LIMIT: u32 = 64 * 1024 * 1024;

/// A thread that checkpoints the WAL of a SQLite database every [`SQLITE_CHECKPOINT_EVERY`],
/// until dropped.
///
/// SQLite runs its automatic checkpoint inside the commit that crosses the WAL threshold, while
/// that transaction still holds the write lock: every 1,000 pages a commit took about 10 ms
/// (copying pages and syncing the database file) and every writer queued behind it. A passive
/// checkpoint from this thread does the same copy without the write lock, beside the writers.
///
/// Copying is not enough to bound the WAL file. SQLite starts the log over only when a write
/// begins while the log is fully copied and no reader uses it; under a steady stream of reads
/// and writes that moment never comes, and the file grew by about 57 MB a second under
/// `/authorize` load. Past [`SQLITE_WAL_RESTART_FRAMES`] the thread therefore holds this
/// process's writers back ([`SQLITE_WRITER`]) and runs a restart checkpoint, which copies the
/// rest and waits for the readers to leave the log, so that the next write starts it over.
struct Checkpointer {
    /// Dropping it wakes and stops the thread.
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The row `PRAGMA wal_checkpoint` answers.
#[derive(diesel::QueryableByName)]
struct CheckpointStatus {
    /// 1 when the checkpoint could not finish (a writer or reader held it back).
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
    /// Frames in the WAL.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
}

impl Checkpointer {
    /// Starts the thread over `conn`, which it keeps until it stops; `busy_timeout_ms` is the
    /// connection's busy timeout outside restarts.
    fn start(conn: DbConnection, busy_timeout_ms: u32) -> std::io::Result<Self> {
        let DbConnection::Sqlite(mut conn) = conn else {
            return Err(std::io::Error::other("the checkpointer is for SQLite"));
        };
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(SQLITE_CHECKPOINT_EVERY)
                {
                    checkpoint(&mut conn, busy_timeout_ms);
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// One turn of the checkpointer: a passive checkpoint, then a restart when the log is long.
fn checkpoint(conn: &mut diesel::SqliteConnection, busy_timeout_ms: u32) {
    let run = |conn: &mut diesel::SqliteConnection, mode: &str| {
        diesel::sql_query(format!("PRAGMA wal_checkpoint({mode})"))
            .get_result::<CheckpointStatus>(conn)
            .inspect_err(|e| {
                // Commits still checkpoint past SQLITE_AUTOCHECKPOINT_PAGES.
                tracing::warn!(error = %e, mode, "SQLite checkpoint failed");
            })
            .ok()
    };
    let Some(passive) = run(conn, "PASSIVE") else {
        return;
    };
    if passive.log < SQLITE_WAL_RESTART_FRAMES {
        return;
    }
    // Each pass syncs the log written since the last one to disk, beside the writers. A
    // second pass leaves the restart, which holds the writers, only what was written during
    // it to sync and copy: under `/authorize` load the restart then held them 12 ms at the
    // median instead of 17.
    if run(conn, "PASSIVE").is_none() {
        return;
    }
    // Writers queue behind this turn for as long as the restart takes: the copy left after
    // the passive pass, and the readers' last microseconds on the log. SQLite's own busy
    // handler would sleep a whole millisecond and more at the first reader it meets, with
    // every writer waiting; short tries instead, and a later turn if readers stay.
    let _turn = SQLITE_WRITER.try_lock_for(SQLITE_WRITER_WAIT);
    if conn.batch_execute("PRAGMA busy_timeout = 0").is_err() {
        return;
    }
    for _ in 0..SQLITE_RESTART_TRIES {
        match run(conn, "RESTART") {
            Some(restart) if restart.busy != 0 => std::thread::sleep(SQLITE_RESTART_RETRY),
            _ => break,
        }
    }
    if let Err(e) = conn.batch_execute(&format!("PRAGMA busy_timeout = {busy_timeout_ms}")) {
        tracing::warn!(error = %e, "SQLite busy timeout not restored on the checkpointer");
    }
}

/// How many times a restart is tried in one turn, and the pause between tries.
const SQLITE_RESTART_TRIES: u32 = 20;
const SQLITE_RESTART_RETRY: Duration = Duration::from_micros(100);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // A panic in the thread has already been reported; there is nothing left to stop.
            let _ = thread.join();
        }
    }
}

/// The turn of this process's SQLite write transactions, one at a time.
///
/// SQLite has one writer per database. A connection that finds the write lock taken waits in
/// SQLite's busy handler, which sleeps 1 ms, then 2, 5, 10 ms between tries, while a write
/// transaction here holds the lock for a tenth of a millisecond or so: concurrent writers
/// (refresh tokens, sign-ins, the audit writer) then spent most of their time asleep with the
/// lock free. Queuing on this mutex first hands the lock to the next writer as soon as the
/// previous one ends. It is process-wide rather than per database because a process serves
/// one database; tests that open several just take turns. Other processes (an `idp` command
/// run beside the server) still meet SQLite's busy timeout.
static SQLITE_WRITER: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// How long a write transaction queues for its turn before going to SQLite's own lock (and its
/// busy timeout) without it. Only a transaction that waits on another one from the same thread
/// would wait that long; it then fails with SQLite's busy error as it did before the queue.
const SQLITE_WRITER_WAIT: Duration = Duration::from_secs(10);

/// Runs `f` in a transaction that, on SQLite, takes the write lock from its first statement
/// (`BEGIN IMMEDIATE`), after queuing for its turn among this process's writers
/// ([`SQLITE_WRITER`]). A deferred `BEGIN` that reads before it writes cannot wait for the lock
/// when another connection commits first: SQLite fails it at once (SQLITE_BUSY), which showed
/// as errors under concurrent sign-ins. Every transaction that writes goes through here. Inside
/// an open transaction it becomes a savepoint, as `Connection::transaction` does.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <DbConnection as Connection>::TransactionManager;
    // Held until the transaction ends, and only by the outermost one: a savepoint inside it
    // must not queue behind its own transaction.
    let _turn = match conn {
        DbConnection::Sqlite(c) => {
            let depth =
                AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth();
            matches!(depth, Ok(None))
                .then(|| SQLITE_WRITER.try_lock_for(SQLITE_WRITER_WAIT))
                .flatten()
        }
        DbConnection::Postgres(_) => None,
    };
    let began = match conn {
        DbConnection::Sqlite(c) => {
            match AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE") {
                Ok(()) => true,
                Err(diesel::result::Error::AlreadyInTransaction) => false,
                Err(e) => return Err(e.into()),
            }
        }
        DbConnection::Postgres(_) => false,
    };
    if !began {
        return conn.transaction(f);
    }
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            Manager::rollback_transaction(conn)?;
            Err(e)
        }
    }
}

/// Runs `f` as part of the caller's open transaction, or in a [`write_transaction`] of its own
/// when none is open. For writes that must be atomic but need no savepoint inside a caller's
/// transaction: their error fails that transaction anyway.
pub(crate) fn write_within<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if in_transaction(conn) {
        f(conn)
    } else {
        write_transaction(conn, f)
    }
}

/// Runs `f`, a single statement that writes. On SQLite it is a [`write_transaction`] (its turn
/// among this process's writers, and SQLite's write lock from the start; a savepoint inside an
/// open transaction); on PostgreSQL a statement is a transaction by itself, so it runs as it
/// is: one round trip instead of three.
pub fn write_statement<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConnection::Sqlite(_) => write_transaction(conn, f),
        DbConnection::Postgres(_) => f(conn),
    }
}

/// A statement whose text never changes, named by `M` (a type of its own per statement), so
/// that each connection parses and plans it once. Diesel prepares every `UPDATE` again at each
/// execution because a changeset can skip `None` fields and so change the text; wrap only
/// statements without such a field (a column set to an `Option` is bound as `NULL`, not
/// skipped).
pub(crate) struct Fixed<M, Q> {
    query: Q,
    name: std::marker::PhantomData<M>,
}

/// Wraps `query`, whose text is always the same, as the statement named `M`.
pub(crate) fn fixed<M, Q>(query: Q) -> Fixed<M, Q> {
    Fixed {
        query,
        name: std::marker::PhantomData,
    }
}

impl<M: 'static, Q> diesel::query_builder::QueryId for Fixed<M, Q> {
    type QueryId = M;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<M, Q: diesel::query_builder::Query> diesel::query_builder::Query for Fixed<M, Q> {
    type SqlType = Q::SqlType;
}

impl<M, Q, DB> diesel::query_builder::QueryFragment<DB> for Fixed<M, Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: diesel::query_builder::AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

// Only on a backend's own connection: through the multi-backend layer the statement is walked
// as a reference, which loses the fixed text (see [`on_backend`]).
impl<M, Q> RunQueryDsl<diesel::SqliteConnection> for Fixed<M, Q> {}
impl<M, Q> RunQueryDsl<diesel::PgConnection> for Fixed<M, Q> {}

/// Runs `$body` with `$c` bound to the connection of the backend in use (the body is compiled
/// once per backend). Statements run through the multi-backend connection have their text
/// built again at every execution, even when prepared once; the statements of the sign-in
/// pages run this way.
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::store::DbConnection::Sqlite($c) => $body,
            $crate::store::DbConnection::Postgres($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// Whether `conn` is inside a transaction (or a savepoint of one).
pub(crate) fn in_transaction(conn: &mut DbConnection) -> bool {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let depth = match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth()
        }
        DbConnection::Postgres(c) => {
            AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth()
        }
    };
    matches!(depth, Ok(Some(_)))
}

/// Applies pending migrations of the connection's backend; returns how many ran.
///
/// On PostgreSQL an advisory lock makes concurrent starts of several instances take turns.
pub fn run_migrations(conn: &mut DbConnection) -> StoreResult<usize> {
    let migration_error =
        |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
    let applied = match conn {
        DbConnection::Sqlite(c) => {
            let applied = c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(migration_error)?;
            applied.len()
        }
        DbConnection::Postgres(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_ID})"))?;
            let result = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|applied| applied.len())
                .map_err(migration_error);
            c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})"))?;
            result?
        }
    };
    // Values SQL cannot compute the same way on both backends, left empty by a migration, are
    // computed here (each step finds nothing to do once done, and may run on several
    // instances at once).
    users::fill_name_keys(conn)?;
    Ok(applied)
}

/// Current time as stored: UTC, microsecond precision (what both backends keep).
pub fn now() -> chrono::NaiveDateTime {
    truncate_micros(chrono::Utc::now().naive_utc())
}

/// Drops sub-microsecond precision so a value reads back exactly as written on both backends.
pub fn truncate_micros(t: chrono::NaiveDateTime) -> chrono::NaiveDateTime {
    use chrono::{SubsecRound, Timelike};
    let micros = t.nanosecond() / 1_000;
    t.trunc_subsecs(0) + chrono::Duration::microseconds(i64::from(micros))
}

/// Joins a list for storage in a text column (scopes, URIs): JSON, so any character survives.
pub(crate) fn encode_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Reverses [`encode_list`]; a value that is not a JSON list is reported, not hidden.
pub(crate) fn decode_list(column: &str, text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("{column} is not a JSON list: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store on the SQLite file `path` with a pool of `max_size` connections.
    fn open_sqlite(path: PathBuf, max_size: u32, busy_timeout_ms: u32) -> Store {
        Store::open(
            DatabaseTarget::Sqlite(path),
            &PoolOptions {
                max_size,
                connect_timeout: Duration::from_secs(5),
                sqlite_busy_timeout_ms: busy_timeout_ms,
            },
        )
        .expect("store")
    }

    /// A megabyte written in one commit stays in the WAL (under the commits' own threshold)
    /// until the checkpointer copies it into the database file.
    #[test]
    fn the_checkpointer_copies_the_wal_into_the_database_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoint.db");
        let store = open_sqlite(path.clone(), 2, 5_000);
        let before = std::fs::metadata(&path).expect("database file").len();
        store
            .connection()
            .expect("connection")
            .batch_execute(
                "CREATE TABLE bulk (b BLOB NOT NULL);
                 INSERT INTO bulk VALUES (zeroblob(1048576));",
            )
            .expect("write");
        // Polls a state change, not a duration: the bound only stops a broken build.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut after = before;
        while after < before + 1_048_576 && std::time::Instant::now() < deadline {
            std::thread::sleep(SQLITE_CHECKPOINT_EVERY);
            after = std::fs::metadata(&path).expect("database file").len();
        }
        assert!(
            after >= before + 1_048_576,
            "the database file grew from {before} to {after} bytes only"
        );
    }

    /// Under a steady stream of reads and writes the log is never fully copied with no reader
    /// on it, so SQLite alone never starts it over; the checkpointer's restarts keep the WAL
    /// file bounded all the same.
    #[test]
    fn the_wal_file_stays_bounded_under_steady_reads_and_writes() {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bounded.db");
        let store = open_sqlite(path.clone(), 10, 5_000);
        store
            .connection()
            .expect("connection")
            .batch_execute("CREATE TABLE bulk (b BLOB NOT NULL)")
            .expect("table");
        let wal = dir.path().join("bounded.db-wal");
        let writing = Arc::new(AtomicBool::new(true));
        let largest = Arc::new(AtomicU64::new(0));
        // Enough readers that one of them nearly always holds a snapshot older than the log's
        // end, as under a server's load.
        let readers: Vec<_> = (0..6)
            .map(|_| {
                let (store, writing) = (store.clone(), writing.clone());
                std::thread::spawn(move || {
                    let mut conn = store.connection().expect("connection");
                    while writing.load(Ordering::Relaxed) {
                        conn.batch_execute("SELECT count(*) FROM bulk")
                            .expect("read");
                    }
                })
            })
            .collect();
        // Two writers, 1,200 transactions of 64 KiB each: about 150 MiB of log in all.
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (store, wal, largest) = (store.clone(), wal.clone(), largest.clone());
                std::thread::spawn(move || {
                    let mut conn = store.connection().expect("connection");
                    for _ in 0..1_200 {
                        write_transaction(&mut conn, |c| {
                            c.batch_execute("INSERT INTO bulk VALUES (zeroblob(65536))")
                        })
                        .expect("write");
                        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                        largest.fetch_max(size, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("writer");
        }
        writing.store(false, Ordering::Relaxed);
        for reader in readers {
            reader.join().expect("reader");
        }
        let largest = largest.load(Ordering::Relaxed);
        assert!(
            largest < 80 * 1024 * 1024,
            "the WAL file reached {largest} bytes for about 150 MiB written"
        );
    }

    /// With SQLite's busy timeout at zero, a write transaction that met the lock taken would
    /// fail at once ("database is locked"): they all succeed because they take turns first.
    #[test]
    fn concurrent_write_transactions_take_turns_instead_of_meeting_a_locked_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_sqlite(dir.path().join("turns.db"), 8, 0);
        store
            .connection()
            .expect("connection")
            .batch_execute("CREATE TABLE turns (writer INTEGER NOT NULL, n INTEGER NOT NULL)")
            .expect("table");
        let writers: Vec<_> = (0..8)
            .map(|writer| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut conn = store.connection().expect("connection");
                    for n in 0..50 {
                        write_transaction(&mut conn, |conn| {
                            conn.batch_execute(&format!(
                                "INSERT INTO turns VALUES ({writer}, {n})"
                            ))?;
                            // A savepoint inside must not wait for its own transaction.
                            write_transaction(conn, |conn| {
                                conn.batch_execute(&format!(
                                    "INSERT INTO turns VALUES ({writer}, -{n})"
                                ))
                            })
                        })
                        .expect("write transaction");
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().expect("writer");
        }
        let rows: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM turns)",
        ))
        .get_result(&mut *store.connection().expect("connection"))
        .expect("count");
        assert_eq!(rows, 8 * 50 * 2);
    }

    #[test]
    fn target_from_scheme() {
        assert_eq!(
            DatabaseTarget::parse("sqlite://data/guichet.db"),
            Ok(DatabaseTarget::Sqlite(PathBuf::from("data/guichet.db")))
        );
        assert_eq!(
            DatabaseTarget::parse("sqlite:///var/lib/guichet/g.db"),
            Ok(DatabaseTarget::Sqlite(PathBuf::from(
                "/var/lib/guichet/g.db"
            )))
        );
        assert!(matches!(
            DatabaseTarget::parse("postgres://guichet@127.0.0.1/guichet"),
            Ok(DatabaseTarget::Postgres(_))
        ));
        assert!(matches!(
            DatabaseTarget::parse("postgresql://127.0.0.1:5432/g"),
            Ok(DatabaseTarget::Postgres(_))
        ));
        let err = DatabaseTarget::parse("mysql://x").expect_err("mysql refused");
        assert!(err.contains("mysql"), "{err}");
        assert!(DatabaseTarget::parse("sqlite://").is_err());
        assert!(DatabaseTarget::parse("data/guichet.db").is_err());
    }

    #[test]
    fn timestamps_keep_microseconds_only() {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 123_456_789)
            .expect("valid")
            .naive_utc();
        let t = truncate_micros(t);
        use chrono::Timelike;
        assert_eq!(t.nanosecond(), 123_456_000);
    }
}
