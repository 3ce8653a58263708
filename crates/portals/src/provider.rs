//! Guichet as the portal sees it: its discovery document, an `openidconnect` client built from
//! it, and its published keys (for logout tokens). Discovery happens on first use and again
//! when a token names a key the portal has not seen (after a key rotation).

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::CoreClient;
use openidconnect::{
    ClientId, ClientSecret, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IssuerUrl, ProviderMetadataWithLogout, RedirectUrl,
};
use tokio::sync::RwLock;

use crate::{PortalError, PortalSettings};

/// The client type `from_provider_metadata` yields once the redirect URI is set.
pub type PortalClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What the portal learned from discovery.
pub struct Provider {
    pub client: PortalClient,
    pub end_session: Option<EndSessionUrl>,
    /// The provider's keys as a JWK Set, for logout tokens.
    pub jwks: jsonwebtoken::jwk::JwkSet,
    fetched: Instant,
}

/// The link to Guichet, shared by every request.
pub struct ProviderLink {
    settings: PortalSettings,
    /// No redirects: a token or discovery request that redirects is refused (SSRF).
    pub http: reqwest::Client,
    current: RwLock<Option<Arc<Provider>>>,
}

/// Rediscovery is not attempted more often than this (a token naming an unknown key cannot
/// make the portal hammer the provider).
const MIN_REFRESH: Duration = Duration::from_secs(10);

impl ProviderLink {
    /// A link; nothing is fetched until first needed.
    pub fn new(settings: PortalSettings) -> Result<Self, PortalError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| PortalError::Provider(e.to_string()))?;
        Ok(Self {
            settings,
            http,
            current: RwLock::new(None),
        })
    }

    /// The provider, discovered on first use.
    pub async fn provider(&self) -> Result<Arc<Provider>, PortalError> {
        if let Some(p) = self.current.read().await.as_ref() {
            return Ok(p.clone());
        }
        self.refresh(None).await
    }

    /// Discovers again, unless `seen` is no longer current or the last discovery is recent.
    pub async fn refresh(
        &self,
        seen: Option<&Arc<Provider>>,
    ) -> Result<Arc<Provider>, PortalError> {
        let mut current = self.current.write().await;
        if let Some(p) = current.as_ref() {
            let newer = seen.is_none_or(|s| !Arc::ptr_eq(s, p));
            if newer || p.fetched.elapsed() < MIN_REFRESH {
                return Ok(p.clone());
            }
        }
        let fresh = Arc::new(self.discover().await?);
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    async fn discover(&self) -> Result<Provider, PortalError> {
        let fail = |e: &dyn std::fmt::Display| PortalError::Provider(e.to_string());
        let issuer =
            IssuerUrl::new(self.settings.issuer_str().to_string()).map_err(|e| fail(&e))?;
        // Discovery checks that the document's issuer is exactly the one configured.
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &self.http)
            .await
            .map_err(|e| fail(&e))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let jwks_uri = metadata.jwks_uri().url().clone();
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.kind.client_id().into()),
            Some(ClientSecret::new(self.settings.client_secret.clone())),
        )
        .set_redirect_uri(RedirectUrl::new(self.settings.redirect_uri()).map_err(|e| fail(&e))?);
        let jwks = self
            .http
            .get(jwks_uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| fail(&e))?
            .json::<jsonwebtoken::jwk::JwkSet>()
            .await
            .map_err(|e| fail(&e))?;
        Ok(Provider {
            client,
            end_session,
            jwks,
            fetched: Instant::now(),
        })
    }

    /// The portal's settings.
    pub fn settings(&self) -> &PortalSettings {
        &self.settings
    }
}
