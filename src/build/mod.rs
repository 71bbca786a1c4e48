//! Wires parser, plan, cache, exec, layer and oci into a build.
