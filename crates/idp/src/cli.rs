//! The `idp` command line: `serve`, `migrate`, `check-config`, `gen-master-key`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Settings, CONFIG_ENV};
use crate::crypto::MasterKey;
use crate::oidc::keys::{self, SigningAlg};
use crate::store::audit::{self, NewAuditEvent};
use crate::store::{now, run_migrations, signing_keys, ConnectionFactory, PoolOptions, Store};

/// Guichet, an OpenID Connect identity provider.
#[derive(Debug, Parser)]
#[command(name = "idp", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Defaults to config/idp.toml when it exists.
    #[arg(long, short, global = true, env = CONFIG_ENV, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP until SIGTERM/SIGINT (migrations are applied first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load and validate the configuration, print it with secrets redacted, and exit.
    CheckConfig,
    /// Print a new random master key for GUICHET_MASTER_KEY.
    GenMasterKey,
    /// Print a new random client secret (URL-safe, 256 bits).
    GenClientSecret,
    /// Token signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// The audit log's hash chain.
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Staff roles of people.
    Roles {
        #[command(subcommand)]
        action: RolesCommand,
    },
}

/// Role operations; each is recorded in the audit log.
#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// Give a person a role: auditor, helpdesk or admin.
    Grant {
        /// The person's email address.
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: String,
    },
    /// Take a role away from a person.
    Revoke {
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: String,
    },
}

/// Audit chain operations.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the whole chain: every row's hash and link, the head, and each signed checkpoint.
    /// Exits with 1 and names the first broken link when the log was tampered with.
    Verify,
    /// Sign a checkpoint at the chain's current head now (the server also makes them
    /// periodically: `audit.checkpoint_interval_secs`).
    Checkpoint,
    /// Retention: export every event that occurred before a date to a new JSON Lines file,
    /// sign a checkpoint at the last of them, then remove them (recorded as `audit.archived`).
    Archive {
        /// Events strictly before this UTC date (YYYY-MM-DD) are archived.
        #[arg(long)]
        before: String,
        /// The archive file to create (it must not exist).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Signing key operations.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys: id, algorithm, state, dates.
    List,
    /// Add a new signing key and retire the current one (it stays in the JWKS until the tokens
    /// it signed have expired). Running instances use the new key within a minute.
    Rotate {
        /// Algorithm to rotate: RS256, ES256, EdDSA, or all.
        #[arg(long, default_value = "all")]
        alg: String,
    },
}

impl Cli {
    /// Runs the command; errors are printed to stderr with the key or cause they concern.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::GenMasterKey => {
                println!("{}", MasterKey::generate().to_base64());
                return ExitCode::SUCCESS;
            }
            Command::GenClientSecret => {
                println!("{}", crate::oidc::flow::random_token());
                return ExitCode::SUCCESS;
            }
            _ => {}
        }
        let settings = match Settings::load(self.config.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        crate::telemetry::init(&settings);
        let result = match self.command {
            Command::Serve => serve(settings),
            Command::Migrate => migrate(&settings),
            Command::CheckConfig => {
                println!("configuration is valid:\n{settings:#?}");
                Ok(())
            }
            Command::GenMasterKey | Command::GenClientSecret => Ok(()),
            Command::Keys { action } => keys_command(&settings, action),
            Command::Roles { action } => roles_command(&settings, action),
            Command::Audit { action } => match audit_command(&settings, action) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "failed");
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

fn serve(settings: Settings) -> Result<(), crate::error::Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(crate::app::serve(settings))
}

fn migrate(settings: &Settings) -> Result<(), crate::error::Error> {
    let target = settings.database_target()?;
    if let crate::store::DatabaseTarget::Sqlite(path) = &target {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::crypto::create_private_dir(dir)?;
        }
    }
    let factory = ConnectionFactory::new(target, settings.database.sqlite_busy_timeout_ms);
    let mut conn = factory.connect()?;
    let applied = run_migrations(&mut conn)?;
    println!("{applied} migration(s) applied");
    Ok(())
}

fn open_store(settings: &Settings) -> Result<Store, crate::error::Error> {
    Ok(Store::open(
        settings.database_target()?,
        &PoolOptions {
            max_size: 1,
            connect_timeout: std::time::Duration::from_secs(settings.database.connect_timeout_secs),
            sqlite_busy_timeout_ms: settings.database.sqlite_busy_timeout_ms,
        },
    )?)
}

