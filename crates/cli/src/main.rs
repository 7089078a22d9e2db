//! The `ironfaas` command: build, deploy and call functions, and run the platform.

mod builder;
mod client;
mod commands;
mod credentials;
mod doctor;
mod failure;
mod output;
mod platform;
mod settings;
mod templates;

use std::process::ExitCode;

use clap::Parser;

use crate::commands::Command;

/// mimalloc instead of glibc's malloc: the gateway allocates and frees small buffers per call.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// ironfaas: self-hosted Functions-as-a-Service in one binary. It speaks the OpenFaaS API and
/// stack.yml.
#[derive(Debug, Parser)]
#[command(name = "ironfaas", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn init_logging(verbose: bool) {
    let default = if verbose { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("IRONFAAS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let json = std::env::var("IRONFAAS_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.command.runs_platform());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli.command.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.code)
        }
    }
}
