//! Directory → deterministic tar → compressed blob, and safe extraction.
