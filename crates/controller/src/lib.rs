//! Weir's metadata quorum (docs/design/cluster.md §4).
