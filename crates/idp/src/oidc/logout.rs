//! RP-Initiated Logout 1.0 (`/end_session`) and Back-Channel Logout 1.0.
//!
//! Ending a session: the SSO session ends, its refresh tokens are revoked, and every portal it
//! signed in to that registered a back-channel URI receives a signed logout token. Deliveries
//! run in the background with retries and never hold up the person.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::error::Error;
use crate::oidc::authorize::{parse_parameters, redirect_with, AuthorizeError};
use crate::oidc::flow::{find_session, Session};
use crate::oidc::keys::SigningAlg;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::clients::{self, Client};
use crate::store::{now, refresh_tokens, sso_sessions, Store};

const LOGOUT_CSRF_PURPOSE: &str = "logout_csrf";
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Attempts per back-channel delivery.
const DELIVERY_ATTEMPTS: u32 = 3;

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
    let ended = state
        .store
        .run(move |conn| {
            let at = now();
            crate::store::write_transaction(conn, |conn| {
                sso_sessions::end(conn, &record.id, at)?;
                refresh_tokens::revoke_for_session(conn, &record.user_id, &record.sid, at)?;
                record_end(conn, record, &how)
            })
        })
        .await?;
    notify(state, vec![ended]);
    Ok(())
}

/// A session that has just ended, and the portals it signed in to that want a back-channel
/// notice.
#[derive(Debug)]
pub struct EndedSession {
    record: sso_sessions::SsoSessionRecord,
    portals: Vec<Portal>,
}

/// A portal to tell: its id, how it verifies our tokens, and where it hears of logouts.
#[derive(Debug)]
struct Portal {
    client_id: String,
    alg: SigningAlg,
    uri: String,
}

/// Inside the transaction that ends `record`: its `logout` event (`how` it ended), and the
/// portals to notify once that transaction commits ([`notify`]).
pub fn record_end(
    conn: &mut crate::store::DbConnection,
    record: sso_sessions::SsoSessionRecord,
    how: &str,
) -> crate::store::StoreResult<EndedSession> {
    let event = NewAuditEvent {
        id: crate::store::audit::new_event_id(),
        occurred_at: now(),
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
    let mut portals = Vec::new();
    for id in sso_sessions::clients_of(conn, &record.sid)? {
        let Some(client) = clients::find(conn, &id)?.filter(|c| c.enabled) else {
            continue;
        };
        if let Some(uri) = client.backchannel_logout_uri {
            portals.push(Portal {
                alg: SigningAlg::parse(&client.id_token_alg).unwrap_or(SigningAlg::Rs256),
                client_id: client.id,
                uri,
            });
        }
    }
    Ok(EndedSession { record, portals })
}

/// Tells each ended session's portals, in the background: a logout token signed for each
/// (on the blocking pool, as an RSA signature takes most of a millisecond), then posted with
/// retries. Never fails the caller: the sessions have ended whatever the portals hear, and a
/// token that cannot be signed is reported in the log.
pub fn notify(state: &AppState, ended: Vec<EndedSession>) {
    for EndedSession { record, portals } in ended {
        if portals.is_empty() {
            continue;
        }
        let (keys, issuer) = (state.keys.clone(), state.settings.issuer());
        let (http, store) = (state.http.clone(), state.store.clone());
        tokio::spawn(async move {
            let sid = record.sid.clone();
            let signed = tokio::task::spawn_blocking(move || {
                logout_tokens(&keys, &issuer, &record, portals)
            })
            .await;
            match signed {
                Ok(deliveries) => deliver(http, store, sid, deliveries).await,
                Err(e) => tracing::error!(error = %e, "back-channel logout tokens not signed"),
            }
        });
    }
}

/// The logout token of `record` for each portal, with where to post it; a token that cannot be
/// signed is left out and logged.
fn logout_tokens(
    keys: &crate::oidc::keys::SigningKeyRing,
    issuer: &str,
    record: &sso_sessions::SsoSessionRecord,
    portals: Vec<Portal>,
) -> Vec<(String, String, String)> {
    let issued_at = chrono::Utc::now().timestamp();
    let mut deliveries = Vec::new();
    for Portal {
        client_id,
        alg,
        uri,
    } in portals
    {
        let signed = keys.signer(alg).and_then(|signer| {
            signer.sign_jwt(
                "logout+jwt",
                &json!({
                    "iss": issuer,
                    "aud": client_id,
                    "iat": issued_at,
                    "exp": issued_at + 120,
                    "jti": uuid::Uuid::new_v4().to_string(),
                    "sub": record.user_id,
                    "sid": record.sid,
                    "events": { BACKCHANNEL_EVENT: {} },
                }),
            )
        });
        match signed {
            Ok(token) => deliveries.push((client_id, uri, token)),
            Err(e) => {
                tracing::error!(client = %client_id, error = %e, "back-channel logout token not signed")
            }
        }
    }
    deliveries
}

/// Posts each logout token, retrying with growing pauses; records the outcome.
async fn deliver(
    http: reqwest::Client,
    store: Store,
    sid: String,
    deliveries: Vec<(String, String, String)>,
) {
    for (client_id, uri, token) in deliveries {
        let mut delivered = false;
        for attempt in 0..DELIVERY_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt))).await;
            }
            let sent = http
                .post(&uri)
                .form(&[("logout_token", token.as_str())])
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    delivered = true;
                    break;
                }
                Ok(r) => {
                    tracing::warn!(client = %client_id, status = r.status().as_u16(), attempt, "back-channel logout refused")
                }
                Err(e) => {
                    tracing::warn!(client = %client_id, error = %e, attempt, "back-channel logout failed")
                }
            }
        }
        let event = NewAuditEvent {
            id: crate::store::audit::new_event_id(),
            occurred_at: now(),
            event_type: if delivered {
                "logout.backchannel_sent".into()
            } else {
                "logout.backchannel_failed".into()
            },
            actor: None,
            subject: None,
            client_id: Some(client_id),
            ip: None,
            user_agent: None,
            request_id: None,
            detail: json!({ "sid": sid }).to_string(),
        };
        if let Err(e) = store.run(move |conn| audit::append(conn, &event)).await {
            tracing::warn!(error = %e, "could not record a back-channel logout");
        }
    }
}
