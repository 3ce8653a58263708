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

use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::{web, FromRequest, Handler, HttpRequest, Resource, Responder};

/// One path of the route table and the methods it takes. A method it does not take gets 405
/// with `Allow` naming those it does, and a body its callers can read: a page in the person's
/// language, or an error object on the protocol endpoints and the JSON APIs.
struct Path {
    resource: Resource,
    allow: Vec<&'static str>,
}

/// The path `path`, taking no method yet.
fn path(path: &str) -> Path {
    Path {
        resource: web::resource(path),
        allow: Vec::new(),
    }
}

impl Path {
    /// GET only: for the few GETs that act (redeeming a one-time code, an export recorded in
    /// the audit log), where a HEAD must not spend a code or record an export no one received.
    fn get<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.get(handler);
        self.allow.push("GET");
        self
    }

    /// GET and HEAD: a general-purpose server answers HEAD wherever GET only reads (RFC 9110,
    /// section 9.1).
    fn read<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args> + Clone,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.get(handler.clone()).head(handler);
        self.allow.extend(["GET", "HEAD"]);
        self
    }

    fn post<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.post(handler);
        self.allow.push("POST");
        self
    }
}

impl HttpServiceFactory for Path {
    fn register(self, config: &mut AppService) {
        // Built once per path; method names always make a valid header value.
        let allow = actix_web::http::header::HeaderValue::from_str(&self.allow.join(", ")).ok();
        self.resource
            .default_service(web::to(move |req: HttpRequest| {
                let allow = allow.clone();
                async move { unreadable::not_allowed(&req, allow) }
            }))
            .register(config)
    }
}

/// Every route of the identity provider, in one table: one entry per path, so that a method
/// it does not take gets 405 rather than the "no page here" answer.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(path("/health/live").read(health::live))
        .service(path("/health/ready").read(health::ready))
        .service(path("/jwks").read(jwks::jwks))
        .service(path("/.well-known/openid-configuration").read(authorize::discovery))
        .service(path("/authorize").get(authorize::authorize))
        .service(path("/assets/guichet.css").read(login::stylesheet))
        .service(path("/dev/outbox").read(dev::outbox))
        .service(
            path("/login")
                .read(login::page)
                .post(login::submit_password),
        )
        .service(path("/login/lang").read(login::switch_language))
        .service(path("/login/second-factor").post(login::submit_second_factor))
        .service(path("/login/resend").post(login::resend))
        .service(path("/login/restart").post(login::restart))
        .service(
            path("/login/reset")
                .read(login::reset_page)
                .post(login::submit_reset_email),
        )
        .service(path("/login/reset/code").post(login::submit_reset_code))
        .service(path("/login/password").post(login::submit_new_password))
        .service(path("/login/enrol").post(login::submit_enrol_choice))
        .service(path("/login/enrol/app").post(login::submit_enrol_app))
        .service(path("/login/enrol/email").post(login::submit_enrol_email))
        .service(path("/account").read(account::page))
        .service(path("/account/callback").get(account::callback))
        .service(path("/account/sessions/end").post(account::end_session))
        .service(path("/account/api/sign-ins").read(account::api_sign_ins))
        .service(path("/audit").read(audit::page))
        .service(path("/audit/export.csv").get(audit::export_csv))
        .service(path("/audit/export.jsonl").get(audit::export_jsonl))
        .service(path("/audit/api/events").read(audit::api_events))
        .service(path("/staff").read(staff::search))
        .service(path("/staff/people/{id}").read(staff::person))
        .service(path("/staff/people/{id}/{action}").post(staff::person_action))
        .service(
            path("/staff/clients")
                .read(staff::clients)
                .post(staff::create_client),
        )
        .service(path("/staff/clients/{id}/{action}").post(staff::client_action))
        .service(path("/staff/keys/rotate").post(staff::rotate_keys))
        .service(
            path("/staff/policies")
                .read(staff::policies)
                .post(staff::change_policies),
        )
        .service(
            path("/staff/api/policies")
                .read(staff_api::policies)
                .post(staff_api::change_policies),
        )
        .service(path("/staff/api/people").read(staff_api::find))
        .service(path("/staff/api/people/{id}").read(staff_api::person))
        .service(path("/staff/api/people/{id}/{action}").post(staff_api::person_action))
        .service(
            path("/staff/api/clients")
                .read(staff_api::clients)
                .post(staff_api::create_client),
        )
        .service(path("/staff/api/clients/{id}/secret").post(staff_api::rotate_secret))
        .service(
            path("/email-change")
                .read(staff::email_change_form)
                .post(staff::email_change_submit),
        )
        .service(
            path("/consent")
                .read(authorize::consent_form)
                .post(authorize::consent_submit),
        )
        .service(
            path("/end_session")
                .get(logout::end_session_get)
                .post(logout::end_session_post),
        )
        .service(path("/end_session/confirm").post(logout::end_session_confirm))
        .service(path("/revoke").post(token::revoke))
        .service(path("/introspect").post(token::introspect))
        .service(path("/userinfo").read(userinfo::get).post(userinfo::post))
        .service(path("/token").post(token::token));
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
