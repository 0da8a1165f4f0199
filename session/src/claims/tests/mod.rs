//! The claims stores: one conformance suite for all of them, then each store's own tests.

mod conformance;
mod memory;
#[cfg(feature = "redis")]
mod redis_server;
#[cfg(feature = "sqlite")]
mod sqlite;
