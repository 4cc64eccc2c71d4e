//! Operators, a file per family.

pub mod accumulators;
pub mod aggregate;
pub mod map;
pub mod session;
pub mod window;
