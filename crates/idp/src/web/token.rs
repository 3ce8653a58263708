//! `POST /token`: parses the HTTP request, calls the token service, renders JSON.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::app::AppState;
use crate::error::Error;
use crate::oidc::token::{exchange, TokenInput};
use crate::web::middleware::request_origin;

fn token_input(req: &HttpRequest, body: web::Bytes) -> TokenInput {
    let form_encoded = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let header_text = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    TokenInput {
        form_encoded,
        authorization: header_text(header::AUTHORIZATION),
        body: body.to_vec(),
        origin: request_origin(req),
    }
}

fn no_store(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    response
}

/// The token endpoint.
pub async fn token(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let response = exchange(&state, token_input(&req, body)).await?;
    Ok(no_store(HttpResponse::Ok()).json(response))
}

/// The revocation endpoint (RFC 7009): 200 with an empty body whenever the client is
/// authenticated.
pub async fn revoke(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    crate::oidc::revocation::revoke(&state, token_input(&req, body)).await?;
    Ok(no_store(HttpResponse::Ok()).finish())
}

/// The introspection endpoint (RFC 7662).
pub async fn introspect(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let answer = crate::oidc::revocation::introspect(&state, token_input(&req, body)).await?;
    Ok(no_store(HttpResponse::Ok()).json(answer))
}
