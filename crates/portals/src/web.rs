//! The portals' pages and endpoints. Handlers parse, call the provider link or the session
//! store, and render.

use std::sync::Arc;

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use openidconnect::core::{CoreAuthenticationFlow, CoreGenderClaim};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, ClientId, CsrfToken, LogoutRequest,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, Scope,
    TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};

use crate::i18n::{Lang, Tr};
use crate::logout_token::{self, LogoutTokenError};
use crate::provider::ProviderLink;
use crate::sessions::{PendingLogin, SessionStore, SignedIn, Visitor, PENDING_TTL};
use crate::{PortalError, PortalKind};

/// Everything a request needs.
pub struct PortalState {
    pub link: ProviderLink,
    pub sessions: SessionStore,
}

type State = web::Data<Arc<PortalState>>;

/// Every route of a portal.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/health", web::get().to(health))
        .route("/assets/portal.css", web::get().to(stylesheet))
        .route("/lang", web::get().to(switch_language))
        .route("/login", web::get().to(login))
        .route("/callback", web::get().to(callback))
        .route("/logout", web::post().to(logout))
        .route("/backchannel-logout", web::post().to(backchannel_logout))
        .route("/request", web::get().to(request_form))
        .route("/request", web::post().to(submit_request))
        .default_service(web::to(not_found));
}

/// The claims Guichet adds for members.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct MemberClaims {
    member_code: Option<String>,
}
impl AdditionalClaims for MemberClaims {}

/// The visitor of a request and how to answer it.
struct Visit {
    id: String,
    visitor: Visitor,
    new: bool,
    lang: Lang,
}

fn cookie_name(state: &PortalState) -> String {
    let settings = state.link.settings();
    // Portals on one loopback host share the browser's cookie jar: each uses its own name.
    let base = format!("{}_visit", settings.kind.client_id().replace('-', "_"));
    if settings.https() {
        format!("__Host-{base}")
    } else {
        base
    }
}

fn visit(req: &HttpRequest, state: &PortalState) -> Visit {
    let cookie = req.cookie(&cookie_name(state));
    let (id, visitor, new) = state.sessions.visit(cookie.as_ref().map(Cookie::value));
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let lang = bilingual::negotiate(visitor.lang, None, None, accept);
    Visit {
        id,
        visitor,
        new,
        lang,
    }
}

