//! Offset and time index files as found on disk: decoding and its checks, lookups, and the
//! builder resuming from a decoded index (as the active segment does after a clean open).
//! Must never panic; a decoded index encodes back to the same bytes, and whatever the
//! builder makes decodes again.
//!
//! Input: the log length the offset index is checked against, a lookup key, the two files
//! (length-prefixed), then batch records (position delta, offset delta, timestamp, size) for
//! the builder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_fuzz::Input;
use weir_storage::fuzzing::{IndexBuilder, SegmentIndex};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let log_len = u64::from(input.u32());
    let key = input.u32();
    let ts = input.i64();
    let offsets_file = input.chunk();
    let times_file = input.chunk();

    let offsets = SegmentIndex::decode_offsets(offsets_file, log_len);
    let times = SegmentIndex::decode_times(times_file);
    if let Ok(o) = &offsets {
        assert_eq!(SegmentIndex::encode_offsets(o), offsets_file);
        assert!(o.iter().all(|e| u64::from(e.position) < log_len));
    }
    if let Ok(t) = &times {
        assert_eq!(SegmentIndex::encode_times(t), times_file);
    }
    let index = SegmentIndex {
        offsets: offsets.unwrap_or_default(),
        times: times.unwrap_or_default(),
    };

    // A lookup lands on an entry at or below the key, and no later entry is also at or below.
    let pos = index.position_for(key);
    match index.offsets.iter().rposition(|e| e.relative_offset <= key) {
        Some(i) => assert_eq!(pos, index.offsets[i].position),
        None => assert_eq!(pos, 0),
    }
    let rel = index.relative_offset_for_time(ts);
    match index.times.iter().rposition(|e| e.timestamp <= ts) {
        Some(i) => assert_eq!(rel, index.times[i].relative_offset),
        None => assert_eq!(rel, 0),
    }
    let _ = index.last_time();

    // Resume building after the decoded entries, then append batches from the input after
    // the log end, as the active segment does. Whatever the builder makes must decode again
    // (or every open would rebuild the index).
    let base = i64::from(key);
    let max = index
        .last_time()
        .map(|t| (t.timestamp, base + i64::from(t.relative_offset)));
    let mut position = u32::try_from(log_len).unwrap_or(u32::MAX);
    let last_rel = index
        .offsets
        .last()
        .map(|e| e.relative_offset)
        .max(index.last_time().map(|t| t.relative_offset))
        .unwrap_or(0);
    let mut offset = base + i64::from(last_rel);
    let mut builder = IndexBuilder::resume(base, index, log_len, max);
    let interval = u32::from(input.u8());
    while let [a, b, ..] = *input.take(2) {
        let size = u64::from(input.u16());
        let timestamp = input.i64();
        position = position.saturating_add(u32::from(a) + 1);
        offset += i64::from(b) + 1;
        builder.on_batch(position, offset, timestamp, size, interval);
    }
    builder.seal();
    let _ = builder.max_timestamp();
    let built = &builder.index;
    if let Err(d) =
        SegmentIndex::decode_offsets(&SegmentIndex::encode_offsets(&built.offsets), u64::MAX)
    {
        panic!("built offset index does not decode: {d:?}");
    }
    if let Err(d) = SegmentIndex::decode_times(&SegmentIndex::encode_times(&built.times)) {
        panic!("built time index does not decode: {d:?}");
    }
});
