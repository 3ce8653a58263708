//! `portal`: runs one demo portal (the member file portal or the ATIP portal).

use std::process::ExitCode;

use clap::Parser;

/// A demo portal that delegates sign-in to Guichet.
#[derive(Debug, Parser)]
#[command(name = "portal", version, about)]
struct Args {
    /// Which portal: file-portal or atip.
    #[arg(long, env = "GUICHET_PORTAL_KIND")]
    kind: String,
    /// Address to listen on.
    #[arg(long, env = "GUICHET_PORTAL_BIND", default_value = "127.0.0.1:8081")]
    bind: std::net::SocketAddr,
    /// The portal's public URL (its callback is PUBLIC_URL/callback).
    #[arg(long, env = "GUICHET_PORTAL_PUBLIC_URL")]
    public_url: String,
    /// Guichet's issuer URL.
    #[arg(long, env = "GUICHET_PORTAL_ISSUER")]
    issuer: String,
    /// The client secret registered at Guichet (environment only, never on the command line).
    #[arg(skip)]
    secret: Option<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let mut args = Args::parse();
    args.secret = std::env::var("GUICHET_PORTAL_CLIENT_SECRET").ok();
    let settings = args.kind.parse().and_then(|kind| {
        portals::PortalSettings::new(
            kind,
            &args.public_url,
            &args.issuer,
            args.secret.as_deref().unwrap_or_default(),
        )
    });
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let run = async move {
        let running = portals::app::bind(settings, args.bind)?;
        println!("portal listening on http://{}", running.addr);
        running
            .server
            .await
            .map_err(|e| portals::PortalError::Bind {
                addr: args.bind.to_string(),
                message: e.to_string(),
            })
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| portals::PortalError::Provider(e.to_string()))
        .and_then(|rt| rt.block_on(run));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
