//! `schakel`: one binary that runs any Schakel service (`schakel serve
//! <service>`), all of them for development (`schakel dev`), and the admin
//! commands that talk gRPC to a running server.
#![forbid(unsafe_code)]
// A command-line tool: standard output is its interface.
#![allow(clippy::print_stdout)]

mod account_cli;
mod admin;
mod agreement_cli;
mod all;
mod audit_cli;
mod audit_verify;
mod bootstrap;
mod chain_cli;
mod connect;
mod dev;
mod dossier_cli;
mod policy_cli;
mod serve;
mod text;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: a served read allocates and
/// frees hundreds of small buffers across the runtime's threads. In the
/// GetDossier benchmark (`services/broker/benches/get_dossier.rs`, which runs
/// with the same allocator) glibc's malloc and free took about a sixth of the
/// CPU; with mimalloc 16 clients read about a third more per second.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Schakel: need-to-know information sharing for the Ketenaanpak IFG.
#[derive(Parser)]
#[command(name = "schakel", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    connection: connect::Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process with SQLite, a dev CA and demo data.
    Dev(dev::DevArgs),
    /// Run one service (microservices mode).
    Serve(serve::ServeArgs),
    /// Create the first coordinator of a new deployment (offline, once).
    Bootstrap(bootstrap::BootstrapArgs),
    /// Admin and partner commands against a running server.
    #[command(flatten)]
    Admin(admin::AdminCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Dev(args) => dev::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Bootstrap(args) => bootstrap::run(args).await,
            Command::Admin(command) => admin::run(&cli.connection, command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(config) = err.downcast_ref::<schakel_kit::config::ConfigError>() {
                eprintln!("{config}");
                return ExitCode::from(schakel_kit::config::EXIT_CONFIG as u8);
            }
            if let Some(status) = err.downcast_ref::<tonic::Status>() {
                eprintln!("error: {}: {}", code_name(status.code()), status.message());
                return ExitCode::from(2);
            }
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The canonical gRPC name of a status code, as printed by the CLI.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "OK",
        C::Cancelled => "CANCELLED",
        C::Unknown => "UNKNOWN",
        C::InvalidArgument => "INVALID_ARGUMENT",
        C::DeadlineExceeded => "DEADLINE_EXCEEDED",
        C::NotFound => "NOT_FOUND",
        C::AlreadyExists => "ALREADY_EXISTS",
        C::PermissionDenied => "PERMISSION_DENIED",
        C::ResourceExhausted => "RESOURCE_EXHAUSTED",
        C::FailedPrecondition => "FAILED_PRECONDITION",
        C::Aborted => "ABORTED",
        C::OutOfRange => "OUT_OF_RANGE",
        C::Unimplemented => "UNIMPLEMENTED",
        C::Internal => "INTERNAL",
        C::Unavailable => "UNAVAILABLE",
        C::DataLoss => "DATA_LOSS",
        C::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        // Every subcommand's arguments are unique and consistent (clap's own checks).
        super::Cli::command().debug_assert();
    }
}
