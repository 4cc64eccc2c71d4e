//! Produce: validate and append each partition's batches in request order, then answer once the
//! durability policy is met.

use std::sync::Arc;

use weir_protocol::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use weir_protocol::kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use weir_protocol::ResponseError;

use super::{cluster, msg, Ctx, Reply};
use crate::errors::partition_code;
use crate::partition::{Acks, Durable};
use crate::server::now_ms;
use crate::state::{validate_topic_name, State};

/// A partition's answer, and what it still waits for.
struct Pending {
    response: PartitionProduceResponse,
    /// The fsync owed before answering.
    flush: Option<Durable>,
}

pub async fn handle(state: &Arc<State>, req: ProduceRequest, ctx: Ctx) -> Reply {
    let acks = req.acks;
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for td in req.topic_data {
        let name = td.name.0.to_string();
        let topic = match state.topic(&name) {
            Some(t) => Ok(t),
            None if validate_topic_name(&name).is_err() => {
                Err(ResponseError::InvalidTopicException)
            }
            None if state.config.auto_create_topics => cluster::auto_create(state, &name).await,
            None => Err(ResponseError::UnknownTopicOrPartition),
        };
        let mut parts = Vec::with_capacity(td.partition_data.len());
        for pd in td.partition_data {
            let mut response = PartitionProduceResponse::default();
            response.index = pd.index;
            response.base_offset = -1;
            response.log_append_time_ms = -1;
            response.log_start_offset = -1;
            let fail = |response: &mut PartitionProduceResponse,
                        code: ResponseError,
                        m: Option<String>| {
                response.error_code = code.code();
                response.error_message = m.and_then(msg);
            };
            let Some(wanted) = Acks::from_wire(acks) else {
                fail(
                    &mut response,
                    ResponseError::InvalidRequiredAcks,
                    Some(format!("acks={acks} is not -1, 0 or 1")),
                );
                parts.push(Pending {
                    response,
                    flush: None,
                });
                continue;
            };
            let partition = match &topic {
                Ok(t) => t
                    .partition(pd.index)
                    .ok_or(ResponseError::UnknownTopicOrPartition),
                Err(code) => Err(*code),
            };
            let partition = match partition {
                Ok(p) => p,
                Err(code) => {
                    fail(&mut response, code, None);
                    parts.push(Pending {
                        response,
                        flush: None,
                    });
                    continue;
                }
            };
            let Some(records) = pd.records.filter(|r| !r.is_empty()) else {
                fail(
                    &mut response,
                    ResponseError::InvalidRecord,
                    Some("no record batch".into()),
                );
                parts.push(Pending {
                    response,
                    flush: None,
                });
                continue;
            };
            // The log rewrites base offsets in place, so it needs the bytes to itself. A frame
            // larger than the connection's read buffer is read into a buffer of its own, and
            // once decoded the last partition's records are often its only reference: then
            // they are appended where they are. Otherwise (small frames, other partitions of
            // the same request) they are copied.
            let mut data = records
                .try_into_mut()
                .unwrap_or_else(|shared| bytes::BytesMut::from(&shared[..]));
            let result = tokio::task::block_in_place(|| {
                partition.append(&mut data, wanted, state.config.durability, now_ms())
            });
            match result {
                Ok(appended) => {
                    let info = appended.info;
                    response.base_offset = info.base_offset;
                    response.log_append_time_ms = info.log_append_time.unwrap_or(-1);
                    response.log_start_offset = info.log_start_offset;
                    parts.push(Pending {
                        response,
                        flush: appended.durable,
                    });
                }
                Err(e) => {
                    // A full disk or a misbehaving producer fails every request the same way:
                    // one line per second says so, with how many were not logged.
                    if e.is_client_fault() {
                        if let Some(suppressed) = REJECTED.admit() {
                            tracing::info!(topic = %name, partition = pd.index, error = %e, suppressed, "produce rejected");
                        }
                    } else if let Some(suppressed) = FAILED.admit() {
                        tracing::error!(topic = %name, partition = pd.index, error = %e, suppressed, "append failed");
                    }
                    fail(&mut response, partition_code(&e), Some(e.to_string()));
                    parts.push(Pending {
                        response,
                        flush: None,
                    });
                }
            }
        }
        topics.push((td.name, parts));
    }
    if acks == 0 {
        return Reply::Now(None);
    }
    let needs_flush = topics
        .iter()
        .any(|(_, parts)| parts.iter().any(|p| p.flush.is_some()));
    if !needs_flush {
        return match ctx.encode(&finish(topics)) {
            Some(b) => Reply::Now(Some(b)),
            None => Reply::Close,
        };
    }
    Reply::Later(Box::pin(async move {
        // Start every partition's fsync at once; each joins its partition's group commit.
        let mut waits = Vec::new();
        for (ti, (_, parts)) in topics.iter_mut().enumerate() {
            for (pi, p) in parts.iter_mut().enumerate() {
                if let Some(durable) = p.flush.take() {
                    waits.push((ti, pi, durable.wait()));
                }
            }
        }
        for (ti, pi, wait) in waits {
            let outcome = wait.await;
            let Some(p) = topics.get_mut(ti).and_then(|(_, parts)| parts.get_mut(pi)) else {
                continue;
            };
            if let Err(e) = outcome {
                tracing::error!(error = %e, "fsync failed; the partition is poisoned");
                p.response.error_code = partition_code(&e).code();
                p.response.error_message = msg(e);
                p.response.base_offset = -1;
            }
        }
        ctx.encode(&finish(topics))
    }))
}

fn finish(
    topics: Vec<(
        weir_protocol::kafka_protocol::messages::TopicName,
        Vec<Pending>,
    )>,
) -> ProduceResponse {
    let mut r = ProduceResponse::default();
    r.responses = topics
        .into_iter()
        .map(|(name, parts)| {
            let mut t = TopicProduceResponse::default();
            t.name = name;
            t.partition_responses = parts.into_iter().map(|p| p.response).collect();
            t
        })
        .collect();
    r
}

/// At most one log line per second for a kind of produce failure.
struct Throttle {
    /// When the last line was logged, ms since the epoch.
    last_ms: std::sync::atomic::AtomicI64,
    /// Failures not logged since then.
    suppressed: std::sync::atomic::AtomicU64,
}

static REJECTED: Throttle = Throttle::new();
static FAILED: Throttle = Throttle::new();

impl Throttle {
    const fn new() -> Self {
        Throttle {
            last_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            suppressed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(failures not logged since the last line)` if this one may be logged.
    fn admit(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = now_ms();
        let last = self.last_ms.load(Relaxed);
        if now.saturating_sub(last) >= 1000
            && self
                .last_ms
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Relaxed))
        } else {
            self.suppressed.fetch_add(1, Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Throttle;

    #[test]
    fn throttle_admits_one_line_per_second_and_counts_the_rest() {
        let t = Throttle::new();
        assert_eq!(t.admit(), Some(0));
        assert_eq!(t.admit(), None);
        assert_eq!(t.admit(), None);
        // A second later the next line reports the two it swallowed.
        t.last_ms
            .fetch_sub(1000, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(t.admit(), Some(2));
        assert_eq!(t.admit(), None);
    }
}
