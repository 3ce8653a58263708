//! The administrator's client operations: register a portal, change its redirect URIs,
//! rotate its secret (shown once), disable or enable it.
//!
//! Clients declared in the configuration file are written from it at every start, so they
//! are changed there, not here: these operations refuse them.

use serde_json::json;

use super::{recorded, Actor, Outcome, Reason, Refusal};
use crate::config::{ClientKind, ClientSettings, SecretString};
use crate::crypto::KeyedHasher;
use crate::oidc::clients::{record_of, SECRET_PURPOSE};
use crate::store::clients::{self, Client};
use crate::store::{now, DbConnection, StoreError, StoreResult};

/// What an administrator fills in to register a portal. The rest takes the configuration
/// file's defaults (scopes `openid profile email`, grants `authorization_code refresh_token`,
/// RS256, second factor required, consent shown).
#[derive(Debug, Clone, Default)]
pub struct NewPortal {
    pub id: String,
    pub name: String,
    /// A public client (a browser or mobile app) has no secret and must use PKCE.
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
}

/// Splits a list typed one per line or separated by spaces or commas.
pub fn uri_list(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn settings_of(new: &NewPortal, secret: Option<String>) -> ClientSettings {
    let kind = if new.public {
        ClientKind::Public
    } else {
        ClientKind::Confidential
    };
    ClientSettings {
        secret: secret.map(SecretString::new),
        redirect_uris: new.redirect_uris.clone(),
        post_logout_redirect_uris: new.post_logout_redirect_uris.clone(),
        backchannel_logout_uri: new
            .backchannel_logout_uri
            .clone()
            .filter(|u| !u.trim().is_empty()),
        ..ClientSettings::new(new.id.trim(), new.name.trim(), kind)
    }
}

fn check(settings: &ClientSettings) -> Outcome<()> {
    settings
        .check()
        .map_err(|(field, why)| Refusal::InvalidClient(format!("{field}: {why}")))
}

/// The client with this id, if the console may change it.
fn changeable(
    conn: &mut DbConnection,
    configured: &[String],
    id: &str,
) -> StoreResult<Outcome<Client>> {
    if configured.iter().any(|c| c == id) {
        return Ok(Err(Refusal::ConfiguredClient));
    }
    Ok(clients::find(conn, id)?.ok_or(Refusal::NoSuchClient))
}

/// Registers a portal. Returns its secret (confidential clients), to be shown once: only its
/// keyed hash is kept.
pub fn create(
    conn: &mut DbConnection,
    hasher: &KeyedHasher,
    configured: &[String],
    actor: &Actor,
    new: &NewPortal,
    reason: &Reason,
) -> StoreResult<Outcome<Option<String>>> {
    let secret = (!new.public).then(crate::oidc::flow::random_token);
    let settings = settings_of(new, secret.clone());
    if let Err(r) = check(&settings) {
        return Ok(Err(r));
    }
    if configured.contains(&settings.id) {
        return Ok(Err(Refusal::ConfiguredClient));
    }
    if clients::find(conn, &settings.id)?.is_some() {
        return Ok(Err(Refusal::ClientExists));
    }
    let record = record_of(&settings, hasher, now());
    let event = actor.event(
        "client.created",
        None,
        &json!({
            "client_id": record.id,
            "kind": record.kind,
            "redirect_uris": record.redirect_uris,
            "reason": reason.as_str(),
        }),
    );
    match recorded(conn, &event, |conn| clients::insert(conn, &record, now())) {
        Ok(()) => Ok(Ok(secret)),
        Err(StoreError::Conflict(_)) => Ok(Err(Refusal::ClientExists)),
        Err(e) => Err(e),
    }
}

/// Replaces the client's secret with a new one, returned to be shown once. The old secret
/// stops working at once (within the client cache's few seconds on other instances).
pub fn rotate_secret(
    conn: &mut DbConnection,
    hasher: &KeyedHasher,
    configured: &[String],
    actor: &Actor,
    id: &str,
    reason: &Reason,
) -> StoreResult<Outcome<String>> {
    let client = super::refuse_unless!(changeable(conn, configured, id)?);
    if client.kind != ClientKind::Confidential.as_str() {
        return Ok(Err(Refusal::InvalidClient(
            "secret: a public client has no secret".into(),
        )));
    }
    let secret = crate::oidc::flow::random_token();
    let hash = hasher.hash(SECRET_PURPOSE, secret.as_bytes());
    let event = actor.event(
        "client.secret_rotated",
        None,
        &json!({ "client_id": client.id, "reason": reason.as_str() }),
    );
    recorded(conn, &event, |conn| {
        clients::set_secret_hash(conn, &client.id, &hash, now())
    })?;
    Ok(Ok(secret))
}

/// Replaces the client's redirect URIs (and post-logout ones).
pub fn set_redirect_uris(
    conn: &mut DbConnection,
    configured: &[String],
    actor: &Actor,
    id: &str,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    reason: &Reason,
) -> StoreResult<Outcome<()>> {
    let mut client = super::refuse_unless!(changeable(conn, configured, id)?);
    let probe = settings_of(
        &NewPortal {
            id: client.id.clone(),
            name: client.name.clone(),
            public: client.kind != ClientKind::Confidential.as_str(),
            redirect_uris: redirect_uris.clone(),
            post_logout_redirect_uris: post_logout_redirect_uris.clone(),
            backchannel_logout_uri: client.backchannel_logout_uri.clone(),
        },
        // Only the URIs are being checked: any well-formed secret will do.
        Some(crate::oidc::flow::random_token()).filter(|_| client.kind == "confidential"),
    );
    if let Err(r) = check(&probe) {
        return Ok(Err(r));
    }
    let event = actor.event(
        "client.updated",
        None,
        &json!({
            "client_id": client.id,
            "redirect_uris": redirect_uris,
            "post_logout_redirect_uris": post_logout_redirect_uris,
            "previous_redirect_uris": client.redirect_uris,
            "reason": reason.as_str(),
        }),
    );
    client.redirect_uris = redirect_uris;
    client.post_logout_redirect_uris = post_logout_redirect_uris;
    recorded(conn, &event, |conn| clients::upsert(conn, &client, now()))?;
    Ok(Ok(()))
}

/// Disables (every request refused) or enables the client.
pub fn set_enabled(
    conn: &mut DbConnection,
    configured: &[String],
    actor: &Actor,
    id: &str,
    enabled: bool,
    reason: &Reason,
) -> StoreResult<Outcome<()>> {
    let client = super::refuse_unless!(changeable(conn, configured, id)?);
    let event = actor.event(
        if enabled {
            "client.enabled"
        } else {
            "client.disabled"
        },
        None,
        &json!({ "client_id": client.id, "reason": reason.as_str() }),
    );
    recorded(conn, &event, |conn| {
        clients::set_enabled(conn, &client.id, enabled, now())
    })?;
    Ok(Ok(()))
}