/// Sets the visitor cookie on a new visitor's first answer.
fn answer(state: &PortalState, visit: &Visit, mut response: HttpResponse) -> HttpResponse {
    if visit.new {
        let cookie = Cookie::build(cookie_name(state), visit.id.clone())
            .path("/")
            .http_only(true)
            .secure(state.link.settings().https())
            .same_site(SameSite::Lax)
            .max_age(time::Duration::hours(8))
            .finish();
        if let Err(e) = response.add_cookie(&cookie) {
            tracing::error!(error = %e, "could not set the visitor cookie");
        }
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}

fn html(status: StatusCode, body: Result<String, askama::Error>) -> HttpResponse {
    match body {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// The parts of the layout every page fills.
struct Frame {
    t: Tr,
    lang: Lang,
    portal_name: String,
    body_class: &'static str,
    signed_in_name: Option<String>,
    signed_in_text: String,
    sign_out_label: String,
    switch_label: String,
    switch_title: String,
    footer: String,
    csrf: String,
}

fn frame(state: &PortalState, visit: &Visit) -> Frame {
    let t = Tr(visit.lang);
    let kind = state.link.settings().kind;
    let name = visit.visitor.signed_in.as_ref().map(|s| s.name.clone());
    Frame {
        t,
        lang: visit.lang,
        portal_name: t.get(kind.name_id()),
        body_class: match kind {
            PortalKind::FilePortal => "file",
            PortalKind::Atip => "atip",
        },
        signed_in_text: name
            .as_deref()
            .map(|n| t.arg("signed-in-as", "name", n))
            .unwrap_or_default(),
        signed_in_name: name,
        sign_out_label: t.get("sign-out"),
        switch_label: t.get("lang-switch"),
        switch_title: t.get("lang-switch-label"),
        footer: t.get("footer"),
        csrf: visit.visitor.csrf.clone(),
    }
}

struct MemberView {
    name: String,
    email: String,
    member_code: String,
}

struct SignInRow {
    portal: String,
    at: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "file_home.html")]
struct FileHome {
    f: Frame,
    title: String,
    member: Option<MemberView>,
    recent: Option<Vec<SignInRow>>,
    account_url: String,
}

#[derive(Template)]
#[template(path = "atip_home.html")]
struct AtipHome {
    f: Frame,
    title: String,
    signed_in: bool,
    requests: Vec<crate::sessions::AtipRequest>,
}

#[derive(Template)]
#[template(path = "atip_request.html")]
struct AtipRequestPage {
    f: Frame,
    title: String,
    signed_in: bool,
    error: Option<String>,
    subject: String,
    email: String,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    f: Frame,
    title: String,
    paragraphs: Vec<String>,
}

fn message(
    state: &PortalState,
    visit: &Visit,
    status: StatusCode,
    title_id: &str,
    paragraphs: Vec<String>,
) -> HttpResponse {
    let f = frame(state, visit);
    let title = f.t.get(title_id);
    let page = MessagePage {
        f,
        title,
        paragraphs,
    };
    answer(state, visit, html(status, page.render()))
}

fn error_page(state: &PortalState, visit: &Visit, error: &PortalError) -> HttpResponse {
    let t = Tr(visit.lang);
    let (status, text) = match error {
        PortalError::Provider(_) => (StatusCode::BAD_GATEWAY, t.get("error-provider")),
        _ => (StatusCode::BAD_REQUEST, t.get("error-sign-in")),
    };
    tracing::warn!(error = %error, "portal request failed");
    message(state, visit, status, "error-title", vec![text])
}

/// The recent sign-ins the provider's account API reports for this access token.
async fn recent_sign_ins(state: &PortalState, access_token: &str) -> Option<Vec<SignInRow>> {
    #[derive(Deserialize)]
    struct Entry {
        portal: String,
        at: String,
        ip: Option<String>,
    }
    #[derive(Deserialize)]
    struct Answer {
        sign_ins: Vec<Entry>,
    }
    let url = format!(
        "{}/account/api/sign-ins",
        state.link.settings().issuer_str()
    );
    let response = state
        .link
        .http
        .get(url)
        .bearer_auth(access_token)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let answer: Answer = response.json().await.ok()?;
    Some(
        answer
            .sign_ins
            .into_iter()
            .map(|e| SignInRow {
                portal: e.portal,
                at: e.at.replace('T', " ").replace('Z', " UTC"),
                ip: e.ip.unwrap_or_default(),
            })
            .collect(),
    )
}

async fn home(req: HttpRequest, state: State) -> HttpResponse {
    let visit = visit(&req, &state);
    let f = frame(&state, &visit);
    let t = f.t;
    let settings = state.link.settings();
    let page = match settings.kind {
        PortalKind::FilePortal => {
            let signed_in = visit.visitor.signed_in.clone();
            let recent = match &signed_in {
                Some(s) => recent_sign_ins(&state, &s.access_token).await,
                None => None,
            };
            FileHome {
                f,
                title: t.get("file-title"),
                member: signed_in.map(|s| MemberView {
                    name: s.name,
                    email: s.email,
                    member_code: s.member_code.unwrap_or_else(|| t.get("file-none")),
                }),
                recent,
                account_url: format!("{}/account", settings.issuer_str()),
            }
            .render()
        }
        PortalKind::Atip => {
            let owner = visit.visitor.signed_in.as_ref().map(|s| s.sub.clone());
            AtipHome {
                f,
                title: t.get("atip-title"),
                signed_in: owner.is_some(),
                requests: owner
                    .map(|o| state.sessions.requests_of(&o))
                    .unwrap_or_default(),
            }
            .render()
        }
    };
    answer(&state, &visit, html(StatusCode::OK, page))
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../assets/portal.css"))
}

#[derive(Deserialize)]
struct LangQuery {
    to: Option<String>,
}

async fn switch_language(
    req: HttpRequest,
    query: web::Query<LangQuery>,
    state: State,
) -> HttpResponse {
    let visit = visit(&req, &state);
    if let Some(lang) = query.to.as_deref().and_then(Lang::parse) {
        state.sessions.update(&visit.id, |v| v.lang = Some(lang));
    }
    answer(&state, &visit, see_other("/"))
}

/// Starts a sign-in at Guichet: PKCE, state and nonce kept in the visitor's record.
async fn login(req: HttpRequest, state: State) -> HttpResponse {
    let visit = visit(&req, &state);
    let provider = match state.link.provider().await {
        Ok(p) => p,
        Err(e) => return error_page(&state, &visit, &e),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = provider
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .add_extra_param("ui_locales", visit.lang.tag())
        .url();
    state.sessions.update(&visit.id, |v| {
        v.pending = Some(PendingLogin {
            state: csrf.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            started: std::time::Instant::now(),
        });
    });
    answer(&state, &visit, see_other(url.as_str()))
}

/// What Guichet sends back to `/callback`.
#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

async fn callback(
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
    state: State,
) -> HttpResponse {
    let visit = visit(&req, &state);
    // The pending sign-in is used once, whatever happens next.
    let pending = state
        .sessions
        .update(&visit.id, |v| v.pending.take())
        .flatten()
        .filter(|p| p.started.elapsed() < PENDING_TTL);
    let state_ok = match (&pending, query.state.as_deref()) {
        (Some(p), Some(s)) => {
            aws_lc_rs::constant_time::verify_slices_are_equal(p.state.as_bytes(), s.as_bytes())
                .is_ok()
        }
        _ => false,
    };
    let Some(pending) = pending.filter(|_| state_ok) else {
        return message(
            &state,
            &visit,
            StatusCode::BAD_REQUEST,
            "error-title",
            vec![Tr(visit.lang).get("error-sign-in")],
        );
    };
    if let Some(error) = &query.error {
        let reason: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return message(
            &state,
            &visit,
            StatusCode::BAD_REQUEST,
            "error-title",
            vec![Tr(visit.lang).arg("error-sign-in-refused", "reason", reason)],
        );
    }
    // RFC 9207: the answer must come from the issuer the portal trusts (mix-up defence).
    if query.iss.as_deref() != Some(state.link.settings().issuer_str()) {
        return error_page(
            &state,
            &visit,
            &PortalError::SignIn("wrong or missing iss".into()),
        );
    }
    let Some(code) = query.code.clone() else {
        return error_page(&state, &visit, &PortalError::SignIn("no code".into()));
    };
    match complete_sign_in(&state, pending, code).await {
        Ok(signed_in) => {
            state
                .sessions
                .update(&visit.id, |v| v.signed_in = Some(signed_in));
            answer(&state, &visit, see_other("/"))
        }
        Err(e) => error_page(&state, &visit, &e),
    }
}

/// Redeems the code and checks the ID token (signature, issuer, audience, expiry, nonce,
/// at_hash), then reads UserInfo.
async fn complete_sign_in(
    state: &PortalState,
    pending: PendingLogin,
    code: String,
) -> Result<SignedIn, PortalError> {
    let fail = |e: &dyn std::fmt::Display| PortalError::SignIn(e.to_string());
    let provider = state.link.provider().await?;
    let tokens = provider
        .client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| fail(&e))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&state.link.http)
        .await
        .map_err(|e| fail(&e))?;
    let id_token = tokens
        .id_token()
        .ok_or_else(|| PortalError::SignIn("no ID token".into()))?
        .clone();
    let nonce = Nonce::new(pending.nonce);
    // A key the portal has not seen yet (rotation): discover again, then check once more.
    let known_key = id_token
        .claims(&provider.client.id_token_verifier(), &nonce)
        .is_ok();
    let provider = if known_key {
        provider
    } else {
        state.link.refresh(Some(&provider)).await?
    };
    let verifier = provider.client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).map_err(|e| fail(&e))?;
    let expected = claims
        .access_token_hash()
        .ok_or_else(|| PortalError::SignIn("no at_hash".into()))?;
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().map_err(|e| fail(&e))?,
        id_token.signing_key(&verifier).map_err(|e| fail(&e))?,
    )
    .map_err(|e| fail(&e))?;
    if &actual != expected {
        return Err(PortalError::SignIn("at_hash does not match".into()));
    }
    let sub = claims.subject().to_string();

    let info: UserInfoClaims<MemberClaims, CoreGenderClaim> = provider
        .client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .map_err(|e| fail(&e))?
        .request_async(&state.link.http)
        .await
        .map_err(|e| fail(&e))?;
    let name = info
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.to_string())
        .unwrap_or_default();
    Ok(SignedIn {
        sid: sid_of(&id_token),
        sub,
        name,
        email: info.email().map(|e| e.to_string()).unwrap_or_default(),
        member_code: info.additional_claims().member_code.clone(),
        id_token,
        access_token: tokens.access_token().secret().clone(),
    })
}

