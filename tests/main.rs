//! End-to-end tests against the real RabbitMQ (`AMQP_URL`, default the local broker).
//!
//! One test binary (faster to build and link); one file per capability; `helpers` hides set-up.
//! Every test names its own workers, methods and callback queues, so tests run in parallel and
//! delete what they declare.

mod helpers;

mod acks;
mod bench;
mod cli;
mod client;
mod console;
mod delivery_limit;
mod faults;
mod gateway;
mod interop;
mod load;
mod recovery;
mod roundtrip;
mod scaleout;
mod seed;
mod shutdown;
mod tls;
mod topology;
mod worker_errors;
