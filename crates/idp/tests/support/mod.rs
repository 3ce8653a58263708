//! Test databases: a fresh SQLite file or a fresh PostgreSQL database per test.
//!
//! PostgreSQL and Redis are required. When they cannot be reached the tests fail with a message
//! saying how to get them (`scripts/test.sh` starts or installs both); they never skip.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
#![allow(dead_code)]

pub mod browser;
pub mod journey;
pub mod server;

/// Runs each named test once per backend, in modules named after it (`sqlite::name`,
/// `postgres::name`): `$setup(postgres: bool)` builds what each test receives by reference.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($setup:path; $($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $( #[test] fn $name() { super::$name(&$setup(false)); } )*
        }
        mod postgres {
            use super::*;
            $( #[test] fn $name() { super::$name(&$setup(true)); } )*
        }
    };
}

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::Connection;
use idp::store::{DatabaseTarget, PoolOptions, Store};

/// Administrative URL of the test PostgreSQL server (must be allowed to create databases).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://guichet_test:guichet_test@127.0.0.1:5432/postgres".into())
}

/// URL of the test Redis server.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A database owned by one test, removed when dropped.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    cleanup: Cleanup,
}

// Held for their `Drop`: the directory or database goes with the test.
#[allow(dead_code)]
enum Cleanup {
    Sqlite(tempfile::TempDir),
    Postgres(EmptyPostgres),
}

fn pool_options() -> PoolOptions {
    PoolOptions {
        max_size: 8,
        connect_timeout: Duration::from_secs(10),
        sqlite_busy_timeout_ms: 10_000,
    }
}

/// A store on a database another process (the server under test) owns, for assertions and
/// for setting up data.
pub fn open_store(target: DatabaseTarget) -> Store {
    Store::open(target, &pool_options()).expect("open the server's database")
}

impl TestDb {
    /// A new migrated database: PostgreSQL when `postgres`, else SQLite.
    pub fn new(postgres: bool) -> Self {
        if postgres {
            Self::postgres()
        } else {
            Self::sqlite()
        }
    }

    /// A new SQLite file in a temporary directory, migrated.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("guichet.db");
        let url = format!("sqlite://{}", path.display());
        let store = Store::open(DatabaseTarget::Sqlite(path), &pool_options())
            .expect("open SQLite test database");
        Self {
            store,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A new PostgreSQL database, migrated.
    pub fn postgres() -> Self {
        let database = EmptyPostgres::create();
        let url = database.url.clone();
        let store = Store::open(DatabaseTarget::Postgres(url.clone()), &pool_options())
            .expect("open PostgreSQL test database");
        Self {
            store,
            url,
            cleanup: Cleanup::Postgres(database),
        }
    }

    /// A pooled connection for synchronous calls.
    pub fn conn(&self) -> idp::store::DbConnectionGuard {
        self.store.connection().expect("pooled connection")
    }
}

/// Same server and credentials, another database.
pub fn replace_database(url: &str, database: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("PostgreSQL URL");
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

/// Fails loudly unless Redis answers PING.
pub fn require_redis() -> String {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).expect("Redis URL");
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(3))
        .unwrap_or_else(|e| {
            panic!(
                "Redis is required for these tests and is not reachable at {url}: {e}. \
                 Run scripts/test.sh (it starts or installs Redis) or set TEST_REDIS_URL."
            )
        });
    let pong: String = redis::cmd("PING").query(&mut conn).expect("Redis PING");
    assert_eq!(pong, "PONG");
    url
}

/// An empty PostgreSQL database (no migrations), dropped with the guard.
pub struct EmptyPostgres {
    pub url: String,
    admin_url: String,
    name: String,
}

impl EmptyPostgres {
    pub fn create() -> Self {
        let admin_url = postgres_admin_url();
        let name = format!("guichet_t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = diesel::PgConnection::establish(&admin_url).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for these tests and is not reachable at {admin_url}: {e}. \
                 Run scripts/test.sh (it starts or installs PostgreSQL) or set TEST_POSTGRES_URL."
            )
        });
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        Self {
            url: replace_database(&admin_url, &name),
            admin_url,
            name,
        }
    }
}

impl Drop for EmptyPostgres {
    fn drop(&mut self) {
        if let Ok(mut admin) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A free loopback port (bound then released; the child binds it right after), never one
/// already handed to another test of this process: the kernel may give a released port out
/// again, and two servers started at once on one port would have both tests talk to the
/// one that bound it.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// A two-thread tokio runtime, as the server's two cores give it, for tests that drive async
/// handles (the audit writer, the refresh spender) with many tasks at once.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
