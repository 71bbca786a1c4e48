//! The one integration-test binary. Each area has a module here.

mod architecture;
mod build;
mod cache;
mod checks;
mod ciimage;
mod common;
mod conformance;
mod container;
mod credentials;
mod exec;
mod fixtures;
mod ignore;
mod killsafe;
mod layer;
mod logging;
mod oci;
mod parser;
mod plan;
mod registry;
mod repro;
mod rootless;
mod run;
mod run_detached;
mod sbom;
mod shell;
mod storelock;
