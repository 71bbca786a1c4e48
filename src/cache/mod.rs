//! Step cache keys, cache records and context hashing.
