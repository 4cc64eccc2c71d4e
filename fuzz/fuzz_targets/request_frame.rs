//! Arbitrary bytes as a request frame off the socket: the length prefix check, then
//! `decode_request` (header, version table, body). Must never panic; whatever decodes must
//! round-trip.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_protocol::frame;

fuzz_target!(|data: &[u8]| {
    let _ = frame::body_length(data, 100 << 20);
    weir_fuzz::check_request(Bytes::copy_from_slice(data));
});
