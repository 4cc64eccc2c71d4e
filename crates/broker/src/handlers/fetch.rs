//! Fetch: read whole batches from each requested partition; long-poll until `min_bytes` have
//! arrived or `max_wait_ms` has passed. Fetch sessions are not kept: every response carries
//! session id 0, which tells clients to keep sending full requests.
//!
//! The batches are never decoded and copied once: `Log::read` reads them into a buffer, and
//! the response is encoded around that buffer ([`Splicer`]) and written with one vectored
//! write, so the bytes go from the read buffer to the socket.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use uuid::Uuid;
use weir_protocol::kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use weir_protocol::kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use weir_protocol::{ResponseError, Splicer};
use weir_storage::batch::{Batches, Check};

use super::{Ctx, Reply};
use crate::errors::storage_code;
use crate::state::{Partition, State};

/// One requested partition, resolved once per request.
struct Want {
    partition_index: i32,
    offset: i64,
    max_bytes: usize,
    target: Result<Arc<Partition>, ResponseError>,
}

struct TopicWant {
    name: TopicName,
    id: Uuid,
    parts: Vec<Want>,
}

pub fn handle(state: &Arc<State>, req: FetchRequest, ctx: Ctx) -> Reply {
    let by_id = ctx.version >= 13;
    let plan: Vec<TopicWant> = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = if by_id {
                state.topic_by_id(t.topic_id)
            } else {
                state.topic(&t.topic.0)
            };
            let missing = if by_id {
                ResponseError::UnknownTopicId
            } else {
                ResponseError::UnknownTopicOrPartition
            };
            let parts = t
                .partitions
                .into_iter()
                .map(|p| Want {
                    partition_index: p.partition,
                    offset: p.fetch_offset,
                    max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                    target: match &topic {
                        Some(topic) => topic
                            .partition(p.partition)
                            .ok_or(ResponseError::UnknownTopicOrPartition),
                        None => Err(missing),
                    },
                })
                .collect();
            TopicWant {
                name: t.topic,
                id: t.topic_id,
                parts,
            }
        })
        .collect();
    let read_committed = req.isolation_level == 1;
    let max_bytes = usize::try_from(req.max_bytes).unwrap_or(0);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let max_wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0));
    let state = state.clone();

    Reply::LaterParts(Box::pin(async move {
        let deadline = tokio::time::Instant::now() + max_wait;
        let mut appends = state.subscribe_appends();
        loop {
            appends.borrow_and_update();
            let (response, splicer, bytes, errors) = read(&plan, max_bytes, by_id, read_committed);
            let expired = tokio::time::Instant::now() >= deadline;
            if bytes >= min_bytes.max(1) || errors || expired || min_bytes == 0 {
                return encode(ctx, splicer, &response);
            }
            tokio::select! {
                changed = appends.changed() => if changed.is_err() { return encode(ctx, splicer, &response) },
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }))
}

fn encode(ctx: Ctx, splicer: Splicer, response: &FetchResponse) -> Option<Vec<Bytes>> {
    match splicer.encode(ctx.api_key, ctx.version, ctx.correlation_id, response) {
        Ok(parts) => Some(parts),
        Err(e) => {
            tracing::error!(error = %e, "response encoding failed (a handler bug)");
            None
        }
    }
}

/// Cuts `records` before the first batch at or past `stable` (read_committed readers see
/// only decided transactions); returns the kept bytes and the offset after the last kept one.
fn below_stable(records: Bytes, stable: i64) -> (Bytes, Option<i64>) {
    let mut cut = 0;
    let mut next = None;
    for b in Batches::new(&records, Check::Structure).flatten() {
        if b.header.base_offset >= stable {
            break;
        }
        cut = b.position + b.bytes.len();
        next = Some(b.header.base_offset + b.header.offset_count());
    }
    (records.slice(..cut), next)
}

/// Reads every wanted partition once. Returns the response (large record sets replaced by
/// the splicer's stand-ins), the splicer, the record bytes in it, and whether any partition
/// answered with an error (which ends a long poll at once).
fn read(
    plan: &[TopicWant],
    max_bytes: usize,
    by_id: bool,
    read_committed: bool,
) -> (FetchResponse, Splicer, usize, bool) {
    let mut splicer = Splicer::new();
    let mut remaining = max_bytes;
    let mut total = 0usize;
    let mut errors = false;
    let mut response = FetchResponse::default();
    for t in plan {
        let mut topic = FetchableTopicResponse::default();
        if by_id {
            topic.topic_id = t.id;
        } else {
            topic.topic = t.name.clone();
        }
        for w in &t.parts {
            let mut p = PartitionData::default();
            p.partition_index = w.partition_index;
            p.high_watermark = -1;
            p.last_stable_offset = -1;
            p.log_start_offset = -1;
            p.records = Some(Bytes::new());
            match &w.target {
                Err(code) => {
                    p.error_code = code.code();
                    errors = true;
                }
                Ok(partition) => {
                    let log = &partition.log;
                    // KIP-74: the first batch is sent even when it exceeds the limits.
                    let limit = if total == 0 {
                        w.max_bytes.min(max_bytes).max(1)
                    } else {
                        w.max_bytes.min(remaining)
                    };
                    let outcome = if limit == 0 {
                        Ok(None)
                    } else {
                        log.read(w.offset, limit).map(Some)
                    };
                    match outcome {
                        Ok(out) => {
                            let hw = out
                                .as_ref()
                                .map_or_else(|| log.log_end_offset(), |o| o.log_end_offset);
                            let stable = log.last_stable_offset().min(hw);
                            p.high_watermark = hw;
                            p.last_stable_offset = stable;
                            p.log_start_offset = out
                                .as_ref()
                                .map_or_else(|| log.log_start_offset(), |o| o.log_start_offset);
                            if let Some(out) = out {
                                let records = if read_committed {
                                    let (kept, end) = below_stable(out.records, stable);
                                    let aborted = end.map_or_else(Vec::new, |end| {
                                        log.aborted_transactions(w.offset, end)
                                    });
                                    p.aborted_transactions = Some(
                                        aborted
                                            .into_iter()
                                            .map(|a| {
                                                let mut t = AbortedTransaction::default();
                                                t.producer_id = ProducerId(a.producer_id);
                                                t.first_offset = a.first_offset;
                                                t
                                            })
                                            .collect(),
                                    );
                                    kept
                                } else {
                                    out.records
                                };
                                total += records.len();
                                remaining = remaining.saturating_sub(records.len());
                                p.records = Some(splicer.stand_in(records));
                            }
                        }
                        Err(e) => {
                            p.error_code = storage_code(&e).code();
                            p.high_watermark = log.log_end_offset();
                            p.last_stable_offset = log.last_stable_offset();
                            p.log_start_offset = log.log_start_offset();
                            errors = true;
                            tracing::debug!(partition = w.partition_index, error = %e, "fetch error");
                        }
                    }
                }
            }
            topic.partitions.push(p);
        }
        response.responses.push(topic);
    }
    (response, splicer, total, errors)
}
