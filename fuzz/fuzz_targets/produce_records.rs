//! The records inside produced batches, as the broker reads them to refuse keyless records on
//! a compacted topic: record walking and bounded decompression (gzip, snappy, lz4, zstd) of
//! hostile bytes. Must never panic nor allocate beyond the bound.
//!
//! Input: a flags byte (bit 0: repair the CRCs so the fuzzer reaches the records behind
//! them), then the batches.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_fuzz::{fix_crcs, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.u8();
    let mut buf = input.rest().to_vec();
    if flags & 1 != 0 {
        fix_crcs(&mut buf);
    }
    if let Ok(missing) = weir_broker::fuzzing::keyless_records(&buf, 1 << 20) {
        assert!(
            missing.windows(2).all(|w| w[0] < w[1]),
            "record indexes ascend: {missing:?}"
        );
    }
});
