//! `idp`: thin binary over the `idp` library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    idp::cli::Cli::parse().run()
}