/// The `sid` claim of an already verified ID token (`openidconnect` does not model it).
fn sid_of(id_token: &openidconnect::core::CoreIdToken) -> Option<String> {
    use base64::Engine;
    let text = id_token.to_string();
    let payload = text.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sid")?.as_str().map(str::to_string)
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

fn csrf_ok(visit: &Visit, submitted: &str) -> bool {
    !visit.new
        && aws_lc_rs::constant_time::verify_slices_are_equal(
            visit.visitor.csrf.as_bytes(),
            submitted.as_bytes(),
        )
        .is_ok()
}

/// Ends the local session, then RP-initiated logout at Guichet (which ends the SSO session
/// and notifies the other portals).
async fn logout(req: HttpRequest, form: web::Form<CsrfForm>, state: State) -> HttpResponse {
    let visit = visit(&req, &state);
    if !csrf_ok(&visit, &form.csrf) {
        return message(
            &state,
            &visit,
            StatusCode::BAD_REQUEST,
            "error-title",
            vec![Tr(visit.lang).get("error-form")],
        );
    }
    let Some(signed_in) = state
        .sessions
        .update(&visit.id, |v| v.signed_in.take())
        .flatten()
    else {
        return answer(&state, &visit, see_other("/"));
    };
    let provider = match state.link.provider().await {
        Ok(p) => p,
        Err(e) => return error_page(&state, &visit, &e),
    };
    let Some(end_session) = provider.end_session.clone() else {
        return answer(&state, &visit, see_other("/"));
    };
    let settings = state.link.settings();
    let back = match PostLogoutRedirectUrl::new(format!("{}/", settings.base())) {
        Ok(u) => u,
        Err(e) => return error_page(&state, &visit, &PortalError::SignIn(e.to_string())),
    };
    let url = LogoutRequest::from(end_session)
        .set_id_token_hint(&signed_in.id_token)
        .set_client_id(ClientId::new(settings.kind.client_id().into()))
        .set_post_logout_redirect_uri(back)
        .set_state(CsrfToken::new_random())
        .add_ui_locale(openidconnect::LanguageTag::new(visit.lang.tag().into()))
        .http_get_url();
    answer(&state, &visit, see_other(url.as_str()))
}

#[derive(Deserialize)]
struct LogoutTokenForm {
    logout_token: Option<String>,
}

fn logout_refused(error: &LogoutTokenError) -> HttpResponse {
    tracing::warn!(error = %error, "logout token refused");
    HttpResponse::BadRequest()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "error": "invalid_request",
            "error_description": error.to_string(),
        }))
}

