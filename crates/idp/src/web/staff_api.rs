//! `/staff/api/...`: the console's operations as JSON, for automation (see
//! `docs/openapi/staff.yaml`).
//!
//! The bearer token must be a live access token of the console's own client, or of a client
//! registered with the `staff` scope that was granted it; a portal's ordinary token is
//! refused even when its person holds a role. The person's roles then decide, as in the
//! console: any role reads, `helpdesk` or `admin` acts on people, `admin` manages clients.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::accounts::ACCOUNT_CLIENT_ID;
use crate::app::AppState;
use crate::error::Error;
use crate::oidc::error::OAuthError;
use crate::oidc::userinfo::live_access_token;
use crate::staff::{
    self, portals, Actor, PersonAction, PersonQuery, PersonStatus, Reason, Refusal, StaffRights,
};
use crate::web::middleware::{bearer_of, request_origin};

/// The scope a client other than the console needs for this API.
pub const STAFF_SCOPE: &str = "staff";

/// A live access token fit for the staff APIs (this one and the audit log's): one of the
/// consoles' own client, or one granted the `staff` scope. A portal's token is refused even
/// when its person holds a role, so a portal cannot act or read with it.
pub(crate) async fn staff_token(
    state: &AppState,
    req: &HttpRequest,
) -> Result<crate::oidc::userinfo::AccessToken, Error> {
    let access = live_access_token(state, &bearer_of(req)?).await?;
    if access.client_id != ACCOUNT_CLIENT_ID && !access.scope.iter().any(|s| s == STAFF_SCOPE) {
        return Err(OAuthError::insufficient_scope(
            "This API needs a token of the staff console or with the staff scope.",
        )
        .into());
    }
    Ok(access)
}

/// The caller, if the token and their roles allow `allowed`.
async fn caller(
    req: &HttpRequest,
    state: &AppState,
    allowed: fn(&StaffRights) -> bool,
) -> Result<Actor, Error> {
    let access = staff_token(state, req).await?;
    let sub = access.sub.clone();
    let rights = state
        .store
        .run(move |conn| staff::rights_of(conn, &sub))
        .await?;
    if !allowed(&rights) {
        return Err(OAuthError::insufficient_scope("Your roles do not allow this.").into());
    }
    Ok(Actor {
        id: access.sub,
        origin: request_origin(req),
    })
}

fn json(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// A refused action: 422 with an RFC 6749-style error object saying why.
fn refused(refusal: &Refusal) -> HttpResponse {
    let status = match refusal {
        Refusal::NoSuchPerson | Refusal::NoSuchClient => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    json(
        status,
        &serde_json::json!({ "error": "invalid_request", "error_description": refusal.to_string() }),
    )
}

/// `?q=`.
#[derive(Deserialize)]
pub struct FindQuery {
    #[serde(default)]
    q: String,
}

/// `GET /staff/api/people?q=`: people by email, member code or name.
pub async fn find(
    req: HttpRequest,
    query: web::Query<FindQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    caller(&req, &state, |r| r.read).await?;
    let parsed = match PersonQuery::parse(&query.q) {
        Ok(q) => q,
        Err(r) => return Ok(refused(&r)),
    };
    let hasher = state.hasher.clone();
    let found = state
        .store
        .run(move |conn| staff::find_with_status(conn, &hasher, &parsed))
        .await?;
    let people = found
        .people
        .iter()
        .map(PersonStatus::to_json)
        .collect::<Vec<_>>();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "people": people, "more": found.more }),
    ))
}

/// `GET /staff/api/people/{id}`.
pub async fn person(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    caller(&req, &state, |r| r.read).await?;
    let (hasher, id) = (state.hasher.clone(), path.into_inner());
    let status = state
        .store
        .run(move |conn| staff::status(conn, &hasher, &id, crate::store::now()))
        .await?;
    Ok(match status {
        Some(s) => json(StatusCode::OK, &s.to_json()),
        None => refused(&Refusal::NoSuchPerson),
    })
}

/// Body of an action.
#[derive(Deserialize)]
pub struct ActionBody {
    #[serde(default)]
    reason: String,
    /// The new contact email (`email` action).
    #[serde(default)]
    email: String,
}

/// `POST /staff/api/people/{id}/{action}`: `reset-2fa`, `unlock`, `email`, `invite`,
/// `disable`, `enable`, `end-sessions`.
pub async fn person_action(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Json<ActionBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let actor = caller(&req, &state, |r| r.act).await?;
    let (id, segment) = path.into_inner();
    let Some(action) = PersonAction::parse(&segment, &body.email) else {
        return Err(OAuthError::invalid_request("Unknown action.").into());
    };
    let reason = match Reason::parse(&body.reason) {
        Ok(r) => r,
        Err(r) => return Ok(refused(&r)),
    };
    Ok(
        match staff::act(&state, &actor, &id, action, &reason).await? {
            Ok(()) => json(
                StatusCode::OK,
                &serde_json::json!({ "ok": true, "action": segment }),
            ),
            Err(r) => refused(&r),
        },
    )
}

