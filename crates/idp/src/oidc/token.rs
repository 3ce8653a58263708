//! The token endpoint's service: parameter parsing, client authentication, the grants.
//!
//! This version serves `client_credentials`; the other grants answer
//! `unsupported_grant_type` until they are built.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::app::AppState;
use crate::error::Error;
use crate::oidc::clients::{authenticate, is_confidential, ClientCredentials};
use crate::oidc::error::OAuthError;
use crate::oidc::keys::SigningAlg;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::clients::{self, Client};
use crate::store::now;

/// Longest value accepted for any parameter.
const MAX_PARAMETER_LEN: usize = 4096;
/// Scopes that only make sense with a signed-in person.
const USER_SCOPES: [&str; 5] = ["openid", "profile", "email", "offline_access", "phone"];

/// What the HTTP layer extracted from a token request.
#[derive(Debug, Default)]
pub struct TokenInput {
    /// Whether the body was declared `application/x-www-form-urlencoded`.
    pub form_encoded: bool,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// A successful token response (RFC 6749 section 5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

/// Claims of a JWT access token (RFC 9068).
#[derive(Debug, Serialize)]
struct AccessTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    jti: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
}

/// Decodes an `application/x-www-form-urlencoded` body. Repeated parameters are refused and
/// empty ones count as absent (RFC 6749 section 3.1).
pub fn parse_form(body: &[u8]) -> Result<BTreeMap<String, String>, OAuthError> {
    let mut params = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        if key.len() > 64 || value.len() > MAX_PARAMETER_LEN {
            return Err(OAuthError::invalid_request("A parameter is too long."));
        }
        if value.is_empty() {
            continue;
        }
        if params
            .insert(key.into_owned(), value.into_owned())
            .is_some()
        {
            return Err(OAuthError::invalid_request("A parameter is repeated."));
        }
    }
    Ok(params)
}

/// The scopes a `client_credentials` token gets: those asked for, each allowed to the client,
/// or by default every allowed scope that needs no person.
pub fn client_credentials_scopes(
    client: &Client,
    requested: Option<&str>,
) -> Result<Vec<String>, OAuthError> {
    if !is_confidential(client) {
        return Err(OAuthError::unauthorized_client(
            "Only confidential clients may use client_credentials.",
        ));
    }
    if !client
        .allowed_grants
        .iter()
        .any(|g| g == "client_credentials")
    {
        return Err(OAuthError::unauthorized_client(
            "This client is not allowed to use client_credentials.",
        ));
    }
    match requested {
        None => Ok(client
            .allowed_scopes
            .iter()
            .filter(|s| !USER_SCOPES.contains(&s.as_str()))
            .cloned()
            .collect()),
        Some(text) => {
            let mut granted: Vec<String> = Vec::new();
            for scope in text.split(' ').filter(|s| !s.is_empty()) {
                if USER_SCOPES.contains(&scope) {
                    return Err(OAuthError::invalid_scope(
                        "User scopes cannot be granted without a signed-in person.",
                    ));
                }
                if !client.allowed_scopes.iter().any(|s| s == scope) {
                    return Err(OAuthError::invalid_scope(
                        "A requested scope is not allowed for this client.",
                    ));
                }
                if !granted.iter().any(|s| s == scope) {
                    granted.push(scope.to_string());
                }
            }
            Ok(granted)
        }
    }
}

