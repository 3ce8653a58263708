//! The `idp` command line: serving, migrations, keys, the audit chain, roles, people and
//! clients.

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
    /// Print results as JSON (users, clients and roles commands).
    #[arg(long, global = true)]
    pub json: bool,
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
    /// People: member import, search, and the helpdesk's repairs (each recorded in the audit
    /// log with its reason).
    Users {
        #[command(subcommand)]
        action: UsersCommand,
    },
    /// Registered portals (OAuth clients) other than those of the configuration file.
    Clients {
        #[command(subcommand)]
        action: ClientsCommand,
    },
}

/// Operations on people. PERSON is an email address, a member code or a user id.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Import members from a CSV file with a header row: email, member_code, given_name,
    /// family_name, locale. Invalid rows are reported by line and skipped; people already
    /// present are left as they are, so a re-run imports nothing twice. Exits with 1 when some
    /// rows were invalid.
    Import {
        /// The CSV file (UTF-8).
        file: PathBuf,
    },
    /// Find people by email address, member code or name; shows where each account stands.
    Find {
        /// An email address, a member code, or words of a name.
        query: String,
    },
    /// Remove the person's second factor: at the next sign-in they confirm their contact email
    /// with a code, choose a new password and enrol a method again.
    #[command(name = "reset-2fa")]
    Reset2fa {
        person: String,
        #[arg(long)]
        reason: String,
    },
    /// Lift a lock after too many failed attempts.
    Unlock {
        person: String,
        #[arg(long)]
        reason: String,
    },
    /// Start changing the contact email: a code goes to the new address and a notice to the
    /// old one; the change takes effect when the person enters the code.
    SetEmail {
        person: String,
        /// The new contact email address.
        #[arg(long)]
        email: String,
        #[arg(long)]
        reason: String,
    },
}

