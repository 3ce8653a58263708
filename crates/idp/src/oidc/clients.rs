//! Registered clients: synchronisation from configuration and client authentication.

use chrono::NaiveDateTime;

use crate::config::{ClientKind, ClientSettings};
use crate::crypto::KeyedHasher;
use crate::oidc::error::OAuthError;
use crate::store::client_assertions;
use crate::store::clients::{self, Client};
use crate::store::{DbConnection, StoreResult};

/// Purpose label of client secret hashes.
pub const SECRET_PURPOSE: &str = "client_secret";

/// The stored form of a client's registration (its secret as a keyed hash).
pub fn record_of(c: &ClientSettings, hasher: &KeyedHasher, now: NaiveDateTime) -> Client {
    Client {
        id: c.id.clone(),
        name: c.name.clone(),
        kind: c.kind.as_str().to_string(),
        secret_hash: c
            .secret
            .as_ref()
            .map(|s| hasher.hash(SECRET_PURPOSE, s.expose().as_bytes())),
        redirect_uris: c.redirect_uris.clone(),
        post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
        backchannel_logout_uri: c.backchannel_logout_uri.clone(),
        allowed_scopes: c.scopes.clone(),
        allowed_grants: c.grants.clone(),
        id_token_alg: c.id_token_alg.clone(),
        first_party: c.first_party,
        first_factor: c.first_factor.clone(),
        required_level: c.required_level.clone(),
        jwks: c
            .jwks
            .as_ref()
            .and_then(|set| serde_json::to_string(set).ok()),
        enabled: true,
        created_at: now,
        updated_at: now,
    }
}

/// Writes every configured client to the database (secrets as keyed hashes). Clients created
/// otherwise (admin console) are left alone. Returns how many were written.
pub fn sync_configured(
    conn: &mut DbConnection,
    configured: &[ClientSettings],
    hasher: &KeyedHasher,
    now: NaiveDateTime,
) -> StoreResult<usize> {
    for c in configured {
        clients::upsert(conn, &record_of(c, hasher, now), now)?;
    }
    Ok(configured.len())
}

/// Clients read recently, so authenticating a client at the token, introspection and
/// revocation endpoints needs no database call. An entry is trusted for [`ClientCache::TTL`]:
/// a client disabled or changed in the database is seen by every instance within that time
/// (the instance that made the change forgets it at once). Only clients that exist are kept,
/// so the cache holds at most the registered clients.
#[derive(Debug, Default)]
pub struct ClientCache {
    entries: std::sync::RwLock<std::collections::HashMap<String, (std::time::Instant, Client)>>,
}

impl ClientCache {
    /// How long a cached client is trusted.
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(5);

    /// The client, if read less than [`ClientCache::TTL`] ago.
    pub fn get(&self, id: &str) -> Option<Client> {
        let entries = self.entries.read().ok()?;
        entries
            .get(id)
            .filter(|(read_at, _)| read_at.elapsed() < Self::TTL)
            .map(|(_, client)| client.clone())
    }

    /// Drops a client this instance just changed, so its next request reads it again.
    pub fn forget(&self, id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(id);
        }
    }

    /// Remembers a client just read from the database.
    pub fn put(&self, client: &Client) {
        if let Ok(mut entries) = self.entries.write() {
            entries.insert(
                client.id.clone(),
                (std::time::Instant::now(), client.clone()),
            );
        }
    }
}

/// How the client presented itself at the token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientCredentials {
    /// `client_secret_basic`: HTTP Basic authentication.
    Basic { id: String, secret: String },
    /// `client_secret_post`: `client_id` and `client_secret` in the body.
    Post { id: String, secret: String },
    /// `none`: a public client naming itself.
    None { id: String },
    /// `private_key_jwt`: a JWT signed with the client's key (RFC 7523 section 2.2).
    Assertion { id: String, assertion: String },
}

