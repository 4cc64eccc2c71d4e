//! Consumer-protocol bytes embedded in group requests and responses: the subscription in a
//! JoinGroup member's metadata, as the coordinator reads it (for OffsetDelete and offset
//! expiry), and the assignment in a SyncGroup/DescribeGroups answer, as the client reads it.
//! Must never panic; a decoded subscription encodes (as v0) to the same topics.
#![no_main]

use bytes::{BufMut, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use weir_coordinator::fuzzing::decode_subscription_topics;

fuzz_target!(|data: &[u8]| {
    if let Some(topics) = decode_subscription_topics(data) {
        let mut v0 = BytesMut::new();
        v0.put_i16(0);
        v0.put_i32(topics.len() as i32);
        for topic in &topics {
            v0.put_i16(topic.len() as i16);
            v0.put_slice(topic.as_bytes());
        }
        v0.put_i32(-1); // no user data
        assert_eq!(decode_subscription_topics(&v0), Some(topics));
    }
    let _ = weir_client::client::decode_consumer_assignment(Bytes::copy_from_slice(data));
});
