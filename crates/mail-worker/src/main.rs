//! `mail-worker`: delivers the idp's queued mail over SMTP. Configuration comes from
//! `GUICHET_WORKER_*` variables (see `settings.rs`); SIGTERM or Ctrl-C stops it after the job
//! in flight.

use std::time::Duration;

use mail_worker::consumer::Consumer;
use mail_worker::metrics::{self, Metrics};
use mail_worker::settings::WorkerSettings;
use mail_worker::smtp::Smtp;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = match WorkerSettings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // Checked by `WorkerSettings::load`.
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if settings.log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        // Colours only on a terminal: files and collectors get plain text.
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init();
    }
    let (key, smtp) = match (
        settings.key(),
        Smtp::new(
            &settings.smtp,
            u32::try_from(settings.batch_size).unwrap_or(16),
        ),
    ) {
        (Ok(key), Ok(smtp)) => (key, smtp),
        (Err(e), _) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
        (_, Err(e)) => {
            eprintln!("error: configuration key `smtp`: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let metrics = Metrics::default();
    if let Some(bind) = settings
        .metrics_bind
        .as_deref()
        .and_then(|b| b.parse().ok())
    {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(e) = metrics::serve(bind, metrics).await {
                tracing::error!(error = %e, "metrics endpoint failed");
            }
        });
    }
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("stopping after the job in flight");
        let _ = stop.send(true);
    });

    // Redis may come up after the worker: keep trying.
    let client = match redis::Client::open(settings.redis_url.as_str()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "error: configuration key `redis_url` (environment GUICHET_WORKER_REDIS_URL): {e}"
            );
            return std::process::ExitCode::from(2);
        }
    };
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(settings.block() + Duration::from_secs(5)));
    let redis = loop {
        match redis::aio::ConnectionManager::new_with_config(client.clone(), config.clone()).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %e, "Redis unavailable; retrying");
                if *shutdown.borrow() {
                    return std::process::ExitCode::SUCCESS;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut consumer = Consumer::new(redis, key, smtp, settings, metrics);
    while let Err(e) = consumer.ensure_group().await {
        tracing::warn!(error = %e, "cannot create the consumer group; retrying");
        if *shutdown.borrow() {
            return std::process::ExitCode::SUCCESS;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::info!("mail worker started");
    consumer.run(shutdown).await;
    std::process::ExitCode::SUCCESS
}
