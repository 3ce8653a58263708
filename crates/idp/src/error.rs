//! The crate's error type and its one mapping to HTTP responses.
//!
//! Internal details go to the log, never to the client: a response carries a stable code and a
//! public description only.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::config::ConfigError;
use crate::crypto::CryptoError;
use crate::oidc::error::{Challenge, OAuthError};
use crate::oidc::keys::KeyError;
use crate::store::StoreError;

/// Everything that can go wrong in the identity provider.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    /// What a command was given cannot be used (an unknown role, a file that cannot be read,
    /// an email no one has). The message says which, and what to give instead.
    #[error("{0}")]
    Command(String),
}

/// Body of an error answer: an RFC 6749-style object, also used outside OAuth endpoints.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: &'static str,
    pub error_description: &'static str,
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::OAuth(e) => StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            Error::Store(StoreError::Pool(_) | StoreError::Connect(_))
            | Error::Redis(_)
            | Error::Mail(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Command(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let Error::OAuth(e) = self {
            // An expected refusal: a short log line, the RFC 6749 object for the client.
            tracing::info!(
                error = e.code,
                status = status.as_u16(),
                "oauth request refused"
            );
            let mut response = HttpResponse::build(status);
            response
                .insert_header(("Cache-Control", "no-store"))
                .insert_header(("Pragma", "no-cache"));
            match e.challenge {
                Challenge::None => {}
                Challenge::Basic => {
                    response.insert_header(("WWW-Authenticate", "Basic realm=\"guichet\""));
                }
                Challenge::Bearer => {
                    response.insert_header((
                        "WWW-Authenticate",
                        format!(
                            "Bearer realm=\"guichet\", error=\"{}\", error_description=\"{}\"",
                            e.code, e.description
                        ),
                    ));
                }
            }
            return response.json(ErrorBody {
                error: e.code,
                error_description: e.description,
            });
        }
        // The private detail is logged here, once, with the request's span.
        tracing::error!(error = %self, status = status.as_u16(), "request failed");
        let body = if status == StatusCode::SERVICE_UNAVAILABLE {
            ErrorBody {
                error: "temporarily_unavailable",
                error_description: "The service is temporarily unavailable. Try again in a moment.",
            }
        } else {
            ErrorBody {
                error: "server_error",
                error_description: "An unexpected error occurred. Try again later.",
            }
        };
        HttpResponse::build(status)
            .insert_header(("Cache-Control", "no-store"))
            .json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn internal_detail_never_reaches_the_client() {
        let err = Error::Store(StoreError::Migration("secret table name".into()));
        let response = err.error_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().try_into_bytes().expect("bytes");
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("secret table name"), "{text}");
        assert!(text.contains("server_error"));
    }
}