/// The only client assertion type (RFC 7523 section 2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Latest an assertion may expire: its `jti` is remembered until then.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 600;
/// Clock difference tolerated between client and server.
const ASSERTION_LEEWAY_SECS: u64 = 30;

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { id, .. } => write!(f, "Basic({id}, [redacted])"),
            Self::Post { id, .. } => write!(f, "Post({id}, [redacted])"),
            Self::None { id } => write!(f, "None({id})"),
            Self::Assertion { id, .. } => write!(f, "Assertion({id}, [redacted])"),
        }
    }
}

impl ClientCredentials {
    /// The client id presented.
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { id, .. }
            | Self::Post { id, .. }
            | Self::None { id }
            | Self::Assertion { id, .. } => id,
        }
    }

    /// Reads the credentials of a token, revocation or introspection request: an assertion
    /// when `client_assertion` is present, otherwise as [`ClientCredentials::parse`].
    pub fn from_request(
        authorization: Option<&str>,
        params: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, OAuthError> {
        let body_id = params.get("client_id").map(String::as_str);
        let body_secret = params.get("client_secret").map(String::as_str);
        let assertion = params.get("client_assertion");
        let assertion_type = params.get("client_assertion_type");
        if assertion.is_none() && assertion_type.is_none() {
            return Self::parse(authorization, body_id, body_secret);
        }
        if authorization.is_some() || body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "Use one client authentication method only.",
            ));
        }
        let (Some(assertion), Some(kind)) = (assertion, assertion_type) else {
            return Err(OAuthError::invalid_request(
                "client_assertion and client_assertion_type go together.",
            ));
        };
        if kind != JWT_BEARER_ASSERTION {
            return Err(OAuthError::invalid_client(
                "Only JWT bearer client assertions are supported.",
            ));
        }
        // The client is named by client_id, or else by the assertion's own subject; the
        // signature check that follows holds the name to account.
        let named = assertion_subject(assertion).ok_or(OAuthError::invalid_client(
            "The client assertion is not a JWT.",
        ))?;
        if body_id.is_some_and(|id| id != named) {
            return Err(OAuthError::invalid_client(
                "client_id does not match the client assertion.",
            ));
        }
        Ok(Self::Assertion {
            id: named,
            assertion: assertion.clone(),
        })
    }

    /// Reads the credentials from an `Authorization` header value and the body parameters.
    /// Using two methods at once is refused (RFC 6749 section 2.3).
    pub fn parse(
        authorization: Option<&str>,
        body_id: Option<&str>,
        body_secret: Option<&str>,
    ) -> Result<Self, OAuthError> {
        if let Some(header) = authorization {
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "Use one client authentication method only.",
                ));
            }
            let (id, secret) = parse_basic(header).ok_or(OAuthError::invalid_client(
                "The Authorization header is not valid Basic authentication.",
            ))?;
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the authenticated client.",
                ));
            }
            return Ok(Self::Basic { id, secret });
        }
        match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(Self::Post {
                id: id.to_string(),
                secret: secret.to_string(),
            }),
            (Some(id), None) => Ok(Self::None { id: id.to_string() }),
            (None, _) => Err(OAuthError::invalid_client(
                "Client authentication is required.",
            )),
        }
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 section 2.3.1).
fn parse_basic(header: &str) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    // application/x-www-form-urlencoded, as RFC 6749 appendix B says. Configured secrets are
    // URL-safe, so clients that do not encode them send the same bytes.
    let decode = |s: &str| -> Option<String> {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    let (id, secret) = (decode(id)?, decode(secret)?);
    if id.is_empty() {
        return None;
    }
    Some((id, secret))
}

/// The `sub` of an assertion, read without verification (to find whose key to check it with).
fn assertion_subject(assertion: &str) -> Option<String> {
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(assertion).ok()?;
    claims
        .claims
        .get("sub")
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .map(str::to_string)
}

/// A client assertion that passed its checks: its `jti` must now be recorded as used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub jti: String,
    pub expires_at: i64,
}

