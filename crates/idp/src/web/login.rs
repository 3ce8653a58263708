//! The sign-in pages: `/login` and its forms. Each handler parses the form, calls
//! `authn::journey`, and renders the page or redirect it answers.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::app::AppState;
use crate::authn::journey::{
    self, ChosenMethod, CodeForm, CodeKind, JourneyOutcome, LangHints, NewPasswordForm, Notice,
    NoticeArg, Page, PasswordForm, Screen, Submission,
};
use crate::error::Error;
use crate::i18n::{Lang, Tr};
use crate::oidc::flow::SSO_SESSION_TTL;
use crate::web::authorize::{answer_client, html, see_other};
use crate::web::cookies;
use crate::web::middleware::request_origin;

/// The page parts that differ by step.
enum View<'a> {
    Password {
        email: &'a str,
        intro: String,
    },
    ResetEmail {
        email: &'a str,
    },
    Code {
        intro: String,
        action: &'static str,
        resend: bool,
        help: Vec<String>,
    },
    NewPassword {
        policy: String,
        min_length: u32,
    },
    Enrol,
    EnrolTotp {
        qr_svg: &'a str,
        url: &'a str,
        key: &'a str,
        account: String,
    },
}

#[derive(Template)]
#[template(path = "journey.html")]
struct JourneyPage<'a> {
    t: Tr,
    title: String,
    switch_href: String,
    csrf: &'a str,
    error: Option<String>,
    notice: Option<String>,
    restart: bool,
    view: View<'a>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    t: Tr,
    title: String,
    switch_href: String,
    message: String,
    next_step: String,
    /// The same texts in the other language, when no page can be switched back to.
    other: Option<ErrorTexts>,
}

/// An error page's texts in one language.
struct ErrorTexts {
    tag: &'static str,
    title: String,
    message: String,
    next_step: String,
}

fn translate(t: Tr, notice: &Notice) -> String {
    match &notice.arg {
        None => t.get(notice.id),
        Some((name, NoticeArg::Text(v))) => t.arg(notice.id, name, v),
        Some((name, NoticeArg::Count(n))) => t.count(notice.id, name, *n),
    }
}

/// The error page: `title_id`, `message_id` and `next_id` name its three texts in the
/// message files. Its language switch leads back to `page` (a name [`switch_language`] takes).
/// Without one there is nothing to switch back to (a sign-in page would say the request
/// expired), so the page says it in both languages instead, as bilingual sites do.
pub fn error_page(
    lang: Lang,
    status: StatusCode,
    [title_id, message_id, next_id]: [&str; 3],
    page: Option<&str>,
) -> HttpResponse {
    let t = Tr(lang);
    let other = Tr(lang.other());
    let (switch_href, other) = match page {
        Some(page) => (format!("/login/lang?to={}&next={page}", other.tag()), None),
        None => (
            String::new(),
            Some(ErrorTexts {
                tag: other.tag(),
                title: other.get(title_id),
                message: other.get(message_id),
                next_step: other.get(next_id),
            }),
        ),
    };
    html(
        status,
        ErrorPage {
            t,
            title: t.get(title_id),
            switch_href,
            message: t.get(message_id),
            next_step: t.get(next_id),
            other,
        }
        .render(),
    )
}

/// The error page for a journey that cannot go on, in `lang`.
pub fn expired_page(lang: Lang) -> HttpResponse {
    error_page(
        lang,
        StatusCode::BAD_REQUEST,
        ["expired-title", "expired-message", "expired-next"],
        None,
    )
}

/// A refused request page; `message_id` names the reason in the message files.
pub fn refused_page(lang: Lang, message_id: &str) -> HttpResponse {
    error_page(
        lang,
        StatusCode::BAD_REQUEST,
        ["refused-title", message_id, "refused-next"],
        None,
    )
}

