//! Builds the application state and the HTTP server; shared by `idp serve`, `demo` and the
//! in-process tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{middleware::from_fn, web, App, HttpServer};

use crate::config::Settings;
use crate::crypto::{KeyedHasher, MasterKey, MasterKeySource};
use crate::error::Error;
use crate::oidc::keys::{ensure_keys, SigningKeyRing};
use crate::store::{now, PoolOptions, Store};
use crate::web::middleware::{request_id, security_headers};

/// What every handler may reach. Shared state lives in the database or Redis, never here, so
/// several instances can serve the same people.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    /// Group-committing writer of the audit log.
    pub audit: crate::audit::AuditLog,
    /// Spends refresh tokens in batches, on PostgreSQL only.
    pub refresh_spender: Option<crate::oidc::refresh_spender::RefreshSpender>,
    /// Clients read in the last few seconds (the token endpoint's hot path).
    pub client_cache: Arc<crate::oidc::clients::ClientCache>,
    pub redis: Option<redis::Client>,
    pub master_key: MasterKey,
    pub hasher: KeyedHasher,
    pub keys: Arc<SigningKeyRing>,
    pub passwords: crate::authn::password::Passwords,
    /// The sign-in policy in force (configuration, or as an administrator set it).
    pub policy: Arc<crate::authn::sign_in_policy::PolicyInForce>,
    /// Where one-time codes and notices go.
    pub mail: crate::mail::MailQueue,
    /// Whether the public URL is https (secure `__Host-` cookies, HSTS).
    pub https: bool,
    /// The discovery document, serialised once; each answer shares these bytes.
    pub discovery: actix_web::web::Bytes,
    /// Outgoing HTTP (back-channel logout): short timeouts, no redirects.
    pub http: reqwest::Client,
    /// Wakes the back-channel logout deliveries.
    pub backchannel: crate::oidc::backchannel::DeliveryQueue,
    /// The time zone pages show times in (`time_zone`).
    pub time_zone: jiff::tz::TimeZone,
}

impl AppState {
    /// The client `id`: from the client cache when it was read in the last few seconds,
    /// otherwise read (a short read) and remembered. An unknown id is read again each time.
    pub async fn client(
        &self,
        id: &str,
    ) -> crate::store::StoreResult<Option<crate::store::clients::Client>> {
        if let Some(client) = self.client_cache.get(id) {
            return Ok(Some(client));
        }
        let id = id.to_string();
        let found = self
            .store
            .read(move |conn| crate::store::clients::find(conn, &id))
            .await?;
        if let Some(client) = &found {
            self.client_cache.put(client);
        }
        Ok(found)
    }

    /// Resolves the master key, opens the store (applying migrations) and the Redis client.
    pub fn prepare(settings: Settings) -> Result<Self, Error> {
        let (master_key, source) = MasterKey::resolve(
            settings.master_key.as_ref().map(|k| k.expose()),
            &settings.data_dir,
        )?;
        match &source {
            MasterKeySource::Configured => tracing::info!("master key: from configuration"),
            MasterKeySource::LoadedFrom(path) => {
                tracing::info!(path = %path.display(), "master key: loaded from the data directory")
            }
            MasterKeySource::GeneratedInto(path) => tracing::warn!(
                path = %path.display(),
                "master key: none configured, generated a new one; back it up, or set \
                 GUICHET_MASTER_KEY: without it, secrets stored so far cannot be read"
            ),
        }
        let target = settings.database_target()?;
        let max_size = settings.database.pool_size_for(&target);
        let store = Store::open(
            target,
            &PoolOptions {
                max_size,
                connect_timeout: Duration::from_secs(settings.database.connect_timeout_secs),
                sqlite_busy_timeout_ms: settings.database.sqlite_busy_timeout_ms,
            },
        )?;
        tracing::info!(backend = store.target().backend_name(), "database ready");
        let hasher = KeyedHasher::new(&master_key);
        let policy;
        let keys = {
            let mut conn = store.connection()?;
            // The account page is a client like the portals (see `accounts`).
            let mut registered = settings.clients.clone();
            registered.push(crate::accounts::client_settings(&settings.issuer()));
            let synced =
                crate::oidc::clients::sync_configured(&mut conn, &registered, &hasher, now())?;
            if synced > 0 {
                tracing::info!(clients = synced, "configured clients registered");
            }
            // What this instance starts with, for auditors: the registered clients and a hash
            // of the whole configuration as printed by `idp check-config` (secrets redacted),
            // so a change between two starts shows in the log.
            let printed = format!("{settings:#?}");
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, printed.as_bytes());
            let mut client_ids: Vec<&str> = registered.iter().map(|c| c.id.as_str()).collect();
            client_ids.sort_unstable();
            crate::store::audit::append(
                &mut conn,
                &crate::store::audit::NewAuditEvent::by(
                    "system",
                    "config.loaded",
                    None,
                    serde_json::json!({
                        "clients": client_ids,
                        "settings_sha256": crate::crypto::hex(digest.as_ref()),
                    }),
                ),
            )?;
            policy = crate::authn::sign_in_policy::PolicyInForce::load(
                &mut conn,
                crate::authn::sign_in_policy::SignInPolicy::from_settings(&settings.sign_in),
            )?;
            let created = ensure_keys(&mut conn, &master_key, now())?;
            for key in &created {
                tracing::info!(kid = %key.kid, alg = %key.alg, "signing key created");
            }
            SigningKeyRing::load(
                &mut conn,
                master_key.clone(),
                settings.key_propagation(),
                now(),
            )?
        };
        let redis = settings
            .redis_url
            .as_deref()
            .map(redis::Client::open)
            .transpose()?;
        let https = settings.public_url()?.scheme() == "https";
        let time_zone = settings.display_time_zone()?;
        crate::config::set_help_contact(&settings.help);
        let discovery = actix_web::web::Bytes::from(
            crate::oidc::service::discovery_document(&settings.issuer()).to_string(),
        );
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let passwords = crate::authn::password::Passwords::new(
            settings.sign_in.argon2_m_cost_kib,
            settings.sign_in.argon2_t_cost,
            settings.sign_in.argon2_p_cost,
            cores,
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mail = mail_queue_of(&settings, redis.as_ref())?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let audit = crate::audit::AuditLog::start(store.clone())?;
        let refresh_spender = match store.target() {
            crate::store::DatabaseTarget::Postgres(_) => Some(
                crate::oidc::refresh_spender::RefreshSpender::start(store.clone())?,
            ),
            crate::store::DatabaseTarget::Sqlite(_) => None,
        };
        Ok(Self {
            audit,
            refresh_spender,
            client_cache: Arc::default(),
            http,
            https,
            discovery,
            passwords,
            policy: Arc::new(policy),
            mail,
            settings: Arc::new(settings),
            store,
            redis,
            master_key,
            hasher,
            keys: Arc::new(keys),
            backchannel: crate::oidc::backchannel::DeliveryQueue::default(),
            time_zone,
        })
    }
}

