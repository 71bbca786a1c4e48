//! kiln: a daemonless Dockerfile image builder. See `README.md` and `ARCHITECTURE.md`.
//!
//! Every public item is documented (`missing_docs` is an error), and only the
//! sandbox (`exec`) may use `unsafe`: the other modules fail to compile with it.
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod attest;
pub mod builder;
pub mod cache;
pub mod cli;
pub mod container;
pub mod dockerfile;
pub mod exec;
pub mod layer;
pub mod lint;
pub mod oci;
pub mod plan;
pub mod sbom;
pub mod store;
