//! `/readyz` (design §3): ready when recovered, listening, not draining, no log poisoned by a
//! failed fsync, the group coordinator available and the log directory not full.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;
use weir_broker::state::State;

/// `/readyz`'s answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    /// Why not, each a short stable word an operator can alert on, some with a detail.
    pub reasons: Vec<String>,
}

/// At most this many poisoned partitions are named.
const NAMED: usize = 10;

/// `weir_ready` on `/metrics`: 1 when `/readyz` would answer 200, else 0 (what an alert rule
/// can watch without a probe). Registered once the broker's state exists; before, `/metrics`
/// itself answers 503.
pub(crate) fn register_gauge(state: &Arc<State>, draining: watch::Receiver<bool>) {
    let weak = Arc::downgrade(state);
    state.metrics.registry.gauge_fn(
        "weir_ready",
        "1 when /readyz answers 200 (recovered, not draining, no log poisoned, log dir not full).",
        &[],
        move |sink| {
            if let Some(s) = weak.upgrade() {
                let ready = readiness(Some(&s), *draining.borrow()).ready;
                sink.push(&[], if ready { 1.0 } else { 0.0 });
            }
        },
    );
}

/// `state` is `None` while the broker recovers its logs (before the listener has the state).
pub fn readiness(state: Option<&State>, draining: bool) -> Readiness {
    let mut reasons = Vec::new();
    if draining {
        reasons.push("draining".to_string());
    }
    match state {
        None => reasons.push("recovering".to_string()),
        Some(state) => {
            let mut poisoned = Vec::new();
            for topic in state.topics() {
                for p in topic.all_partitions() {
                    if p.is_poisoned() {
                        poisoned.push(format!("{}-{}", topic.name, p.index()));
                    }
                }
            }
            if !poisoned.is_empty() {
                let n = poisoned.len();
                poisoned.truncate(NAMED);
                reasons.push(format!(
                    "log_poisoned: {n} partition(s) failed an fsync ({})",
                    poisoned.join(", ")
                ));
            }
            if state.groups.is_poisoned() {
                reasons.push("group_coordinator_unavailable".to_string());
            }
            match weir_broker::meta::fs_space(&state.config.data_dir) {
                Ok((_, free)) => {
                    if free < weir_broker::meta::RESERVE_BYTES {
                        reasons.push(format!("log_dir_full: {free} bytes free"));
                    }
                }
                Err(e) => reasons.push(format!("log_dir_unreadable: {e}")),
            }
        }
    }
    Readiness {
        ready: reasons.is_empty(),
        reasons,
    }
}
