//! Demo relying parties of Guichet: which portal to run and where it lives.
//!
//! The portals themselves (file portal, ATIP portal) are built on this crate; this version
//! holds their identity and settings only.

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

/// Portal configuration errors.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortalError {
    #[error("unknown portal `{0}`; use file-portal or atip")]
    UnknownKind(String),
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Where a portal runs and which identity provider it trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSettings {
    pub kind: PortalKind,
    /// The portal's own public URL; its callback is `{public_url}/callback`.
    pub public_url: Url,
    /// Guichet's issuer URL.
    pub issuer: Url,
}

impl PortalSettings {
    /// Checks both URLs: http(s) only, https unless loopback.
    pub fn new(kind: PortalKind, public_url: &str, issuer: &str) -> Result<Self, PortalError> {
        Ok(Self {
            kind,
            public_url: checked_url("public_url", public_url)?,
            issuer: checked_url("issuer", issuer)?,
        })
    }

    /// The redirect URI registered for the portal.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}/callback",
            self.public_url.as_str().trim_end_matches('/')
        )
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
        let s = PortalSettings::new(
            PortalKind::Atip,
            "http://localhost:8082/",
            "http://localhost:8080",
        )
        .expect("valid");
        assert_eq!(s.redirect_uri(), "http://localhost:8082/callback");
        assert_eq!(s.kind.client_id(), "atip-portal");
        assert!(PortalSettings::new(
            PortalKind::Atip,
            "http://portal.example.org",
            "http://localhost:8080"
        )
        .is_err());
        assert!(
            PortalSettings::new(PortalKind::Atip, "ftp://localhost", "http://localhost:8080")
                .is_err()
        );
    }
}
