//! The workers' tests, one binary (faster to build and link): each storage test runs on a
//! fresh SQLite file and on a fresh PostgreSQL database (`helpers::each_backend`).

mod helpers;
mod messages;
mod registry;
mod store;
mod subscriptions;
mod users;
