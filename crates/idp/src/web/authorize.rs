//! `GET /authorize`, `GET|POST /consent`, `GET /.well-known/openid-configuration`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::app::AppState;
use crate::authn::journey::page_lang;
use crate::error::Error;
use crate::i18n::{Lang, Tr};
use crate::oidc::authorize::{ClientResponse, ResponseMode};
use crate::oidc::consent::{ConsentDecision, ConsentOutcome};
use crate::oidc::flow::LOGIN_TRANSACTION_TTL;
use crate::oidc::service::{authorize as authorize_request, AuthorizeOutcome};
use crate::web::cookies;
use crate::web::login::{expired_page, lang_hints, refused_page};
use crate::web::middleware::request_origin;

/// The only script Guichet serves: it submits the form_post page's form. The page's CSP allows
/// exactly this script, by hash.
const AUTO_SUBMIT_SCRIPT: &str = "document.forms[0].submit();";

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPostPage<'a> {
    action: &'a str,
    fields: &'a [(&'static str, String)],
}

/// The form_post page's Content-Security-Policy: no resource at all, the one script by hash,
/// and the form may only go to the client's redirect URI.
fn form_post_csp(action: &str) -> String {
    // The script never changes: hash it once.
    static HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine;
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, AUTO_SUBMIT_SCRIPT.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    });
    let hash = HASH.as_str();
    // The redirect URI is a registered, parsed URL; quotes and semicolons cannot appear in it
    // unescaped, but keep the directive safe regardless.
    let target: String = action
        .chars()
        .filter(|c| !matches!(c, ';' | ',' | '\'' | ' '))
        .collect();
    format!(
        "default-src 'none'; script-src 'sha256-{hash}'; form-action {target}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Sends the authorization response to the client in the mode it asked for, with `cookies`.
pub(crate) fn answer_client(
    response: &ClientResponse,
    cookies: Vec<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    let mut builder = match response.mode {
        ResponseMode::Query => see_other(&response.location()),
        ResponseMode::FormPost => {
            let mut b = HttpResponse::Ok();
            b.insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((
                    header::CONTENT_SECURITY_POLICY,
                    form_post_csp(&response.redirect_uri),
                ));
            b
        }
    };
    for cookie in cookies {
        builder.cookie(cookie);
    }
    match response.mode {
        ResponseMode::Query => builder.finish(),
        ResponseMode::FormPost => match (FormPostPage {
            action: &response.redirect_uri,
            fields: &response.params,
        })
        .render()
        {
            Ok(body) => builder.body(body),
            Err(e) => {
                tracing::error!(error = %e, "template rendering failed");
                HttpResponse::InternalServerError().finish()
            }
        },
    }
}

/// An HTML page that is never cached; a template failure is logged and answered with a 500.
pub fn html(
    status: actix_web::http::StatusCode,
    body: Result<String, askama::Error>,
) -> HttpResponse {
    match body {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

pub(crate) fn see_other(location: &str) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::SeeOther();
    response
        .insert_header((header::LOCATION, location.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    response
}

/// The authorization endpoint.
pub async fn authorize(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let session = session(&req, state.https);
    let lang = page_lang(&lang_hints(&req, state.https));
    Ok(
        match authorize_request(&state, req.query_string(), session, &request_origin(&req)).await? {
            AuthorizeOutcome::ErrorPage { description } => refused_page(lang, description),
            AuthorizeOutcome::Respond(response) => answer_client(&response, Vec::new()),
            AuthorizeOutcome::SignIn { transaction } => see_other("/login")
                .cookie(cookies::build(
                    cookies::TRANSACTION,
                    transaction,
                    state.https,
                    LOGIN_TRANSACTION_TTL.num_seconds(),
                ))
                .finish(),
            AuthorizeOutcome::Consent { transaction } => see_other("/consent")
                .cookie(cookies::build(
                    cookies::TRANSACTION,
                    transaction,
                    state.https,
                    LOGIN_TRANSACTION_TTL.num_seconds(),
                ))
                .finish(),
        },
    )
}

fn transaction(req: &HttpRequest, https: bool) -> Option<String> {
    cookies::value(req, cookies::TRANSACTION, https)
}

fn session(req: &HttpRequest, https: bool) -> Option<String> {
    cookies::value(req, cookies::SESSION, https)
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    t: Tr,
    title: String,
    switch_href: String,
    intro: String,
    labels: Vec<String>,
    csrf: &'a str,
}

/// What a scope lets the portal see.
fn scope_label(t: Tr, scope: &str) -> String {
    match scope {
        "openid" | "profile" | "email" | "offline_access" => t.get(&format!("scope-{scope}")),
        _ => t.get("scope-other"),
    }
}

fn render_consent(outcome: ConsentOutcome, https: bool, lang: Lang) -> HttpResponse {
    let t = Tr(lang);
    match outcome {
        ConsentOutcome::Expired => expired_page(lang),
        ConsentOutcome::Form(form) => {
            let mut labels: Vec<String> = form.scopes.iter().map(|s| scope_label(t, s)).collect();
            labels.dedup();
            html(
                actix_web::http::StatusCode::OK,
                ConsentPage {
                    t,
                    title: t.get("consent-title"),
                    switch_href: format!("/login/lang?to={}&next=consent", lang.other().tag()),
                    intro: t.arg("consent-intro", "portal", &form.client_name),
                    labels,
                    csrf: &form.csrf,
                }
                .render(),
            )
        }
        ConsentOutcome::Done(response) => answer_client(
            &response,
            vec![cookies::removal(cookies::TRANSACTION, https)],
        ),
    }
}

/// The consent page.
pub async fn consent_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let outcome = crate::oidc::consent::consent_form(
        &state,
        transaction(&req, state.https),
        session(&req, state.https),
    )
    .await?;
    Ok(render_consent(
        outcome,
        state.https,
        page_lang(&lang_hints(&req, state.https)),
    ))
}

/// Fields of the consent form.
#[derive(Deserialize)]
pub struct ConsentFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
}

/// The person's answer on the consent page.
pub async fn consent_submit(
    req: HttpRequest,
    form: web::Form<ConsentFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let form = form.into_inner();
    let decision = ConsentDecision {
        csrf: form.csrf,
        allow: form.decision == "allow",
        origin: request_origin(&req),
    };
    let outcome = crate::oidc::consent::decide(
        &state,
        transaction(&req, state.https),
        session(&req, state.https),
        decision,
    )
    .await?;
    Ok(render_consent(
        outcome,
        state.https,
        page_lang(&lang_hints(&req, state.https)),
    ))
}

/// The discovery document.
pub async fn discovery(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(header::ContentType::json())
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(state.discovery.clone())
}