fn render_screen(screen: &Screen, switch_next: &str) -> HttpResponse {
    let t = Tr(screen.lang);
    let issuer = screen.issuer.as_str();
    let (title, view, error, restart) = match &screen.page {
        Page::Password { email, error } => (
            t.get("login-title"),
            View::Password {
                email,
                intro: t.arg("login-intro", "portal", &screen.portal),
            },
            error,
            false,
        ),
        Page::ResetEmail { email, error } => (
            t.get("reset-title"),
            View::ResetEmail { email },
            error,
            false,
        ),
        Page::Code {
            kind, email, error, ..
        } => {
            let validity = t.count(
                "code-validity",
                "minutes",
                i64::try_from(screen.code_minutes).unwrap_or(10),
            );
            let (title, intro, action) = match kind {
                CodeKind::Totp => (
                    t.get("totp-title"),
                    t.arg("totp-intro", "issuer", issuer),
                    "/login/second-factor",
                ),
                CodeKind::SignInEmail => (
                    t.get("email-code-title"),
                    format!("{} {}", t.arg("email-code-intro", "email", email), validity),
                    "/login/second-factor",
                ),
                CodeKind::Reset => (
                    t.get("reset-code-title"),
                    format!("{} {}", t.arg("reset-code-intro", "email", email), validity),
                    "/login/reset/code",
                ),
                CodeKind::EnrolEmail => (
                    t.get("email-enrol-title"),
                    format!(
                        "{} {}",
                        t.arg("email-enrol-intro", "email", email),
                        validity
                    ),
                    "/login/enrol/email",
                ),
            };
            let help = match kind {
                CodeKind::Totp => vec![t.get("totp-lost"), t.get("mfa-change-helpdesk")],
                _ => vec![
                    t.get("code-help-spam"),
                    t.get("code-help-address"),
                    t.get("code-help-filter"),
                    t.get("code-help-resend"),
                ],
            };
            (
                title,
                View::Code {
                    intro,
                    action,
                    resend: *kind != CodeKind::Totp,
                    help,
                },
                error,
                true,
            )
        }
        Page::NewPassword { error, .. } => {
            let min_length = screen.password_min_length;
            let policy = t.count("password-policy", "min", min_length.into());
            (
                t.get("password-title"),
                View::NewPassword { policy, min_length },
                error,
                true,
            )
        }
        Page::Enrol { error } => (t.get("enrol-title"), View::Enrol, error, true),
        Page::EnrolTotp { enrolment, error } => (
            t.get("totp-enrol-title"),
            View::EnrolTotp {
                qr_svg: &enrolment.qr_svg,
                url: &enrolment.url,
                key: &enrolment.grouped_key,
                account: t.arg("totp-enrol-account", "issuer", issuer),
            },
            error,
            true,
        ),
    };
    let notice = match &screen.page {
        Page::Code {
            notice: Some(n), ..
        } => Some(translate(t, n)),
        _ => None,
    };
    html(
        StatusCode::OK,
        JourneyPage {
            t,
            title,
            switch_href: format!(
                "/login/lang?to={}&next={switch_next}",
                screen.lang.other().tag()
            ),
            csrf: &screen.csrf,
            error: error.as_ref().map(|e| translate(t, e)),
            notice,
            restart,
            view,
        }
        .render(),
    )
}

fn respond(outcome: JourneyOutcome, https: bool, switch_next: &str) -> HttpResponse {
    match outcome {
        JourneyOutcome::Expired { lang } => expired_page(lang),
        JourneyOutcome::Show(screen) => render_screen(&screen, switch_next),
        JourneyOutcome::Next { notice } => match notice {
            Some(n) => see_other(&format!("/login?notice={n}")).finish(),
            None => see_other("/login").finish(),
        },
        JourneyOutcome::Consent {
            session_token,
            known_device,
        } => see_other("/consent")
            .cookie(cookies::build(
                cookies::SESSION,
                session_token,
                https,
                SSO_SESSION_TTL.num_seconds(),
            ))
            .cookie(known_device_cookie(known_device, https))
            .finish(),
        JourneyOutcome::Done {
            response,
            session_token,
            known_device,
        } => answer_client(
            &response,
            vec![
                cookies::build(
                    cookies::SESSION,
                    session_token,
                    https,
                    SSO_SESSION_TTL.num_seconds(),
                ),
                known_device_cookie(known_device, https),
                cookies::removal(cookies::TRANSACTION, https),
            ],
        ),
    }
}

