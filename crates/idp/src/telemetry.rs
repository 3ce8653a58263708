//! Structured logs with `tracing`: text for people, JSON for collectors.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// actix-http's connection dispatcher logs, at ERROR, every request it cannot parse (a head too
/// large, a bad header): the client has already had its 4xx answer, the server has nothing to
/// mend, and anyone could write error lines at will. Silenced unless the filter names
/// `actix_http` itself.
const CLIENT_PARSE_ERRORS: &str = "actix_http::h1::dispatcher=off";

/// Where the log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    /// A server's log: standard output, where collectors and containers read it.
    Stdout,
    /// A command's log: standard error, so that standard output carries only the command's
    /// answer (text, or JSON with `--json`) for whatever reads it.
    Stderr,
}

/// Installs the global subscriber, writing to `output`; colours only when that is a terminal,
/// so that files and collectors get plain text. `RUST_LOG`, when set, wins over `log_level`.
/// Calling it twice is harmless (the second call does nothing), which in-process tests need.
pub fn init(settings: &Settings, output: LogOutput) {
    use std::io::IsTerminal;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = match CLIENT_PARSE_ERRORS.parse() {
        Ok(directive) if !filter.to_string().contains("actix_http") => {
            filter.add_directive(directive)
        }
        _ => filter,
    };
    let (writer, terminal) = match output {
        LogOutput::Stdout => (
            BoxMakeWriter::new(std::io::stdout),
            std::io::stdout().is_terminal(),
        ),
        LogOutput::Stderr => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(terminal)
        .with_writer(writer);
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
