//! ListOffsets and DeleteRecords.

use std::sync::Arc;

use weir_protocol::kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use weir_protocol::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use weir_protocol::kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
};
use weir_protocol::ResponseError;

use crate::errors::partition_code;
use crate::security::{Operation, Resource};
use crate::state::State;

/// Special timestamps of ListOffsets.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub async fn list_offsets(
    state: &Arc<State>,
    req: ListOffsetsRequest,
    version: i16,
    conn: &super::Conn,
) -> ListOffsetsResponse {
    let mut r = ListOffsetsResponse::default();
    let req_committed = req.isolation_level == 1;
    // The lease (§4.9) decided once for the request, as Fetch does.
    let lease = state.lease_now();
    for t in req.topics {
        let allowed = conn.may(state, Operation::Describe, Resource::Topic(&t.name));
        let topic = state.topic(&t.name.0);
        let mut out = ListOffsetsTopicResponse::default();
        out.name = t.name;
        for p in t.partitions {
            let mut res = ListOffsetsPartitionResponse::default();
            res.partition_index = p.partition_index;
            res.timestamp = -1;
            res.offset = -1;
            let partition = match &topic {
                _ if !allowed => Err(ResponseError::TopicAuthorizationFailed),
                Some(t) => lease.lookup(t, p.partition_index),
                None => Err(ResponseError::UnknownTopicOrPartition),
            };
            let partition = match partition {
                Ok(partition) => partition,
                Err(code) => {
                    res.error_code = code.code();
                    out.partitions.push(res);
                    continue;
                }
            };
            // Only the leader answers, at every version (v4+ also checks the client's
            // epoch): a follower's high watermark lags its leader's, and a former leader's
            // is from before it lost the partition (design §4.9).
            let epoch = (version >= 4).then_some(p.current_leader_epoch);
            if let Err(e) = partition.check_leader_epoch(epoch) {
                res.error_code = partition_code(&e).code();
                out.partitions.push(res);
                continue;
            }
            match p.timestamp {
                // read_committed consumers start from the last stable offset; the others
                // from the high watermark (what a consumer may read, not the log end).
                LATEST | LATEST_TIERED if req_committed => {
                    res.offset = partition.last_stable_offset()
                }
                LATEST | LATEST_TIERED => res.offset = partition.high_watermark(),
                EARLIEST | EARLIEST_LOCAL => res.offset = partition.log_start_offset(),
                MAX_TIMESTAMP => {
                    if let Some((ts, offset)) = partition.max_timestamp() {
                        res.timestamp = ts;
                        res.offset = offset;
                    }
                }
                ts if ts >= 0 => {
                    let found = tokio::task::block_in_place(|| partition.offset_for_timestamp(ts));
                    match found {
                        Ok(Some((offset, timestamp))) => {
                            res.offset = offset;
                            res.timestamp = timestamp;
                        }
                        Ok(None) => {}
                        Err(e) => res.error_code = partition_code(&e).code(),
                    }
                }
                _ => res.error_code = ResponseError::InvalidRequest.code(),
            }
            if version >= 4 && res.error_code == 0 {
                // Kafka's answer: the current epoch for the end, otherwise the epoch of the
                // leader that wrote the offset found (a consumer validates it, KIP-320).
                res.leader_epoch = match p.timestamp {
                    LATEST | LATEST_TIERED => partition.leader_epoch(),
                    _ if res.offset >= 0 => partition.epoch_for_offset(res.offset),
                    _ => -1,
                };
            }
            out.partitions.push(res);
        }
        r.topics.push(out);
    }
    r
}

pub async fn delete_records(
    state: &Arc<State>,
    req: DeleteRecordsRequest,
    conn: &super::Conn,
) -> DeleteRecordsResponse {
    let mut r = DeleteRecordsResponse::default();
    for t in req.topics {
        let allowed = conn.may(state, Operation::Delete, Resource::Topic(&t.name));
        let topic = state.topic(&t.name.0);
        // The lease (§4.9) decided once per topic, as Produce does: the deletions between
        // topics wait on the disk.
        let lease = state.lease_now();
        let mut out = DeleteRecordsTopicResult::default();
        out.name = t.name;
        for p in t.partitions {
            let mut res = DeleteRecordsPartitionResult::default();
            res.partition_index = p.partition_index;
            res.low_watermark = -1;
            let partition = match &topic {
                _ if !allowed => Err(ResponseError::TopicAuthorizationFailed),
                Some(t) => lease.lookup(t, p.partition_index),
                None => Err(ResponseError::UnknownTopicOrPartition),
            };
            match partition {
                Err(code) => res.error_code = code.code(),
                Ok(partition) => {
                    // -1 means "up to the high watermark".
                    let offset = if p.offset == -1 {
                        partition.high_watermark()
                    } else {
                        p.offset
                    };
                    let result = if offset < 0 {
                        Err(ResponseError::OffsetOutOfRange)
                    } else {
                        let part = partition.clone();
                        match tokio::task::spawn_blocking(move || {
                            part.delete_records_before(offset)
                        })
                        .await
                        {
                            Ok(Ok(low)) => Ok(low),
                            Ok(Err(e)) => Err(partition_code(&e)),
                            Err(_) => Err(ResponseError::KafkaStorageError),
                        }
                    };
                    match result {
                        Ok(low) => res.low_watermark = low,
                        Err(code) => res.error_code = code.code(),
                    }
                }
            }
            out.partitions.push(res);
        }
        r.topics.push(out);
    }
    r
}
