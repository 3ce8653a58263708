//! Typed configuration, loaded once at start.
//!
//! Layers, later ones winning: built-in defaults, then one TOML file (`GUICHET_CONFIG`, or
//! `config/idp.toml` when it exists), then `GUICHET_*` environment variables. Nested keys use a
//! double underscore in the environment: `[database] pool_size` is `GUICHET_DATABASE__POOL_SIZE`.
//! Unknown keys and insecure values are refused with an error that names the key.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::store::DatabaseTarget;

/// Environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "GUICHET_CONFIG";
/// Configuration file read when `GUICHET_CONFIG` is not set, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "config/idp.toml";
const ENV_PREFIX: &str = "GUICHET_";

/// Every setting of the identity provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address and port the HTTP server listens on.
    pub bind: String,
    /// Public base URL; also the OpenID issuer. https unless the host is loopback.
    pub public_url: String,
    /// `sqlite://PATH` (embedded default) or `postgres://...` (scale-out).
    pub database_url: String,
    /// Redis, for the mail queue and shared rate limits. Optional on the embedded default.
    pub redis_url: Option<String>,
    /// 32 random bytes, base64: encrypts secrets at rest. Generated into `data_dir` when unset
    /// on SQLite; required with PostgreSQL, where every instance must share it.
    pub master_key: Option<SecretString>,
    /// Directory for the SQLite file and the generated master key.
    pub data_dir: PathBuf,
    /// Development conveniences (dev outbox page, relaxed checks). Never in production.
    pub dev_mode: bool,
    /// `text` for people, `json` for log collectors.
    pub log_format: LogFormat,
    /// A `tracing` filter: `info`, `debug`, `idp=debug,actix_web=info`, ...
    pub log_level: String,
    /// The IANA time zone in which pages show times to people (their sign-ins and sessions,
    /// the helpdesk's view of an account). Stored times stay UTC.
    pub time_zone: String,
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub keys: KeySettings,
    pub tokens: TokenSettings,
    pub sign_in: SignInSettings,
    pub mail: MailSettings,
    pub audit: AuditSettings,
    pub help: HelpSettings,
    /// Portals registered with this Guichet (OAuth clients), synchronised to the database at
    /// every start.
    pub clients: Vec<ClientSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            public_url: "http://localhost:8080".into(),
            database_url: "sqlite://data/guichet.db".into(),
            redis_url: None,
            master_key: None,
            data_dir: PathBuf::from("data"),
            dev_mode: false,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            time_zone: "America/Toronto".into(),
            database: DatabaseSettings::default(),
            http: HttpSettings::default(),
            keys: KeySettings::default(),
            tokens: TokenSettings::default(),
            sign_in: SignInSettings::default(),
            help: HelpSettings::default(),
            mail: MailSettings::default(),
            audit: AuditSettings::default(),
            clients: Vec::new(),
        }
    }
}

/// Connection pool settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// Maximum connections in the pool; by default 8 on SQLite and 16 on PostgreSQL
    /// ([`Self::pool_size_for`]).
    pub pool_size: Option<u32>,
    /// How long a request waits for a connection before failing, in seconds.
    pub connect_timeout_secs: u64,
    /// How long SQLite waits on a locked database before giving up, in milliseconds.
    pub sqlite_busy_timeout_ms: u32,
    /// How often expired rows (login transactions, codes, revocations) are deleted, in seconds.
    pub purge_interval_secs: u64,
}

impl DatabaseSettings {
    /// The pool's size on `target`: the configured one, or the backend's default. A
    /// PostgreSQL connection is held while its commit waits for the disk, so more of them
    /// keep the cores busy; SQLite commits one at a time, and each connection keeps a page
    /// cache of its own.
    pub fn pool_size_for(&self, target: &DatabaseTarget) -> u32 {
        self.pool_size.unwrap_or(match target {
            DatabaseTarget::Sqlite(_) => 8,
            DatabaseTarget::Postgres(_) => 16,
        })
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            pool_size: None,
            connect_timeout_secs: 5,
            sqlite_busy_timeout_ms: 5_000,
            purge_interval_secs: 600,
        }
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Seconds granted to requests in flight when the server is asked to stop.
    pub shutdown_timeout_secs: u64,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Addresses of the load balancers or reverse proxies in front of this instance. A request
    /// from one of them is attributed to the address it reports in `X-Forwarded-For` (the
    /// rightmost one that is not itself a trusted proxy); from anyone else, the header is
    /// ignored. Empty by default: the peer address is used.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            workers: 0,
            shutdown_timeout_secs: 30,
            max_body_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Signing key handling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// How often each instance re-reads the signing keys (picks up rotations), in seconds.
    pub refresh_interval_secs: u64,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            refresh_interval_secs: 30,
        }
    }
}

/// Token lifetimes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    /// Lifetime of access tokens, in seconds.
    pub access_token_ttl_secs: u64,
    /// Lifetime of ID tokens, in seconds.
    pub id_token_ttl_secs: u64,
    /// Lifetime of refresh tokens, in seconds. Each use rotates the token; logging out revokes
    /// the session's tokens.
    pub refresh_token_ttl_secs: u64,
    /// Seconds after a refresh during which a client retrying the same refresh token (its
    /// answer was lost) gets the same new pair instead of having its session revoked. 0
    /// disables the window: any reuse revokes the family.
    pub refresh_grace_secs: u64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 600,
            id_token_ttl_secs: 600,
            refresh_token_ttl_secs: 8 * 3600,
            refresh_grace_secs: 0,
        }
    }
}

