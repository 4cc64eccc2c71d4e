//! Produce: validate and append each partition's batches in request order, then answer once the
//! durability policy is met.

use std::sync::Arc;

use weir_coordinator::txn::TxnMember;
use weir_coordinator::{ErrorCode, TopicPartition};
use weir_protocol::kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use weir_protocol::kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use weir_protocol::{ApiKey, ResponseError};

use super::{cluster, msg, Conn, Ctx, Reply};
use crate::errors::partition_code;
use crate::partition::{AckWait, Acks, PartitionError};
use crate::security::{Operation, Resource};
use crate::server::now_ms;
use crate::state::{validate_topic_name, State, Topic};
use crate::txn_verify;
use weir_storage::StorageError;

/// A partition's answer, and what it still waits for.
struct Pending {
    response: PartitionProduceResponse,
    /// The fsync and replication owed before answering.
    wait: AckWait,
}

/// The transactional producer of a partition's records (its first batch), with the
/// request's transactional id: what KIP-890 verifies.
fn transactional_producer<'a>(
    transactional_id: &'a str,
    records: &[u8],
) -> Option<(&'a str, i64, i16)> {
    let header = weir_storage::BatchHeader::parse(records).ok()?;
    (header.is_transactional() && !header.is_control()).then_some((
        transactional_id,
        header.producer_id(),
        header.producer_epoch(),
    ))
}

/// Kafka's Produce answer for a verification that did not pass: the coordinator's refusal
/// (INVALID_TXN_STATE: not added, or already decided; a stale epoch as
/// INVALID_PRODUCER_EPOCH), or NOT_ENOUGH_REPLICAS, which producers retry, when the
/// coordinator could not be asked.
fn verification_refusal(code: ErrorCode) -> (ResponseError, String) {
    if txn_verify::is_retriable(code) {
        return (
            ResponseError::NotEnoughReplicas,
            format!("the transaction could not be verified (error {})", code.0),
        );
    }
    let error = match code {
        ErrorCode::PRODUCER_FENCED => ResponseError::InvalidProducerEpoch,
        code => ResponseError::try_from_code(code.0).unwrap_or(ResponseError::InvalidTxnState),
    };
    (
        error,
        "the partition was not added to an ongoing transaction".to_owned(),
    )
}

