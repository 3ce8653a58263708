//! `cargo run -p demo`: Guichet on embedded defaults (SQLite under ./data, no Redis), with
//! development conveniences on.

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let mut settings = idp::config::Settings::load(None).context("loading configuration")?;
    settings.dev_mode = true;
    idp::telemetry::init(&settings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let public_url = settings.public_url.trim_end_matches('/').to_string();
        let state = idp::app::AppState::prepare(settings)?;
        let running = idp::app::bind(state)?;
        println!();
        println!("Guichet demo is running (SQLite under ./data, no other server needed).");
        println!("  Identity provider: {public_url}/");
        println!("  Readiness:         {public_url}/health/ready");
        println!("  Mail outbox:       {public_url}/dev/outbox (codes are also printed here)");
        println!("  Listening on:      {}", running.addr);
        println!("Press Ctrl+C to stop.");
        println!();
        running.server.await?;
        Ok(())
    })
}
