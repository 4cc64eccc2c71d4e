//! Request bodies of every served API and version: the first two bytes pick the API (an index
//! into `versions::SUPPORTED`) and the version within its range, a fixed header follows, and
//! the rest is the body. Reaches every body decoder without the fuzzer having to find the
//! header first. Must never panic; whatever decodes must round-trip.
#![no_main]

use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use weir_fuzz::Input;
use weir_protocol::versions::SUPPORTED;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let range = SUPPORTED[usize::from(input.u8()) % SUPPORTED.len()];
    let span = (range.max - range.min + 1) as u8;
    let version = range.min + i16::from(input.u8() % span);
    let body = input.rest();
    let mut frame = BytesMut::with_capacity(body.len() + 16);
    frame.put_i16(range.key as i16);
    frame.put_i16(version);
    frame.put_i32(1); // correlation id
    frame.put_i16(1); // client id "f"
    frame.put_u8(b'f');
    if range.key.request_header_version(version) >= 2 {
        frame.put_u8(0); // no tagged fields
    }
    frame.put_slice(body);
    weir_fuzz::check_request(frame.freeze());
});
