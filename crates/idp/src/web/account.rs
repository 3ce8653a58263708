//! `/account`: the person's own page, and `/account/api/sign-ins` for portals. The page signs
//! in through `/authorize` like any portal (see `accounts`).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::accounts::{self, AccountView, CallbackParams, OwnPage, SessionEnded};
use crate::app::AppState;
use crate::authn::journey::page_lang;
use crate::error::Error;
use crate::i18n::{Lang, Tr};
use crate::store::users::MfaMethod;
use crate::web::authorize::{html, see_other};
use crate::web::cookies;
use crate::web::login::{lang_hints, refused_page};
use crate::web::logout::signed_out_page;
use crate::web::middleware::bearer_of;
use crate::web::middleware::request_origin;

/// How long the account page's sign-in may take.
const LOGIN_COOKIE_SECS: i64 = 900;

struct SignInRow {
    portal: String,
    at: String,
    ip: String,
    how: String,
}

struct SessionRow {
    sid: String,
    started: String,
    last_seen: String,
    ip: String,
    browser: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    t: Tr,
    title: String,
    switch_href: &'static str,
    csrf: &'a str,
    notice: Option<String>,
    name: String,
    email: &'a str,
    member_code: Option<&'a str>,
    method: String,
    sign_ins: Vec<SignInRow>,
    sessions: Vec<SessionRow>,
}

fn render(
    lang: Lang,
    zone: &jiff::tz::TimeZone,
    view: &AccountView,
    csrf: &str,
    notice: Option<String>,
) -> HttpResponse {
    let t = Tr(lang);
    let when = |at| super::local_time(zone, at);
    let unknown = || t.get("account-unknown");
    let page = AccountPage {
        t,
        title: t.get("account-title"),
        switch_href: match lang {
            Lang::FrCa => "/login/lang?to=en&next=account",
            Lang::En => "/login/lang?to=fr-CA&next=account",
        },
        csrf,
        notice,
        name: format!("{} {}", view.user.given_name, view.user.family_name),
        email: &view.user.email,
        member_code: view.user.member_code.as_deref(),
        method: t.get(match view.method() {
            MfaMethod::Totp => "account-method-totp",
            MfaMethod::Email => "account-method-email",
            MfaMethod::None => "account-method-none",
        }),
        sign_ins: view
            .sign_ins
            .iter()
            .map(|s| SignInRow {
                portal: s.portal.clone(),
                at: when(s.at),
                ip: s.ip.clone().unwrap_or_else(unknown),
                how: t.get(if s.how == "sso" {
                    "account-how-sso"
                } else {
                    "account-how-password"
                }),
            })
            .collect(),
        sessions: view
            .sessions
            .iter()
            .map(|s| SessionRow {
                sid: s.sid.clone(),
                started: when(s.started_at),
                last_seen: when(s.last_seen_at),
                ip: s.ip.clone().unwrap_or_else(unknown),
                browser: s.user_agent.clone().unwrap_or_else(unknown),
                current: s.current,
            })
            .collect(),
    };
    let mut response = html(StatusCode::OK, page.render());
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

pub(crate) async fn current_holder(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<accounts::AccountHolder>, Error> {
    accounts::holder(
        state,
        cookies::value(req, cookies::ACCOUNT, state.https),
        cookies::value(req, cookies::SESSION, state.https),
    )
    .await
}

/// Sends the person through the account client's sign-in, back to `page` afterwards.
pub(crate) fn sign_in(state: &AppState, lang: Lang, page: OwnPage) -> Result<HttpResponse, Error> {
    let login = accounts::begin_login(state, lang, page)?;
    Ok(see_other(&login.authorize_path)
        .cookie(cookies::build(
            cookies::ACCOUNT_LOGIN,
            login.pending,
            state.https,
            LOGIN_COOKIE_SECS,
        ))
        .finish())
}

/// `?done=`: what the previous form did.
#[derive(Deserialize)]
pub struct AccountQuery {
    done: Option<String>,
}

/// `GET /account`.
pub async fn page(
    req: HttpRequest,
    query: web::Query<AccountQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    let Some(holder) = current_holder(&req, &state).await? else {
        return sign_in(&state, lang, OwnPage::Account);
    };
    let Some(view) = accounts::view(&state, &holder).await? else {
        return sign_in(&state, lang, OwnPage::Account);
    };
    let notice = match query.done.as_deref() {
        Some("ended") => Some(Tr(lang).get("account-session-ended")),
        _ => None,
    };
    Ok(render(
        lang,
        &state.time_zone,
        &view,
        &holder.csrf(&state),
        notice,
    ))
}

/// `GET /account/callback`: the end of the account page's sign-in.
pub async fn callback(
    req: HttpRequest,
    query: web::Query<CallbackParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    let pending = cookies::value(&req, cookies::ACCOUNT_LOGIN, state.https);
    let grant =
        accounts::complete_login(&state, pending.as_deref(), &query, request_origin(&req)).await?;
    let Some(grant) = grant else {
        let mut response = refused_page(lang, "account-signin-failed");
        let _ = response.add_cookie(&cookies::removal(cookies::ACCOUNT_LOGIN, state.https));
        return Ok(response);
    };
    Ok(see_other(grant.page.path())
        .cookie(cookies::removal(cookies::ACCOUNT_LOGIN, state.https))
        .cookie(cookies::build(
            cookies::ACCOUNT,
            grant.access_token,
            state.https,
            i64::try_from(grant.expires_in).unwrap_or(300),
        ))
        .finish())
}

/// Fields of the "end this session" form.
#[derive(Deserialize)]
pub struct EndSessionFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    sid: String,
}

/// `POST /account/sessions/end`.
pub async fn end_session(
    req: HttpRequest,
    form: web::Form<EndSessionFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let lang = page_lang(&lang_hints(&req, state.https));
    let Some(holder) = current_holder(&req, &state).await? else {
        return sign_in(&state, lang, OwnPage::Account);
    };
    if !holder.csrf_matches(&state, &form.csrf) {
        return Ok(refused_page(lang, "account-form-expired"));
    }
    Ok(
        match accounts::end_session(&state, &holder, form.sid.clone()).await? {
            SessionEnded::Current => signed_out_page(lang, state.https),
            SessionEnded::Other | SessionEnded::NotFound => {
                see_other("/account?done=ended").finish()
            }
        },
    )
}

/// `GET /account/api/sign-ins`: the recent sign-ins of the access token's subject, for
/// portals that show them ("recent sign-ins").
pub async fn api_sign_ins(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let token = bearer_of(&req)?;
    let entries = accounts::sign_ins_for_token(&state, &token).await?;
    let body: Vec<_> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "client_id": e.client_id,
                "portal": e.portal,
                "at": e.at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "ip": e.ip,
                "how": e.how,
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "sign_ins": body })))
}