/// The audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Seconds between signed checkpoints of the audit chain (0: none, only `idp audit
    /// checkpoint`).
    pub checkpoint_interval_secs: u64,
    /// Also write every committed audit row to the log, as an `info` event of target
    /// `audit` (one JSON line each with `log_format = "json"`), for a SIEM. Off by default;
    /// each instance streams every row of the database from its start.
    pub stream_to_log: bool,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            checkpoint_interval_secs: 3600,
            stream_to_log: false,
        }
    }
}

/// How people reach the helpdesk that every "contact us" of the pages and messages means: shown
/// at the foot of every page and the end of every message. Each is optional; with none, the
/// foot says only "Need help? Contact us." and messages say nothing more.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HelpSettings {
    /// A telephone number as people dial it (`514 555-0100`, `+1 514 555-0100 poste 2`).
    pub phone: Option<String>,
    /// An email address.
    pub email: Option<String>,
    /// A page with the helpdesk's hours and other ways to reach it (https).
    pub url: Option<String>,
}

/// The `[help]` of the configuration `idp serve` started with: the foot of every page and
/// every message sent say it, and neither has the settings at hand (a page's layout has no
/// state of its own; messages are composed by the mail worker from what the job carries).
static HELP: std::sync::OnceLock<HelpSettings> = std::sync::OnceLock::new();

/// Keeps `help` for [`help_contact`]; the first call wins.
pub fn set_help_contact(help: &HelpSettings) {
    let _ = HELP.set(help.clone());
}

/// The helpdesk's contact details, when any is configured.
pub fn help_contact() -> Option<&'static HelpSettings> {
    HELP.get()
        .filter(|h| h.phone.is_some() || h.email.is_some() || h.url.is_some())
}

impl HelpSettings {
    /// Checks each value that is set; `Err` holds the key and why.
    fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(phone) = &self.phone {
            let digits = phone.chars().filter(char::is_ascii_digit).count();
            if phone.chars().count() > 40 || phone.chars().any(char::is_control) || digits < 3 {
                return Err((
                    "help.phone",
                    "a telephone number of at most 40 characters, such as `514 555-0100`".into(),
                ));
            }
        }
        if let Some(email) = &self.email {
            if !crate::authn::plausible_email(email) {
                return Err(("help.email", format!("`{email}` is not an email address")));
            }
        }
        if let Some(url) = &self.url {
            check_client_uri(url).map_err(|m| ("help.url", format!("`{url}`: {m}")))?;
        }
        Ok(())
    }
}

/// Where mail goes. With `redis_url` and `queue_key` set, jobs are sealed and appended to the
/// Redis stream that `mail-worker` processes; otherwise they are delivered in-process to the
/// development outbox in `data_dir/outbox`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// 32 random bytes, base64, shared with the mail workers (`GUICHET_WORKER_QUEUE_KEY`).
    pub queue_key: Option<SecretString>,
    /// Approximate number of jobs the stream keeps (older entries are trimmed).
    pub stream_max_len: usize,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            queue_key: None,
            stream_max_len: 100_000,
        }
    }
}

/// The sign-in journey: password hashing, second factors, lockout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignInSettings {
    /// Issuer shown in authenticator apps next to the account (the Order uses `CPAQCPROD`).
    pub totp_issuer: String,
    /// argon2id memory cost in KiB (OWASP: 19456).
    pub argon2_m_cost_kib: u32,
    /// argon2id passes (OWASP: 2).
    pub argon2_t_cost: u32,
    /// argon2id lanes (OWASP: 1).
    pub argon2_p_cost: u32,
    /// Consecutive password failures, or second-factor failures, that lock an account.
    pub max_failures: u32,
    /// Failures older than this many seconds no longer count.
    pub failure_window_secs: u64,
    /// First lock period in seconds; each further lock doubles it.
    pub lock_secs: u64,
    /// Longest lock period in seconds.
    pub max_lock_secs: u64,
    /// Failures from one IP address, over all accounts, before that address must wait
    /// (`lock_secs`, same window).
    pub ip_max_failures: u32,
    /// Lifetime of an emailed code, in seconds.
    pub email_code_ttl_secs: u64,
    /// Wrong tries before an emailed code dies.
    pub email_code_max_attempts: u32,
    /// Seconds between two codes sent to the same person.
    pub resend_interval_secs: u64,
    /// Codes sent to the same person per hour.
    pub resend_max_per_hour: u32,
}

impl Default for SignInSettings {
    fn default() -> Self {
        Self {
            totp_issuer: "Guichet".into(),
            argon2_m_cost_kib: crate::authn::password::OWASP_M_COST_KIB,
            argon2_t_cost: crate::authn::password::OWASP_T_COST,
            argon2_p_cost: crate::authn::password::OWASP_P_COST,
            max_failures: 5,
            failure_window_secs: 900,
            lock_secs: 900,
            max_lock_secs: 86_400,
            ip_max_failures: 50,
            email_code_ttl_secs: 600,
            email_code_max_attempts: 5,
            resend_interval_secs: 30,
            resend_max_per_hour: 5,
        }
    }
}

