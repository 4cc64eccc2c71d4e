//! What the client reads off the network: response frames of the APIs it calls (header
//! check, then body at the version it asked for) and the record batches of a fetched
//! partition: `records::next_offset` (batch headers only) and `records::decode_batches`
//! (decompressed and decoded). A broker, or something pretending to be one, must not be able
//! to crash the CLI. Must never panic.
//!
//! Input: a selector byte (low bits: what to decode; high bits: the version), a fetch offset,
//! then the bytes. Bit 7 of the selector repairs batch CRCs for the fetch data.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_client::connection::decode_response;
use weir_client::records::{decode_batches, next_offset};
use weir_fuzz::{fix_crcs, Input};
use weir_protocol::kafka_protocol::messages::*;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let selector = input.u8();
    let fetch_offset = input.i64();
    let mut bytes = input.rest().to_vec();
    let version = i16::from(selector >> 3);
    macro_rules! response {
        ($req:ty) => {{
            let _ = decode_response::<$req>(Bytes::from(bytes), version, 0);
        }};
    }
    match selector & 7 {
        0 => {
            if selector & 0x80 != 0 {
                fix_crcs(&mut bytes);
            }
            let _ = next_offset(&bytes);
            let _ = decode_batches(Bytes::from(bytes), 0, fetch_offset);
        }
        1 => response!(FetchRequest),
        2 => response!(MetadataRequest),
        3 => response!(ProduceRequest),
        4 => response!(ApiVersionsRequest),
        5 => response!(ListOffsetsRequest),
        6 => response!(OffsetFetchRequest),
        _ => response!(DescribeGroupsRequest),
    }
});
