//! Calls to the broker that leads a partition (or coordinates a transactional id) over the
//! internal link, and parking on a mix of local and remote partitions.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::task::JoinSet;
use weir_coordinator::TopicPartition;
use weir_metadata::BrokerId;

use super::codec::{Answer, Request};
use super::{AccessChannel, AccessError, PartitionAccess, Wake};
use crate::partition::{any_changed, Partition};

/// How long one remote Wait asks the leader to park at most (the leader caps it too).
const REMOTE_WAIT: Duration = Duration::from_millis(500);

/// After a failed remote Wait (the leader unreachable), the pause before the caller reads
/// again, so a dead link is not polled in a loop.
const FAILED_WAIT_PAUSE: Duration = Duration::from_millis(100);

impl PartitionAccess {
    /// One request to `broker` and its decoded answer; a refusal becomes
    /// [`AccessError::Remote`].
    pub(super) async fn call(
        &self,
        broker: BrokerId,
        request: &Request,
    ) -> Result<Answer, AccessError> {
        let link = self.link(broker)?;
        let channel = match request {
            Request::Wait { .. } => AccessChannel::Waits,
            _ => AccessChannel::Calls,
        };
        let body = link(broker, channel, request.encode())
            .await
            .map_err(|source| AccessError::Link { broker, source })?;
        match Answer::decode(body) {
            Ok(Answer::Failed(failure)) => Err(AccessError::Remote { broker, failure }),
            Ok(answer) => Ok(answer),
            Err(source) => Err(AccessError::Codec { broker, source }),
        }
    }
}

pub(super) async fn wait_any(
    access: &PartitionAccess,
    wakes: &[Wake],
    deadline: tokio::time::Instant,
) {
    let mut local: Vec<(&Partition, u64)> = Vec::new();
    let mut remote: BTreeMap<BrokerId, Vec<(TopicPartition, i64)>> = BTreeMap::new();
    for w in wakes {
        match w {
            Wake::Local(p, version) => local.push((&**p, *version)),
            Wake::Remote { tp, leader, offset } => remote
                .entry(*leader)
                .or_default()
                .push((tp.clone(), *offset)),
        }
    }
    if remote.is_empty() {
        // The single node's and the all-local path: exactly the engine's park before.
        tokio::select! {
            _ = any_changed(&local) => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
        return;
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let max_wait = u32::try_from(left.min(REMOTE_WAIT).as_millis()).unwrap_or(0);
    let mut polls = JoinSet::new();
    for (leader, items) in remote {
        let access = access.clone();
        polls.spawn(async move {
            let request = Request::Wait {
                max_wait_ms: max_wait,
                items,
            };
            if let Err(e) = access.call(leader, &request).await {
                tracing::debug!(leader, error = %e, "a remote wait failed");
                tokio::time::sleep(FAILED_WAIT_PAUSE).await;
            }
        });
    }
    // Dropping the set aborts the other polls (their connections are dropped, as a call
    // cut off by its timeout is).
    tokio::select! {
        _ = any_changed(&local), if !local.is_empty() => {}
        _ = polls.join_next() => {}
        _ = tokio::time::sleep_until(deadline) => {}
    }
}