/// Verifies a `private_key_jwt` assertion (RFC 7523 section 3) against the client's registered
/// keys: signature, `iss` = `sub` = client id, `aud` naming this server, `exp` within
/// ten minutes, and a `jti`.
pub fn verify_assertion(
    client: &Client,
    assertion: &str,
    audiences: &[String],
    now: i64,
) -> Option<VerifiedAssertion> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let keys: jsonwebtoken::jwk::JwkSet = serde_json::from_str(client.jwks.as_deref()?).ok()?;
    let header = jsonwebtoken::decode_header(assertion).ok()?;
    if !matches!(
        header.alg,
        Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA | Algorithm::PS256
    ) {
        return None;
    }
    let candidates: Vec<&jsonwebtoken::jwk::Jwk> = match &header.kid {
        Some(kid) => keys.find(kid).into_iter().collect(),
        None => keys.keys.iter().collect(),
    };
    let mut validation = Validation::new(header.alg);
    validation.set_audience(audiences);
    validation.set_issuer(&[&client.id]);
    validation.sub = Some(client.id.clone());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.leeway = ASSERTION_LEEWAY_SECS;
    for jwk in candidates {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        let Ok(data) = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation)
        else {
            continue;
        };
        let jti = data.claims.get("jti").and_then(serde_json::Value::as_str)?;
        let exp = data.claims.get("exp").and_then(serde_json::Value::as_i64)?;
        if jti.is_empty() || jti.len() > 256 || exp > now + MAX_ASSERTION_LIFETIME_SECS {
            return None;
        }
        return Some(VerifiedAssertion {
            jti: jti.to_string(),
            expires_at: exp,
        });
    }
    None
}

/// Looks the client up and authenticates it, recording a used assertion so it cannot be
/// replayed. `audiences` are the values an assertion's `aud` may name.
pub fn authenticate_client(
    conn: &mut DbConnection,
    credentials: &ClientCredentials,
    hasher: &KeyedHasher,
    audiences: &[String],
    at: NaiveDateTime,
) -> StoreResult<Result<Client, OAuthError>> {
    const REFUSED: OAuthError = OAuthError::invalid_client("Client authentication failed.");
    let found = clients::find(conn, credentials.client_id())?;
    let ClientCredentials::Assertion { assertion, .. } = credentials else {
        return Ok(authenticate(found, credentials, hasher));
    };
    let Some(client) = found.filter(|c| c.enabled && is_confidential(c)) else {
        return Ok(Err(REFUSED));
    };
    let Some(verified) = verify_assertion(&client, assertion, audiences, at.and_utc().timestamp())
    else {
        return Ok(Err(REFUSED));
    };
    let expires_at = chrono::DateTime::from_timestamp(verified.expires_at, 0)
        .map(|t| t.naive_utc())
        .unwrap_or(at);
    let jti_hash = hasher.hash(
        ASSERTION_PURPOSE,
        format!("{}\0{}", client.id, verified.jti).as_bytes(),
    );
    if !client_assertions::record(conn, &jti_hash, &client.id, expires_at)? {
        return Ok(Err(OAuthError::invalid_client(
            "This client assertion was already used.",
        )));
    }
    Ok(Ok(client))
}

/// Purpose label of remembered assertion identifiers.
const ASSERTION_PURPOSE: &str = "client_assertion_jti";

/// Checks the credentials against the stored client. Unknown client, wrong secret, disabled
/// client and wrong method all give the same `invalid_client`, after the same work.
pub fn authenticate(
    found: Option<Client>,
    credentials: &ClientCredentials,
    hasher: &KeyedHasher,
) -> Result<Client, OAuthError> {
    const REFUSED: OAuthError = OAuthError::invalid_client("Client authentication failed.");
    let presented = match credentials {
        ClientCredentials::Basic { secret, .. } | ClientCredentials::Post { secret, .. } => {
            Some(secret.as_bytes())
        }
        ClientCredentials::None { .. } => None,
        // Assertions are checked by `authenticate_client`, which can record their jti.
        ClientCredentials::Assertion { .. } => return Err(REFUSED),
    };
    let Some(client) = found else {
        // Same hashing work as a real check, so timing does not tell which ids exist.
        let _ = hasher.hash(SECRET_PURPOSE, presented.unwrap_or_default());
        return Err(REFUSED);
    };
    if !client.enabled {
        return Err(REFUSED);
    }
    match (
        client.kind.as_str(),
        presented,
        client.secret_hash.as_deref(),
    ) {
        ("confidential", Some(secret), Some(expected))
            if hasher.verify(SECRET_PURPOSE, secret, expected) =>
        {
            Ok(client)
        }
        ("public", None, _) => Ok(client),
        _ => Err(REFUSED),
    }
}

