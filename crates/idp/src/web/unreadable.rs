//! Answers for requests no handler can take: a query string, form or JSON body that does not
//! parse, a body of the wrong type or over the limit, a path with no route. A browser gets a
//! page in its person's language saying what to do next; the JSON APIs get an RFC 6749-style
//! error object. The parse error itself is never echoed: serde's messages can quote what was
//! sent, which may be a password.

use actix_web::error::{InternalError, JsonPayloadError, QueryPayloadError, UrlencodedError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::app::AppState;
use crate::authn::journey::page_lang;
use crate::error::ErrorBody;
use crate::web::login::{error_page, lang_hints, SWITCH_PAGES};

/// What could not be read, for the answer's status and wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unreadable {
    Query,
    Body,
    ContentType,
    TooLarge,
}

impl Unreadable {
    fn status(self) -> StatusCode {
        match self {
            Self::Query | Self::Body => StatusCode::BAD_REQUEST,
            Self::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The API's `error_description`; pages say it with their messages.
    fn description(self) -> &'static str {
        match self {
            Self::Query => "The query string could not be read.",
            Self::Body => "The body is not the JSON object this endpoint takes.",
            Self::ContentType => "The body must be application/json.",
            Self::TooLarge => "The body is larger than allowed.",
        }
    }

    fn message_id(self) -> &'static str {
        match self {
            Self::TooLarge => "unreadable-too-large",
            _ => "unreadable-message",
        }
    }
}

/// Whether `path` is `prefix` or below it (`/staff/api/x` is under `/staff/api`; `/staff/apis`
/// is not).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Paths answered in JSON: the JSON APIs, and the protocol endpoints a client calls (RFC 6749
/// error objects there).
const JSON_PATHS: [&str; 11] = [
    "/staff/api",
    "/audit/api",
    "/account/api",
    "/token",
    "/revoke",
    "/introspect",
    "/userinfo",
    "/jwks",
    "/.well-known",
    "/health/live",
    "/health/ready",
];

fn answers_in_json(req: &HttpRequest) -> bool {
    JSON_PATHS.iter().any(|prefix| under(req.path(), prefix))
}

fn json_error(status: StatusCode, error: &'static str, description: &'static str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .json(ErrorBody {
            error,
            error_description: description,
        })
}

fn page(req: &HttpRequest, status: StatusCode, texts: [&str; 3]) -> HttpResponse {
    let https = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.https);
    error_page(
        page_lang(&lang_hints(req, https)),
        status,
        texts,
        switch_back_to(req.path()),
    )
}

/// The page a language switch from here leads back to: the one the request was for, when it
/// is one the switch knows (a console page with a mistyped filter, say); the longest match,
/// so that `/staff/clients` is not taken for `/staff`.
fn switch_back_to(path: &str) -> Option<&'static str> {
    SWITCH_PAGES
        .iter()
        .filter(|(_, page)| under(path, page))
        .max_by_key(|(_, page)| page.len())
        .map(|(name, _)| *name)
}

/// The answer for a request that could not be read.
fn answer(what: Unreadable, req: &HttpRequest) -> actix_web::Error {
    tracing::info!(
        path = req.path(),
        status = what.status().as_u16(),
        "request could not be read"
    );
    let response = if answers_in_json(req) {
        json_error(what.status(), "invalid_request", what.description())
    } else {
        page(
            req,
            what.status(),
            ["unreadable-title", what.message_id(), "unreadable-next"],
        )
    };
    // The parser's own error is dropped here, not carried as the cause: it may quote a value.
    InternalError::from_response(what.description(), response).into()
}

/// The error handler of every `Query` extractor.
pub fn query(_: QueryPayloadError, req: &HttpRequest) -> actix_web::Error {
    answer(Unreadable::Query, req)
}

/// The error handler of every `Form` extractor.
pub fn form(err: UrlencodedError, req: &HttpRequest) -> actix_web::Error {
    let what = match err {
        UrlencodedError::ContentType => Unreadable::ContentType,
        UrlencodedError::Overflow { .. } => Unreadable::TooLarge,
        _ => Unreadable::Body,
    };
    answer(what, req)
}

/// The error handler of every `Json` extractor.
pub fn json(err: JsonPayloadError, req: &HttpRequest) -> actix_web::Error {
    let what = match err {
        JsonPayloadError::ContentType => Unreadable::ContentType,
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            Unreadable::TooLarge
        }
        _ => Unreadable::Body,
    };
    answer(what, req)
}

/// A method `allow` does not list, on a path that takes those. `HEAD` answers carry no body,
/// whatever is built here.
pub fn not_allowed(req: &HttpRequest, allow: Option<HeaderValue>) -> HttpResponse {
    let mut response = if answers_in_json(req) {
        json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "This endpoint does not take this method; the Allow header lists those it takes.",
        )
    } else {
        page(
            req,
            StatusCode::METHOD_NOT_ALLOWED,
            [
                "not-allowed-title",
                "not-allowed-message",
                "unreadable-next",
            ],
        )
    };
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// Every request no route takes: a page saying so, or a JSON error under the APIs.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    if answers_in_json(&req) {
        json_error(StatusCode::NOT_FOUND, "not_found", "No such endpoint.")
    } else {
        page(
            &req,
            StatusCode::NOT_FOUND,
            ["not-found-title", "not-found-message", "not-found-next"],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn only_the_apis_and_protocol_endpoints_answer_in_json() {
        for (path, json) in [
            ("/staff/api", true),
            ("/staff/api/people/x", true),
            ("/audit/api/events", true),
            ("/staff/apis", false),
            ("/account/api/sign-ins", true),
            ("/token", true),
            ("/.well-known/openid-configuration", true),
            ("/tokens", false),
            ("/account", false),
            ("/staff", false),
            ("/audit", false),
            ("/login", false),
        ] {
            let req = TestRequest::with_uri(path).to_http_request();
            assert_eq!(answers_in_json(&req), json, "{path}");
        }
    }

    #[test]
    fn the_language_switch_leads_back_to_the_page_asked_for() {
        for (path, back) in [
            ("/audit", Some("audit")),
            ("/staff/clients", Some("clients")),
            ("/staff/clients/x/disable", Some("clients")),
            ("/staff/people/x", Some("staff")),
            ("/login/reset", Some("reset")),
            ("/login", None),
            ("/auditx", None),
            ("/nope", None),
        ] {
            assert_eq!(switch_back_to(path), back, "{path}");
        }
    }
}
