//! `GET|POST /userinfo`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::Error;
use crate::oidc::userinfo::{bearer_token, userinfo as userinfo_claims};

/// The form of a POST: the token may come in the body (RFC 6750 2.2).
#[derive(Deserialize, Default)]
pub struct UserInfoForm {
    access_token: Option<String>,
}

async fn answer(
    req: &HttpRequest,
    form_token: Option<String>,
    state: &AppState,
) -> Result<HttpResponse, Error> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = bearer_token(authorization, form_token)?;
    let claims = userinfo_claims(state, &token).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(claims))
}

/// `GET /userinfo`.
pub async fn get(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    answer(&req, None, &state).await
}

/// `POST /userinfo`.
pub async fn post(
    req: HttpRequest,
    form: Option<web::Form<UserInfoForm>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let token = form.and_then(|f| f.into_inner().access_token);
    answer(&req, token, &state).await
}
