//! Middleware applied to every response: request ids, access log, security headers.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::HttpMessage;
use tracing::Instrument;

/// Header carrying the request id in both directions.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the request being served, for logs and audit events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Accepts an incoming `X-Request-Id` set by a proxy when it is short and plain; otherwise
/// makes one. Logs one line per request with path (never the query, which may hold codes),
/// status and duration, inside a span carrying the id.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_plain_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.path()
    );
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    let status = response.status().as_u16();
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    span.in_scope(|| tracing::info!(status, elapsed_us, "served"));
    Ok(response)
}

fn is_plain_id(value: &str) -> bool {
    (8..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The address of the person behind `req`: the peer, or, when the peer is a trusted proxy
/// (`http.trusted_proxies`), the rightmost `X-Forwarded-For` entry that is not a trusted
/// proxy. Lockout counters per address and the audit log use it.
pub fn client_ip(req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = match req.app_data::<actix_web::web::Data<crate::app::AppState>>() {
        Some(state) if state.settings.http.trusted_proxies.contains(&peer) => {
            &state.settings.http.trusted_proxies
        }
        _ => return Some(peer),
    };
    Some(
        forwarded_client(
            req.headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok()),
            trusted,
        )
        .unwrap_or(peer),
    )
}

/// The rightmost address of `X-Forwarded-For` values that is not a trusted proxy; `None` when
/// the header is absent or an entry is not an address (then the peer is used).
fn forwarded_client<'a>(
    values: impl Iterator<Item = &'a str>,
    trusted: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    let entries: Vec<&str> = values.flat_map(|v| v.split(',')).collect();
    for entry in entries.iter().rev() {
        let ip: std::net::IpAddr = entry.trim().parse().ok()?;
        if !trusted.contains(&ip) {
            return Some(ip);
        }
    }
    None
}

/// The bearer token of a request's `Authorization` header (RFC 6750 section 2.1).
pub fn bearer_of(req: &actix_web::HttpRequest) -> Result<String, crate::oidc::error::OAuthError> {
    let authorization = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    crate::oidc::userinfo::bearer_token(authorization, None)
}

/// Where `req` came from, for the audit log: peer address, user agent (cut to 256
/// characters) and the request id this middleware assigned.
pub fn request_origin(req: &actix_web::HttpRequest) -> crate::audit::RequestOrigin {
    use actix_web::HttpMessage;
    crate::audit::RequestOrigin {
        ip: client_ip(req).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect()),
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
    }
}

/// Security headers on every response. HSTS only when the public URL is https: sending it on a
/// plain-http development host would be ignored at best.
pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
             object-src 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"));
    if https {
        headers.add((
            "Strict-Transport-Security",
            "max-age=63072000; includeSubDomains",
        ))
    } else {
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_behind_trusted_proxies_is_the_rightmost_untrusted_address() {
        let lb: std::net::IpAddr = "10.0.0.2".parse().expect("ip");
        let edge: std::net::IpAddr = "10.0.0.3".parse().expect("ip");
        let trusted = [lb, edge];
        let ip = |values: &[&str]| forwarded_client(values.iter().copied(), &trusted);
        // What the client wrote itself (leftmost) is not believed.
        assert_eq!(
            ip(&["1.2.3.4, 203.0.113.9, 10.0.0.3"]),
            "203.0.113.9".parse().ok()
        );
        assert_eq!(
            ip(&["198.51.100.7", "10.0.0.3"]),
            "198.51.100.7".parse().ok()
        );
        assert_eq!(ip(&["10.0.0.3, 10.0.0.2"]), None);
        assert_eq!(ip(&["garbage, 10.0.0.3"]), None);
        assert_eq!(ip(&[]), None);
    }

    #[test]
    fn request_ids_from_outside_must_be_plain() {
        assert!(is_plain_id("3f6c1c9e-7d2a-4b8e-9a51-0c2f5e7d9b11"));
        assert!(is_plain_id("req_12345678"));
        assert!(!is_plain_id("short"));
        assert!(!is_plain_id("has space in it"));
        assert!(!is_plain_id("line\nbreak-injected"));
        assert!(!is_plain_id(&"x".repeat(65)));
    }
}
