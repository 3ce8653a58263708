//! Building and binding one portal.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpServer};

use crate::provider::ProviderLink;
use crate::sessions::SessionStore;
use crate::web::{routes, PortalState};
use crate::{PortalError, PortalSettings};

/// A bound portal, not yet awaited.
pub struct Running {
    pub addr: SocketAddr,
    pub server: actix_web::dev::Server,
    /// The portal's state (tests look at its sessions).
    pub state: Arc<PortalState>,
}

/// Binds the portal on `addr` (port 0 picks one).
pub fn bind(settings: PortalSettings, addr: SocketAddr) -> Result<Running, PortalError> {
    let state = Arc::new(PortalState {
        link: ProviderLink::new(settings)?,
        sessions: SessionStore::default(),
    });
    let data = web::Data::new(state.clone());
    let https = state.link.settings().https();
    let server = HttpServer::new(move || {
        let mut headers = DefaultHeaders::new()
            .add((
                "Content-Security-Policy",
                "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; \
                 form-action 'self' http: https:",
            ))
            .add(("X-Content-Type-Options", "nosniff"))
            .add(("Referrer-Policy", "no-referrer"))
            .add(("X-Frame-Options", "DENY"));
        if https {
            headers = headers.add(("Strict-Transport-Security", "max-age=63072000"));
        }
        App::new()
            .app_data(data.clone())
            .app_data(web::FormConfig::default().limit(16 * 1024))
            .wrap(headers)
            .configure(routes)
    })
    .workers(1)
    .disable_signals()
    .bind(addr)
    .map_err(|e| PortalError::Bind {
        addr: addr.to_string(),
        message: e.to_string(),
    })?;
    let bound = server.addrs().first().copied().unwrap_or(addr);
    Ok(Running {
        addr: bound,
        server: server.run(),
        state,
    })
}