/// Operations on registered portals.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a portal; a confidential client's secret is printed once.
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// A public client (no secret, PKCE required).
        #[arg(long)]
        public: bool,
        /// Exact redirect URI; repeat for several.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Where the portal may ask to return after logout; repeat for several.
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// List every registered client.
    List,
    /// Replace a client's secret; the new one is printed once and the old one stops working.
    RotateSecret {
        id: String,
        #[arg(long)]
        reason: String,
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
        // Pages and the messages of every command say how to reach the helpdesk.
        crate::config::set_help_contact(&settings.help);
        let serving = matches!(self.command, Command::Serve);
        crate::telemetry::init(
            &settings,
            if serving {
                crate::telemetry::LogOutput::Stdout
            } else {
                crate::telemetry::LogOutput::Stderr
            },
        );
        let result = match self.command {
            Command::Serve => serve(settings),
            Command::Migrate => migrate(&settings),
            Command::CheckConfig => {
                println!("configuration is valid:\n{settings:#?}");
                Ok(())
            }
            Command::GenMasterKey | Command::GenClientSecret => Ok(()),
            Command::Keys { action } => keys_command(&settings, action),
            Command::Roles { action } => roles_command(&settings, action, self.json),
            Command::Users { action } => match users_command(&settings, action, self.json) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e),
            },
            Command::Clients { action } => match clients_command(&settings, action, self.json) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e),
            },
            Command::Audit { action } => match audit_command(&settings, action) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                // A server's failure also goes to its log, for whoever collects it; a command's
                // log is on standard error already, where the line below goes.
                if serving {
                    tracing::error!(error = %e, "failed");
                }
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
    let stopped = runtime.block_on(crate::app::serve(settings))?;
    // Ends the background tasks, and with them every handle on the audit writer.
    drop(runtime);
    stopped.finish(std::time::Duration::from_secs(10));
    Ok(())
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
                    crate::error::Error::Command(format!(
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
                    crate::error::Error::Command(format!(
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

fn roles_command(
    settings: &Settings,
    action: RolesCommand,
    json: bool,
) -> Result<(), crate::error::Error> {
    use crate::store::roles::{self, Role};
    let (email, role_name, grant) = match &action {
        RolesCommand::Grant { email, role } => (email, role, true),
        RolesCommand::Revoke { email, role } => (email, role, false),
    };
    let role = Role::parse(role_name).ok_or_else(|| {
        crate::error::Error::Command(format!(
            "unknown role `{role_name}`; use auditor, helpdesk or admin"
        ))
    })?;
    let store = open_store(settings)?;
    let mut conn = store.connection()?;
    let user = crate::store::users::find_by_email(&mut conn, email)?.ok_or_else(|| {
        crate::error::Error::Command(format!("no person has the email address `{email}`"))
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
    if json {
        println!(
            "{}",
            serde_json::json!({ "ok": true, "changed": changed, "role": role.as_str(), "email": user.email })
        );
    } else if changed {
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

fn hasher_of(settings: &Settings) -> Result<crate::crypto::KeyedHasher, crate::error::Error> {
    let (master_key, _) = MasterKey::resolve(
        settings.master_key.as_ref().map(|k| k.expose()),
        &settings.data_dir,
    )?;
    Ok(crate::crypto::KeyedHasher::new(&master_key))
}

fn reason_of(text: &str) -> Result<crate::staff::Reason, crate::error::Error> {
    crate::staff::Reason::parse(text)
        .map_err(|r| crate::error::Error::Command(format!("--reason: {r}")))
}

/// Prints a refusal (as JSON with `--json`); the command then exits with 1.
fn refused(json: bool, refusal: &crate::staff::Refusal) -> bool {
    if json {
        println!(
            "{}",
            serde_json::json!({ "ok": false, "error": refusal.to_string() })
        );
    } else {
        eprintln!("refused: {refusal}");
    }
    false
}

/// Runs a users command; `Ok(false)` when it was refused or some import rows were invalid.
fn users_command(
    settings: &Settings,
    action: UsersCommand,
    json: bool,
) -> Result<bool, crate::error::Error> {
    use crate::staff::{self, Actor};
    let store = open_store(settings)?;
    let mut conn = store.connection()?;
    let hasher = hasher_of(settings)?;
    let actor = Actor::cli();
    match action {
        UsersCommand::Import { file } => {
            let input = std::fs::File::open(&file).map_err(|e| {
                crate::error::Error::Command(format!("cannot open {}: {e}", file.display()))
            })?;
            let size = input.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(size),
                indicatif::ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {percent:>3}% {binary_bytes}/{binary_total_bytes} {elapsed} (eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let started = std::time::Instant::now();
            let report = staff::import::import(
                &mut conn,
                std::io::BufReader::with_capacity(1 << 16, input),
                |bytes| bar.set_position(bytes),
            )
            .map_err(|e| crate::error::Error::Command(e.to_string()))?;
            bar.finish_and_clear();
            let seconds = started.elapsed().as_secs_f64();
            audit::append(
                &mut conn,
                &actor.event(
                    "users.imported",
                    None,
                    &serde_json::json!({
                        "file": file.file_name().map(|f| f.to_string_lossy().to_string()),
                        "rows": report.rows,
                        "imported": report.imported,
                        "already_present": report.already_present,
                        "invalid": report.invalid.len(),
                    }),
                ),
            )?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "ok": report.invalid.is_empty(),
                        "rows": report.rows,
                        "imported": report.imported,
                        "already_present": report.already_present,
                        "invalid": report.invalid,
                        "seconds": seconds,
                    })
                );
            } else {
                for e in &report.invalid {
                    println!("line {}: {}", e.line, e.message);
                }
                println!(
                    "{} rows: {} imported, {} already present, {} invalid ({:.1} s, {:.0} rows/s)",
                    report.rows,
                    report.imported,
                    report.already_present,
                    report.invalid.len(),
                    seconds,
                    report.rows as f64 / seconds.max(1e-6)
                );
            }
            Ok(report.invalid.is_empty())
        }
        UsersCommand::Find { query } => {
            let query = match staff::PersonQuery::parse(&query) {
                Ok(q) => q,
                Err(r) => return Ok(refused(json, &r)),
            };
            let found = staff::find_with_status(&mut conn, &hasher, &query)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "people": found.people.iter().map(crate::staff::PersonStatus::to_json).collect::<Vec<_>>(),
                        "more": found.more,
                    })
                );
            } else if found.people.is_empty() {
                println!("nobody found");
            } else {
                for s in &found.people {
                    let u = &s.user;
                    println!(
                        "{}  {} {} <{}>  code {}  {}  2FA {}{}",
                        u.id,
                        u.given_name,
                        u.family_name,
                        u.email,
                        u.member_code.as_deref().unwrap_or("-"),
                        s.state(),
                        u.mfa_method.as_str(),
                        s.locked_until
                            .map(|t| format!("  locked until {}", t.format("%Y-%m-%d %H:%M UTC")))
                            .unwrap_or_default()
                    );
                }
                if found.more {
                    println!(
                        "more than {} match: the first in alphabetical order are listed; add a word to narrow the search",
                        staff::SEARCH_LIMIT
                    );
                }
            }
            Ok(true)
        }
        UsersCommand::Reset2fa { person, reason } => {
            let reason = reason_of(&reason)?;
            let user = match staff::person_named(&mut conn, &person)? {
                Ok(u) => u,
                Err(r) => return Ok(refused(json, &r)),
            };
            match staff::reset_second_factor(&mut conn, &actor, &user.id, &reason)? {
                Ok(user) => {
                    done(json, &user, "second factor reset: at the next sign-in they confirm their email and enrol again");
                    Ok(true)
                }
                Err(r) => Ok(refused(json, &r)),
            }
        }
        UsersCommand::Unlock { person, reason } => {
            let reason = reason_of(&reason)?;
            let user = match staff::person_named(&mut conn, &person)? {
                Ok(u) => u,
                Err(r) => return Ok(refused(json, &r)),
            };
            match staff::unlock(&mut conn, &hasher, &actor, &user.id, &reason)? {
                Ok(was_locked) => {
                    done(
                        json,
                        &user,
                        if was_locked {
                            "unlocked"
                        } else {
                            "was not locked; failure counts cleared"
                        },
                    );
                    Ok(true)
                }
                Err(r) => Ok(refused(json, &r)),
            }
        }
        UsersCommand::SetEmail {
            person,
            email,
            reason,
        } => {
            let reason = reason_of(&reason)?;
            let user = match staff::person_named(&mut conn, &person)? {
                Ok(u) => u,
                Err(r) => return Ok(refused(json, &r)),
            };
            let in_force = crate::authn::sign_in_policy::PolicyInForce::load(
                &mut conn,
                crate::authn::sign_in_policy::SignInPolicy::from_settings(&settings.sign_in),
            )?;
            let policy = crate::authn::email_code::CodePolicy::of(&in_force.get());
            let started = match staff::begin_email_change(
                &mut conn, &hasher, &policy, &actor, &user.id, &email, &reason,
            )? {
                Ok(s) => s,
                Err(r) => return Ok(refused(json, &r)),
            };
            let redis = settings
                .redis_url
                .as_deref()
                .map(redis::Client::open)
                .transpose()?;
            let mail = crate::app::mail_queue_of(settings, redis.as_ref())?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(staff::send_email_change_mails(
                    &mail,
                    &settings.issuer(),
                    &started,
                ))
                .map_err(|e| crate::error::Error::Command(e.to_string()))?;
            done(
                json,
                &started.user,
                &format!(
                    "a code was sent to {}, a notice to {}; the change takes effect when the code is entered",
                    started.new_email, started.user.email
                ),
            );
            Ok(true)
        }
    }
}

fn done(json: bool, user: &crate::store::users::User, what: &str) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "ok": true, "id": user.id, "email": user.email, "done": what })
        );
    } else {
        println!("{} <{}>: {what}", user.id, user.email);
    }
}

