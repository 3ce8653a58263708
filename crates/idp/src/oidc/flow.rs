//! The authorization code flow's server-side state: login transactions, SSO sessions and
//! authorization codes. Every value handed to a browser or client is random; only its keyed
//! hash is stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{Duration, NaiveDateTime};
use rand::RngCore;

use crate::crypto::KeyedHasher;
use crate::oidc::authorize::AuthorizationRequest;
use crate::store::authorization_codes::{self, AuthorizationCodeRecord};
use crate::store::login_transactions::{self, LoginTransactionRecord};
use crate::store::refresh_tokens::RefreshTokenRecord;
use crate::store::sso_sessions::{self, SsoSessionRecord};
use crate::store::{DbConnection, StoreError, StoreResult};

/// How long a person has to finish signing in.
pub const LOGIN_TRANSACTION_TTL: Duration = Duration::minutes(30);
/// How long an SSO session lasts without a new sign-in.
pub const SSO_SESSION_TTL: Duration = Duration::hours(8);
/// Lifetime of an authorization code (Security BCP: short).
pub const AUTHORIZATION_CODE_TTL: Duration = Duration::seconds(60);

const TX_PURPOSE: &str = "login_transaction";
const SESSION_PURPOSE: &str = "sso_session";
const CODE_PURPOSE: &str = "authorization_code";
const CSRF_PURPOSE: &str = "csrf";
const REFRESH_PURPOSE: &str = "refresh_token";

/// 32 random bytes, base64url: cookie values, codes.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64URL.encode(bytes)
}

