//! The leader's side of partition access: a request from the broker that hosts the SQL
//! engine, decoded and carried out with the very calls the engine makes in-process
//! (`Partition::read`/`append`, `txn_api`), so leader epochs, sequences, fencing and
//! acks=all apply unchanged. Every refusal is an answer ([`Answer::Failed`]); only a body
//! that does not decode fails the call (the connection closes).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use weir_coordinator::TopicPartition;

use super::codec::{Answer, CodecError, Request};
use super::error::{Failure, FailureKind};
use crate::partition::{any_changed, Acks, Partition, PartitionError};
use crate::state::State;
use crate::txn_api;

/// The longest a Wait parks, whatever it asks (the caller's connection is held meanwhile).
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Serves one partition access request from another broker.
pub async fn serve_access(state: &Arc<State>, body: Bytes) -> Result<Bytes, CodecError> {
    let request = Request::decode(body)?;
    Ok(answer(state, request).await.encode())
}

fn failed(kind: FailureKind, message: String) -> Answer {
    Answer::Failed(Failure {
        kind,
        code: 0,
        message,
    })
}

/// This broker's replica of `tp` if it leads it; else the answer that re-routes the caller.
fn led_here(state: &State, tp: &TopicPartition) -> Result<Arc<Partition>, Answer> {
    let Some(topic) = state.topic(&tp.topic) else {
        return Err(failed(
            FailureKind::UnknownPartition,
            format!("unknown topic {}", tp.topic),
        ));
    };
    if !topic.has_partition(tp.partition) {
        return Err(failed(
            FailureKind::UnknownPartition,
            format!("unknown partition {}-{}", tp.topic, tp.partition),
        ));
    }
    match topic.partition(tp.partition) {
        Some(p) if p.role() == crate::partition::Role::Leader => Ok(p),
        _ => Err(failed(
            FailureKind::NotLeader,
            format!("{}-{} is not led here", tp.topic, tp.partition),
        )),
    }
}

fn partition_failure(e: &PartitionError) -> Answer {
    Answer::Failed(Failure::of_partition(e))
}

async fn answer(state: &Arc<State>, request: Request) -> Answer {
    match request {
        Request::Read { tp, spec } => match led_here(state, &tp) {
            Ok(p) => {
                // A positional read of the log: off the async workers.
                let read = tokio::task::spawn_blocking(move || p.read(&spec)).await;
                match read {
                    Ok(Ok(read)) => Answer::Read(read),
                    Ok(Err(e)) => partition_failure(&e),
                    Err(e) => failed(FailureKind::Refused, format!("the read task failed: {e}")),
                }
            }
            Err(answer) => answer,
        },
        Request::Watermarks { tp } => match led_here(state, &tp) {
            Ok(p) => Answer::Watermarks(p.watermarks()),
            Err(answer) => answer,
        },
        Request::OffsetForTimestamp { tp, timestamp } => match led_here(state, &tp) {
            Ok(p) => {
                let found = tokio::task::spawn_blocking(move || p.offset_for_timestamp(timestamp));
                match found.await {
                    Ok(Ok(found)) => Answer::Offset(found),
                    Ok(Err(e)) => partition_failure(&e),
                    Err(e) => failed(FailureKind::Refused, format!("the lookup task failed: {e}")),
                }
            }
            Err(answer) => answer,
        },
        Request::Append {
            tp,
            timeout_ms,
            records,
        } => match led_here(state, &tp) {
            Ok(p) => append(state, &p, timeout_ms, records).await,
            Err(answer) => answer,
        },
        Request::Wait { max_wait_ms, items } => {
            wait(
                state,
                Duration::from_millis(u64::from(max_wait_ms)).min(MAX_WAIT),
                &items,
            )
            .await
        }
        txn @ (Request::InitTransactional { .. }
        | Request::AddPartitions { .. }
        | Request::EndTxn { .. }) => match run_txn(state, &txn).await {
            Ok(answer) => answer,
            Err(e) => Answer::Failed(Failure::of_txn(&e)),
        },
    }
}

/// Runs a transaction coordinator's call (`InitTransactional`, `AddPartitions`, `EndTxn`)
/// on this broker: for a remote caller here, and for [`super::PartitionAccess`] when the
/// coordinator is local. Any other request is answered `Done` (none reaches here).
pub(super) async fn run_txn(
    state: &Arc<State>,
    request: &Request,
) -> Result<Answer, txn_api::TxnApiError> {
    match request {
        Request::InitTransactional {
            transactional_id,
            timeout_ms,
        } => {
            let (producer_id, producer_epoch) =
                txn_api::init_transactional(state, transactional_id, *timeout_ms).await?;
            Ok(Answer::Producer {
                producer_id,
                producer_epoch,
            })
        }
        Request::AddPartitions {
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
        } => {
            txn_api::add_partitions(
                state,
                transactional_id,
                *producer_id,
                *producer_epoch,
                partitions.clone(),
            )
            .await?;
            Ok(Answer::Done)
        }
        Request::EndTxn {
            transactional_id,
            producer_id,
            producer_epoch,
            commit,
        } => {
            txn_api::end_txn(
                state,
                transactional_id,
                *producer_id,
                *producer_epoch,
                *commit,
            )
            .await?;
            Ok(Answer::Done)
        }
        _ => Ok(Answer::Done),
    }
}

/// acks=all, as a producer's: answered when the records are durable under the broker's
/// policy and past the high watermark.
async fn append(state: &State, p: &Arc<Partition>, timeout_ms: u32, records: Bytes) -> Answer {
    let mut buf = records.to_vec();
    let now = crate::partition_access::now_ms();
    let appended = match p.append(&mut buf, Acks::All, state.config.durability, now) {
        Ok(a) => a,
        Err(e) => return partition_failure(&e),
    };
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    match appended.wait.wait(timeout).await {
        Ok(()) => Answer::Appended {
            last_offset: appended.info.last_offset,
        },
        Err(e) => partition_failure(&e),
    }
}

/// Parks until a partition of `items` led here has a last stable offset past its offset,
/// or `max_wait`. A partition not led here answers at once (the caller's read re-routes).
async fn wait(state: &State, max_wait: Duration, items: &[(TopicPartition, i64)]) -> Answer {
    let mut parts = Vec::with_capacity(items.len());
    for (tp, offset) in items {
        match led_here(state, tp) {
            Ok(p) => parts.push((p, *offset)),
            Err(_) => return Answer::Waited,
        }
    }
    let deadline = tokio::time::Instant::now() + max_wait;
    loop {
        let watched: Vec<(&Partition, u64)> =
            parts.iter().map(|(p, _)| (&**p, p.version())).collect();
        if parts
            .iter()
            .any(|(p, offset)| p.last_stable_offset() > *offset)
        {
            return Answer::Waited;
        }
        tokio::select! {
            _ = any_changed(&watched) => {}
            _ = tokio::time::sleep_until(deadline) => return Answer::Waited,
        }
    }
}