pub async fn handle(state: &Arc<State>, req: ProduceRequest, ctx: Ctx, conn: &Conn) -> Reply {
    let acks = req.acks;
    // Kafka: a transactional produce needs WRITE on its transactional id, or no partition of
    // it is written.
    let txn_denied = req
        .transactional_id
        .as_deref()
        .filter(|t| !t.is_empty())
        .is_some_and(|t| !conn.may(state, Operation::Write, Resource::TransactionalId(t)));
    let transactional_id = req
        .transactional_id
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(|t| t.to_string());
    // Bounds only the wait for replication (Kafka's meaning); the leader's fsync is not
    // abandoned half-way.
    let timeout = std::time::Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for td in req.topic_data {
        let name = td.name.0.to_string();
        let topic = if txn_denied {
            Err(ResponseError::TransactionalIdAuthorizationFailed)
        } else if !conn.may(state, Operation::Write, Resource::Topic(&name)) {
            Err(ResponseError::TopicAuthorizationFailed)
        } else {
            match state.topic(&name) {
                Some(t) => Ok(t),
                None if validate_topic_name(&name).is_err() => {
                    Err(ResponseError::InvalidTopicException)
                }
                None if state.config.auto_create_topics
                    && cluster::may_create_topic(state, conn, &name) =>
                {
                    cluster::auto_create(state, &name).await
                }
                None => Err(ResponseError::UnknownTopicOrPartition),
            }
        };
        let compacted = topic.as_ref().ok().map(|t| is_compacted(t));
        // After the auto-creation's wait: the lease as it is when the appends start.
        let lease = state.lease_now();
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
                state.metrics.error(ApiKey::Produce, code);
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
                    wait: AckWait::default(),
                });
                continue;
            };
            let partition = match &topic {
                Ok(t) => lease.lookup(t, pd.index),
                Err(code) => Err(*code),
            };
            let partition = match partition {
                Ok(p) => p,
                Err(code) => {
                    if let Some((id, seq)) = pd.records.as_deref().and_then(idempotent_start) {
                        conn.produce_gaps.refused(&name, pd.index, id, seq, code);
                    }
                    fail(&mut response, code, None);
                    parts.push(Pending {
                        response,
                        wait: AckWait::default(),
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
                    wait: AckWait::default(),
                });
                continue;
            };
            if compacted.unwrap_or(false) {
                // Decompressing may take a while: off the async worker, like the append.
                if let Some((code, message, errors)) =
                    tokio::task::block_in_place(|| keyless_check(&records, &name, pd.index, state))
                {
                    response.record_errors = errors;
                    fail(&mut response, code, Some(message));
                    parts.push(Pending {
                        response,
                        wait: AckWait::default(),
                    });
                    continue;
                }
            }
            let start = idempotent_start(&records);
            // KIP-890: the first batch of a transaction here is verified with its
            // coordinator first; one of a decided transaction is refused.
            let txn_producer = transactional_id
                .as_deref()
                .and_then(|id| transactional_producer(id, &records));
            let verified = match txn_producer {
                Some((id, pid, epoch)) if partition.needs_verification(pid) => {
                    let guard = partition.begin_verification(pid);
                    let member = TxnMember::Partition(TopicPartition::new(name.clone(), pd.index));
                    match txn_verify::verify(state, id, pid, epoch, &member).await {
                        Ok(()) => Some((pid, Some(guard))),
                        Err(code) => {
                            partition.abandon_verification(pid, guard);
                            let (code, message) = verification_refusal(code);
                            if let Some((id, seq)) = start {
                                conn.produce_gaps.refused(&name, pd.index, id, seq, code);
                            }
                            fail(&mut response, code, Some(message));
                            parts.push(Pending {
                                response,
                                wait: AckWait::default(),
                            });
                            continue;
                        }
                    }
                }
                Some((_, pid, _)) => Some((pid, None)),
                None => None,
            };
            // The log rewrites base offsets in place, so it needs the bytes to itself. A frame
            // larger than the connection's read buffer is read into a buffer of its own, and
            // once decoded the last partition's records are often its only reference: then
            // they are appended where they are. Otherwise (small frames, other partitions of
            // the same request) they are copied.
            let mut data = records
                .try_into_mut()
                .unwrap_or_else(|shared| bytes::BytesMut::from(&shared[..]));
            let result = tokio::task::block_in_place(|| match verified {
                Some((pid, guard)) => partition.append_transactional(
                    pid,
                    guard,
                    &mut data,
                    wanted,
                    state.config.durability,
                    now_ms(),
                ),
                None => partition.append(&mut data, wanted, state.config.durability, now_ms()),
            });
            match result {
                Ok(appended) => {
                    conn.produce_gaps.appended(&name, pd.index);
                    let info = appended.info;
                    if let (Ok(t), false) = (&topic, info.duplicate) {
                        let records = info.last_offset - info.base_offset + 1;
                        t.metrics.produced(
                            u64::try_from(info.bytes).unwrap_or(0),
                            u64::try_from(records).unwrap_or(0),
                        );
                    }
                    response.base_offset = info.base_offset;
                    response.log_append_time_ms = info.log_append_time.unwrap_or(-1);
                    response.log_start_offset = info.log_start_offset;
                    parts.push(Pending {
                        response,
                        wait: appended.wait,
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
                    let code = match (&e, start) {
                        (
                            PartitionError::Storage(StorageError::OutOfOrderSequence {
                                producer_id,
                                expected,
                                ..
                            }),
                            _,
                        ) => conn
                            .produce_gaps
                            .excuse(&name, pd.index, *producer_id, *expected)
                            .unwrap_or(ResponseError::OutOfOrderSequenceNumber),
                        (_, Some((id, seq))) => {
                            let code = partition_code(&e);
                            conn.produce_gaps.refused(&name, pd.index, id, seq, code);
                            code
                        }
                        (_, None) => partition_code(&e),
                    };
                    let message = if code == partition_code(&e) {
                        e.to_string()
                    } else {
                        format!("{e}: the batch before it was refused on this connection ({code:?}); send that one first")
                    };
                    fail(&mut response, code, Some(message));
                    parts.push(Pending {
                        response,
                        wait: AckWait::default(),
                    });
                }
            }
        }
        topics.push((td.name, parts));
    }
    if acks == 0 {
        return Reply::Now(None);
    }
    let needs_wait = topics
        .iter()
        .any(|(_, parts)| parts.iter().any(|p| !p.wait.is_empty()));
    // KIP-951: only in cluster mode is there another leader to name.
    let hints = (state.is_cluster() && ctx.version >= 10).then(|| state.clone());
    if !needs_wait {
        return match ctx.encode(&finish(topics, hints.as_deref())) {
            Some(b) => Reply::Now(Some(b)),
            None => Reply::Close,
        };
    }
    let metrics = state.metrics.clone();
    Reply::Later(Box::pin(async move {
        // Start every partition's fsync at once; each joins its partition's group commit.
        let mut waits = Vec::new();
        for (ti, (_, parts)) in topics.iter_mut().enumerate() {
            for (pi, p) in parts.iter_mut().enumerate() {
                let wait = std::mem::take(&mut p.wait);
                if !wait.is_empty() {
                    waits.push((ti, pi, wait.wait(timeout)));
                }
            }
        }
        for (ti, pi, wait) in waits {
            let outcome = wait.await;
            let Some(p) = topics.get_mut(ti).and_then(|(_, parts)| parts.get_mut(pi)) else {
                continue;
            };
            if let Err(e) = outcome {
                match e {
                    PartitionError::Storage(_) | PartitionError::FlushTask(_) => {
                        tracing::error!(error = %e, "fsync failed; the partition is poisoned");
                    }
                    _ => tracing::debug!(error = %e, "acks=all not met"),
                }
                let code = partition_code(&e);
                metrics.error(ApiKey::Produce, code);
                p.response.error_code = code.code();
                p.response.error_message = msg(e);
                p.response.base_offset = -1;
            }
        }
        ctx.encode(&finish(topics, hints.as_deref()))
    }))
}

