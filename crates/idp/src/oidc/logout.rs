//! RP-Initiated Logout 1.0 (`/end_session`) and Back-Channel Logout 1.0.
//!
//! Ending a session: the SSO session ends, its refresh tokens are revoked, and every portal it
//! signed in to that registered a back-channel URI receives a signed logout token. The notices
//! are queued with the logout and delivered in the background ([`crate::oidc::backchannel`]).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::error::Error;
use crate::oidc::authorize::{parse_parameters, redirect_with, AuthorizeError};
use crate::oidc::flow::{find_session, Session};
use crate::store::audit::{self, NewAuditEvent};
use crate::store::clients::{self, Client};
use crate::store::{backchannel_deliveries, now, refresh_tokens, sso_sessions};

const LOGOUT_CSRF_PURPOSE: &str = "logout_csrf";

/// What `/end_session` answers.
#[derive(Debug)]
pub enum EndSessionOutcome {
    /// The request cannot be trusted (bad hint, unregistered return address).
    ErrorPage { description: &'static str },
    /// Ask the person to confirm (no hint tied to their session).
    Confirm {
        csrf: String,
        client_name: Option<String>,
        /// Parameters to post back with the confirmation.
        fields: Vec<(String, String)>,
    },
    /// Signed out (or nothing to end): clear the cookie, then go back or show a page.
    Done { redirect: Option<String> },
}

struct Checked {
    client: Option<Client>,
    redirect: Option<String>,
    hint_sid: Option<String>,
    fields: Vec<(String, String)>,
}

async fn check(
    state: &AppState,
    params: &BTreeMap<String, String>,
) -> Result<Result<Checked, &'static str>, Error> {
    let issuer = state.settings.issuer();
    let mut hint_sid = None;
    let mut hint_client = None;
    if let Some(hint) = params.get("id_token_hint") {
        // An expired ID token is still a valid hint; its signature and issuer must hold.
        let Some((_, claims)) = state.keys.verify_jwt(hint) else {
            return Ok(Err("logout-bad-hint"));
        };
        if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
            return Ok(Err("logout-foreign-hint"));
        }
        hint_client = match claims.get("aud") {
            Some(Value::String(a)) => Some(a.clone()),
            Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        hint_sid = claims
            .get("sid")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let client_id = match (params.get("client_id"), &hint_client) {
        (Some(c), Some(h)) if c != h => {
            return Ok(Err("client_id does not match the id_token_hint."));
        }
        (Some(c), _) => Some(c.clone()),
        (None, h) => h.clone(),
    };
    let client = match client_id {
        Some(id) => state.store.run(move |c| clients::find(c, &id)).await?,
        None => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let allowed = client
                .as_ref()
                .is_some_and(|c| c.enabled && c.post_logout_redirect_uris.iter().any(|u| u == uri));
            if !allowed {
                return Ok(Err("logout-redirect-unregistered"));
            }
            let mut with = Vec::new();
            if let Some(s) = params.get("state") {
                with.push(("state", s.as_str()));
            }
            Some(redirect_with(uri, &with))
        }
    };
    let fields = ["client_id", "post_logout_redirect_uri", "state"]
        .iter()
        .filter_map(|k| params.get(*k).map(|v| (k.to_string(), v.clone())))
        .chain(
            client
                .as_ref()
                .filter(|_| !params.contains_key("client_id"))
                .map(|c| ("client_id".to_string(), c.id.clone())),
        )
        .collect();
    Ok(Ok(Checked {
        client,
        redirect,
        hint_sid,
        fields,
    }))
}

fn csrf(state: &AppState, session: &Session) -> String {
    B64URL.encode(
        state
            .hasher
            .hash(LOGOUT_CSRF_PURPOSE, session.record.id.as_bytes()),
    )
}

