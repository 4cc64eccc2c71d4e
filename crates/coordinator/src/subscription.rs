//! Just enough of the consumer protocol to know which topics a group subscribes to.
//!
//! JoinGroup metadata is opaque to the coordinator, except for OffsetDelete and offset
//! expiry, which must not touch topics a live group consumes. Every version of
//! `ConsumerProtocolSubscription` (v0–v3) starts with the same two fields, non-flexible
//! encoding: `version: int16`, `topics: [string]` (int32 count, int16-length strings). The
//! rest (user data, owned partitions, generation, rack) is ignored.

use std::collections::BTreeSet;

/// The protocol type of the Java consumer's groups; only those carry subscriptions.
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The subscribed topics, or `None` if the bytes are not a subscription we understand.
pub(crate) fn decode_topics(metadata: &[u8]) -> Option<BTreeSet<String>> {
    let mut input = metadata;
    let version = read_i16(&mut input)?;
    if version < 0 {
        return None;
    }
    let count = usize::try_from(read_i32(&mut input)?).ok()?;
    // Every topic needs at least its two length bytes: reject absurd counts up front.
    if count > input.len() / 2 {
        return None;
    }
    let mut topics = BTreeSet::new();
    for _ in 0..count {
        let len = usize::try_from(read_i16(&mut input)?).ok()?;
        let (name, rest) = input.split_at_checked(len)?;
        topics.insert(std::str::from_utf8(name).ok()?.to_owned());
        input = rest;
    }
    Some(topics)
}

fn read_i16(input: &mut &[u8]) -> Option<i16> {
    let (head, rest) = input.split_first_chunk::<2>()?;
    *input = rest;
    Some(i16::from_be_bytes(*head))
}

fn read_i32(input: &mut &[u8]) -> Option<i32> {
    let (head, rest) = input.split_first_chunk::<4>()?;
    *input = rest;
    Some(i32::from_be_bytes(*head))
}

/// Encodes a v0 subscription (no user data); for tests.
#[cfg(test)]
pub(crate) fn encode_v0(topics: &[&str]) -> bytes::Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for topic in topics {
        out.extend_from_slice(&(topic.len() as i16).to_be_bytes());
        out.extend_from_slice(topic.as_bytes());
    }
    out.extend_from_slice(&(-1i32).to_be_bytes()); // null user data
    bytes::Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_v0_topics() {
        let topics = decode_topics(&encode_v0(&["b", "a"]));
        assert_eq!(
            topics,
            Some(BTreeSet::from(["a".to_owned(), "b".to_owned()]))
        );
    }

    #[test]
    fn decodes_later_versions_ignoring_the_tail() {
        let mut bytes = encode_v0(&["t"]).to_vec();
        bytes[1] = 3; // version 3; the tail is not inspected
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            decode_topics(&bytes),
            Some(BTreeSet::from(["t".to_owned()]))
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(decode_topics(b""), None);
        assert_eq!(decode_topics(&[0, 0, 0, 0, 0, 1, 0, 5, b'a']), None); // truncated name
        assert_eq!(decode_topics(&[0xff, 0xff, 0, 0, 0, 0]), None); // negative version
        assert_eq!(decode_topics(&[0, 0, 0x7f, 0xff, 0xff, 0xff]), None); // absurd count
        assert_eq!(decode_topics(&[0, 0, 0xff, 0xff, 0xff, 0xff]), None); // null array
    }
}
