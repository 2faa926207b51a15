//! The `intercomm` binary: parse arguments, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc malloc: every role allocates per message, and in the profile glibc's
/// malloc and free (with its fastbin consolidation) took about 15 % of the gateway's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = intercomm::cli::Cli::parse();
    intercomm_core::telemetry::init(cli.log_format.into());
    // One thread: on small machines a single-threaded runtime was fastest for clients and
    // workers (see docs/BENCHMARKS.md); lapin runs its own I/O thread besides.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(intercomm::run(cli))
}