impl SignInSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let issuer = self.totp_issuer.trim();
        if issuer.is_empty() || issuer.len() > 64 || issuer.contains(':') {
            return Err(ConfigError::invalid(
                "sign_in.totp_issuer",
                "must be 1 to 64 characters without `:`",
            ));
        }
        if let Err(e) = argon2::Params::new(
            self.argon2_m_cost_kib,
            self.argon2_t_cost,
            self.argon2_p_cost,
            None,
        ) {
            return Err(ConfigError::invalid(
                "sign_in.argon2_m_cost_kib",
                format!("argon2 parameters m/t/p are not valid together: {e}"),
            ));
        }
        let ranges: [(&str, u64, u64, u64); 10] = [
            ("sign_in.max_failures", self.max_failures.into(), 1, 100),
            (
                "sign_in.failure_window_secs",
                self.failure_window_secs,
                60,
                86_400,
            ),
            ("sign_in.lock_secs", self.lock_secs, 1, 86_400),
            (
                "sign_in.max_lock_secs",
                self.max_lock_secs,
                self.lock_secs,
                30 * 86_400,
            ),
            (
                "sign_in.ip_max_failures",
                self.ip_max_failures.into(),
                1,
                100_000,
            ),
            (
                "sign_in.email_code_ttl_secs",
                self.email_code_ttl_secs,
                60,
                3_600,
            ),
            (
                "sign_in.email_code_max_attempts",
                self.email_code_max_attempts.into(),
                1,
                20,
            ),
            (
                "sign_in.resend_interval_secs",
                self.resend_interval_secs,
                0,
                3_600,
            ),
            (
                "sign_in.resend_max_per_hour",
                self.resend_max_per_hour.into(),
                1,
                100,
            ),
            ("sign_in.argon2_t_cost", self.argon2_t_cost.into(), 1, 100),
        ];
        for (key, value, low, high) in ranges {
            if !(low..=high).contains(&value) {
                return Err(ConfigError::invalid(
                    key,
                    format!("must be between {low} and {high}"),
                ));
            }
        }
        Ok(())
    }
}

impl Settings {
    /// The OpenID issuer: the public URL without a trailing slash.
    pub fn issuer(&self) -> String {
        self.public_url.trim_end_matches('/').to_string()
    }

    /// How long a new signing key is published before it signs, and how long after retirement
    /// an old one may still sign somewhere: two refresh intervals.
    pub fn key_propagation(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.keys.refresh_interval_secs * 2).unwrap_or(120))
    }

    /// How long a retired key stays in the JWKS after it stops signing: until every token it
    /// signed has expired, with a propagation margin for instances still reloading.
    pub fn retired_key_publication(&self) -> chrono::Duration {
        let longest = self
            .tokens
            .access_token_ttl_secs
            .max(self.tokens.id_token_ttl_secs);
        chrono::Duration::seconds(i64::try_from(longest).unwrap_or(i64::MAX / 4))
            + self.key_propagation()
    }
}

/// Whether a client can keep a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// A server-side application holding a secret.
    Confidential,
    /// A browser or native application: no secret, PKCE required.
    Public,
}

impl ClientKind {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }
}

/// Grant types a client may use.
pub const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

/// One registered portal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// `client_id`: letters, digits, `-`, `_`, `.`; at most 64 characters.
    pub id: String,
    /// Name shown to people.
    pub name: String,
    #[serde(default = "ClientSettings::default_kind")]
    pub kind: ClientKind,
    /// Secret of a confidential client: at least 32 characters (`idp gen-client-secret` makes
    /// one). Stored only as a keyed hash.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// Exact redirect URIs (https, or http on loopback).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// Scopes the client may ask for.
    #[serde(default = "ClientSettings::default_scopes")]
    pub scopes: Vec<String>,
    /// Grant types the client may use.
    #[serde(default = "ClientSettings::default_grants")]
    pub grants: Vec<String>,
    /// Signing algorithm of its tokens: RS256, ES256 or EdDSA.
    #[serde(default = "ClientSettings::default_alg")]
    pub id_token_alg: String,
    /// First-party portals skip the consent screen.
    #[serde(default)]
    pub first_party: bool,
    /// The first factor: `password`, the only one this version has. A federated sign-in
    /// service (`upstream:NAME`) is refused at start rather than silently replaced.
    #[serde(default = "ClientSettings::default_first_factor")]
    pub first_factor: String,
    /// Level an SSO session must have reached for this portal.
    #[serde(default = "ClientSettings::default_level")]
    pub required_level: String,
    /// Public keys (a JWK Set) of a confidential client that authenticates with
    /// `private_key_jwt` instead of, or as well as, a secret.
    #[serde(default)]
    pub jwks: Option<jsonwebtoken::jwk::JwkSet>,
}

impl Settings {
    /// Ids of the clients this configuration declares, and of the account page: they are
    /// written from here at every start, so the console and the command line leave them be.
    pub fn configured_client_ids(&self) -> Vec<String> {
        self.clients
            .iter()
            .map(|c| c.id.clone())
            .chain(std::iter::once(
                crate::accounts::ACCOUNT_CLIENT_ID.to_string(),
            ))
            .collect()
    }
}

