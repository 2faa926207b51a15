//! intercomm-workers: the workers intercomm ships, each a module with one file per method.
//!
//! # Layout
//! - [`echo`]: the `echo` worker (method `echo` returns its params): the smallest example of a
//!   worker, used by tests and the benchmark.
//!
//! [`build`] is the registry: it maps a worker name to its [`Worker`] with every method bound.

pub mod echo;

use intercomm_core::Worker;

/// The names of the workers [`build`] knows.
pub const WORKERS: &[&str] = &[echo::NAME];

/// The worker called `name`, with all its methods, or `None` if there is no such worker.
#[must_use]
pub fn build(name: &str) -> Option<Worker> {
    match name {
        echo::NAME => Some(echo::worker()),
        _ => None,
    }
}