/// Where this deployment's mail goes: the Redis stream when Redis and a queue key are
/// configured, otherwise the in-process outbox.
pub fn mail_queue_of(
    settings: &Settings,
    redis: Option<&redis::Client>,
) -> Result<crate::mail::MailQueue, Error> {
    Ok(match (redis, &settings.mail.queue_key) {
        (Some(client), Some(key)) => crate::mail::MailQueue::redis(
            client.clone(),
            mail_queue::QueueKey::from_base64(key.expose())
                .map_err(|e| std::io::Error::other(e.to_string()))?,
            settings.mail.stream_max_len,
        ),
        _ => crate::mail::MailQueue::outbox(&settings.data_dir, settings.dev_mode)
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    })
}

/// A bound server, not yet awaited: lets tests and the demo learn the port before serving.
pub struct Running {
    pub server: Server,
    pub addr: SocketAddr,
}

/// Binds the HTTP server for `state` on the configured address and starts the background
/// refresh of signing keys. Must be called within a tokio runtime.
pub fn bind(state: AppState) -> Result<Running, Error> {
    let settings = state.settings.clone();
    tokio::spawn(refresh_keys(
        state.store.clone(),
        state.keys.clone(),
        state.policy.clone(),
        Duration::from_secs(settings.keys.refresh_interval_secs),
    ));
    tokio::spawn(purge_expired(
        state.store.clone(),
        Duration::from_secs(settings.database.purge_interval_secs),
        chrono::Duration::seconds(i64::try_from(settings.tokens.refresh_grace_secs).unwrap_or(0)),
    ));
    tokio::spawn(crate::oidc::backchannel::run(state.clone()));
    if settings.audit.stream_to_log {
        tokio::spawn(crate::audit::stream::to_log(
            state.store.clone(),
            crate::audit::stream::POLL_INTERVAL,
        ));
    }
    if settings.audit.checkpoint_interval_secs > 0 {
        tokio::spawn(sign_checkpoints(
            state.store.clone(),
            state.keys.clone(),
            settings.issuer(),
            Duration::from_secs(settings.audit.checkpoint_interval_secs),
        ));
    }
    let addr = settings.bind_addr()?;
    let https = settings.public_url()?.scheme() == "https";
    let max_body = settings.http.max_body_bytes;
    let data = web::Data::new(state);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(
                web::FormConfig::default()
                    .limit(max_body)
                    .error_handler(crate::web::unreadable::form),
            )
            .app_data(
                web::JsonConfig::default()
                    .limit(max_body)
                    .error_handler(crate::web::unreadable::json),
            )
            .app_data(web::QueryConfig::default().error_handler(crate::web::unreadable::query))
            .wrap(security_headers(https))
            .wrap(from_fn(request_id))
            .configure(crate::web::routes)
            .default_service(web::to(crate::web::unreadable::not_found))
    })
    .shutdown_timeout(settings.http.shutdown_timeout_secs);
    if settings.http.workers > 0 {
        server = server.workers(settings.http.workers);
    }
    let server = server.bind(addr)?;
    let addr = server.addrs().first().copied().unwrap_or(addr);
    Ok(Running {
        server: server.run(),
        addr,
    })
}

