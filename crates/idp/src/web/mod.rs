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

use actix_web::web;

/// Every route of the identity provider, in one table.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(health::live))
        .route("/health/ready", web::get().to(health::ready))
        .route("/jwks", web::get().to(jwks::jwks))
        .route(
            "/.well-known/openid-configuration",
            web::get().to(authorize::discovery),
        )
        .route("/authorize", web::get().to(authorize::authorize))
        .route("/assets/guichet.css", web::get().to(login::stylesheet))
        .route("/dev/outbox", web::get().to(dev::outbox))
        .route("/login", web::get().to(login::page))
        .route("/login", web::post().to(login::submit_password))
        .route("/login/lang", web::get().to(login::switch_language))
        .route(
            "/login/second-factor",
            web::post().to(login::submit_second_factor),
        )
        .route("/login/resend", web::post().to(login::resend))
        .route("/login/restart", web::post().to(login::restart))
        .route("/login/reset", web::get().to(login::reset_page))
        .route("/login/reset", web::post().to(login::submit_reset_email))
        .route(
            "/login/reset/code",
            web::post().to(login::submit_reset_code),
        )
        .route(
            "/login/password",
            web::post().to(login::submit_new_password),
        )
        .route("/login/enrol", web::post().to(login::submit_enrol_choice))
        .route("/login/enrol/app", web::post().to(login::submit_enrol_app))
        .route(
            "/login/enrol/email",
            web::post().to(login::submit_enrol_email),
        )
        .route("/account", web::get().to(account::page))
        .route("/account/callback", web::get().to(account::callback))
        .route(
            "/account/sessions/end",
            web::post().to(account::end_session),
        )
        .route(
            "/account/api/sign-ins",
            web::get().to(account::api_sign_ins),
        )
        .route("/audit", web::get().to(audit::page))
        .route("/audit/export.csv", web::get().to(audit::export_csv))
        .route("/audit/export.jsonl", web::get().to(audit::export_jsonl))
        .route("/audit/api/events", web::get().to(audit::api_events))
        .route("/staff", web::get().to(staff::search))
        .route("/staff/people/{id}", web::get().to(staff::person))
        .route(
            "/staff/people/{id}/{action}",
            web::post().to(staff::person_action),
        )
        .route("/staff/clients", web::get().to(staff::clients))
        .route("/staff/clients", web::post().to(staff::create_client))
        .route(
            "/staff/clients/{id}/{action}",
            web::post().to(staff::client_action),
        )
        .route("/staff/keys/rotate", web::post().to(staff::rotate_keys))
        .route("/staff/policies", web::get().to(staff::policies))
        .route("/staff/policies", web::post().to(staff::change_policies))
        .route("/staff/api/policies", web::get().to(staff_api::policies))
        .route(
            "/staff/api/policies",
            web::post().to(staff_api::change_policies),
        )
        .route("/staff/api/people", web::get().to(staff_api::find))
        .route("/staff/api/people/{id}", web::get().to(staff_api::person))
        .route(
            "/staff/api/people/{id}/{action}",
            web::post().to(staff_api::person_action),
        )
        .route("/staff/api/clients", web::get().to(staff_api::clients))
        .route(
            "/staff/api/clients",
            web::post().to(staff_api::create_client),
        )
        .route(
            "/staff/api/clients/{id}/secret",
            web::post().to(staff_api::rotate_secret),
        )
        .route("/email-change", web::get().to(staff::email_change_form))
        .route("/email-change", web::post().to(staff::email_change_submit))
        .route("/consent", web::get().to(authorize::consent_form))
        .route("/consent", web::post().to(authorize::consent_submit))
        .route("/end_session", web::get().to(logout::end_session_get))
        .route("/end_session", web::post().to(logout::end_session_post))
        .route(
            "/end_session/confirm",
            web::post().to(logout::end_session_confirm),
        )
        .route("/revoke", web::post().to(token::revoke))
        .route("/introspect", web::post().to(token::introspect))
        .route("/userinfo", web::get().to(userinfo::get))
        .route("/userinfo", web::post().to(userinfo::post))
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
