//! AST + build args + target + resolved base images → `BuildGraph`.
