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
