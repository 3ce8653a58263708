//! The person's own account: the `/account` page and the account API portals read.
//!
//! The page is a client of this provider like any portal. It signs in through `/authorize`
//! with PKCE, exchanges its code at the token service, and acts only for the subject of the
//! access token it obtained, while that person's SSO session lasts. It grants nothing that a
//! sign-in did not.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::AppState;
use crate::audit::RequestOrigin;
use crate::config::{ClientKind, ClientSettings};
use crate::error::Error;
use crate::i18n::Lang;
use crate::oidc::flow::{csrf_matches, csrf_token, find_session, random_token, Session};
use crate::oidc::token::{exchange, TokenInput};
use crate::oidc::userinfo::{check_access_token, AccessToken};
use crate::store::users::{MfaMethod, User};
use crate::store::{audit, clients, now, sso_sessions, users};

/// The client id of the account page, registered at start.
pub const ACCOUNT_CLIENT_ID: &str = "guichet-account";
/// Audit events that count as a sign-in to a portal.
pub const SIGN_IN_EVENTS: [&str; 2] = ["signin.succeeded", "signin.sso"];
/// How many recent sign-ins the page and the API show.
pub const RECENT_SIGN_INS: i64 = 10;
const PENDING_CONTEXT: &[u8] = b"account-page-login";

/// The account page's registration: a public client (PKCE) on this provider's own address.
pub fn client_settings(issuer: &str) -> ClientSettings {
    ClientSettings {
        id: ACCOUNT_CLIENT_ID.into(),
        name: "Guichet".into(),
        kind: ClientKind::Public,
        secret: None,
        redirect_uris: vec![format!("{issuer}/account/callback")],
        post_logout_redirect_uris: vec![format!("{issuer}/account")],
        backchannel_logout_uri: None,
        scopes: ["openid", "profile", "email"].map(String::from).to_vec(),
        grants: vec!["authorization_code".into()],
        id_token_alg: "ES256".into(),
        first_party: true,
        first_factor: "password".into(),
        required_level: crate::oidc::flow::ACR_MFA.into(),
        jwks: None,
    }
}

/// What the account page keeps between sending the person to `/authorize` and the callback:
/// sealed with the master key into a short-lived cookie, so no server state is needed.
#[derive(Serialize, Deserialize)]
struct PendingLogin {
    state: String,
    nonce: String,
    verifier: String,
    /// The page that asked (the account page or the audit console).
    page: OwnPage,
}

/// The provider's own pages that sign in through the account client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OwnPage {
    Account,
    AuditConsole,
    StaffConsole,
}

impl OwnPage {
    /// Where the page lives.
    pub fn path(self) -> &'static str {
        match self {
            Self::Account => "/account",
            Self::AuditConsole => "/audit",
            Self::StaffConsole => "/staff",
        }
    }
}

/// Where to send the person, and the sealed cookie value to set meanwhile.
#[derive(Debug)]
pub struct AccountLogin {
    pub authorize_path: String,
    pub pending: String,
}

/// Starts the account page's own sign-in: an authorization request with PKCE, state and
/// nonce, in the page's language.
pub fn begin_login(state: &AppState, lang: Lang, page: OwnPage) -> Result<AccountLogin, Error> {
    let pending = PendingLogin {
        state: random_token(),
        nonce: random_token(),
        verifier: random_token(),
        page,
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pending.verifier.as_bytes());
    let challenge = B64URL.encode(digest.as_ref());
    let redirect = format!("{}/account/callback", state.settings.issuer());
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", ACCOUNT_CLIENT_ID)
        .append_pair("redirect_uri", &redirect)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email")
        .append_pair("state", &pending.state)
        .append_pair("nonce", &pending.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("ui_locales", lang.tag())
        .finish();
    let plain = serde_json::to_vec(&pending).map_err(std::io::Error::other)?;
    let sealed = state.master_key.seal(&plain, PENDING_CONTEXT)?;
    Ok(AccountLogin {
        authorize_path: format!("/authorize?{query}"),
        pending: B64URL.encode(sealed),
    })
}

/// What the authorization server sent back to `/account/callback`.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
}

