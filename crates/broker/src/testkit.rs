//! A real broker state on a temporary directory, for tests of the broker and of crates built
//! on it (the stream engine): no listener, no background tasks, the same open and recovery
//! as a started broker.

use std::sync::Arc;

use crate::state::State;

/// Opens a state on `dir` with `pairs` as broker settings (and no rebalance delay).
pub fn state(dir: &std::path::Path, pairs: &[(&str, &str)]) -> Arc<State> {
    let mut raw: std::collections::BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    raw.entry("group.initial.rebalance.delay.ms".into())
        .or_insert_with(|| "0".into());
    let (config, _) = crate::BrokerConfig::from_pairs(
        "127.0.0.1:0".parse().expect("addr"),
        None,
        dir.to_path_buf(),
        raw,
    )
    .expect("config");
    Arc::new(State::open(config).expect("open"))
}

/// [`state`], then the transaction recovery a started broker runs before it serves anything
/// (markers of every transaction being decided at a crash are written again). Call it inside
/// a multi-threaded tokio runtime: the marker tasks run on it.
pub fn recovered(dir: &std::path::Path, pairs: &[(&str, &str)]) -> Arc<State> {
    let state = state(dir, pairs);
    state.txns.recover(&state).expect("recover transactions");
    state
}

/// Every `(key, value)` a consumer at `isolation` reads from `p` from offset 0, in offset order,
/// filtered as a Kafka consumer does: control records, records below the requested offset in
/// the first batch and, read_committed, the records of aborted transactions are dropped. A read
/// stops at a segment's end, so it reads on until nothing is left.
pub fn consume(
    p: &crate::partition::Partition,
    isolation: crate::partition::Isolation,
) -> Vec<(Option<String>, String)> {
    use weir_protocol::kafka_protocol::records::RecordBatchDecoder;
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let read = p
            .read(&crate::partition::ReadSpec {
                offset,
                max_bytes: 1 << 20,
                min_one_batch: true,
                isolation,
                leader_epoch: None,
            })
            .expect("read");
        if read.records.is_empty() {
            return out;
        }
        let aborted = read.aborted.unwrap_or_default();
        let from = offset;
        let mut bytes = read.records;
        for set in RecordBatchDecoder::decode_all(&mut bytes).expect("decode") {
            for r in set.records {
                offset = offset.max(r.offset + 1);
                let is_aborted = aborted.iter().any(|a| {
                    a.producer_id == r.producer_id
                        && a.first_offset <= r.offset
                        && r.offset <= a.last_offset
                });
                if r.control || r.offset < from || is_aborted {
                    continue;
                }
                let text = |b: &bytes::Bytes| String::from_utf8(b.to_vec()).expect("utf-8");
                out.push((
                    r.key.as_ref().map(text),
                    text(r.value.as_ref().expect("value")),
                ));
            }
        }
    }
}
