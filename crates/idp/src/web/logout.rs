//! `GET|POST /end_session` and its confirmation form.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::app::AppState;
use crate::error::Error;
use crate::oidc::logout::{confirm, end_session, EndSessionOutcome};
use crate::web::cookies;

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    confirm: bool,
    csrf: &'a str,
    client_name: Option<&'a str>,
    fields: &'a [(String, String)],
}

fn render(outcome: EndSessionOutcome, https: bool) -> HttpResponse {
    let page = |status: StatusCode, body: Result<String, askama::Error>| match body {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .cookie(cookies::removal(cookies::SESSION, https))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            HttpResponse::InternalServerError().finish()
        }
    };
    match outcome {
        EndSessionOutcome::ErrorPage { description } => HttpResponse::BadRequest()
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(crate::web::authorize::error_body(description)),
        EndSessionOutcome::Confirm {
            csrf,
            client_name,
            fields,
        } => match (LogoutPage {
            confirm: true,
            csrf: &csrf,
            client_name: client_name.as_deref(),
            fields: &fields,
        })
        .render()
        {
            // Asking does not sign out: keep the session cookie.
            Ok(body) => HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(body),
            Err(e) => {
                tracing::error!(error = %e, "template rendering failed");
                HttpResponse::InternalServerError().finish()
            }
        },
        EndSessionOutcome::Done {
            redirect: Some(location),
        } => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .cookie(cookies::removal(cookies::SESSION, https))
            .finish(),
        EndSessionOutcome::Done { redirect: None } => page(
            StatusCode::OK,
            LogoutPage {
                confirm: false,
                csrf: "",
                client_name: None,
                fields: &[],
            }
            .render(),
        ),
    }
}

fn session(req: &HttpRequest, https: bool) -> Option<String> {
    req.cookie(&cookies::name(cookies::SESSION, https))
        .map(|c| c.value().to_string())
}

/// `GET /end_session`.
pub async fn end_session_get(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let outcome = end_session(&state, req.query_string(), session(&req, state.https)).await?;
    Ok(render(outcome, state.https))
}

/// `POST /end_session` (form-encoded parameters).
pub async fn end_session_post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let raw = String::from_utf8_lossy(&body);
    let outcome = end_session(&state, &raw, session(&req, state.https)).await?;
    Ok(render(outcome, state.https))
}

/// `POST /end_session/confirm`.
pub async fn end_session_confirm(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let raw = String::from_utf8_lossy(&body);
    let outcome = confirm(&state, &raw, session(&req, state.https)).await?;
    Ok(render(outcome, state.https))
}
