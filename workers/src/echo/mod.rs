//! The `echo` worker: one method, `echo`, that answers its params unchanged.

// One file per method; this method happens to share the worker's name.
#[allow(clippy::module_inception)]
mod echo;

use intercomm_core::Worker;

/// The worker's name (its queue is `rpc_queue_echo`).
pub const NAME: &str = "echo";

pub use echo::echo;

/// The `echo` worker with its methods bound.
#[must_use]
pub fn worker() -> Worker {
    Worker::new(NAME).method("echo", echo)
}