fn keys_command(settings: &Settings, action: KeysCommand) -> Result<(), crate::error::Error> {
    let store = open_store(settings)?;
    let mut conn = store.connection()?;
    match action {
        KeysCommand::List => {
            let at = now();
            println!(
                "{:<44} {:<6} {:<8} {:<20} publish until",
                "kid", "alg", "state", "created"
            );
            for key in signing_keys::list(&mut conn)? {
                let state = match (key.retired_at, key.publish_until) {
                    (None, _) => "active",
                    (Some(retired), _) if retired > at => "retiring",
                    (Some(_), Some(until)) if until > at => "retired",
                    _ => "expired",
                };
                println!(
                    "{:<44} {:<6} {:<8} {:<20} {}",
                    key.kid,
                    key.alg,
                    state,
                    key.created_at.format("%Y-%m-%d %H:%M:%S"),
                    key.publish_until
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        KeysCommand::Rotate { alg } => {
            let algs: Vec<SigningAlg> = if alg.eq_ignore_ascii_case("all") {
                SigningAlg::ALL.to_vec()
            } else {
                vec![SigningAlg::parse(&alg).ok_or_else(|| {
                    crate::config::ConfigError::Source(format!(
                        "unknown algorithm `{alg}`; use RS256, ES256, EdDSA or all"
                    ))
                })?]
            };
            let (master_key, _) = MasterKey::resolve(
                settings.master_key.as_ref().map(|k| k.expose()),
                &settings.data_dir,
            )?;
            for alg in algs {
                let at = now();
                let created = keys::rotate(
                    &mut conn,
                    &master_key,
                    alg,
                    at,
                    settings.key_propagation(),
                    settings.retired_key_publication(),
                )?;
                audit::append(
                    &mut conn,
                    &NewAuditEvent::by(
                        "cli",
                        "signing_key.rotated",
                        None,
                        serde_json::json!({ "kid": created.kid, "alg": created.alg }),
                    ),
                )?;
                println!("{} rotated: new key {}", created.alg, created.kid);
            }
        }
    }
    Ok(())
}

/// Runs an audit command; `Ok(false)` when verification found a break.
fn audit_command(settings: &Settings, action: AuditCommand) -> Result<bool, crate::error::Error> {
    let store = open_store(settings)?;
    let mut conn = store.connection()?;
    let (master_key, _) = MasterKey::resolve(
        settings.master_key.as_ref().map(|k| k.expose()),
        &settings.data_dir,
    )?;
    let keys =
        keys::SigningKeyRing::load(&mut conn, master_key, settings.key_propagation(), now())?;
    let issuer = settings.issuer();
    match action {
        AuditCommand::Checkpoint => {
            match crate::audit::chain::checkpoint(&mut conn, &keys, &issuer)? {
                Some(c) => println!("checkpoint signed at row {}", c.chain_index),
                None => {
                    println!("nothing to sign: the chain is empty or its head has a checkpoint")
                }
            }
            Ok(true)
        }
        AuditCommand::Archive { before, out } => {
            use crate::audit::chain::ArchiveRefused;
            let before = chrono::NaiveDate::parse_from_str(&before, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .ok_or_else(|| {
                    crate::config::ConfigError::Source(format!(
                        "--before `{before}` is not a date: use YYYY-MM-DD"
                    ))
                })?;
            match crate::audit::chain::archive(&mut conn, &keys, &issuer, before, &out)? {
                Ok(a) => {
                    println!(
                        "archived rows through {} ({} rows) to {}, sha256 {}; the chain now verifies from the checkpoint at row {}",
                        a.through,
                        a.rows,
                        out.display(),
                        a.sha256,
                        a.through
                    );
                    Ok(true)
                }
                Err(ArchiveRefused::Nothing) => {
                    println!("nothing to archive before that date");
                    Ok(true)
                }
                Err(ArchiveRefused::Broken(why)) => {
                    println!("archive refused: the audit chain is BROKEN: {why}");
                    Ok(false)
                }
                Err(ArchiveRefused::File(why)) => {
                    println!("archive refused: cannot write the archive file {why}");
                    Ok(false)
                }
            }
        }
        AuditCommand::Verify => {
            let v = crate::audit::chain::verify(&mut conn, &keys, &issuer, 5000)?;
            let c = &v.chain;
            if let Some(broken) = &c.first_break {
                println!("audit chain BROKEN after {} good rows: {broken}", c.checked);
                return Ok(false);
            }
            if let Some(index) = v.bad_signature {
                println!(
                    "audit chain BROKEN: the checkpoint at row {index} has an invalid signature"
                );
                return Ok(false);
            }
            println!(
                                "audit chain intact: {} rows, {} checkpoints ({} signatures checked, {} by keys no longer published), {} rows archived, {} rows from before the chain",
                c.checked, c.checkpoints, v.signatures_checked, v.signatures_unverifiable, c.archived, c.unchained
            );
            Ok(true)
        }
    }
}

fn roles_command(settings: &Settings, action: RolesCommand) -> Result<(), crate::error::Error> {
    use crate::store::roles::{self, Role};
    let (email, role_name, grant) = match &action {
        RolesCommand::Grant { email, role } => (email, role, true),
        RolesCommand::Revoke { email, role } => (email, role, false),
    };
    let role = Role::parse(role_name).ok_or_else(|| {
        crate::config::ConfigError::Source(format!(
            "unknown role `{role_name}`; use auditor, helpdesk or admin"
        ))
    })?;
    let store = open_store(settings)?;
    let mut conn = store.connection()?;
    let user = crate::store::users::find_by_email(&mut conn, email)?.ok_or_else(|| {
        crate::config::ConfigError::Source(format!("no person has the email address `{email}`"))
    })?;
    let changed = crate::store::write_transaction(&mut conn, |conn| {
        let changed = if grant {
            roles::grant(conn, &user.id, role, now())?
        } else {
            roles::revoke(conn, &user.id, role)?
        };
        if changed {
            audit::append(
                conn,
                &NewAuditEvent::by(
                    "cli",
                    if grant {
                        "role.granted"
                    } else {
                        "role.revoked"
                    },
                    Some(user.id.clone()),
                    serde_json::json!({ "role": role.as_str() }),
                ),
            )?;
        }
        Ok::<_, crate::store::StoreError>(changed)
    })?;
    let verb = if grant { "granted to" } else { "revoked from" };
    if changed {
        println!("{} {verb} {}", role.as_str(), user.email);
    } else {
        println!(
            "nothing to do: {} already had that state for {}",
            role.as_str(),
            user.email
        );
    }
    Ok(())
}
