//! The `idp` command line: `serve`, `migrate`, `check-config`, `gen-master-key`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Settings, CONFIG_ENV};
use crate::crypto::MasterKey;
use crate::store::{run_migrations, ConnectionFactory};

/// Guichet, an OpenID Connect identity provider.
#[derive(Debug, Parser)]
#[command(name = "idp", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Defaults to config/idp.toml when it exists.
    #[arg(long, short, global = true, env = CONFIG_ENV, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP until SIGTERM/SIGINT (migrations are applied first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load and validate the configuration, print it with secrets redacted, and exit.
    CheckConfig,
    /// Print a new random master key for GUICHET_MASTER_KEY.
    GenMasterKey,
}

impl Cli {
    /// Runs the command; errors are printed to stderr with the key or cause they concern.
    pub fn run(self) -> ExitCode {
        if let Command::GenMasterKey = self.command {
            println!("{}", MasterKey::generate().to_base64());
            return ExitCode::SUCCESS;
        }
        let settings = match Settings::load(self.config.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        crate::telemetry::init(&settings);
        let result = match self.command {
            Command::Serve => serve(settings),
            Command::Migrate => migrate(&settings),
            Command::CheckConfig => {
                println!("configuration is valid:\n{settings:#?}");
                Ok(())
            }
            Command::GenMasterKey => Ok(()),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "failed");
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

fn serve(settings: Settings) -> Result<(), crate::error::Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(crate::app::serve(settings))
}

fn migrate(settings: &Settings) -> Result<(), crate::error::Error> {
    let target = settings.database_target()?;
    if let crate::store::DatabaseTarget::Sqlite(path) = &target {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::crypto::create_private_dir(dir)?;
        }
    }
    let factory = ConnectionFactory::new(target, settings.database.sqlite_busy_timeout_ms);
    let mut conn = factory.connect()?;
    let applied = run_migrations(&mut conn)?;
    println!("{applied} migration(s) applied");
    Ok(())
}