/// Back-Channel Logout 1.0: Guichet posts a logout token; the named sessions end here.
async fn backchannel_logout(
    form: Option<web::Form<LogoutTokenForm>>,
    state: State,
) -> HttpResponse {
    let Some(token) = form.and_then(|f| f.into_inner().logout_token) else {
        return logout_refused(&LogoutTokenError::Malformed);
    };
    let settings = state.link.settings();
    let provider = match state.link.provider().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot check a logout token");
            return HttpResponse::ServiceUnavailable().finish();
        }
    };
    let (issuer, audience) = (settings.issuer_str(), settings.kind.client_id());
    let mut checked = logout_token::validate(&token, &provider.jwks, issuer, audience);
    if checked == Err(LogoutTokenError::UnknownKey) {
        if let Ok(fresh) = state.link.refresh(Some(&provider)).await {
            checked = logout_token::validate(&token, &fresh.jwks, issuer, audience);
        }
    }
    let claims = match checked {
        Ok(c) => c,
        Err(e) => return logout_refused(&e),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if !state
        .sessions
        .first_use_of_jti(&claims.jti, claims.exp, now)
    {
        return logout_refused(&LogoutTokenError::Replayed);
    }
    let ended = state
        .sessions
        .end_sessions(claims.sub.as_deref(), claims.sid.as_deref());
    tracing::info!(ended, "back-channel logout");
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn atip_form(
    state: &PortalState,
    visit: &Visit,
    status: StatusCode,
    error: Option<String>,
    subject: String,
    email: String,
) -> HttpResponse {
    let f = frame(state, visit);
    let title = f.t.get("atip-request-title");
    let page = AtipRequestPage {
        f,
        title,
        signed_in: visit.visitor.signed_in.is_some(),
        error,
        subject,
        email,
    };
    answer(state, visit, html(status, page.render()))
}

async fn request_form(req: HttpRequest, state: State) -> HttpResponse {
    let visit = visit(&req, &state);
    if state.link.settings().kind != PortalKind::Atip {
        return not_found_for(&state, &visit);
    }
    atip_form(
        &state,
        &visit,
        StatusCode::OK,
        None,
        String::new(),
        String::new(),
    )
}

#[derive(Deserialize)]
struct RequestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    email: String,
}

