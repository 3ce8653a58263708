//! `GET /jwks`: the public signing keys (RFC 7517), pre-serialised at each key reload.

use actix_web::http::header::{self, ContentType};
use actix_web::{web, HttpResponse};

use crate::app::AppState;

/// Answers the JWKS. Relying parties may cache it for a minute: a new key is published for two
/// refresh intervals before it signs, and they refetch on an unknown `kid`.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType::json())
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .body(state.keys.jwks_json())
}