impl ClientSettings {
    /// A client with this id, name and kind, and every other field at its default.
    pub fn new(id: &str, name: &str, kind: ClientKind) -> Self {
        Self {
            id: id.to_string(),
            name: name.to_string(),
            kind,
            secret: None,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
            scopes: Self::default_scopes(),
            grants: Self::default_grants(),
            id_token_alg: Self::default_alg(),
            first_party: false,
            first_factor: Self::default_first_factor(),
            required_level: Self::default_level(),
            jwks: None,
        }
    }

    fn default_kind() -> ClientKind {
        ClientKind::Confidential
    }
    fn default_scopes() -> Vec<String> {
        ["openid", "profile", "email"].map(String::from).to_vec()
    }
    fn default_grants() -> Vec<String> {
        ["authorization_code", "refresh_token"]
            .map(String::from)
            .to_vec()
    }
    fn default_alg() -> String {
        "RS256".into()
    }
    fn default_first_factor() -> String {
        "password".into()
    }
    fn default_level() -> String {
        "mfa".into()
    }

    /// Checks one client; `Err` holds the field and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let valid_id = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid_id {
            return Err(("id", "use 1 to 64 letters, digits, `-`, `_` or `.`".into()));
        }
        if self.name.trim().is_empty() {
            return Err(("name", "must not be empty".into()));
        }
        if let Some(set) = &self.jwks {
            if self.kind == ClientKind::Public {
                return Err((
                    "jwks",
                    "a public client cannot authenticate with keys".into(),
                ));
            }
            if set.keys.is_empty() {
                return Err(("jwks", "list at least one public key".into()));
            }
            for key in &set.keys {
                if matches!(
                    key.algorithm,
                    jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
                ) || jsonwebtoken::DecodingKey::from_jwk(key).is_err()
                {
                    return Err((
                        "jwks",
                        "each key must be a public RSA, EC P-256 or Ed25519 key".into(),
                    ));
                }
            }
        }
        match (self.kind, &self.secret) {
            (ClientKind::Confidential, None) if self.jwks.is_some() => {}
            (ClientKind::Confidential, None) => {
                return Err((
                    "secret",
                    "a confidential client needs a secret or public keys (jwks)".into(),
                ))
            }
            (ClientKind::Confidential, Some(secret))
                if !secret.expose().bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
                }) =>
            {
                return Err((
                    "secret",
                    "use only letters, digits, `-`, `.`, `_` and `~`, so that clients need not \
                     encode it (generate one with `idp gen-client-secret`)"
                        .into(),
                ))
            }
            (ClientKind::Confidential, Some(secret)) if secret.expose().chars().count() < 32 => {
                return Err((
                    "secret",
                    "must be at least 32 characters (generate one with `idp gen-client-secret`)"
                        .into(),
                ))
            }
            (ClientKind::Public, Some(_)) => {
                return Err(("secret", "a public client cannot keep a secret".into()))
            }
            _ => {}
        }
        for uri in self
            .redirect_uris
            .iter()
            .chain(&self.post_logout_redirect_uris)
        {
            check_client_uri(uri).map_err(|m| ("redirect_uris", format!("`{uri}`: {m}")))?;
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            check_client_uri(uri).map_err(|m| ("backchannel_logout_uri", m))?;
        }
        for grant in &self.grants {
            if !GRANT_TYPES.contains(&grant.as_str()) {
                return Err(("grants", format!("unknown grant `{grant}`")));
            }
        }
        if self.grants.iter().any(|g| g == "authorization_code") && self.redirect_uris.is_empty() {
            return Err((
                "redirect_uris",
                "authorization_code needs at least one".into(),
            ));
        }
        if self.kind == ClientKind::Public && self.grants.iter().any(|g| g == "client_credentials")
        {
            return Err((
                "grants",
                "a public client cannot use client_credentials".into(),
            ));
        }
        if crate::oidc::keys::SigningAlg::parse(&self.id_token_alg).is_none() {
            return Err(("id_token_alg", "use RS256, ES256 or EdDSA".into()));
        }
        if self.first_factor != "password" {
            return Err((
                "first_factor",
                if self.first_factor.starts_with("upstream:") {
                    "a federated sign-in service as first factor is not supported by this \
                     version; use password"
                        .into()
                } else {
                    "use password".into()
                },
            ));
        }
        // An unknown level would rank lowest and be satisfied by any session.
        if ![crate::oidc::flow::ACR_MFA, crate::oidc::flow::ACR_PASSWORD]
            .contains(&self.required_level.as_str())
        {
            return Err((
                "required_level",
                "use mfa (password and a second factor) or pwd".into(),
            ));
        }
        if self
            .scopes
            .iter()
            .any(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return Err(("scopes", "each scope is one word".into()));
        }
        Ok(())
    }
}

fn check_client_uri(uri: &str) -> Result<(), String> {
    let url = Url::parse(uri).map_err(|e| format!("not an absolute URL: {e}"))?;
    if url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        _ => Err("must be https (http only on loopback)".into()),
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A string that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be read or did not match the schema (unknown key,
    /// wrong type). The message names the key and where it came from.
    #[error("configuration error: {0}")]
    Source(String),
    /// A value parsed but is unusable or insecure.
    #[error("configuration key `{key}` (environment {env}): {message}")]
    Invalid {
        key: &'static str,
        env: String,
        message: String,
    },
}

impl ConfigError {
    fn invalid(key: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            key,
            env: env_name(key),
            message: message.into(),
        }
    }
}

