//! Back-Channel Logout 1.0, section 2.6: the checks a portal makes on a logout token before
//! ending anything. Replay (a `jti` seen before) is checked by the session store.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// The event a logout token must carry.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Algorithms Guichet signs with; `none` and HMAC are never accepted.
const ALLOWED: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Why a logout token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    #[error("not a signed JWT")]
    Malformed,
    #[error("signed with an algorithm that is not accepted")]
    Algorithm,
    #[error("signed with a key the provider does not publish")]
    UnknownKey,
    #[error("signature, issuer, audience or lifetime check failed: {0}")]
    Invalid(String),
    #[error("the events claim does not hold the back-channel logout event")]
    Events,
    #[error("a logout token must not carry a nonce")]
    Nonce,
    #[error("neither sub nor sid")]
    NoSubject,
    #[error("no jti")]
    NoJti,
    #[error("this logout token was already used")]
    Replayed,
}

/// What a valid logout token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutClaims {
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub jti: String,
    /// Until when the `jti` must be remembered.
    pub exp: i64,
}

/// Checks signature (a published key, an accepted algorithm), `typ`, `iss`, `aud`, `iat`,
/// `exp`, the events claim, no nonce, a `sub` or `sid`, and a `jti`.
pub fn validate(
    token: &str,
    jwks: &JwkSet,
    issuer: &str,
    audience: &str,
) -> Result<LogoutClaims, LogoutTokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| LogoutTokenError::Malformed)?;
    if !ALLOWED.contains(&header.alg) {
        return Err(LogoutTokenError::Algorithm);
    }
    if header
        .typ
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("logout+jwt") && t != "JWT")
    {
        return Err(LogoutTokenError::Malformed);
    }
    let jwk = header
        .kid
        .as_deref()
        .and_then(|kid| jwks.find(kid))
        .ok_or(LogoutTokenError::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| LogoutTokenError::UnknownKey)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["iss", "aud", "iat", "exp"]);
    validation.leeway = 60;
    let claims = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
        .map_err(|e| LogoutTokenError::Invalid(e.to_string()))?
        .claims;
    let event_ok = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_EVENT))
        .is_some_and(Value::is_object);
    if !event_ok {
        return Err(LogoutTokenError::Events);
    }
    if claims.contains_key("nonce") {
        return Err(LogoutTokenError::Nonce);
    }
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (sub, sid) = (text("sub"), text("sid"));
    if sub.is_none() && sid.is_none() {
        return Err(LogoutTokenError::NoSubject);
    }
    let jti = text("jti").ok_or(LogoutTokenError::NoJti)?;
    Ok(LogoutClaims {
        sub,
        sid,
        jti,
        exp: claims
            .get("exp")
            .and_then(Value::as_i64)
            .unwrap_or_default(),
    })
}
