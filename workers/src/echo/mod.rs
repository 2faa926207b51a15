//! The `echo` worker: `echo` answers its params unchanged; `sleep` takes the time it is told.

// One file per method; this method happens to share the worker's name.
#[allow(clippy::module_inception)]
mod echo;
mod sleep;

use intercomm_core::Worker;

/// The worker's name (its queue is `rpc_queue_echo`).
pub const NAME: &str = "echo";

pub use echo::echo;
pub use sleep::{SleepParams, Slept, sleep};

/// The `echo` worker with its methods bound.
#[must_use]
pub fn worker() -> Worker {
    Worker::new(NAME)
        .method("echo", echo)
        .method("sleep", sleep)
}
