//! The authorization endpoint and the provisional password sign-in, as services the HTTP
//! handlers call: they take what the request carried and say what to answer.

use diesel::Connection;
use serde_json::json;

use crate::app::AppState;
use crate::audit::RequestOrigin;
use crate::error::Error;
use crate::oidc::authorize::{
    parse_parameters, validate, AuthorizationRequest, AuthorizeError, ClientResponse, ResponseMode,
};
use crate::oidc::flow::{
    consent_needed, create_session, csrf_matches, csrf_token, find_login, find_session, issue_code,
    start_consent, start_login, Authentication, STEP_CONSENT, STEP_PASSWORD,
};
use crate::store::audit::{self, NewAuditEvent};
use crate::store::{clients, login_transactions, now, users};

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
) -> Result<AuthorizeOutcome, Error> {
    let issuer = state.settings.issuer();
    let params = match parse_parameters(query) {
        Ok(p) => p,
        Err(e) => return Ok(refused(e, &issuer)),
    };
    let client = match params.get("client_id").cloned() {
        Some(id) => state.store.run(move |c| clients::find(c, &id)).await?,
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
    let Some(client) = client else {
        return Ok(AuthorizeOutcome::ErrorPage {
            description: "The portal that sent you here is not registered.",
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
            Ok(match session.filter(|s| s.satisfies(&req, at)) {
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
                Some(session) => Next::Code(issue_code(conn, &hasher, &req, &session, at)?),
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

/// The sign-in form's content.
#[derive(Debug, Clone)]
pub struct SignInForm {
    pub client_name: String,
    pub csrf: String,
    pub email: String,
    pub error: Option<&'static str>,
}

/// What `/login` answers.
#[derive(Debug)]
pub enum SignInOutcome {
    /// No live login transaction (expired, already used, or a forged form).
    Expired,
    /// Show the form (again).
    Form(SignInForm),
    /// Signed in: set the session cookie, clear the transaction cookie, go back to the portal.
    Done {
        response: ClientResponse,
        session_token: String,
    },
    /// Signed in, but the person must agree to share first: set the session cookie, keep the
    /// transaction, go to the consent page.
    Consent { session_token: String },
}

/// What the sign-in's database call decided.
enum SignedIn {
    Code(String, String),
    Consent(String),
}

/// The sign-in form for the transaction behind `transaction`.
pub async fn sign_in_form(
    state: &AppState,
    transaction: Option<String>,
) -> Result<SignInOutcome, Error> {
    let Some(token) = transaction else {
        return Ok(SignInOutcome::Expired);
    };
    let hasher = state.hasher.clone();
    let found = state
        .store
        .run(move |conn| {
            let Some(tx) =
                find_login(conn, &hasher, &token, now())?.filter(|tx| tx.step == STEP_PASSWORD)
            else {
                return Ok(None);
            };
            let client = clients::find(conn, &tx.request.client_id)?;
            Ok(Some((tx, client)))
        })
        .await?;
    Ok(match found {
        Some((tx, client)) => SignInOutcome::Form(SignInForm {
            client_name: client.map(|c| c.name).unwrap_or_default(),
            csrf: csrf_token(&state.hasher, &tx.id),
            email: tx.request.login_hint.clone().unwrap_or_default(),
            error: None,
        }),
        None => SignInOutcome::Expired,
    })
}

/// What the person submitted. No `Debug`: it holds a password.
pub struct SignInSubmission {
    pub csrf: String,
    pub email: String,
    pub password: String,
    pub origin: RequestOrigin,
}

const WRONG_CREDENTIALS: &str =
    "Courriel ou mot de passe incorrect. / Incorrect email or password.";

/// Checks email and password; on success opens an SSO session and issues the code.
pub async fn sign_in(
    state: &AppState,
    transaction: Option<String>,
    mut submission: SignInSubmission,
) -> Result<SignInOutcome, Error> {
    let password = std::mem::take(&mut submission.password);
    let Some(token) = transaction else {
        return Ok(SignInOutcome::Expired);
    };
    let hasher = state.hasher.clone();
    let email = submission.email.trim().to_string();
    let lookup_email = email.clone();
    let found = state
        .store
        .run(move |conn| {
            let Some(tx) =
                find_login(conn, &hasher, &token, now())?.filter(|tx| tx.step == STEP_PASSWORD)
            else {
                return Ok(None);
            };
            let client = clients::find(conn, &tx.request.client_id)?;
            let user = users::find_by_email(conn, &lookup_email)?;
            Ok(Some((tx, client, user)))
        })
        .await?;
    let Some((tx, client, user)) = found else {
        return Ok(SignInOutcome::Expired);
    };
    if !csrf_matches(&state.hasher, &tx.id, &submission.csrf) {
        return Ok(SignInOutcome::Expired);
    }
    let usable = user.filter(|u| !u.disabled && !u.must_reset);
    let stored_hash = usable.as_ref().and_then(|u| u.password_hash.clone());
    let matched = state.passwords.verify(password, stored_hash).await;
    let client_id = tx.request.client_id.clone();
    let Some(user) = usable.filter(|_| matched) else {
        let event = event(
            "signin.failed",
            None,
            &client_id,
            &submission,
            json!({ "reason": "bad_credentials" }),
        );
        state.store.run(move |c| audit::append(c, &event)).await?;
        return Ok(SignInOutcome::Form(SignInForm {
            client_name: client.map(|c| c.name).unwrap_or_default(),
            csrf: submission.csrf,
            email,
            error: Some(WRONG_CREDENTIALS),
        }));
    };

    let hasher = state.hasher.clone();
    let request = tx.request.clone();
    let auth = Authentication {
        user_id: user.id.clone(),
        amr: vec!["pwd".into()],
        acr: "pwd".into(),
        ip: submission.origin.ip.clone(),
        user_agent: submission.origin.user_agent.clone(),
    };
    let succeeded = event(
        "signin.succeeded",
        Some(user.id.clone()),
        &client_id,
        &submission,
        json!({ "amr": ["pwd"] }),
    );
    let tx_id = tx.id.clone();
    let Some(client) = client else {
        return Ok(SignInOutcome::Expired);
    };
    let done = state
        .store
        .run(move |conn| {
            // All or nothing: a failure leaves the login transaction usable, not half spent.
            conn.transaction(|conn| {
                let at = now();
                let consent = consent_needed(conn, &client, &auth.user_id, &request)?;
                // The transaction is spent once: a second submission finds it moved on or gone,
                // before anything is written.
                let spent = if consent {
                    login_transactions::advance(
                        conn,
                        &tx_id,
                        STEP_PASSWORD,
                        STEP_CONSENT,
                        Some(&auth.user_id),
                    )?
                } else {
                    login_transactions::delete(conn, &tx_id)?
                };
                if !spent {
                    return Ok(None);
                }
                let (session_token, session) = create_session(conn, &hasher, &auth, at)?;
                audit::append(conn, &succeeded)?;
                if consent {
                    return Ok(Some(SignedIn::Consent(session_token)));
                }
                let code = issue_code(conn, &hasher, &request, &session, at)?;
                Ok(Some(SignedIn::Code(session_token, code)))
            })
        })
        .await?;
    Ok(match done {
        None => SignInOutcome::Expired,
        Some(SignedIn::Consent(session_token)) => SignInOutcome::Consent { session_token },
        Some(SignedIn::Code(session_token, code)) => SignInOutcome::Done {
            response: code_response(&tx.request, code, &state.settings.issuer()),
            session_token,
        },
    })
}

fn event(
    event_type: &str,
    subject: Option<String>,
    client_id: &str,
    submission: &SignInSubmission,
    detail: serde_json::Value,
) -> NewAuditEvent {
    submission.origin.event(
        event_type,
        subject.clone(),
        subject,
        Some(client_id),
        &detail,
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
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    })
}
