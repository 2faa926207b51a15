//! One module per command.

pub mod call;
pub mod dlq;
pub mod gateway;
pub mod routes;
pub mod token;
pub mod up;
pub mod worker;
