//! The integrator: turns a Dockerfile and a context into an image in the
//! store, wiring parser, plan, layer, exec and oci. Owns scheduling (stages
//! the target reaches, independent ones in parallel), progress events and
//! error context per step. Invariants: a failing step's error carries its
//! Dockerfile span; nothing a build writes is visible in the store until it
//! is complete (blobs are content-addressed, tags are written last).

pub mod add;
pub mod copy;
pub mod event;
pub mod output;
pub mod perms;
pub mod rootfs;

pub use event::{Event, Progress, StepRef, Stream, Vertex};
pub use output::{OutputSpec, OutputSpecError};
pub mod image;
pub mod snapshot;
pub mod source;
