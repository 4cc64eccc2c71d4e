//! Operators of the fused runtime, a module per family.

pub mod map;
