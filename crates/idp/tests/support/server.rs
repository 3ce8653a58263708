//! Spawning the real `idp` binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// Path of the binary under test (Cargo builds it for integration tests).
pub const IDP: &str = env!("CARGO_BIN_EXE_idp");

/// A running `idp serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    /// Readers of its standard output and error, each kept until the stream ends: a pipe left
    /// unread would fill up and block the server on its next log line.
    output: Vec<std::thread::JoinHandle<String>>,
}

/// Reads `stream` to its end on a thread of its own; the thread gives back what it read.
fn drain(stream: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    })
}

impl Server {
    /// Starts `idp serve` in `dir` with `env`, and waits until it answers `/health/live`.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_on(dir, free_port(), env)
    }

    /// Like [`Server::start`] on a chosen port (for a public URL that names it).
    pub fn start_on(dir: &Path, port: u16, env: &[(&str, &str)]) -> Self {
        let mut cmd = base_command(dir);
        cmd.arg("serve")
            .env("GUICHET_BIND", format!("127.0.0.1:{port}"))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn idp serve");
        let output = [
            child.stdout.take().map(drain),
            child.stderr.take().map(drain),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            output,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client().get(server.url("/health/live")).send() {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "idp serve did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Another process answering on the port would be taken for this server: this one
        // must still be running.
        if let Ok(Some(exit)) = server.child.try_wait() {
            panic!("idp serve exited ({exit}) while something else answered on {port}");
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and returns the exit status and everything the process printed.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().expect("wait") {
                break exit;
            }
            assert!(Instant::now() < deadline, "idp did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        let logs = std::mem::take(&mut self.output)
            .into_iter()
            .map(|reader| reader.join().expect("output reader"))
            .collect();
        (exit, logs)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `idp` run in `dir`, with no GUICHET_* variable inherited from the test environment.
pub fn base_command(dir: &Path) -> Command {
    let mut cmd = Command::new(IDP);
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("GUICHET_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    base_command(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run idp")
}

/// A running `idp serve` with a configuration file, on SQLite or on a fresh PostgreSQL
/// database, and a store opened on the same database for assertions.
pub struct Deployment {
    pub server: Server,
    /// The master key the server uses (to seal test authenticator secrets).
    pub master_key: idp::crypto::MasterKey,
    pub store: idp::store::Store,
    pub dir: tempfile::TempDir,
    pub postgres: Option<super::EmptyPostgres>,
}

impl Deployment {
    /// Starts it on `port` with `config` as `idp.toml` and `env` on top.
    pub fn start(config: &str, postgres: bool, port: u16, env: &[(&str, &str)]) -> Self {
        use idp::store::{DatabaseTarget, PoolOptions, Store};
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("idp.toml"), config).expect("config");
        let pg = postgres.then(super::EmptyPostgres::create);
        let key = idp::crypto::MasterKey::generate().to_base64();
        // Test passwords are hashed at a low cost; the server must not upgrade them each time.
        let mut all: Vec<(&str, &str)> = vec![
            ("GUICHET_CONFIG", "idp.toml"),
            ("GUICHET_MASTER_KEY", &key),
            ("GUICHET_SIGN_IN__ARGON2_M_COST_KIB", "1024"),
            ("GUICHET_SIGN_IN__ARGON2_T_COST", "1"),
        ];
        if let Some(pg) = &pg {
            all.push(("GUICHET_DATABASE_URL", &pg.url));
        }
        all.extend_from_slice(env);
        let server = Server::start_on(dir.path(), port, &all);
        let target = match &pg {
            Some(pg) => DatabaseTarget::Postgres(pg.url.clone()),
            None => DatabaseTarget::Sqlite(dir.path().join("data/guichet.db")),
        };
        let store = Store::open(
            target,
            &PoolOptions {
                max_size: 2,
                connect_timeout: Duration::from_secs(10),
                sqlite_busy_timeout_ms: 10_000,
            },
        )
        .expect("open the server's database");
        Self {
            server,
            master_key: idp::crypto::MasterKey::from_base64(&key).expect("key"),
            store,
            dir,
            postgres: pg,
        }
    }
}

/// An argon2id hash of `password` at a low cost (the server reads the cost from the hash).
pub fn cheap_password_hash(password: &str) -> String {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(
            idp::authn::password::Passwords::new(1024, 1, 1, 1)
                .expect("params")
                .hash(password.into()),
        )
        .expect("hash")
}

/// Adds a person with `password` (hashed cheaply) whose second factor is the emailed code.
pub fn person_with_emailed_codes(
    store: &idp::store::Store,
    email: &str,
    password: &str,
    member_code: Option<&str>,
) -> idp::store::users::User {
    use idp::store::users::{self, MfaSetting, NewUser};
    let mut conn = store.connection().expect("conn");
    let user = users::insert(
        &mut conn,
        &NewUser {
            id: uuid::Uuid::new_v4().to_string(),
            email: email.into(),
            member_code: member_code.map(str::to_string),
            given_name: "Jean".into(),
            family_name: "Roy".into(),
            locale: "fr-CA".into(),
            password_hash: Some(cheap_password_hash(password)),
            must_reset: false,
        },
        idp::store::now(),
    )
    .expect("person");
    users::set_mfa(&mut conn, &user.id, &MfaSetting::Email, idp::store::now()).expect("mfa");
    user
}