/// A signed-in account page: the access token to keep in its cookie.
#[derive(Debug)]
pub struct AccountGrant {
    pub access_token: String,
    pub expires_in: u64,
    /// The page to go back to.
    pub page: OwnPage,
}

/// Completes the sign-in: checks state and issuer, redeems the code with the PKCE verifier at
/// the token service (as any client would at `/token`), and checks the ID token's nonce and
/// audience. `None` when anything does not hold (the page then starts over).
pub async fn complete_login(
    state: &AppState,
    pending: Option<&str>,
    params: &CallbackParams,
    origin: RequestOrigin,
) -> Result<Option<AccountGrant>, Error> {
    let Some(pending) = pending
        .and_then(|p| B64URL.decode(p).ok())
        .and_then(|sealed| state.master_key.open(&sealed, PENDING_CONTEXT).ok())
        .and_then(|plain| serde_json::from_slice::<PendingLogin>(&plain).ok())
    else {
        return Ok(None);
    };
    let issuer = state.settings.issuer();
    let state_matches = params.state.as_deref().is_some_and(|s| {
        aws_lc_rs::constant_time::verify_slices_are_equal(s.as_bytes(), pending.state.as_bytes())
            .is_ok()
    });
    let (Some(code), true, true, None) = (
        params.code.as_deref(),
        state_matches,
        params.iss.as_deref() == Some(issuer.as_str()),
        params.error.as_deref(),
    ) else {
        return Ok(None);
    };
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", &format!("{issuer}/account/callback"))
        .append_pair("client_id", ACCOUNT_CLIENT_ID)
        .append_pair("code_verifier", &pending.verifier)
        .finish();
    let tokens = match exchange(
        state,
        TokenInput {
            form_encoded: true,
            authorization: None,
            body: body.into_bytes(),
            origin,
        },
    )
    .await
    {
        Ok(t) => t,
        Err(Error::OAuth(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let id_token_holds = tokens
        .id_token
        .as_deref()
        .and_then(|t| state.keys.verify_jwt(t))
        .is_some_and(|(_, claims)| {
            claims.get("nonce").and_then(Value::as_str) == Some(pending.nonce.as_str())
                && claims.get("aud").and_then(Value::as_str) == Some(ACCOUNT_CLIENT_ID)
                && claims.get("iss").and_then(Value::as_str) == Some(issuer.as_str())
        });
    Ok(id_token_holds.then_some(AccountGrant {
        access_token: tokens.access_token,
        expires_in: tokens.expires_in,
        page: pending.page,
    }))
}

/// The person the account page acts for: a valid access token of the account page, and a
/// live SSO session of the same person in this browser.
#[derive(Debug, Clone)]
pub struct AccountHolder {
    pub access: AccessToken,
    pub session: Session,
}

impl AccountHolder {
    /// The CSRF token of the page's forms, bound to this access token.
    pub fn csrf(&self, state: &AppState) -> String {
        csrf_token(&state.hasher, &self.access.jti)
    }

    /// Whether a submitted form carries this page's CSRF token.
    pub fn csrf_matches(&self, state: &AppState, submitted: &str) -> bool {
        csrf_matches(&state.hasher, &self.access.jti, submitted)
    }
}

/// Who the account page acts for, if anyone.
pub async fn holder(
    state: &AppState,
    access_token: Option<String>,
    session_token: Option<String>,
) -> Result<Option<AccountHolder>, Error> {
    let (Some(token), Some(session_token)) = (access_token, session_token) else {
        return Ok(None);
    };
    let Some(access) = check_access_token(state, &token, chrono::Utc::now().timestamp())
        .filter(|a| a.client_id == ACCOUNT_CLIENT_ID)
    else {
        return Ok(None);
    };
    let hasher = state.hasher.clone();
    let session = state
        .store
        .run(move |conn| find_session(conn, &hasher, &session_token, now()))
        .await?;
    Ok(session
        .filter(|s| s.record.user_id == access.sub)
        .map(|session| AccountHolder { access, session }))
}

/// One sign-in to a portal.
#[derive(Debug, Clone, Serialize)]
pub struct SignInEntry {
    pub client_id: String,
    pub portal: String,
    pub at: NaiveDateTime,
    pub ip: Option<String>,
    /// `password` (the whole journey) or `sso` (an open session, no password asked).
    pub how: &'static str,
}

/// One live SSO session.
#[derive(Debug, Clone)]
pub struct SessionEntry {
    pub sid: String,
    pub started_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session of the browser looking at the page.
    pub current: bool,
}

/// What the account page shows.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub user: User,
    pub sign_ins: Vec<SignInEntry>,
    pub sessions: Vec<SessionEntry>,
}

impl AccountView {
    /// The person's second factor.
    pub fn method(&self) -> MfaMethod {
        self.user.mfa_method
    }
}

/// Reads the page's data for `holder`.
pub async fn view(state: &AppState, holder: &AccountHolder) -> Result<Option<AccountView>, Error> {
    let user_id = holder.access.sub.clone();
    let current = holder.session.record.sid.clone();
    let loaded = state
        .store
        .run(move |conn| {
            let Some(user) = users::find_by_id(conn, &user_id)? else {
                return Ok(None);
            };
            let sign_ins = sign_ins_of(conn, &user_id)?;
            let sessions = sso_sessions::live_for_user(conn, &user_id, now())?
                .into_iter()
                .map(|s| SessionEntry {
                    current: s.sid == current,
                    sid: s.sid,
                    started_at: s.auth_time,
                    last_seen_at: s.last_seen_at,
                    ip: s.ip,
                    user_agent: s.user_agent,
                })
                .collect();
            Ok(Some(AccountView {
                user,
                sign_ins,
                sessions,
            }))
        })
        .await?;
    Ok(loaded)
}

pub(crate) fn sign_ins_of(
    conn: &mut crate::store::DbConnection,
    user_id: &str,
) -> crate::store::StoreResult<Vec<SignInEntry>> {
    let events = audit::for_subject_of_types(conn, user_id, &SIGN_IN_EVENTS, RECENT_SIGN_INS)?;
    let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut entries = Vec::with_capacity(events.len());
    for event in events {
        let client_id = event.client_id.unwrap_or_default();
        if !names.contains_key(&client_id) {
            let name =
                clients::find(conn, &client_id)?.map_or_else(|| client_id.clone(), |c| c.name);
            names.insert(client_id.clone(), name);
        }
        entries.push(SignInEntry {
            portal: names.get(&client_id).cloned().unwrap_or_default(),
            client_id,
            at: event.occurred_at,
            ip: event.ip,
            how: if event.event_type == "signin.sso" {
                "sso"
            } else {
                "password"
            },
        });
    }
    Ok(entries)
}

/// The recent sign-ins of the person a valid access token with the `openid` scope was issued
/// to (the account API that portals call).
pub async fn sign_ins_for_token(state: &AppState, token: &str) -> Result<Vec<SignInEntry>, Error> {
    let access = crate::oidc::userinfo::live_access_token(state, token).await?;
    if !access.scope.iter().any(|s| s == "openid") {
        return Err(crate::oidc::error::OAuthError::insufficient_scope(
            "The openid scope is required.",
        )
        .into());
    }
    let sub = access.sub;
    Ok(state.store.run(move |conn| sign_ins_of(conn, &sub)).await?)
}

/// What ending a session from the account page did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnded {
    /// Another session (another browser or device) ended.
    Other,
    /// The session of this browser ended: the person is signed out.
    Current,
    /// No live session of this person has that id.
    NotFound,
}

/// Ends one of the holder's sessions, with back-channel notices to its portals.
pub async fn end_session(
    state: &AppState,
    holder: &AccountHolder,
    sid: String,
) -> Result<SessionEnded, Error> {
    let user_id = holder.access.sub.clone();
    let record = state
        .store
        .run(move |conn| sso_sessions::find_by_sid(conn, &sid))
        .await?
        .filter(|r| r.user_id == user_id && r.ended_at.is_none() && r.expires_at > now());
    let Some(record) = record else {
        return Ok(SessionEnded::NotFound);
    };
    let current = record.sid == holder.session.record.sid;
    crate::oidc::logout::end(state, &Session { record }, "account").await?;
    Ok(if current {
        SessionEnded::Current
    } else {
        SessionEnded::Other
    })
}
