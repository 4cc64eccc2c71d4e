//! Operator state (§7.3): in memory per operator, accounted against the pipeline's budget,
//! durable as per-checkpoint deltas in the pipeline's compacted state topic.
//!
//! - [`codec`]: the versioned binary encoding of `ScalarValue` rows (keys and values).
//! - [`keyed`]: [`keyed::KeyedState`], a map of encoded keys to values that tracks the keys
//!   changed since the last checkpoint and the bytes it holds. Window aggregates key it by
//!   window and group, joins by join key with a multiset of rows as the value.
//! - [`expiry`]: when keys can be freed by the watermark (a window bound in the key, an
//!   idle-state TTL); [`keyed::KeyedState`] keeps their deadlines.
//! - [`changelog`]: the state topic's records and their collapsing read at recovery.
//!
//! A stateful operator implements [`Stateful`]; the runtime writes its changes in every
//! epoch's transaction and hands its committed entries back at start.

pub mod changelog;
pub mod codec;
pub mod expiry;
pub mod keyed;

pub use keyed::{Change, KeyedState, StateValue};

/// What the runtime needs from an operator that keeps state.
pub trait Stateful {
    /// Bytes held, for the pipeline's memory budget.
    fn state_bytes(&self) -> usize;
    /// The entries changed since the last checkpoint (tombstones for freed ones).
    fn take_changes(&mut self) -> Result<Vec<Change>, codec::CodecError>;
    /// Loads one committed entry at start, before any input.
    fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), codec::CodecError>;
}
