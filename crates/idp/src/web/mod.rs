//! HTTP layer: the route table, middleware and handlers. Handlers are thin: they parse, call
//! the domain or the store, and render.

pub mod account;
pub mod audit;
pub mod authorize;
pub mod cookies;
pub mod dev;
pub mod health;
pub mod jwks;
pub mod login;
pub mod logout;
pub mod middleware;
pub mod staff;
pub mod staff_api;
pub mod token;
pub mod unreadable;
pub mod userinfo;

use actix_web::{web, FromRequest, Handler, Resource, Responder};

/// A resource answering GET and HEAD with `handler`: a general-purpose server answers HEAD
/// wherever it answers GET (RFC 9110, section 9.1). A method a resource does not take gets 405
/// with `Allow`. The few GETs that act (redeeming a one-time code, an export recorded in the
/// audit log) take GET only: a HEAD must not spend a code or record an export no one received.
fn readable<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args> + Clone,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path).get(handler.clone()).head(handler)
}

/// Every route of the identity provider, in one table: one resource per path, so that a
/// method it does not take gets 405 with `Allow` rather than the "no page here" answer.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(readable("/health/live", health::live))
        .service(readable("/health/ready", health::ready))
        .service(readable("/jwks", jwks::jwks))
        .service(readable(
            "/.well-known/openid-configuration",
            authorize::discovery,
        ))
        .service(web::resource("/authorize").get(authorize::authorize))
        .service(readable("/assets/guichet.css", login::stylesheet))
        .service(readable("/dev/outbox", dev::outbox))
        .service(readable("/login", login::page).post(login::submit_password))
        .service(readable("/login/lang", login::switch_language))
        .service(web::resource("/login/second-factor").post(login::submit_second_factor))
        .service(web::resource("/login/resend").post(login::resend))
        .service(web::resource("/login/restart").post(login::restart))
        .service(readable("/login/reset", login::reset_page).post(login::submit_reset_email))
        .service(web::resource("/login/reset/code").post(login::submit_reset_code))
        .service(web::resource("/login/password").post(login::submit_new_password))
        .service(web::resource("/login/enrol").post(login::submit_enrol_choice))
        .service(web::resource("/login/enrol/app").post(login::submit_enrol_app))
        .service(web::resource("/login/enrol/email").post(login::submit_enrol_email))
        .service(readable("/account", account::page))
        .service(web::resource("/account/callback").get(account::callback))
        .service(web::resource("/account/sessions/end").post(account::end_session))
        .service(readable("/account/api/sign-ins", account::api_sign_ins))
        .service(readable("/audit", audit::page))
        .service(web::resource("/audit/export.csv").get(audit::export_csv))
        .service(web::resource("/audit/export.jsonl").get(audit::export_jsonl))
        .service(readable("/audit/api/events", audit::api_events))
        .service(readable("/staff", staff::search))
        .service(readable("/staff/people/{id}", staff::person))
        .service(web::resource("/staff/people/{id}/{action}").post(staff::person_action))
        .service(readable("/staff/clients", staff::clients).post(staff::create_client))
        .service(web::resource("/staff/clients/{id}/{action}").post(staff::client_action))
        .service(web::resource("/staff/keys/rotate").post(staff::rotate_keys))
        .service(readable("/staff/policies", staff::policies).post(staff::change_policies))
        .service(
            readable("/staff/api/policies", staff_api::policies).post(staff_api::change_policies),
        )
        .service(readable("/staff/api/people", staff_api::find))
        .service(readable("/staff/api/people/{id}", staff_api::person))
        .service(web::resource("/staff/api/people/{id}/{action}").post(staff_api::person_action))
        .service(readable("/staff/api/clients", staff_api::clients).post(staff_api::create_client))
        .service(web::resource("/staff/api/clients/{id}/secret").post(staff_api::rotate_secret))
        .service(
            readable("/email-change", staff::email_change_form).post(staff::email_change_submit),
        )
        .service(readable("/consent", authorize::consent_form).post(authorize::consent_submit))
        .service(
            web::resource("/end_session")
                .get(logout::end_session_get)
                .post(logout::end_session_post),
        )
        .service(web::resource("/end_session/confirm").post(logout::end_session_confirm))
        .service(web::resource("/revoke").post(token::revoke))
        .service(web::resource("/introspect").post(token::introspect))
        .service(readable("/userinfo", userinfo::get).post(userinfo::post))
        .service(
            web::resource("/token")
                .route(web::post().to(token::token))
                .default_service(web::to(token::method_not_allowed)),
        );
}

/// `at` (UTC, as stored) as people read it: in `zone`, to the minute, with the zone's
/// abbreviation (`2026-12-04 09:05 EST`).
pub(crate) fn local_time(zone: &jiff::tz::TimeZone, at: chrono::NaiveDateTime) -> String {
    match jiff::Timestamp::from_second(at.and_utc().timestamp()) {
        Ok(t) => t
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_the_deployments_zone_with_its_abbreviation() {
        let at =
            |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("time");
        let toronto = jiff::tz::TimeZone::get("America/Toronto").expect("zone");
        assert_eq!(
            local_time(&toronto, at("2026-12-04 14:05:59")),
            "2026-12-04 09:05 EST"
        );
        assert_eq!(
            local_time(&toronto, at("2026-07-01 03:30:00")),
            "2026-06-30 23:30 EDT",
            "summer time, and the day before"
        );
        assert_eq!(
            local_time(&jiff::tz::TimeZone::UTC, at("2026-12-04 14:05:00")),
            "2026-12-04 14:05 UTC"
        );
    }
}