/// An ATIP request, as a guest (no sign-in) or as the signed-in person.
async fn submit_request(
    req: HttpRequest,
    form: web::Form<RequestForm>,
    state: State,
) -> HttpResponse {
    let visit = visit(&req, &state);
    if state.link.settings().kind != PortalKind::Atip {
        return not_found_for(&state, &visit);
    }
    let t = Tr(visit.lang);
    if !csrf_ok(&visit, &form.csrf) {
        return message(
            &state,
            &visit,
            StatusCode::BAD_REQUEST,
            "error-title",
            vec![t.get("error-form")],
        );
    }
    let subject: String = form.subject.trim().chars().take(2000).collect();
    let email: String = form.email.trim().chars().take(254).collect();
    let owner = visit.visitor.signed_in.as_ref().map(|s| s.sub.clone());
    let problem = if subject.is_empty() {
        Some(t.get("atip-request-missing"))
    } else if owner.is_none() && !email.contains('@') {
        Some(t.get("atip-request-email-missing"))
    } else {
        None
    };
    if let Some(problem) = problem {
        return atip_form(
            &state,
            &visit,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(problem),
            subject,
            email,
        );
    }
    let number = state.sessions.add_request(owner.as_deref(), &subject);
    let follow = if owner.is_some() {
        t.get("atip-request-done-member")
    } else {
        t.get("atip-request-done-guest")
    };
    message(
        &state,
        &visit,
        StatusCode::OK,
        "atip-request-done-title",
        vec![t.arg("atip-request-done", "number", number), follow],
    )
}

fn not_found_for(state: &PortalState, visit: &Visit) -> HttpResponse {
    message(
        state,
        visit,
        StatusCode::NOT_FOUND,
        "error-title",
        vec![Tr(visit.lang).get("error-not-found")],
    )
}

async fn not_found(req: HttpRequest, state: State) -> HttpResponse {
    let visit = visit(&req, &state);
    not_found_for(&state, &visit)
}