/// Handles `GET|POST /end_session` with the raw parameters.
pub async fn end_session(
    state: &AppState,
    raw: &str,
    session_token: Option<String>,
) -> Result<EndSessionOutcome, Error> {
    let params = match parse_parameters(raw) {
        Ok(p) => p,
        Err(AuthorizeError::Page { description, .. }) => {
            return Ok(EndSessionOutcome::ErrorPage { description })
        }
        Err(AuthorizeError::Redirect { description, .. }) => {
            return Ok(EndSessionOutcome::ErrorPage { description })
        }
    };
    let checked = match check(state, &params).await? {
        Ok(c) => c,
        Err(description) => return Ok(EndSessionOutcome::ErrorPage { description }),
    };
    let session = current_session(state, session_token).await?;
    let Some(session) = session else {
        return Ok(EndSessionOutcome::Done {
            redirect: checked.redirect,
        });
    };
    if checked.hint_sid.as_deref() == Some(session.record.sid.as_str()) {
        end(state, &session, "rp_initiated").await?;
        return Ok(EndSessionOutcome::Done {
            redirect: checked.redirect,
        });
    }
    Ok(EndSessionOutcome::Confirm {
        csrf: csrf(state, &session),
        client_name: checked.client.map(|c| c.name),
        fields: checked.fields,
    })
}

/// Handles the confirmation form.
pub async fn confirm(
    state: &AppState,
    raw: &str,
    session_token: Option<String>,
) -> Result<EndSessionOutcome, Error> {
    let mut params = match parse_parameters(raw) {
        Ok(p) => p,
        Err(_) => {
            return Ok(EndSessionOutcome::ErrorPage {
                description: "logout-form-invalid",
            })
        }
    };
    let submitted = params.remove("csrf").unwrap_or_default();
    params.remove("id_token_hint");
    let checked = match check(state, &params).await? {
        Ok(c) => c,
        Err(description) => return Ok(EndSessionOutcome::ErrorPage { description }),
    };
    let Some(session) = current_session(state, session_token).await? else {
        return Ok(EndSessionOutcome::Done {
            redirect: checked.redirect,
        });
    };
    let expected = csrf(state, &session);
    if aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), submitted.as_bytes())
        .is_err()
    {
        return Ok(EndSessionOutcome::ErrorPage {
            description: "logout-form-expired",
        });
    }
    end(state, &session, "confirmed").await?;
    Ok(EndSessionOutcome::Done {
        redirect: checked.redirect,
    })
}

async fn current_session(
    state: &AppState,
    token: Option<String>,
) -> Result<Option<Session>, Error> {
    let Some(token) = token else {
        return Ok(None);
    };
    let hasher = state.hasher.clone();
    Ok(state
        .store
        .run(move |conn| find_session(conn, &hasher, &token, now()))
        .await?)
}

/// Ends `session`: the session, its refresh tokens, and back-channel notices to its portals.
pub async fn end(state: &AppState, session: &Session, how: &str) -> Result<(), Error> {
    let record = session.record.clone();
    let how = how.to_string();
    state
        .store
        .run(move |conn| {
            let at = now();
            crate::store::write_transaction(conn, |conn| {
                sso_sessions::end(conn, &record.id, at)?;
                refresh_tokens::revoke_for_session(conn, &record.user_id, &record.sid, at)?;
                record_end(conn, &record, &how)
            })
        })
        .await?;
    state.backchannel.wake();
    Ok(())
}

/// Inside the transaction that ends `record`: its `logout` event (`how` it ended), and a
/// queued back-channel notice for each portal it signed in to that registered a URI, so the
/// notices commit or roll back with the logout. Once the transaction has committed, the
/// caller wakes the delivery task (`state.backchannel.wake()`).
pub fn record_end(
    conn: &mut crate::store::DbConnection,
    record: &sso_sessions::SsoSessionRecord,
    how: &str,
) -> crate::store::StoreResult<()> {
    let at = now();
    let event = NewAuditEvent {
        id: crate::store::audit::new_event_id(),
        occurred_at: at,
        event_type: "logout".into(),
        actor: Some(record.user_id.clone()),
        subject: Some(record.user_id.clone()),
        client_id: None,
        ip: None,
        user_agent: None,
        request_id: None,
        detail: json!({ "sid": record.sid, "how": how }).to_string(),
    };
    audit::append(conn, &event)?;
    for id in sso_sessions::clients_of(conn, &record.sid)? {
        let wants_notice = clients::find(conn, &id)?
            .is_some_and(|c| c.enabled && c.backchannel_logout_uri.is_some());
        if wants_notice {
            backchannel_deliveries::enqueue(
                conn,
                &backchannel_deliveries::Delivery {
                    id: uuid::Uuid::new_v4().to_string(),
                    client_id: id,
                    user_id: record.user_id.clone(),
                    sid: record.sid.clone(),
                    attempts: 0,
                    next_attempt_at: at,
                    created_at: at,
                },
            )?;
        }
    }
    Ok(())
}
