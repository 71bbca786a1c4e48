//! kiln: a daemonless Dockerfile image builder. See `README.md` and the design notes.

pub mod build;
pub mod cache;
pub mod cli;
pub mod dockerfile;
pub mod exec;
pub mod layer;
pub mod oci;
pub mod plan;