/// Runs a clients command; `Ok(false)` when it was refused.
fn clients_command(
    settings: &Settings,
    action: ClientsCommand,
    json: bool,
) -> Result<bool, crate::error::Error> {
    use crate::staff::{portals, Actor};
    let store = open_store(settings)?;
    let mut conn = store.connection()?;
    let hasher = hasher_of(settings)?;
    let actor = Actor::cli();
    let configured = settings.configured_client_ids();
    match action {
        ClientsCommand::List => {
            let listed = crate::store::clients::list(&mut conn)?;
            if json {
                let rows: Vec<_> = listed
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "id": c.id,
                            "name": c.name,
                            "kind": c.kind,
                            "enabled": c.enabled,
                            "redirect_uris": c.redirect_uris,
                            "from_configuration": configured.contains(&c.id),
                        })
                    })
                    .collect();
                println!("{}", serde_json::json!({ "clients": rows }));
            } else {
                for c in &listed {
                    println!(
                        "{:<24} {:<12} {:<8} {:<13} {}",
                        c.id,
                        c.kind,
                        if c.enabled { "enabled" } else { "disabled" },
                        if configured.contains(&c.id) {
                            "configuration"
                        } else {
                            "console"
                        },
                        c.name
                    );
                }
            }
            Ok(true)
        }
        ClientsCommand::Add {
            id,
            name,
            public,
            redirect_uris,
            post_logout_redirect_uris,
            backchannel_logout_uri,
            reason,
        } => {
            let reason = reason_of(&reason)?;
            let new = portals::NewPortal {
                id,
                name,
                public,
                redirect_uris,
                post_logout_redirect_uris,
                backchannel_logout_uri,
            };
            match portals::create(&mut conn, &hasher, &configured, &actor, &new, &reason)? {
                Ok(secret) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({ "ok": true, "client_id": new.id, "client_secret": secret })
                        );
                    } else {
                        println!("client {} registered", new.id);
                        if let Some(secret) = secret {
                            println!("client secret (shown once, keep it now): {secret}");
                        }
                    }
                    Ok(true)
                }
                Err(r) => Ok(refused(json, &r)),
            }
        }
        ClientsCommand::RotateSecret { id, reason } => {
            let reason = reason_of(&reason)?;
            match portals::rotate_secret(&mut conn, &hasher, &configured, &actor, &id, &reason)? {
                Ok(secret) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({ "ok": true, "client_id": id, "client_secret": secret })
                        );
                    } else {
                        println!("new client secret for {id} (shown once, keep it now): {secret}");
                    }
                    Ok(true)
                }
                Err(r) => Ok(refused(json, &r)),
            }
        }
    }
}