fn known_device_cookie(value: String, https: bool) -> actix_web::cookie::Cookie<'static> {
    cookies::build(
        cookies::KNOWN_DEVICE,
        value,
        https,
        crate::authn::known_device::LIFETIME_SECS,
    )
}

fn transaction(req: &HttpRequest, https: bool) -> Option<String> {
    cookies::value(req, cookies::TRANSACTION, https)
}

/// The language hints a request carries: the remembered switch and `Accept-Language`.
pub fn lang_hints(req: &HttpRequest, https: bool) -> LangHints {
    LangHints {
        remembered: cookies::value(req, cookies::LANG, https),
        accept_language: req
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

fn submission(req: &HttpRequest, csrf: String, https: bool) -> Submission {
    Submission {
        csrf,
        origin: request_origin(req),
        hints: lang_hints(req, https),
        known_device: cookies::value(req, cookies::KNOWN_DEVICE, https),
    }
}

/// The pages a language switch may lead back to, by the name its `next` gives (never a URL,
/// so the switch cannot send anyone elsewhere).
pub const SWITCH_PAGES: [(&str, &str); 8] = [
    ("reset", "/login/reset"),
    ("consent", "/consent"),
    ("account", "/account"),
    ("audit", "/audit"),
    ("staff", "/staff"),
    ("clients", "/staff/clients"),
    ("policies", "/staff/policies"),
    ("email-change", "/email-change"),
];

/// Query of `GET /login`.
#[derive(Deserialize)]
pub struct LoginQuery {
    notice: Option<String>,
}

/// The page of the current step.
pub async fn page(
    req: HttpRequest,
    query: web::Query<LoginQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let hints = lang_hints(&req, state.https);
    let outcome = journey::current_page(
        &state,
        transaction(&req, state.https),
        &hints,
        query.notice.as_deref(),
    )
    .await?;
    Ok(respond(outcome, state.https, "login"))
}

/// The first page of "First login or forgot your password?".
pub async fn reset_page(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let hints = lang_hints(&req, state.https);
    let outcome = journey::reset_page(&state, transaction(&req, state.https), &hints).await?;
    Ok(respond(outcome, state.https, "reset"))
}

/// Query of the language switch.
#[derive(Deserialize)]
pub struct LangQuery {
    to: Option<String>,
    next: Option<String>,
}

/// The FR/EN switch: remembered in a cookie and for the rest of the journey.
pub async fn switch_language(
    req: HttpRequest,
    query: web::Query<LangQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let back = query
        .next
        .as_deref()
        .and_then(|name| SWITCH_PAGES.iter().find(|(n, _)| *n == name))
        .map_or("/login", |(_, path)| *path);
    let Some(lang) = query.to.as_deref().and_then(Lang::parse) else {
        return Ok(see_other(back).finish());
    };
    journey::choose_language(&state, transaction(&req, state.https), lang).await?;
    Ok(see_other(back)
        .cookie(cookies::build(
            cookies::LANG,
            lang.tag().to_string(),
            state.https,
            365 * 24 * 3600,
        ))
        .finish())
}

/// A form with only its CSRF token.
#[derive(Deserialize)]
pub struct CsrfFields {
    #[serde(default)]
    csrf: String,
}

/// The transaction cookie and what every form of the journey carries.
fn context(req: &HttpRequest, state: &AppState, csrf: String) -> (Option<String>, Submission) {
    (
        transaction(req, state.https),
        submission(req, csrf, state.https),
    )
}

/// Fields of the password form.
#[derive(Deserialize)]
pub struct PasswordFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// The password form.
pub async fn submit_password(
    req: HttpRequest,
    form: web::Form<PasswordFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let form = form.into_inner();
    let (token, submission) = context(&req, &state, form.csrf);
    let fields = PasswordForm {
        email: form.email,
        password: form.password,
    };
    let outcome = journey::submit_password(&state, token, submission, fields).await?;
    Ok(respond(outcome, state.https, "login"))
}

/// Fields of a code form.
#[derive(Deserialize)]
pub struct CodeFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// The steps that take a six-digit code.
#[derive(Debug, Clone, Copy)]
enum CodeStep {
    SecondFactor,
    Reset,
    EnrolApp,
    EnrolEmail,
}

async fn code_step(
    req: HttpRequest,
    form: web::Form<CodeFields>,
    state: web::Data<AppState>,
    step: CodeStep,
) -> Result<HttpResponse, Error> {
    let form = form.into_inner();
    let (token, submission) = context(&req, &state, form.csrf);
    let code = CodeForm { code: form.code };
    let outcome = match step {
        CodeStep::SecondFactor => {
            journey::submit_second_factor(&state, token, submission, code).await?
        }
        CodeStep::Reset => journey::submit_reset_code(&state, token, submission, code).await?,
        CodeStep::EnrolApp => journey::submit_enrol_totp(&state, token, submission, code).await?,
        CodeStep::EnrolEmail => {
            journey::submit_enrol_email(&state, token, submission, code).await?
        }
    };
    Ok(respond(outcome, state.https, "login"))
}

/// The sign-in second factor.
pub async fn submit_second_factor(
    req: HttpRequest,
    form: web::Form<CodeFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    code_step(req, form, state, CodeStep::SecondFactor).await
}

/// The reset journey's code.
pub async fn submit_reset_code(
    req: HttpRequest,
    form: web::Form<CodeFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    code_step(req, form, state, CodeStep::Reset).await
}

/// The authenticator app's first code.
pub async fn submit_enrol_app(
    req: HttpRequest,
    form: web::Form<CodeFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    code_step(req, form, state, CodeStep::EnrolApp).await
}

/// The first emailed code.
pub async fn submit_enrol_email(
    req: HttpRequest,
    form: web::Form<CodeFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    code_step(req, form, state, CodeStep::EnrolEmail).await
}

/// "Send a new code".
pub async fn resend(
    req: HttpRequest,
    form: web::Form<CsrfFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let (token, submission) = context(&req, &state, form.into_inner().csrf);
    let outcome = journey::resend(&state, token, submission).await?;
    Ok(respond(outcome, state.https, "login"))
}

/// Back to the password form.
pub async fn restart(
    req: HttpRequest,
    form: web::Form<CsrfFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let (token, submission) = context(&req, &state, form.into_inner().csrf);
    let outcome = journey::restart(&state, token, submission).await?;
    Ok(respond(outcome, state.https, "login"))
}

/// Fields of the reset journey's email form.
#[derive(Deserialize)]
pub struct EmailFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// The reset journey's email.
pub async fn submit_reset_email(
    req: HttpRequest,
    form: web::Form<EmailFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let form = form.into_inner();
    let (token, submission) = context(&req, &state, form.csrf);
    let outcome = journey::submit_reset_email(&state, token, submission, form.email).await?;
    Ok(respond(outcome, state.https, "reset"))
}

/// Fields of the new password form.
#[derive(Deserialize)]
pub struct NewPasswordFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirmation: String,
}

/// The new password.
pub async fn submit_new_password(
    req: HttpRequest,
    form: web::Form<NewPasswordFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let form = form.into_inner();
    let (token, submission) = context(&req, &state, form.csrf);
    let fields = NewPasswordForm {
        password: form.password,
        confirmation: form.confirmation,
    };
    let outcome = journey::submit_new_password(&state, token, submission, fields).await?;
    Ok(respond(outcome, state.https, "login"))
}

/// Fields of the method choice.
#[derive(Deserialize)]
pub struct EnrolFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    method: String,
}

/// The second-factor choice.
pub async fn submit_enrol_choice(
    req: HttpRequest,
    form: web::Form<EnrolFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let form = form.into_inner();
    let choice = match form.method.as_str() {
        "app" => Some(ChosenMethod::App),
        "email" => Some(ChosenMethod::Email),
        _ => None,
    };
    let (token, submission) = context(&req, &state, form.csrf);
    let outcome = journey::submit_enrol_choice(&state, token, submission, choice).await?;
    Ok(respond(outcome, state.https, "login"))
}

const STYLESHEET: &str = include_str!("../../assets/guichet.css");

/// The one stylesheet.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}
