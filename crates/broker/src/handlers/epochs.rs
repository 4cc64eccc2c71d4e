//! OffsetForLeaderEpoch (KIP-101): for each partition, the end offset of the requested epoch
//! in this leader's log, which a follower (or a consumer validating its position after a
//! leader change, KIP-320) truncates to.

use weir_protocol::kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use weir_protocol::kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};
use weir_protocol::ResponseError;

use crate::errors::partition_code;
use crate::state::State;

/// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
const UNDEFINED_EPOCH: i32 = -1;
const UNDEFINED_OFFSET: i64 = -1;

pub fn offset_for_leader_epoch(
    state: &State,
    req: OffsetForLeaderEpochRequest,
    conn: &super::Conn,
) -> OffsetForLeaderEpochResponse {
    use crate::security::{Operation, Resource};
    let mut r = OffsetForLeaderEpochResponse::default();
    // Kafka: a follower needs CLUSTER_ACTION, a consumer DESCRIBE on each topic.
    let follower = req.replica_id.0 >= 0;
    let follower_ok = follower && conn.may(state, Operation::ClusterAction, Resource::Cluster);
    // The lease (§4.9) decided once for the request, as Fetch does.
    let lease = state.lease_now();
    for t in req.topics {
        let allowed = follower_ok
            || (!follower && conn.may(state, Operation::Describe, Resource::Topic(&t.topic)));
        let topic = state.topic(&t.topic.0).filter(|_| allowed);
        let mut out = OffsetForLeaderTopicResult::default();
        out.topic = t.topic;
        for p in t.partitions {
            let mut res = EpochEndOffset::default();
            res.partition = p.partition;
            res.leader_epoch = UNDEFINED_EPOCH;
            res.end_offset = UNDEFINED_OFFSET;
            let current = (p.current_leader_epoch >= 0).then_some(p.current_leader_epoch);
            let partition = match &topic {
                Some(t) => lease.lookup(t, p.partition),
                None if !allowed => Err(ResponseError::TopicAuthorizationFailed),
                None => Err(ResponseError::UnknownTopicOrPartition),
            };
            match partition {
                Err(code) => res.error_code = code.code(),
                Ok(partition) => match partition.end_offset_for_epoch(current, p.leader_epoch) {
                    Ok(Some((epoch, end))) => {
                        res.leader_epoch = epoch;
                        res.end_offset = end;
                    }
                    Ok(None) => {}
                    Err(e) => res.error_code = partition_code(&e).code(),
                },
            }
            out.partitions.push(res);
        }
        r.topics.push(out);
    }
    r
}

