//! Token revocation (RFC 7009) and introspection (RFC 7662).

use serde_json::{json, Value};

use crate::app::AppState;
use crate::error::Error;
use crate::oidc::clients::{is_confidential, ClientCredentials};
use crate::oidc::error::OAuthError;
use crate::oidc::flow::refresh_hash;
use crate::oidc::token::{audit_event, authenticated_client, parse_form, TokenInput};
use crate::oidc::userinfo::check_access_token;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::clients::Client;
use crate::store::{now, refresh_tokens, revoked_access_tokens, users};

struct Request {
    client: Client,
    token: String,
    input: TokenInput,
}

async fn read(state: &AppState, mut input: TokenInput) -> Result<Request, Error> {
    if !input.form_encoded {
        return Err(OAuthError::invalid_request(
            "The body must be application/x-www-form-urlencoded.",
        )
        .into());
    }
    let params = parse_form(&std::mem::take(&mut input.body))?;
    let credentials = ClientCredentials::from_request(input.authorization.as_deref(), &params)?;
    let client = authenticated_client(state, &credentials).await?;
    let token = params
        .get("token")
        .cloned()
        .ok_or(OAuthError::invalid_request("token is required."))?;
    Ok(Request {
        client,
        token,
        input,
    })
}

fn event(event_type: &str, client_id: &str, input: &TokenInput, detail: Value) -> NewAuditEvent {
    audit_event(event_type, client_id, None, &input.origin, detail)
}

/// Revokes an access or refresh token of the calling client. Unknown and expired tokens are
/// answered with success (RFC 7009 2.2); a valid token issued to another client is refused
/// (RFC 7009 2.1) and left alone.
pub async fn revoke(state: &AppState, input: TokenInput) -> Result<(), Error> {
    let Request {
        client,
        token,
        input,
    } = read(state, input).await?;
    let at = now();
    if let Some(access) = check_access_token(state, &token, chrono::Utc::now().timestamp()) {
        if access.client_id != client.id {
            return Err(NOT_YOURS.into());
        }
        let expires = chrono::DateTime::from_timestamp(access.exp, 0)
            .map(|t| t.naive_utc())
            .unwrap_or(at);
        let e = event(
            "token.revoked",
            &client.id,
            &input,
            json!({ "token": "access", "jti": access.jti }),
        );
        let client_id = client.id.clone();
        state
            .store
            .run(move |conn| {
                revoked_access_tokens::revoke(conn, &access.jti, &client_id, expires, at)?;
                audit::append(conn, &e)
            })
            .await?;
        return Ok(());
    }
    let hash = refresh_hash(&state.hasher, &token);
    let client_id = client.id.clone();
    let refused = state
        .store
        .run(move |conn| {
            if let Some(record) = refresh_tokens::find(conn, &hash)? {
                if record.client_id != client_id {
                    return Ok(record.revoked_at.is_none() && record.expires_at > now());
                }
                if record.revoked_at.is_none() {
                    // Revoking a refresh token ends the whole grant it belongs to.
                    refresh_tokens::revoke_family(conn, &record.family_id, at)?;
                    audit::append(
                        conn,
                        &event(
                            "token.revoked",
                            &client_id,
                            &input,
                            json!({ "token": "refresh", "family": record.family_id }),
                        ),
                    )?;
                }
            }
            Ok(false)
        })
        .await?;
    if refused {
        return Err(NOT_YOURS.into());
    }
    Ok(())
}

/// RFC 7009 2.1: the token was not issued to the client asking.
const NOT_YOURS: OAuthError =
    OAuthError::invalid_request("This token was not issued to the requesting client.");

/// Describes a token to an authenticated confidential client (a resource server or the
/// client itself). Access tokens are described to any such client; refresh tokens only to the
/// client they belong to.
pub async fn introspect(state: &AppState, input: TokenInput) -> Result<Value, Error> {
    let Request {
        client,
        token,
        input,
    } = read(state, input).await?;
    if !is_confidential(&client) {
        return Err(
            OAuthError::invalid_client("Introspection needs a confidential client.").into(),
        );
    }
    let issuer = state.settings.issuer();
    let at = now();
    let access = check_access_token(state, &token, chrono::Utc::now().timestamp());
    let hash = refresh_hash(&state.hasher, &token);
    let caller = client.id.clone();
    let answer = state
        .store
        .read(move |conn| {
            let answer = if let Some(a) = access {
                let person_ok = a.sub == a.client_id
                    || users::find_by_id(conn, &a.sub)?.is_some_and(|u| !u.disabled);
                if person_ok && !revoked_access_tokens::is_revoked(conn, &a.jti)? {
                    json!({
                        "active": true,
                        "token_type": "Bearer",
                        "scope": a.scope.join(" "),
                        "client_id": a.client_id,
                        "sub": a.sub,
                        "exp": a.exp,
                        "iat": a.iat,
                        "iss": issuer,
                        "aud": issuer,
                        "jti": a.jti,
                    })
                } else {
                    json!({ "active": false })
                }
            } else {
                match refresh_tokens::find(conn, &hash)? {
                    Some(r)
                        if r.client_id == caller
                            && r.revoked_at.is_none()
                            && r.rotated_at.is_none()
                            && r.expires_at > at =>
                    {
                        json!({
                            "active": true,
                            "token_type": "refresh_token",
                            "scope": r.scope,
                            "client_id": r.client_id,
                            "sub": r.user_id,
                            "exp": r.expires_at.and_utc().timestamp(),
                            "iat": r.created_at.and_utc().timestamp(),
                            "iss": issuer,
                        })
                    }
                    _ => json!({ "active": false }),
                }
            };
            Ok(answer)
        })
        .await?;
    // Reads above, the record through the group-committing writer: introspections under load
    // share commits instead of queueing one write transaction each. The answer still leaves
    // only once its event is durable.
    state
        .audit
        .record(event(
            "token.introspected",
            &client.id,
            &input,
            json!({ "active": answer["active"], "jti": answer.get("jti") }),
        ))
        .await?;
    Ok(answer)
}