/// Signs a checkpoint of the audit chain every `interval`. Every instance may: a head that
/// already has one is left alone.
async fn sign_checkpoints(
    store: Store,
    keys: Arc<SigningKeyRing>,
    issuer: String,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let (keys, issuer) = (keys.clone(), issuer.clone());
        let signed = store
            .run(move |conn| {
                crate::audit::chain::checkpoint(conn, &keys, &issuer)
                    .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))
            })
            .await;
        match signed {
            Ok(Some(c)) => tracing::info!(row = c.chain_index, "audit checkpoint signed"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "audit checkpoint failed"),
        }
    }
}

/// Re-reads the signing keys every `interval`, so a rotation made by the CLI or another
/// instance is used here without restart.
async fn refresh_keys(
    store: Store,
    keys: Arc<SigningKeyRing>,
    policy: Arc<crate::authn::sign_in_policy::PolicyInForce>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let ring = keys.clone();
        let in_force = policy.clone();
        // The sign-in policy an administrator changed on another instance comes along.
        if let Err(e) = store.run(move |conn| in_force.reload(conn)).await {
            tracing::warn!(error = %e, "sign-in policy: reload failed, keeping the current one");
        }
        match store.run(move |conn| Ok(ring.reload(conn, now()))).await {
            Ok(Ok(())) => tracing::debug!("signing keys reloaded"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "signing keys: reload failed, keeping the current ones")
            }
            Err(e) => {
                tracing::warn!(error = %e, "signing keys: reload failed, keeping the current ones")
            }
        }
    }
}

/// Deletes what has expired: login transactions, one-time codes, authorization codes (kept an
/// hour past expiry so a late replay is still recognised as one), remembered revocations and
/// used client assertions, and refresh tokens a day past expiry; drops the sealed retry answers
/// of refresh tokens once the grace window is over. Several instances may run it at once: the
/// deletes are idempotent.
async fn purge_expired(store: Store, interval: Duration, refresh_grace: chrono::Duration) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        let purged = store
            .run(move |conn| {
                let at = now();
                Ok([
                    crate::store::login_transactions::purge_expired(conn, at)?,
                    // Kept an hour past expiry: the hourly resend limit counts them.
                    crate::store::one_time_codes::purge_expired(
                        conn,
                        at - chrono::Duration::hours(1),
                    )?,
                    crate::store::authorization_codes::purge_expired(
                        conn,
                        at - chrono::Duration::hours(1),
                    )?,
                    crate::store::revoked_access_tokens::purge_expired(conn, at)?,
                    crate::store::client_assertions::purge_expired(conn, at)?,
                    crate::store::refresh_tokens::purge(
                        conn,
                        at - refresh_grace,
                        at - chrono::Duration::days(1),
                    )?,
                    // Failure windows last at most a day; locks are kept while they hold.
                    crate::store::attempt_counters::purge_idle(
                        conn,
                        at - chrono::Duration::days(1),
                        at,
                    )?,
                    crate::store::email_changes::purge_expired(conn, at)?,
                ])
            })
            .await;
        match purged {
            Ok(counts) if counts.iter().any(|n| *n > 0) => tracing::info!(
                login_transactions = counts[0],
                one_time_codes = counts[1],
                authorization_codes = counts[2],
                revoked_access_tokens = counts[3],
                client_assertions = counts[4],
                refresh_tokens = counts[5],
                attempt_counters = counts[6],
                email_changes = counts[7],
                "expired rows purged"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging expired rows failed; will retry"),
        }
    }
}

/// Prepares and serves until SIGTERM or SIGINT, then lets requests in flight finish. What is
/// left to stop once the runtime is gone comes back as [`Stopped`].
pub async fn serve(settings: Settings) -> Result<Stopped, Error> {
    let public_url = settings.public_url.clone();
    let state = AppState::prepare(settings)?;
    let audit_writer = state.audit.writer_thread();
    let running = bind(state)?;
    tracing::info!(addr = %running.addr, public_url = %public_url, "Guichet is listening");
    running.server.await?;
    tracing::info!("stopped");
    Ok(Stopped { audit_writer })
}

/// A server that has stopped serving. Its background tasks and their handles on the store end
/// with the async runtime; [`Stopped::finish`], called after the runtime is dropped, then waits
/// for the audit writer, the last holder of a database connection. Once every connection has
/// closed, SQLite folds its write-ahead log back into the database file.
#[derive(Debug)]
pub struct Stopped {
    audit_writer: Option<std::thread::JoinHandle<()>>,
}

impl Stopped {
    /// Waits up to `timeout` for the audit writer to commit what it holds and close its
    /// connection; past it, says so and lets the process exit (SQLite replays the log on the
    /// next start, and nothing committed is lost).
    pub fn finish(self, timeout: std::time::Duration) {
        let Some(writer) = self.audit_writer else {
            return;
        };
        let deadline = std::time::Instant::now() + timeout;
        while !writer.is_finished() {
            if std::time::Instant::now() >= deadline {
                tracing::warn!("the audit writer did not stop in time; exiting without it");
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // It has ended; a panic in it was reported when it happened.
        let _ = writer.join();
    }
}
