//! The `intercomm` command line as a library, so that `main` stays thin and commands are testable.
//!
//! # Layout
//! - [`cli`]: the clap definitions of every command and flag.
//! - [`commands`]: one module per command (`up`, `worker`, `call`, `gateway`, `token`, `routes`, `dlq`).
//! - [`bench`]: `intercomm bench rpc`, raw lapin against intercomm on the same broker.

pub mod bench;
pub mod cli;
pub mod commands;

use std::process::ExitCode;

use cli::{BenchCommand, Cli, Command};

/// Run a parsed command line; the exit code says how it went.
pub async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Worker(args) => commands::worker::run(args).await,
        Command::Call(args) => return commands::call::run(args).await,
        Command::Gateway(args) => commands::gateway::run(args).await,
        Command::Up(args) => commands::up::run(args).await,
        Command::Token(args) => commands::token::run(&args),
        Command::Routes(args) => commands::routes::run(args),
        Command::Dlq(command) => commands::dlq::run(command).await,
        Command::Bench(BenchCommand::Rpc(args)) => bench::run(args).await,
        Command::Bench(BenchCommand::Soak(args)) => bench::soak(args).await,
        Command::Bench(BenchCommand::ServeRaw(args)) => bench::serve_raw(args).await,
        Command::Bench(BenchCommand::ServeEcho(args)) => bench::serve_echo(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