/// The producer id and first sequence of an idempotent data batch at the start of `records`
/// (`None` for a plain producer's, a control batch or bytes that are no batch).
fn idempotent_start(records: &[u8]) -> Option<(i64, i32)> {
    let header = weir_storage::BatchHeader::parse(records).ok()?;
    (header.producer_id() >= 0 && !header.is_control())
        .then(|| (header.producer_id(), header.base_sequence()))
}

/// Whether a topic's `cleanup.policy` includes `compact`.
fn is_compacted(topic: &Topic) -> bool {
    topic
        .configs
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get("cleanup.policy")
        .is_some_and(|p| p.split(',').any(|v| v.trim() == "compact"))
}

/// A compacted topic keeps the last record per key, so a record without a key is refused,
/// with the whole batch (KIP-467: INVALID_RECORD and one error per offending record).
fn keyless_check(
    records: &[u8],
    topic: &str,
    partition: i32,
    state: &State,
) -> Option<(ResponseError, String, Vec<BatchIndexAndErrorMessage>)> {
    match crate::records::keyless_records(records, state.config.socket_request_max_bytes) {
        Ok(missing) if missing.is_empty() => None,
        Ok(missing) => {
            let each = format!(
                "compacted topic {topic} cannot accept a record without a key (partition {partition})"
            );
            let errors = missing
                .iter()
                .map(|&i| {
                    let mut e = BatchIndexAndErrorMessage::default();
                    e.batch_index = i;
                    e.batch_index_error_message = msg(&each);
                    e
                })
                .collect();
            let message = format!("{each}: {} record(s) have no key", missing.len());
            Some((ResponseError::InvalidRecord, message, errors))
        }
        Err(e) => Some((
            ResponseError::InvalidRecord,
            format!("cannot check the keys of records for compacted topic {topic}: {e}"),
            Vec::new(),
        )),
    }
}

fn finish(
    topics: Vec<(
        weir_protocol::kafka_protocol::messages::TopicName,
        Vec<Pending>,
    )>,
    hints: Option<&State>,
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
    if let Some(state) = hints {
        leader_hints(state, &mut r);
    }
    r
}

