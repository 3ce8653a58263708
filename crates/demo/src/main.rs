//! `cargo run -p demo`: Guichet on embedded defaults (SQLite under ./data, mail delivered to a
//! development outbox, no Redis), with both demo portals registered and running, and one
//! demo member who must do the first-login journey.

use anyhow::Context;

use demo::{DemoPlan, DEMO_MEMBER, DEMO_STAFF};

fn main() -> anyhow::Result<()> {
    let mut settings = idp::config::Settings::load(None).context("loading configuration")?;
    settings.dev_mode = true;
    idp::telemetry::init(&settings, idp::telemetry::LogOutput::Stdout);
    let plan = DemoPlan::from_env(&settings)?;
    plan.register(&mut settings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let public_url = settings.public_url.trim_end_matches('/').to_string();
        let state = idp::app::AppState::prepare(settings)?;
        let seeded = demo::seed_member(&state)?;
        let running = idp::app::bind(state)?;
        let (file, atip) = plan.bind_portals()?;
        println!();
        println!("Guichet demo is running (SQLite under ./data, no other server needed).");
        println!("  Identity provider:  {public_url}/  (account page: {public_url}/account)");
        println!("  Member file portal: {}/", plan.file_portal_url);
        println!("  ATIP portal:        {}/", plan.atip_url);
        println!("  Mail outbox:        {public_url}/dev/outbox (codes are also printed here)");
        println!("  Listening on:       {}", running.addr);
        println!();
        println!("What to try:");
        println!(
            "  1. Open the member file portal, select \"Access your file\", then \"First login or"
        );
        println!(
            "     forgot your password?\" with {DEMO_MEMBER}{}.",
            if seeded { "" } else { " (seeded earlier)" }
        );
        println!("     The 6-digit code appears below and in the outbox; choose a password and a");
        println!("     verification method (an authenticator app, or codes by email).");
        println!("  2. Open the ATIP portal and sign in: no password is asked (single sign-on).");
        println!("  3. Sign out at either portal: both portals show you signed out.");
        println!("  4. On the ATIP portal, \"Make a request as a guest\" needs no sign-in.");
        println!(
            "  5. Open {public_url}/staff with {DEMO_STAFF} (first login as in 1): the helpdesk"
        );
        println!("     console. Find member 12345, unlock, reset the method, change the email...");
        println!(
            "  6. Open {public_url}/audit with {DEMO_STAFF}: the audit log of all of the above."
        );
        println!("     Filter by person (12345) or portal, export as CSV; in another terminal,");
        println!("     `cargo run -p idp -- audit verify` walks the log's hash chain.");
        println!("Press Ctrl+C to stop.");
        println!();
        tokio::select! {
            r = running.server => r?,
            r = file.server => r?,
            r = atip.server => r?,
        }
        Ok(())
    })
}
