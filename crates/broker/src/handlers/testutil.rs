//! A real broker state on a temporary directory, for handler tests.

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
