//! The SQL engine's partition access calls between brokers (`weir_broker::partition_access`,
//! key 32020 of the internal listener): a request as the leader decodes it, an answer as the
//! engine's broker decodes it. Must never panic; whatever decodes encodes back to the same
//! value.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_broker::partition_access::{Answer, Request};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(request) = Request::decode(bytes.clone()) {
        assert_eq!(Request::decode(request.encode()).ok(), Some(request));
    }
    if let Ok(answer) = Answer::decode(bytes) {
        assert_eq!(Answer::decode(answer.encode()).ok(), Some(answer));
    }
});