/// Whether the client is confidential.
pub fn is_confidential(client: &Client) -> bool {
    client.kind == ClientKind::Confidential.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    #[test]
    fn the_cache_keeps_clients_it_was_given_for_a_short_time() {
        let cache = ClientCache::default();
        assert!(cache.get("portal").is_none());
        let t = crate::store::now();
        let client = Client {
            id: "portal".into(),
            name: "Portal".into(),
            kind: "confidential".into(),
            secret_hash: Some(vec![1; 32]),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            allowed_scopes: vec![],
            allowed_grants: vec!["client_credentials".into()],
            id_token_alg: "ES256".into(),
            first_party: true,
            first_factor: "password".into(),
            required_level: "mfa".into(),
            enabled: true,
            created_at: t,
            updated_at: t,
            jwks: None,
        };
        cache.put(&client);
        assert_eq!(cache.get("portal"), Some(client.clone()));
        assert!(cache.get("other").is_none());
        // An entry older than the TTL is not trusted.
        if let Ok(mut entries) = cache.entries.write() {
            let stale = std::time::Instant::now()
                .checked_sub(ClientCache::TTL + std::time::Duration::from_millis(1));
            if let (Some(stale), Some(entry)) = (stale, entries.get_mut("portal")) {
                entry.0 = stale;
            }
        }
        assert!(cache.get("portal").is_none(), "stale entries are refused");
    }

    #[test]
    fn credentials_from_header_or_body() {
        let c = ClientCredentials::parse(Some(&basic("portal", "s%3Acret")), None, None)
            .expect("basic");
        assert_eq!(
            c,
            ClientCredentials::Basic {
                id: "portal".into(),
                secret: "s:cret".into()
            },
            "form-urlencoded parts are decoded"
        );
        for (raw, decoded) in [
            ("a%2Bb%2Fc%3D", "a+b/c="),
            ("a+b", "a b"),
            ("A-z_0.9~", "A-z_0.9~"),
        ] {
            let c =
                ClientCredentials::parse(Some(&basic("portal", raw)), None, None).expect("basic");
            assert!(
                matches!(&c, ClientCredentials::Basic { secret, .. } if secret == decoded),
                "{raw} must decode to {decoded}"
            );
        }
        assert!(matches!(
            ClientCredentials::parse(None, Some("portal"), Some("x")),
            Ok(ClientCredentials::Post { .. })
        ));
        assert!(matches!(
            ClientCredentials::parse(None, Some("spa"), None),
            Ok(ClientCredentials::None { .. })
        ));
        let err = ClientCredentials::parse(Some(&basic("a", "b")), None, Some("b"))
            .expect_err("two methods");
        assert_eq!(err.code, "invalid_request");
        let err = ClientCredentials::parse(Some(&basic("a", "b")), Some("other"), None)
            .expect_err("id mismatch");
        assert_eq!(err.code, "invalid_request");
        for bad in ["Bearer abc", "Basic !!!", "Basic Zm9v", "Basic"] {
            let err = ClientCredentials::parse(Some(bad), None, None).expect_err(bad);
            assert_eq!(
                (err.code, err.status, err.challenge),
                ("invalid_client", 401, crate::oidc::error::Challenge::Basic)
            );
        }
        assert_eq!(
            ClientCredentials::parse(None, None, None)
                .expect_err("none")
                .code,
            "invalid_client"
        );
        let shown = format!(
            "{:?}",
            ClientCredentials::parse(Some(&basic("a", "topsecret")), None, None)
        );
        assert!(!shown.contains("topsecret"));
    }
}