#[cfg(test)]
mod tests {
    use weir_protocol::kafka_protocol::messages::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsTopic,
    };
    use weir_protocol::kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use weir_protocol::kafka_protocol::messages::{
        ApiKey, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
        OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, TopicName,
    };
    use weir_protocol::kafka_protocol::protocol::StrBytes;
    use weir_protocol::ResponseError;
    use weir_storage::testkit::BatchBuilder;

    use super::super::testkit::{round_trip, state};
    use super::super::tests::range;

    fn request(topic: &str, asks: &[(i32, i32, i32)]) -> OffsetForLeaderEpochRequest {
        let mut t = OffsetForLeaderTopic::default();
        t.topic = TopicName(StrBytes::from_string(topic.to_owned()));
        for &(partition, current, epoch) in asks {
            let mut p = OffsetForLeaderPartition::default();
            p.partition = partition;
            p.current_leader_epoch = current;
            p.leader_epoch = epoch;
            t.partitions.push(p);
        }
        let mut req = OffsetForLeaderEpochRequest::default();
        req.topics = vec![t];
        req
    }

    /// Every version (2-4): epoch end offsets from the log's epoch cache, UNDEFINED past the
    /// known epochs, unknown partitions, and current-epoch validation.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn offset_for_leader_epoch_at_every_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state(dir.path());
        state
            .create_topic("e", 1, 1, Default::default())
            .await
            .expect("create");
        let partition = state.topic("e").and_then(|t| t.partition(0)).expect("e-0");
        let log = partition.log_for_tests();
        // Epoch 0: offsets 0-1; epoch 2: offsets 2-4; epoch 4 elected at 5.
        log.append(&mut BatchBuilder::new(1).records(2, 5).build(), 1)
            .expect("append");
        partition.become_leader(2).expect("epoch 2");
        log.append(&mut BatchBuilder::new(1).records(3, 5).build(), 1)
            .expect("append");
        partition.become_leader(4).expect("epoch 4");
        assert!(matches!(
            partition.become_leader(3),
            Err(crate::partition::PartitionError::FencedLeaderEpoch { .. })
        ));

        let fenced = ResponseError::FencedLeaderEpoch.code();
        let unknown = ResponseError::UnknownLeaderEpoch.code();
        for v in range(ApiKey::OffsetForLeaderEpoch) {
            let asks = [
                (0, 4, 0),
                (0, 4, 1),
                (0, 4, 2),
                (0, 4, 3),
                (0, 4, 4),
                (0, 4, 5),
                (0, -1, 2),
                (0, 3, 2),
                (0, 5, 2),
                (9, 4, 0),
            ];
            let r: OffsetForLeaderEpochResponse = round_trip(
                &state,
                ApiKey::OffsetForLeaderEpoch,
                v,
                &request("e", &asks),
            )
            .await;
            let got: Vec<(i16, i32, i64)> = r.topics[0]
                .partitions
                .iter()
                .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
                .collect();
            let mut want = vec![
                (0, 0, 2),
                (0, 0, 2),
                (0, 2, 5),
                (0, 2, 5),
                (0, 4, 5),
                (0, -1, -1),
                (0, 2, 5),
                (fenced, -1, -1),
                (unknown, -1, -1),
            ];
            want.push((ResponseError::UnknownTopicOrPartition.code(), -1, -1));
            assert_eq!(got, want, "v{v}");
            assert_eq!(r.topics[0].topic.0.as_str(), "e");
        }

        // Metadata reports the partition's epoch.
        let mut all = MetadataRequest::default();
        all.topics = None;
        let m: MetadataResponse = round_trip(&state, ApiKey::Metadata, 12, &all).await;
        let e = m
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "e"))
            .expect("topic e");
        assert_eq!(e.partitions[0].leader_epoch, 4);
    }

    /// ListOffsets v4+ checks `current_leader_epoch` like a fetch, and answers the
    /// partition's epoch; older versions check nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn list_offsets_validates_the_current_leader_epoch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state(dir.path());
        state
            .create_topic("l", 1, 1, Default::default())
            .await
            .expect("create");
        let partition = state.topic("l").and_then(|t| t.partition(0)).expect("l-0");
        let log = partition.log_for_tests();
        log.append(&mut BatchBuilder::new(1).records(2, 5).build(), 1)
            .expect("append");
        partition.become_leader(3).expect("epoch 3");
        log.append(&mut BatchBuilder::new(1).records(2, 5).build(), 1)
            .expect("append");
        let fenced = ResponseError::FencedLeaderEpoch.code();
        let unknown = ResponseError::UnknownLeaderEpoch.code();
        for v in range(ApiKey::ListOffsets) {
            let mut t = ListOffsetsTopic::default();
            t.name = TopicName(StrBytes::from_static_str("l"));
            for current in [-1, 2, 3, 4] {
                let mut p = ListOffsetsPartition::default();
                p.partition_index = 0;
                p.current_leader_epoch = current;
                p.timestamp = -1;
                t.partitions.push(p);
            }
            let mut req = ListOffsetsRequest::default();
            req.replica_id = weir_protocol::kafka_protocol::messages::BrokerId(-1);
            req.topics = vec![t];
            let r: ListOffsetsResponse = round_trip(&state, ApiKey::ListOffsets, v, &req).await;
            let got: Vec<(i16, i64)> = r.topics[0]
                .partitions
                .iter()
                .map(|p| (p.error_code, p.offset))
                .collect();
            let want = if v >= 4 {
                vec![(0, 4), (fenced, -1), (0, 4), (unknown, -1)]
            } else {
                vec![(0, 4); 4]
            };
            assert_eq!(got, want, "v{v}");
            if v >= 4 {
                assert_eq!(r.topics[0].partitions[0].leader_epoch, 3);
            }

            // The earliest offset was written in epoch 0, the one at timestamp 1 too.
            let mut t = ListOffsetsTopic::default();
            t.name = TopicName(StrBytes::from_static_str("l"));
            for timestamp in [-2, 1] {
                let mut p = ListOffsetsPartition::default();
                p.timestamp = timestamp;
                t.partitions.push(p);
            }
            let mut req = ListOffsetsRequest::default();
            req.topics = vec![t];
            let r: ListOffsetsResponse = round_trip(&state, ApiKey::ListOffsets, v, &req).await;
            let got: Vec<(i16, i64)> = r.topics[0]
                .partitions
                .iter()
                .map(|p| (p.error_code, p.offset))
                .collect();
            assert_eq!(got, vec![(0, 0), (0, 0)], "v{v}");
            if v >= 4 {
                assert!(r.topics[0].partitions.iter().all(|p| p.leader_epoch == 0));
            }
        }
    }
}
