//! The `intercomm` binary: parse arguments, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc malloc: every role allocates per message, and in the profile glibc's
/// malloc and free (with its fastbin consolidation) took about 15 % of the gateway's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Threads of the async runtime (`INTERCOMM_RUNTIME_THREADS`).
const ENV_RUNTIME_THREADS: &str = "INTERCOMM_RUNTIME_THREADS";

fn main() -> ExitCode {
    let cli = intercomm::cli::Cli::parse();
    intercomm_core::telemetry::init(cli.log_format.into());
    // The gateway uses every core by default: with two threads on two cores it answered about
    // 5 % more jobs a second than with one (docs/BENCHMARKS.md). Workers and clients keep one
    // thread, which was fastest for them; a worker scales by running more processes.
    let default = match cli.command {
        intercomm::cli::Command::Gateway(_) => {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }
        _ => 1,
    };
    let setting = std::env::var(ENV_RUNTIME_THREADS).ok();
    let threads = match runtime_threads(setting.as_deref(), default) {
        Ok(threads) => threads,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    // lapin runs its own I/O thread besides these.
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(intercomm::run(cli))
}

/// The runtime's thread count from `INTERCOMM_RUNTIME_THREADS` (unset or blank: `default`).
fn runtime_threads(value: Option<&str>, default: usize) -> Result<usize, String> {
    match value.map(str::trim).filter(|value| !value.is_empty()) {
        None => Ok(default.clamp(1, 256)),
        Some(value) => match value.parse::<usize>() {
            Ok(threads @ 1..=256) => Ok(threads),
            _ => Err(format!(
                "{ENV_RUNTIME_THREADS} `{value}` is not a thread count from 1 to 256"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::runtime_threads;

    #[test]
    fn runtime_threads_default_and_refuse_nonsense() {
        assert_eq!(runtime_threads(None, 1), Ok(1));
        assert_eq!(runtime_threads(None, 8), Ok(8));
        assert_eq!(runtime_threads(Some(" "), 2), Ok(2));
        assert_eq!(runtime_threads(Some("4"), 1), Ok(4));
        for bad in ["0", "-1", "two", "257"] {
            let error = runtime_threads(Some(bad), 1).expect_err(bad);
            assert!(error.contains("INTERCOMM_RUNTIME_THREADS"), "{error}");
        }
    }
}
