//! `GET|POST /end_session` and its confirmation form.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::app::AppState;
use crate::authn::journey::page_lang;
use crate::error::Error;
use crate::i18n::{Lang, Tr};
use crate::oidc::logout::{confirm, end_session, EndSessionOutcome};
use crate::web::authorize::html;
use crate::web::cookies;
use crate::web::login::{lang_hints, refused_page};

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    t: Tr,
    title: String,
    switch_href: &'static str,
    confirm: bool,
    csrf: &'a str,
    client_name: Option<&'a str>,
    fields: &'a [(String, String)],
}

fn render(outcome: EndSessionOutcome, https: bool, lang: Lang) -> HttpResponse {
    let t = Tr(lang);
    // No switch: it would leave this page. The logout pages follow the remembered language.
    let switch_href = "";
    match outcome {
        EndSessionOutcome::ErrorPage { description } => refused_page(lang, description),
        // Asking does not sign out: the session cookie stays.
        EndSessionOutcome::Confirm {
            csrf,
            client_name,
            fields,
        } => html(
            StatusCode::OK,
            LogoutPage {
                t,
                title: t.get("logout-title"),
                switch_href,
                confirm: true,
                csrf: &csrf,
                client_name: client_name.as_deref(),
                fields: &fields,
            }
            .render(),
        ),
        EndSessionOutcome::Done {
            redirect: Some(location),
        } => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .cookie(cookies::removal(cookies::SESSION, https))
            .finish(),
        EndSessionOutcome::Done { redirect: None } => signed_out_page(lang, https),
    }
}

/// "You are signed out", clearing the session cookie.
pub(crate) fn signed_out_page(lang: Lang, https: bool) -> HttpResponse {
    let t = Tr(lang);
    let mut response = html(
        StatusCode::OK,
        LogoutPage {
            t,
            title: t.get("logout-done-title"),
            switch_href: "",
            confirm: false,
            csrf: "",
            client_name: None,
            fields: &[],
        }
        .render(),
    );
    for name in [cookies::SESSION, cookies::ACCOUNT] {
        if let Err(e) = response.add_cookie(&cookies::removal(name, https)) {
            tracing::error!(error = %e, "could not clear a session cookie");
        }
    }
    response
}

fn session(req: &HttpRequest, https: bool) -> Option<String> {
    cookies::value(req, cookies::SESSION, https)
}

/// `GET /end_session`.
pub async fn end_session_get(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let outcome = end_session(&state, req.query_string(), session(&req, state.https)).await?;
    Ok(render(
        outcome,
        state.https,
        page_lang(&lang_hints(&req, state.https)),
    ))
}

/// `POST /end_session` (form-encoded parameters).
pub async fn end_session_post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let raw = String::from_utf8_lossy(&body);
    let outcome = end_session(&state, &raw, session(&req, state.https)).await?;
    Ok(render(
        outcome,
        state.https,
        page_lang(&lang_hints(&req, state.https)),
    ))
}

/// `POST /end_session/confirm`.
pub async fn end_session_confirm(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let raw = String::from_utf8_lossy(&body);
    let outcome = confirm(&state, &raw, session(&req, state.https)).await?;
    Ok(render(
        outcome,
        state.https,
        page_lang(&lang_hints(&req, state.https)),
    ))
}
