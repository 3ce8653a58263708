//! OAuth 2.0 error objects (RFC 6749 section 5.2): a registered code, a public description, and
//! a private detail that only reaches the log.

/// An error answered to a client as `{"error": ..., "error_description": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// RFC 6749 error code.
    pub code: &'static str,
    /// Safe to show to the client.
    pub description: &'static str,
    /// HTTP status.
    pub status: u16,
    /// Which `WWW-Authenticate` challenge to send, if any.
    pub challenge: Challenge,
}

/// The `WWW-Authenticate` scheme of a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    None,
    /// Client authentication at the token endpoint (RFC 6749 5.2).
    Basic,
    /// Bearer token use (RFC 6750 3).
    Bearer,
}

impl OAuthError {
    const fn new(code: &'static str, description: &'static str, status: u16) -> Self {
        Self {
            code,
            description,
            status,
            challenge: Challenge::None,
        }
    }

    /// Malformed request: missing, repeated or invalid parameter.
    pub const fn invalid_request(description: &'static str) -> Self {
        Self::new("invalid_request", description, 400)
    }

    /// Client authentication failed (401 with a `WWW-Authenticate` challenge).
    pub const fn invalid_client(description: &'static str) -> Self {
        Self {
            challenge: Challenge::Basic,
            ..Self::new("invalid_client", description, 401)
        }
    }

    /// The access token is missing, malformed, expired or revoked (RFC 6750 3.1).
    pub const fn invalid_token(description: &'static str) -> Self {
        Self {
            challenge: Challenge::Bearer,
            ..Self::new("invalid_token", description, 401)
        }
    }

    /// The access token lacks a needed scope (RFC 6750 3.1).
    pub const fn insufficient_scope(description: &'static str) -> Self {
        Self {
            challenge: Challenge::Bearer,
            ..Self::new("insufficient_scope", description, 403)
        }
    }

    /// The grant is invalid, expired, revoked or issued to another client.
    pub const fn invalid_grant(description: &'static str) -> Self {
        Self::new("invalid_grant", description, 400)
    }

    /// The client may not use this grant type.
    pub const fn unauthorized_client(description: &'static str) -> Self {
        Self::new("unauthorized_client", description, 400)
    }

    /// The grant type is not supported by this server.
    pub const fn unsupported_grant_type(description: &'static str) -> Self {
        Self::new("unsupported_grant_type", description, 400)
    }

    /// A requested scope is unknown or not allowed for the client.
    pub const fn invalid_scope(description: &'static str) -> Self {
        Self::new("invalid_scope", description, 400)
    }
}
