//! The sandbox that runs a process over an overlay root. Knows nothing of Dockerfiles.