/// KIP-951 (Produce v10+): each NOT_LEADER_OR_FOLLOWER partition names the leader the
/// image knows, and the answer carries that leader's endpoint, so the producer retries
/// there without a Metadata round trip.
fn leader_hints(state: &State, r: &mut ProduceResponse) {
    use weir_protocol::kafka_protocol::messages::produce_response::NodeEndpoint;
    use weir_protocol::kafka_protocol::messages::BrokerId;
    let code = ResponseError::NotLeaderOrFollower.code();
    if !r
        .responses
        .iter()
        .any(|t| t.partition_responses.iter().any(|p| p.error_code == code))
    {
        return;
    }
    let image = state.image.image();
    let mut hints = crate::cluster::metadata::LeaderHints::new(&image);
    for t in r.responses.iter_mut() {
        let topic = image.topic_by_name(&t.name.0).map(|t| &**t);
        for p in t.partition_responses.iter_mut() {
            if p.error_code != code {
                continue;
            }
            if let Some((leader, epoch)) = hints.hint(topic, p.index) {
                p.current_leader.leader_id = BrokerId(leader);
                p.current_leader.leader_epoch = epoch;
            }
        }
    }
    r.node_endpoints = hints
        .endpoints()
        .into_iter()
        .map(|e| {
            let mut n = NodeEndpoint::default();
            n.node_id = BrokerId(e.id);
            n.host = super::str(&e.host);
            n.port = e.port;
            n.rack = e.rack.as_deref().map(super::str);
            n
        })
        .collect();
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
    use super::*;
    use bytes::Buf;
    use weir_protocol::kafka_protocol::messages::produce_request::{
        PartitionProduceData, TopicProduceData,
    };
    use weir_protocol::kafka_protocol::messages::{ApiKey, ResponseHeader, TopicName};
    use weir_protocol::kafka_protocol::protocol::{Decodable, HeaderVersion, StrBytes};
    use weir_protocol::kafka_protocol::records::Compression;

    fn batch(keys: &[Option<&'static str>], compression: Compression) -> bytes::Bytes {
        crate::records::tests::batch(keys, compression).into()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keyless_records_fail_only_their_partition_of_a_compacted_topic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = super::super::testutil::state(dir.path(), &[]);
        let compact = [("cleanup.policy".to_string(), "compact,delete".to_string())];
        state
            .create_topic("c", 3, 1, compact.into_iter().collect())
            .await
            .expect("create");
        state
            .create_topic("d", 1, 1, Default::default())
            .await
            .expect("create");
        let part = |index, records| {
            let mut p = PartitionProduceData::default();
            p.index = index;
            p.records = Some(records);
            p
        };
        let mut c = TopicProduceData::default();
        c.name = TopicName(StrBytes::from_static_str("c"));
        c.partition_data = vec![
            part(
                0,
                batch(&[Some("k"), None, Some("k"), None], Compression::Lz4),
            ),
            part(1, batch(&[Some("k"), Some("")], Compression::Zstd)),
            part(2, batch(&[None], Compression::None)),
        ];
        let mut d = TopicProduceData::default();
        d.name = TopicName(StrBytes::from_static_str("d"));
        d.partition_data = vec![part(0, batch(&[None], Compression::Gzip))];
        let mut req = ProduceRequest::default();
        req.acks = 1;
        req.timeout_ms = 1000;
        req.topic_data = vec![c, d];
        let ctx = Ctx {
            api_key: ApiKey::Produce,
            version: 9,
            correlation_id: 1,
        };
        let Reply::Now(Some(mut bytes)) = handle(
            &state,
            req,
            ctx,
            &super::super::Conn::plaintext(&state, "127.0.0.1:1".parse().expect("addr")),
        )
        .await
        else {
            panic!("expected an immediate answer");
        };
        bytes.advance(4);
        ResponseHeader::decode(&mut bytes, ProduceResponse::header_version(9)).expect("header");
        let r = ProduceResponse::decode(&mut bytes, 9).expect("response");
        let parts: Vec<_> = r
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .collect();
        let invalid = ResponseError::InvalidRecord.code();
        assert_eq!(parts[0].error_code, invalid);
        let indexes: Vec<i32> = parts[0]
            .record_errors
            .iter()
            .map(|e| e.batch_index)
            .collect();
        assert_eq!(indexes, vec![1, 3]);
        let m = parts[0]
            .error_message
            .as_ref()
            .expect("message")
            .to_string();
        assert!(m.contains("without a key"), "{m}");
        assert_eq!(parts[0].base_offset, -1);
        // An empty key is a key; the other partitions and topics are unaffected.
        assert_eq!(parts[1].error_code, 0);
        assert_eq!(parts[1].base_offset, 0);
        assert_eq!(parts[2].error_code, invalid);
        assert_eq!(
            parts[3].error_code, 0,
            "a keyless record on a delete topic is fine"
        );
        let p0 = state.topic("c").and_then(|t| t.partition(0)).expect("p0");
        assert_eq!(
            p0.log_end_offset(),
            0,
            "nothing of the refused batch was written"
        );
    }

    /// acks=all on replicated leaders, through the handler: refused below min ISR, bounded by
    /// the request's timeout_ms while followers lag, answered at once when the replica leads
    /// alone; all three in one request.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acks_all_on_replicated_leaders_answers_with_kafkas_errors() {
        use weir_metadata::{LeaderRecovery, PartitionRegistration};
        use weir_replication::LeaderConfig;

        let dir = tempfile::tempdir().expect("tempdir");
        let state = super::super::testutil::state(dir.path(), &[]);
        let topic = state
            .create_topic("r", 3, 1, Default::default())
            .await
            .expect("create");
        let lead = |index: i32, isr: Vec<i32>| {
            let reg = PartitionRegistration {
                replicas: vec![1, 2, 3],
                isr,
                elr: Vec::new(),
                last_known_elr: Vec::new(),
                adding: Vec::new(),
                removing: Vec::new(),
                leader: 1,
                leader_epoch: 1,
                partition_epoch: 0,
                leader_recovery: LeaderRecovery::Recovered,
            };
            let config = LeaderConfig {
                local: 1,
                local_broker_epoch: 1,
                min_insync_replicas: 2,
                replica_lag_time_max_ms: 30_000,
            };
            topic
                .partition(index)
                .expect("partition")
                .become_replicated_leader(&reg, config, 0)
                .expect("lead");
        };
        lead(0, vec![1]);
        lead(1, vec![1, 2, 3]);
        let part = |index| {
            let mut p = PartitionProduceData::default();
            p.index = index;
            p.records = Some(batch(&[Some("k")], Compression::None));
            p
        };
        let mut t = TopicProduceData::default();
        t.name = TopicName(StrBytes::from_static_str("r"));
        t.partition_data = vec![part(0), part(1), part(2)];
        let mut req = ProduceRequest::default();
        req.acks = -1;
        req.timeout_ms = 200;
        req.topic_data = vec![t];
        let ctx = Ctx {
            api_key: ApiKey::Produce,
            version: 9,
            correlation_id: 1,
        };
        let started = std::time::Instant::now();
        let Reply::Later(answer) = handle(
            &state,
            req,
            ctx,
            &super::super::Conn::plaintext(&state, "127.0.0.1:1".parse().expect("addr")),
        )
        .await
        else {
            panic!("expected a waiting answer");
        };
        let mut bytes = answer.await.expect("encoded");
        assert!(started.elapsed() >= std::time::Duration::from_millis(200));
        bytes.advance(4);
        ResponseHeader::decode(&mut bytes, ProduceResponse::header_version(9)).expect("header");
        let r = ProduceResponse::decode(&mut bytes, 9).expect("response");
        let codes: Vec<i16> = r.responses[0]
            .partition_responses
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(
            codes,
            vec![
                ResponseError::NotEnoughReplicas.code(),
                ResponseError::RequestTimedOut.code(),
                0
            ]
        );
        let ends: Vec<i64> = (0..3)
            .map(|i| topic.partition(i).expect("p").log_end_offset())
            .collect();
        assert_eq!(
            ends,
            vec![0, 1, 1],
            "refused below min ISR: nothing appended"
        );
    }

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
