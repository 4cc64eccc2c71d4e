//! RecordBatch v2 bytes as a producer or the disk hands them to storage: header parsing,
//! validation, the batch iterator, the timestamp search through records, control-batch
//! parsing (`marker_of`) and the in-place rewrites. Must never panic.
//!
//! Input: a flags byte (bit 0: repair the CRCs so the fuzzer reaches the checks behind
//! them), a timestamp and an offset for the timestamp search, then the batches.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_fuzz::{fix_crcs, Input};
use weir_storage::batch::{self, BatchHeader, Batches, Check};
use weir_storage::Marker;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.u8();
    let ts = input.i64();
    let min_offset = input.i64();
    let mut buf = input.rest().to_vec();
    if flags & 1 != 0 {
        fix_crcs(&mut buf);
    }

    let _ = BatchHeader::parse(&buf);
    let _ = batch::total_size_from_prefix(&buf);
    let full = batch::validate(&buf);
    let structure = batch::validate_structure(&buf);
    if let Ok(h) = full {
        assert_eq!(structure, Ok(h), "a valid batch is structurally valid");
        let size = h.total_size().expect("a valid batch has a size");
        assert!(size <= buf.len());
        let _ = (h.compression(), h.last_offset(), h.offset_count());
    }

    // Valid prefixes nest: CRC-checked ⊆ structurally checked ⊆ whole by lengths alone.
    let mut full_iter = Batches::new(&buf, Check::Full);
    for b in full_iter.by_ref() {
        let Ok(b) = b else { break };
        assert_eq!(
            batch::validate(b.bytes).map(|h| h.total_size()),
            Ok(Ok(b.bytes.len()))
        );
    }
    let mut structure_iter = Batches::new(&buf, Check::Structure);
    for b in structure_iter.by_ref() {
        let Ok(b) = b else { break };
        let _ = batch::marker_of(b.bytes);
        let _ = batch::find_record_by_timestamp(b.bytes, ts, min_offset);
    }
    let whole = batch::whole_batches_len(&buf);
    assert!(full_iter.valid_len() <= structure_iter.valid_len());
    assert!(structure_iter.valid_len() <= whole);
    assert!(whole <= buf.len());

    // The rewrites keep a valid batch valid.
    if let Ok(h) = full {
        let size = h.total_size().expect("size");
        let mut copy = buf[..size].to_vec();
        batch::set_base_offset(&mut copy, min_offset).expect("rewrite base offset");
        let after = batch::validate(&copy).expect("still valid after a base offset rewrite");
        assert_eq!(after.base_offset, min_offset);
        batch::set_log_append_time(&mut copy, ts).expect("stamp LogAppendTime");
        let after = batch::validate(&copy).expect("still valid after LogAppendTime");
        assert!(after.is_log_append_time());
        assert_eq!(after.max_timestamp, ts);
        assert_eq!(batch::marker_of(&copy), batch::marker_of(&buf[..size]));
    }

    // Control batches the broker writes parse back to their marker.
    let marker = if flags & 2 != 0 {
        Marker::Commit
    } else {
        Marker::Abort
    };
    let producer_id = min_offset & i64::MAX;
    let control = batch::control_batch(producer_id, flags as i16, marker, ts as i32, ts);
    let h = batch::validate(&control).expect("a control batch is valid");
    assert!(h.is_control() && h.is_transactional());
    assert_eq!(h.producer_id(), producer_id);
    assert_eq!(batch::marker_of(&control), Some(marker));
});
