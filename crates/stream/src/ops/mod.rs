//! Operators, a file per family.

pub mod accumulators;
pub mod aggregate;
pub mod map;
