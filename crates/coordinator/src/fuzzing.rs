//! Entry points for the cargo-fuzz targets in `fuzz/`: decoders of bytes from the network
//! that are private to this crate. Not a stable API.

use std::collections::BTreeSet;

/// The topics of a JoinGroup member's `ConsumerProtocolSubscription`, as the coordinator reads
/// them (`None` if it does not understand the bytes).
pub fn decode_subscription_topics(metadata: &[u8]) -> Option<BTreeSet<String>> {
    crate::subscription::decode_topics(metadata)
}
