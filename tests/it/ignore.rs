//! `.dockerignore` matching (filled in below).
