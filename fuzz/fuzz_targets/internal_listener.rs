//! What a metadata-quorum node decodes from peers and from its metadata directory (cluster
//! mode). The first byte picks the decoder:
//!
//! - 0: an internal-listener request frame (after its size), then its body as its key says
//!   (WeirHello, raft append / vote / snapshot, a forwarded controller request).
//! - 1: the metadata log's record batches read from an offset (the next eight bytes), every
//!   value as an openraft entry. Bit 3 repairs batch CRCs.
//! - 2: a metadata snapshot file and `meta/raft-state.json`.
//!
//! Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_controller::fuzzing;
use weir_fuzz::{fix_crcs, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let selector = input.u8();
    match selector & 3 {
        0 => fuzzing::internal_request(input.rest()),
        1 => {
            let from = input.i64();
            let mut bytes = input.rest().to_vec();
            if selector & 8 != 0 {
                fix_crcs(&mut bytes);
            }
            fuzzing::metadata_log(&bytes, from);
        }
        _ => fuzzing::metadata_files(input.rest()),
    }
});