/// `GET /staff/api/clients`.
pub async fn clients(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    caller(&req, &state, |r| r.read).await?;
    let configured = state.settings.configured_client_ids();
    let listed = state.store.run(crate::store::clients::list).await?;
    let rows: Vec<_> = listed
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id,
                "name": c.name,
                "kind": c.kind,
                "enabled": c.enabled,
                "redirect_uris": c.redirect_uris,
                "post_logout_redirect_uris": c.post_logout_redirect_uris,
                "from_configuration": configured.contains(&c.id),
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "clients": rows }),
    ))
}

/// Body of a client registration.
#[derive(Deserialize)]
pub struct NewClientBody {
    id: String,
    name: String,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    backchannel_logout_uri: Option<String>,
    #[serde(default)]
    reason: String,
}

/// `POST /staff/api/clients`: registers a portal; answers its secret once.
pub async fn create_client(
    req: HttpRequest,
    body: web::Json<NewClientBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let actor = caller(&req, &state, |r| r.admin).await?;
    let reason = match Reason::parse(&body.reason) {
        Ok(r) => r,
        Err(r) => return Ok(refused(&r)),
    };
    let body = body.into_inner();
    let new = portals::NewPortal {
        id: body.id,
        name: body.name,
        public: body.public,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        backchannel_logout_uri: body.backchannel_logout_uri,
    };
    let (hasher, configured) = (state.hasher.clone(), state.settings.configured_client_ids());
    let id = new.id.clone();
    let outcome = state
        .store
        .run(move |conn| portals::create(conn, &hasher, &configured, &actor, &new, &reason))
        .await?;
    Ok(match outcome {
        Ok(secret) => json(
            StatusCode::CREATED,
            &serde_json::json!({ "client_id": id, "client_secret": secret }),
        ),
        Err(r) => refused(&r),
    })
}

/// Body of a client operation.
#[derive(Deserialize)]
pub struct ReasonBody {
    #[serde(default)]
    reason: String,
}

/// `POST /staff/api/clients/{id}/secret`: a new secret, answered once.
pub async fn rotate_secret(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ReasonBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let actor = caller(&req, &state, |r| r.admin).await?;
    let reason = match Reason::parse(&body.reason) {
        Ok(r) => r,
        Err(r) => return Ok(refused(&r)),
    };
    let (hasher, configured, id) = (
        state.hasher.clone(),
        state.settings.configured_client_ids(),
        path.into_inner(),
    );
    let client_id = id.clone();
    let outcome = state
        .store
        .run(move |conn| {
            portals::rotate_secret(conn, &hasher, &configured, &actor, &client_id, &reason)
        })
        .await?;
    state.client_cache.forget(&id);
    Ok(match outcome {
        Ok(secret) => json(
            StatusCode::OK,
            &serde_json::json!({ "client_id": id, "client_secret": secret }),
        ),
        Err(r) => refused(&r),
    })
}

/// `GET /staff/api/policies`: the sign-in policy in force and each value's bounds.
pub async fn policies(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    caller(&req, &state, |r| r.read).await?;
    Ok(json(StatusCode::OK, &policy_json(&state)))
}

fn policy_json(state: &AppState) -> serde_json::Value {
    let policy = state.policy.get();
    let bounds: serde_json::Map<String, serde_json::Value> = crate::authn::sign_in_policy::BOUNDS
        .iter()
        .map(|(name, min, max)| {
            (
                name.to_string(),
                serde_json::json!({ "min": min, "max": max }),
            )
        })
        .collect();
    serde_json::json!({ "policy": policy, "bounds": bounds })
}

/// Body of a policy change.
#[derive(Deserialize)]
pub struct PolicyBody {
    /// Field name to its new value; fields not named keep theirs.
    #[serde(default)]
    changes: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    reason: String,
}

/// `POST /staff/api/policies`: changes values within their bounds (admin role).
pub async fn change_policies(
    req: HttpRequest,
    body: web::Json<PolicyBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let actor = caller(&req, &state, |r| r.admin).await?;
    let reason = match Reason::parse(&body.reason) {
        Ok(r) => r,
        Err(r) => return Ok(refused(&r)),
    };
    if let Some(unknown) = body.changes.keys().find(|k| {
        !crate::authn::sign_in_policy::BOUNDS
            .iter()
            .any(|(name, _, _)| name == k)
    }) {
        return Ok(refused(&Refusal::PolicyOutOfBounds(format!(
            "unknown policy field `{unknown}`"
        ))));
    }
    let typed: Vec<(String, String)> = body
        .changes
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    let in_force = state.policy.clone();
    let outcome = state
        .store
        .run(move |conn| staff::change_policy(conn, &in_force, &actor, &typed, &reason))
        .await?;
    Ok(match outcome {
        Ok(_) => json(StatusCode::OK, &policy_json(&state)),
        Err(r) => refused(&r),
    })
}
