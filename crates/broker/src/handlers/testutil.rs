//! A real broker state on a temporary directory, for handler tests.

pub use crate::testkit::state;
