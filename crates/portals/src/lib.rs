//! Demo relying parties of Guichet, integrated the way a portal team would: the member file
//! portal and the ATIP portal. Each is a confidential client using discovery, the code flow
//! with PKCE, state and nonce, strict ID token validation (the `openidconnect` crate, no check
//! relaxed), its own server-side sessions, RP-initiated logout and a back-channel logout
//! receiver.
//!
//! [`app::bind`] starts one; the `portal` binary and the demo call it.

pub mod app;
pub mod i18n;
pub mod logout_token;
pub mod provider;
pub mod sessions;
pub mod web;

use serde::Deserialize;
use url::Url;

/// Which demo portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortalKind {
    /// A professional order's member file ("Access your file").
    FilePortal,
    /// A government access-to-information request portal, with a guest path.
    Atip,
}

impl PortalKind {
    /// The OAuth client id the portal registers with.
    pub fn client_id(self) -> &'static str {
        match self {
            Self::FilePortal => "file-portal",
            Self::Atip => "atip-portal",
        }
    }

    /// Message id of the portal's name.
    pub fn name_id(self) -> &'static str {
        match self {
            Self::FilePortal => "file-name",
            Self::Atip => "atip-name",
        }
    }
}

impl std::str::FromStr for PortalKind {
    type Err = PortalError;

    fn from_str(s: &str) -> Result<Self, PortalError> {
        match s {
            "file-portal" => Ok(Self::FilePortal),
            "atip" | "atip-portal" => Ok(Self::Atip),
            other => Err(PortalError::UnknownKind(other.to_string())),
        }
    }
}

/// What can go wrong in a portal; [`web`] turns each into a page in the visitor's language.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortalError {
    #[error("unknown portal `{0}`; use file-portal or atip")]
    UnknownKind(String),
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
    /// Guichet's discovery document or keys could not be fetched or read.
    #[error("identity provider unavailable: {0}")]
    Provider(String),
    /// The sign-in came back but could not be completed (exchange or token checks failed).
    #[error("sign-in not completed: {0}")]
    SignIn(String),
    /// The portal could not listen.
    #[error("cannot listen on {addr}: {message}")]
    Bind { addr: String, message: String },
}

/// Where a portal runs and which identity provider it trusts.
#[derive(Clone, PartialEq, Eq)]
pub struct PortalSettings {
    pub kind: PortalKind,
    /// The portal's own public URL; its callback is `{public_url}/callback`.
    pub public_url: Url,
    /// Guichet's issuer URL.
    pub issuer: Url,
    /// The client secret registered at Guichet.
    pub client_secret: String,
}

impl std::fmt::Debug for PortalSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalSettings")
            .field("kind", &self.kind)
            .field("public_url", &self.public_url.as_str())
            .field("issuer", &self.issuer.as_str())
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

impl PortalSettings {
    /// Checks both URLs (http(s) only, https unless loopback) and the secret's length.
    pub fn new(
        kind: PortalKind,
        public_url: &str,
        issuer: &str,
        client_secret: &str,
    ) -> Result<Self, PortalError> {
        if client_secret.len() < 32 {
            return Err(PortalError::Invalid {
                key: "client_secret",
                message: "must be at least 32 characters (the secret registered at Guichet)".into(),
            });
        }
        Ok(Self {
            kind,
            public_url: checked_url("public_url", public_url)?,
            issuer: checked_url("issuer", issuer)?,
            client_secret: client_secret.to_string(),
        })
    }

    /// The portal's own address without a trailing slash.
    pub fn base(&self) -> &str {
        self.public_url.as_str().trim_end_matches('/')
    }

    /// The issuer without a trailing slash, as Guichet writes it in tokens.
    pub fn issuer_str(&self) -> &str {
        self.issuer.as_str().trim_end_matches('/')
    }

    /// Whether cookies can use the `__Host-` prefix (https only).
    pub fn https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// The redirect URI registered for the portal.
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.base())
    }
}

fn checked_url(key: &'static str, text: &str) -> Result<Url, PortalError> {
    let url = Url::parse(text).map_err(|e| PortalError::Invalid {
        key,
        message: e.to_string(),
    })?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(PortalError::Invalid {
            key,
            message: "must be https (http only on loopback)".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_urls() {
        assert_eq!("file-portal".parse(), Ok(PortalKind::FilePortal));
        assert_eq!("atip".parse(), Ok(PortalKind::Atip));
        assert!("other".parse::<PortalKind>().is_err());
        let secret = "s".repeat(32);
        let s = PortalSettings::new(
            PortalKind::Atip,
            "http://localhost:8082/",
            "http://localhost:8080",
            &secret,
        )
        .expect("valid");
        assert!(
            !format!("{s:?}").contains(&secret),
            "the secret is never printed"
        );
        assert!(PortalSettings::new(
            PortalKind::Atip,
            "http://localhost:8082/",
            "http://localhost:8080",
            "short"
        )
        .is_err());
        assert_eq!(s.redirect_uri(), "http://localhost:8082/callback");
        assert_eq!(s.kind.client_id(), "atip-portal");
        assert!(PortalSettings::new(
            PortalKind::Atip,
            "http://portal.example.org",
            "http://localhost:8080",
            &secret
        )
        .is_err());
        assert!(PortalSettings::new(
            PortalKind::Atip,
            "ftp://localhost",
            "http://localhost:8080",
            &secret
        )
        .is_err());
    }
}
