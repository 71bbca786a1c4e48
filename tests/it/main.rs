//! The one integration-test binary. Each area has a module here.

mod common;
mod ignore;
mod shell;
mod parser;
mod fixtures;
mod oci;
mod layer;
mod plan;
mod exec;
