//! The authorization endpoint as a service the HTTP handler calls: it takes what the request
//! carried and says what to answer. The sign-in pages are `authn::journey`.

use serde_json::json;

use crate::app::AppState;
use crate::audit::RequestOrigin;
use crate::error::Error;
use crate::oidc::authorize::{
    parse_parameters, validate, AuthorizationRequest, AuthorizeError, ClientResponse, ResponseMode,
};
use crate::oidc::flow::{
    consent_needed, find_session, issue_code, level_satisfies, start_consent, start_login,
};
use crate::store::now;

/// What `/authorize` answers.
#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// An error page (the client or its redirect URI could not be trusted).
    ErrorPage { description: &'static str },
    /// Back to the client (code or error).
    Respond(ClientResponse),
    /// On to the sign-in page, with a new login transaction cookie.
    SignIn { transaction: String },
    /// Signed in already, but the person must agree to share: on to the consent page, with a
    /// new transaction cookie.
    Consent { transaction: String },
}

/// What the authorization endpoint decided, inside its one database call.
enum Next {
    Code(String),
    LoginRequired,
    ConsentRequired,
    SignIn(String),
    Consent(String),
}

/// Handles an authorization request (`query` is the raw query string).
pub async fn authorize(
    state: &AppState,
    query: &str,
    session_token: Option<String>,
    origin: &RequestOrigin,
) -> Result<AuthorizeOutcome, Error> {
    let issuer = state.settings.issuer();
    let params = match parse_parameters(query) {
        Ok(p) => p,
        Err(e) => return Ok(refused(e, &issuer)),
    };
    let client = match params.get("client_id").cloned() {
        Some(id) => state.client(&id).await?,
        None => None,
    };
    let request = match validate(&params, client.as_ref()) {
        Ok(r) => r,
        Err(e) => return Ok(refused(e, &issuer)),
    };
    // id_token_hint: who the portal believes is signed in. An expired hint is still a hint;
    // its signature and issuer must hold.
    let hinted_subject = match params.get("id_token_hint") {
        None => None,
        Some(hint) => match state
            .keys
            .verify_jwt(hint)
            .filter(|(_, c)| {
                c.get("iss").and_then(serde_json::Value::as_str) == Some(issuer.as_str())
            })
            .and_then(|(_, c)| {
                c.get("sub")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
            }) {
            Some(sub) => Some(sub),
            None => {
                return Ok(AuthorizeOutcome::Respond(error_response(
                    &request,
                    "invalid_request",
                    "The id_token_hint is not a valid ID token from this service.",
                    &issuer,
                )))
            }
        },
    };
    let hasher = state.hasher.clone();
    let req = request.clone();
    let origin = origin.clone();
    let Some(client) = client else {
        return Ok(AuthorizeOutcome::ErrorPage {
            description: "refused-unknown-client",
        });
    };
    let answer = state
        .store
        .run(move |conn| {
            let at = now();
            let session = match session_token {
                Some(token) => find_session(conn, &hasher, &token, at)?,
                None => None,
            };
            // A session of someone other than the hinted person does not satisfy the request.
            let session = session.filter(|s| {
                hinted_subject
                    .as_deref()
                    .is_none_or(|sub| sub == s.record.user_id)
            });
            // A session satisfies the portal only if it reached the level the portal requires;
            // otherwise the person signs in again (steps up).
            let session = session.filter(|s| {
                s.satisfies(&req, at) && level_satisfies(&s.record.acr, &client.required_level)
            });
            Ok(match session {
                Some(session) if consent_needed(conn, &client, &session.record.user_id, &req)? => {
                    if req.prompts("none") {
                        Next::ConsentRequired
                    } else {
                        Next::Consent(start_consent(
                            conn,
                            &hasher,
                            &req,
                            &session.record.user_id,
                            at,
                        )?)
                    }
                }
                Some(session) => {
                    // Signed in to this portal without a password (single sign-on): recorded
                    // like any sign-in, for the person's account page and for auditors.
                    let user = session.record.user_id.clone();
                    let event = origin.event(
                        "signin.sso",
                        Some(user.clone()),
                        Some(user),
                        Some(&client.id),
                        &json!({ "sid": session.record.sid }),
                    );
                    crate::store::write_transaction(conn, |conn| {
                        let code = issue_code(conn, &hasher, &req, &session, at)?;
                        crate::store::audit::append(conn, &event)?;
                        Ok::<_, crate::store::StoreError>(Next::Code(code))
                    })?
                }
                None if req.prompts("none") => Next::LoginRequired,
                None => Next::SignIn(start_login(conn, &hasher, &req, at)?),
            })
        })
        .await?;
    Ok(match answer {
        Next::Code(code) => AuthorizeOutcome::Respond(code_response(&request, code, &issuer)),
        Next::LoginRequired => AuthorizeOutcome::Respond(error_response(
            &request,
            "login_required",
            "The person must sign in.",
            &issuer,
        )),
        Next::ConsentRequired => AuthorizeOutcome::Respond(error_response(
            &request,
            "consent_required",
            "The person must agree to share this information first.",
            &issuer,
        )),
        Next::SignIn(transaction) => AuthorizeOutcome::SignIn { transaction },
        Next::Consent(transaction) => AuthorizeOutcome::Consent { transaction },
    })
}

fn refused(error: AuthorizeError, issuer: &str) -> AuthorizeOutcome {
    match error {
        AuthorizeError::Page { description, .. } => AuthorizeOutcome::ErrorPage { description },
        AuthorizeError::Redirect {
            redirect_uri,
            mode,
            state,
            code,
            description,
        } => AuthorizeOutcome::Respond(client_response(
            redirect_uri,
            mode,
            vec![
                ("error", code.into()),
                ("error_description", description.into()),
            ],
            state,
            issuer,
        )),
    }
}

fn client_response(
    redirect_uri: String,
    mode: ResponseMode,
    mut params: Vec<(&'static str, String)>,
    state: Option<String>,
    issuer: &str,
) -> ClientResponse {
    if let Some(s) = state {
        params.push(("state", s));
    }
    // RFC 9207: the issuer identifies who answered, against mix-up attacks.
    params.push(("iss", issuer.to_string()));
    ClientResponse {
        redirect_uri,
        mode,
        params,
    }
}

pub(crate) fn code_response(
    request: &AuthorizationRequest,
    code: String,
    issuer: &str,
) -> ClientResponse {
    client_response(
        request.redirect_uri.clone(),
        request.response_mode,
        vec![("code", code)],
        request.state.clone(),
        issuer,
    )
}

pub(crate) fn error_response(
    request: &AuthorizationRequest,
    code: &'static str,
    description: &'static str,
    issuer: &str,
) -> ClientResponse {
    client_response(
        request.redirect_uri.clone(),
        request.response_mode,
        vec![
            ("error", code.into()),
            ("error_description", description.into()),
        ],
        request.state.clone(),
        issuer,
    )
}

/// The discovery document (OpenID Connect Discovery 1.0), listing only what is served.
pub fn discovery_document(issuer: &str) -> serde_json::Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "end_session_endpoint": format!("{issuer}/end_session"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "revocation_endpoint": format!("{issuer}/revoke"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "scopes_supported": ["openid", "profile", "email"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid",
            "email", "email_verified", "name", "given_name", "family_name", "locale", "member_code"
        ],
        "ui_locales_supported": ["fr-CA", "en"],
                "acr_values_supported": ["mfa"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    })
}
