//! Structured logs with `tracing`: text for people, JSON for collectors.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// actix-http's connection dispatcher logs, at ERROR, every request it cannot parse (a head too
/// large, a bad header): the client has already had its 4xx answer, the server has nothing to
/// mend, and anyone could write error lines at will. Silenced unless the filter names
/// `actix_http` itself.
const CLIENT_PARSE_ERRORS: &str = "actix_http::h1::dispatcher=off";

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `log_level`.
/// Calling it twice is harmless (the second call does nothing), which in-process tests need.
pub fn init(settings: &Settings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = match CLIENT_PARSE_ERRORS.parse() {
        Ok(directive) if !filter.to_string().contains("actix_http") => {
            filter.add_directive(directive)
        }
        _ => filter,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = match settings.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
