//! kiln: a daemonless Dockerfile image builder. See `README.md` and the design notes.

pub mod builder;
pub mod cache;
pub mod cli;
#[deny(missing_docs)]
pub mod dockerfile;
pub mod exec;
pub mod layer;
pub mod oci;
#[deny(missing_docs)]
pub mod plan;
#[deny(missing_docs)]
pub mod store;