fn hex_hash(hasher: &KeyedHasher, purpose: &str, value: &str) -> String {
    hasher
        .hash(purpose, value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `acr` of a session opened with a password alone (no longer issued; kept for old sessions).
pub const ACR_PASSWORD: &str = "pwd";
/// `acr` of a session opened with a password and a second factor.
pub const ACR_MFA: &str = "mfa";

/// Whether a session that reached `acr` satisfies a portal requiring `required`.
pub fn level_satisfies(acr: &str, required: &str) -> bool {
    fn rank(level: &str) -> u8 {
        match level {
            ACR_MFA => 2,
            ACR_PASSWORD => 1,
            _ => 0,
        }
    }
    rank(acr) >= rank(required).max(1)
}

/// Step of a transaction waiting for the password.
pub const STEP_PASSWORD: &str = "password";
/// Step of a transaction waiting for the person's consent.
pub const STEP_CONSENT: &str = "consent";

/// Stores a validated request; returns the cookie value that refers to it.
pub fn start_login(
    conn: &mut DbConnection,
    hasher: &KeyedHasher,
    request: &AuthorizationRequest,
    now: NaiveDateTime,
) -> StoreResult<String> {
    start_transaction(conn, hasher, request, None, STEP_PASSWORD, now)
}

/// Stores a request that only waits for `user_id`'s consent (already signed in).
pub fn start_consent(
    conn: &mut DbConnection,
    hasher: &KeyedHasher,
    request: &AuthorizationRequest,
    user_id: &str,
    now: NaiveDateTime,
) -> StoreResult<String> {
    start_transaction(conn, hasher, request, Some(user_id), STEP_CONSENT, now)
}

fn start_transaction(
    conn: &mut DbConnection,
    hasher: &KeyedHasher,
    request: &AuthorizationRequest,
    user_id: Option<&str>,
    step: &str,
    now: NaiveDateTime,
) -> StoreResult<String> {
    let token = random_token();
    let json = serde_json::to_string(request)
        .map_err(|e| StoreError::Corrupt(format!("authorization request: {e}")))?;
    login_transactions::insert(
        conn,
        &LoginTransactionRecord {
            id: hex_hash(hasher, TX_PURPOSE, &token),
            client_id: request.client_id.clone(),
            request: json,
            user_id: user_id.map(str::to_string),
            step: step.into(),
            created_at: now,
            expires_at: now + LOGIN_TRANSACTION_TTL,
            data: "{}".into(),
        },
    )?;
    Ok(token)
}

/// A live login transaction found from its cookie value.
#[derive(Debug, Clone)]
pub struct LoginTransaction {
    pub id: String,
    pub request: AuthorizationRequest,
    /// The person, once identified.
    pub user_id: Option<String>,
    /// Where the person is in the journey.
    pub step: String,
    /// Journey state beyond the step (JSON).
    pub data: String,
}

/// The transaction behind a cookie value, if it is still live.
pub fn find_login(
    conn: &mut DbConnection,
    hasher: &KeyedHasher,
    token: &str,
    now: NaiveDateTime,
) -> StoreResult<Option<LoginTransaction>> {
    let id = hex_hash(hasher, TX_PURPOSE, token);
    login_transactions::find_live(conn, &id, now)?
        .map(|record| {
            let request = serde_json::from_str(&record.request)
                .map_err(|e| StoreError::Corrupt(format!("login transaction request: {e}")))?;
            Ok(LoginTransaction {
                id: record.id,
                request,
                user_id: record.user_id,
                step: record.step,
                data: record.data,
            })
        })
        .transpose()
}

/// The CSRF token of forms in a login transaction: derived from it, so nothing more is stored.
pub fn csrf_token(hasher: &KeyedHasher, transaction_id: &str) -> String {
    B64URL.encode(hasher.hash(CSRF_PURPOSE, transaction_id.as_bytes()))
}

/// Whether a submitted CSRF token belongs to the transaction (constant-time).
pub fn csrf_matches(hasher: &KeyedHasher, transaction_id: &str, submitted: &str) -> bool {
    B64URL
        .decode(submitted)
        .is_ok_and(|bytes| hasher.verify(CSRF_PURPOSE, transaction_id.as_bytes(), &bytes))
}

/// An SSO session as the flow sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub record: SsoSessionRecord,
}

impl Session {
    /// Whether the session satisfies the request: no forced login and not older than max_age.
    pub fn satisfies(&self, request: &AuthorizationRequest, now: NaiveDateTime) -> bool {
        if request.prompts("login") {
            return false;
        }
        match request.max_age {
            Some(max_age) => now - self.record.auth_time <= Duration::seconds(max_age),
            None => true,
        }
    }
}

/// What a successful sign-in established.
#[derive(Debug, Clone)]
pub struct Authentication {
    pub user_id: String,
    /// RFC 8176 values.
    pub amr: Vec<String>,
    pub acr: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Creates an SSO session (a new id at every sign-in); returns its cookie value and record.
pub fn create_session(
    conn: &mut DbConnection,
    hasher: &KeyedHasher,
    auth: &Authentication,
    now: NaiveDateTime,
) -> StoreResult<(String, Session)> {
    let token = random_token();
    let record = SsoSessionRecord {
        id: hex_hash(hasher, SESSION_PURPOSE, &token),
        sid: uuid::Uuid::new_v4().to_string(),
        user_id: auth.user_id.clone(),
        auth_time: now,
        amr: auth.amr.join(" "),
        acr: auth.acr.clone(),
        ip: auth.ip.clone(),
        user_agent: auth.user_agent.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + SSO_SESSION_TTL,
        ended_at: None,
    };
    sso_sessions::insert(conn, &record)?;
    Ok((token, Session { record }))
}

/// The live session behind a cookie value.
pub fn find_session(
    conn: &mut DbConnection,
    hasher: &KeyedHasher,
    token: &str,
    now: NaiveDateTime,
) -> StoreResult<Option<Session>> {
    let id = hex_hash(hasher, SESSION_PURPOSE, token);
    Ok(sso_sessions::find_live(conn, &id, now)?.map(|record| Session { record }))
}

/// Issues an authorization code for `request` from `session`; returns the code.
pub fn issue_code(
    conn: &mut DbConnection,
    hasher: &KeyedHasher,
    request: &AuthorizationRequest,
    session: &Session,
    now: NaiveDateTime,
) -> StoreResult<String> {
    let code = random_token();
    authorization_codes::insert(
        conn,
        &AuthorizationCodeRecord {
            code_hash: hasher.hash(CODE_PURPOSE, code.as_bytes()),
            client_id: request.client_id.clone(),
            user_id: session.record.user_id.clone(),
            session_id: session.record.sid.clone(),
            redirect_uri: request.redirect_uri.clone(),
            scope: request.scope.join(" "),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            auth_time: session.record.auth_time,
            amr: session.record.amr.clone(),
            acr: session.record.acr.clone(),
            created_at: now,
            expires_at: now + AUTHORIZATION_CODE_TTL,
            consumed_at: None,
        },
    )?;
    // Logging out later notifies every portal the session signed in to.
    sso_sessions::add_client(conn, &session.record.sid, &request.client_id, now)?;
    Ok(code)
}

/// Whether the person must be asked before `client` gets `request`'s scopes: never for a
/// first-party portal; otherwise when asked to (`prompt=consent`) or when the scopes go beyond
/// what the person already agreed to.
pub fn consent_needed(
    conn: &mut DbConnection,
    client: &crate::store::clients::Client,
    user_id: &str,
    request: &AuthorizationRequest,
) -> StoreResult<bool> {
    if client.first_party {
        return Ok(false);
    }
    if request.prompts("consent") {
        return Ok(true);
    }
    let granted = crate::store::consents::granted(conn, user_id, &client.id)?.unwrap_or_default();
    Ok(request.scope.iter().any(|s| !granted.contains(s)))
}

/// The stored hash of a code presented at the token endpoint.
pub fn code_hash(hasher: &KeyedHasher, code: &str) -> Vec<u8> {
    hasher.hash(CODE_PURPOSE, code.as_bytes())
}

/// The stored hash of a refresh token.
pub fn refresh_hash(hasher: &KeyedHasher, token: &str) -> Vec<u8> {
    hasher.hash(REFRESH_PURPOSE, token.as_bytes())
}

/// The refresh token family born of an authorization code: replaying the code revokes it.
pub fn family_of_code(code_hash: &[u8]) -> String {
    code_hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new refresh token of `family`; returns the token and the record to store.
#[allow(clippy::too_many_arguments)]
pub fn new_refresh_token(
    hasher: &KeyedHasher,
    family_id: &str,
    client_id: &str,
    user_id: &str,
    session_id: Option<&str>,
    scope: &str,
    now: NaiveDateTime,
    ttl: Duration,
) -> (String, RefreshTokenRecord) {
    let token = random_token();
    let record = RefreshTokenRecord {
        token_hash: refresh_hash(hasher, &token),
        family_id: family_id.to_string(),
        client_id: client_id.to_string(),
        user_id: user_id.to_string(),
        session_id: session_id.map(str::to_string),
        scope: scope.to_string(),
        created_at: now,
        expires_at: now + ttl,
        rotated_at: None,
        revoked_at: None,
        retry_response_enc: None,
    };
    (token, record)
}

/// RFC 7636: BASE64URL(SHA-256(verifier)) == challenge, with the verifier's format checked.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let computed = B64URL.encode(digest.as_ref());
    aws_lc_rs::constant_time::verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_satisfies_a_portal_only_at_or_above_its_level() {
        assert!(level_satisfies(ACR_MFA, ACR_MFA));
        assert!(level_satisfies(ACR_MFA, ACR_PASSWORD));
        assert!(level_satisfies(ACR_PASSWORD, ACR_PASSWORD));
        assert!(!level_satisfies(ACR_PASSWORD, ACR_MFA), "steps up");
        assert!(!level_satisfies("", ACR_PASSWORD));
        assert!(!level_satisfies("unknown", ACR_MFA));
    }

    #[test]
    fn pkce_rfc7636_example() {
        // RFC 7636 appendix B.
        assert!(pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            "short",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }

    #[test]
    fn csrf_is_bound_to_the_transaction() {
        let hasher = KeyedHasher::new(&crate::crypto::MasterKey::generate());
        let token = csrf_token(&hasher, "tx1");
        assert!(csrf_matches(&hasher, "tx1", &token));
        assert!(!csrf_matches(&hasher, "tx2", &token));
        assert!(!csrf_matches(&hasher, "tx1", "not base64!"));
        assert!(!csrf_matches(&hasher, "tx1", ""));
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
    }
}