/// Handles one token request.
pub async fn exchange(state: &AppState, input: TokenInput) -> Result<TokenResponse, Error> {
    if !input.form_encoded {
        return Err(OAuthError::invalid_request(
            "The body must be application/x-www-form-urlencoded.",
        )
        .into());
    }
    let params = parse_form(&input.body)?;
    let credentials = ClientCredentials::parse(
        input.authorization.as_deref(),
        params.get("client_id").map(String::as_str),
        params.get("client_secret").map(String::as_str),
    )?;
    let grant_type = params
        .get("grant_type")
        .ok_or(OAuthError::invalid_request("grant_type is required."))?;
    if grant_type != "client_credentials" {
        // Authenticate first anyway, so an unauthenticated caller learns nothing more.
        let _ = authenticated_client(state, &credentials).await?;
        return Err(OAuthError::unsupported_grant_type(
            "This grant type is not supported by this server.",
        )
        .into());
    }
    let client = authenticated_client(state, &credentials).await?;
    let scopes = client_credentials_scopes(&client, params.get("scope").map(String::as_str))?;
    let scope = scopes.join(" ");

    let alg = SigningAlg::parse(&client.id_token_alg).unwrap_or(SigningAlg::Rs256);
    let signer = state.keys.signer(alg)?;
    let issued_at = chrono::Utc::now().timestamp();
    let ttl = state.settings.tokens.access_token_ttl_secs;
    let jti = uuid::Uuid::new_v4().to_string();
    let issuer = state.settings.issuer();
    let access_token = signer.sign_jwt(
        "at+jwt",
        &AccessTokenClaims {
            iss: &issuer,
            sub: &client.id,
            aud: &issuer,
            exp: issued_at + i64::try_from(ttl).unwrap_or(600),
            iat: issued_at,
            jti: &jti,
            client_id: &client.id,
            scope: &scope,
        },
    )?;

    let event = NewAuditEvent {
        id: uuid::Uuid::new_v4().to_string(),
        occurred_at: now(),
        event_type: "token.issued".into(),
        actor: Some(format!("client:{}", client.id)),
        subject: Some(format!("client:{}", client.id)),
        client_id: Some(client.id.clone()),
        ip: input.ip,
        user_agent: input.user_agent,
        request_id: input.request_id,
        detail: serde_json::json!({
            "grant_type": "client_credentials",
            "token": "access",
            "jti": jti,
            "kid": signer.kid(),
            "scope": scope,
        })
        .to_string(),
    };
    state
        .store
        .run(move |conn| audit::append(conn, &event))
        .await?;

    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        scope,
    })
}

async fn authenticated_client(
    state: &AppState,
    credentials: &ClientCredentials,
) -> Result<Client, Error> {
    let id = credentials.client_id().to_string();
    let found = state
        .store
        .run(move |conn| clients::find(conn, &id))
        .await?;
    Ok(authenticate(found, credentials, &state.hasher)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(kind: &str, grants: &[&str], scopes: &[&str]) -> Client {
        let t = now();
        Client {
            id: "svc".into(),
            name: "Service".into(),
            kind: kind.into(),
            secret_hash: Some(vec![0; 32]),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            allowed_scopes: scopes.iter().map(|s| s.to_string()).collect(),
            allowed_grants: grants.iter().map(|s| s.to_string()).collect(),
            id_token_alg: "ES256".into(),
            first_party: false,
            first_factor: "password".into(),
            required_level: "mfa".into(),
            enabled: true,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn form_parsing_rules() {
        let p = parse_form(b"grant_type=client_credentials&scope=a+b&empty=").expect("parse");
        assert_eq!(p.get("scope").map(String::as_str), Some("a b"));
        assert!(!p.contains_key("empty"), "empty values count as absent");
        assert_eq!(
            parse_form(b"a=1&a=2").expect_err("repeat").code,
            "invalid_request"
        );
        let long = format!("scope={}", "x".repeat(5000));
        assert_eq!(
            parse_form(long.as_bytes()).expect_err("long").code,
            "invalid_request"
        );
        assert!(parse_form(b"%FF%FE=%00").is_ok(), "odd bytes never panic");
    }

    #[test]
    fn client_credentials_scope_rules() {
        let c = client(
            "confidential",
            &["client_credentials"],
            &["openid", "members.read", "members.write"],
        );
        assert_eq!(
            client_credentials_scopes(&c, None).expect("default"),
            vec!["members.read", "members.write"]
        );
        assert_eq!(
            client_credentials_scopes(&c, Some("members.read members.read")).expect("dedup"),
            vec!["members.read"]
        );
        assert_eq!(
            client_credentials_scopes(&c, Some("openid"))
                .expect_err("user scope")
                .code,
            "invalid_scope"
        );
        assert_eq!(
            client_credentials_scopes(&c, Some("admin"))
                .expect_err("unknown")
                .code,
            "invalid_scope"
        );
        let no_grant = client("confidential", &["authorization_code"], &["members.read"]);
        assert_eq!(
            client_credentials_scopes(&no_grant, None)
                .expect_err("grant")
                .code,
            "unauthorized_client"
        );
        let public = client("public", &["client_credentials"], &["members.read"]);
        assert_eq!(
            client_credentials_scopes(&public, None)
                .expect_err("public")
                .code,
            "unauthorized_client"
        );
    }
}
