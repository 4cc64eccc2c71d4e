//! Operators, a file per family.

pub mod accumulators;
pub mod aggregate;
pub mod eval;
pub(crate) mod fold;
pub mod hop;
pub mod interval_join;
pub mod join;
pub mod map;
pub mod rank;
pub mod row_id;
pub mod session;
pub mod window;
