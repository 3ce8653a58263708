//! The consent step: a portal that is not first-party gets a person's information only after
//! the person agreed, once per set of scopes (or every time with `prompt=consent`).

use serde_json::json;

use crate::app::AppState;
use crate::audit::RequestOrigin;
use crate::error::Error;
use crate::oidc::authorize::ClientResponse;
use crate::oidc::flow::{
    csrf_matches, csrf_token, find_login, find_session, issue_code, STEP_CONSENT,
};
use crate::oidc::service::{code_response, error_response};
use crate::store::audit;
use crate::store::{clients, consents, login_transactions, now};

/// What the consent page shows.
#[derive(Debug, Clone)]
pub struct ConsentForm {
    pub client_name: String,
    pub scopes: Vec<String>,
    pub csrf: String,
}

/// What `/consent` answers.
#[derive(Debug)]
pub enum ConsentOutcome {
    /// No live consent step for this browser (expired, already answered, or signed out).
    Expired,
    Form(ConsentForm),
    /// Answered: back to the portal with a code (agreed) or `access_denied`.
    Done(ClientResponse),
}

/// The person's decision, with what the audit log needs.
pub struct ConsentDecision {
    pub csrf: String,
    pub allow: bool,
    pub origin: RequestOrigin,
}

/// The consent form for the transaction behind `transaction`, if the browser's session is the
/// person it waits for.
pub async fn consent_form(
    state: &AppState,
    transaction: Option<String>,
    session: Option<String>,
) -> Result<ConsentOutcome, Error> {
    let (Some(transaction), Some(session)) = (transaction, session) else {
        return Ok(ConsentOutcome::Expired);
    };
    let hasher = state.hasher.clone();
    let found = state
        .store
        .run(move |conn| {
            let at = now();
            let Some(tx) =
                find_login(conn, &hasher, &transaction, at)?.filter(|tx| tx.step == STEP_CONSENT)
            else {
                return Ok(None);
            };
            let Some(s) = find_session(conn, &hasher, &session, at)? else {
                return Ok(None);
            };
            if tx.user_id.as_deref() != Some(s.record.user_id.as_str()) {
                return Ok(None);
            }
            let client = clients::find(conn, &tx.request.client_id)?;
            Ok(client.map(|c| (tx, c)))
        })
        .await?;
    Ok(match found {
        Some((tx, client)) => ConsentOutcome::Form(ConsentForm {
            client_name: client.name,
            scopes: tx.request.scope.clone(),
            csrf: csrf_token(&state.hasher, &tx.id),
        }),
        None => ConsentOutcome::Expired,
    })
}

/// Records the decision and answers the portal.
pub async fn decide(
    state: &AppState,
    transaction: Option<String>,
    session: Option<String>,
    decision: ConsentDecision,
) -> Result<ConsentOutcome, Error> {
    let (Some(transaction), Some(session)) = (transaction, session) else {
        return Ok(ConsentOutcome::Expired);
    };
    let hasher = state.hasher.clone();
    let issuer = state.settings.issuer();
    let csrf = decision.csrf.clone();
    let allow = decision.allow;
    let origin = decision.origin;
    let answered = state
        .store
        .run(move |conn| {
            crate::store::write_transaction(conn, |conn| {
                let at = now();
                let Some(tx) = find_login(conn, &hasher, &transaction, at)?
                    .filter(|tx| tx.step == STEP_CONSENT)
                else {
                    return Ok(None);
                };
                if !csrf_matches(&hasher, &tx.id, &csrf) {
                    return Ok(None);
                }
                let Some(s) = find_session(conn, &hasher, &session, at)?
                    .filter(|s| tx.user_id.as_deref() == Some(s.record.user_id.as_str()))
                else {
                    return Ok(None);
                };
                // Answered once: a second submission finds nothing.
                if !login_transactions::delete(conn, &tx.id)? {
                    return Ok(None);
                }
                let user_id = s.record.user_id.clone();
                let event = origin.event(
                    if allow {
                        "consent.granted"
                    } else {
                        "consent.denied"
                    },
                    Some(user_id.clone()),
                    Some(user_id.clone()),
                    Some(&tx.request.client_id),
                    &json!({ "scope": tx.request.scope.join(" ") }),
                );
                audit::append(conn, &event)?;
                if !allow {
                    return Ok(Some((tx.request, None)));
                }
                consents::grant(conn, &user_id, &tx.request.client_id, &tx.request.scope, at)?;
                let code = issue_code(conn, &hasher, &tx.request, &s, at)?;
                Ok(Some((tx.request, Some(code))))
            })
        })
        .await?;
    Ok(match answered {
        None => ConsentOutcome::Expired,
        Some((request, Some(code))) => ConsentOutcome::Done(code_response(&request, code, &issuer)),
        Some((request, None)) => ConsentOutcome::Done(error_response(
            &request,
            "access_denied",
            "The person declined to share this information.",
            &issuer,
        )),
    })
}
