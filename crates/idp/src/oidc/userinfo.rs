//! The UserInfo endpoint (OpenID Connect Core 5.3) and the checks of our own access tokens.

use serde_json::{json, Map, Value};

use crate::app::AppState;
use crate::error::Error;
use crate::oidc::error::OAuthError;
use crate::store::{revoked_access_tokens, users};

/// The claims of a valid access token issued by this server.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub sub: String,
    pub client_id: String,
    pub scope: Vec<String>,
    pub jti: String,
    pub exp: i64,
    pub iat: i64,
}

/// Checks an access token: signature by a published key, `typ` at+jwt, issuer, audience and
/// expiry. `None` when any check fails.
pub fn check_access_token(state: &AppState, token: &str, now: i64) -> Option<AccessToken> {
    let (header, claims) = state.keys.verify_jwt(token)?;
    let issuer = state.settings.issuer();
    let valid = header.get("typ").and_then(Value::as_str) == Some("at+jwt")
        && claims.get("iss").and_then(Value::as_str) == Some(issuer.as_str())
        && claims.get("aud").and_then(Value::as_str) == Some(issuer.as_str());
    let exp = claims.get("exp")?.as_i64()?;
    if !valid || exp <= now {
        return None;
    }
    Some(AccessToken {
        sub: claims.get("sub")?.as_str()?.to_string(),
        client_id: claims.get("client_id")?.as_str()?.to_string(),
        scope: claims
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        jti: claims.get("jti")?.as_str()?.to_string(),
        exp,
        iat: claims.get("iat")?.as_i64()?,
    })
}

/// A bearer token that is valid now: signature, issuer, audience, expiry, and not revoked.
/// The error is the RFC 6750 `invalid_token` to answer.
pub async fn live_access_token(state: &AppState, token: &str) -> Result<AccessToken, Error> {
    let invalid = || OAuthError::invalid_token("The access token is invalid or expired.");
    let access =
        check_access_token(state, token, chrono::Utc::now().timestamp()).ok_or_else(invalid)?;
    let jti = access.jti.clone();
    let revoked = state
        .store
        .read(move |conn| revoked_access_tokens::is_revoked(conn, &jti))
        .await?;
    if revoked {
        return Err(invalid().into());
    }
    Ok(access)
}

/// The bearer token of a request: from `Authorization: Bearer`, or the `access_token` form
/// field of a POST (RFC 6750 2.1, 2.2), never both.
pub fn bearer_token(
    authorization: Option<&str>,
    form_token: Option<String>,
) -> Result<String, OAuthError> {
    let from_header = authorization.and_then(|h| {
        let (scheme, token) = h.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string())
    });
    match (from_header, form_token) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "Send the access token one way only.",
        )),
        (Some(t), None) | (None, Some(t)) if !t.is_empty() => Ok(t),
        _ => Err(OAuthError::invalid_token("An access token is required.")),
    }
}

/// Answers a UserInfo request for `token`.
pub async fn userinfo(state: &AppState, token: &str) -> Result<Value, Error> {
    let access = check_access_token(state, token, chrono::Utc::now().timestamp()).ok_or(
        OAuthError::invalid_token("The access token is invalid or expired."),
    )?;
    if !access.scope.iter().any(|s| s == "openid") {
        return Err(OAuthError::insufficient_scope("The openid scope is required.").into());
    }
    let (sub, jti) = (access.sub.clone(), access.jti.clone());
    let user = state
        .store
        .read(move |conn| {
            if revoked_access_tokens::is_revoked(conn, &jti)? {
                return Ok(None);
            }
            users::find_by_id(conn, &sub)
        })
        .await?
        .filter(|u| !u.disabled)
        .ok_or(OAuthError::invalid_token(
            "The access token is invalid or expired.",
        ))?;
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.id));
    let has = |s: &str| access.scope.iter().any(|x| x == s);
    if has("email") {
        claims.insert("email".into(), json!(user.email));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
    if has("profile") {
        let name = format!("{} {}", user.given_name, user.family_name);
        claims.insert("name".into(), json!(name.trim()));
        claims.insert("given_name".into(), json!(user.given_name));
        claims.insert("family_name".into(), json!(user.family_name));
        claims.insert("locale".into(), json!(user.locale));
        if let Some(code) = &user.member_code {
            claims.insert("member_code".into(), json!(code));
        }
    }
    Ok(Value::Object(claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_sources() {
        assert_eq!(
            bearer_token(Some("Bearer abc"), None).expect("header"),
            "abc"
        );
        assert_eq!(
            bearer_token(Some("bearer  abc "), None).expect("any case"),
            "abc"
        );
        assert_eq!(bearer_token(None, Some("abc".into())).expect("form"), "abc");
        assert_eq!(
            bearer_token(Some("Bearer a"), Some("b".into()))
                .expect_err("both")
                .code,
            "invalid_request"
        );
        assert_eq!(
            bearer_token(Some("Basic abc"), None)
                .expect_err("basic")
                .code,
            "invalid_token"
        );
        assert_eq!(bearer_token(None, None).expect_err("none").status, 401);
    }
}