/// The environment variable overriding a key: `database.pool_size` -> `GUICHET_DATABASE__POOL_SIZE`.
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
}

impl Settings {
    /// Loads defaults, then the configuration file, then `GUICHET_*` variables, and validates.
    ///
    /// `file` is the path given on the command line or in `GUICHET_CONFIG`; when `None`,
    /// `config/idp.toml` is read if it exists.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::Source(format!(
                        "configuration file {} (from --config or {CONFIG_ENV}) does not exist",
                        path.display()
                    )));
                }
                figment = figment.merge(Toml::file(path));
            }
            None => {
                if Path::new(DEFAULT_CONFIG_FILE).is_file() {
                    figment = figment.merge(Toml::file(DEFAULT_CONFIG_FILE));
                }
            }
        }
        // `GUICHET_CONFIG` names the file and is not itself a setting.
        let env = Env::prefixed(ENV_PREFIX).split("__").ignore(&["config"]);
        let settings: Settings = figment
            .merge(env)
            .extract()
            .map_err(|e| ConfigError::Source(describe_figment_error(e)))?;
        settings.validate()?;
        Ok(settings)
    }

    /// The time zone of `time_zone`.
    pub fn display_time_zone(&self) -> Result<jiff::tz::TimeZone, ConfigError> {
        jiff::tz::TimeZone::get(&self.time_zone).map_err(|_| {
            ConfigError::invalid(
                "time_zone",
                format!(
                    "unknown time zone `{}`; use an IANA name such as America/Toronto or UTC",
                    self.time_zone
                ),
            )
        })
    }

    /// Checks values that parse but are unusable or insecure.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        self.help
            .check()
            .map_err(|(key, message)| ConfigError::invalid(key, message))?;
        self.public_url()?;
        self.display_time_zone()?;
        let target = self.database_target()?;
        if let Some(redis) = &self.redis_url {
            let url = Url::parse(redis)
                .map_err(|e| ConfigError::invalid("redis_url", format!("not a URL: {e}")))?;
            if !matches!(url.scheme(), "redis" | "rediss") {
                return Err(ConfigError::invalid(
                    "redis_url",
                    format!(
                        "unsupported scheme `{}`; use redis:// or rediss://",
                        url.scheme()
                    ),
                ));
            }
        }
        match &self.master_key {
            Some(key) => {
                crate::crypto::MasterKey::from_base64(key.expose())
                    .map_err(|e| ConfigError::invalid("master_key", e.to_string()))?;
            }
            None if matches!(target, DatabaseTarget::Postgres(_)) => {
                return Err(ConfigError::invalid(
                    "master_key",
                    "required with PostgreSQL: every instance must share the same key \
                     (generate one with `idp gen-master-key`)",
                ));
            }
            None => {}
        }
        if !mail_worker::settings::log_filter_reads_as_meant(&self.log_level) {
            return Err(ConfigError::invalid(
                "log_level",
                format!(
                    "`{}` is not a log filter such as `info` or `idp=debug,info` \
                     (levels: error, warn, info, debug, trace, off)",
                    self.log_level
                ),
            ));
        }
        self.sign_in.validate()?;
        if let Some(key) = &self.mail.queue_key {
            mail_queue::QueueKey::from_base64(key.expose())
                .map_err(|e| ConfigError::invalid("mail.queue_key", e.to_string()))?;
            if self.redis_url.is_none() {
                return Err(ConfigError::invalid(
                    "mail.queue_key",
                    "set redis_url too: the queue lives in Redis",
                ));
            }
        }
        if !(100..=10_000_000).contains(&self.mail.stream_max_len) {
            return Err(ConfigError::invalid(
                "mail.stream_max_len",
                "must be between 100 and 10000000",
            ));
        }
        if self
            .database
            .pool_size
            .is_some_and(|size| !(1..=256).contains(&size))
        {
            return Err(ConfigError::invalid(
                "database.pool_size",
                "must be between 1 and 256",
            ));
        }
        if !(1..=86_400).contains(&self.database.purge_interval_secs) {
            return Err(ConfigError::invalid(
                "database.purge_interval_secs",
                "must be between 1 and 86400",
            ));
        }
        if self.database.connect_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "database.connect_timeout_secs",
                "must be at least 1",
            ));
        }
        if !(1..=60).contains(&self.keys.refresh_interval_secs) {
            return Err(ConfigError::invalid(
                "keys.refresh_interval_secs",
                "must be between 1 and 60 (rotations must reach every instance within a minute)",
            ));
        }
        for (key, value) in [
            (
                "tokens.access_token_ttl_secs",
                self.tokens.access_token_ttl_secs,
            ),
            ("tokens.id_token_ttl_secs", self.tokens.id_token_ttl_secs),
        ] {
            if !(30..=86_400).contains(&value) {
                return Err(ConfigError::invalid(
                    key,
                    "must be between 30 and 86400 seconds",
                ));
            }
        }
        if self.tokens.refresh_grace_secs > 300 {
            return Err(ConfigError::invalid(
                "tokens.refresh_grace_secs",
                "must be between 0 and 300 seconds",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (index, client) in self.clients.iter().enumerate() {
            if let Err((field, message)) = client.check() {
                return Err(ConfigError::Invalid {
                    key: "clients",
                    env: env_name("clients"),
                    message: format!(
                        "client #{} (`{}`), `{field}`: {message}",
                        index + 1,
                        client.id
                    ),
                });
            }
            if client.id == crate::accounts::ACCOUNT_CLIENT_ID {
                return Err(ConfigError::invalid(
                    "clients",
                    format!("client id `{}` is reserved for the account page", client.id),
                ));
            }
            if !seen.insert(client.id.as_str()) {
                return Err(ConfigError::invalid(
                    "clients",
                    format!("client id `{}` is declared twice", client.id),
                ));
            }
        }
        if self.http.workers > 1024 {
            return Err(ConfigError::invalid("http.workers", "must be at most 1024"));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.http.max_body_bytes) {
            return Err(ConfigError::invalid(
                "http.max_body_bytes",
                "must be between 1024 and 16777216",
            ));
        }
        Ok(())
    }

    /// The listen address.
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.bind.parse().map_err(|_| {
            ConfigError::invalid(
                "bind",
                format!(
                    "`{}` is not an address:port such as 127.0.0.1:8080",
                    self.bind
                ),
            )
        })
    }

    /// The public URL, checked: http(s), no query or fragment, https unless loopback.
    pub fn public_url(&self) -> Result<Url, ConfigError> {
        let url = Url::parse(&self.public_url)
            .map_err(|e| ConfigError::invalid("public_url", format!("not a URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(ConfigError::invalid(
                    "public_url",
                    "plain http is allowed only for loopback hosts (localhost, 127.0.0.1, [::1]); \
                     use https",
                ))
            }
            other => {
                return Err(ConfigError::invalid(
                    "public_url",
                    format!("unsupported scheme `{other}`; use https"),
                ))
            }
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError::invalid(
                "public_url",
                "must not contain a query or fragment (it is the OpenID issuer)",
            ));
        }
        if url.host_str().is_none() {
            return Err(ConfigError::invalid("public_url", "must name a host"));
        }
        Ok(url)
    }

    /// Which database backend to use, from the URL scheme.
    pub fn database_target(&self) -> Result<DatabaseTarget, ConfigError> {
        DatabaseTarget::parse(&self.database_url)
            .map_err(|message| ConfigError::invalid("database_url", message))
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Figment's message, with the environment variable spelled out when the value came from one.
fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            // Figment prefixes keys with its profile name, which this configuration does not use.
            let mut text = e.to_string().replace("key \"default.", "key \"");
            if !key.is_empty() && !text.contains(&key) {
                text = format!("{text} (key `{key}`)");
            }
            text
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
// figment::Jail's closures return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load_in(jail: &Jail, file: Option<&str>) -> Result<Settings, ConfigError> {
        let _ = jail;
        Settings::load(file.map(Path::new))
    }

    #[test]
    fn defaults_are_valid_and_embedded() {
        let s = Settings::default();
        s.validate().expect("defaults validate");
        assert!(matches!(
            s.database_target().expect("target"),
            DatabaseTarget::Sqlite(_)
        ));
        assert_eq!(s.bind_addr().expect("bind").port(), 8080);
    }

    #[test]
    fn a_log_level_that_would_silence_the_logs_is_refused() {
        let s = Settings {
            log_level: "warning".into(),
            ..Settings::default()
        };
        let err = s
            .validate()
            .expect_err("warning is not a level")
            .to_string();
        assert!(
            err.contains("log_level") && err.contains("warn, info"),
            "{err}"
        );
    }

    #[test]
    fn the_pool_size_defaults_by_backend_and_a_configured_one_wins() {
        let sqlite = DatabaseTarget::parse("sqlite://data/guichet.db").expect("sqlite");
        let postgres = DatabaseTarget::parse("postgres://db.example.org/guichet").expect("pg");
        let mut database = DatabaseSettings::default();
        assert_eq!(database.pool_size_for(&sqlite), 8);
        assert_eq!(database.pool_size_for(&postgres), 16);
        database.pool_size = Some(3);
        assert_eq!(database.pool_size_for(&sqlite), 3);
        assert_eq!(database.pool_size_for(&postgres), 3);
    }

    #[test]
    fn file_then_env_override() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "idp.toml",
                "bind = \"127.0.0.1:9000\"\n[database]\npool_size = 3\n",
            )?;
            jail.set_env("GUICHET_BIND", "127.0.0.1:9100");
            jail.set_env("GUICHET_DATABASE__CONNECT_TIMEOUT_SECS", "9");
            let s = load_in(jail, Some("idp.toml")).expect("loads");
            assert_eq!(s.bind, "127.0.0.1:9100");
            assert_eq!(s.database.pool_size, Some(3));
            assert_eq!(s.database.connect_timeout_secs, 9);
            Ok(())
        });
    }

    #[test]
    fn misspelled_key_in_file_is_named() {
        Jail::expect_with(|jail| {
            jail.create_file("idp.toml", "bnid = \"127.0.0.1:9000\"\n")?;
            let err = load_in(jail, Some("idp.toml")).expect_err("must fail");
            assert!(err.to_string().contains("bnid"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn misspelled_nested_key_is_named() {
        Jail::expect_with(|jail| {
            jail.create_file("idp.toml", "[database]\npool_sise = 3\n")?;
            let err = load_in(jail, Some("idp.toml")).expect_err("must fail");
            assert!(err.to_string().contains("pool_sise"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unknown_env_variable_is_named() {
        Jail::expect_with(|jail| {
            jail.set_env("GUICHET_PUBLIC_UR", "https://id.example.org");
            let err = load_in(jail, None).expect_err("must fail");
            assert!(err.to_string().contains("public_ur"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn config_env_is_not_a_setting() {
        Jail::expect_with(|jail| {
            jail.create_file("other.toml", "dev_mode = true\n")?;
            jail.set_env("GUICHET_CONFIG", "other.toml");
            let s = load_in(jail, Some("other.toml")).expect("loads");
            assert!(s.dev_mode);
            Ok(())
        });
    }

    #[test]
    fn missing_explicit_file_fails() {
        Jail::expect_with(|jail| {
            let err = load_in(jail, Some("nope.toml")).expect_err("must fail");
            assert!(err.to_string().contains("nope.toml"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unknown_database_scheme_names_the_key() {
        Jail::expect_with(|jail| {
            jail.set_env("GUICHET_DATABASE_URL", "mysql://x");
            let err = load_in(jail, None).expect_err("must fail");
            let text = err.to_string();
            assert!(text.contains("database_url"), "{text}");
            assert!(text.contains("GUICHET_DATABASE_URL"), "{text}");
            assert!(text.contains("mysql"), "{text}");
            Ok(())
        });
    }

    #[test]
    fn the_time_zone_is_an_iana_name() {
        Jail::expect_with(|jail| {
            jail.set_env("GUICHET_TIME_ZONE", "Europe/Paris");
            let settings = load_in(jail, None).expect("loads");
            assert_eq!(
                settings.display_time_zone().expect("zone").iana_name(),
                Some("Europe/Paris")
            );
            jail.set_env("GUICHET_TIME_ZONE", "EST5EDT-nonsense");
            let err = load_in(jail, None).expect_err("must fail").to_string();
            assert!(err.contains("time_zone"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn wrong_type_names_the_key() {
        Jail::expect_with(|jail| {
            jail.set_env("GUICHET_DATABASE__POOL_SIZE", "many");
            let err = load_in(jail, None).expect_err("must fail");
            assert!(err.to_string().contains("pool_size"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn insecure_values_are_refused() {
        let cases: Vec<(Settings, &str)> = vec![
            (
                Settings {
                    public_url: "http://id.example.org".into(),
                    ..Settings::default()
                },
                "public_url",
            ),
            (
                Settings {
                    public_url: "https://id.example.org/?x=1".into(),
                    ..Settings::default()
                },
                "public_url",
            ),
            (
                Settings {
                    master_key: Some(SecretString::new("c2hvcnQ=")),
                    ..Settings::default()
                },
                "master_key",
            ),
            (
                Settings {
                    database_url: "postgres://db.example.org/guichet".into(),
                    master_key: None,
                    ..Settings::default()
                },
                "master_key",
            ),
            (
                Settings {
                    redis_url: Some("http://cache".into()),
                    ..Settings::default()
                },
                "redis_url",
            ),
            (
                Settings {
                    bind: "everywhere".into(),
                    ..Settings::default()
                },
                "bind",
            ),
            (
                Settings {
                    database: DatabaseSettings {
                        pool_size: Some(0),
                        ..DatabaseSettings::default()
                    },
                    ..Settings::default()
                },
                "database.pool_size",
            ),
            (
                Settings {
                    time_zone: "Mars/Olympus_Mons".into(),
                    ..Settings::default()
                },
                "time_zone",
            ),
        ];
        for (settings, key) in cases {
            match settings.validate() {
                Err(ConfigError::Invalid { key: got, .. }) => assert_eq!(got, key),
                other => panic!("expected {key} to be refused, got {other:?}"),
            }
        }
    }

    fn client(id: &str) -> ClientSettings {
        ClientSettings {
            id: id.into(),
            name: "Portail".into(),
            kind: ClientKind::Confidential,
            secret: Some(SecretString::new("0123456789abcdef0123456789abcdef")),
            redirect_uris: vec!["https://portal.example.org/callback".into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            scopes: ClientSettings::default_scopes(),
            grants: ClientSettings::default_grants(),
            id_token_alg: "RS256".into(),
            first_party: true,
            first_factor: "password".into(),
            required_level: "mfa".into(),
            jwks: None,
        }
    }

    #[test]
    fn clients_are_checked_naming_the_client_and_field() {
        let ok = Settings {
            clients: vec![client("file-portal"), client("atip")],
            ..Settings::default()
        };
        ok.validate().expect("valid clients");
        let cases: Vec<(ClientSettings, &str)> = vec![
            (
                ClientSettings {
                    id: "bad id".into(),
                    ..client("x")
                },
                "`id`",
            ),
            (
                ClientSettings {
                    secret: None,
                    ..client("x")
                },
                "`secret`",
            ),
            (
                ClientSettings {
                    secret: Some(SecretString::new("short")),
                    ..client("x")
                },
                "32",
            ),
            (
                ClientSettings {
                    secret: Some(SecretString::new("a+b/c=0123456789abcdef0123456789abcdef")),
                    ..client("x")
                },
                "letters, digits",
            ),
            (
                ClientSettings {
                    kind: ClientKind::Public,
                    ..client("x")
                },
                "public",
            ),
            (
                ClientSettings {
                    redirect_uris: vec!["http://portal.example.org/cb".into()],
                    ..client("x")
                },
                "https",
            ),
            (
                ClientSettings {
                    redirect_uris: vec!["https://p.example.org/cb#frag".into()],
                    ..client("x")
                },
                "fragment",
            ),
            (
                ClientSettings {
                    redirect_uris: vec!["/relative".into()],
                    ..client("x")
                },
                "absolute",
            ),
            (
                ClientSettings {
                    redirect_uris: vec![],
                    ..client("x")
                },
                "authorization_code",
            ),
            (
                ClientSettings {
                    grants: vec!["password".into()],
                    ..client("x")
                },
                "password",
            ),
            (
                ClientSettings {
                    id_token_alg: "HS256".into(),
                    ..client("x")
                },
                "id_token_alg",
            ),
            (
                ClientSettings {
                    required_level: "upstream+totp".into(),
                    ..client("x")
                },
                "required_level",
            ),
            (
                ClientSettings {
                    first_factor: "upstream:clicsequr".into(),
                    ..client("x")
                },
                "not supported by this version",
            ),
            (
                ClientSettings {
                    first_factor: "pasword".into(),
                    ..client("x")
                },
                "first_factor",
            ),
            (
                ClientSettings {
                    scopes: vec!["a b".into()],
                    ..client("x")
                },
                "scopes",
            ),
        ];
        for (bad, expected) in cases {
            let settings = Settings {
                clients: vec![client("ok"), bad],
                ..Settings::default()
            };
            let err = settings
                .validate()
                .expect_err("must be refused")
                .to_string();
            assert!(
                err.contains("client #2") && err.contains(expected),
                "{expected}: {err}"
            );
        }
        let twice = Settings {
            clients: vec![client("a"), client("a")],
            ..Settings::default()
        };
        assert!(twice
            .validate()
            .expect_err("duplicate")
            .to_string()
            .contains("twice"));
        let shown = format!("{:?}", client("x"));
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }

    #[test]
    fn clients_from_a_file() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "idp.toml",
                r#"
[[clients]]
id = "file-portal"
name = "Portail des membres"
secret = "0123456789abcdef0123456789abcdef"
redirect_uris = ["https://portal.example.org/callback"]
grants = ["authorization_code", "refresh_token", "client_credentials"]
id_token_alg = "ES256"
"#,
            )?;
            let s = load_in(jail, Some("idp.toml")).expect("loads");
            assert_eq!(s.clients.len(), 1);
            assert_eq!(s.clients[0].kind, ClientKind::Confidential);
            assert_eq!(s.clients[0].scopes, vec!["openid", "profile", "email"]);
            assert_eq!(s.clients[0].id_token_alg, "ES256");
            jail.create_file(
                "bad.toml",
                "[[clients]]\nid = \"x\"\nname = \"X\"\nredirect_uri = []\n",
            )?;
            let err = load_in(jail, Some("bad.toml")).expect_err("unknown client key");
            assert!(err.to_string().contains("redirect_uri"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn loopback_http_is_allowed() {
        for url in [
            "http://localhost:8080",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
        ] {
            let s = Settings {
                public_url: url.into(),
                ..Settings::default()
            };
            s.validate().unwrap_or_else(|e| panic!("{url}: {e}"));
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = Settings {
            master_key: Some(SecretString::new(
                "c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3Qtc2hvdw==",
            )),
            ..Settings::default()
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    /// The example file documents every key: it parses, and each default key appears in it.
    #[test]
    fn example_file_documents_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/idp.example.toml");
        let text = std::fs::read_to_string(&path).expect("example config exists");
        // Every key, commented or not, must appear with its env override.
        let defaults = toml::Value::try_from(Settings::default()).expect("serialize defaults");
        let mut keys = Vec::new();
        collect_keys(&defaults, "", &mut keys);
        for key in ["redis_url", "master_key"] {
            keys.push(key.to_string());
        }
        for key in keys {
            let leaf = key.rsplit('.').next().unwrap_or(&key);
            assert!(
                text.contains(&format!("{leaf} =")),
                "{key} missing from idp.example.toml"
            );
            assert!(
                text.contains(&env_name(&key)),
                "{} missing from idp.example.toml",
                env_name(&key)
            );
        }
        // And the uncommented part is itself a valid configuration.
        let parsed: Settings = Figment::new()
            .merge(Toml::string(&text))
            .extract()
            .expect("example parses");
        parsed.validate().expect("example validates");
    }

    fn collect_keys(value: &toml::Value, prefix: &str, out: &mut Vec<String>) {
        if let toml::Value::Table(table) = value {
            for (k, v) in table {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if v.is_table() {
                    collect_keys(v, &key, out);
                } else {
                    out.push(key);
                }
            }
        }
    }
}
